"""Divergence as a non-event for the stochastic lifted solvers: back off and halve the steps.

When a batch's steps blow up (a non-finite parameter or auxiliary variable after its K
steps), the batch's anchor theta^k is restored and the batch retried with halved steps.
When the energy at the start of a batch is non-finite or has grown past a bound (the
previous batch's steps made the parameters explode), the previous batch is undone: its
anchor restored, its auxiliary variables re-initialised by a forward pass from it, and
both batches redone with halved steps. When the undone batch itself starts diverged (the
growth built up over several batches), the one before it is undone too, and so on up to
``depth`` batches back. When the undone batch's redo goes through but the same batch starts
diverged again, its anchor was already past saving though its energy was not (parameters that
grew a hundredfold over a few batches while the energy stayed within the bound: a 784^5 relu
autoencoder with ``tau_x`` 0.5): each further diverged start of that batch undoes one batch more
(two, then three, ...). Beyond ``depth``, the parameters go back to the last snapshot of healthy
parameters (taken every ``snapshot_every`` completed batches whose start energy was within
``healthy`` times the first one), and the batches since then are not redone. The halving
persists for the rest of the fit (``history["step_factor"]``, ``history["recoveries"]``); the
first recovery of a fit warns (:class:`~bregman_solvers.exceptions.DivergenceWarning`). Only
when the factor falls below ``floor`` is :class:`~bregman_solvers.exceptions.DivergenceError`
raised. The five numbers are a :class:`Safeguard`'s (``ImplicitSGD(safeguard=Safeguard(...))``).
"""
import numbers
import warnings
from collections import deque

import numpy as np

from .._params import POSITIVE_INT, Interval, validate_params
from ..exceptions import DivergenceWarning

__all__ = ["Safeguard", "StepSafeguard", "GROWTH"]

#: The default :attr:`Safeguard.growth`, also the back-propagation baselines' divergence bound
GROWTH = 1e4


class Safeguard:
    """The settings of the stochastic solvers' divergence safeguard (module docstring):
    ``ImplicitSGD(safeguard=Safeguard(...))``; ``safeguard=True`` is ``Safeguard()``.

    Parameters
    ----------
    growth : float, default 1e4
        A batch whose start energy exceeds this multiple of the fit's first batch energy (at
        least 1) counts as diverged: far beyond any decrease-then-noise of training, long before
        float32 overflows.
    floor : float, default 2^-20
        The smallest factor on the steps (20 halvings): below it the fit raises.
    depth : int, default 4
        How many completed batches can be undone, most recent first (each keeps a copy of the
        parameter vector).
    snapshot_every : int, default 50
        Completed batches between two snapshots of healthy parameters (one more copy).
    healthy : float, default 10
        A batch is healthy (its start may be snapshotted) when its start energy is at most this
        multiple of the first (at least 1).
    """

    _parameter_constraints = {
        "growth": [Interval(numbers.Real, 1, None, "neither")],
        "floor": [Interval(numbers.Real, 0, 1, "neither")],
        "depth": [POSITIVE_INT],
        "snapshot_every": [POSITIVE_INT],
        "healthy": [Interval(numbers.Real, 1, None)],
    }

    def __init__(self, growth=GROWTH, floor=2.0 ** -20, depth=4, snapshot_every=50, healthy=10.0):
        self.growth, self.floor, self.depth = growth, floor, depth
        self.snapshot_every, self.healthy = snapshot_every, healthy
        validate_params(self, self._parameter_constraints)

    def __repr__(self):
        return (f"Safeguard(growth={self.growth!r}, floor={self.floor!r}, depth={self.depth!r}, "
                f"snapshot_every={self.snapshot_every!r}, healthy={self.healthy!r})")

    def __eq__(self, other):
        return isinstance(other, Safeguard) and repr(self) == repr(other)

    __hash__ = None


