# The formulas of the entrywise activations, seven per activation, for one entry:
#
#   <name>_sigma(p, z)          sigma(z)
#   <name>_dsigma(p, z, s)      sigma'(z) given s = sigma(z) (one-sided at kinks: a valid
#                               subgradient; only the MAC-QP and back-propagation baselines use it)
#   <name>_loss(p, x, z, s)     B(x, z) for x in the domain of Phi, given s = sigma(z), in a
#                               cancellation-free form (never Phi(x) + Phi*(z) - x z)
#   <name>_outside(p, x)        whether x lies outside the domain of Phi
#   <name>_phi(p, x)            Phi(x) in double, +inf outside the domain
#   <name>_phi_conj(p, z)       Phi*(z) in double
#   <name>_prox(p, c, v)        prox_{c Psi}(v), Psi = Phi - |.|^2 / 2
#
# p is the activation's parameter (activation_table.py). The names are what the
# template _rows.pxd.tp calls for each row of the table; MATH.md and
# docs/activations.rst derive every formula. A loss is evaluated in the input's
# precision (rounded once per entry) except the KL forms, which need double logs.

from cython cimport floating
from libc.math cimport INFINITY, exp, expm1, fabs, log, log1p

from ._math cimport (LOG2, NEWTON_TOL_DOUBLE, NEWTON_TOL_FLOAT, _bernoulli_kl, _clip1, _expm1, _sigmoid, _soft,
                     _tanh)
from ._newton cimport _prox_elu_negative, _prox_sigmoid, _prox_tanh
from ._smooth cimport bs_sigmoid, bs_tanh


cdef inline double _newton_tol(floating v) noexcept nogil:
    return NEWTON_TOL_FLOAT if floating is float else NEWTON_TOL_DOUBLE


# -- identity: Psi = 0 --------------------------------------------------------------
cdef inline floating identity_sigma(floating p, floating z) noexcept nogil:
    return z

cdef inline floating identity_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1

cdef inline floating identity_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    return (x - s) * (x - s) / 2

cdef inline bint identity_outside(floating p, floating x) noexcept nogil:
    return False

cdef inline double identity_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x

cdef inline double identity_phi_conj(floating p, floating z) noexcept nogil:
    return 0.5 * <double>z * z

cdef inline floating identity_prox(floating p, double c, floating v) noexcept nogil:
    return v


# -- relu: Psi = indicator of x >= 0 -----------------------------------------------
cdef inline floating relu_sigma(floating p, floating z) noexcept nogil:
    return z if z > 0 else 0

cdef inline floating relu_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if z > 0 else 0

cdef inline floating relu_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    # x max(-z, 0) = x (s - z)
    return (x - s) * (x - s) / 2 + x * (s - z)

cdef inline bint relu_outside(floating p, floating x) noexcept nogil:
    return x < 0

cdef inline double relu_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x if x >= 0 else INFINITY

cdef inline double relu_phi_conj(floating p, floating z) noexcept nogil:
    return 0.5 * <double>z * z if z > 0 else 0.0

cdef inline floating relu_prox(floating p, double c, floating v) noexcept nogil:
    return v if v > 0 else 0


# -- leaky_relu (slope p in (0, 1]): Psi = (1 - p) / (2 p) min(x, 0)^2 --------------
cdef inline floating leaky_relu_sigma(floating p, floating z) noexcept nogil:
    return z if z >= 0 else p * z

cdef inline floating leaky_relu_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if z > 0 else p

cdef inline floating leaky_relu_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    # three cases by the signs of z and x, each a sum of non-negative terms; all are
    # computed and one selected, so the loop has no control flow
    cdef floating c = (1 - p) / (2 * p), d = x - p * z, half_sq = (x - s) * (x - s) / 2
    cdef floating pos_z = half_sq + (c * x * x if x < 0 else 0)
    cdef floating neg_z_neg_x = (c + <floating>0.5) * d * d
    cdef floating neg_z_pos_x = half_sq + c * p * p * z * z - (1 - p) * z * x
    return pos_z if z >= 0 else (neg_z_neg_x if x < 0 else neg_z_pos_x)

cdef inline bint leaky_relu_outside(floating p, floating x) noexcept nogil:
    return False

cdef inline double leaky_relu_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x if x >= 0 else <double>x * x / (2.0 * p)

cdef inline double leaky_relu_phi_conj(floating p, floating z) noexcept nogil:
    return 0.5 * <double>z * z if z >= 0 else 0.5 * p * <double>z * z

