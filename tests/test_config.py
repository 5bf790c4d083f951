import io

import bregman_solvers as bs


def test_show_config_reports_version_openmp_threads_and_blas():
    buf = io.StringIO()
    bs.show_config(file=buf)
    text = buf.getvalue()
    assert text.startswith(f"bregman_solvers {bs.__version__}")
    assert "openmp" in text and "openmp threads" in text
    cfg = bs.get_config()
    assert isinstance(cfg["openmp"], bool)
    assert cfg["openmp_threads"] >= 1
    assert any(lib["user_api"] == "blas" for lib in cfg["blas"])


def test_effective_n_threads_policy():
    from bregman_solvers.kernels import effective_n_threads, max_threads, openmp_enabled

    if openmp_enabled():
        assert effective_n_threads(None) == max_threads()
        assert effective_n_threads(-1) == max_threads()
        assert effective_n_threads(3) == 3
    else:
        assert effective_n_threads(8) == 1
