"""Plain NumPy oracles for the activation kernels.

Written from MATH.md's tables, independently of the kernels: the Bregman loss is
evaluated by its definition ``Phi(x) + Phi*(z) - <x, z>`` in extended precision
(``np.longdouble``), the smooth proxes by vectorised bisection to machine precision.
Inputs are converted to float64 first, so a float32 kernel is compared with the
exact answer for its (float32) input.
"""
import numpy as np
from scipy.special import expit, logsumexp, softmax

LD = np.longdouble

# elu's alpha is a power of two: its domain's boundary -alpha is then kept exactly by the convex
# combinations of the property tests ((1 - t)(-alpha) + t(-alpha) rounds to -alpha), as the other
# activations' boundaries (0, 1, -1) are; with alpha = 0.7 the combination can round just outside
PARAMS = {"leaky_relu": 0.2, "soft_threshold": 0.3, "nonneg_soft_threshold": 0.3, "elu": 0.5}


def _f(a):
    return np.asarray(a, dtype=np.float64)


def sigma(name, z, p=None):
    z = _f(z)
    if name == "identity":
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z >= 0, z, p * z)
    if name == "soft_threshold":
        return np.sign(z) * np.maximum(np.abs(z) - p, 0)
    if name == "nonneg_soft_threshold":
        return np.maximum(z - p, 0)
    if name == "hard_tanh":
        return np.clip(z, -1, 1)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return expit(z)
    if name == "softmax":
        return softmax(z, axis=-1)
    if name == "elu":
        return np.where(z >= 0, z, p * np.expm1(np.minimum(z, 0)))
    raise KeyError(name)


def _xlogx(x):
    x = np.asarray(x, dtype=LD)
    out = np.zeros_like(x)
    pos = x > 0
    out[pos] = x[pos] * np.log(x[pos])
    return out


def phi_elementwise(name, x, p=None):
    """Phi entry by entry (longdouble), +inf outside the domain."""
    x = np.asarray(_f(x), dtype=LD)
    half = x * x / 2
    inf = LD(np.inf)
    if name == "identity":
        return half
    if name == "relu":
        return np.where(x >= 0, half, inf)
    if name == "leaky_relu":
        return np.where(x >= 0, half, x * x / (2 * LD(p)))
    if name == "soft_threshold":
        return half + LD(p) * np.abs(x)
    if name == "nonneg_soft_threshold":
        return np.where(x >= 0, half + LD(p) * x, inf)
    if name == "hard_tanh":
        return np.where(np.abs(x) <= 1, half, inf)
    if name == "tanh":
        inside = np.abs(x) <= 1
        xc = np.clip(x, -1, 1)
        return np.where(inside, (_xlogx(1 + xc) + _xlogx(1 - xc)) / 2, inf)
    if name == "sigmoid":
        inside = (x >= 0) & (x <= 1)
        xc = np.clip(x, 0, 1)
        return np.where(inside, _xlogx(xc) + _xlogx(1 - xc), inf)
    if name == "elu":
        # (x + a) log(1 + x / a) - x on [-a, 0), as a (1 + u) log(1 + u) - x with u = x / a
        a = LD(p)
        u = np.clip(x / a, -1, 0)
        return np.where(x >= 0, half, np.where(x >= -a, a * _xlogx(1 + u) - x, inf))
    raise KeyError(name)


def phi(name, x, p=None):
    """Phi per sample (rows), longdouble."""
    x = _f(x)
    if name == "softmax":
        tol = 8 * np.finfo(np.float32).eps * x.shape[-1]
        inside = (x >= 0).all(axis=-1) & (np.abs(x.sum(axis=-1) - 1) <= tol)
        return np.where(inside, _xlogx(x).sum(axis=-1), LD(np.inf))
    return phi_elementwise(name, x, p).sum(axis=-1)


def phi_conj(name, z, p=None):
    """Phi* per sample (rows), longdouble."""
    z = np.asarray(_f(z), dtype=LD)
    if name == "identity":
        e = z * z / 2
    elif name == "relu":
        e = np.maximum(z, 0) ** 2 / 2
    elif name == "leaky_relu":
        e = np.where(z >= 0, z * z / 2, LD(p) * z * z / 2)
    elif name == "soft_threshold":
        e = np.maximum(np.abs(z) - LD(p), 0) ** 2 / 2
    elif name == "nonneg_soft_threshold":
        e = np.maximum(z - LD(p), 0) ** 2 / 2
    elif name == "hard_tanh":
        e = np.where(np.abs(z) <= 1, z * z / 2, np.abs(z) - LD(0.5))
    elif name == "tanh":
        a = np.abs(z)
        e = a + np.log1p(np.exp(-2 * a)) - np.log(LD(2))
    elif name == "sigmoid":
        e = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    elif name == "softmax":
        return logsumexp(_f(z), axis=-1).astype(LD)
    elif name == "elu":
        e = np.where(z >= 0, z * z / 2, LD(p) * (np.expm1(np.minimum(z, 0)) - np.minimum(z, 0)))
    else:
        raise KeyError(name)
    return e.sum(axis=-1)


def bregman_loss(name, x, z, p=None):
    """B(x, z) = Phi(x) + Phi*(z) - <x, z> by its definition, in longdouble."""
    xl = np.asarray(_f(x), dtype=LD)
    zl = np.asarray(_f(z), dtype=LD)
    ph = phi(name, x, p)
    with np.errstate(invalid="ignore"):
        out = ph + phi_conj(name, z, p) - (xl * zl).sum(axis=-1)
    return np.where(np.isinf(ph), np.inf, out).astype(np.float64)


