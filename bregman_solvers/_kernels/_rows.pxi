# Row kernels of the proximal activations, shared by the Cython modules that
# include this file (``_activations.pyx`` and ``_lifted.pyx``): per-element
# formulas, per-row loops (one sample each), the safeguarded Newton solvers of the
# smooth proxes. Everything here is nogil and trusts its input (but for
# ``_work_space``, which the kernels call before their loops); the including
# module needs no cimports of its own for them.

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.math cimport (
    INFINITY, atanh, copysign, exp, expf, fabs, isfinite, log, log1p, log1pf, logf, tanh, tanhf,
)

cdef extern from "_openmp_helpers.h":
    double bs_sum_float(const float* a, Py_ssize_t n) noexcept nogil
    double bs_sum_double(const double* a, Py_ssize_t n) noexcept nogil
    float bs_max_float(const float* a, Py_ssize_t n) noexcept nogil
    double bs_max_double(const double* a, Py_ssize_t n) noexcept nogil

cdef void* _work_space(Py_ssize_t n_bytes, str kernel) except? NULL:
    """``n_bytes`` of work space for ``kernel``'s loop (NULL for none), allocated before the
    loop so that a failure raises MemoryError instead of changing what the loop computes."""
    if n_bytes <= 0:
        return NULL
    cdef void* block = malloc(n_bytes)
    if block == NULL:
        raise MemoryError(f"{kernel}: could not allocate {n_bytes} bytes of work space")
    return block


# Activation kinds. The Python registry maps names to these codes.
cdef enum:
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2
    SOFT_THRESHOLD = 3
    NONNEG_SOFT_THRESHOLD = 4
    HARD_TANH = 5
    TANH = 6
    SIGMOID = 7
    SOFTMAX = 8

KIND_CODES = {
    "identity": IDENTITY,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "soft_threshold": SOFT_THRESHOLD,
    "nonneg_soft_threshold": NONNEG_SOFT_THRESHOLD,
    "hard_tanh": HARD_TANH,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "softmax": SOFTMAX,
}

# Compile-time tags of the elementwise activations. A cdef function with a
# ``kind_tag*`` argument is generated once per activation (like a C++ template),
# so each fused loss loop is a separate C loop with its activation's formulas
# inlined, which the compiler vectorises; nothing depends on inlining heuristics.
ctypedef struct identity_tag:
    char unused
ctypedef struct relu_tag:
    char unused
ctypedef struct leaky_relu_tag:
    char unused
ctypedef struct soft_threshold_tag:
    char unused
ctypedef struct nonneg_soft_threshold_tag:
    char unused
ctypedef struct hard_tanh_tag:
    char unused
ctypedef struct tanh_tag:
    char unused
ctypedef struct sigmoid_tag:
    char unused

ctypedef fused kind_tag:
    identity_tag
    relu_tag
    leaky_relu_tag
    soft_threshold_tag
    nonneg_soft_threshold_tag
    hard_tanh_tag
    tanh_tag
    sigmoid_tag


cdef inline int _kind_of(kind_tag* tag) noexcept nogil:
    if kind_tag is relu_tag:
        return RELU
    elif kind_tag is leaky_relu_tag:
        return LEAKY_RELU
    elif kind_tag is soft_threshold_tag:
        return SOFT_THRESHOLD
    elif kind_tag is nonneg_soft_threshold_tag:
        return NONNEG_SOFT_THRESHOLD
    elif kind_tag is hard_tanh_tag:
        return HARD_TANH
    elif kind_tag is tanh_tag:
        return TANH
    elif kind_tag is sigmoid_tag:
        return SIGMOID
    else:
        return IDENTITY

# The three increasing "link" functions s(y) whose prox equations
# (1 - c) s(y) + c y = v are solved by safeguarded Newton.
cdef enum:
    LINK_TANH = 0
    LINK_SIGMOID = 1
    LINK_EXP = 2

cdef int MAX_NEWTON = 200
cdef double EPS64 = 2.220446049250313e-16
cdef double LOG2 = 0.6931471805599453
# Relative tolerances of the Newton solves of the smooth proxes: a few ulps of a double;
# and for results rounded to float32, 1e-9: fewer steps (float32 prox over 100 x 784: tanh
# 15.1 -> 14.2 ms, sigmoid 9.6 -> 7.0 ms), within one float32 ulp of the double prox on 16
# million arguments (c from 0.001 to 10), equal on all but 0.02%; 1e-6 was 893 ulps off
cdef double NEWTON_TOL_DOUBLE = 4.0 * EPS64
cdef double NEWTON_TOL_FLOAT = 1e-9


