"""OpenMP introspection and the thread-count policy shared by all kernels."""
import os

cdef extern from "_openmp_helpers.h":
    int bs_openmp_enabled() noexcept nogil
    int bs_omp_get_max_threads() noexcept nogil


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP."""
    return bool(bs_openmp_enabled())


def max_threads():
    """Threads an OpenMP region uses by default (``OMP_NUM_THREADS`` or all cores)."""
    return int(bs_omp_get_max_threads())


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` into a positive thread count.

    ``None`` means every thread OpenMP would use by default; a negative value
    ``-k`` means ``max_threads() + 1 - k`` (so ``-1`` is all of them, as in
    scikit-learn and joblib). Without OpenMP the answer is always 1.
    """
    if n_threads is not None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, (int,)) and not hasattr(n_threads, "__index__"):
            raise TypeError(f"n_threads must be an int or None, got {type(n_threads).__name__}")
        n_threads = int(n_threads)
        if n_threads == 0:
            raise ValueError("n_threads must be a non-zero int or None, got 0")
    if not bs_openmp_enabled():
        return 1
    available = bs_omp_get_max_threads()
    if n_threads is None:
        return available
    if n_threads < 0:
        return max(1, available + 1 + n_threads)
    return n_threads
