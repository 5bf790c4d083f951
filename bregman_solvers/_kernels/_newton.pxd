# The smooth proxes, by safeguarded Newton: tanh, sigmoid and elu entry by entry,
# softmax row by row (its simplex multiplier). Each solves the optimality equation
# (1 - c) x + c Phi'(x) = v of prox_{c Psi}(v) in the variable y = Phi'(x), where
# x = s(y) for an increasing "link" s (MATH.md, the prox table; docs/activations.rst).

from cython cimport floating
from libc.math cimport INFINITY, atanh, copysign, exp, expm1, fabs, isfinite, log, log1p, tanh

from ._math cimport EPS64, MAX_NEWTON, NEWTON_TOL_DOUBLE, NEWTON_TOL_FLOAT, _sigmoid
from ._smooth cimport BS_CHUNK, bs_prox_smooth_chunk

# The increasing links s(y) whose prox equations (1 - c) s(y) + c y = v are solved.
cdef enum:
    LINK_TANH = 0
    LINK_SIGMOID = 1
    LINK_EXP = 2
    LINK_ELU = 3     # alpha (exp(y) - 1)


cdef inline double _link(int link, double alpha, double y, double* slope) noexcept nogil:
    cdef double s
    if link == LINK_TANH:
        s = tanh(y)
        slope[0] = 1.0 - s * s
    elif link == LINK_SIGMOID:
        s = _sigmoid(y)
        slope[0] = s * (1.0 - s)
    elif link == LINK_ELU:
        s = alpha * expm1(y)
        slope[0] = s + alpha
    else:
        s = exp(y)
        slope[0] = s
    return s


cdef inline double _solve_link(int link, double alpha, double c, double v, double y, double lo, double hi,
                               double tol) noexcept nogil:
    """Root in [lo, hi] of g(y) = (1 - c) s(y) + c y - v, starting from y.

    g is strictly increasing on the bracket, so [lo, hi] shrinks with every
    evaluation; a Newton step that leaves it is replaced by bisection. Stops at a
    relative step (or bracket) of ``tol``: ``NEWTON_TOL_DOUBLE`` (a few ulps of y)
    or, for results rounded to float32, ``NEWTON_TOL_FLOAT``.
    """
    cdef double s, slope, g, y_new
    cdef int it
    if hi <= lo:
        return lo
    for it in range(MAX_NEWTON):
        s = _link(link, alpha, y, &slope)
        g = (1.0 - c) * s + c * y - v
        if g == 0:
            return y
        if g > 0:
            hi = y
        else:
            lo = y
        y_new = y - g / ((1.0 - c) * slope + c)
        if not (lo < y_new < hi):   # also rejects NaN
            y_new = 0.5 * (lo + hi)
        if fabs(y_new - y) <= tol * fabs(y_new) or hi - lo <= tol * fabs(y_new):
            return y_new
        if y_new == y:
            return y
        y = y_new
    return y


cdef inline double _prox_tanh(double c, double v, double tol) noexcept nogil:
    # (1 - c) x + c artanh(x) = v, solved in y = artanh(x): (1 - c) tanh(y) + c y = v
    cdef double w = fabs(1.0 - c)
    cdef double lo = (v - w) / c, hi = (v + w) / c, y0
    if not (isfinite(lo) and isfinite(hi)):
        return copysign(1.0, v)
    y0 = atanh(v if fabs(v) < 0.999999 else copysign(0.999999, v))
    y0 = lo if y0 < lo else (hi if y0 > hi else y0)
    return tanh(_solve_link(LINK_TANH, 0.0, c, v, y0, lo, hi, tol))


cdef inline double _prox_sigmoid(double c, double v, double tol) noexcept nogil:
    # (1 - c) x + c logit(x) = v, solved in y = logit(x): (1 - c) sigmoid(y) + c y = v
    cdef double lo = (v - (1.0 - c if c < 1 else 0.0)) / c
    cdef double hi = (v - (1.0 - c if c > 1 else 0.0)) / c
    cdef double x0, y0
    if not (isfinite(lo) and isfinite(hi)):
        return 1.0 if v > 0 else 0.0
    x0 = 1e-12 if v < 1e-12 else (1.0 - 1e-12 if v > 1.0 - 1e-12 else v)
    y0 = log(x0) - log1p(-x0)
    y0 = lo if y0 < lo else (hi if y0 > hi else y0)
    return _sigmoid(_solve_link(LINK_SIGMOID, 0.0, c, v, y0, lo, hi, tol))


