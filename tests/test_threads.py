"""The library's thread pool: split products, BLAS at one thread during a fit, fits side by side.

Speed is measured in ``benchmarks/contention.py``; here: results do not depend on the
thread count, the pools have the sizes the user asked for inside and after a fit, and
concurrent fits share the cores.
"""
import io
import os
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import bregman_solvers as bs
from bregman_solvers import _threads
from bregman_solvers._runtime import SETTINGS
from bregman_solvers._kernels import _lifted

from conftest import DTYPES


def blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


# ------------------------------------------------------------------ kernels
GEMM_CASES = [
    # (trans_a, trans_b, a shape, b shape): every transposition, tall, wide, tiny and odd shapes
    (False, True, (100, 784), (784, 784)),
    (True, False, (100, 300), (100, 257)),
    (False, False, (97, 300), (300, 161)),
    (True, True, (64, 33), (129, 64)),
    (False, True, (1, 5), (3, 5)),
    (False, False, (1, 1), (1, 1)),
    (True, False, (7, 1), (7, 513)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b, a_shape, b_shape", GEMM_CASES)
def test_split_gemm_is_the_product_and_does_not_depend_on_threads(dtype, trans_a, trans_b, a_shape, b_shape,
                                                                monkeypatch):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    c0 = rng.standard_normal((op_a.shape[0], op_b.shape[1])).astype(dtype)
    oracle = 0.5 * op_a.astype(np.float64) @ op_b.astype(np.float64) - 2.0 * c0
    tol = 1e-4 if dtype == np.float32 else 1e-11
    with threadpool_limits(1, user_api="blas"):
        for n_blocks in (1, 2, 3, 8):
            results = []
            for n_threads in (1, 2, 3):
                c = c0.copy()
                _lifted.gemm(trans_a, trans_b, 0.5, a, b, -2.0, c, n_blocks, n_threads)
                results.append(c)
            np.testing.assert_allclose(results[0], oracle, rtol=tol, atol=tol * np.abs(oracle).max())
            for c in results[1:]:
                np.testing.assert_array_equal(c, results[0])     # bitwise: the blocks fix the rounding


def test_split_gemm_refuses_bad_counts():
    a, c = np.ones((4, 4)), np.zeros((4, 4))
    with pytest.raises(ValueError, match="n_blocks"):
        _lifted.gemm(False, False, 1.0, a, a, 0.0, c, 0, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _lifted.gemm(False, False, 1.0, a, a, 0.0, c, 1, 0)
    with pytest.raises(ValueError, match="n_threads"):
        _lifted.axpy(1.0, a.ravel(), c.ravel(), 0)
    with pytest.raises(ValueError, match="n_threads"):
        _lifted.scal(1.0, c.ravel(), -1)
    assert not c.any()                                           # nothing written on refusal


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 4095, 4096, 65537, 2 * 65536 + 17, 5 * 65536 + 255])
def test_split_axpy_and_scal_match_numpy(dtype, n):
    rng = np.random.default_rng(n)
    x, y0 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    for n_threads in (1, 2, 3):
        y = y0.copy()
        _lifted.axpy(0.25, x, y, n_threads)
        np.testing.assert_array_equal(y, y0 + dtype(0.25) * x)
        _lifted.scal(-3.0, y, n_threads)
        np.testing.assert_array_equal(y, dtype(-3.0) * (y0 + dtype(0.25) * x))


# ------------------------------------------------------------------- fits
def classify_data(n=220, d=256, classes=10, dtype=np.float32):
    rng = np.random.default_rng(1)
    X = (rng.random((n, d)) - 0.5).astype(dtype)
    Y = np.eye(classes, dtype=dtype)[rng.integers(0, classes, n)]
    return X, Y


def wide_net(dtype):
    # products of a batch of 100 are 8-10 million multiply-adds: split into blocks
    return bs.LiftedNetwork([256, 320, 320, 10], ["relu", "relu", "identity"], dtype=dtype, random_state=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_results_do_not_depend_on_the_thread_count(dtype, monkeypatch):
    monkeypatch.setattr(SETTINGS, "product_blocks", 3)          # blocks need not match the threads
    X, Y = classify_data(dtype=dtype)
    fits = {}
    for n_threads in (1, 2, 3, None):
        net = wide_net(dtype)
        result = bs.ImplicitSGD(batch_size=100, inner_iterations=3, epochs=2, tau_theta=0.1, tau_x=0.1, tau=1.0,
                                random_state=0, n_threads=n_threads, track_energy=True).fit(net, X, Y)
        fits[n_threads] = (net.parameter_vector.copy(), result.history["energy"], result.state.hidden[0].copy())
    theta, energy, hidden = fits[1]
    for n_threads, (t, e, h) in fits.items():
        np.testing.assert_array_equal(t, theta, err_msg=f"n_threads={n_threads}")
        assert e == energy
        np.testing.assert_array_equal(h, hidden)


@pytest.mark.parametrize("solver", [
    lambda n: bs.ProximalGradient(max_iter=3, n_threads=n),
    lambda n: bs.SGDBP(epochs=1, batch_size=100, random_state=0, n_threads=n),
])
def test_other_solvers_do_not_depend_on_the_thread_count(solver, monkeypatch):
    monkeypatch.setattr(SETTINGS, "product_blocks", 2)
    X, Y = classify_data()
    thetas = []
    for n_threads in (1, 2):
        net = wide_net(np.float32)
        solver(n_threads).fit(net, X, Y)
        thetas.append(net.parameter_vector.copy())
    np.testing.assert_array_equal(thetas[0], thetas[1])


@pytest.mark.parametrize("n_threads", [1, 2, None])
def test_inside_a_fit_blas_runs_one_thread_and_the_fit_the_asked_threads(n_threads):
    X, Y = classify_data(n=120)
    before = blas_threads()
    seen = []

    def callback(result):
        seen.append((blas_threads(), _threads.current_threads()))

    bs.ImplicitSGD(batch_size=60, inner_iterations=2, epochs=2, tau_theta=0.1, tau_x=0.1, tau=1.0,
                   n_threads=n_threads, callback=callback).fit(wide_net(np.float32), X, Y)
    expected = _threads.usable_cores() if n_threads is None else n_threads
    assert seen == [([1] * len(before), expected)] * 2
    assert blas_threads() == before                        # restored after the fit
    assert _threads.current_threads() is None


def test_the_network_n_threads_caps_a_fit_and_its_own_methods(monkeypatch):
    X, Y = classify_data(n=120)
    net = wide_net(np.float32)
    net.n_threads = 1
    seen = []
    bs.ImplicitSGD(batch_size=60, inner_iterations=2, epochs=1, tau_theta=0.1, tau_x=0.1, tau=1.0,
                   callback=lambda r: seen.append(_threads.current_threads())).fit(net, X, Y)
    assert seen == [1]
    real_affine = bs.LiftedNetwork._affine
    inside = []

    def spy(self, *args, **kwargs):
        inside.append((_threads.current_threads(), blas_threads()))
        return real_affine(self, *args, **kwargs)

    monkeypatch.setattr(bs.LiftedNetwork, "_affine", spy)
    net.forward(X)                                        # outside a fit: the network's own cap, BLAS at one
    assert inside and all(t == 1 and set(b) == {1} for t, b in inside)


def test_a_users_blas_limit_is_restored_after_a_fit():
    X, Y = classify_data(n=120)
    with threadpool_limits(1, user_api="blas"):
        bs.SGDBP(epochs=1, batch_size=60, n_threads=2).fit(wide_net(np.float32), X, Y)
        assert set(blas_threads()) == {1}
    original = blas_threads()
    bs.SGDBP(epochs=1, batch_size=60, n_threads=2).fit(wide_net(np.float32), X, Y)
    assert blas_threads() == original


def test_fits_side_by_side_share_the_cores_and_restore_blas_after_the_last(monkeypatch):
    monkeypatch.setattr(_threads, "usable_cores", lambda: 4)
    original = blas_threads()
    first_in, second_done = threading.Event(), threading.Event()
    got = {}

    def first():
        with _threads.fit_threads(None) as n:
            got["first"] = n
            first_in.set()
            second_done.wait(10)
            got["blas while first runs"] = blas_threads()

    def second():
        first_in.wait(10)
        with _threads.fit_threads(None) as n:
            got["second"] = n
        with _threads.fit_threads(3) as n:                # an explicit count is honoured
            got["explicit"] = n
        second_done.set()

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert got["first"] == 4 and got["second"] == 1 and got["explicit"] == 3
    assert set(got["blas while first runs"]) == {1}       # the second fit's end did not undo the first's limit
    assert blas_threads() == original
    with _threads.fit_threads(None) as n:                 # all released
        assert n == 4


def test_model_averaging_workers_share_the_fit_threads():
    X, Y = classify_data(n=400)
    seen = set()

    class Watched(bs.ModelAveraging):
        def batch_steps(self, batch):
            seen.add((threading.get_ident(), _threads.current_threads()))
            return super().batch_steps(batch)

    thetas = []
    for n_jobs in (1, 2):
        seen.clear()
        net = wide_net(np.float32)
        Watched(batch_size=100, inner_iterations=2, epochs=1, tau_theta=0.1, tau_x=0.1, tau=1.0,
                          n_jobs=n_jobs, n_threads=2, random_state=0).fit(net, X, Y)
        thetas.append(net.parameter_vector.copy())
        assert {t for _, t in seen} == ({2} if n_jobs == 1 else {1})
    np.testing.assert_array_equal(thetas[0], thetas[1])


def test_estimators_pass_n_threads_to_the_fit(monkeypatch):
    pytest.importorskip("sklearn")
    from bregman_solvers.estimators import LiftedBregmanClassifier

    X, Y = classify_data(n=120, d=16)
    seen = []
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(8,), epochs=1, batch_size=60, n_threads=1, random_state=0,
                                  tau_theta=0.1, tau_x=0.1, tau=1.0)
    real = _threads.fit_threads

    def spy(n_threads=None):
        seen.append(n_threads)
        return real(n_threads)

    monkeypatch.setattr("bregman_solvers.solvers._base.fit_threads", spy)
    clf.fit(X, Y.argmax(1))
    assert seen and set(seen) == {1}


def test_default_report_is_the_running_batch_energy():
    X, Y = classify_data(n=120)
    quiet = bs.ImplicitSGD(batch_size=60, inner_iterations=2, epochs=2, tau_theta=0.1, tau_x=0.1, tau=1.0,
                           random_state=0).fit(wide_net(np.float32), X, Y).history
    assert len(quiet["batch_energy"]) == 2 and np.all(np.isfinite(quiet["batch_energy"]))
    assert quiet["energy"] == [] and "train_loss" not in quiet
    full = bs.ImplicitSGD(batch_size=60, inner_iterations=2, epochs=2, tau_theta=0.1, tau_x=0.1, tau=1.0,
                          random_state=0, track_energy=True).fit(wide_net(np.float32), X, Y).history
    assert len(full["energy"]) == 2 and len(full["train_loss"]) == 2
    assert full["batch_energy"] == quiet["batch_energy"]


# ---------------------------------------------------------------- settings
def test_product_blocks_setting(monkeypatch):
    """``BREGMAN_SOLVERS_PRODUCT_BLOCKS`` (read once at import into the one settings object), else the
    usable cores: resolved by the threads module; a bad value warns, naming the variable."""
    from bregman_solvers import _runtime as r

    read = lambda value: r.RuntimeSettings({r.PRODUCT_BLOCKS_ENV: value}).product_blocks  # noqa: E731
    assert r.RuntimeSettings({}).product_blocks is None and read("5") == 5
    for bad in ("0", "-1", "many"):
        with pytest.warns(RuntimeWarning, match=r.PRODUCT_BLOCKS_ENV + ".*the usable cores"):
            assert read(bad) is None
    if not os.environ.get(r.PRODUCT_BLOCKS_ENV):
        assert r.SETTINGS.product_blocks == _threads.usable_cores()
    assert bs.get_config()["product_blocks"] == r.SETTINGS.product_blocks


def test_show_config_lists_every_pool_with_its_size_and_owner(monkeypatch):
    buf = io.StringIO()
    bs.show_config(file=buf)
    text = buf.getvalue()
    pools = bs.get_config()["thread_pools"]
    assert any(p["user_api"] == "blas" for p in pools)
    ours = bs.get_config()["openmp_library"]
    for pool in pools:
        # an OpenMP runtime another package loaded (scikit-learn's libgomp) keeps its own size
        theirs = ours is not None and os.path.realpath(pool["filepath"]) != ours
        during = 1 if pool["user_api"] == "blas" else ("unchanged" if theirs else "n_threads")
        assert pool["during_fit"] == during
        assert f"{pool['num_threads']} / {during}  loaded by {pool['owner']}" in text
    assert "openmp waiting" in text and "product blocks" in text and "usable cores" in text
    assert _threads_owner("/x/site-packages/scipy.libs/libscipy_openblas.so") == "SciPy"
    assert _threads_owner("/x/site-packages/numpy.libs/libopenblas.so") == "NumPy"
    assert _threads_owner("/usr/lib/libgomp.so.1") == "the system"
    monkeypatch.setattr(bs._runtime, "OPENMP_LOADED_BEFORE", True)
    assert "another package loaded OpenMP" in bs.get_config()["openmp_wait"]


def _threads_owner(path):
    from bregman_solvers._config import _owner

    return _owner(path)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_regions_of_the_compiled_steps_match_the_separate_calls(dtype, monkeypatch):
    """The compiled layer pass runs a split product with its row pass in one parallel region; the
    network's energy makes one call for each (``_lifted.gemm``, then ``_lifted.layer_pass``): the
    same energy terms and residuals, to the bit."""
    from bregman_solvers.solvers._engine import StepEngine

    monkeypatch.setattr(SETTINGS, "product_blocks", 3)
    X, Y = classify_data(dtype=dtype)
    net = wide_net(dtype)
    X0, target = net.check_data(X[:100], Y[:100])
    state = net.init_state(X0)
    state.hidden[0] += 0.01                     # not consistent: non-zero residuals
    with _threads.fit_threads(2):
        engine = StepEngine(net, X0, target, state)
        terms = engine.evaluate()
        residuals = [r.copy() for r in engine.ws.residual]
        expected = net.energy(X0, target, state).per_layer
        ws = net.workspace(100)
        net._layer_pass(0, X0, state.hidden[0], ws)       # (BLAS at one thread, as in the fit)
    np.testing.assert_array_equal(terms, expected)
    np.testing.assert_array_equal(residuals[0], ws.residual[0])


def _fit_threads_in_a_worker():
    from bregman_solvers import _threads as worker_threads_module

    with worker_threads_module.fit_threads(None) as n:
        return n


def test_fits_in_worker_processes_share_the_cores():
    """joblib's process workers get OMP_NUM_THREADS = their share of the cores; a fit's default follows it."""
    joblib = pytest.importorskip("joblib")
    n_jobs = 2
    counts = joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(_fit_threads_in_a_worker)() for _ in range(n_jobs))
    assert sum(counts) <= max(n_jobs, _threads.usable_cores())


