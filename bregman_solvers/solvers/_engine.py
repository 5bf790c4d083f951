"""The step engine: the proximal-gradient steps of eq. 17 on one lifted problem.

A :class:`StepEngine` holds one problem (a network, its data or one batch of it, the
auxiliary variables) and takes the steps every lifted solver is made of, from one
iterate, for given block steps, without allocating:

* theta: ``W_l <- W_l - tau_theta_l (lambda_l / N) R_l^T X_{l-1}``, same for ``b_l``
  (mean energy, so ``tau_theta`` does not depend on N), with eq. 24's proximity term
  to an anchor where implicit SGD asks for it;
* x (per sample, the scaling convention): with ``t = tau_x lambda_l``, ``splitting="phi"``
  (Remark 11, the default: ``0.5 |x_l|^2`` in the prox, so the admissible step is
  ``1 / (lambda_{l+1} |W_{l+1}|^2)``) ``x_l <- prox_{t Phi_l}(x_l + t z_l - tau_x lambda_{l+1}
  W_{l+1}^T r_{l+1})``, evaluated as ``prox_{(t/(1+t)) Psi_l}`` of that argument over ``1 + t``;
  ``splitting="smooth"`` (always for the classical and MAC-QP penalties) keeps
  ``0.5 |x_l|^2`` in the smooth part (:meth:`StepEngine.x_coefficients`).

For a network of dense layers (``network.compiled``) the layer passes and the parameter
step without a regulariser or with a weight decay (:class:`~bregman_solvers.regularisers.SquaredL2`) are
the compiled ``_kernels._steps.ProximalSteps``; any other network (a convolution, a skip connection,
any :class:`~bregman_solvers.operators.Operator`) takes the same steps through its operators' ``forward``,
``adjoint`` and ``weight_gradient`` and the same fused activation passes (``_lifted.layer_pass``), with the
explicit parameter step: nothing else in the solvers differs. In Python stays what needs
a regulariser (explicit step, Bregman iterations, the code's threshold), the bounds, the backups.

The parameter step takes one of four forms (:meth:`StepEngine.step_form`): ``"scaled"`` (dense
layers, no regulariser or a weight decay, no proximity term or ``0 < tau_theta / tau < 1``: the
weights held as ``W_l / s_l``, ``s_l`` in :attr:`StepEngine.w_scale`, so the pull is one ``axpy``,
the gradient product accumulates into the weights and a weight decay's prox is a factor on
``s_l``; ``_layer.pxd``'s ``_parameter_step``, which the compiled K steps call too); ``"explicit"``
(any other regulariser, or other operators: pull, gradient product, prox; :meth:`theta_step`);
``"bregman"`` (:class:`~bregman_solvers.regularisers.BregmanIteration`: gradient, then the
linearised Bregman step; ``_bregman_step``); ``"input"`` (``metric="input"``: a Gauss-Newton step
in the metric of each layer's input, ``_metric.py``). Each is written once.
"""
import numpy as np

from .._kernels import _activations, _lifted, _steps
from ..regularisers import BregmanIteration, SquaredL2, check_code_regulariser, check_regulariser, soft_threshold
from ._metric import checked_metric, input_metric_step

SPLITTINGS = ("phi", "smooth")

#: Below this scale the weights are normalised before the next scaled step
#: (keeps ``W / s`` far from overflow whatever ``c`` and K are).
MIN_W_SCALE = 1e-2

#: The input layer takes the low-rank form when it needs at most this share of the plain
#: form's multiply-adds (:meth:`StepEngine.low_rank_pays`): a margin for the passes over
#: the coefficients, which the count leaves out.
LOW_RANK_MAX_SHARE = 0.75


def normalise_weights(network, w_scale, layers=None):
    """``W_l <- w_scale[l] W_l`` and ``w_scale[l] <- 1``: the weights explicit again."""
    for l in range(network.n_layers) if layers is None else layers:
        if w_scale[l] != 1.0:
            _lifted.scal(w_scale[l], network.weights[l].reshape(-1), network._product_split()[1])
            w_scale[l] = 1.0


