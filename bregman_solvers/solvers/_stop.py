"""Ctrl-C at a batch boundary: a stop that a fit can resume from exactly.

A ``KeyboardInterrupt`` raised wherever Python happens to be (the default SIGINT handler) can
land in the middle of a batch's steps; a fit then goes back to its last completed epoch and the
batches since are lost. A SIGINT handler that calls :func:`request_stop` instead only asks: a
batch loop running under :meth:`BatchBoundaryStop.watching` (implicit SGD's,
:class:`~bregman_solvers.solvers._batches.AlgorithmOneBatches`) finishes its current batch and
raises :class:`StopAtBatch` there, with everything the fit needs to continue from that batch
(the batches done, their energies and the epoch's steps); anywhere else the handler raises
``KeyboardInterrupt`` itself. The command line installs such a handler
(:mod:`bregman_solvers.cli`).
"""
import math
from contextlib import contextmanager

import numpy as np

__all__ = ["StopAtBatch", "BatchBoundaryStop", "STOP", "request_stop", "check_position"]


class StopAtBatch(KeyboardInterrupt):
    """A batch loop stopped at a batch boundary on request.

    Attributes
    ----------
    batch : int
        The batches of the epoch completed (the epoch's batch list from index ``batch`` on is left).
    energies : list of float
        Those batches' energies before their steps (their mean is the epoch's ``batch_energy``).
    steps : tuple
        The epoch's base steps ``(tau_theta per layer, tau_x per hidden layer, tau or None)``: an
        epoch's ``"auto"`` steps are estimated at its start, and a resumed epoch keeps them.
    """

    def __init__(self, batch, energies, steps):
        super().__init__(f"stopped after batch {batch}")
        self.batch, self.energies, self.steps = int(batch), list(energies), steps


class BatchBoundaryStop:
    """Whether a batch loop is running that stops at its next batch boundary on request."""

    def __init__(self):
        self._watching = 0
        self._requested = False

    @contextmanager
    def watching(self):
        """A batch loop runs in the block: it calls :meth:`check` after every completed batch."""
        self._watching += 1
        try:
            yield self
        finally:
            self._watching -= 1
            if not self._watching:
                self._requested = False

    def request(self):
        """Ask the running batch loop to stop; False when none runs (the caller interrupts itself)."""
        if not self._watching:
            return False
        self._requested = True
        return True

    @property
    def pending(self):
        """Whether a stop was requested that no batch boundary has honoured yet."""
        return self._requested

    def check(self, batch, energies, steps):
        """Raise :class:`StopAtBatch` when a stop was requested (after a completed batch)."""
        if self._requested:
            self._requested = False
            raise StopAtBatch(batch, energies, steps)


#: The process's one stop request (a SIGINT handler runs in the main thread, where the fits run)
STOP = BatchBoundaryStop()


def request_stop():
    """For a SIGINT handler: True when a batch loop will stop at its next batch boundary, False
    when none runs (then raise ``KeyboardInterrupt``)."""
    return STOP.request()


def check_position(position, n_batches, n_layers):
    """The validated ``position`` of an interrupted fit (see :class:`StopAtBatch`) for an epoch of
    ``n_batches`` batches (None: any number): ``{"batch", "energies", "steps"}`` with the steps as
    arrays; None stays None."""
    if position is None:
        return None
    if not isinstance(position, dict) or set(position) != {"batch", "energies", "steps"}:
        raise ValueError(f"position must be a dict with the keys 'batch', 'energies' and 'steps' (a result's "
                         f"or a checkpoint's), got {position!r}")
    batch = position["batch"]
    limit = np.inf if n_batches is None else n_batches
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 0 <= batch <= limit:
        raise ValueError(f"position['batch'] must be an integer in [0, {limit}] (the epoch's batches), "
                         f"got {batch!r}")
    energies = position["energies"]
    if not isinstance(energies, (list, tuple)) or not all(
            isinstance(e, (int, float, np.floating)) and math.isfinite(e) for e in energies) or (
            batch and not energies):
        raise ValueError(f"position['energies'] must be a list of finite numbers (one per batch done), "
                         f"got {energies!r}")
    steps = position["steps"]
    if steps is not None:
        try:
            theta, x, tau = steps
            theta, x = np.asarray(theta, dtype=np.float64), np.asarray(x, dtype=np.float64)
            valid = (theta.shape == (n_layers,) and x.shape == (n_layers - 1,)
                     and np.all(theta > 0) and np.all(x > 0) and (tau is None or float(tau) > 0))
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"position['steps'] must be (tau_theta per layer, tau_x per hidden layer, tau or "
                             f"None) with positive steps for {n_layers} layers, got {steps!r}")
        steps = (theta, x, None if tau is None else float(tau))
    return {"batch": int(batch), "energies": [float(e) for e in energies], "steps": steps}
