"""ADMM for the parameter block of the lifted energy (Appendix B.2, eq. 39)."""

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .._kernels import _activations
from ..regularisers import L1, BregmanIteration, Nuclear, SquaredL2
from .._params import POSITIVE_INT, POSITIVE_REAL
from .block_coordinate import BlockCoordinateDescent

__all__ = ["ADMM"]


class ADMM(BlockCoordinateDescent):
    """Block coordinate descent whose theta block is solved by ADMM (eq. 39).

    For layer l the theta block ``min_{W, b} lambda_l mean_i [Phi*(z_i) - <x_l^i, z_i>]``
    is split with ``z = W x_{l-1} + b`` and a scaled dual ``U``; every ADMM iteration

    1. solves ``(W, b) <- argmin rho/2 mean |Z + U - W X_{l-1} - b|^2 + eps/2 |(W, b) - (W, b)_old|^2``:
       a least-squares problem whose Gram matrix ``A^T A + (N eps / rho) I``,
       ``A = [X_{l-1}, 1]``, is fixed during the block: it is Cholesky-factored once per
       block and layer (``scipy.linalg.cho_factor``) and reused;
    2. sets ``Z <- prox_{t Phi*}(V + t x_l)``, ``V = W X_{l-1} + b - U``, ``t = lambda_l / rho``,
       evaluated by the extended Moreau decomposition as a scaled activation:
       ``prox_{t Phi*}(w) = w - t prox_{Psi / (1 + t)}(w / (1 + t))``;
    3. updates ``U <- U + Z - W X_{l-1} - b``.

    ``Z`` and ``U`` persist across sweeps (warm start). The x blocks are solved by
    proximal-gradient steps as in :class:`BlockCoordinateDescent`: given theta each
    ``x_l`` problem is separable over samples with a closed-form (or Newton) prox
    and an exact per-sample Lipschitz step, so ADMM's extra split variable per layer
    and sample (Appendix B.2) would cost a third copy of the auxiliary variables for
    no better step.

    Parameters
    ----------
    rho : float, default 1.0
        Penalty parameter of the augmented Lagrangian (mean-energy scaling).
    admm_iterations : int, default 5
        ADMM iterations per theta block and sweep.
    eps : float, default 1e-3
        Proximal weight keeping ``(W, b)`` near the block's starting point (and the
        Gram matrix positive definite).
    inner_iterations : int, default 5
        Proximal-gradient steps per x block and sweep.
    splitting, max_iter, tol, callback, verbose
        As in :class:`BlockCoordinateDescent`.

    Only the Bregman penalty is supported (its Z-step is the scaled activation). A
    regulariser of the weights enters step 1: :class:`~bregman_solvers.regularisers.SquaredL2`
    exactly, as ``N alpha / rho`` added to the weights' diagonal of the Gram matrix;
    :class:`~bregman_solvers.regularisers.L1` and :class:`~bregman_solvers.regularisers.Nuclear`
    by ``prox_iterations`` proximal-gradient steps on the least-squares objective
    (step ``1 / lambda_max`` of its Hessian), warm-started from the unregularised
    solution. :class:`~bregman_solvers.regularisers.BregmanIteration` is not supported
    (use :class:`BlockCoordinateDescent`).
    """

    def __init__(self, rho=1.0, admm_iterations=5, eps=1e-3, inner_iterations=5, splitting="phi",
                 regulariser=None, code_regulariser=None, prox_iterations=20, max_iter=100, tol=1e-6,
                 callback=None, verbose=False, n_threads=None):
        super().__init__(inner_iterations=inner_iterations, step_scale=1.0, splitting=splitting,
                         regulariser=regulariser, code_regulariser=code_regulariser, max_iter=max_iter, tol=tol,
                         callback=callback, verbose=verbose, n_threads=n_threads)
        self.prox_iterations = prox_iterations
        self.rho = rho
        self.admm_iterations = admm_iterations
        self.eps = eps

    _parameter_constraints = {
        **BlockCoordinateDescent._parameter_constraints,
        "rho": [POSITIVE_REAL],
        "admm_iterations": [POSITIVE_INT],
        "eps": [POSITIVE_REAL],
        "prox_iterations": [POSITIVE_INT],
    }

    def _start(self, engine):
        net = engine.net
        if net.penalty != "bregman":
            raise ValueError(f"ADMM supports the Bregman penalty only, the network uses {net.penalty!r}")
        if not net.compiled:
            raise ValueError("ADMM's parameter block solves a least-squares problem in the (W_l, b_l) of dense "
                             "layers; this network has other operators: use ProximalGradient or "
                             "BlockCoordinateDescent")
        # the parameters were checked against the table by fit
        self._rho, self._n_admm, self._n_prox = float(self.rho), int(self.admm_iterations), int(self.prox_iterations)
        if isinstance(self.regulariser, BregmanIteration):
            raise ValueError("ADMM does not support BregmanIteration; use BlockCoordinateDescent")
        xs = engine.xs()
        self._split = []
        for l in range(net.n_layers):
            z = np.empty((engine.n, net.widths[l + 1]), net.dtype)
            net._preactivation(l, xs[l], z)
            self._split.append((z, np.zeros_like(z)))

    def _theta_block(self, engine):
        net, n = engine.net, engine.n
        rho, eps = self._rho, float(self.eps)
        xs = engine.xs()
        for l in range(net.n_layers):
            z, u = self._split[l]
            x_prev, x_l = xs[l], xs[l + 1]
            # A = [X_{l-1}, 1]; the Gram matrix is fixed during the block: factor once
            a = np.hstack([x_prev, np.ones((n, 1), dtype=net.dtype)]).astype(np.float64)
            reg = n * eps / rho
            gram = a.T @ a
            gram[np.diag_indices_from(gram)] += reg
            reg_w = self.regulariser
            if isinstance(reg_w, SquaredL2):
                # alpha/2 |W|^2 is quadratic: exact, on the weights' rows only (not the bias)
                idx = np.arange(gram.shape[0] - 1)
                gram[idx, idx] += n * reg_w.alpha / rho
            factor = cho_factor(gram, lower=True, check_finite=False)
            lipschitz = float(np.linalg.eigvalsh(gram)[-1]) if isinstance(reg_w, (L1, Nuclear)) else None
            theta_old = np.vstack([net.weights[l].T, net.biases[l][None, :]]).astype(np.float64)
            act = net.activations[l]
            t = net.lambdas[l] / rho
            pred = np.empty_like(z)
            w = np.empty_like(z)
            for _ in range(self._n_admm):
                rhs = a.T @ (z + u).astype(np.float64) + reg * theta_old
                theta = cho_solve(factor, rhs, check_finite=False)
                if lipschitz is not None:
                    theta = self._prox_least_squares(gram, rhs, theta, lipschitz, n / rho)
                np.matmul(a, theta, out=pred, casting="same_kind")       # W X_{l-1} + b
                np.subtract(pred, u, out=w)
                w += t * x_l                                             # V + t x_l
                # Z = w - t prox_{Psi/(1+t)}(w / (1+t))
                np.multiply(w, 1.0 / (1.0 + t), out=z)
                _activations.prox(act.kind, act.param, 1.0 / (1.0 + t), z, z, net._threads(z))
                np.multiply(z, -t, out=z)
                z += w
                u += z
                u -= pred
            net.weights[l][...] = theta[:-1].T
            net.biases[l][...] = theta[-1]

    def _prox_least_squares(self, gram, rhs, theta, lipschitz, scale):
        """Minimise 0.5 theta^T G theta - rhs^T theta + scale R(W) by proximal gradient from ``theta``.

        ``theta`` stacks W^T over the bias row; ``R`` acts on the weights only. The
        objective is the least-squares step multiplied by N / rho.
        """
        step = 1.0 / lipschitz
        for _ in range(self._n_prox):
            theta = theta - step * (gram @ theta - rhs)
            w = theta[:-1].T
            theta[:-1] = self.regulariser.prox(np.ascontiguousarray(w), step * scale).T
        return theta

