"""asv: one epoch of each stochastic solver and back-propagation baseline on a fixed subset.

1,000 MNIST-sized samples (random, the cost does not depend on the values), the
classification network 784-784-784-784-10 with relu, batch 100, K = 10, float32
and float64, on ``_common.THREADS`` threads; metrics off (``track_energy=False``) so that only
training is timed. Each sample is one epoch continuing from the last (the network and state are
built once per process).
"""
import functools

import bregman_solvers as bs
from bregman_solvers.regularisers import SquaredL2

from ._common import DTYPES, EpochTiming, FEATURES, HIDDEN, THREADS, classification_data, size

N = size(1000, 20)
BATCH = size(100, 10)
WIDTHS = [FEATURES, HIDDEN, HIDDEN, HIDDEN, 10]
ACTS = ["relu", "relu", "relu", "identity"]
SOLVERS = ["ImplicitSGD", "ImplicitSGD-defaults", "ImplicitSGD-weight-decay", "StochasticProximalGradient", "ModelAveraging", "SGDBP",
           "ImplicitSGDBP", "GradientDescentBP"]
LIFTED = ("ImplicitSGD", "ImplicitSGD-defaults", "ImplicitSGD-weight-decay", "StochasticProximalGradient",
          "ModelAveraging")


def _solver(name):
    common = dict(batch_size=BATCH, epochs=1, random_state=0, track_energy=False, n_threads=THREADS)
    # MATH.md's steps: safe on this random data (the cost does not depend on the steps)
    steps = dict(tau_theta=0.1, tau_x=0.1)
    # Algorithm 1 from stored variables: the products the floor counts, comparable across versions
    start = dict(aux_start="stored", momentum=0.0)
    return {
        "ImplicitSGD": lambda: bs.ImplicitSGD(inner_iterations=10, tau=1.0, **steps, **start, **common),
        # the library's defaults: forward start (inside the first evaluation), auto steps (their
        # estimate once per epoch), momentum (one extrapolation pass per batch)
        "ImplicitSGD-defaults": lambda: bs.ImplicitSGD(**common),
        # a weight decay: its prox a factor on the weights' scale inside the compiled K steps
        "ImplicitSGD-weight-decay": lambda: bs.ImplicitSGD(regulariser=SquaredL2(1e-4), **common),
        "StochasticProximalGradient": lambda: bs.StochasticProximalGradient(**steps, **common),
        "ModelAveraging": lambda: bs.ModelAveraging(inner_iterations=10, tau=1.0, **steps, **common),
        "SGDBP": lambda: bs.SGDBP(**common),
        "ImplicitSGDBP": lambda: bs.ImplicitSGDBP(inner_iterations=10, **common),
        "GradientDescentBP": lambda: bs.GradientDescentBP(epochs=1, track_energy=False, n_threads=THREADS),
    }[name]()


@functools.cache
def _epoch_case(name, dtype, activation="relu"):
    X, Y = classification_data(N, dtype)
    net = bs.LiftedNetwork(WIDTHS, [activation] * 3 + ["identity"], dtype=dtype, random_state=0)
    return X, Y, net, net.init_state(X), _solver(name)


class OneEpoch(EpochTiming):
    params = (SOLVERS, DTYPES)
    param_names = ["solver", "dtype"]

    def setup(self, name, dtype):
        self.X, self.Y, self.net, self.state, self.solver = _epoch_case(name, dtype)
        self.lifted = name in LIFTED

    def time_epoch(self, name, dtype):
        if self.lifted:
            self.solver.fit(self.net, self.X, self.Y, state=self.state)
        else:
            self.solver.fit(self.net, self.X, self.Y)

    def peakmem_epoch(self, name, dtype):
        self.time_epoch(name, dtype)


class ImplicitSGDEpochByActivation(EpochTiming):
    """The implicit-SGD epoch of OneEpoch with other hidden activations: the smooth ones (tanh,
    sigmoid) run the vectorised prox and sigma of ``_kernels/_smooth.h``; their epoch against
    relu's is the ratio docs/performance.rst tracks (issue 14: at most 1.5x)."""
    params = (["relu", "tanh", "sigmoid"], DTYPES)
    param_names = ["activation", "dtype"]

    def setup(self, activation, dtype):
        self.X, self.Y, self.net, self.state, self.solver = _epoch_case("ImplicitSGD", dtype, activation)

    def time_epoch(self, activation, dtype):
        self.solver.fit(self.net, self.X, self.Y, state=self.state)


@functools.cache
def _parameters(dtype):
    theta = bs.LiftedNetwork(WIDTHS, ACTS, dtype=dtype, random_state=0).parameter_vector.copy()
    return theta, theta * 0.99


class MomentumStep:
    """The inertial step of one batch (``_lifted.extrapolate``) on the classification network's
    parameter vector (1.85 million entries): one pass reading two vectors and writing two, against
    a batch's (3L - 1) K products."""
    params = (DTYPES, sorted({1, 2, THREADS}))
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        from bregman_solvers._kernels import _lifted

        self.extrapolate = _lifted.extrapolate
        self.theta, self.previous = _parameters(dtype)

    def time_extrapolate(self, dtype, n_threads):
        self.extrapolate(self.theta, self.previous, 0.7, n_threads)


@functools.cache
def _batch_engine(dtype):
    from bregman_solvers.solvers._engine import StepEngine

    X, Y = classification_data(BATCH, dtype)
    net = bs.LiftedNetwork(WIDTHS, ACTS, dtype=dtype, random_state=0, n_threads=THREADS)
    X0, target = net.check_data(X, Y)
    return net, StepEngine(net, X0, target, net.init_state(X0))


class BatchSteps:
    """One batch's first evaluation (with the forward start) and K = 10 steps, the input layer in
    low-rank form (what ImplicitSGD takes here) and plain: the products saved by the low-rank
    form (docs/performance.rst, "Fewer products per batch")."""
    params = (["low_rank", "plain"], DTYPES)
    param_names = ["input_layer", "dtype"]

    def setup(self, form, dtype):
        import numpy as np

        self.net, self.engine = _batch_engine(dtype)
        self.theta = self.net.parameter_vector.copy()
        self.t_theta, self.t_x = np.full(4, 0.05), np.full(3, 0.1)

    def time_batch(self, form, dtype):
        engine = self.engine
        engine.restore_parameters(self.theta)
        engine.evaluate(self.t_x, forward=True)
        engine.proximal_steps(10, self.t_theta, self.t_x, self.theta, 10.0, low_rank=form == "low_rank")