cdef inline void _prox_smooth_row(bint sigmoid, double c, const floating* v, floating* out,
                                  Py_ssize_t n) noexcept nogil:
    """prox of c Psi for tanh (or ``sigmoid``) of one row, ``out`` may be ``v``.

    The vectorised Newton of ``_smooth.h``, a chunk of the row at a time (its entries
    converted to double once); the few entries it leaves unsettled (NaN) are solved by
    the safeguarded scalar Newton above, so every result is the scalar solver's to
    within one ulp of the result's type (tests/test_smooth.py).
    """
    cdef double vd[BS_CHUNK]
    cdef double xd[BS_CHUNK]
    cdef Py_ssize_t start = 0, j, m
    cdef double tol = NEWTON_TOL_DOUBLE if floating is double else NEWTON_TOL_FLOAT
    while start < n:
        m = n - start if n - start < BS_CHUNK else BS_CHUNK
        for j in range(m):
            vd[j] = v[start + j]
        bs_prox_smooth_chunk(sigmoid, c, vd, xd, m, floating is double)
        for j in range(m):
            if xd[j] != xd[j]:
                xd[j] = _prox_sigmoid(c, vd[j], tol) if sigmoid else _prox_tanh(c, vd[j], tol)
            out[start + j] = <floating>xd[j]
        start += m


cdef inline double _prox_elu_negative(double c, double alpha, double v, double tol) noexcept nogil:
    # v < 0: (1 - c) x + c log(1 + x / alpha) = v on x in (-alpha, 0), solved in
    # y = log(1 + x / alpha) <= 0: (1 - c) alpha expm1(y) + c y = v. The term
    # (1 - c) alpha expm1(y) lies between 0 and -(1 - c) alpha, so with w = |1 - c| alpha
    # the root lies in [(v - w) / c, min(0, (v + w) / c)].
    cdef double w = fabs(1.0 - c) * alpha
    cdef double lo = (v - w) / c, hi = (v + w) / c, y0
    if hi > 0:
        hi = 0
    if not isfinite(lo):
        return v if v > -alpha else -alpha     # c -> 0: the projection onto the domain
    y0 = log1p(v / alpha) if v > -alpha else lo
    y0 = lo if y0 < lo else (hi if y0 > hi else y0)
    return alpha * expm1(_solve_link(LINK_ELU, alpha, c, v, y0, lo, hi, tol))


cdef inline double _softmax_log_entry(double c, double t, double y) noexcept nogil:
    """log x solving (1 - c) x + c log x = t on x in (0, 1], warm-started at y."""
    cdef double lo = (t - (1.0 - c if c < 1 else 0.0)) / c
    cdef double hi = (t - (1.0 - c if c > 1 else 0.0)) / c
    if hi > 0:
        hi = 0
    if lo > hi:
        lo = hi
    y = lo if y < lo else (hi if y > hi else y)
    return _solve_link(LINK_EXP, 0.0, c, t, y, lo, hi, NEWTON_TOL_DOUBLE)


cdef inline void _prox_softmax_row(double c, const floating* v, floating* out, Py_ssize_t n) noexcept nogil:
    """prox of c Psi, Psi = sum x log x - |x|^2/2 + indicator of the simplex, for one sample.

    Optimality: (1 - c) x_i + c (log x_i + 1) + mu = v_i with sum x = 1. Each x_i is
    decreasing in mu, so mu is found by a safeguarded Newton on S(mu) = sum x_i(mu) = 1,
    with bracket [w_max - (1 - c), w_max - (1 - c)/n + c log n] where w = v - c:
    below it the largest entry exceeds 1, above it every entry is below 1/n.
    ``out`` stores log x_i as warm starts between outer iterations.
    """
    cdef Py_ssize_t j
    cdef double w_max = -INFINITY, mu, mu_lo, mu_hi, mu_new, total, slope, y, x, lse
    cdef int it
    if n == 1:
        out[0] = 1
        return
    for j in range(n):
        if v[j] - c > w_max:
            w_max = v[j] - c
    mu_lo = w_max - (1.0 - c)
    mu_hi = w_max - (1.0 - c) / n + c * log(<double>n)
    # start from the solution without the (1 - c) x term: mu = c logsumexp(w / c)
    lse = 0
    for j in range(n):
        lse += exp((v[j] - c - w_max) / c)
    mu = w_max + c * log(lse)
    mu = mu_lo if mu < mu_lo else (mu_hi if mu > mu_hi else mu)
    for j in range(n):
        out[j] = <floating>((v[j] - c - mu) / c if c >= 1 else 0)
    for it in range(MAX_NEWTON):
        total = 0
        slope = 0
        for j in range(n):
            y = _softmax_log_entry(c, v[j] - c - mu, out[j])
            out[j] = <floating>y
            x = exp(y)
            total += x
            slope += x / ((1.0 - c) * x + c)
        if fabs(total - 1.0) <= 4.0 * EPS64 * n:
            break
        if total > 1:
            mu_lo = mu
        else:
            mu_hi = mu
        mu_new = mu + (total - 1.0) / slope
        if not (mu_lo < mu_new < mu_hi):
            mu_new = 0.5 * (mu_lo + mu_hi)
        if mu_hi - mu_lo <= 4.0 * EPS64 * (1.0 + fabs(mu)) or mu_new == mu:
            mu = mu_new
            break
        mu = mu_new
    # final pass in double at the converged mu, normalised onto the simplex
    total = 0
    for j in range(n):
        x = exp(_softmax_log_entry(c, v[j] - c - mu, out[j]))
        out[j] = <floating>x
        total += x
    for j in range(n):
        out[j] = <floating>(out[j] / total)
