"""Low-level kernels for building lifted models by hand.

These are the nogil, OpenMP-parallel (over samples) kernels that the activations,
networks and solvers run on, with explicit output arrays and ``n_threads`` last, as
in scikit-learn's Cython losses. Use them in hot loops where the validated methods
of :class:`bregman_solvers.activations.Activation` would allocate or re-check.

What is checked here, cheaply (constant time): array types and dtypes (all arrays
of one call share float32 or float64), C-contiguity, shapes, writeability of the
outputs, the activation kind and parameter. What is **not** checked (it costs a
pass over the data): finiteness, and whether ``x`` lies in the domain of ``Phi``
(outside it the losses are ``+inf``). NaN in gives NaN out; nothing crashes.

``kind`` is an activation name (see :func:`bregman_solvers.activations.available`)
or an :class:`~bregman_solvers.activations.Activation`; ``param`` is that
activation's parameter (``a`` of leaky_relu, ``alpha`` of the soft thresholds)
and is taken from the Activation when one is given.

Examples
--------
>>> import numpy as np
>>> from bregman_solvers import kernels
>>> z = np.array([[-1.0, 0.5, 3.0]])
>>> x = np.array([[0.0, 1.0, 3.0]])
>>> grad, loss = np.empty_like(z), np.empty(1)
>>> kernels.bregman_loss_grad("relu", x, z, grad, loss)
>>> grad, loss
(array([[ 0. , -0.5,  0. ]]), array([0.125]))
"""
import numpy as np

from ._kernels import _activations as _k
from ._kernels._openmp import effective_n_threads, max_threads, openmp_enabled
from ._validation import check_n_threads

__all__ = [
    "KIND_CODES",
    "sigma",
    "phi",
    "phi_conj",
    "prox",
    "bregman_loss",
    "bregman_grad",
    "bregman_loss_grad",
    "effective_n_threads",
    "max_threads",
    "openmp_enabled",
    "simd_level",
]

#: Activation name -> integer code used inside the kernels.
KIND_CODES = dict(_k.KIND_CODES)


#: The names of :func:`simd_level`'s levels.
SIMD_LEVELS = {0: "baseline", 1: "avx2"}


def simd_level(level=None):
    """The instruction set of the tanh and sigmoid row loops (their ``sigma`` and prox).

    The library is compiled for the baseline instruction set of its platform; the
    tanh and sigmoid loops also exist as AVX2 copies (eight float lanes instead of
    four), picked at run time where the CPU has AVX2. The copies are compiled without
    FMA, so both give the same results bit for bit; only the speed differs (about
    2.5x for these loops). Every other kernel is the baseline's.

    Parameters
    ----------
    level : {None, 0, 1, "baseline", "avx2"}
        None reads the level in use; a value requests one (the CPU may grant less:
        ``"avx2"`` on a CPU without AVX2 runs the baseline). For benchmarks and
        tests that compare the two; it applies to the whole process.

    Returns
    -------
    str
        The level in use, ``"baseline"`` or ``"avx2"``.
    """
    from ._kernels import _lifted, _steps

    modules = (_k, _lifted, _steps)
    if level is None:
        return SIMD_LEVELS[min(module._simd_level() for module in modules)]
    codes = {name: code for code, name in SIMD_LEVELS.items()}
    if isinstance(level, str) and level in codes:
        level = codes[level]
    elif isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in SIMD_LEVELS:
        raise ValueError(f"level must be one of None, 0, 1, 'baseline', 'avx2'; got {level!r}")
    return SIMD_LEVELS[min(module._simd_level(int(level)) for module in modules)]


def _resolve_kind(kind, param):
    from .activations import Activation, get_activation

    if isinstance(kind, Activation):
        return kind.kind, kind.param
    if isinstance(kind, str):
        act = get_activation(kind, **_param_kwargs(kind, param))
        return act.kind, act.param
    raise TypeError(f"kind must be an activation name or an Activation, got {type(kind).__name__}")