# ----------------------------------------------------------------------------
# Scalar helpers. float32 data uses the float32 libm so that it is not slower
# than float64; every helper is exact for the input type.
# ----------------------------------------------------------------------------
cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


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


# ----------------------------------------------------------------------------
# Elementwise activations: sigma and the loss given s = sigma(z).
# ----------------------------------------------------------------------------
cdef inline floating _sigma_elem(int kind, floating p, floating z) noexcept nogil:
    if kind == RELU:
        return z if z > 0 else 0
    if kind == LEAKY_RELU:
        return z if z >= 0 else p * z
    if kind == SOFT_THRESHOLD:
        return _soft(z, p)
    if kind == NONNEG_SOFT_THRESHOLD:
        return z - p if z > p else 0
    if kind == HARD_TANH:
        return _clip1(z)
    if kind == TANH:
        return _tanh(z)
    if kind == SIGMOID:
        return _sigmoid(z)
    return z


cdef inline bint _outside_domain(int kind, floating x) noexcept nogil:
    """Whether x lies outside the domain of Phi (elementwise activations)."""
    if kind == RELU or kind == NONNEG_SOFT_THRESHOLD:
        return x < 0
    if kind == HARD_TANH or kind == TANH:
        return fabs(x) > 1
    if kind == SIGMOID:
        return fabs(x - <floating>0.5) > 0.5
    return False


cdef inline floating _loss_elem(int kind, floating p, floating x, floating z, floating s) noexcept nogil:
    """B(x, z) of one entry in the domain of Phi, with s = sigma(z) already computed.

    Evaluated in the input's precision (each entry's loss is rounded once; the row
    sum accumulates in double), except the KL forms, which need double logs.
    """
    cdef floating d = x - s
    cdef floating half_sq = d * d / 2
    cdef floating c, pos_z, neg_z_neg_x, neg_z_pos_x
    if kind == RELU:
        # x max(-z, 0) = x (s - z)
        return half_sq + x * (s - z)
    if kind == LEAKY_RELU:
        # three cases by the signs of z and x, each a sum of non-negative terms;
        # all are computed and one selected, so the loop has no control flow
        c = (1 - p) / (2 * p)
        d = x - p * z
        pos_z = half_sq + (c * x * x if x < 0 else 0)
        neg_z_neg_x = (c + <floating>0.5) * d * d
        neg_z_pos_x = half_sq + c * p * p * z * z - (1 - p) * z * x
        return pos_z if z >= 0 else (neg_z_neg_x if x < 0 else neg_z_pos_x)
    if kind == SOFT_THRESHOLD:
        # alpha |x| - clip(z, -alpha, alpha) x >= 0
        c = z if z < p else p
        c = c if c > -p else -p
        return half_sq + p * (x if x > 0 else -x) - c * x
    if kind == NONNEG_SOFT_THRESHOLD:
        return half_sq + (p - (z if z < p else p)) * x
    if kind == HARD_TANH:
        return half_sq + (z - s) * (s - x)
    if kind == TANH:
        # KL((1+x)/2 || (1+s)/2) with (1+s)/2 = sigmoid(2z)
        return <floating>_bernoulli_kl(0.5 + 0.5 * <double>x, 0.5 - 0.5 * <double>x, 2.0 * <double>z)
    if kind == SIGMOID:
        return <floating>_bernoulli_kl(<double>x, 1.0 - <double>x, <double>z)
    return half_sq


cdef inline double _phi_elem(int kind, floating p, floating x) noexcept nogil:
    cdef double xd = x
    if kind == IDENTITY:
        return 0.5 * xd * xd
    if kind == RELU:
        return 0.5 * xd * xd if x >= 0 else INFINITY
    if kind == LEAKY_RELU:
        return 0.5 * xd * xd if x >= 0 else xd * xd / (2.0 * p)
    if kind == SOFT_THRESHOLD:
        return 0.5 * xd * xd + p * fabs(xd)
    if kind == NONNEG_SOFT_THRESHOLD:
        return 0.5 * xd * xd + p * xd if x >= 0 else INFINITY
    if kind == HARD_TANH:
        return 0.5 * xd * xd if -1 <= x <= 1 else INFINITY
    if kind == TANH:
        if x > 1 or x < -1:
            return INFINITY
        # ((1+x) log(1+x) + (1-x) log(1-x)) / 2 with 0 log 0 = 0
        return 0.5 * ((<double>(1 + x) * log1p(xd) if x > -1 else 0.0)
                      + (<double>(1 - x) * log1p(-xd) if x < 1 else 0.0))
    if kind == SIGMOID:
        if x > 1 or x < 0:
            return INFINITY
        return (xd * log(xd) if x > 0 else 0.0) + ((1.0 - xd) * log1p(-xd) if x < 1 else 0.0)
    return INFINITY


