"""What every asv benchmark module shares: sizes, threads, timing settings and cached inputs.

asv (``asv_runner`` 0.3) runs each benchmark, for each parameter combination, in a fresh process
forked from its server, and re-runs ``setup`` before every timed sample. So that no timed region
and no sample pays for data generation, ``setup`` only looks its inputs up in the builders below,
which are cached per process (:func:`functools.cache`): the first sample's ``setup`` builds them,
every later one finds them.

Environment variables (read once, at import):

``BREGMAN_SOLVERS_BENCH_THREADS``
    The threads every benchmark runs on (kernels' ``n_threads``, solvers' ``n_threads``, BLAS
    limited to match by the library), unless the benchmark's own parameters say otherwise
    (``ThreadScaling``, ``SplitProducts``, ``MomentumStep``). Default: the usable cores.
``BREGMAN_SOLVERS_BENCH_FULL_GRID=1``
    Also run ``ActivationKernelsFullGrid`` (every activation x shape x dtype, about 5 minutes);
    without it that class is skipped (asv shows its rows as skipped).
``BREGMAN_SOLVERS_BENCH_TINY=1``
    Tiny sizes: what ``tests/test_benchmarks.py`` runs so that a broken benchmark fails CI. A
    smoke test, not a measurement.
"""
import functools
import os

import numpy as np

from bregman_solvers._threads import usable_cores

TINY = os.environ.get("BREGMAN_SOLVERS_BENCH_TINY", "") == "1"
FULL_GRID = os.environ.get("BREGMAN_SOLVERS_BENCH_FULL_GRID", "") == "1"
THREADS = int(os.environ.get("BREGMAN_SOLVERS_BENCH_THREADS", "0")) or usable_cores()
DTYPES = ["float32", "float64"]
FEATURES = 784          # MNIST-sized inputs


def size(full, tiny):
    """``full`` for asv, ``tiny`` under ``BREGMAN_SOLVERS_BENCH_TINY=1`` (the smoke test)."""
    return tiny if TINY else full


HIDDEN = size(784, 24)   # the hidden width of the paper's classification network

class EpochTiming:
    """asv's timing attributes for benchmarks whose call takes seconds (an epoch of a solver): one
    process, three samples, no warm-up call (each sample re-runs ``setup``, so asv's warm-up would
    be one more epoch). The kernels keep asv's defaults: two processes, up to five samples each,
    after 0.1 s of warm-up calls."""
    rounds = 1
    repeat = (3, 3, 60.0)
    warmup_time = 0.0
    timeout = 300


@functools.cache
def blas_controller():
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded (built once per process)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def pin_blas():
    """BLAS on ``THREADS`` threads for benchmarks that call products outside a fit (a fit sets its
    own BLAS threads from the solver's ``n_threads``)."""
    blas_controller().limit(limits=THREADS, user_api="blas")


@functools.cache
def classification_data(n, dtype):
    """``n`` centred MNIST-sized samples and one-hot labels (random: the cost does not depend on
    the values)."""
    rng = np.random.default_rng(0)
    X = (rng.random((n, FEATURES), dtype=np.float64) - 0.5).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]
    return X, Y


@functools.cache
def uniform(shape, dtype, low=-3.0, high=3.0):
    """A cached array of uniform random values in ``[low, high)``; treat it as read-only."""
    rng = np.random.default_rng(0)
    return (low + (high - low) * rng.random(shape)).astype(dtype)


def touched(shape, dtype):
    """An output array whose pages are already mapped (``np.empty`` maps them on first write)."""
    out = np.empty(shape, dtype=dtype)
    out.fill(0)
    return out