@pytest.mark.skipif(not bs.kernels.openmp_enabled(), reason="built without OpenMP")
def test_an_explicit_thread_count_holds_in_a_process_started_with_omp_num_threads_1(tmp_path):
    """Dask (and joblib) start worker processes with OMP_NUM_THREADS=1: a fit asking for 2 threads
    there must still run its passes on 2 (OpenMP's default count caps only n_threads=None)."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, bregman_solvers as bs\n"
        "from bregman_solvers._threads import fit_threads\n"
        "net = bs.LiftedNetwork([784, 784, 10], ['relu', 'identity'])\n"
        "big = np.zeros((1000, 784))\n"
        "with fit_threads(2):\n"
        "    print(net._threads(big), net._threads(big[:1]))\n"
        "print(net._threads(big))\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    inside, outside = out.stdout.splitlines()
    assert inside == "2 1"          # the fit's 2 threads for a large pass, 1 for a one-row pass
    assert outside == "1"           # outside a fit, n_threads=None: OpenMP's default, 1 here


# -- the OpenMP threads' spin, timed at import (``_runtime.spin_count``, ``_kernels/_pause.pyx``)

def test_the_spin_count_lasts_the_spin_seconds_within_its_range():
    from bregman_solvers import _runtime as r
    low, high = r.SPIN_COUNT_RANGE
    assert r.spin_count(11e-9) == round(r.SPIN_SECONDS / 11e-9)          # an 11 ns hint: about 2,300
    assert r.spin_count(25e-9) == 1000
    assert r.spin_count(1e-12) == high and r.spin_count(1e-6) == low        # a disturbed timing is bounded
    for unknown in (None, 0.0, -1e-9, float("nan")):
        assert r.spin_count(unknown) == r.DEFAULT_SPIN_COUNT
    assert r.spin_count(10e-9, target=50e-6) == 5000


def test_the_spin_hint_is_timed():
    import platform
    from bregman_solvers._kernels import _pause
    seconds = _pause.pause_seconds(count=2000, repeat=2)
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        assert 0 < seconds < 1e-5            # nanoseconds on every x86 processor, not a loop the compiler removed
    else:
        assert seconds is None
    for bad in (dict(count=0), dict(repeat=0)):
        with pytest.raises(ValueError, match="count and repeat"):
            _pause.pause_seconds(**bad)


def _import_in_a_process(env_changes, tmp_path):
    import subprocess
    import sys
    script = ("import os, bregman_solvers as bs\n"
              "from bregman_solvers._kernels import _pause\n"
              "maps = open('/proc/self/maps').read() if os.path.exists('/proc/self/maps') else ''\n"
              "print(os.environ.get('GOMP_SPINCOUNT'), bs._runtime.SPIN_COUNT_CALIBRATED, 'libgomp' in maps,\n"
              "      '+'.join(bs._runtime.SET_BY_IMPORT) or '-')\n"
              "bs.show_config()\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(env_changes, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    first, *config = out.stdout.splitlines()
    return first.split(), "\n".join(config)


def test_import_sets_a_timed_spin_and_respects_the_users(tmp_path):
    from bregman_solvers import _runtime as r
    (spin, calibrated, gomp_loaded, set_here), config = _import_in_a_process({}, tmp_path)
    assert r.SPIN_COUNT_RANGE[0] <= int(spin) <= r.SPIN_COUNT_RANGE[1] and calibrated == "True"
    assert set_here == "GOMP_SPINCOUNT+OMP_WAIT_POLICY"
    assert gomp_loaded == "False"            # timing the hint loaded no OpenMP runtime (it reads the count)
    assert f"GOMP_SPINCOUNT={spin} (about 25 us on this processor" in config
    (spin, calibrated, _, set_here), config = _import_in_a_process({"GOMP_SPINCOUNT": "777"}, tmp_path)
    assert (spin, calibrated) == ("777", "False") and "GOMP_SPINCOUNT=777 (set in the environment)" in config
    assert set_here == "OMP_WAIT_POLICY"
    (spin, calibrated, _, set_here), _ = _import_in_a_process({"OMP_WAIT_POLICY": "ACTIVE"}, tmp_path)
    assert (spin, calibrated, set_here) == ("None", "False", "-")


def test_show_config_says_when_the_spin_could_not_be_timed(monkeypatch):
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    monkeypatch.setattr(bs._runtime, "OPENMP_LOADED_BEFORE", False)
    monkeypatch.setattr(bs._runtime, "SPIN_COUNT_CALIBRATED", True)
    monkeypatch.setattr(bs._runtime, "PAUSE_SECONDS", None)          # e.g. not x86
    assert "GOMP_SPINCOUNT=1000 (the default: the spin hint cannot be timed here)" in bs.get_config()["openmp_wait"]
