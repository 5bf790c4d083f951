"""Proximal activation functions (Section 3, Definition 1, Example 1 of the paper).

Every activation is a proximal map ``sigma = prox_Psi`` of a proper, convex, lower
semi-continuous function ``Psi``. With ``Phi = 0.5 |.|^2 + Psi`` each activation
provides

* ``sigma(z) = grad Phi*(z)`` (``__call__``),
* ``Phi(x)`` per sample, ``+inf`` outside its domain (``phi``),
* ``Phi*(z)`` per sample (``phi_conj``),
* ``prox_{c Psi}(v)`` for ``c > 0`` (``prox``), used by the auxiliary-variable step,
* the Bregman loss ``B(x, z) = Phi(x) + Phi*(z) - <x, z>`` per sample (eq. 12,
  ``bregman_loss``) and its gradient ``grad_z B(x, z) = sigma(z) - x`` (Lemma 8,
  ``bregman_grad``), with a fused ``bregman_loss_grad`` that does both in one pass.

Arrays are ``(n_samples, n_features)`` with one sample per row; a 1-D array is one
sample. All methods validate their input (dtype, shape, finiteness) and run the
OpenMP kernels of :mod:`bregman_solvers.kernels`.

Examples
--------
>>> import numpy as np
>>> from bregman_solvers import get_activation
>>> relu = get_activation("relu")
>>> z = np.array([[-1.0, 2.0]])
>>> relu(z)
array([[0., 2.]])
>>> relu.bregman_loss(np.array([[0.5, 2.0]]), z)   # 0.5*0.5**2 + 0.5*1
array([0.625])
"""
import numpy as np

from ._kernels import _activations as _k
from ._kernels.activation_table import ACTIVATIONS
from ._validation import check_input, check_n_threads, check_out, check_positive

__all__ = ["Activation", "available", "get_activation", "get_activations"]

# The activations and their parameters come from the kernels' table (one row each)
_ROWS = {row.name: row for row in ACTIVATIONS}

# The set where sigma is the identity map (its derivative is 1 and the unit
# "passes z through"): used for the linear-activation rate of Table 2.
_SEPARABLE = frozenset(name for name, row in _ROWS.items() if row.entrywise)


def available():
    """Names accepted by :func:`get_activation`, in a stable order."""
    return list(_ROWS)


# The regions of activation_table.LINEAR_REGIONS, as boolean masks of z
_LINEAR = {
    "everywhere": lambda z, p: np.ones(z.shape, dtype=bool),
    "z > 0": lambda z, p: z > 0,
    "z > p": lambda z, p: z > p,
    "|z| > p": lambda z, p: np.abs(z) > p,
    "|z| < 1": lambda z, p: np.abs(z) < 1,
    "nowhere": lambda z, p: np.zeros(z.shape, dtype=bool),
}


def _interval(row):
    low = ("(" if row.low_open else "[") + f"{row.low:g}"
    high = "inf)" if row.high is None else f"{row.high:g}" + (")" if row.high_open else "]")
    return f"{low}, {high}"


def _check_param(row, value):
    """The activation's parameter as a float, checked against its interval in the table."""
    value = check_positive(value, row.param, allow_zero=True)
    too_low = value < row.low or (row.low_open and value == row.low)
    too_high = row.high is not None and (value > row.high or (row.high_open and value == row.high))
    if too_low or too_high:
        raise ValueError(f"{row.name} parameter {row.param} must lie in {_interval(row)}, got {value}")
    return value