def _param_kwargs(name, param):
    from .activations import _ROWS

    if name not in _ROWS:
        raise ValueError(f"unknown activation {name!r}; available: {', '.join(_ROWS)}")
    param_name = _ROWS[name].param
    if param_name is None or param is None:
        return {}
    return {param_name: param}


def _check(arr, name, ndim, dtype=None, writeable=False):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of the inputs ({dtype}), got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {arr.ndim}-D with shape {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writeable and not arr.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return arr


def _threads(n_threads, arr):
    return check_n_threads(n_threads, arr.size)


def sigma(kind, z, out, *, param=None, n_threads=None):
    """``out = sigma(z)`` row by row; ``out`` may be ``z`` (in place).

    Parameters
    ----------
    kind : str or Activation
    z : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    out : ndarray of the shape and dtype of ``z``
    param : float, optional
        The activation's parameter (ignored when ``kind`` is an Activation).
    n_threads : int, optional
        OpenMP threads; default all cores.
    """
    code, p = _resolve_kind(kind, param)
    _check(z, "z", 2)
    _check(out, "out", 2, z.dtype, writeable=True)
    _k.sigma(code, p, z, out, _threads(n_threads, z))


def phi(kind, x, out, *, param=None, n_threads=None):
    """``out[i] = Phi(x_i) = 0.5 |x_i|^2 + Psi(x_i)``, ``+inf`` outside the domain.

    ``out`` has shape (n_samples,) and the dtype of ``x``.
    """
    code, p = _resolve_kind(kind, param)
    _check(x, "x", 2)
    _check(out, "out", 1, x.dtype, writeable=True)
    _k.phi(code, p, x, out, _threads(n_threads, x))


def phi_conj(kind, z, out, *, param=None, n_threads=None):
    """``out[i] = Phi*(z_i)``, the convex conjugate, whose gradient is ``sigma``."""
    code, p = _resolve_kind(kind, param)
    _check(z, "z", 2)
    _check(out, "out", 1, z.dtype, writeable=True)
    _k.phi_conj(code, p, z, out, _threads(n_threads, z))


def prox(kind, v, c, out, *, param=None, n_threads=None):
    """``out = prox_{c Psi}(v)`` for ``c > 0``; ``out`` may be ``v``.

    Closed forms for the piecewise-linear activations; safeguarded Newton (tanh,
    sigmoid) and a safeguarded search for the simplex multiplier (softmax).
    """
    code, p = _resolve_kind(kind, param)
    _check(v, "v", 2)
    _check(out, "out", 2, v.dtype, writeable=True)
    _k.prox(code, p, float(c), v, out, _threads(n_threads, v))


def bregman_loss(kind, x, z, out, *, param=None, n_threads=None):
    """``out[i] = B(x_i, z_i) = Phi(x_i) + Phi*(z_i) - <x_i, z_i>`` (eq. 12)."""
    code, p = _resolve_kind(kind, param)
    _check(x, "x", 2)
    _check(z, "z", 2, x.dtype)
    _check(out, "out", 1, x.dtype, writeable=True)
    _k.bregman_loss(code, p, x, z, out, _threads(n_threads, x))


def bregman_grad(kind, x, z, out, *, param=None, n_threads=None):
    """``out = grad_z B(x, z) = sigma(z) - x`` (Lemma 8)."""
    code, p = _resolve_kind(kind, param)
    _check(x, "x", 2)
    _check(z, "z", 2, x.dtype)
    _check(out, "out", 2, x.dtype, writeable=True)
    _k.bregman_grad(code, p, x, z, out, _threads(n_threads, x))


def bregman_loss_grad(kind, x, z, grad_out, loss_out, *, param=None, n_threads=None):
    """Fused: ``grad_out = sigma(z) - x`` and ``loss_out[i] = B(x_i, z_i)`` in one pass."""
    code, p = _resolve_kind(kind, param)
    _check(x, "x", 2)
    _check(z, "z", 2, x.dtype)
    _check(grad_out, "grad_out", 2, x.dtype, writeable=True)
    _check(loss_out, "loss_out", 1, x.dtype, writeable=True)
    _k.bregman_loss_grad(code, p, x, z, grad_out, loss_out, _threads(n_threads, x))