def bregman_grad(name, x, z, p=None):
    return sigma(name, z, p) - _f(x)


def _bisect(fun, lo, hi, iters=2000):
    """Vectorised bisection for increasing ``fun`` on [lo, hi] until the bracket stops shrinking."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(iters):
        mid = lo + (hi - lo) / 2
        stuck = (mid <= lo) | (mid >= hi)
        if stuck.all():
            break
        pos = fun(mid) > 0
        hi = np.where(pos & ~stuck, mid, hi)
        lo = np.where(~pos & ~stuck, mid, lo)
    return lo + (hi - lo) / 2


def prox(name, v, c, p=None):
    """prox_{c Psi}(v): closed forms, or bisection on the optimality equation."""
    v = _f(v)
    if name == "identity":
        return v.copy()
    if name == "relu":
        return np.maximum(v, 0)
    if name == "leaky_relu":
        return np.where(v >= 0, v, v / (1 + c * (1 - p) / p))
    if name == "soft_threshold":
        return np.sign(v) * np.maximum(np.abs(v) - c * p, 0)
    if name == "nonneg_soft_threshold":
        return np.maximum(v - c * p, 0)
    if name == "hard_tanh":
        return np.clip(v, -1, 1)
    if name in ("tanh", "sigmoid"):
        # solve (1 - c) s(y) + c y = v in y = Phi'(x), then x = s(y)
        link = np.tanh if name == "tanh" else expit
        big = np.abs(v) / c + abs(1 - c) / c + 1
        y = _bisect(lambda y: (1 - c) * link(y) + c * y - v, -big, big)
        return link(y)
    if name == "softmax":
        return _prox_softmax(v, c)
    if name == "elu":
        # v < 0: (1 - c) p expm1(y) + c y = v for y = log(1 + x / p) <= 0, then x = p expm1(y)
        big = np.abs(v) / c + abs(1 - c) * p / c + 1
        y = _bisect(lambda y: (1 - c) * p * np.expm1(y) + c * y - np.minimum(v, 0), -big, np.zeros_like(v))
        return np.where(v >= 0, v, p * np.expm1(y))
    raise KeyError(name)


def _prox_softmax(v, c):
    """Per row: x_i = h(v_i - c - mu) with (1 - c) h + c log h = t, sum x = 1 (nested bisection)."""
    v = np.atleast_2d(v)
    w = v - c
    n = v.shape[-1]

    def entries(mu):
        t = w - mu[:, None]
        span = np.abs(t) / c + abs(1 - c) / c + 1
        y = _bisect(lambda y: (1 - c) * np.exp(y) + c * y - t, -span, np.minimum(span, 0.0))
        return np.exp(y)

    wmax = w.max(axis=-1)
    lo = wmax - (1 - c) - 1.0
    hi = wmax + c * np.log(n) + 1.0
    mu = _bisect(lambda m: 1.0 - entries(m).sum(axis=-1), lo, hi, iters=200)
    x = entries(mu)
    return x / x.sum(axis=-1, keepdims=True)


def prox_conj(name, z, p=None):
    """prox_{Psi*}(z) in closed form where Psi* has one (None otherwise)."""
    z = _f(z)
    if name == "identity":
        return np.zeros_like(z)
    if name == "relu":
        return np.minimum(z, 0)
    if name == "leaky_relu":
        return (1 - p) * np.minimum(z, 0)
    if name == "soft_threshold":
        return np.clip(z, -p, p)
    if name == "nonneg_soft_threshold":
        return np.minimum(z, p)
    if name == "hard_tanh":
        return np.sign(z) * np.maximum(np.abs(z) - 1, 0)
    return None


def psi(name, x, p=None):
    """Psi(x) = Phi(x) - |x|^2 / 2 per sample."""
    x = _f(x)
    return phi(name, x, p) - (np.asarray(x, dtype=LD) ** 2).sum(axis=-1) / 2


def project_domain(name, x):
    """Map arbitrary values into the domain of Phi (for test inputs)."""
    x = _f(x)
    if name in ("relu", "nonneg_soft_threshold"):
        return np.abs(x)
    if name in ("hard_tanh", "tanh"):
        return np.tanh(x)
    if name == "sigmoid":
        return expit(x)
    if name == "softmax":
        return softmax(x, axis=-1)
    if name == "elu":
        return np.maximum(x, -PARAMS["elu"])
    return x


def assert_energy_gradients(net, X, Y, state, rng, picks=6, eps=1e-6):
    """Central differences of the lifted energy against ``net.gradients`` in a few random entries of
    every weight, bias and auxiliary variable (float64 networks)."""
    import pytest

    gw, gb, gx = net.gradients(X, Y, state)

    def check(array, grad):
        flat, g = array.reshape(-1), grad.reshape(-1)
        for i in rng.choice(flat.size, min(picks, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = net.energy(X, Y, state).total
            flat[i] = old - eps
            down = net.energy(X, Y, state).total
            flat[i] = old
            assert (up - down) / (2 * eps) == pytest.approx(g[i], rel=1e-5, abs=1e-8)

    for l in range(net.n_layers):
        if net.weights[l].size:
            check(net.weights[l], gw[l])
        check(net.biases[l], gb[l])
    for h, x in enumerate(state.hidden):
        check(x, gx[h])