cdef inline double _phi_conj_elem(int kind, floating p, floating z) noexcept nogil:
    cdef double zd = z, t
    if kind == IDENTITY:
        return 0.5 * zd * zd
    if kind == RELU:
        return 0.5 * zd * zd if z > 0 else 0.0
    if kind == LEAKY_RELU:
        return 0.5 * zd * zd if z >= 0 else 0.5 * p * zd * zd
    if kind == SOFT_THRESHOLD:
        t = fabs(zd) - p
        return 0.5 * t * t if t > 0 else 0.0
    if kind == NONNEG_SOFT_THRESHOLD:
        t = zd - p
        return 0.5 * t * t if t > 0 else 0.0
    if kind == HARD_TANH:
        return 0.5 * zd * zd if fabs(zd) <= 1 else fabs(zd) - 0.5
    if kind == TANH:
        # log cosh z = |z| + log1p(exp(-2|z|)) - log 2
        return fabs(zd) + log1p(exp(-2.0 * fabs(zd))) - LOG2
    if kind == SIGMOID:
        return (zd if zd > 0 else 0.0) + log1p(exp(-fabs(zd)))
    return INFINITY


# ----------------------------------------------------------------------------
# Safeguarded Newton for the smooth proxes (tanh, sigmoid, softmax).
# ----------------------------------------------------------------------------
cdef inline double _link(int link, double y, double* slope) noexcept nogil:
    cdef double s
    if link == LINK_TANH:
        s = tanh(y)
        slope[0] = 1.0 - s * s
    elif link == LINK_SIGMOID:
        s = _sigmoid(y)
        slope[0] = s * (1.0 - s)
    else:
        s = exp(y)
        slope[0] = s
    return s


cdef double _solve_link(int link, double c, double v, double y, double lo, double hi,
                        double tol) noexcept nogil:
    """Root in [lo, hi] of g(y) = (1 - c) s(y) + c y - v, starting from y.

    g is strictly increasing (g' >= min(1, c) > 0 on the relevant range), so the
    bracket [lo, hi] shrinks with every evaluation; a Newton step that leaves it
    is replaced by bisection. Stops at a relative step (or bracket) of ``tol``:
    :data:`NEWTON_TOL_DOUBLE` (a few ulps of y) or, for results rounded to float32,
    :data:`NEWTON_TOL_FLOAT`.
    """
    cdef double s, slope, g, y_new
    cdef int it
    if hi <= lo:
        return lo
    for it in range(MAX_NEWTON):
        s = _link(link, y, &slope)
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


cdef double _prox_tanh(double c, double v, double tol) noexcept nogil:
    # (1 - c) x + c artanh(x) = v, solved in y = artanh(x): (1 - c) tanh(y) + c y = v
    cdef double w = fabs(1.0 - c)
    cdef double lo = (v - w) / c, hi = (v + w) / c, y0
    if not (isfinite(lo) and isfinite(hi)):
        return copysign(1.0, v)
    y0 = atanh(v if fabs(v) < 0.999999 else copysign(0.999999, v))
    y0 = lo if y0 < lo else (hi if y0 > hi else y0)
    return tanh(_solve_link(LINK_TANH, c, v, y0, lo, hi, tol))


cdef double _prox_sigmoid(double c, double v, double tol) noexcept nogil:
    # (1 - c) x + c logit(x) = v, solved in y = logit(x): (1 - c) sigmoid(y) + c y = v
    cdef double lo = (v - (1.0 - c if c < 1 else 0.0)) / c
    cdef double hi = (v - (1.0 - c if c > 1 else 0.0)) / c
    cdef double x0, y0
    if not (isfinite(lo) and isfinite(hi)):
        return 1.0 if v > 0 else 0.0
    x0 = 1e-12 if v < 1e-12 else (1.0 - 1e-12 if v > 1.0 - 1e-12 else v)
    y0 = log(x0) - log1p(-x0)
    y0 = lo if y0 < lo else (hi if y0 > hi else y0)
    return _sigmoid(_solve_link(LINK_SIGMOID, c, v, y0, lo, hi, tol))


