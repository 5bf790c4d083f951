"""Step-size schedules and the mini-batch scheduler (seeded shuffling).

A schedule maps the epoch (0-based) to a step size: ``schedule(epoch)``. Solvers
accept a number (a constant schedule) or any callable of the epoch. :class:`Ramp` is a
growing one, for the penalty continuation (:class:`~bregman_solvers.ImplicitSGD`'s
``penalty_growth``).
"""
import numbers

import numpy as np

from ._validation import check_integer, check_real

__all__ = ["Constant", "StepDecay", "InverseTime", "Cosine", "Ramp", "as_schedule", "BatchScheduler"]


def _positive(value, name):
    return check_real(value, name)


class Constant:
    """``value`` at every epoch."""

    def __init__(self, value):
        self.value = _positive(value, "value")

    def __call__(self, epoch):
        return self.value

    def __repr__(self):
        return f"Constant({self.value})"


class StepDecay:
    """``value * factor ** (epoch // every)``: multiply by ``factor`` every ``every`` epochs."""

    def __init__(self, value, factor=0.5, every=10):
        self.value = _positive(value, "value")
        self.factor = _positive(factor, "factor")
        self.every = check_integer(every, "every")

    def __call__(self, epoch):
        return self.value * self.factor ** (epoch // self.every)

    def __repr__(self):
        return f"StepDecay({self.value}, factor={self.factor}, every={self.every})"


class InverseTime:
    """``value / (1 + decay * epoch)``."""

    def __init__(self, value, decay=0.1):
        self.value = _positive(value, "value")
        self.decay = check_real(decay, "decay", strict=False)

    def __call__(self, epoch):
        return self.value / (1.0 + self.decay * epoch)

    def __repr__(self):
        return f"InverseTime({self.value}, decay={self.decay})"


class Cosine:
    """Cosine annealing from ``value`` to ``final`` over ``epochs`` epochs (then ``final``)."""

    def __init__(self, value, epochs, final=0.0):
        self.value = _positive(value, "value")
        self.epochs = check_integer(epochs, "epochs")
        if not 0 <= final <= value:
            raise ValueError(f"final must lie in [0, value], got {final!r}")
        self.final = float(final)

    def __call__(self, epoch):
        frac = min(epoch, self.epochs) / self.epochs
        return self.final + 0.5 * (self.value - self.final) * (1.0 + np.cos(np.pi * frac))

    def __repr__(self):
        return f"Cosine({self.value}, epochs={self.epochs}, final={self.final})"


class Ramp:
    """``min(value + slope * epoch, maximum)``: a linear rise, held at ``maximum`` (default: none).

    ``Ramp(1, 1)`` is 1, 2, 3, ... : the penalty continuation's factor of
    :class:`~bregman_solvers.ImplicitSGD` (``penalty_growth=1``).
    """

    def __init__(self, value=1.0, slope=1.0, maximum=np.inf):
        self.value = _positive(value, "value")
        self.slope = check_real(slope, "slope", strict=False)
        if isinstance(maximum, (bool, np.bool_)) or not isinstance(maximum, numbers.Real) or np.isnan(maximum):
            raise TypeError(f"maximum must be a number (inf: none), got {maximum!r}")
        if maximum < self.value:
            raise ValueError(f"maximum must be at least value ({self.value:g}), got {maximum!r}")
        self.maximum = float(maximum)

    def __call__(self, epoch):
        return min(self.value + self.slope * epoch, self.maximum)

    def __repr__(self):
        cap = "" if self.maximum == np.inf else f", maximum={self.maximum:g}"
        return f"Ramp({self.value:g}, slope={self.slope:g}{cap})"


def as_schedule(value, name):
    """A number becomes :class:`Constant`; a callable is used as it is (and checked at epoch 0)."""
    if callable(value):
        first = value(0)
        _positive(first, f"{name}(0)")
        return value
    try:
        return Constant(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive number or a schedule (callable of the epoch), "
                         f"got {value!r}") from None


class BatchScheduler:
    """Splits ``n_samples`` indices into mini-batches, reshuffled every epoch.

    The permutation of epoch ``e`` depends only on ``(random_state, e)``, so a fit
    resumed at epoch ``e`` sees the same batches as an uninterrupted one.

    Parameters
    ----------
    n_samples : int
    batch_size : int
        Clipped to ``n_samples``.
    shuffle : bool, default True
    drop_last : bool, default False
        Drop a final batch smaller than ``batch_size``. Otherwise, when ``batch_size`` does not
        divide ``n_samples``, the epoch is split into ``ceil(n_samples / batch_size)`` batches
        whose sizes differ by at most one (426 samples at 100: 86, 85, 85, 85, 85, not four of
        100 and one of 26): a batch's step does not shrink with its size (the steps are per
        sample, MATH.md), so a small last batch takes a full step on a noisy gradient; on
        scikit-learn's breast cancer set that last batch wrecked a trained classifier at the end
        of an epoch (test accuracy 0.70-0.73 on one seed in ten) and the balanced batches did not.
    random_state : int or None
        Seed; None draws one (so that epochs still differ from each other).
    """

    def __init__(self, n_samples, batch_size, shuffle=True, drop_last=False, random_state=None):
        for value, name in ((n_samples, "n_samples"), (batch_size, "batch_size")):
            check_integer(value, name)
        self.n_samples = int(n_samples)
        self.batch_size = min(int(batch_size), self.n_samples)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if random_state is None:
            random_state = int(np.random.default_rng().integers(2**63 - 1))
        if isinstance(random_state, np.random.Generator):
            random_state = int(random_state.integers(2**63 - 1))
        self.seed = int(random_state)

    def __len__(self):
        full, rest = divmod(self.n_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, epoch):
        """The list of index arrays (sorted within each batch) of epoch ``epoch``."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, int(epoch)]).permutation(self.n_samples)
        else:
            order = np.arange(self.n_samples)
        if self.drop_last or self.n_samples % self.batch_size == 0:
            batches = [order[i:i + self.batch_size] for i in range(0, self.n_samples, self.batch_size)]
            if self.drop_last and len(batches[-1]) < self.batch_size:
                batches.pop()
        else:
            batches = np.array_split(order, len(self))     # balanced: sizes differ by at most one
        # sorted indices make the gathers and scatters walk memory forwards
        return [np.sort(b) for b in batches]
