import io

import bregman_solvers as bs


def test_show_config_reports_version_build_and_blas():
    buf = io.StringIO()
    bs.show_config(file=buf)
    text = buf.getvalue()
    assert text.startswith(f"bregman_solvers {bs.__version__}")
    assert "compiled with" in text and "thread pools" in text
    cfg = bs.get_config()
    assert isinstance(cfg["openmp"], bool)
    assert cfg["openmp_threads"] >= 1 and cfg["usable_cores"] >= 1 and cfg["product_blocks"] >= 1
    assert any(pool["user_api"] == "blas" for pool in cfg["thread_pools"])


def test_show_config_names_the_openmp_runtime_the_kernels_call():
    """scikit-learn's wheels bring their own libgomp: only the runtime the extensions resolved
    is labelled as running the library's kernels."""
    import os
    import sys

    import pytest

    if not bs.get_config()["openmp"] or not sys.platform.startswith("linux"):
        pytest.skip("dladdr-based identification is checked on Linux OpenMP builds")
    import sklearn.cluster  # noqa: F401  (loads scikit-learn's own OpenMP runtime where it has one)

    cfg = bs.get_config()
    ours = cfg["openmp_library"]
    assert ours and os.path.exists(ours) and "omp" in os.path.basename(ours)
    openmp = [pool for pool in cfg["thread_pools"] if pool["user_api"] == "openmp"]
    kernels = [pool for pool in openmp if pool["role"] == "the library's kernels and product blocks"]
    assert kernels and all(os.path.realpath(pool["filepath"]) == ours for pool in kernels)
    for pool in openmp:
        if os.path.realpath(pool["filepath"]) != ours:
            assert "not the library's kernels" in pool["role"] and pool["during_fit"] == "unchanged"
    buf = io.StringIO()
    bs.show_config(file=buf)
    assert f"openmp runtime  {ours}" in buf.getvalue()


def test_import_does_not_import_scikit_learn():
    """scikit-learn is imported where it is used (estimators, a fit's ConvergenceWarning), not by
    `import bregman_solvers`; ConvergenceWarning is still scikit-learn's subclass."""
    import subprocess
    import sys

    code = ("import sys, bregman_solvers as bs; assert 'sklearn' not in sys.modules, 'imported'; "
            "from sklearn.exceptions import ConvergenceWarning as C; "
            "assert issubclass(bs.ConvergenceWarning, C) and bs.exceptions.ConvergenceWarning is bs.ConvergenceWarning")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_effective_n_threads_policy():
    from bregman_solvers.kernels import effective_n_threads, max_threads, openmp_enabled

    if openmp_enabled():
        assert effective_n_threads(None) == max_threads()
        assert effective_n_threads(-1) == max_threads()
        assert effective_n_threads(3) == 3
    else:
        assert effective_n_threads(8) == 1


def test_min_entries_per_thread_setting():
    import pytest

    from bregman_solvers import _runtime as r

    read = lambda value: r.RuntimeSettings({r.MIN_ENTRIES_ENV: value}).min_entries_per_thread  # noqa: E731
    assert r.RuntimeSettings({}).min_entries_per_thread == r.DEFAULT_MIN_ENTRIES_PER_THREAD
    assert read("") == r.DEFAULT_MIN_ENTRIES_PER_THREAD and read("4096") == 4096
    for bad in ("0", "-3", "many"):
        with pytest.warns(RuntimeWarning, match=r.MIN_ENTRIES_ENV):
            assert read(bad) == r.DEFAULT_MIN_ENTRIES_PER_THREAD
    assert bs.get_config()["min_entries_per_thread"] == r.SETTINGS.min_entries_per_thread


def test_network_threads_are_capped_by_size_and_by_n_threads(monkeypatch):
    import numpy as np

    from bregman_solvers._runtime import SETTINGS
    from bregman_solvers.kernels import max_threads

    monkeypatch.setattr(SETTINGS, "min_entries_per_thread", 100)
    net = bs.LiftedNetwork([3, 2], "identity", n_threads=None)
    assert net._threads(np.empty(50)) == 1                       # too small for a second thread
    assert net._threads(np.empty(100 * 64)) == min(64, max_threads())
    net.n_threads = 1
    assert net._threads(np.empty(100 * 64)) == 1                 # an explicit count is a cap


def test_a_source_checkout_without_built_kernels_says_what_to_do(tmp_path):
    """Importing from a checkout whose kernels are not built (the folder shadows an installed
    package): a clear ImportError naming the folder and the fix, not a bare "cannot import name"."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import bregman_solvers

    source = Path(bregman_solvers.__file__).parent
    copy = tmp_path / "checkout" / "bregman_solvers"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    (tmp_path / "checkout" / "setup.py").write_text("# a source checkout\n")
    run = subprocess.run([sys.executable, "-c", "import bregman_solvers"], cwd=tmp_path / "checkout",
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode != 0
    assert "compiled kernels are not built in" in run.stderr and "pip install -e ." in run.stderr
    assert "source checkout" in run.stderr


def test_every_subpackage_is_installed():
    """A non-editable install (the README's main command) ships only the packages pyproject lists:
    every folder of the package with an __init__.py must be among them."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "bregman_solvers").rglob("__init__.py")}
    assert found <= listed, f"not installed by pip install .: {sorted(found - listed)}"
