"""Block coordinate descent on the lifted energy (eq. 35-37, 38)."""

from .._params import POSITIVE_INT, POSITIVE_REAL, Options
from ._base import LiftedSolver, Timer, with_thread_policy
from ._engine import StepEngine

__all__ = ["BlockCoordinateDescent"]


def x_block_sweep(engine, block, n_steps, step_scale):
    """``n_steps`` proximal-gradient steps on the hidden layers in ``block``, the others fixed.

    Given theta and the other parity's auxiliary variables, each ``X_h`` of the
    block only meets its own layer (``z_h`` fixed) and the next one, so the block
    problem separates over its layers and samples; its per-sample Lipschitz
    constant is ``lambda_{h+1} |W_{h+1}|^2`` (+ ``lambda_h`` in the smooth splitting)
    and the step ``step_scale / L`` decreases the energy for ``step_scale <= 1``.
    """
    L = engine.net.n_layers
    lx = engine.x_lipschitz()
    tau_x = [None] * (L - 1)
    for h in block:
        tau_x[h] = min(step_scale / max(lx[h], 1e-12), 1e6)
    layers = sorted({l for h in block for l in (h, h + 1)})
    for _ in range(n_steps):
        engine.evaluate(tau_x, layers=layers)
        engine.apply_x(tau_x, hidden=block)


def theta_block_sweep(engine, n_steps, step_scale):
    """``n_steps`` gradient steps on all (W_l, b_l), X fixed: one convex problem per layer.

    The layers do not interact given X, so every step updates all of them at once
    with its own step ``step_scale / L_theta_l`` (the bound of MATH.md is exact for
    the layer's problem).
    """
    tau_theta = step_scale / engine.theta_lipschitz()
    for _ in range(n_steps):
        engine.evaluate()
        engine.theta_step(tau_theta)


class BlockCoordinateDescent(LiftedSolver):
    """Block coordinate descent over three convex blocks (eq. 36-37).

    Given the auxiliary variables the energy separates over the layers in theta;
    given theta it separates into the even and the odd hidden layers. Each sweep
    updates, in turn, all ``(W_l, b_l)``; all even ``X_l``; all odd ``X_l``. Each block
    is solved inexactly by ``inner_iterations`` proximal-gradient steps with its
    exact block Lipschitz step; ``inner_iterations=1`` is the linearised step of
    eq. 38. Every block step decreases the energy, so the energy is monotone.

    Parameters
    ----------
    inner_iterations : int, default 5
        Steps per block and sweep.
    step_scale : float, default 1.0
        Factor (at most 1 for guaranteed descent) on the block Lipschitz steps.
    splitting : {"phi", "smooth"}
        See :class:`ProximalGradient`.
    regulariser, code_regulariser
        See :class:`ProximalGradient`.
    max_iter : int
        Number of sweeps at most.
    tol, callback, verbose
        As in :class:`ProximalGradient`.

    Notes
    -----
    The layers inside a block are independent, and each block step processes all
    of them together through the fused layer kernels (one BLAS product per layer,
    each multi-threaded); a second level of parallelism over layers would compete
    with BLAS for the same cores.
    """

    def __init__(self, inner_iterations=5, step_scale=1.0, splitting="phi", regulariser=None,
                 code_regulariser=None, max_iter=100, tol=1e-6, callback=None, verbose=False, n_threads=None):
        super().__init__(callback=callback, verbose=verbose, n_threads=n_threads)
        self.max_iter = max_iter
        self.tol = tol
        self.regulariser = regulariser
        self.code_regulariser = code_regulariser
        self.inner_iterations = inner_iterations
        self.step_scale = step_scale
        self.splitting = splitting

    _parameter_constraints = {
        **LiftedSolver._parameter_constraints, **LiftedSolver.ITERATION_LIMITS,
        "inner_iterations": [POSITIVE_INT],
        "step_scale": [POSITIVE_REAL],
        "splitting": [Options("phi", "smooth")],
    }

    def _theta_block(self, engine):
        theta_block_sweep(engine, self.inner_iterations, self.step_scale)

    @with_thread_policy
    def fit(self, network, X0, target, state=None):
        """Minimise the lifted energy; same arguments and result as :meth:`ProximalGradient.fit`."""
        max_iter, tol = self._validate_common()
        n_inner, scale = int(self.inner_iterations), float(self.step_scale)
        X0, target, state = self._prepare(network, X0, target, state)
        engine = StepEngine(network, X0, target, state, self.splitting, self.regulariser, self.code_regulariser)
        self._start(engine)
        L = network.n_layers
        # hidden index h holds X_{h+1}: "even" layers X_2, X_4, ... are h = 1, 3, ...
        even = [h for h in range(L - 1) if (h + 1) % 2 == 0]
        odd = [h for h in range(L - 1) if (h + 1) % 2 == 1]
        history = self._new_history()
        timer = Timer()
        terms = engine.evaluate()
        self._check_finite(terms, "at the start")
        energy = engine.total(terms)
        history["energy"].append(energy)
        history["per_layer"].append(terms)
        history["time"].append(timer())
        converged, message, it = False, self.MAX_ITER_MESSAGE, 0
        for it in range(1, max_iter + 1):
            self._theta_block(engine)
            for block in (even, odd):
                if block:
                    x_block_sweep(engine, block, n_inner, scale)
            terms = engine.evaluate()
            self._check_finite(terms, f"sweep {it}")
            change = abs(energy - float(terms.sum()))
            energy = engine.total(terms)
            history["energy"].append(energy)
            history["per_layer"].append(terms)
            history["time"].append(timer())
            self._report(it, energy)
            if self.callback is not None and self.callback(self._result(network, state, history, it, False, "")):
                message = "stopped by the callback"
                break
            if change <= tol * max(1.0, abs(energy)):
                converged, message = True, "relative energy change below tol"
                break
        return self._result(network, state, history, it, converged, message)

    def _start(self, engine):
        """Hook for subclasses that keep per-fit state (ADMM's split and dual variables)."""
