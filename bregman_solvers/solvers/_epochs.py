"""The epoch loop shared by the stochastic solvers and the back-propagation baselines.

It owns what happens around the epochs: the per-epoch history (energy, losses,
validation metrics, code sparsity, linear-activation rates, consistency, seconds),
the progress bar, callbacks, early stopping and the divergence error.
"""
import sys
import warnings
from contextlib import nullcontext

import numpy as np

from ..network import LiftedState
from ..regularisers import BregmanIteration
from .._validation import check_integer
from ..exceptions import DivergenceError
from ._base import FitResult, LiftedSolver, Timer
from ._stop import STOP, StopAtBatch

#: Rows per chunk when a metric needs a pass over a whole data set.
CHUNK = 4096
#: Early stopping counts an epoch as an improvement only when the monitored loss
#: drops by more than this fraction.
EARLY_STOPPING_MIN_DELTA = 1e-4
#: Samples used for the linear-activation rates and the consistency.
METRIC_SAMPLES = 2000


def _is_one_hot(target):
    return bool(np.all((target == 0) | (target == 1)) and np.all(target.sum(axis=1) == 1))


def evaluate_network(network, X, target, code_layer=None):
    """Output loss, accuracy (one-hot targets), reconstruction MSE and code sparsity of a forward pass.

    Computed in chunks of :data:`CHUNK` rows, so memory stays bounded for any data size.
    The loss is the output layer's Bregman loss ``B_L(y, z_L)`` averaged over samples:
    the squared error for an identity output, the cross-entropy for softmax.
    """
    n = X.shape[0]
    one_hot = _is_one_hot(target)
    loss = correct = sq = zeros = code_entries = 0.0
    last = network.activations[-1]
    for a in range(0, n, CHUNK):
        xb, yb = X[a:a + CHUNK], target[a:a + CHUNK]
        out, (zs, xs) = network.forward(xb, return_hidden=True)
        if np.isfinite(zs[-1]).all():
            loss += float(last.bregman_loss(yb, zs[-1], n_threads=network._threads(yb)).sum())
        else:
            loss = np.inf          # overflowed parameters: the loss says so (a fit then raises its divergence)
        if one_hot:
            correct += float(np.sum(out.argmax(axis=1) == yb.argmax(axis=1)))
        sq += float(np.sum((out.astype(np.float64) - yb) ** 2))
        if code_layer is not None:
            code = xs[code_layer - 1]
            zeros += float(np.count_nonzero(code == 0))
            code_entries += code.size
    metrics = {"loss": loss / n, "mse": sq / target.size}
    if one_hot:
        metrics["accuracy"] = correct / n
    if code_layer is not None:
        metrics["code_sparsity"] = zeros / code_entries
    return metrics


def batched_energy(network, X0, target, state, regularisation=0.0):
    """The full-data lifted energy, evaluated in chunks (bounded memory)."""
    n = X0.shape[0]
    total = np.zeros(network.n_layers)
    for a in range(0, n, CHUNK):
        part = LiftedState([h[a:a + CHUNK] for h in state.hidden])
        rows = min(CHUNK, n - a)
        total += network.energy(X0[a:a + CHUNK], target[a:a + CHUNK], part).per_layer * rows
    return total / n


class _NoProgress:
    def update(self, n=1):
        pass

    def close(self):
        pass


