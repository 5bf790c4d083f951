"""How the command line keeps its word on Ctrl-C (:mod:`bregman_solvers.cli`).

During implicit SGD's batches Ctrl-C only asks the fit to stop: it finishes its current batch, and
its callback writes a checkpoint of that point (parameters, auxiliary variables, momentum, and the
position in the epoch), from which ``--resume`` continues exactly like the uninterrupted run; the fit
listens from its first epoch to its last, so an interrupt at an epoch's start or during its
evaluation stops before the next batch the same way, and one after the last batch keeps the whole
fit (:meth:`bregman_solvers.solvers._epochs.EpochLoop.run`). Elsewhere
(another solver's batches, loading, plotting) it interrupts at once: a fit then returns the network
of its last completed epoch. The command marks the model's results interrupted, trains no further
model, writes its tables, JSON and plots with the mark, and ends with one line saying what was kept
and how to resume (exit 130).
"""
import sys
import time

from ._cli_output import _has_checkpoints, _joined
from .solvers._stop import request_stop


#: Set by the SIGINT handler of :func:`main`: a fit interrupted by Ctrl-C returns its last completed
#: epoch (the solvers' own rule), and the command then keeps what exists and stops (exit 130)
_INTERRUPT = {"seen": False}


def _on_interrupt(signum, frame):
    _INTERRUPT["seen"] = True
    if not request_stop():          # no batch loop to stop at its next batch boundary: stop here
        raise KeyboardInterrupt


def _partial(name, est, earlier, epochs, t0):
    """The result of a model whose fit was interrupted: its completed epochs' history and metrics."""
    history = _joined(earlier, getattr(est, "history_", {}))
    done = len(history.get("epoch", []))
    result = {"interrupted": True, "epochs_completed": done, "epochs": epochs, "seconds": time.time() - t0}
    return history, result, f"{name} after {done} of {epochs} epochs"


def _stopped(results, models, kept):
    """What an interrupted run kept (None when it was not interrupted): for results.json and the titles."""
    if kept is None:
        return None
    return {"kept": kept, "not_trained": [m for m in models if m not in results]}


def _report_interrupt(args, stopped):
    """The one line an interrupted run ends with (what was kept, how to resume), and its exit status."""
    if stopped is None:
        return 0
    untrained = f"; not trained: {', '.join(stopped['not_trained'])}" if stopped["not_trained"] else ""
    if _has_checkpoints(args.out):
        how = "resume with the same command and --resume"
    else:
        how = "no checkpoint was kept (run with --checkpoint-every 1 to keep one, then --resume)"
    print(f"bregman-solvers {args.command}: interrupted: kept {stopped['kept']}{untrained}; results marked "
          f"interrupted in {args.out}; {how}", file=sys.stderr)
    return 130
