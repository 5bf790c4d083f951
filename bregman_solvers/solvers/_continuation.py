"""The penalty continuation of the lifted stochastic solvers (``penalty_growth``): the hidden layers'
penalty weights raised epoch by epoch (:class:`PenaltyContinuation`)."""
import numpy as np

from .._params import is_auto
from .._validation import check_real
from ..schedules import Ramp
from ._metric import dense_only

__all__ = ["AUTO_PENALTY_GROWTH", "PenaltyContinuation", "auto_growth", "resolved_growth"]

#: ``penalty_growth="auto"`` on a network with an operator other than a dense layer: the hidden
#: weights 1, 2, 3, 4, then held at 4. LeNet-5 on the full data, 20 epochs: docs/layers.rst,
#: "Follow-ups" (held at 4 on Fashion-MNIST, whose accuracy fell as unbounded weights passed 8)
AUTO_PENALTY_GROWTH = Ramp(1.0, 1.0, 4.0)


def auto_growth(network):
    """What ``penalty_growth="auto"`` stands for on ``network``: :data:`AUTO_PENALTY_GROWTH` for a
    network with a layer other than :class:`~bregman_solvers.operators.Dense` (a convolution,
    pooling, a residual block), 0 (constant weights) for a dense network, where it was not measured."""
    return 0.0 if dense_only(network) else AUTO_PENALTY_GROWTH


def resolved_growth(growth, network):
    """``penalty_growth`` on ``network``: ``"auto"`` as :func:`auto_growth`, anything else as given."""
    return auto_growth(network) if is_auto(growth) else growth


class PenaltyContinuation:
    """:class:`~bregman_solvers.ImplicitSGD`'s ``penalty_growth`` on one network: in epoch ``e`` the
    hidden layers' penalty weights are ``lambda_l * factor(e)`` (their values when the fit began),
    the output layer's stays ``lambda_L``.

    ``factor(e)`` is ``1 + growth * e`` for a number ``growth`` (0: the weights as given), or
    ``growth(e)`` for a schedule (a callable of the epoch, e.g.
    :class:`~bregman_solvers.schedules.Ramp`), which must be finite and positive. The factor
    depends only on the epoch, so a resumed fit uses the same weights as an uninterrupted one.
    This is the quadratic penalty method's continuation (the method of auxiliary coordinates of
    Carreira-Perpinan and Wang raises its penalty the same way): as the weights grow, the lifted
    problem's minimisers approach those of the network's own training problem (MATH.md, the lifted
    energy), while the first epochs keep the loosely coupled layers that learn fast.
    """

    def __init__(self, growth, network):
        self.growth = self.checked(resolved_growth(growth, network))
        self.network = network
        self.base = list(network.lambdas)
        self.factor = 1.0

    @staticmethod
    def checked(growth):
        """``growth`` as given, refused by name unless ``"auto"``, a finite number >= 0 or a schedule
        whose value at epoch 0 is a finite positive number."""
        if callable(growth):
            PenaltyContinuation._checked_factor(growth(0), 0)
            return growth
        return check_real(growth, "penalty_growth", strict=False, accept=("auto",))

    @staticmethod
    def _checked_factor(value, epoch):
        if isinstance(value, (bool, np.bool_)) or not np.isscalar(value) or not np.isreal(value) \
                or not np.isfinite(value) or value <= 0:
            raise ValueError(f"penalty_growth({epoch}) must be a finite positive number, got {value!r}")
        return float(value)

    @property
    def active(self):
        """Whether the weights change from epoch to epoch."""
        return callable(self.growth) or self.growth != 0

    def factor_of(self, epoch):
        """The hidden layers' factor in epoch ``epoch``."""
        if callable(self.growth):
            return self._checked_factor(self.growth(epoch), epoch)
        return 1.0 + self.growth * epoch

    def apply(self, epoch):
        """Set the network's hidden penalty weights for epoch ``epoch``; returns the factor."""
        if self.active:
            self.factor = self.factor_of(epoch)
            lambdas = self.network.lambdas
            lambdas[:-1] = [lam * self.factor for lam in self.base[:-1]]
            # what a checkpoint written during the fit saves (persistence.save_checkpoint): the
            # weights the fit began with, from which a resumed fit grows them again
            self.network._lambdas_of_fit = list(self.base)
        return self.factor

    def restore(self):
        """The weights the fit began with (the network leaves a fit as it came)."""
        if self.active:
            self.network.lambdas[:] = self.base
            self.network.__dict__.pop("_lambdas_of_fit", None)
        self.factor = 1.0
