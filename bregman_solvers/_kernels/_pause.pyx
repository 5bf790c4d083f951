# The duration of the processor's spin-wait hint (x86 ``pause``), which OpenMP's idle
# threads execute while they wait for the next parallel region (libgomp: one per spin;
# ``GOMP_SPINCOUNT`` counts them). Processors differ several-fold in it (about 11 ns on
# an Intel Xeon with AVX-512 measured in docs/performance.rst), so ``_runtime`` times it
# once at import and sets a spin of a fixed duration. Built WITHOUT OpenMP (setup.py):
# importing this module must not load the OpenMP runtime, which reads the spin count
# when it loads.

from time import perf_counter_ns

cdef extern from *:
    """
    #if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
    #include <immintrin.h>
    static inline void bs_spin_hint(void) { _mm_pause(); }
    #define BS_HAS_SPIN_HINT 1
    #else
    static inline void bs_spin_hint(void) { }
    #define BS_HAS_SPIN_HINT 0
    #endif
    """
    void bs_spin_hint() noexcept nogil
    int BS_HAS_SPIN_HINT


def pause_seconds(int count=20000, int repeat=3):
    """Seconds per spin-wait hint: the fastest of ``repeat`` runs of ``count`` hints.

    None where the processor has no such hint this module knows (not x86): libgomp's
    spin there is a bare load, whose duration says nothing about the hint's.
    """
    cdef int i, r
    cdef long long best = -1, elapsed
    if not BS_HAS_SPIN_HINT:
        return None
    if count < 1 or repeat < 1:
        raise ValueError(f"count and repeat must be >= 1, got {count} and {repeat}")
    for r in range(repeat):
        start = perf_counter_ns()
        with nogil:
            for i in range(count):
                bs_spin_hint()
        elapsed = perf_counter_ns() - start
        if best < 0 or elapsed < best:
            best = elapsed
    return best * 1e-9 / count
