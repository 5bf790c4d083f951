"""Shared machinery of the lifted solvers: the result object, the step engine, step sizes.

The step engine performs the proximal-gradient step of eq. 17 on a lifted network
for given block steps, from one iterate, through the network's fused layer kernels
and its workspace (no allocation per iteration):

* theta: ``W_l <- W_l - tau_theta_l (lambda_l / N) R_l^T X_{l-1}``, same for ``b_l``
  (mean energy, so ``tau_theta`` does not depend on N);
* x (per sample, the scaling convention): with ``t = tau_x lambda_l``,

  - ``splitting="phi"`` (the paper's Remark 11, default):
    ``x_l <- prox_{t Phi_l}(x_l + t z_l - tau_x lambda_{l+1} W_{l+1}^T r_{l+1})``,
    evaluated as ``prox_{(t/(1+t)) Psi_l}`` of that argument divided by ``1 + t``;
  - ``splitting="smooth"``: ``0.5 |x_l|^2`` stays in the smooth part,
    ``x_l <- prox_{t Psi_l}(x_l - t (x_l - z_l) - tau_x lambda_{l+1} W_{l+1}^T r_{l+1})``.

  Remark 11's splitting is the default because its smooth part in ``x_l`` is only
  the coupling ``lambda_{l+1} Phi*_{l+1}(W_{l+1} x_l + b)``: the admissible step is
  ``1 / (lambda_{l+1} |W_{l+1}|^2)`` instead of ``1 / (lambda_l + lambda_{l+1} |W_{l+1}|^2)``,
  and the strongly convex ``0.5 |x_l|^2`` is handled exactly by the prox.
  The classical and MAC-QP penalties always use the smooth splitting (MAC-QP
  has no prox: its auxiliary variables are unconstrained).
"""
import functools
import time
from contextlib import contextmanager

import numpy as np
from scipy.optimize import OptimizeResult

from .. import _validation
from .._threads import fit_threads
from .._kernels import _activations, _lifted, _steps
from .._kernels._activations import KIND_CODES
from ..network import LiftedNetwork, _Workspace
from ..regularisers import L1, BregmanIteration, CodeL1, Nuclear, SquaredL2, soft_threshold

SPLITTINGS = ("phi", "smooth")


def check_regulariser(regulariser):
    if regulariser is None or isinstance(regulariser, (L1, SquaredL2, Nuclear, BregmanIteration)):
        return regulariser
    raise TypeError(f"regulariser must be L1, SquaredL2, Nuclear, BregmanIteration or None, "
                    f"got {type(regulariser).__name__}")


