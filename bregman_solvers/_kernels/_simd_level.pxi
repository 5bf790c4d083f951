# Included by every module that runs _smooth.h's loops: each holds its own copy of the level
# (a static of the header), read and set through this function (kernels.simd_level sets all).
from ._smooth cimport bs_set_simd, bs_simd


def _simd_level(level=None):
    """The instruction set of _smooth.h's row loops in this module: 1 AVX2 copies, 0 baseline.

    ``level`` (0 or 1) requests one (for tests that compare the two; the CPU may grant
    less); returns the level in use.
    """
    if level is None:
        return bs_simd()
    return bs_set_simd(level)
