"""asv: one layer update, one inner iteration of each solver, the whole-parameter passes.

Widths 784 (a 784-784-784-784-10 relu network), batches of 100 and 1000 samples
(MNIST-sized random data; the cost does not depend on the values), float32 and float64.
"""
import functools

import numpy as np

import bregman_solvers as bs
from bregman_solvers._kernels import _lifted
from bregman_solvers.solvers._engine import StepEngine
from bregman_solvers.solvers.block_coordinate import theta_block_sweep, x_block_sweep

from ._common import DTYPES, FEATURES, HIDDEN, THREADS, blas_controller, classification_data, pin_blas, size

WIDTHS = [FEATURES, HIDDEN, HIDDEN, HIDDEN, 10]
BATCHES = [size(100, 5), size(1000, 9)]


@functools.cache
def _problem(batch, dtype):
    """The network, a batch, its labels and auxiliary variables: built once per benchmark process
    (asv re-runs setup before every sample; the benchmarks go on from where the last call left)."""
    X, Y = classification_data(batch, dtype)
    net = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "relu", "identity"], dtype=dtype, random_state=0,
                           n_threads=THREADS)
    X, Y = net.check_data(X, Y)
    return net, X, Y, net.init_state(X)


@functools.cache
def _workspace(batch, dtype):
    return _problem(batch, dtype)[0].workspace(batch)


class LayerUpdate:
    """The fused layer pass: Z = X W^T (GEMM), then bias, residual, loss and x-step argument."""

    params = (BATCHES, DTYPES)
    param_names = ["batch", "dtype"]

    def setup(self, batch, dtype):
        pin_blas()
        self.net, self.X, self.Y, self.state = _problem(batch, dtype)
        self.ws = _workspace(batch, dtype)
        self.x1 = self.state.hidden[0]

    def time_layer_pass(self, batch, dtype):
        self.net._layer_pass(1, self.x1, self.state.hidden[1], self.ws, self.ws.v[1], 0.5, 0.5)

    def time_layer_pass_residual_only(self, batch, dtype):
        # the inner iterations after the first: no penalty computed
        self.net._layer_pass(1, self.x1, self.state.hidden[1], self.ws, self.ws.v[1], 0.5, 0.5, with_loss=False)


@functools.cache
def _parameter_passes(dtype):
    net = _problem(BATCHES[0], dtype)[0]
    theta = net.parameter_vector
    anchor = theta + 1  # a pull towards a different point (the result stays finite and normal)
    return net, anchor, np.empty_like(theta), np.full(net.n_layers, 1e-3)


class ParameterPasses:
    """Whole-parameter passes of implicit SGD: the proximity pull (explicit, and scaled by BLAS
    axpy), the anchor copy and the finiteness check of a batch."""

    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        self.net, self.anchor, self.copy, self.coef = _parameter_passes(dtype)
        self.threads = self.net._threads(self.net.parameter_vector)

    def time_pull_towards(self, dtype):
        _lifted.pull_towards(self.net.parameter_vector, self.anchor, self.net.layer_bounds, self.coef, self.threads)

    def time_pull_axpy(self, dtype):
        _lifted.axpy(1e-3, self.anchor, self.net.parameter_vector)

    def time_anchor_copy(self, dtype):
        _lifted.copy(self.net.parameter_vector, self.copy)

    def time_finiteness_check(self, dtype):
        _lifted.abs_sum(self.net.parameter_vector)


@functools.cache
def _iterations(batch, dtype):
    """A step engine on one batch with the steps, anchor and ADMM variables the iterations use."""
    net, X, Y, state = _problem(batch, dtype)
    engine = StepEngine(net, X, Y, state)
    admm = bs.ADMM(admm_iterations=1, inner_iterations=1)
    admm._start(engine)       # split and dual variables, as fit() does once
    case = dict(net=net, engine=engine, admm=admm, tau_theta=0.1 / engine.theta_lipschitz(),
                tau_x=0.1 / engine.x_lipschitz(), anchor=net.parameter_vector.copy(),
                anchor_scale=np.ones(net.n_layers), isgd_tau_theta=np.full(net.n_layers, 1e-3),
                isgd_tau_x=np.full(net.n_layers - 1, 1e-3))
    engine.evaluate(case["isgd_tau_x"])           # V of a first iteration: an x-step is pending
    return case