class StepEngine:
    """Proximal-gradient steps on one lifted problem (see the module docstring).

    Parameters
    ----------
    network : LiftedNetwork
    X0, target : ndarray
        The problem's data (C-contiguous, the network's dtype, samples as rows).
    state : LiftedState
        Its auxiliary variables, updated in place.
    splitting : {"phi", "smooth"}
    regulariser, code_regulariser, bregman_state
        As the solvers take them.
    w_scale : float64 ndarray of length n_layers, optional
        The weights' scales of the scaled step, shared (updated in place) by the
        engines of one network, one per batch size, so that a scale can outlive a batch.
    metric : {"euclidean", "input"}
        The parameter step's metric: ``"input"`` takes the ``"input"`` form (``_metric.py``).
    """

    def __init__(self, network, X0, target, state, splitting="phi", regulariser=None, code_regulariser=None,
                 bregman_state=None, w_scale=None, metric="euclidean"):
        if splitting not in SPLITTINGS:
            raise ValueError(f"splitting must be one of {SPLITTINGS}, got {splitting!r}")
        self.metric = checked_metric(metric, network, regulariser)
        self.regulariser = check_regulariser(regulariser)
        self.code_regulariser = None if code_regulariser is None else check_code_regulariser(code_regulariser, network)
        if isinstance(self.regulariser, BregmanIteration) and bregman_state is None:
            bregman_state = self.regulariser.init_state(network.weights)
        self.bregman_state = bregman_state
        self.net = network
        self.X0, self.target, self.state = X0, target, state
        self.n = X0.shape[0]
        self.ws = network.workspace(self.n)
        self.splitting = splitting if network.penalty == "bregman" else "smooth"
        self._v_w = {}
        self._v_x = [None] * network.n_layers
        if w_scale is None:
            w_scale = np.ones(network.n_layers)
        elif not (isinstance(w_scale, np.ndarray) and w_scale.dtype == np.float64
                  and w_scale.shape == (network.n_layers,)):
            raise TypeError(f"w_scale must be a float64 array of length {network.n_layers} (shared, updated in "
                            f"place), got {w_scale!r}")
        self.w_scale = w_scale
        self._anchor_views = (None, None)
        self._compiled = (None, None)
        # per layer, what an operator derived from its inputs in the last evaluate (a patch
        # matrix), for the parameter step on the same auxiliary variables
        self._caches = [{} for _ in range(network.n_layers)]
        self.metric_factors = {}        # the input metric's factors kept for a batch (_metric.py)

    # -- chain of variables x_0 .. x_L
    def xs(self):
        return [self.X0, *self.state.hidden, self.target]

    # -- the x-step coefficients of hidden layer h (variable X_{h+1}, own layer h)
    def x_coefficients(self, h, tau):
        """``(a_x, c_z, back, prox_c)``: ``V_h = a_x X + c_z Z + back R_{h+1} W_{h+1}``, ``X = prox_{prox_c Psi}(V_h)``."""
        lam, lam_next = self.net.lambdas[h], self.net.lambdas[h + 1]
        t = tau * lam
        if self.splitting == "phi":
            return 1.0 / (1.0 + t), t / (1.0 + t), -tau * lam_next / (1.0 + t), t / (1.0 + t)
        return 1.0 - t, t, -tau * lam_next, t

    def _x_arrays(self, tau_x):
        """The x-step coefficients as four float64 arrays over the hidden layers (0 where no step)."""
        coefficients = np.zeros((4, self.net.n_layers - 1))
        for h, tau in enumerate(tau_x if tau_x is not None else ()):
            if tau is not None:
                coefficients[:, h] = self.x_coefficients(h, tau)
        return coefficients

    def steps(self):
        """The compiled steps of this problem (``_steps.ProximalSteps``), made again when the
        thread counts change."""
        net, ws = self.net, self.ws
        pass_threads = tuple(net._threads(z) for z in ws.z)
        product_blocks, product_threads = net._product_split()
        made_for, steps = self._compiled
        if made_for != (pass_threads, product_blocks, product_threads):
            steps = _steps.ProximalSteps(net._penalty_code, net.weights, net.biases, self.xs(), ws.z, ws.residual,
                                         ws.loss, ws.v, [a.kind for a in net.activations],
                                         [a.param for a in net.activations], pass_threads, net.layer_bounds,
                                         product_blocks, product_threads)
            self._compiled = ((pass_threads, product_blocks, product_threads), steps)
        return steps

    def evaluate(self, tau_x=None, layers=None, energy=True, pending_x=None, forward=False):
        """The layers' passes at the current iterate: per-layer energy terms.

        With ``tau_x`` (one step per hidden layer, None for a layer without) the
        x-step arguments ``V_h`` are prepared too (own term plus back term).
        ``layers`` restricts the passes. With ``energy=False`` only residuals (and
        ``V_h``) are computed, no penalty, and None is returned.

        ``pending_x``: the steps of an x-step still to take (the ``tau_x`` of the
        previous :meth:`evaluate`, whose ``V_h`` the buffers hold), in place of
        :meth:`apply_x`: each layer's pass takes it first, on rows still in cache, and
        the iterate is the one :meth:`apply_x` would have given. It needs every
        layer, a ``tau_x`` for every hidden layer and no code regulariser (whose soft
        threshold comes before the prox).

        ``forward``: the auxiliary variables are first set to the forward pass of the current
        parameters, ``X_h = sigma_h(A_h(X_{h-1}) + b_h)`` (a batch's forward start); for dense
        layers inside the passes, from the products they compute anyway (one product per layer
        instead of two). Needs every layer and no pending x-step.
        """
        net, ws = self.net, self.ws
        L = net.n_layers
        if pending_x is not None and (layers is not None or self.code_regulariser is not None):
            raise ValueError("a pending x-step needs all layers and no code regulariser")
        if forward and (layers is not None or pending_x is not None):
            raise ValueError("the forward pass needs all layers and no pending x-step")
        active = np.zeros(L, dtype=np.int8)
        active[list(range(L)) if layers is None else list(layers)] = 1
        a_x, c_z, back, prox_c = self._x_arrays(tau_x)
        with_v = np.array([tau_x is not None and tau_x[h] is not None for h in range(L - 1)], dtype=np.int8)
        if pending_x is not None:
            prox_c = self._x_arrays(pending_x)[3]
        if net.compiled:
            self.steps().evaluate(self.w_scale, a_x, c_z, back, prox_c, with_v, active, energy,
                                  pending_x is not None, forward)
        else:
            if forward:
                net.forward_hidden(self.X0, self.state.hidden, self.w_scale)
            self._evaluate_operators(a_x, c_z, back, prox_c, with_v, active, energy, pending_x is not None)
        if not energy:
            return None
        terms = np.zeros(L)
        for l in np.flatnonzero(active):
            terms[l] = float(np.mean(ws.loss[l], dtype=np.float64)) * net.lambdas[l]
        return terms

    def _evaluate_operators(self, a_x, c_z, back, prox_c, with_v, active, energy, pending):
        """:meth:`evaluate` through the layers' operators (any network): each layer's product
        and fused pass in order (a pending x-step of its target first), then every back term
        ``V_h += back_h (lambda_l / lambda_{h+1}) A_{l,j}^T R_l`` of the layers that read ``X_h``."""
        net, ws, xs = self.net, self.ws, self.xs()
        L, split = net.n_layers, net._product_split()
        self.forget_inputs()
        for l in np.flatnonzero(active):
            hidden = l < L - 1
            net._layer_pass(l, net._inputs(l, xs), xs[l + 1], ws, ws.v[l] if hidden and with_v[l] else None,
                            a_x[l] if hidden else 0.0, c_z[l] if hidden else 0.0, energy,
                            prox_c=prox_c[l] if pending and hidden else 0.0, cache=self._caches[l])
        for l in np.flatnonzero(active):
            op = net.layers[l]
            for j, source in enumerate(op.sources):
                h = l - source                  # the layer whose target (x_{h+1}) this source is
                if h >= 0 and with_v[h] and active[h]:
                    coefficient = back[h] * net.lambdas[l] / net.lambdas[h + 1]
                    op.adjoint(ws.residual[l], net.weights[l], j, ws.v[h], coefficient, split)

    # -- the parameter step
    def step_form(self, tau_theta, tau_prox=None):
        """``"scaled"``, ``"explicit"``, ``"bregman"`` or ``"input"``: the form :meth:`theta_step` takes
        (module docstring)."""
        if self.metric == "input":
            return "input"
        if isinstance(self.regulariser, BregmanIteration):
            return "bregman"
        # SquaredL2 itself, not a subclass: one that changes the prox takes the explicit form
        if self.net.compiled and (self.regulariser is None or type(self.regulariser) is SquaredL2) and (
                tau_prox is None or all(0 < t / tau_prox < 1 for t in tau_theta)):
            return "scaled"
        return "explicit"

    def _decays(self, tau_theta):
        """Per layer, the weight decay's prox ``1 / (1 + tau_theta_l alpha)`` of the scaled step
        (None without a regulariser): a factor on the weights' scale."""
        if self.regulariser is None:
            return None
        return 1.0 / (1.0 + np.asarray(tau_theta, dtype=np.float64) * self.regulariser.alpha)

    def fused_steps_apply(self, tau_theta, tau_prox):
        """Whether :meth:`proximal_steps` can take implicit SGD's K steps in one compiled call:
        the scaled parameter step, and x-steps that can wait for the next pass (no code regulariser)."""
        return self.x_step_deferrable and self.step_form(tau_theta, tau_prox) == "scaled"

    def design(self, l):
        """Layer ``l``'s design matrix at the current auxiliary variables (``Operator.design``)."""
        return self.net.layers[l].design(self.net._inputs(l, self.xs()), self._caches[l])

    def theta_gradients(self, layers=None):
        """The gradients of the energy in theta into the workspace's ``grad_w``, ``grad_b``."""
        for l in range(self.net.n_layers) if layers is None else layers:
            self._gradient_into(l, self.net.lambdas[l] / self.n, self.ws.grad_w[l], self.ws.grad_b[l], False)

    def _gradient_into(self, l, alpha, w_out, b_out, accumulate):
        """``W_out (+)= alpha (dA_l/dW)^T R_l`` and ``b_out (+)= alpha (sums of R_l over samples)``,
        mapped to the bias's shape: the parameter gradient of layer ``l`` from its residual."""
        net, ws = self.net, self.ws
        op = net.layers[l]
        op.weight_gradient(ws.residual[l], net._inputs(l, self.xs()), w_out, alpha, 1.0 if accumulate else 0.0,
                           net._product_split(), self._caches[l])
        op.bias_gradient(ws.residual[l], b_out, alpha, accumulate)

    def _bregman_step(self, tau_theta, anchor=None, tau_prox=None):
        """The ``"bregman"`` form of :meth:`theta_step`: the gradients into the workspace, then per
        layer a gradient step on the bias and the linearised Bregman step of the
        :class:`~bregman_solvers.regularisers.BregmanIteration` on the weights (its subgradient
        variables need the whole gradient, so no product accumulates into the weights); with
        ``anchor`` the proximity term's gradient ``(theta - anchor) / tau_prox`` is added."""
        self.normalise_weights()
        self.theta_gradients()
        net, ws = self.net, self.ws
        if anchor is not None:
            anchor = net.unflatten(anchor)
        for l in range(net.n_layers):
            gw, w = ws.grad_w[l], net.weights[l]
            _lifted.step_parameters(net.biases[l], ws.grad_b[l], tau_theta[l], None if anchor is None else anchor[1][l],
                                    tau_prox or 0.0, 1)
            if anchor is not None:
                gw += (w - anchor[0][l]) / tau_prox
            self.regulariser.step(w, gw, tau_theta[l], self.bregman_state.v[l])

    def theta_step(self, tau_theta, anchor=None, tau_prox=None, anchor_scale=None):
        """The parameter step from the residuals of the last :meth:`evaluate`, in the form of
        :meth:`step_form`; with ``anchor`` (a flat parameter vector) the proximity term with
        weight ``c = tau / tau_prox``. ``anchor_scale`` (per layer, default 1): the scales the
        anchor's weights carry (implicit SGD copies it from weights held scaled), which
        only the scaled form accepts.
        """
        form = self.step_form(tau_theta, tau_prox if anchor is not None else None)
        net = self.net
        if form == "scaled":
            pull, scale = self._pull(tau_theta, anchor, tau_prox, anchor_scale)
            self.steps().parameter_step(anchor, scale, self.w_scale, self._parameter_steps(tau_theta), pull,
                                        MIN_W_SCALE, self._decays(tau_theta))
            return
        if anchor is not None and anchor_scale is not None and any(a != 1.0 for a in anchor_scale):
            raise ValueError("a scaled anchor (anchor_scale != 1) needs the scaled proximity step: no "
                             "regulariser and 0 < tau_theta / tau_prox < 1")
        if form != "explicit":
            (input_metric_step if form == "input" else StepEngine._bregman_step)(self, tau_theta, anchor, tau_prox)
            return
        self.normalise_weights()
        if anchor is not None:
            theta = net.parameter_vector
            _lifted.pull_towards(theta, anchor, net.layer_bounds, np.asarray(tau_theta, dtype=np.float64) / tau_prox,
                                 net._threads(theta))
        for l, step in enumerate(self._parameter_steps(tau_theta)):
            self._gradient_into(l, -step, net.weights[l], net.biases[l], True)
            if self.regulariser is not None:
                self.regulariser.prox(net.weights[l], tau_theta[l], out=net.weights[l])

    def _pull(self, tau_theta, anchor, tau_prox, anchor_scale):
        """The scaled step's per-layer pull ``tau_theta / tau_prox`` (0 without an anchor) and anchor scales."""
        L = self.net.n_layers
        pull = np.zeros(L) if anchor is None else np.asarray(tau_theta, dtype=np.float64) / tau_prox
        scale = np.ones(L) if anchor_scale is None else np.asarray(anchor_scale, dtype=np.float64)
        return pull, scale

    def _parameter_steps(self, tau_theta):
        """``tau_theta_l lambda_l / n``: the step on the summed residuals, per layer."""
        return np.array([tau_theta[l] * self.net.lambdas[l] / self.n for l in range(self.net.n_layers)])

    def proximal_steps(self, n_steps, tau_theta, tau_x, anchor=None, tau_prox=None, anchor_scale=None,
                       low_rank=None):
        """Implicit SGD's K proximal-gradient steps after a first :meth:`evaluate` with ``tau_x``,
        in one compiled call (``ProximalSteps.run``): :meth:`theta_step`, then ``K - 1`` times
        :meth:`evaluate` with the pending x-step and :meth:`theta_step` with the pull towards
        ``anchor`` (none in the first step, which starts at it), then the last x-step.
        Needs :meth:`fused_steps_apply`; the weights are left scaled (see :attr:`w_scale`).

        ``low_rank``: take the input layer's steps in low-rank form, from the batch's Gram
        matrix (docs/performance.rst, "Fewer products per batch"); None: where
        :meth:`low_rank_pays`. The iterates are the same up to rounding.
        """
        if not self.fused_steps_apply(tau_theta, tau_prox):
            raise ValueError("proximal_steps needs the scaled step (no regulariser but a weight decay) and no "
                             "code regulariser")
        pull, anchor_scale = self._pull(tau_theta, anchor, tau_prox, anchor_scale)
        a_x, c_z, back, prox_c = self._x_arrays(tau_x)
        if low_rank is None:
            low_rank = self.low_rank_pays(n_steps)
        self.steps().run(n_steps, anchor, anchor_scale, self.w_scale, self._parameter_steps(tau_theta), pull,
                         a_x, c_z, back, prox_c, MIN_W_SCALE, bool(low_rank), self._decays(tau_theta))

    def low_rank_pays(self, n_steps):
        """Whether K = ``n_steps`` steps of the input layer cost at most :data:`LOW_RANK_MAX_SHARE` of the
        plain form's multiply-adds in low-rank form: plain ``(2K - 1) n m d`` (batch ``n``, ``d`` inputs,
        ``m`` units), low-rank ``n^2 d + (K - 1) n^2 m + n m d`` (docs/performance.rst, "Fewer products
        per batch"). It depends only on the shapes and K: one decision for a fit's batches.
        """
        n, d, m = self.n, self.net.widths[0], self.net.widths[1]
        plain = (2 * n_steps - 1) * n * m * d
        low_rank = n * n * d + (n_steps - 1) * n * n * m + n * m * d
        return low_rank <= LOW_RANK_MAX_SHARE * plain

    def normalise_weights(self, layers=None):
        """Multiply the scales of the scaled step back into the weights."""
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
            # weights held scaled only with a weight decay, whose value is homogeneous of degree 2
            value += sum(self.regulariser.value(w) * s * s for w, s in zip(self.net.weights, self.w_scale))
        if self.code_regulariser is not None:
            value += self.code_regulariser.value(self.state.hidden[self.code_regulariser.layer - 1])
        return value

    def total(self, terms):
        return float(np.sum(terms)) + self.regularisation()

    def new_batch(self):
        """Forget what was derived from the batch's data ``X0`` (the batch runner gathered another)."""
        self.metric_factors.clear()

    def forget_inputs(self):
        """Empty the operators' caches: the auxiliary variables (or the batch) changed."""
        for cache in self._caches:
            cache.clear()

    def apply_x(self, tau_x, hidden=None):
        """The x-step ``X_h = prox_{c Psi}(V_h)`` of the hidden layers (all, or ``hidden``)."""
        self.forget_inputs()
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

    @property
    def x_step_deferrable(self):
        """Whether :meth:`evaluate` can take a pending x-step (no code regulariser)."""
        return self.code_regulariser is None

    # -- block Lipschitz constants (MATH.md)
    def theta_lipschitz(self, layers=None):
        """``L_theta_l = lambda_l (|X_{l-1}|_2^2 + N) / N`` (mean energy), per layer."""
        net, xs = self.net, self.xs()
        out = np.zeros(net.n_layers)
        for l in range(net.n_layers) if layers is None else layers:
            est, self._v_x[l] = net.layers[l].input_norm_sq(net._inputs(l, xs), self._v_x[l],
                                                            30 if self._v_x[l] is None else 5)
            out[l] = net.lambdas[l] * (1.05 * est + self.n) / self.n
        return out

    def x_lipschitz(self):
        """Per-sample ``L_x_l`` (:meth:`~bregman_solvers.LiftedNetwork.x_lipschitz`), the power
        iterations warm-started from this engine's last call."""
        self.normalise_weights()
        return self.net.x_lipschitz(self.splitting, self._v_w)

    # -- checks and backups for backtracking and extrapolation
    def iterate_finite(self, parameters=True):
        """Whether every parameter (unless ``parameters`` is False) and auxiliary variable is finite
        (the parameters by one BLAS read; weights held scaled are finite exactly when the weights are)."""
        if parameters and not np.isfinite(_lifted.abs_sum(self.net.parameter_vector)):
            return False
        return all(_lifted.all_finite(h.reshape(-1), self.net._threads(h)) for h in self.state.hidden)

    def snapshot(self):
        self.normalise_weights()
        return ([w.copy() for w in self.net.weights], [b.copy() for b in self.net.biases],
                [h.copy() for h in self.state.hidden])

    def restore(self, snap):
        self.forget_inputs()
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
