"""Sphinx configuration for bregman_solvers."""
import bregman_solvers

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
]
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