cdef inline double _softmax_log_entry(double c, double t, double y) noexcept nogil:
    """log x solving (1 - c) x + c log x = t on x in (0, 1], warm-started at y."""
    cdef double lo = (t - (1.0 - c if c < 1 else 0.0)) / c
    cdef double hi = (t - (1.0 - c if c > 1 else 0.0)) / c
    if hi > 0:
        hi = 0
    if lo > hi:
        lo = hi
    y = lo if y < lo else (hi if y > hi else y)
    return _solve_link(LINK_EXP, c, t, y, lo, hi, NEWTON_TOL_DOUBLE)


cdef void _prox_softmax_row(double c, const floating* v, floating* out, Py_ssize_t n) noexcept nogil:
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


# ----------------------------------------------------------------------------
# Row kernels. The kind switch sits outside the loops over features.
# ----------------------------------------------------------------------------
cdef inline floating _row_max(const floating* z, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return bs_max_float(z, n)
    else:
        return bs_max_double(z, n)


cdef inline bint _on_simplex(const floating* x, Py_ssize_t n) noexcept nogil:
    # x >= 0 and sum x = 1 up to float32 rounding (8 n eps_float32) in both dtypes,
    # so that probabilities computed in float32 and cast to float64 are accepted
    cdef double total = 0
    cdef double eps = 1.1920929e-07
    cdef Py_ssize_t j
    for j in range(n):
        if x[j] < 0:
            return False
        total += x[j]
    return fabs(total - 1.0) <= 8.0 * eps * (n if n > 1 else 1)


cdef void _sigma_row(int kind, floating p, const floating* z, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m, inv_total
    cdef double total
    if kind == SOFTMAX:
        # same arithmetic as _softmax_loss_row, so the fused gradient equals sigma(z) - x exactly
        m = _row_max(z, n)
        total = 0
        for j in range(n):
            out[j] = _exp(z[j] - m)
            total += out[j]
        inv_total = <floating>(1.0 / total)
        for j in range(n):
            out[j] = out[j] * inv_total
    elif kind == RELU:
        for j in range(n):
            out[j] = z[j] if z[j] > 0 else 0
    elif kind == LEAKY_RELU:
        for j in range(n):
            out[j] = z[j] if z[j] >= 0 else p * z[j]
    elif kind == SOFT_THRESHOLD:
        for j in range(n):
            out[j] = _soft(z[j], p)
    elif kind == NONNEG_SOFT_THRESHOLD:
        for j in range(n):
            out[j] = z[j] - p if z[j] > p else 0
    elif kind == HARD_TANH:
        for j in range(n):
            out[j] = _clip1(z[j])
    elif kind == TANH:
        for j in range(n):
            out[j] = _tanh(z[j])
    elif kind == SIGMOID:
        for j in range(n):
            out[j] = _sigmoid(z[j])
    else:
        for j in range(n):
            out[j] = z[j]


cdef void _phi_loop(kind_tag* tag, floating p, const floating* a, double* work, bint conj,
                    Py_ssize_t n) noexcept nogil:
    """``Phi`` (or with ``conj`` ``Phi*``) of each entry of a row into ``work``, generated per
    activation like :func:`_layer_loop`: with the kind a run-time switch inside the loop and the
    sum a serial reduction, gcc kept it scalar (``Phi*`` of a float32 relu row block of
    100 x 784: 328 us)."""
    cdef int kind = _kind_of(tag)
    cdef Py_ssize_t j
    if conj:
        for j in range(n):
            work[j] = _phi_conj_elem(kind, p, a[j])
    else:
        for j in range(n):
            work[j] = _phi_elem(kind, p, a[j])


cdef double _phi_entries_sum(int kind, floating p, const floating* a, double* work, bint conj,
                             Py_ssize_t n) noexcept nogil:
    """``sum_j Phi(a_j)`` (``Phi*`` with ``conj``) for an elementwise kind, the entries in double
    in ``work`` (n entries), summed by the vectorised ``bs_sum_double``."""
    if kind == RELU:
        _phi_loop(<relu_tag*>NULL, p, a, work, conj, n)
    elif kind == LEAKY_RELU:
        _phi_loop(<leaky_relu_tag*>NULL, p, a, work, conj, n)
    elif kind == SOFT_THRESHOLD:
        _phi_loop(<soft_threshold_tag*>NULL, p, a, work, conj, n)
    elif kind == NONNEG_SOFT_THRESHOLD:
        _phi_loop(<nonneg_soft_threshold_tag*>NULL, p, a, work, conj, n)
    elif kind == HARD_TANH:
        _phi_loop(<hard_tanh_tag*>NULL, p, a, work, conj, n)
    elif kind == TANH:
        _phi_loop(<tanh_tag*>NULL, p, a, work, conj, n)
    elif kind == SIGMOID:
        _phi_loop(<sigmoid_tag*>NULL, p, a, work, conj, n)
    else:
        _phi_loop(<identity_tag*>NULL, p, a, work, conj, n)
    return bs_sum_double(work, n)


cdef double _phi_row(int kind, floating p, const floating* x, double* work, Py_ssize_t n) noexcept nogil:
    """``Phi(x)`` of one row; ``work`` holds n doubles (elementwise kinds)."""
    cdef Py_ssize_t j
    cdef double acc = 0
    if kind == SOFTMAX:
        if not _on_simplex(x, n):
            return INFINITY
        for j in range(n):
            acc += _xlogx(<double>x[j])
        return acc
    return _phi_entries_sum(kind, p, x, work, False, n)


cdef double _phi_conj_row(int kind, floating p, const floating* z, double* work, Py_ssize_t n) noexcept nogil:
    """``Phi*(z)`` of one row; ``work`` holds n doubles (elementwise kinds)."""
    cdef Py_ssize_t j
    cdef double acc = 0, m
    if kind == SOFTMAX:
        m = _row_max(z, n)
        for j in range(n):
            acc += exp(z[j] - m)
        return m + log(acc)
    return _phi_entries_sum(kind, p, z, work, True, n)


cdef double _softmax_loss_row(const floating* x, const floating* z, floating* grad, Py_ssize_t n) noexcept nogil:
    """KL(x || softmax(z)) of one sample; writes softmax(z) - x into grad if grad is not NULL.

    With m = max z and T = sum exp(z - m), log softmax_j(z) = z_j - m - log T, so the
    loss needs no second exponential: sum_j x_j (log x_j - (z_j - m - log T)).
    """
    cdef Py_ssize_t j
    cdef floating m = _row_max(z, n), e
    cdef double total = 0, log_total, acc = 0
    for j in range(n):
        e = _exp(z[j] - m)
        if grad != NULL:
            grad[j] = e
        total += e
    log_total = log(total)
    for j in range(n):
        if x[j] > 0:
            acc += <double>x[j] * (<double>_log(x[j]) - (<double>(z[j] - m) - log_total))
    if grad != NULL:
        e = <floating>(1.0 / total)
        for j in range(n):
            grad[j] = grad[j] * e - x[j]
    if not _on_simplex(x, n):
        return INFINITY
    return acc


cdef double _loss_grad_loop(kind_tag* tag, floating p, const floating* x, const floating* z,
                            floating* grad, floating* work, Py_ssize_t n) noexcept nogil:
    """Loss of one sample and, when grad is not NULL, sigma(z) - x.

    Generated once per activation (``kind_tag``) and dtype. The loop has no
    reduction and no early exit (the domain check is a select), so it vectorises;
    the per-entry losses go to the thread's ``work`` row and are summed by the
    vectorised ``_row_sum``. Without a work row (allocation failed) it falls back
    to a scalar sum.
    """
    cdef int kind = _kind_of(tag)
    cdef Py_ssize_t j
    cdef floating s, b
    cdef double acc = 0
    if work == NULL:
        for j in range(n):
            s = _sigma_elem(kind, p, z[j])
            if grad != NULL:
                grad[j] = s - x[j]
            acc += INFINITY if _outside_domain(kind, x[j]) else _loss_elem(kind, p, x[j], z[j], s)
        return acc
    if grad != NULL:
        for j in range(n):
            s = _sigma_elem(kind, p, z[j])
            grad[j] = s - x[j]
            b = _loss_elem(kind, p, x[j], z[j], s)
            work[j] = INFINITY if _outside_domain(kind, x[j]) else b
    else:
        for j in range(n):
            s = _sigma_elem(kind, p, z[j])
            b = _loss_elem(kind, p, x[j], z[j], s)
            work[j] = INFINITY if _outside_domain(kind, x[j]) else b
    return _row_sum(work, n)


cdef double _loss_grad_row(int kind, floating p, const floating* x, const floating* z,
                           floating* grad, floating* work, Py_ssize_t n) noexcept nogil:
    """B(x, z) of one sample; also writes sigma(z) - x into grad unless grad is NULL."""
    if kind == SOFTMAX:
        return _softmax_loss_row(x, z, grad, n)
    if kind == RELU:
        return _loss_grad_loop(<relu_tag*>NULL, p, x, z, grad, work, n)
    if kind == LEAKY_RELU:
        return _loss_grad_loop(<leaky_relu_tag*>NULL, p, x, z, grad, work, n)
    if kind == SOFT_THRESHOLD:
        return _loss_grad_loop(<soft_threshold_tag*>NULL, p, x, z, grad, work, n)
    if kind == NONNEG_SOFT_THRESHOLD:
        return _loss_grad_loop(<nonneg_soft_threshold_tag*>NULL, p, x, z, grad, work, n)
    if kind == HARD_TANH:
        return _loss_grad_loop(<hard_tanh_tag*>NULL, p, x, z, grad, work, n)
    if kind == TANH:
        return _loss_grad_loop(<tanh_tag*>NULL, p, x, z, grad, work, n)
    if kind == SIGMOID:
        return _loss_grad_loop(<sigmoid_tag*>NULL, p, x, z, grad, work, n)
    return _loss_grad_loop(<identity_tag*>NULL, p, x, z, grad, work, n)


cdef double _layer_loop(kind_tag* tag, floating p, const floating* x, floating* z, const floating* b,
                        floating* grad, floating* v, floating a_x, floating c_z, floating* work,
                        bint keep_z, Py_ssize_t n) noexcept nogil:
    """One sample of a lifted layer in one sweep: ``z += b``, ``grad = sigma(z) - x``,
    the per-entry losses into ``work`` (summed after) and, when ``v`` is not NULL,
    ``v = a_x x + c_z z``.

    The fused form of bias, :func:`_loss_grad_loop` and the x-step argument: each
    entry is loaded from memory once, so the layer pass costs one sweep over its
    arrays instead of three (measured 2-3x faster at width 784; with a loss, ``v``
    and the stored ``z`` re-read the row from L1, see below). Generated per
    activation like :func:`_loss_grad_loop`. With ``work`` NULL no loss is
    computed (returns 0): the inner iterations that need only the residuals.
    Without ``keep_z`` the biased ``z`` is not stored back: right after the GEMM
    that wrote ``z`` on several threads, storing it costs a fifth to a third of
    the pass (measured in situ), and the solvers' inner iterations never read it.
    """
    cdef int kind = _kind_of(tag)
    cdef Py_ssize_t j
    cdef floating s, zj, xj, loss
    if work == NULL:
        # no loss wanted: bias, residual and x-step argument only
        if v != NULL:
            for j in range(n):
                zj = z[j] + b[j]
                xj = x[j]
                if keep_z:
                    z[j] = zj
                grad[j] = _sigma_elem(kind, p, zj) - xj
                v[j] = a_x * xj + c_z * zj
        else:
            for j in range(n):
                zj = z[j] + b[j]
                if keep_z:
                    z[j] = zj
                grad[j] = _sigma_elem(kind, p, zj) - x[j]
        return 0
    # with a loss, V and the stored z + b are loops of their own: one loop writing
    # grad, work and v (reading x, z and b) needs more runtime alias checks than gcc
    # versions a loop for, so it ran scalar, mispredicting the sign of z (measured
    # 397 against 47 us for a float32 relu pass over 100 x 784); the second loop
    # reads its row from L1
    for j in range(n):
        zj = z[j] + b[j]
        xj = x[j]
        s = _sigma_elem(kind, p, zj)
        grad[j] = s - xj
        loss = _loss_elem(kind, p, xj, zj, s)
        work[j] = INFINITY if _outside_domain(kind, xj) else loss
    if v != NULL:
        for j in range(n):
            v[j] = a_x * x[j] + c_z * (z[j] + b[j])
    if keep_z:
        for j in range(n):
            z[j] = z[j] + b[j]
    return _row_sum(work, n)


cdef double _layer_row(int kind, floating p, const floating* x, floating* z, const floating* b,
                       floating* grad, floating* v, floating a_x, floating c_z, floating* work,
                       bint keep_z, Py_ssize_t n) noexcept nogil:
    """:func:`_layer_loop` for any kind (softmax: bias, row loss and ``v`` in turn).

    ``work`` NULL: no loss (returns 0), except for softmax, whose loss pass
    computes the residual anyway (and reads the biased ``z``, so it always keeps it).
    """
    cdef Py_ssize_t j
    cdef double loss
    if kind == SOFTMAX:
        for j in range(n):
            z[j] = z[j] + b[j]
        loss = _loss_grad_row(kind, p, x, z, grad, NULL, n)
        if v != NULL:
            for j in range(n):
                v[j] = a_x * x[j] + c_z * z[j]
        return loss
    if kind == RELU:
        return _layer_loop(<relu_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == LEAKY_RELU:
        return _layer_loop(<leaky_relu_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == SOFT_THRESHOLD:
        return _layer_loop(<soft_threshold_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == NONNEG_SOFT_THRESHOLD:
        return _layer_loop(<nonneg_soft_threshold_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == HARD_TANH:
        return _layer_loop(<hard_tanh_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == TANH:
        return _layer_loop(<tanh_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    if kind == SIGMOID:
        return _layer_loop(<sigmoid_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)
    return _layer_loop(<identity_tag*>NULL, p, x, z, b, grad, v, a_x, c_z, work, keep_z, n)


cdef void _grad_row(int kind, floating p, const floating* x, const floating* z,
                    floating* grad, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    _sigma_row(kind, p, z, grad, n)
    for j in range(n):
        grad[j] = grad[j] - x[j]


cdef void _prox_row(int kind, floating p, double c, const floating* v, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating shrink
    if kind == SOFTMAX:
        _prox_softmax_row(c, v, out, n)
    elif kind == RELU:
        for j in range(n):
            out[j] = v[j] if v[j] > 0 else 0
    elif kind == LEAKY_RELU:
        shrink = <floating>(1.0 / (1.0 + c * (1.0 - p) / p))
        for j in range(n):
            out[j] = v[j] if v[j] >= 0 else shrink * v[j]
    elif kind == SOFT_THRESHOLD:
        shrink = <floating>(c * p)
        for j in range(n):
            out[j] = _soft(v[j], shrink)
    elif kind == NONNEG_SOFT_THRESHOLD:
        shrink = <floating>(c * p)
        for j in range(n):
            out[j] = v[j] - shrink if v[j] > shrink else 0
    elif kind == HARD_TANH:
        for j in range(n):
            out[j] = _clip1(v[j])
    elif kind == TANH:
        for j in range(n):
            out[j] = <floating>_prox_tanh(c, v[j], NEWTON_TOL_FLOAT if floating is float else NEWTON_TOL_DOUBLE)
    elif kind == SIGMOID:
        for j in range(n):
            out[j] = <floating>_prox_sigmoid(c, v[j], NEWTON_TOL_FLOAT if floating is float else NEWTON_TOL_DOUBLE)
    else:
        for j in range(n):
            out[j] = v[j]




# ----------------------------------------------------------------------------
# The quadratic penalty of MAC-QP (eq. 6), a baseline: P(x, z) = 0.5 |x - sigma(z)|^2.
# Its z-gradient needs the derivative of sigma (a subgradient at kinks), which is
# exactly what the Bregman loss avoids.
# ----------------------------------------------------------------------------
cdef inline floating _dsigma_elem(int kind, floating p, floating z) noexcept nogil:
    """sigma'(z), with the one-sided value 0 at the kinks (a valid subgradient)."""
    cdef floating t
    if kind == RELU:
        return 1 if z > 0 else 0
    if kind == LEAKY_RELU:
        return 1 if z > 0 else p
    if kind == SOFT_THRESHOLD:
        return 1 if (z > p or z < -p) else 0
    if kind == NONNEG_SOFT_THRESHOLD:
        return 1 if z > p else 0
    if kind == HARD_TANH:
        return 1 if (z < 1 and z > -1) else 0
    if kind == TANH:
        t = _tanh(z)
        return 1 - t * t
    if kind == SIGMOID:
        t = _sigmoid(z)
        return t * (1 - t)
    return 1


cdef void _backprop_loop(kind_tag* tag, floating p, const floating* z, floating* delta,
                         Py_ssize_t n) noexcept nogil:
    """``delta *= sigma'(z)`` for one row, generated per activation so that the loop vectorises
    (with the kind a run-time switch inside it, gcc kept it scalar: 294 against 15 us for a
    float32 relu row block of 100 x 784, mispredicting the sign of every entry)."""
    cdef int kind = _kind_of(tag)
    cdef Py_ssize_t j
    for j in range(n):
        delta[j] = delta[j] * _dsigma_elem(kind, p, z[j])


cdef void _backprop_row(int kind, floating p, const floating* z, floating* delta, Py_ssize_t n) noexcept nogil:
    """:func:`_backprop_loop` for an elementwise ``kind`` (identity leaves ``delta`` as it is)."""
    if kind == RELU:
        _backprop_loop(<relu_tag*>NULL, p, z, delta, n)
    elif kind == LEAKY_RELU:
        _backprop_loop(<leaky_relu_tag*>NULL, p, z, delta, n)
    elif kind == SOFT_THRESHOLD:
        _backprop_loop(<soft_threshold_tag*>NULL, p, z, delta, n)
    elif kind == NONNEG_SOFT_THRESHOLD:
        _backprop_loop(<nonneg_soft_threshold_tag*>NULL, p, z, delta, n)
    elif kind == HARD_TANH:
        _backprop_loop(<hard_tanh_tag*>NULL, p, z, delta, n)
    elif kind == TANH:
        _backprop_loop(<tanh_tag*>NULL, p, z, delta, n)
    elif kind == SIGMOID:
        _backprop_loop(<sigmoid_tag*>NULL, p, z, delta, n)


cdef inline floating _dsigma_given(int kind, floating p, floating z, floating s) noexcept nogil:
    """:func:`_dsigma_elem` with ``s = sigma(z)`` already computed (tanh and sigmoid reuse it)."""
    if kind == TANH:
        return 1 - s * s
    if kind == SIGMOID:
        return s * (1 - s)
    return _dsigma_elem(kind, p, z)


cdef double _qp_loop(kind_tag* tag, floating p, const floating* x, const floating* z, floating* grad_z,
                     floating* v, floating a_x, floating c_s, floating* work, Py_ssize_t n) noexcept nogil:
    """MAC-QP's row for one elementwise activation (see :func:`_qp_row`), generated per activation
    like :func:`_layer_loop` so that each variant is a straight loop gcc vectorises."""
    cdef int kind = _kind_of(tag)
    cdef Py_ssize_t j
    cdef floating s, d
    if work == NULL:
        if v != NULL:
            for j in range(n):
                s = _sigma_elem(kind, p, z[j])
                d = s - x[j]
                v[j] = a_x * x[j] + c_s * s
                grad_z[j] = _dsigma_given(kind, p, z[j], s) * d
        else:
            for j in range(n):
                s = _sigma_elem(kind, p, z[j])
                grad_z[j] = _dsigma_given(kind, p, z[j], s) * (s - x[j])
        return 0
    if v != NULL:
        for j in range(n):
            s = _sigma_elem(kind, p, z[j])
            d = s - x[j]
            work[j] = d * d / 2
            v[j] = a_x * x[j] + c_s * s
            grad_z[j] = _dsigma_given(kind, p, z[j], s) * d
    else:
        for j in range(n):
            s = _sigma_elem(kind, p, z[j])
            d = s - x[j]
            work[j] = d * d / 2
            grad_z[j] = _dsigma_given(kind, p, z[j], s) * d
    return _row_sum(work, n)


cdef double _qp_row(int kind, floating p, const floating* x, const floating* z, floating* grad_z,
                    floating* v, floating a_x, floating c_s, floating* work, Py_ssize_t n) noexcept nogil:
    """MAC-QP's penalty ``0.5 |x - s|^2`` with ``s = sigma(z)``; ``grad_z = J_sigma(z)^T (s - x)``;
    ``v = a_x x + c_s s`` (unless NULL).

    The per-entry penalties go to ``work`` (rounded once, summed in double, as the
    Bregman losses); ``work`` NULL: no penalty (returns 0), except for softmax,
    whose row computes it anyway.
    """
    cdef Py_ssize_t j
    cdef double acc = 0, dot = 0
    cdef floating s, d
    if kind == SOFTMAX:
        # J^T d = s * (d - <s, d>) for the softmax Jacobian J = diag(s) - s s^T
        _sigma_row(kind, p, z, grad_z, n)
        for j in range(n):
            d = grad_z[j] - x[j]
            acc += 0.5 * <double>d * d
            dot += <double>grad_z[j] * d
        for j in range(n):
            s = grad_z[j]
            if v != NULL:
                v[j] = a_x * x[j] + c_s * s
            grad_z[j] = s * ((s - x[j]) - <floating>dot)
        return acc
    if kind == RELU:
        return _qp_loop(<relu_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == LEAKY_RELU:
        return _qp_loop(<leaky_relu_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == SOFT_THRESHOLD:
        return _qp_loop(<soft_threshold_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == NONNEG_SOFT_THRESHOLD:
        return _qp_loop(<nonneg_soft_threshold_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == HARD_TANH:
        return _qp_loop(<hard_tanh_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == TANH:
        return _qp_loop(<tanh_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    if kind == SIGMOID:
        return _qp_loop(<sigmoid_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
    return _qp_loop(<identity_tag*>NULL, p, x, z, grad_z, v, a_x, c_s, work, n)
