"""Regularisers of the lifted energy (Section 4.1.1-4.1.2 of the paper).

On the parameters (the weights ``W_l``; biases are never regularised):

* variational regularisation ``R(theta)``, applied through its prox in the theta step:
  :class:`L1` (``alpha |W|_1``), :class:`SquaredL2` (``alpha/2 |W|_F^2``), :class:`Nuclear`
  (``alpha |W|_*``, singular value thresholding);
* iterative regularisation by linearised Bregman iterations, :class:`BregmanIteration`:
  a subgradient variable ``v`` with ``v <- v - tau grad`` and ``W = prox_{delta J}(delta v)``,
  for ``J = alpha |.|_1`` (sparse weights) or ``J = alpha |.|_*`` (low rank).

On an auxiliary variable: :class:`CodeL1`, ``alpha |x_code|_1`` on one hidden layer (the
sparse code of the autoencoders), composed into that layer's x-prox.

Each has ``value`` and ``prox`` (pyproximal's protocol), and carries no hidden state:
the Bregman variables live in a separate :class:`BregmanState`.
"""
import numpy as np

from ._validation import check_integer, check_real

__all__ = ["L1", "SquaredL2", "Nuclear", "BregmanIteration", "BregmanState", "CodeL1", "soft_threshold"]


def _alpha(alpha):
    return check_real(alpha, "alpha", strict=False)


def soft_threshold(v, threshold, out=None):
    """``sign(v) max(|v| - threshold, 0)`` (the prox of ``threshold |.|_1``), into ``out`` (may be ``v``).

    Written as ``v - clip(v, -threshold, threshold)``, which stays correct when
    ``out`` is ``v`` itself.
    """
    out = np.empty_like(v) if out is None else out
    clipped = np.clip(v, -threshold, threshold)
    np.subtract(v, clipped, out=out)
    return out


class L1:
    """``alpha |W|_1``; prox = soft thresholding by ``t alpha``."""

    def __init__(self, alpha):
        self.alpha = _alpha(alpha)

    def value(self, w):
        return self.alpha * float(np.abs(w).sum())

    def prox(self, w, t, out=None):
        return soft_threshold(w, t * self.alpha, out)

    def subgradient(self, w):
        return self.alpha * np.sign(w)

    def __repr__(self):
        return f"L1(alpha={self.alpha})"


class SquaredL2:
    """``alpha/2 |W|_F^2`` (weight decay); prox = scaling by ``1 / (1 + t alpha)``."""

    def __init__(self, alpha):
        self.alpha = _alpha(alpha)

    def value(self, w):
        return 0.5 * self.alpha * float(np.vdot(w, w))

    def prox(self, w, t, out=None):
        out = np.empty_like(w) if out is None else out
        np.multiply(w, 1.0 / (1.0 + t * self.alpha), out=out)
        return out

    def subgradient(self, w):
        return self.alpha * w

    def __repr__(self):
        return f"SquaredL2(alpha={self.alpha})"


class Nuclear:
    """``alpha |W|_*`` (sum of singular values); prox = singular value thresholding."""

    def __init__(self, alpha):
        self.alpha = _alpha(alpha)

    def value(self, w):
        return self.alpha * float(np.linalg.svd(w, compute_uv=False).sum())

    def prox(self, w, t, out=None):
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        s = np.maximum(s - t * self.alpha, 0)
        out = np.empty_like(w) if out is None else out
        np.matmul(u * s, vt, out=out, casting="same_kind")
        return out

    def subgradient(self, w):
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        keep = s > 0
        return self.alpha * (u[:, keep] @ vt[keep])

    def __repr__(self):
        return f"Nuclear(alpha={self.alpha})"