cdef inline floating leaky_relu_prox(floating p, double c, floating v) noexcept nogil:
    return v if v >= 0 else <floating>(1.0 / (1.0 + c * (1.0 - p) / p)) * v


# -- soft_threshold (p >= 0): Psi = p |x| -------------------------------------------
cdef inline floating soft_threshold_sigma(floating p, floating z) noexcept nogil:
    return _soft(z, p)

cdef inline floating soft_threshold_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if (z > p or z < -p) else 0

cdef inline floating soft_threshold_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    # p |x| - clip(z, -p, p) x >= 0
    cdef floating c = z if z < p else p
    c = c if c > -p else -p
    return (x - s) * (x - s) / 2 + p * (x if x > 0 else -x) - c * x

cdef inline bint soft_threshold_outside(floating p, floating x) noexcept nogil:
    return False

cdef inline double soft_threshold_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x + p * fabs(<double>x)

cdef inline double soft_threshold_phi_conj(floating p, floating z) noexcept nogil:
    cdef double t = fabs(<double>z) - p
    return 0.5 * t * t if t > 0 else 0.0

cdef inline floating soft_threshold_prox(floating p, double c, floating v) noexcept nogil:
    return _soft(v, <floating>(c * p))


# -- nonneg_soft_threshold (p >= 0): Psi = p x + indicator of x >= 0 ----------------
cdef inline floating nonneg_soft_threshold_sigma(floating p, floating z) noexcept nogil:
    return z - p if z > p else 0

cdef inline floating nonneg_soft_threshold_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if z > p else 0

cdef inline floating nonneg_soft_threshold_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    return (x - s) * (x - s) / 2 + (p - (z if z < p else p)) * x

cdef inline bint nonneg_soft_threshold_outside(floating p, floating x) noexcept nogil:
    return x < 0

cdef inline double nonneg_soft_threshold_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x + p * <double>x if x >= 0 else INFINITY

cdef inline double nonneg_soft_threshold_phi_conj(floating p, floating z) noexcept nogil:
    cdef double t = <double>z - p
    return 0.5 * t * t if t > 0 else 0.0

cdef inline floating nonneg_soft_threshold_prox(floating p, double c, floating v) noexcept nogil:
    cdef floating shrink = <floating>(c * p)
    return v - shrink if v > shrink else 0


# -- hard_tanh: Psi = indicator of [-1, 1] -------------------------------------------
cdef inline floating hard_tanh_sigma(floating p, floating z) noexcept nogil:
    return _clip1(z)

cdef inline floating hard_tanh_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if (z < 1 and z > -1) else 0

cdef inline floating hard_tanh_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    return (x - s) * (x - s) / 2 + (z - s) * (s - x)

cdef inline bint hard_tanh_outside(floating p, floating x) noexcept nogil:
    return fabs(x) > 1

cdef inline double hard_tanh_phi(floating p, floating x) noexcept nogil:
    return 0.5 * <double>x * x if -1 <= x <= 1 else INFINITY

cdef inline double hard_tanh_phi_conj(floating p, floating z) noexcept nogil:
    cdef double zd = z
    return 0.5 * zd * zd if fabs(zd) <= 1 else fabs(zd) - 0.5

cdef inline floating hard_tanh_prox(floating p, double c, floating v) noexcept nogil:
    return _clip1(v)


# -- tanh: Phi(x) = ((1 + x) log(1 + x) + (1 - x) log(1 - x)) / 2 on [-1, 1] ----------
cdef inline floating tanh_sigma(floating p, floating z) noexcept nogil:
    # _smooth.h's tanh, which loops vectorise (libm's is a call); float32: computed in
    # double to 1e-12 and rounded once, so within one ulp of tanhf
    return <floating>bs_tanh(z, floating is double)

cdef inline floating tanh_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 - s * s

cdef inline floating tanh_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    # KL((1+x)/2 || (1+s)/2) with (1+s)/2 = sigmoid(2z)
    return <floating>_bernoulli_kl(0.5 + 0.5 * <double>x, 0.5 - 0.5 * <double>x, 2.0 * <double>z)

cdef inline bint tanh_outside(floating p, floating x) noexcept nogil:
    return fabs(x) > 1

cdef inline double tanh_phi(floating p, floating x) noexcept nogil:
    cdef double xd = x
    if x > 1 or x < -1:
        return INFINITY
    # 0 log 0 = 0 at the ends
    return 0.5 * ((<double>(1 + x) * log1p(xd) if x > -1 else 0.0)
                  + (<double>(1 - x) * log1p(-xd) if x < 1 else 0.0))