class Activation:
    """A proximal activation ``sigma = prox_Psi`` with its convex-analysis companions.

    Create instances with :func:`get_activation`. Instances are immutable and
    compare equal when name and parameters agree.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    **params
        The activation's one parameter where it has one, by name (``a`` of
        ``leaky_relu``, ``alpha`` of the soft thresholds and of ``elu``, ...), with its
        default and range from the table in docs/activations.rst.

    Attributes
    ----------
    name : str
    params : dict
        The activation's parameters (empty for parameter-free activations).
    separable : bool
        Whether sigma acts entry by entry (every activation except softmax).
    """

    __slots__ = ("_name", "_param_name", "_param", "_kind")

    def __init__(self, name, **params):
        if not isinstance(name, str) or name not in _ROWS:
            raise ValueError(f"unknown activation {name!r}; available: {', '.join(available())}")
        row = _ROWS[name]
        param_name, default = row.param, row.default
        allowed = set() if param_name is None else {param_name}
        unknown = set(params) - allowed
        if unknown:
            expect = f"only {param_name!r}" if param_name else "no parameters"
            raise ValueError(f"activation {name!r} takes {expect}, got {sorted(unknown)}")
        value = params.get(param_name, default) if param_name else 0.0
        self._name = name
        self._param_name = param_name
        self._param = _check_param(row, value) if param_name else 0.0
        self._kind = _k.KIND_CODES[name]

    # -- metadata ---------------------------------------------------------
    @property
    def name(self):
        return self._name

    @property
    def params(self):
        return {self._param_name: self._param} if self._param_name else {}

    @property
    def kind(self):
        """The integer code of this activation in the low-level kernels."""
        return self._kind

    @property
    def param(self):
        """The kernels' real parameter (0 when there is none)."""
        return self._param

    @property
    def separable(self):
        return self._name in _SEPARABLE

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"get_activation({self._name!r}{args})"

    def __eq__(self, other):
        return isinstance(other, Activation) and (self._name, self._param) == (other._name, other._param)

    def __hash__(self):
        return hash((self._name, self._param))

    def __reduce__(self):
        return (_rebuild, (self._name, self.params))

    def identity_region(self, z):
        """Where sigma acts as the identity up to a shift (slope 1), entry by entry: the
        linear-activation rate of the paper's Table 2 counts these (``z > 0`` for relu;
        nowhere for the smooth activations)."""
        return _LINEAR[_ROWS[self._name].linear](np.asarray(z), self._param)

    # -- helpers ----------------------------------------------------------
    @staticmethod
    def _pair(x, z, check_finite=True):
        x2, x1d = check_input(x, "x", check_finite=check_finite)
        z2, z1d = check_input(z, "z", check_finite=check_finite)
        if x2.shape != z2.shape:
            raise ValueError(
                f"x and z must have the same shape, got x {np.shape(x)} and z {np.shape(z)}"
            )
        dtype = np.result_type(x2.dtype, z2.dtype)
        return x2.astype(dtype, copy=False), z2.astype(dtype, copy=False), x1d and z1d

    @staticmethod
    def _new_or_checked(out, name, shape, dtype, was_1d):
        if out is None:
            return np.empty(shape, dtype=dtype), (out, was_1d)
        return check_out(out, name, shape, dtype), (out, was_1d)

    @staticmethod
    def _result(arr2d, original_out, was_1d):
        if original_out is not None:
            return original_out
        return arr2d[0] if was_1d else arr2d

    @staticmethod
    def _per_sample(values, was_1d):
        return values[0] if was_1d else values

    # -- sigma --------------------------------------------------------------
    def __call__(self, z, out=None, *, n_threads=None, check_finite=True):
        """Evaluate ``sigma(z) = prox_Psi(z)``.

        Parameters
        ----------
        z : array-like of shape (n_samples, n_features) or (n_features,)
            Pre-activations.
        out : ndarray, optional
            Output array of ``z``'s shape and dtype; may be ``z`` itself to
            evaluate in place.
        n_threads : int, optional
            OpenMP threads (default: all cores).
        check_finite : bool, default True
            Refuse NaN or infinite input.

        Returns
        -------
        ndarray
            ``sigma(z)``, of ``z``'s shape and floating dtype.
        """
        z2, was_1d = check_input(z, "z", check_finite=check_finite)
        out2, meta = self._new_or_checked(out, "out", z2.shape, z2.dtype, was_1d)
        _k.sigma(self._kind, self._param, z2, out2, check_n_threads(n_threads, z2.size))
        return self._result(out2, *meta)

    def sigma(self, z, out=None, *, n_threads=None, check_finite=True):
        """Alias of calling the activation: ``sigma(z)``."""
        return self(z, out, n_threads=n_threads, check_finite=check_finite)

    # -- Phi and Phi* -------------------------------------------------------
    def phi(self, x, *, n_threads=None):
        """``Phi(x) = 0.5 |x|^2 + Psi(x)`` per sample; ``+inf`` where x is outside the domain.

        Returns
        -------
        ndarray of shape (n_samples,), or a scalar for a 1-D ``x``.
        """
        x2, was_1d = check_input(x, "x")
        out = np.empty(x2.shape[0], dtype=x2.dtype)
        _k.phi(self._kind, self._param, x2, out, check_n_threads(n_threads, x2.size))
        return self._per_sample(out, was_1d)

    def phi_conj(self, z, *, n_threads=None):
        """The convex conjugate ``Phi*(z)`` per sample (its gradient is ``sigma``).

        Returns
        -------
        ndarray of shape (n_samples,), or a scalar for a 1-D ``z``.
        """
        z2, was_1d = check_input(z, "z")
        out = np.empty(z2.shape[0], dtype=z2.dtype)
        _k.phi_conj(self._kind, self._param, z2, out, check_n_threads(n_threads, z2.size))
        return self._per_sample(out, was_1d)

    # -- prox ---------------------------------------------------------------
    def prox(self, v, c, out=None, *, n_threads=None):
        """``prox_{c Psi}(v) = argmin_x 0.5 |x - v|^2 + c Psi(x)`` for ``c > 0``.

        ``c = 1`` gives ``sigma`` itself. Closed forms where they exist; for tanh
        and sigmoid a safeguarded Newton iteration on ``(1 - c) x + c Phi'(x) = v``,
        and for softmax a safeguarded root search for the simplex multiplier,
        converged to a few ulps.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features) or (n_features,)
        c : float
            Positive multiple of ``Psi``.
        out : ndarray, optional
            Output array; may be ``v`` itself.
        n_threads : int, optional
        """
        c = check_positive(c, "c")
        v2, was_1d = check_input(v, "v")
        out2, meta = self._new_or_checked(out, "out", v2.shape, v2.dtype, was_1d)
        _k.prox(self._kind, self._param, c, v2, out2, check_n_threads(n_threads, v2.size))
        return self._result(out2, *meta)

    def prox_phi(self, v, mu, out=None, *, n_threads=None):
        """``prox_{mu Phi}(v) = prox_{(mu / (1 + mu)) Psi}(v / (1 + mu))`` (Remark 11)."""
        mu = check_positive(mu, "mu")
        v2, was_1d = check_input(v, "v")
        scaled = v2 / (1.0 + mu)
        out2, meta = self._new_or_checked(out, "out", v2.shape, v2.dtype, was_1d)
        _k.prox(self._kind, self._param, mu / (1.0 + mu), scaled, out2, check_n_threads(n_threads, v2.size))
        return self._result(out2, *meta)

    # -- Bregman loss ----------------------------------------------------------
    def bregman_loss(self, x, z, *, n_threads=None):
        """The Bregman loss ``B(x, z) = Phi(x) + Phi*(z) - <x, z>`` per sample (eq. 12).

        ``B >= 0.5 |x - sigma(z)|^2``, with equality to zero exactly when
        ``x = sigma(z)``; ``+inf`` where ``x`` is outside the domain of ``Phi``.
        Evaluated in a cancellation-free form (see :mod:`bregman_solvers.kernels`).

        Returns
        -------
        ndarray of shape (n_samples,), or a scalar for 1-D inputs.
        """
        x2, z2, was_1d = self._pair(x, z)
        out = np.empty(x2.shape[0], dtype=x2.dtype)
        _k.bregman_loss(self._kind, self._param, x2, z2, out, check_n_threads(n_threads, x2.size))
        return self._per_sample(out, was_1d)

    def bregman_grad(self, x, z, out=None, *, n_threads=None):
        """``grad_z B(x, z) = sigma(z) - x`` (Lemma 8): no derivative of sigma is needed."""
        x2, z2, was_1d = self._pair(x, z)
        out2, meta = self._new_or_checked(out, "out", x2.shape, x2.dtype, was_1d)
        _k.bregman_grad(self._kind, self._param, x2, z2, out2, check_n_threads(n_threads, x2.size))
        return self._result(out2, *meta)

    def bregman_loss_grad(self, x, z, grad_out=None, *, n_threads=None):
        """Loss and gradient in one pass over the data.

        Returns
        -------
        loss : ndarray of shape (n_samples,) (a scalar for 1-D inputs)
        grad : ndarray of the shape of ``z``, ``sigma(z) - x``
        """
        x2, z2, was_1d = self._pair(x, z)
        grad2, meta = self._new_or_checked(grad_out, "grad_out", x2.shape, x2.dtype, was_1d)
        loss = np.empty(x2.shape[0], dtype=x2.dtype)
        _k.bregman_loss_grad(self._kind, self._param, x2, z2, grad2, loss, check_n_threads(n_threads, x2.size))
        return self._per_sample(loss, was_1d), self._result(grad2, *meta)


def _rebuild(name, params):
    return Activation(name, **params)


def get_activation(name, **params):
    """Return the proximal activation called ``name``.

    Parameters
    ----------
    name : str or Activation
        One of :func:`available` (docs/activations.rst lists each with its
        parameter and range). An :class:`Activation` is returned as it is.
    **params
        The activation's parameter.

    Raises
    ------
    ValueError
        For an unknown name, an unknown parameter, or a parameter out of range.
    """
    if isinstance(name, Activation):
        if params:
            raise ValueError("parameters cannot be given together with an Activation instance")
        return name
    return Activation(name, **params)


def get_activations(activations, n_layers):
    """One :class:`Activation` per layer from a name (or Activation) for all, or a sequence of them."""
    if isinstance(activations, (str, Activation)):
        activations = [activations] * n_layers
    activations = list(activations)
    if len(activations) != n_layers:
        raise ValueError(f"activations must be one name or a sequence of {n_layers}, got {len(activations)}")
    return [get_activation(a) for a in activations]