class BregmanIteration:
    """Linearised Bregman iterations on the weights (iterative regularisation, Section 4.1.2).

    Keeps a subgradient variable ``v_l`` per layer; a parameter step becomes
    ``v <- v - tau grad`` and ``W = prox_{delta J}(delta v)``. Starting from
    ``v = W / delta + p`` with ``p`` in ``dJ(W)`` reproduces the initial ``W``; the
    iterates then add structure (non-zeros, singular values) gradually, so early
    iterates are sparse or low-rank. With ``J = L1`` the weights are exactly sparse.

    Parameters
    ----------
    penalty : L1 or Nuclear
        The functional ``J``.
    delta : float, default 1.0
        Scaling of the elastic-net-like term ``J + |.|^2 / (2 delta)``.
    """

    def __init__(self, penalty, delta=1.0):
        if not isinstance(penalty, (L1, Nuclear)):
            raise TypeError(f"penalty must be L1 or Nuclear, got {type(penalty).__name__}")
        self.penalty = penalty
        self.delta = check_real(delta, "delta")

    def value(self, w):
        return self.penalty.value(w)

    def init_state(self, weights):
        """The subgradient variables that reproduce ``weights``."""
        return BregmanState([w / self.delta + self.penalty.subgradient(w) for w in weights])

    def step(self, w, grad, tau, v):
        """In place: ``v -= tau grad``; ``w = prox_{delta J}(delta v)``."""
        v -= tau * grad
        self.penalty.prox(self.delta * v, self.delta, out=w)

    def __repr__(self):
        return f"BregmanIteration({self.penalty!r}, delta={self.delta})"


class BregmanState:
    """The subgradient variables ``v_l`` of :class:`BregmanIteration`, one per layer."""

    def __init__(self, v):
        self.v = list(v)


# activations whose Psi is separable with 0 in dPsi(0): there the prox of Psi + alpha|.|
# is the prox of Psi after soft thresholding (exact composition)
_CODE_L1_ACTIVATIONS = {"identity", "relu", "leaky_relu", "soft_threshold", "nonneg_soft_threshold",
                        "hard_tanh", "tanh"}


class CodeL1:
    """``alpha |x_layer|_1`` on the auxiliary variable of one hidden layer (the sparse code).

    Composed into that layer's x-prox: ``prox_{c (Psi + s |.|_1)} = prox_{c Psi} o soft_{c s}``,
    which is exact when ``Psi`` is separable with ``0`` in ``dPsi(0)`` (identity, relu,
    leaky_relu, the soft thresholds, hard_tanh, tanh). For a soft-threshold code it
    simply raises the threshold.

    Parameters
    ----------
    layer : int
        The hidden layer (1 .. L-1) whose auxiliary variable is the code.
    alpha : float
        Weight of the l1 norm (per sample, as the energy is a mean over samples).
    """

    def __init__(self, layer, alpha):
        self.layer = check_integer(layer, "layer (a hidden layer's index)")
        self.alpha = _alpha(alpha)

    def check(self, network):
        if self.layer > network.n_layers - 1:
            raise ValueError(f"layer must be a hidden layer in 1..{network.n_layers - 1}, got {self.layer}")
        name = network.activations[self.layer - 1].name
        if name not in _CODE_L1_ACTIVATIONS:
            raise ValueError(f"CodeL1 needs a separable activation with 0 in dPsi(0) on layer {self.layer}; "
                             f"{name!r} is not one ({sorted(_CODE_L1_ACTIVATIONS)})")
        return self

    def value(self, x):
        """Mean over samples of ``alpha |x_i|_1``."""
        return self.alpha * float(np.abs(x).sum()) / x.shape[0]

    def __repr__(self):
        return f"CodeL1(layer={self.layer}, alpha={self.alpha})"


def check_regulariser(regulariser):
    """A weight regulariser of :mod:`bregman_solvers.regularisers`, or None."""
    if regulariser is None or isinstance(regulariser, (L1, SquaredL2, Nuclear, BregmanIteration)):
        return regulariser
    raise TypeError(f"regulariser must be L1, SquaredL2, Nuclear, BregmanIteration or None, "
                    f"got {type(regulariser).__name__}")


def check_code_regulariser(code_regulariser, network):
    """A :class:`~bregman_solvers.regularisers.CodeL1` that fits ``network``."""
    if not isinstance(code_regulariser, CodeL1):
        raise TypeError(f"code_regulariser must be a CodeL1 or None, got {type(code_regulariser).__name__}")
    return code_regulariser.check(network)
