"""Proximal gradient descent on the lifted energy (eq. 16-17), with FISTA acceleration."""

import numpy as np

from .._params import POSITIVE_REAL, Options
from ._base import LiftedSolver, Timer, with_thread_policy
from ._engine import StepEngine

__all__ = ["ProximalGradient"]


class ProximalGradient(LiftedSolver):
    """Proximal gradient descent on (theta, X) jointly (eq. 17).

    Every iteration takes one step in all parameters and all auxiliary variables
    from the same iterate: a gradient step in ``theta`` and a proximal step in each
    ``X_l`` (see :mod:`bregman_solvers.solvers._engine` for the exact update and the
    ``splitting`` option).

    Parameters
    ----------
    tau_theta, tau_x : "lipschitz" or float, default "lipschitz"
        Step sizes. ``"lipschitz"`` recomputes, every iteration, the block bounds of
        MATH.md (``1 / L_theta_l`` per layer with ``L_theta_l = lambda_l (|X_{l-1}|_2^2 + N) / N``,
        ``1 / L_x_l`` per hidden layer with ``L_x_l = lambda_{l+1} |W_{l+1}|_2^2``, spectral norms
        by warm-started power iteration), multiplied by ``step_scale``. A number is
        used as it is (``tau_x`` is a per-sample step, MATH.md's scaling convention).
    step_scale : float, default 1.0
        Factor on the Lipschitz steps.
    backtracking : bool, default True
        Halve all steps (and retry from the same iterate) whenever the energy would
        increase; the energy then decreases monotonically.
    accelerated : bool, default False
        FISTA: the step is taken at the extrapolated point
        ``y = x_k + (t_{k-1} - 1) / t_k (x_k - x_{k-1})``, with adaptive (function-value)
        restart whenever the energy increases (O'Donoghue and Candes).
    splitting : {"phi", "smooth"}, default "phi"
        Where ``0.5 |x|^2`` goes: into the prox (the paper's Remark 11) or into the
        smooth part.
    regulariser : L1, SquaredL2, Nuclear, BregmanIteration or None
        Regularisation of the weights (:mod:`bregman_solvers.regularisers`).
    code_regulariser : CodeL1 or None
        l1 on one hidden layer's auxiliary variable.
    max_iter, tol, callback, verbose
        Iteration limit; stop when the relative energy change is below ``tol``;
        ``callback(result)`` after every iteration (return True to stop); printing.
    n_threads : int or None
        The most threads the fit uses, BLAS included (None: the network's
        ``n_threads``, else the usable cores no other fit of this process holds);
        see :class:`~bregman_solvers.ImplicitSGD` and docs/performance.rst, "Threads".

    Examples
    --------
    >>> import numpy as np
    >>> import bregman_solvers as bs
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 4)), rng.standard_normal((50, 2))
    >>> net = bs.LiftedNetwork([4, 8, 2], ["relu", "identity"], random_state=0)
    >>> result = bs.ProximalGradient(max_iter=50).fit(net, X, Y)
    >>> bool(result.history["energy"][-1] < result.history["energy"][0])
    True
    """

    def __init__(self, tau_theta="lipschitz", tau_x="lipschitz", step_scale=1.0, backtracking=True,
                 accelerated=False, splitting="phi", regulariser=None, code_regulariser=None, max_iter=100,
                 tol=1e-6, callback=None, verbose=False, n_threads=None):
        super().__init__(callback=callback, verbose=verbose, n_threads=n_threads)
        self.max_iter = max_iter
        self.tol = tol
        self.regulariser = regulariser
        self.code_regulariser = code_regulariser
        self.tau_theta = tau_theta
        self.tau_x = tau_x
        self.step_scale = step_scale
        self.backtracking = backtracking
        self.accelerated = accelerated
        self.splitting = splitting

    _parameter_constraints = {
        **LiftedSolver._parameter_constraints, **LiftedSolver.ITERATION_LIMITS,
        "tau_theta": [Options("lipschitz"), POSITIVE_REAL],
        "tau_x": [Options("lipschitz"), POSITIVE_REAL],
        "step_scale": [POSITIVE_REAL],
        "backtracking": [bool],
        "accelerated": [bool],
        "splitting": [Options("phi", "smooth")],
    }

    def _steps(self, engine):
        L = engine.net.n_layers
        scale = float(self.step_scale)
        if self.tau_theta == "lipschitz":
            tau_theta = scale / engine.theta_lipschitz()
        else:
            tau_theta = np.full(L, float(self.tau_theta))
        if self.tau_x == "lipschitz":
            lx = engine.x_lipschitz()
            # a layer with W = 0 has no smooth coupling: any step is admissible; cap it
            tau_x = scale / np.maximum(lx, 1e-12)
            tau_x = np.minimum(tau_x, 1e6)
        else:
            tau_x = np.full(L - 1, float(self.tau_x))
        return tau_theta, tau_x

    @with_thread_policy
    def fit(self, network, X0, target, state=None):
        """Minimise the lifted energy of ``network`` on ``(X0, target)``.

        Parameters
        ----------
        network : LiftedNetwork
            Updated in place.
        X0 : array-like of shape (n_samples, n_0)
        target : array-like of shape (n_samples, n_L)
        state : LiftedState, optional
            Initial auxiliary variables (default: a forward pass); updated in place.

        Returns
        -------
        FitResult
        """
        max_iter, tol = self._validate_common()
        X0, target, state = self._prepare(network, X0, target, state)
        engine = StepEngine(network, X0, target, state, self.splitting, self.regulariser, self.code_regulariser)
        history = self._new_history("tau_theta", "tau_x", "backtracks", "restarts")
        timer = Timer()
        backup = engine.snapshot() if (self.backtracking or self.accelerated) else None
        previous = engine.snapshot() if self.accelerated else None
        momentum_t = 1.0
        shrink = 1.0
        terms = engine.evaluate()
        self._check_finite(terms, "at the start")
        energy = engine.total(terms)
        history["energy"].append(energy)
        history["per_layer"].append(terms)
        history["time"].append(timer())
        converged, message, it = False, self.MAX_ITER_MESSAGE, 0
        for it in range(1, max_iter + 1):
            tau_theta, tau_x = self._steps(engine)
            tau_theta, tau_x = tau_theta * shrink, tau_x * shrink
            if backup is not None:
                engine.copy_into(backup)          # x_k
            n_back, restarted = 0, False
            while True:
                if self.accelerated and not restarted and it > 1:
                    new_t = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum_t ** 2))
                    beta = (momentum_t - 1.0) / new_t
                    _extrapolate(engine, previous, beta)       # y = x_k + beta (x_k - x_{k-1})
                else:
                    new_t = 1.0
                engine.evaluate(tau_x)
                engine.theta_step(tau_theta)
                engine.apply_x(tau_x)
                new_terms = engine.evaluate()
                new_energy = engine.total(new_terms)
                if new_energy <= energy + 1e-12 * abs(energy) or backup is None:
                    break
                engine.restore(backup)
                if self.accelerated and not restarted and it > 1:
                    restarted = True              # adaptive restart: drop the momentum first
                    continue
                if not self.backtracking:
                    break
                n_back += 1
                tau_theta, tau_x = 0.5 * tau_theta, 0.5 * tau_x
                shrink *= 0.5
                if n_back > 60:
                    raise FloatingPointError("backtracking failed to decrease the energy after 60 halvings")
            if self.accelerated:
                engine_prev = backup              # x_k becomes x_{k-1}
                previous, backup = engine_prev, previous
                momentum_t = 1.0 if restarted else new_t
            if n_back == 0:
                shrink = min(1.0, 2.0 * shrink)   # let the steps recover after backtracking
            self._check_finite(new_terms, f"tau_theta={tau_theta}, tau_x={tau_x}")
            change = abs(energy - new_energy)
            energy, terms = new_energy, new_terms
            history["energy"].append(energy)
            history["per_layer"].append(terms)
            history["time"].append(timer())
            history["tau_theta"].append(tau_theta.copy())
            history["tau_x"].append(tau_x.copy())
            history["backtracks"].append(n_back)
            history["restarts"].append(restarted)
            self._report(it, energy)
            if self.callback is not None and self.callback(self._result(network, state, history, it, False, "")):
                message = "stopped by the callback"
                break
            if change <= tol * max(1.0, abs(energy)):
                converged, message = True, "relative energy change below tol"
                break
        return self._result(network, state, history, it, converged, message)


def _extrapolate(engine, previous, beta):
    """Move the current iterate to ``x + beta (x - previous)`` in place."""
    net, state = engine.net, engine.state
    for cur, prev in zip(net.weights + net.biases + state.hidden, previous[0] + previous[1] + previous[2]):
        cur += beta * (cur - prev)