cdef inline double tanh_phi_conj(floating p, floating z) noexcept nogil:
    # log cosh z = |z| + log1p(exp(-2|z|)) - log 2
    cdef double a = fabs(<double>z)
    return a + log1p(exp(-2.0 * a)) - LOG2

cdef inline floating tanh_prox(floating p, double c, floating v) noexcept nogil:
    # one entry; rows go through _newton._prox_smooth_row (_rows.pxd's _prox_row)
    return <floating>_prox_tanh(c, v, _newton_tol(v))


# -- sigmoid: Phi(x) = x log x + (1 - x) log(1 - x) on [0, 1] --------------------------
cdef inline floating sigmoid_sigma(floating p, floating z) noexcept nogil:
    return <floating>bs_sigmoid(z, floating is double)     # as tanh_sigma

cdef inline floating sigmoid_dsigma(floating p, floating z, floating s) noexcept nogil:
    return s * (1 - s)

cdef inline floating sigmoid_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    return <floating>_bernoulli_kl(<double>x, 1.0 - <double>x, <double>z)

cdef inline bint sigmoid_outside(floating p, floating x) noexcept nogil:
    return fabs(x - <floating>0.5) > 0.5

cdef inline double sigmoid_phi(floating p, floating x) noexcept nogil:
    cdef double xd = x
    if x > 1 or x < 0:
        return INFINITY
    return (xd * log(xd) if x > 0 else 0.0) + ((1.0 - xd) * log1p(-xd) if x < 1 else 0.0)

cdef inline double sigmoid_phi_conj(floating p, floating z) noexcept nogil:
    cdef double zd = z
    return (zd if zd > 0 else 0.0) + log1p(exp(-fabs(zd)))

cdef inline floating sigmoid_prox(floating p, double c, floating v) noexcept nogil:
    return <floating>_prox_sigmoid(c, v, _newton_tol(v))


# -- elu (p = alpha in (0, 1]): Phi*(z) = z^2 / 2 (z >= 0), alpha (e^z - 1 - z) (z < 0);
#    Phi(x) = x^2 / 2 (x >= 0), (x + alpha) log(1 + x / alpha) - x on [-alpha, 0) ------
cdef inline floating elu_sigma(floating p, floating z) noexcept nogil:
    return z if z >= 0 else p * _expm1(z)

cdef inline floating elu_dsigma(floating p, floating z, floating s) noexcept nogil:
    return 1 if z > 0 else s + p

cdef inline floating elu_loss(floating p, floating x, floating z, floating s) noexcept nogil:
    # B(x, z) = D_{Phi*}(z, y) with y = Phi'(x) (x = sigma(y)), split by the signs of z and x
    # into sums of non-negative terms; in double (it needs exp and log anyway)
    cdef double a = p, xd = x, zd = z, y, u
    if zd >= 0 and xd >= 0:
        return <floating>(0.5 * (xd - zd) * (xd - zd))
    if xd >= 0:             # z < 0 <= x: alpha (e^z - 1 - z) + x^2 / 2 - x z
        return <floating>(a * (expm1(zd) - zd) + 0.5 * xd * xd - xd * zd)
    u = xd / a              # in [-1, 0)
    if zd >= 0:             # x < 0 <= z: z^2 / 2 - x z + Phi(x)
        return <floating>(0.5 * zd * zd - xd * zd + a * ((1.0 + u) * log1p(u) - u if u > -1 else 1.0))
    if u <= -1:             # x = -alpha: Phi(x) + Phi*(z) - x z = alpha e^z
        return <floating>(a * exp(zd))
    # both negative, y = log(1 + u): (alpha + x)(e^t - 1 - t) with t = z - y
    y = log1p(u)
    return <floating>((a + xd) * (expm1(zd - y) - (zd - y)))

cdef inline bint elu_outside(floating p, floating x) noexcept nogil:
    return x < -p

cdef inline double elu_phi(floating p, floating x) noexcept nogil:
    cdef double xd = x, u = xd / p
    if xd >= 0:
        return 0.5 * xd * xd
    if u < -1:
        return INFINITY
    return p * ((1.0 + u) * log1p(u) - u if u > -1 else 1.0)

cdef inline double elu_phi_conj(floating p, floating z) noexcept nogil:
    cdef double zd = z
    return 0.5 * zd * zd if zd >= 0 else p * (expm1(zd) - zd)

cdef inline floating elu_prox(floating p, double c, floating v) noexcept nogil:
    return v if v >= 0 else <floating>_prox_elu_negative(c, p, v, _newton_tol(v))
