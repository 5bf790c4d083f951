"""Sphinx configuration for bregman_solvers."""
import sys
from pathlib import Path

import bregman_solvers

# the results pages draw their plots from the recorded runs (benchmarks/recorded_runs.py) at build time
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

project = "bregman_solvers"
author = "the bregman_solvers developers"
copyright = "2026, the bregman_solvers developers"
release = bregman_solvers.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.figsize": (6.4, 4.0)}
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    # scikit-learn's generated metadata-routing setters carry cross-references into
    # scikit-learn's own docs; they are not part of our API
    "exclude-members": ",".join(f"set_{m}_request" for m in ("fit", "partial_fit", "score", "predict",
                                                              "transform", "inverse_transform"))
    + ",set_output",
}
exclude_patterns = ["_build", "_run_*.rst"]  # recorded runs: included where shown (benchmarks/recorded_runs.py)
html_theme = "alabaster"
html_static_path = ["_static"]
nitpicky = False