def check_code_regulariser(code_regulariser, network):
    if not isinstance(code_regulariser, CodeL1):
        raise TypeError(f"code_regulariser must be a CodeL1 or None, got {type(code_regulariser).__name__}")
    return code_regulariser.check(network)


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
    """


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_tol(tol):
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    return float(tol)


def spectral_norm_sq(a, v=None, n_iter=30):
    """Largest squared singular value of ``a`` by power iteration on ``a^T a``.

    Returns ``(estimate, v)``; pass ``v`` back to warm-start the next call. Power
    iteration approaches from below, so callers leave a margin.
    """
    if v is None:
        v = np.ones(a.shape[1], dtype=np.float64) / np.sqrt(a.shape[1])
    est = 0.0
    for _ in range(n_iter):
        w = a.T @ (a @ v.astype(a.dtype, copy=False))
        nrm = float(np.linalg.norm(w))
        if nrm == 0.0:
            return 0.0, v
        est = nrm
        v = (w / nrm).astype(np.float64)
    return est, v


def normalise_weights(network, w_scale, layers=None):
    """``W_l <- w_scale[l] W_l`` (BLAS ``scal``) and ``w_scale[l] <- 1``: the weights explicit again."""
    for l in range(network.n_layers) if layers is None else layers:
        if w_scale[l] != 1.0:
            _lifted.scal(w_scale[l], network.weights[l].reshape(-1), network._product_split()[1])
            w_scale[l] = 1.0


class StepEngine:
    """Proximal-gradient steps on one lifted problem (see the module docstring)."""

    def __init__(self, network, X0, target, state, splitting="phi", regulariser=None, code_regulariser=None,
                 bregman_state=None, w_scale=None):
        if splitting not in SPLITTINGS:
            raise ValueError(f"splitting must be one of {SPLITTINGS}, got {splitting!r}")
        self.regulariser = check_regulariser(regulariser)
        self.code_regulariser = None if code_regulariser is None else check_code_regulariser(code_regulariser, network)
        if isinstance(self.regulariser, BregmanIteration) and bregman_state is None:
            bregman_state = self.regulariser.init_state(network.weights)
        self.bregman_state = bregman_state
        self.net = network
        self.X0, self.target, self.state = X0, target, state
        self.n = X0.shape[self.sample_axis]
        self.ws = self._workspace()
        self.splitting = splitting if network.penalty == "bregman" else "smooth"
        self._v_w = [None] * network.n_layers
        self._v_x = [None] * network.n_layers
        # W_l = w_scale[l] * network.weights[l]: the scaled proximity step (see theta_step)
        # leaves the scale on the weights until normalise_weights(). Engines on one network
        # (one per batch size) may share the array, so that a scale can outlive a batch; the
        # compiled steps update it in place, hence float64 and nothing else.
        if w_scale is None:
            w_scale = np.ones(network.n_layers)
        elif not (isinstance(w_scale, np.ndarray) and w_scale.dtype == np.float64
                  and w_scale.shape == (network.n_layers,)):
            raise TypeError(f"w_scale must be a float64 array of length {network.n_layers} (shared, updated in "
                            f"place), got {w_scale!r}")
        self.w_scale = w_scale
        self._anchor_views = (None, None)
        self._compiled = (None, None)

    # -- the products and sums whose form depends on how the batch arrays are stored;
    # here samples are rows: X_l of shape (n_samples, n_l), Z_l = X_{l-1} W_l^T
    #: Axis of the batch arrays that runs over samples.
    sample_axis = 0

    def _workspace(self):
        return self.net.workspace(self.n)

    def _layer(self, l, x_prev, x_l, v=None, a_x=0.0, c_z=0.0, with_loss=True, prox_c=0.0):
        """Pre-activation, residual (and ``V``) of layer ``l``; its energy term, or None without loss.

        ``prox_c > 0``: first the pending x-step ``x_l <- prox_{prox_c Psi}(V)``.
        """
        # the steps read the residual and V, never Z again: the pass need not store it
        return self.net._layer_pass(l, x_prev, x_l, self.ws, v, a_x, c_z, with_loss=with_loss,
                                    w_scale=self.w_scale[l], keep_z=False, prox_c=prox_c)

    def _add_back_term(self, h, coefficient):
        """``V_h += coefficient R_{h+1} W_{h+1}`` (the x-step's term from the layer above)."""
        _lifted.gemm(False, False, coefficient * self.w_scale[h + 1], self.ws.residual[h + 1],
                     self.net.weights[h + 1], 1.0, self.ws.v[h], *self.net._product_split())

    def _add_gradient(self, l, x_prev, alpha, out, beta):
        """``out = alpha R_l^T X_{l-1} + beta out`` (the weights' gradient product)."""
        _lifted.gemm(True, False, alpha, self.ws.residual[l], x_prev, beta, out, *self.net._product_split())

    def _bias_sums(self, l, out, scale, accumulate):
        """``out (+)= scale sum_i R_l[i]`` (the biases' gradient)."""
        _lifted.column_sums(self.ws.residual[l], out, scale, accumulate)

    # -- chain of variables x_0 .. x_L
    def xs(self):
        return [self.X0, *self.state.hidden, self.target]

    # -- the x-step coefficients of hidden layer h (variable X_{h+1}, own layer h)
    def x_coefficients(self, h, tau):
        lam, lam_next = self.net.lambdas[h], self.net.lambdas[h + 1]
        t = tau * lam
        if self.splitting == "phi":
            return 1.0 / (1.0 + t), t / (1.0 + t), -tau * lam_next / (1.0 + t), t / (1.0 + t)
        return 1.0 - t, t, -tau * lam_next, t

    def evaluate(self, tau_x=None, layers=None, energy=True, pending_x=None):
        """Passes over the layers at the current iterate: per-layer energy terms.

        With ``tau_x`` (one step per hidden layer) the x-step arguments ``V_h`` are
        prepared too (own term plus back term). ``layers`` restricts the passes.
        With ``energy=False`` only residuals (and ``V_h``) are computed, no penalty,
        and None is returned: the inner iterations that do not report an energy.

        ``pending_x``: the steps of an x-step still to take (the ``tau_x`` of the
        previous :meth:`evaluate`, whose ``V_h`` the buffers hold, in place of
        :meth:`apply_x`). Each layer's pass then takes it first, on rows still in
        cache: the iterate is the one :meth:`apply_x` would have given (no code
        regulariser: see :attr:`x_step_deferrable`).
        """
        net, ws, xs = self.net, self.ws, self.xs()
        L = net.n_layers
        if pending_x is not None and (layers is not None or self.code_regulariser is not None):
            raise ValueError("a pending x-step needs all layers and no code regulariser")
        layers = range(L) if layers is None else layers
        terms = np.zeros(L) if energy else None
        for l in layers:
            prox_c = 0.0 if pending_x is None or l == L - 1 else self.x_coefficients(l, pending_x[l])[3]
            if tau_x is not None and l < L - 1 and tau_x[l] is not None:
                a_x, c_z, _, _ = self.x_coefficients(l, tau_x[l])
                term = self._layer(l, xs[l], xs[l + 1], ws.v[l], a_x, c_z, with_loss=energy, prox_c=prox_c)
            else:
                term = self._layer(l, xs[l], xs[l + 1], with_loss=energy, prox_c=prox_c)
            if energy:
                terms[l] = term
        if tau_x is not None:
            for h in range(L - 1):
                if tau_x[h] is not None and (h + 1) in layers and h in layers:
                    _, _, back, _ = self.x_coefficients(h, tau_x[h])
                    self._add_back_term(h, back)
        return terms

    def theta_gradients(self, layers=None):
        net, ws, xs = self.net, self.ws, self.xs()
        for l in range(net.n_layers) if layers is None else layers:
            scale = net.lambdas[l] / self.n
            self._add_gradient(l, xs[l], scale, ws.grad_w[l], 0.0)
            self._bias_sums(l, ws.grad_b[l], scale, False)

    def apply_theta(self, tau_theta, layers=None, anchor=None, tau_prox=None):
        """The theta step, in place; with ``anchor`` the proximity term ``|theta - anchor|^2 / (2 tau_prox)``.

        ``anchor`` is a flat vector laid out like the network's ``parameter_vector``.

        The weights' step goes through the regulariser: a prox for variational
        regularisation, a linearised Bregman step for iterative regularisation.
        """
        self.normalise_weights()
        net, ws = self.net, self.ws
        reg = self.regulariser
        if anchor is not None:
            anchor = net.unflatten(anchor)
        for l in range(net.n_layers) if layers is None else layers:
            gw, gb = ws.grad_w[l], ws.grad_b[l]
            w, b = net.weights[l], net.biases[l]
            threads = net._threads(w)
            # one fused pass per array: theta <- theta - step (grad + (theta - anchor) / tau_prox)
            b_ref = None if anchor is None else anchor[1][l]
            _lifted.step_parameters(b, gb, tau_theta[l], b_ref, tau_prox or 0.0, 1)
            if isinstance(reg, BregmanIteration):
                if anchor is not None:
                    gw += (w - anchor[0][l]) / tau_prox
                reg.step(w, gw, tau_theta[l], self.bregman_state.v[l])
                continue
            w_ref = None if anchor is None else anchor[0][l].reshape(-1)
            _lifted.step_parameters(w.reshape(-1), gw.reshape(-1), tau_theta[l], w_ref, tau_prox or 0.0, threads)
            if reg is not None:
                reg.prox(w, tau_theta[l], out=w)

    def theta_step(self, tau_theta, anchor=None, tau_prox=None, anchor_scale=None):
        """Gradient and parameter step fused: ``W <- (1 - c) W + c W_anchor - tau (lambda/N) R^T X``.

        ``anchor`` is a flat vector laid out like the network's ``parameter_vector``
        and ``c = tau / tau_prox`` the weight of the proximity term (none without an
        anchor). The parameter gradient's GEMM accumulates straight into ``W``
        (BLAS's ``beta = 1``, the only ``beta`` without a scaling pass of its own)
        and the bias gradient's column sums straight into ``b``, so no gradient is
        stored and read back. Equivalent to :meth:`theta_gradients` followed by
        :meth:`apply_theta`, which Bregman iterations still use (they need the
        gradient itself).

        The pull towards the anchor is taken one of two ways:

        * without a regulariser and with ``0 < c < 1`` (implicit SGD's usual case),
          **scaled**: the weights hold ``W_l / s_l`` with ``s_l`` in :attr:`w_scale`,
          and the step is ``W/s += (c / s') W_anchor - (step / s') R^T X`` with
          ``s' = (1 - c) s``: one BLAS ``axpy`` (on BLAS's awake threads, 0.29 ms for
          1.85 million parameters inside an iteration, against 0.66 ms for an
          OpenMP pass) and the GEMM, whose ``alpha`` carries the scale, as do the
          GEMMs of :meth:`evaluate`. :meth:`normalise_weights` multiplies the
          scales back in. ``anchor_scale`` (per layer, default 1) says the anchor's
          weights are scaled the same way: implicit SGD copies the anchor from
          weights it has not normalised (the pull is then ``(c a / s') W_anchor``);
        * otherwise explicitly, one parallel pass over all parameters (the anchor
          must then be explicit).
        """
        if isinstance(self.regulariser, BregmanIteration):
            self.normalise_weights()
            self.theta_gradients()
            self.apply_theta(tau_theta, anchor=anchor, tau_prox=tau_prox)
            return
        net, xs = self.net, self.xs()
        if self.regulariser is None and (anchor is None or self.scaled_step_applies(tau_theta, tau_prox)):
            # without an anchor: the same step with c = 0 (leaves any scale on the weights)
            self._scaled_proximity_step(tau_theta, anchor, tau_prox, anchor_scale)
            return
        if anchor is not None and anchor_scale is not None and any(a != 1.0 for a in anchor_scale):
            raise ValueError("a scaled anchor (anchor_scale != 1) needs the scaled proximity step: no "
                             "regulariser and 0 < tau_theta / tau_prox < 1")
        self.normalise_weights()
        if anchor is not None:
            theta = net.parameter_vector
            _lifted.pull_towards(theta, anchor, net.layer_bounds, np.asarray(tau_theta, dtype=np.float64) / tau_prox,
                                 net._threads(theta))
        for l in range(net.n_layers):
            step = tau_theta[l] * net.lambdas[l] / self.n
            self._add_gradient(l, xs[l], -step, net.weights[l], 1.0)
            self._bias_sums(l, net.biases[l], -step, True)
            if self.regulariser is not None:
                self.regulariser.prox(net.weights[l], tau_theta[l], out=net.weights[l])

    #: Take the scaled form of the proximity step when it applies (False: always explicit;
    #: the two agree to rounding, which the tests check).
    scaled_proximity = True

    def scaled_step_applies(self, tau_theta, tau_prox):
        """Whether :meth:`theta_step` with an anchor takes the scaled form for these steps."""
        return (self.scaled_proximity and tau_prox is not None and self.regulariser is None
                and all(0 < t / tau_prox < 1 for t in tau_theta))

    #: Below this scale the weights are normalised before the next scaled step
    #: (keeps ``W / s`` far from overflow whatever ``c`` and K are).
    MIN_W_SCALE = 1e-2

    def _scaled_proximity_step(self, tau_theta, anchor, tau_prox, anchor_scale=None):
        net, xs = self.net, self.xs()
        anchor_w, anchor_b = (None, None) if anchor is None else self._views_of(anchor)
        for l in range(net.n_layers):
            c = 0.0 if anchor is None else tau_theta[l] / tau_prox
            if self.w_scale[l] * (1.0 - c) < self.MIN_W_SCALE:
                self.normalise_weights([l])
            scale = self.w_scale[l] * (1.0 - c)
            step = tau_theta[l] * net.lambdas[l] / self.n
            w, b = net.weights[l], net.biases[l]
            if anchor is not None:
                a = 1.0 if anchor_scale is None else anchor_scale[l]
                _lifted.axpy(c * a / scale, anchor_w[l], w.reshape(-1), net._product_split()[1])
                # the biases explicitly (a few hundred entries)
                _lifted.scal(1.0 - c, b)
                _lifted.axpy(c, anchor_b[l], b)
            self._add_gradient(l, xs[l], -step / scale, w, 1.0)
            self.w_scale[l] = scale
            self._bias_sums(l, b, -step, True)

    def _views_of(self, anchor):
        """Per-layer flat views (weights, biases) of an anchor vector, cached for the last anchor."""
        cached, views = self._anchor_views
        if cached is not anchor:
            weights, biases = self.net.unflatten(anchor)
            views = ([w.reshape(-1) for w in weights], biases)
            self._anchor_views = (anchor, views)
        return views

    #: Let :meth:`proximal_steps` run in one compiled call where it applies (False: the
    #: Python loop of steps always; the two give the same iterates to the bit, which the tests check).
    compiled_steps = True

    def compiled_steps_apply(self, tau_theta, tau_prox):
        """Whether :meth:`proximal_steps` can run: no regulariser, no code regulariser, and
        every parameter step in the scaled form (or no proximity term)."""
        return (self.compiled_steps and self.regulariser is None and self.x_step_deferrable
                and (tau_prox is None or self.scaled_step_applies(tau_theta, tau_prox)))

    def proximal_steps(self, n_steps, tau_theta, tau_x, anchor=None, tau_prox=None, anchor_scale=None):
        """K proximal-gradient steps after a first :meth:`evaluate` with ``tau_x``, in one compiled call.

        The same steps as the Python loop of implicit SGD: :meth:`theta_step`, then
        ``K - 1`` times :meth:`evaluate` with the pending x-step and :meth:`theta_step`
        with the pull towards ``anchor`` (none in the first step, which starts at it),
        then :meth:`apply_x`, each call for call (see ``_kernels._steps``): the iterates
        agree to the bit, and the loop's Python calls and argument checks are saved.
        Needs :meth:`compiled_steps_apply`. ``anchor`` (None: no proximity term),
        ``tau_prox`` and ``anchor_scale`` as in :meth:`theta_step`; the weights are
        left scaled (see :attr:`w_scale`).
        """
        if not self.compiled_steps_apply(tau_theta, tau_prox):
            raise ValueError("proximal_steps needs no regulariser, no code regulariser and the scaled step")
        net = self.net
        L = net.n_layers
        step = np.array([tau_theta[l] * net.lambdas[l] / self.n for l in range(L)])
        pull = np.zeros(L) if anchor is None else np.array([tau_theta[l] / tau_prox for l in range(L)])
        coefficients = np.array([self.x_coefficients(h, tau_x[h]) for h in range(L - 1)], dtype=np.float64)
        a_x, c_z, back, prox_c = np.ascontiguousarray(coefficients.reshape(L - 1, 4).T)
        anchor_scale = np.ones(L) if anchor_scale is None else np.asarray(anchor_scale, dtype=np.float64)
        self._compiled_steps().run(n_steps, anchor, anchor_scale, self.w_scale, step, pull, a_x, c_z, back,
                                   prox_c, self.MIN_W_SCALE)

    def _compiled_steps(self):
        """The batch problem's arrays for ``_steps.ProximalSteps`` (made again when thread counts change)."""
        net, ws = self.net, self.ws
        pass_threads = tuple(net._threads(z) for z in ws.z)
        product_blocks, product_threads = net._product_split()
        made_for, steps = self._compiled
        if made_for != (pass_threads, product_blocks, product_threads):
            steps = _steps.ProximalSteps(net._penalty_code, self.sample_axis == 1, net.weights, net.biases,
                                         self.xs(), ws.z, ws.residual, ws.v, [a.kind for a in net.activations],
                                         [a.param for a in net.activations], pass_threads, net.layer_bounds,
                                         product_blocks, product_threads)
            self._compiled = ((pass_threads, product_blocks, product_threads), steps)
        return steps

    def normalise_weights(self, layers=None):
        """Multiply the scales of the scaled proximity step back into the weights (BLAS ``scal``)."""
        normalise_weights(self.net, self.w_scale, layers)

    def restore_parameters(self, theta, scale=None):
        """Overwrite the network's parameters with the flat vector ``theta``, whose weights carry
        the per-layer ``scale`` (default 1, explicit)."""
        np.copyto(self.net.parameter_vector, theta)
        self.w_scale[:] = 1.0 if scale is None else scale

    def regularisation(self):
        """The regularisation terms of the energy: R(theta) (variational only) + the code's l1."""
        value = 0.0
        if self.regulariser is not None and not isinstance(self.regulariser, BregmanIteration):
            value += sum(self.regulariser.value(w) for w in self.net.weights)
        if self.code_regulariser is not None:
            value += self.code_regulariser.value(self.state.hidden[self.code_regulariser.layer - 1])
        return value

    def total(self, terms):
        return float(np.sum(terms)) + self.regularisation()

    def apply_x(self, tau_x, hidden=None):
        net, ws = self.net, self.ws
        code = self.code_regulariser
        for h in range(net.n_layers - 1) if hidden is None else hidden:
            act = net.activations[h]
            _, _, _, c = self.x_coefficients(h, tau_x[h])
            if code is not None and code.layer == h + 1:
                # prox of c Psi + s|.|_1 = prox_{c Psi} o soft_s (see CodeL1)
                scale = 1.0 / (1.0 + tau_x[h] * net.lambdas[h]) if self.splitting == "phi" else 1.0
                soft_threshold(ws.v[h], tau_x[h] * code.alpha * scale, out=ws.v[h])
            if net.penalty == "mac_qp":
                np.copyto(self.state.hidden[h], ws.v[h])
            else:
                _activations.prox(act.kind, act.param, c, ws.v[h], self.state.hidden[h], net._threads(ws.v[h]))

    # -- block Lipschitz constants (MATH.md)
    def theta_lipschitz(self, layers=None):
        """``L_theta_l = lambda_l (|X_{l-1}|_2^2 + N) / N`` (mean energy), per layer."""
        xs = self.xs()
        out = np.zeros(self.net.n_layers)
        for l in range(self.net.n_layers) if layers is None else layers:
            est, self._v_x[l] = spectral_norm_sq(xs[l], self._v_x[l], 30 if self._v_x[l] is None else 5)
            out[l] = self.net.lambdas[l] * (1.05 * est + self.n) / self.n
        return out

    @property
    def x_step_deferrable(self):
        """Whether :meth:`evaluate` can take a pending x-step (no code regulariser, whose
        soft threshold comes before the prox)."""
        return self.code_regulariser is None

    def x_lipschitz(self):
        """Per-sample ``L_x_l = lambda_{l+1} |W_{l+1}|^2`` (+ ``lambda_l`` in the smooth splitting)."""
        self.normalise_weights()
        net = self.net
        out = np.zeros(net.n_layers - 1)
        for h in range(net.n_layers - 1):
            w = net.weights[h + 1]
            est, self._v_w[h + 1] = spectral_norm_sq(w, self._v_w[h + 1], 30 if self._v_w[h + 1] is None else 5)
            out[h] = net.lambdas[h + 1] * 1.05 * est + (net.lambdas[h] if self.splitting == "smooth" else 0.0)
        return out

    # -- checks and backups for backtracking and extrapolation
    def iterate_finite(self):
        """Whether every parameter and auxiliary variable is finite.

        The parameters by one BLAS read (their absolute sum, see ``_lifted.abs_sum``),
        the auxiliary variables of the batch by one pass each. Weights held scaled
        (``W / s`` with ``MIN_W_SCALE <= s <= 1``) are read as they are: finite
        exactly when ``W`` is.
        """
        if not np.isfinite(_lifted.abs_sum(self.net.parameter_vector)):
            return False
        return all(_lifted.all_finite(h.reshape(-1), self.net._threads(h)) for h in self.state.hidden)

    def snapshot(self):
        self.normalise_weights()
        return ([w.copy() for w in self.net.weights], [b.copy() for b in self.net.biases],
                [h.copy() for h in self.state.hidden])

    def restore(self, snap):
        for dst, src in zip(self.net.weights, snap[0]):
            np.copyto(dst, src)
        for dst, src in zip(self.net.biases, snap[1]):
            np.copyto(dst, src)
        for dst, src in zip(self.state.hidden, snap[2]):
            np.copyto(dst, src)

    def copy_into(self, snap):
        for dst, src in zip(snap[0], self.net.weights):
            np.copyto(dst, src)
        for dst, src in zip(snap[1], self.net.biases):
            np.copyto(dst, src)
        for dst, src in zip(snap[2], self.state.hidden):
            np.copyto(dst, src)


class FeatureRowsEngine(StepEngine):
    """:class:`StepEngine` on a batch stored transposed: ``X_l`` of shape ``(n_l, n_samples)``.

    The same steps, with every product in the transposed form: ``Z_l^T = W_l X_{l-1}^T``,
    the gradient ``R_l^T X_{l-1}`` as ``R_l^T (X_{l-1}^T)^T``, the back term
    ``V_h^T += W_{h+1}^T R_{h+1}^T``; the layer pass and the bias sums run along rows of
    features (``_lifted.layer_pass_features``, ``_lifted.row_sums``). BLAS runs these
    products at another speed than those of samples as rows (faster in float32 on the
    development machine; see :data:`~bregman_solvers._validation.BATCH_LAYOUT`). The
    stochastic solvers gather each batch into this layout and scatter it back.

    Every activation must act entrywise (no softmax) and there is no code
    regulariser (its value is a per-sample norm): see :func:`features_as_rows_possible`.
    """

    sample_axis = 1

    def _workspace(self):
        return _Workspace(self.net, self.n, features_as_rows=True)

    def _layer(self, l, x_prev, x_l, v=None, a_x=0.0, c_z=0.0, with_loss=True, prox_c=0.0):
        net, ws = self.net, self.ws
        act = net.activations[l]
        _lifted.gemm(False, False, self.w_scale[l], net.weights[l], x_prev, 0.0, ws.z[l], *net._product_split())
        loss = ws.loss[l] if with_loss else None
        _lifted.layer_pass_features(net._penalty_code, act.kind, act.param, ws.z[l], net.biases[l], x_l,
                                    ws.residual[l], loss, v, a_x, c_z, net._threads(ws.z[l]), False,
                                    prox_c, x_l if prox_c > 0 else None)
        if not with_loss:
            return None
        return float(np.sum(loss)) / self.n * net.lambdas[l]

    def _add_back_term(self, h, coefficient):
        _lifted.gemm(True, False, coefficient * self.w_scale[h + 1], self.net.weights[h + 1],
                     self.ws.residual[h + 1], 1.0, self.ws.v[h], *self.net._product_split())

    def _add_gradient(self, l, x_prev, alpha, out, beta):
        _lifted.gemm(False, True, alpha, self.ws.residual[l], x_prev, beta, out, *self.net._product_split())

    def _bias_sums(self, l, out, scale, accumulate):
        _lifted.row_sums(self.ws.residual[l], out, scale, accumulate)


def features_as_rows_possible(network, code_regulariser=None):
    """Whether :class:`FeatureRowsEngine` can run this problem: entrywise activations, no code regulariser."""
    return code_regulariser is None and all(act.kind != KIND_CODES["softmax"] for act in network.activations)


def use_features_as_rows(network, code_regulariser=None):
    """The batch layout :data:`~bregman_solvers._validation.BATCH_LAYOUT` asks for, where it is possible."""
    layout = _validation.BATCH_LAYOUT
    if layout not in _validation.BATCH_LAYOUTS:
        raise ValueError(f"bregman_solvers._validation.BATCH_LAYOUT must be one of {_validation.BATCH_LAYOUTS}, "
                         f"got {layout!r}")
    # "auto" is samples as rows: with the products split over the library's threads (BLAS at
    # one thread) that layout ran fastest in both dtypes (docs/performance.rst, "Threads")
    return layout == "features" and features_as_rows_possible(network, code_regulariser)


class LiftedSolver:
    """Base class: hyper-parameters in ``__init__``, ``fit`` returns a :class:`FitResult`."""

    def __init__(self, max_iter=100, tol=1e-6, callback=None, verbose=False, n_threads=None):
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.tol = tol
        self.callback = callback
        self.verbose = verbose

    def _validate_common(self):
        _check_positive_int(self.max_iter, "max_iter")
        _check_tol(self.tol)
        if self.callback is not None and not callable(self.callback):
            raise TypeError("callback must be callable or None")
        return self.max_iter, self.tol

    @staticmethod
    def _prepare(network, X0, target, state):
        if not isinstance(network, LiftedNetwork):
            raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
        X0, target = network.check_data(X0, target)
        if state is None:
            state = network.init_state(X0)
        else:
            network.check_state(state, X0.shape[0])
        return X0, target, state

    def _result(self, network, state, history, n_iter, converged, message):
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
            raise FloatingPointError(
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
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.t0
