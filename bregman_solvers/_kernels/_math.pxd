# Scalar helpers shared by every kernel: the float32 or float64 libm function for
# the input type, numerically safe compositions (sigmoid, softplus, KL terms),
# vectorised row reductions, and the work-space allocation done before a nogil loop.
# Everything is ``inline``: each extension that cimports this file compiles its own
# copy, so the helpers inline into the loops that call them.

from cython cimport floating
from libc.math cimport exp, expf, expm1, expm1f, fabs, log, log1p, log1pf, logf, tanh, tanhf
from libc.stdlib cimport malloc

cdef extern from "_openmp_helpers.h":
    double bs_sum_float(const float* a, Py_ssize_t n) noexcept nogil
    double bs_sum_double(const double* a, Py_ssize_t n) noexcept nogil
    float bs_max_float(const float* a, Py_ssize_t n) noexcept nogil
    double bs_max_double(const double* a, Py_ssize_t n) noexcept nogil

cdef extern from *:
    """
    #define BS_EPS64 2.220446049250313e-16
    #define BS_EPS32 1.1920929e-07
    #define BS_LOG2 0.6931471805599453
    /* Relative tolerances of the Newton solves of the smooth proxes: a few ulps of a
       double; for results rounded to float32, 1e-9 (fewer steps, within one float32
       ulp of the double prox, docs/performance.rst "Known slow paths") */
    #define BS_NEWTON_TOL_DOUBLE (4.0 * BS_EPS64)
    #define BS_NEWTON_TOL_FLOAT 1e-9
    #define BS_MAX_NEWTON 200
    """
    const double EPS64 "BS_EPS64"
    const double EPS32 "BS_EPS32"
    const double LOG2 "BS_LOG2"
    const double NEWTON_TOL_DOUBLE "BS_NEWTON_TOL_DOUBLE"
    const double NEWTON_TOL_FLOAT "BS_NEWTON_TOL_FLOAT"
    const int MAX_NEWTON "BS_MAX_NEWTON"


cdef inline void* _work_space(Py_ssize_t n_bytes, str kernel) except? NULL:
    """``n_bytes`` of work space for ``kernel``'s loop (NULL for none), allocated before the
    loop so that a failure raises MemoryError instead of changing what the loop computes."""
    if n_bytes <= 0:
        return NULL
    cdef void* block = malloc(n_bytes)
    if block == NULL:
        raise MemoryError(f"{kernel}: could not allocate {n_bytes} bytes of work space")
    return block


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline double _row_sum(const floating* a, Py_ssize_t n) noexcept nogil:
    # vectorised sum in double (see _openmp_helpers.h for why it lives in C)
    if floating is float:
        return bs_sum_float(a, n)
    else:
        return bs_sum_double(a, n)


cdef inline floating _row_max(const floating* z, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return bs_max_float(z, n)
    else:
        return bs_max_double(z, n)


cdef inline floating _sigmoid(floating z) noexcept nogil:
    # Evaluate with exp of a non-positive number only: no overflow.
    cdef floating e
    if z >= 0:
        return 1 / (1 + _exp(-z))
    e = _exp(z)
    return e / (1 + e)


cdef inline floating _softplus(floating z) noexcept nogil:
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
    return (z if z > 0 else 0) + _log1p(_exp(-fabs(z)))


cdef inline floating _xlogx(floating x) noexcept nogil:
    # x log x with the convention 0 log 0 = 0
    return x * _log(x) if x > 0 else 0


cdef inline floating _soft(floating z, floating t) noexcept nogil:
    # sign(z) max(|z| - t, 0), as two selects (no control flow, so loops vectorise)
    return (z - t if z > t else 0) + (z + t if z < -t else 0)


cdef inline floating _clip1(floating z) noexcept nogil:
    cdef floating t = z if z < 1 else 1
    return t if t > -1 else -1


cdef inline double _plogp(double p, double q) noexcept nogil:
    # p log p for p in [0, 1] given q = 1 - p exactly; log1p(-q) is the accurate log p near 1
    if p <= 0:
        return 0.0
    return p * (log(p) if p <= 0.5 else log1p(-q))


cdef inline double _bernoulli_kl(double p, double q, double y) noexcept nogil:
    # KL(p || sigmoid(y)) = p log p + q log q + p softplus(-y) + q softplus(y), q = 1 - p.
    # Both p and q are passed in exactly (from x in double), so neither is rounded to 0 or 1.
    return _plogp(p, q) + _plogp(q, p) + p * _softplus(-y) + q * _softplus(y)
