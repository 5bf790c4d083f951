"""Validation at the door: every public entry point checks its input here.

One dtype policy for the whole package: float32 and float64 are kept as they are,
float16 becomes float32, and every other dtype (integer, bool, complex, object,
strings) is refused with a TypeError. Kernels assume what these helpers establish:
C-contiguous 2-D floating arrays of matching shapes with finite entries.
"""
import numbers

import numpy as np

from ._kernels._openmp import effective_n_threads
from ._runtime import SETTINGS

__all__ = [
    "as_float_dtype",
    "check_input",
    "check_integer",
    "check_out",
    "check_positive",
    "check_real",
    "check_n_threads",
]


def as_float_dtype(dtype, name):
    """Return the computation dtype for ``dtype`` under the package's dtype policy."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or dtype == np.float32:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    raise TypeError(
        f"{name} must have a floating dtype (float32 or float64), got {dtype}; "
        f"convert it explicitly, e.g. {name}.astype(np.float64)"
    )


def _to_array(a, name):
    if isinstance(a, np.ndarray):
        return a
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array-like of numbers: {exc}") from exc
    return arr


def check_input(a, name, dtype=None, check_finite=True):
    """Validate one input array and return ``(array_2d, was_1d)``.

    Parameters
    ----------
    a : array-like
        Input of shape (n_samples, n_features), or (n_features,) for one sample.
    name : str
        The argument's name, used in error messages.
    dtype : numpy dtype, optional
        Cast to this floating dtype (after checking that ``a`` is floating).
    check_finite : bool
        Refuse NaN and infinity.

    Returns
    -------
    array_2d : ndarray
        C-contiguous 2-D array (a view when no copy was needed; never written to).
    was_1d : bool
        Whether the input was a single 1-D sample.
    """
    arr = _to_array(a, name)
    target = as_float_dtype(arr.dtype, name)
    if dtype is not None:
        target = np.dtype(dtype)
    if arr.ndim == 1:
        was_1d = True
        arr = arr.reshape(1, -1)
    elif arr.ndim == 2:
        was_1d = False
    else:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 1-D (one sample), got {arr.ndim}-D "
            f"with shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample and one feature are needed")
    arr = np.ascontiguousarray(arr, dtype=target)
    if check_finite:
        # min and max propagate NaN and expose inf without allocating a mask
        if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(np.isinf(arr).sum())
            raise ValueError(f"{name} must be finite; it has {n_nan} NaN and {n_inf} infinite entries")
    return arr, was_1d


def check_out(out, name, shape, dtype):
    """Validate a user-given output array; return it as a 2-D (or 1-D) view to write into.

    ``shape`` is the 2-D (or 1-D) shape the kernel writes; an ``out`` whose shape is
    that shape with a leading 1 dropped (the 1-D form of one sample) is accepted too.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if out.shape != tuple(shape):
        if len(shape) >= 1 and shape[0] == 1 and out.shape == tuple(shape[1:]):
            return out.reshape(shape)
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    return out


def check_positive(value, name, allow_zero=False):
    """A finite real number > 0 (or >= 0 with ``allow_zero``), returned as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def check_integer(value, name, minimum=1):
    """An integer (not a bool) ``>= minimum``, returned as int."""
    wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {wanted}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def check_real(value, name, minimum=0.0, strict=True, maximum=None, accept=()):
    """A finite real number (not a bool) above ``minimum`` (``>=`` unless ``strict``) and at
    most ``maximum``, returned as float; the strings in ``accept`` are returned as they are."""
    if isinstance(value, str) and value in accept:
        return value
    bound = f"{'>' if strict else '>='} {minimum:g}" + ("" if maximum is None else f" and <= {maximum:g}")
    also = "".join(f" or {a!r}" for a in accept)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number {bound}{also}, got {value!r}")
    value = float(value)
    if (not np.isfinite(value) or value < minimum or (strict and value == minimum)
            or (maximum is not None and value > maximum)):
        raise ValueError(f"{name} must be a finite number {bound}{also}, got {value!r}")
    return value


def check_parameter_vector(network, values, name):
    """A copy of ``values`` in ``network``'s dtype, checked to be a finite flat vector laid out like
    its ``parameter_vector`` (e.g. the momentum's previous parameters)."""
    values = _to_array(values, name)
    size = network.parameter_vector.size
    if values.ndim != 1 or values.shape[0] != size:
        raise ValueError(f"{name} must be a flat vector of {size} parameters (the network's "
                         f"parameter_vector), got shape {values.shape}")
    if values.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite")
    return np.array(values, dtype=network.dtype)


def check_widths(widths):
    """The layer widths of a network: a sequence of at least two positive integers."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise TypeError(f"widths must be a sequence of layer widths, got {type(widths).__name__}")
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list at least the input and output widths, got {widths}")
    for w in widths:
        try:
            check_integer(w, "widths")
        except (TypeError, ValueError):
            raise ValueError(f"widths must be positive integers, got {widths}") from None
    return [int(w) for w in widths]


def check_lambdas(lambdas, n_layers):
    """The penalty weights: one positive finite number, or one per layer."""
    if np.ndim(lambdas) == 0:
        lambdas = [lambdas] * n_layers
    lambdas = list(lambdas)
    if len(lambdas) != n_layers:
        raise ValueError(f"lambdas must be a number or a sequence of {n_layers} numbers, got {len(lambdas)}")
    try:
        return [check_real(lam, "lambdas") for lam in lambdas]
    except (TypeError, ValueError):
        raise ValueError(f"lambdas must be finite and positive, got {lambdas}") from None


def check_n_threads(n_threads, n_entries=None):
    """Resolve ``n_threads`` (None = all cores, -k = all but k-1) into a count >= 1.

    With the default ``None`` and the size of the work in ``n_entries``, small
    problems run on fewer threads (at least ``SETTINGS.min_entries_per_thread`` entries
    each, :mod:`bregman_solvers._runtime`); an explicit count is always honoured. Results do
    not depend on it.
    """
    threads = effective_n_threads(n_threads)
    if n_threads is None and n_entries is not None:
        threads = max(1, min(threads, int(n_entries) // SETTINGS.min_entries_per_thread))
    return threads
