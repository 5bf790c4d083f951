"""The library's threads: one OpenMP pool under its control during a fit, BLAS at one thread.

Why (docs/performance.rst, "Threads"): a batch of 100 samples makes many small
matrix products. OpenBLAS's own pthreads pool busy-waits between them (OpenBLAS
issue 3187) and NumPy and SciPy each load an OpenBLAS with a pool of its own, so on
a machine where anything else runs those threads spin for cores they cannot have
and an epoch took 3-15x its quiet time. During a fit the library therefore

* limits every BLAS library of the process to **one thread** (threadpoolctl), and
* splits each large product itself over the rows or columns of its result, one
  block per OpenMP thread, each thread calling the single-threaded BLAS on its block
  (as scikit-learn's k-means does); the passes over samples use the same pool.

The OpenMP pool spins only briefly before it sleeps (``GOMP_SPINCOUNT``, set in
``bregman_solvers/__init__.py``), so between the products of one batch it stays
awake and beside a busy neighbour it gives its cores back.

``n_threads`` means one thing everywhere: the most threads a fit uses, BLAS
included. ``None`` takes the cores this process may use that no other fit of the
process holds, so fits run side by side in threads never start more threads than
cores in total unless a count is asked for.
"""
import functools
import os
import sys
import threading
from contextlib import contextmanager

from ._kernels._openmp import max_threads
from ._runtime import SETTINGS
from ._validation import check_n_threads

_lock = threading.Lock()
_local = threading.local()
_state = {"fits": 0, "threads_in_use": 0, "limiter": None, "controller": None, "modules": 0}


def usable_cores():
    """Cores this process may run on: OpenMP's default count, within the CPU affinity mask."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):     # not on Linux
        affinity = os.cpu_count() or 1
    return max(1, min(max_threads(), affinity))


#: ``SETTINGS.product_blocks`` (:mod:`bregman_solvers._runtime`): set by
#: ``BREGMAN_SOLVERS_PRODUCT_BLOCKS`` (e.g. to reproduce on one machine a run of another), else
#: the usable cores, resolved here once for the process
if SETTINGS.product_blocks is None:
    SETTINGS.product_blocks = usable_cores()


def current_threads():
    """The thread count of the fit running in this Python thread, or None outside a fit."""
    return getattr(_local, "threads", None)


def _controller():
    """A cached threadpoolctl controller, made again when modules were imported since (a new BLAS)."""
    from threadpoolctl import ThreadpoolController

    if _state["controller"] is None or _state["modules"] != len(sys.modules):
        _state["controller"] = ThreadpoolController()
        _state["modules"] = len(sys.modules)
    return _state["controller"]


def _release_blas_control():
    """Let any Python thread change the BLAS limits next.

    threadpoolctl (3.8 and later) lets only one "controlling" Python thread change
    a process-wide OpenBLAS pool and silently ignores the others; the fit that
    restores the limits may run in another thread than the one that set them.
    """
    import threadpoolctl

    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear()


def resolve(n_threads):
    """The thread count a fit asking for ``n_threads`` gets now (see the module docstring)."""
    if n_threads is not None:
        return check_n_threads(n_threads)
    return max(1, usable_cores() - _state["threads_in_use"])


@contextmanager
def fit_threads(n_threads=None):
    """Run the body as one fit: yields its OpenMP thread count, BLAS at one thread meanwhile.

    Nested calls in the same Python thread (a solver's metrics inside its fit) reuse
    the outer fit's count. BLAS's limits are taken when the first fit of the process
    starts and restored when the last one ends, so fits in several threads do not
    undo each other's limits.
    """
    outer = current_threads()
    if outer is not None:
        yield outer
        return
    with _lock:
        threads = resolve(n_threads)
        if _state["fits"] == 0:
            _state["limiter"] = _controller().limit(limits=1, user_api="blas")
            _release_blas_control()
        _state["fits"] += 1
        _state["threads_in_use"] += threads
    _local.threads = threads
    try:
        yield threads
    finally:
        _local.threads = None
        with _lock:
            _state["fits"] -= 1
            _state["threads_in_use"] -= threads
            if _state["fits"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None
                _release_blas_control()


def owns_threads(method):
    """Decorator for a network method: run it under :func:`fit_threads` with the network's ``n_threads``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if current_threads() is not None:
            return method(self, *args, **kwargs)
        with fit_threads(self.n_threads):
            return method(self, *args, **kwargs)

    return wrapper


@contextmanager
def worker_threads(threads):
    """Inside a fit, run the body (in another Python thread) as one of its workers with ``threads`` threads.

    For a solver that splits its fit over worker threads (``ModelAveraging(n_jobs=...)``):
    the workers share the fit's threads, so together they never use more.
    """
    _local.threads = max(1, int(threads))
    try:
        yield _local.threads
    finally:
        _local.threads = None
