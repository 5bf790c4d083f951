"""What every solver shares: the result object, the base class, the thread policy, a timer.

The steps themselves are :class:`~bregman_solvers.solvers._engine.StepEngine`'s; the
epoch loop of the stochastic solvers is :class:`~bregman_solvers.solvers._epochs.EpochLoop`.
"""
import functools
import numbers
import time
import warnings
from contextlib import contextmanager

import numpy as np
from scipy.optimize import OptimizeResult

from .._params import POSITIVE_INT, CallableValue, Interval, validate_params
from .._threads import fit_threads
from .. import exceptions
from ..exceptions import DivergenceError
from .._metrics import _size, available_memory
from ..network import LiftedNetwork


class FitResult(OptimizeResult):
    """What a solver's ``fit`` returns (a :class:`scipy.optimize.OptimizeResult`).

    Attributes
    ----------
    network : LiftedNetwork
        The trained network (the one passed in, updated in place).
    state : LiftedState
        The final auxiliary variables.
    energy : float
        Final lifted energy.
    n_iter : int
    converged : bool
        Whether the relative energy change fell below ``tol``.
    message : str
    history : dict of lists
        ``energy``, ``per_layer`` (arrays), ``time`` (seconds since the start), and
        solver-specific entries (``tau_theta``, ``tau_x``, ``restarts``, ...).

    Shown in a REPL it prints a summary (the last value of each history entry), not the arrays.
    """

    def __repr__(self):
        lines = [f"{type(self).__name__}: {self.get('message', '')}"]
        for key in ("energy", "n_iter", "epoch", "converged", "success"):
            if key in self:
                value = self[key]
                lines.append(f"  {key}: {value:.6g}" if isinstance(value, float) else f"  {key}: {value}")
        if "network" in self:
            lines.append(f"  network: {self['network']!r}")
        history = self.get("history") or {}
        last = []
        for key, values in history.items():
            if isinstance(values, list) and values and np.ndim(values[-1]) == 0:
                value = values[-1]
                last.append(f"{key}={value:.4g}" if isinstance(value, (float, np.floating)) else f"{key}={value}")
        if last:
            lines.append(f"  history ({len(next(iter(history.values())))} entries), last: " + ", ".join(last))
        return "\n".join(lines)

    __str__ = __repr__


#: The share of the available memory the auxiliary variables of a fit may take.
MEMORY_SHARE = 0.8


def check_fits_in_memory(network, n_samples):
    """Refuse, before anything is allocated, a fit whose auxiliary variables cannot fit in memory
    (a :class:`MemoryError` with the estimate and the two ways out)."""
    available = available_memory()
    estimate = network.memory_estimate(n_samples)
    if available is not None and estimate.auxiliary > MEMORY_SHARE * available:
        raise MemoryError(f"the auxiliary variables of {n_samples:,} samples need {_size(estimate.auxiliary)} "
                          f"({estimate.entries:,} entries a sample, {estimate.dtype}), more than "
                          f"{MEMORY_SHARE:.0%} of the {_size(available)} of memory available: keep them on disk "
                          f"with state=network.init_state(X0, directory=...) (memory maps), or train on fewer "
                          f"samples")


class LiftedSolver:
    """Base class of the solvers of the lifted problem: hyper-parameters in ``__init__``
    (checked by ``fit``), ``fit`` returns a :class:`FitResult`.

    The back-propagation baselines are not lifted solvers: they derive from
    ``backprop._BPSolver``, and code that needs to tell them apart tests the type.
    """

    def __init__(self, callback=None, verbose=False, n_threads=None):
        self.n_threads = n_threads
        self.callback = callback
        self.verbose = verbose

    #: The parameters every lifted solver has (:mod:`bregman_solvers._params`); each solver's table
    #: extends it, and ``fit`` checks the whole table once before any work
    _parameter_constraints = {
        "callback": [None, CallableValue()],
        "verbose": [bool, Interval(numbers.Integral, 0, None)],
        "n_threads": [None, POSITIVE_INT, Interval(numbers.Integral, None, -1)],
    }

    #: The rows of a deterministic solver's iteration limit and tolerance
    ITERATION_LIMITS = {"max_iter": [POSITIVE_INT],
                        "tol": [Interval(numbers.Real, 0, None, "left")]}

    def _validate_common(self):
        """Every parameter against the class's table (once, at the start of ``fit``); returns the
        deterministic solvers' ``(max_iter, tol)``."""
        validate_params(self, self._parameter_constraints)
        return int(self.max_iter), float(self.tol)

    @staticmethod
    def _prepare(network, X0, target, state):
        if not isinstance(network, LiftedNetwork):
            raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
        X0, target = network.check_data(X0, target)
        if state is None:
            check_fits_in_memory(network, X0.shape[0])
            state = network.init_state(X0)
        else:
            network.check_state(state, X0.shape[0])
        return X0, target, state

    #: The message of a fit that ran out of iterations (warned about with ConvergenceWarning)
    MAX_ITER_MESSAGE = "maximum number of iterations reached"

    def _result(self, network, state, history, n_iter, converged, message):
        if message == self.MAX_ITER_MESSAGE and self.tol > 0:
            warnings.warn(f"{type(self).__name__} stopped after max_iter={n_iter} iterations before the relative "
                          f"energy change fell below tol={self.tol:g}; the result's history shows the energy "
                          f"(raise max_iter, or set tol=0 to run a fixed number of iterations)",
                          exceptions.ConvergenceWarning, stacklevel=4)     # _result, fit, its thread-policy wrapper
        return FitResult(network=network, state=state, energy=history["energy"][-1] if history["energy"] else np.nan,
                         n_iter=n_iter, converged=converged, message=message, success=converged,
                         history=history)

    def _report(self, it, energy):
        if self.verbose:
            print(f"{type(self).__name__} iteration {it:5d}  energy {energy:.8g}")

    @staticmethod
    def _new_history(*extra):
        history = {"energy": [], "per_layer": [], "time": []}
        for key in extra:
            history[key] = []
        return history

    @staticmethod
    def _check_finite(terms, what):
        if not np.all(np.isfinite(terms)):
            raise DivergenceError(
                f"the lifted energy became non-finite ({what}); the step sizes are too large or an "
                f"auxiliary variable left its activation's domain"
            )


@contextmanager
def thread_policy(solver, network):
    """During a fit: the library's thread pool (:func:`bregman_solvers._threads.fit_threads`).

    The solver's ``n_threads``, else the network's, caps every thread of the fit:
    the OpenMP passes, the products split over them, and BLAS, held at one thread.
    """
    n = getattr(solver, "n_threads", None)
    if n is None:
        n = getattr(network, "n_threads", None)   # not a network: the fit itself refuses it
    with fit_threads(n) as threads:
        yield threads


def with_thread_policy(fit):
    """Decorator: run a solver's ``fit`` under :func:`thread_policy`."""

    @functools.wraps(fit)
    def wrapper(self, network, *args, **kwargs):
        with thread_policy(self, network):
            return fit(self, network, *args, **kwargs)

    return wrapper


class Timer:
    """Seconds since it was made (``timer()``)."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.t0
