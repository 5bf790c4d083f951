"""What a lifted network's fit keeps besides its parameters: the auxiliary variables
(:class:`LiftedState`), the energy's terms (:class:`EnergyTerms`) and the buffers of one
batch size (``_Workspace``)."""
import numpy as np

__all__ = ["LiftedState", "EnergyTerms"]


class LiftedState:
    """Auxiliary variables of a lifted network: one array ``X_l`` per hidden layer l = 1, ..., L-1.

    Attributes
    ----------
    hidden : list of ndarray
        ``hidden[l - 1]`` is ``X_l`` of shape (n_samples, n_l).
    """

    def __init__(self, hidden):
        self.hidden = list(hidden)

    @property
    def n_samples(self):
        return self.hidden[0].shape[0] if self.hidden else 0

    def copy(self):
        return LiftedState([h.copy() for h in self.hidden])

    def __repr__(self):
        shapes = ", ".join(str(h.shape) for h in self.hidden)
        return f"LiftedState([{shapes}])"


class EnergyTerms:
    """The lifted energy: ``total`` and the per-layer terms ``lambda_l * mean_i P_l``."""

    def __init__(self, per_layer, regularisation=0.0):
        self.per_layer = np.asarray(per_layer, dtype=np.float64)
        self.regularisation = float(regularisation)
        self.total = float(self.per_layer.sum() + self.regularisation)

    def __float__(self):
        return self.total

    def __repr__(self):
        return f"EnergyTerms(total={self.total:.6g}, per_layer={np.array2string(self.per_layer, precision=4)})"


class _Workspace:
    """Buffers for one batch size (samples as rows): allocated once and reused by every
    iteration. ``loss`` holds each sample's penalty, one array per layer."""

    def __init__(self, network, n_samples):
        dt = network.dtype
        widths = network.widths
        self.n_samples = n_samples
        self.z = [np.empty((n_samples, w), dt) for w in widths[1:]]
        self.residual = [np.empty((n_samples, w), dt) for w in widths[1:]]
        self.loss = [np.empty(n_samples, dt) for w in widths[1:]]
        self.v = [np.empty((n_samples, w), dt) for w in widths[1:-1]]
        self.grad_w = [np.empty(op.weight_shape, dt) for op in network.layers]
        self.grad_b = [np.empty(op.bias_shape, dt) for op in network.layers]