class _EpochLine(_NoProgress):
    """Progress for a log (stderr not a terminal, or no tqdm): one line per epoch, when it ends,
    instead of a bar's carriage-return updates."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done, self.timer = total, desc, 0, Timer()

    def update(self, n=1):
        self.done += n

    def close(self):
        print(f"{self.desc}: {self.done}/{self.total} batches in {self.timer():.1f} s", file=sys.stderr, flush=True)


def divergence_error(steps, epoch, lifted=True, at_start=False):
    """The :class:`~bregman_solvers.exceptions.DivergenceError` of the step sizes ``steps``
    (``(tau_theta, tau_x, tau)``, or ``(learning_rate, None, tau)`` for the baselines)."""
    names = ("tau_theta", "tau_x", "tau") if lifted else ("learning_rate", "", "tau")
    named = {n: s for n, s in zip(names, steps) if s is not None}
    described = ", ".join(f"{n}={s}" for n, s in named.items())
    what = "lifted energy became non-finite" if lifted else (
        "loss or its gradient became non-finite (or the loss grew 1e4-fold)")
    return DivergenceError(
        f"the {what}: the steps are too large ({described}); the network keeps "
        f"the parameters of the last finite iterate. Reduce the step sizes.", named, epoch, at_start)


class EpochLoop:
    """Runs ``run_epoch(epoch, progress)`` for every epoch and keeps the history.

    ``state`` is None for the back-propagation baselines, and for a lifted solver whose
    auxiliary variables live elsewhere (:mod:`bregman_solvers.distributed`), which reports the
    energy through :attr:`extra`; ``X0`` and ``target`` are None too when the training data
    live elsewhere (no training metrics then, only the validation metrics).
    """

    def __init__(self, solver, network, X0, target, state, bregman_state=None):
        self.solver = solver
        self.network = network
        self.X0, self.target, self.state = X0, target, state
        reg = getattr(solver, "regulariser", None)
        if isinstance(reg, BregmanIteration) and bregman_state is None:
            bregman_state = reg.init_state(network.weights)
        self.bregman_state = bregman_state
        code_reg = getattr(solver, "code_regulariser", None)
        self.code_layer = solver.code_layer if solver.code_layer is not None else (
            code_reg.layer if code_reg is not None else None)
        if self.code_layer is not None and not 1 <= self.code_layer <= network.n_layers - 1:
            raise ValueError(f"code_layer must be a hidden layer in 1..{network.n_layers - 1}, got {self.code_layer}")
        self.validation = None
        if solver.validation_data is not None:
            try:
                Xv, Yv = solver.validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X, target)") from None
            self.validation = network.check_data(Xv, Yv)
        if solver.early_stopping:
            check_integer(solver.patience, "patience")
        #: Per-epoch entries a solver adds to the history (set during the epoch, recorded after it)
        self.extra = {}
        #: Solver state the result carries besides the network (name -> a function returning it
        #: after a completed epoch), e.g. the momentum's previous parameters: what a resume needs
        self.result_fields = {}
        #: Whether the solver trains the lifted problem (else a back-propagation baseline)
        self.lifted = isinstance(solver, LiftedSolver)
        self.epoch = None
        #: The first batch loss of a back-propagation fit (its divergence bound, see ``_BPSolver._step``)
        self.first_loss = None
        #: Whether ``run_epoch`` stops at a batch boundary on request (``StopAtBatch``) and the fit can
        #: resume there (implicit SGD's ``position``); otherwise an interrupt goes back to the last epoch
        self.resumable_batches = False

    def raise_divergence(self, steps, at_start=False):
        """Raise :func:`divergence_error` for the step sizes ``steps`` in the current epoch."""
        raise divergence_error(steps, self.epoch, self.lifted, at_start)

    def _record(self, history, epoch, seconds, batch_energy):
        net, solver = self.network, self.solver
        history["epoch"].append(epoch + 1)
        history["seconds"].append(seconds)
        history["batch_energy"].append(batch_energy)
        for key, value in self.extra.items():
            history.setdefault(key, []).append(value)
        if self.validation is not None:
            val = evaluate_network(net, *self.validation, self.code_layer)
            for key, value in val.items():
                history.setdefault(f"val_{key}", []).append(value)
        if self.lifted and self.code_layer is not None and self.state is not None:
            # the sparsity of the lifted code itself: a count over the state, no forward pass
            code = self.state.hidden[self.code_layer - 1]
            history["lifted_code_sparsity"].append(float(np.count_nonzero(code == 0)) / code.size)
        if not getattr(solver, "track_energy", True) or self.X0 is None:
            return      # training alone (or data elsewhere): no forward pass over the training data
        # the auxiliary variables held elsewhere (state None): the solver reports the energy itself
        with_state = self.lifted and self.state is not None
        if with_state:
            per_layer = batched_energy(net, self.X0, self.target, self.state)
            history["energy"].append(float(per_layer.sum()))
            history["per_layer"].append(per_layer)
        train = evaluate_network(net, self.X0, self.target, self.code_layer)
        for key, value in train.items():
            history.setdefault(f"train_{key}", []).append(value)
        m = min(METRIC_SAMPLES, self.X0.shape[0])
        history["linear_rates"].append(net.linear_activation_rate(self.X0[:m]))
        if with_state:
            part = LiftedState([h[:m] for h in self.state.hidden])
            history["consistency"].append(net.consistency(self.X0[:m], part))

    @staticmethod
    def _losses_finite(history):
        """Whether the epoch's recorded training and validation losses (where recorded) are finite."""
        return all(np.isfinite(history[key][-1]) for key in ("train_loss", "val_loss") if history.get(key))

    def _monitor(self, history):
        for key in ("val_loss", "train_loss", "energy", "batch_energy"):
            if history.get(key):
                return history[key][-1]
        return np.inf

    def run(self, run_epoch, n_batches, initial_epoch, epochs):
        check_integer(initial_epoch, "initial_epoch", minimum=0)
        history = {key: [] for key in ("epoch", "seconds", "batch_energy", "energy", "per_layer",
                                       "linear_rates", "consistency", "lifted_code_sparsity")}
        # a resumable fit watches for a stop request from its first epoch to its last: one that comes
        # between the batch loops (an epoch's start, its evaluation) stops at the next batch boundary
        # or, after the last batch, keeps the whole fit (see _kept_at_end); never half a batch
        with STOP.watching() if self.resumable_batches else nullcontext():
            result = self._epochs(history, run_epoch, n_batches, initial_epoch, epochs)
            if self.resumable_batches and STOP.pending and not result.get("interrupted"):
                self._kept_at_end(result)
        return result

    def _epochs(self, history, run_epoch, n_batches, initial_epoch, epochs):
        solver, net = self.solver, self.network
        timer = Timer()
        best, best_params, waited = np.inf, None, 0
        converged, message = False, "completed all epochs"
        done = initial_epoch
        # the parameters of the last completed epoch: what an interrupted fit leaves
        completed = net.parameter_vector.copy()
        for epoch in range(initial_epoch, epochs):
            self.epoch = epoch
            progress = _progress(solver.verbose, n_batches, f"epoch {epoch + 1}/{epochs}")
            start = timer()
            np.copyto(completed, net.parameter_vector)
            try:
                batch_energy = run_epoch(epoch, progress)
            except StopAtBatch as stop:
                if self.resumable_batches:
                    return self._stopped(history, epoch, stop)
                return self._rolled_back(history, epoch, completed, "")
            except KeyboardInterrupt:
                return self._rolled_back(history, epoch, completed, "")
            finally:
                progress.close()
            recorded = {key: len(values) for key, values in history.items()}
            try:
                self._record(history, epoch, timer() - start, batch_energy)
            except KeyboardInterrupt:
                # during the end-of-epoch evaluation: the epoch's batches are done, its record is not
                for key in list(history):
                    if key in recorded:
                        del history[key][recorded[key]:]
                    else:
                        del history[key]
                if self.resumable_batches:
                    return self._stopped(history, epoch, StopAtBatch(n_batches, [batch_energy], None))
                return self._rolled_back(history, epoch, completed, "'s evaluation")
            if not self.lifted and not self._losses_finite(history):
                # back-propagation's last steps left finite parameters whose loss overflows (the next
                # batch's would catch it; after the last batch only the metrics can): back to the epoch's start
                np.copyto(net.parameter_vector, completed)
                raise divergence_error((solver.learning_rate, None, getattr(solver, "tau", None)), epoch, False)
            done = epoch + 1
            result = self._result(history, done, False, "")
            if solver.callback is not None and solver.callback(result):
                message = "stopped by the callback"
                break
            if solver.early_stopping:
                current = self._monitor(history)
                if best_params is None or current < best - EARLY_STOPPING_MIN_DELTA * abs(best):
                    best, best_params, waited = current, net.get_parameters(), 0
                else:
                    waited += 1
                    if waited >= solver.patience:
                        net.set_parameters(*best_params)
                        converged, message = True, f"early stopping: no improvement for {solver.patience} epochs"
                        break
        return self._result(history, done, converged, message)

    def _kept_at_end(self, result):
        """A stop requested after the last batch (during the last evaluation or callback): the fit is
        whole; it is marked interrupted and shown to the callback once more (a checkpoint of its end,
        from which a resume trains no further epoch)."""
        result["interrupted"], result["position"] = True, None
        if self.solver.callback is not None:
            self.solver.callback(result)

    def _rolled_back(self, history, epoch, completed, during):
        """Ctrl-C anywhere in an epoch: back to the last completed epoch (the weights are explicit)."""
        np.copyto(self.network.parameter_vector, completed)
        message = (f"interrupted (KeyboardInterrupt) during epoch {epoch + 1}{during}: the network has the "
                   f"parameters of epoch {epoch}; the auxiliary variables hold the interrupted epoch's")
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        # the solver state belongs to the interrupted epoch, not to the parameters restored
        result = self._result(history, epoch, False, message, with_fields=False)
        result["interrupted"], result["position"] = True, None
        return result

    def _stopped(self, history, epoch, stop):
        """A stop at a batch boundary of epoch ``epoch``: the parameters and auxiliary variables after
        ``stop.batch`` batches, and ``result.position`` to continue from there exactly (the callback
        sees this result too, e.g. to write a checkpoint)."""
        message = (f"interrupted (KeyboardInterrupt) after batch {stop.batch} of epoch {epoch + 1}: the network "
                   f"has the parameters after that batch; the result's position resumes the fit there")
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        result = self._result(history, epoch, False, message)
        steps = None if stop.steps is None else (
            [float(t) for t in stop.steps[0]], [float(t) for t in stop.steps[1]],
            None if stop.steps[2] is None else float(stop.steps[2]))
        result["interrupted"] = True
        result["position"] = {"batch": stop.batch, "energies": [float(e) for e in stop.energies], "steps": steps}
        if self.solver.callback is not None:
            self.solver.callback(result)
        return result

    def _result(self, history, epoch, converged, message, with_fields=True):
        energy = history["energy"][-1] if history["energy"] else (
            history["batch_energy"][-1] if history["batch_energy"] else np.nan)
        fields = {name: (get() if with_fields else None) for name, get in self.result_fields.items()}
        return FitResult(network=self.network, state=self.state, energy=energy, n_iter=epoch, epoch=epoch,
                         converged=converged, success=True, message=message, history=history,
                         bregman_state=self.bregman_state, **fields)


def _progress(verbose, total, desc):
    """A tqdm bar over the batches on a terminal; one line per epoch in a log or without tqdm."""
    if not verbose:
        return _NoProgress()
    if not sys.stderr.isatty():
        return _EpochLine(total, desc)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return _EpochLine(total, desc)
    return tqdm(total=total, desc=desc, unit="batch", leave=False)