class SolverIterations:
    params = (BATCHES, DTYPES)
    param_names = ["batch", "dtype"]

    def setup(self, batch, dtype):
        pin_blas()
        self.__dict__.update(_iterations(batch, dtype))

    def time_implicit_sgd_inner_iteration(self, batch, dtype):
        # Algorithm 1's inner step after the first, one call at a time: residuals only (with
        # the pending x-step), then the scaled parameter step with the proximity pull
        self._inner_iteration(self.engine)

    def _inner_iteration(self, e):
        # as ImplicitSGD runs it: the previous iteration's x-step taken inside the layer passes
        e.evaluate(self.isgd_tau_x, energy=False, pending_x=self.isgd_tau_x)
        e.theta_step(self.isgd_tau_theta, anchor=self.anchor, tau_prox=1.0)

    def time_parameter_step(self, batch, dtype):
        # the parameter step alone, as every solver takes it: gradient products, proximity pull, bias
        self.engine.theta_step(self.isgd_tau_theta, anchor=self.anchor, tau_prox=1.0)

    def time_implicit_sgd_batch_steps(self, batch, dtype):
        # the K = 10 steps of one batch as ImplicitSGD runs them without a regulariser: the
        # first evaluation (the batch energy), then one compiled call (_kernels._steps)
        self._batch_steps(self.engine)

    def _batch_steps(self, e):
        e.total(e.evaluate(self.isgd_tau_x))
        e.proximal_steps(10, self.isgd_tau_theta, self.isgd_tau_x, self.anchor, 1.0, self.anchor_scale)

    def time_proximal_gradient_iteration(self, batch, dtype):
        e = self.engine
        e.evaluate(self.tau_x)
        e.theta_step(self.tau_theta)
        e.apply_x(self.tau_x)

    def time_bcd_sweep(self, batch, dtype):
        theta_block_sweep(self.engine, 1, 0.1)
        x_block_sweep(self.engine, [1], 1, 0.1)
        x_block_sweep(self.engine, [0, 2], 1, 0.1)

    def time_admm_sweep(self, batch, dtype):
        # one sweep: theta by ADMM (one iteration per layer, Cholesky factor included) and both x blocks
        self.admm._theta_block(self.engine)
        x_block_sweep(self.engine, [1], 1, 1.0)
        x_block_sweep(self.engine, [0, 2], 1, 1.0)


@functools.cache
def _products(dtype):
    rng = np.random.default_rng(0)
    n, d = BATCHES[0], HIDDEN
    x, r = (rng.standard_normal((n, d)).astype(dtype) for _ in range(2))
    w = rng.standard_normal((d, d)).astype(dtype)
    return {"forward": (False, True, 1.0, x, w, 0.0, np.empty((n, d), dtype)),
            "gradient": (True, False, 1e-3, r, x, 1.0, w.copy()),
            "back": (False, False, 1e-3, r, w, 1.0, np.empty((n, d), dtype))}


class SplitProducts:
    """The products of a batch of 100 as a fit runs them: BLAS at one thread, the product split into
    blocks over the library's OpenMP threads (``_lifted.gemm(..., n_blocks, n_threads)``), against
    one BLAS call on BLAS's own threads (what the library did before, and the floor of compare.py)."""

    params = (["forward", "gradient", "back"], sorted({1, 2, THREADS}), DTYPES)
    param_names = ["product", "threads", "dtype"]

    def setup(self, product, threads, dtype):
        from bregman_solvers._runtime import SETTINGS

        self.args = _products(dtype)[product]
        self.blocks = SETTINGS.product_blocks
        self.controller = blas_controller()

    def time_split_blas_one_thread(self, product, threads, dtype):
        with self.controller.limit(limits=1, user_api="blas"):
            _lifted.gemm(*self.args, self.blocks, threads)

    def time_blas_own_threads(self, product, threads, dtype):
        with self.controller.limit(limits=threads, user_api="blas"):
            _lifted.gemm(*self.args)