class StepSafeguard:
    """The state of the back-off during one fit (see the module docstring).

    Parameters
    ----------
    parameters : ndarray
        The network's parameter vector (its shape and dtype for the anchor buffers).
    settings : bool or Safeguard
        True: :class:`Safeguard`'s defaults. False: every divergence raises, as before the
        safeguard (also the fits whose state cannot be rolled back: Bregman iterations'
        subgradients).
    """

    #: What :meth:`undo_previous` returns when it went back to the snapshot (no batch to redo).
    SNAPSHOT = "snapshot"

    def __init__(self, parameters, settings=True):
        self.enabled = settings is not False
        self.settings = settings if isinstance(settings, Safeguard) else Safeguard()
        self.factor = 1.0
        self.recoveries = 0
        self.reference = None
        #: how much the energy's scale has grown since ``reference`` was taken: the penalty
        #: continuation's factor (``ImplicitSGD(penalty_growth=...)``), by which it multiplies
        #: the hidden layers' penalties and so at most the energy
        self.energy_scale = 1.0
        self._warned = False
        # theta^k of the current batch (``anchor``) and of the last completed ones: buffers passed
        # between the current slot, the undo history and the free list, never copied
        self.anchor = np.empty_like(parameters)
        self._free = [np.empty_like(parameters) for _ in range(self.settings.depth)]
        self._done = deque()             # (anchor, its weights' scales, batch indices), oldest first
        self._snapshot, self._snapshot_scale = None, None
        self._completed = 0
        # the batch that last started diverged and how often in a row (until it goes through)
        self._failing, self._streak = None, 0

    def forget(self):
        """Nothing before this point can be undone any more (a new theta arrived from elsewhere)."""
        while self._done:
            self._free.append(self._done.popleft()[0])
        self._snapshot = None
        self._failing, self._streak = None, 0

    def bound(self):
        """The start energy above which a batch counts as diverged (None before the first batch)."""
        if self.reference is None or not self.enabled:
            return None
        return self.settings.growth * self.energy_scale * max(self.reference, 1.0)

    def completed(self, idx, energy, anchor_scale):
        """A batch's steps went through: it becomes the one to undo if the next batch starts diverged
        (nothing to keep when the safeguard is off: every divergence raises)."""
        if not self.enabled:
            return
        if self._failing is not None and np.array_equal(idx, self._failing):
            self._failing, self._streak = None, 0
        if self.reference is None:
            self.reference = energy
        if len(self._done) == self.settings.depth:
            self._free.append(self._done.popleft()[0])
        self._done.append((self.anchor, np.array(anchor_scale, copy=True), idx))
        self._completed += 1
        every, healthy = self.settings.snapshot_every, self.settings.healthy
        if (self._completed - 1) % every == 0 and energy <= healthy * self.energy_scale * max(self.reference, 1.0):
            if self._snapshot is None:
                self._snapshot = np.empty_like(self.anchor)
            np.copyto(self._snapshot, self.anchor)
            self._snapshot_scale = np.array(anchor_scale, copy=True)
        self.anchor = self._free.pop()

    def back_off(self, error):
        """Halve the steps after ``error`` (a DivergenceError), or raise it when they reach the floor."""
        if not self.enabled or self.factor / 2 < self.settings.floor:
            try:
                raise error
            finally:
                # this frame's reference to the error, whose traceback holds the frame, would be a
                # cycle keeping the fit's buffers alive until the garbage collector's next full pass
                error = None
        self.factor /= 2
        self.recoveries += 1
        if not self._warned:
            self._warned = True
            steps = ", ".join(f"{name}={value}" for name, value in error.steps.items())
            warnings.warn(f"a batch diverged with the steps {steps}: the fit backed off to its last finite "
                          f"iterate and continues with the steps halved (factor {self.factor:g} now; "
                          f"history['step_factor'] and history['recoveries'] record it)", DivergenceWarning,
                          stacklevel=7)     # back_off, run, run_epoch, EpochLoop.run, fit, its wrapper

    def undo_previous(self, network, engine, X0, state, failing=None):
        """Restore the anchor of the last completed batch (of the last ``n`` when ``failing``, the
        batch that started diverged, does so for the ``n``-th time in a row) and re-initialise the
        auxiliary variables of the batches undone from it.

        Returns the undone batches' indices, oldest first (to redo before ``failing``);
        :attr:`SNAPSHOT` when fewer were left and the parameters went back to the snapshot instead
        (the snapshot is then spent, and nothing before it can be undone); None when neither is left.
        """
        n_undo = self._count_failure(failing)
        if len(self._done) < n_undo:
            if self._snapshot is None:
                if not self._done:
                    return None
                n_undo = len(self._done)              # as deep as the history goes
            else:
                engine.restore_parameters(self._snapshot, self._snapshot_scale)
                engine.normalise_weights()
                self._snapshot = None
                while self._done:                     # the fit goes on from the snapshot
                    self._free.append(self._done.popleft()[0])
                return self.SNAPSHOT
        undone = [self._done.pop() for _ in range(n_undo)][::-1]
        anchor, scale, _ = undone[0]
        engine.restore_parameters(anchor, scale)
        engine.normalise_weights()
        self._free.extend(anchor for anchor, _, _ in undone)
        batches = [idx for _, _, idx in undone]
        rows = np.concatenate(batches)                # one forward pass for all the undone batches
        fresh = network.init_state(X0[rows])
        for values, dst in zip(fresh.hidden, state.hidden):
            dst[rows] = values
        return batches

    def _count_failure(self, failing):
        """How often in a row ``failing`` has started diverged, this time included (1 without it)."""
        if failing is None:
            return 1
        if self._failing is not None and np.array_equal(failing, self._failing):
            self._streak += 1
        else:
            self._failing, self._streak = failing, 1
        return self._streak
