"""Divergence as a non-event for the stochastic lifted solvers: back off and halve the steps.

When a batch's steps blow up (a non-finite parameter or auxiliary variable after its K
steps), the batch's anchor theta^k is restored and the batch retried with halved steps.
When the energy at the start of a batch is non-finite or has grown past a bound (the
previous batch's steps made the parameters explode), the previous batch is undone: its
anchor restored, its auxiliary variables re-initialised by a forward pass from it, and
both batches redone with halved steps. When the undone batch itself starts diverged (the
growth built up over several batches), the one before it is undone too, and so on up to
:attr:`StepSafeguard.DEPTH` batches back; beyond that, the parameters go back to the last
snapshot of healthy parameters (taken every :attr:`StepSafeguard.SNAPSHOT_EVERY` completed
batches whose start energy was within :attr:`StepSafeguard.HEALTHY` times the first one), and
the batches since then are not redone. The halving persists for the rest of the fit
(``history["step_factor"]``, ``history["recoveries"]``); the first recovery of a fit warns
(:class:`~bregman_solvers.exceptions.DivergenceWarning`). Only when the factor falls below
:attr:`StepSafeguard.FLOOR` is :class:`~bregman_solvers.exceptions.DivergenceError` raised.
"""
import warnings
from collections import deque

import numpy as np

from ..exceptions import DivergenceWarning


class StepSafeguard:
    """The state of the back-off during one fit (see the module docstring).

    Parameters
    ----------
    parameters : ndarray
        The network's parameter vector (its shape and dtype for the two anchor buffers).
    enabled : bool
        False: every divergence raises, as before the safeguard (the fits whose state
        cannot be rolled back: Bregman iterations' subgradients).
    """

    #: The start energy of a batch above this multiple of the fit's first batch energy
    #: (at least 1) counts as a divergence: far beyond any decrease-then-noise of training,
    #: long before float32 overflows.
    GROWTH = 1e4
    #: The smallest factor on the steps (20 halvings): below it the fit raises.
    FLOOR = 2.0 ** -20
    #: How many completed batches can be undone, most recent first (each keeps its anchor: a
    #: copy of the parameter vector).
    DEPTH = 4
    #: Completed batches between two snapshots of healthy parameters (one more copy).
    SNAPSHOT_EVERY = 50
    #: A batch is healthy when its start energy is at most this multiple of the first (at least 1).
    HEALTHY = 10.0
    #: What :meth:`undo_previous` returns when it went back to the snapshot (no batch to redo).
    SNAPSHOT = "snapshot"

    def __init__(self, parameters, enabled=True):
        self.enabled = enabled
        self.factor = 1.0
        self.recoveries = 0
        self.reference = None
        self._warned = False
        # theta^k of the current batch (``anchor``) and of the last completed ones: buffers passed
        # between the current slot, the undo history and the free list, never copied
        self.anchor = np.empty_like(parameters)
        self._free = [np.empty_like(parameters) for _ in range(self.DEPTH)]
        self._done = deque()             # (anchor, its weights' scales, batch indices), oldest first
        self._snapshot, self._snapshot_scale = None, None
        self._completed = 0

    def forget(self):
        """Nothing before this point can be undone any more (a new theta arrived from elsewhere)."""
        while self._done:
            self._free.append(self._done.popleft()[0])
        self._snapshot = None

    def bound(self):
        """The start energy above which a batch counts as diverged (None before the first batch)."""
        return None if (self.reference is None or not self.enabled) else self.GROWTH * max(self.reference, 1.0)

    def completed(self, idx, energy, anchor_scale):
        """A batch's steps went through: it becomes the one to undo if the next batch starts diverged
        (nothing to keep when the safeguard is off: every divergence raises)."""
        if not self.enabled:
            return
        if self.reference is None:
            self.reference = energy
        if len(self._done) == self.DEPTH:
            self._free.append(self._done.popleft()[0])
        self._done.append((self.anchor, np.array(anchor_scale, copy=True), idx))
        self._completed += 1
        if self._completed % self.SNAPSHOT_EVERY == 1 and energy <= self.HEALTHY * max(self.reference, 1.0):
            if self._snapshot is None:
                self._snapshot = np.empty_like(self.anchor)
            np.copyto(self._snapshot, self.anchor)
            self._snapshot_scale = np.array(anchor_scale, copy=True)
        self.anchor = self._free.pop()

    def back_off(self, error):
        """Halve the steps after ``error`` (a DivergenceError), or raise it when they reach the floor."""
        if not self.enabled or self.factor / 2 < self.FLOOR:
            raise error
        self.factor /= 2
        self.recoveries += 1
        if not self._warned:
            self._warned = True
            steps = ", ".join(f"{name}={value}" for name, value in error.steps.items())
            warnings.warn(f"a batch diverged with the steps {steps}: the fit backed off to its last finite "
                          f"iterate and continues with the steps halved (factor {self.factor:g} now; "
                          f"history['step_factor'] and history['recoveries'] record it)", DivergenceWarning,
                          stacklevel=7)     # back_off, run, run_epoch, EpochLoop.run, fit, its wrapper

    def undo_previous(self, network, engine, X0, state):
        """Restore the last completed batch's anchor and re-initialise its auxiliary variables from it.

        Returns that batch's indices (to redo); :attr:`SNAPSHOT` when none was left and the
        parameters went back to the snapshot instead (the snapshot is then spent); None when
        neither is left.
        """
        if not self._done:
            if self._snapshot is None:
                return None
            engine.restore_parameters(self._snapshot, self._snapshot_scale)
            engine.normalise_weights()
            self._snapshot = None
            return self.SNAPSHOT
        anchor, scale, idx = self._done.pop()
        engine.restore_parameters(anchor, scale)
        engine.normalise_weights()
        self._free.append(anchor)
        fresh = network.init_state(X0[idx])
        for rows, dst in zip(fresh.hidden, state.hidden):
            dst[idx] = rows
        return idx
