"""asv: one epoch of each stochastic solver and back-propagation baseline on a fixed subset.

1,000 MNIST-sized samples (random, the cost does not depend on the values), the
classification network 784-784-784-784-10 with relu, batch 100, K = 10, float32
and float64; metrics off (``track_energy=False``) so that only training is timed.
"""
import numpy as np

import bregman_solvers as bs

N = 1000
WIDTHS = [784, 784, 784, 784, 10]
ACTS = ["relu", "relu", "relu", "identity"]


def _solver(name):
    common = dict(batch_size=100, epochs=1, random_state=0, track_energy=False)
    # MATH.md's steps: safe on this random data (the cost does not depend on the steps)
    steps = dict(tau_theta=0.1, tau_x=0.1)
    # Algorithm 1 from stored variables: the products the floor counts, comparable across versions
    start = dict(aux_start="stored", momentum=0.0)
    return {
        "ImplicitSGD": lambda: bs.ImplicitSGD(inner_iterations=10, tau=1.0, **steps, **start, **common),
        # the library's defaults: forward start (one forward pass per batch), auto steps (their
        # estimate once per epoch), momentum (one extrapolation pass per batch)
        "ImplicitSGD-defaults": lambda: bs.ImplicitSGD(**common),
        "StochasticProximalGradient": lambda: bs.StochasticProximalGradient(**steps, **common),
        "ModelAveraging": lambda: bs.ModelAveraging(inner_iterations=10, tau=1.0, **steps, **common),
        "SGDBP": lambda: bs.SGDBP(**common),
        "ImplicitSGDBP": lambda: bs.ImplicitSGDBP(inner_iterations=10, **common),
        "GradientDescentBP": lambda: bs.GradientDescentBP(epochs=1, track_energy=False),
    }[name]()


class OneEpoch:
    params = (["ImplicitSGD", "ImplicitSGD-defaults", "StochasticProximalGradient", "ModelAveraging", "SGDBP",
               "ImplicitSGDBP", "GradientDescentBP"], ["float32", "float64"])
    param_names = ["solver", "dtype"]
    timeout = 300

    def setup(self, name, dtype):
        rng = np.random.default_rng(0)
        self.X = (rng.random((N, 784)) - 0.5).astype(dtype)   # centred, like the preprocessed data
        self.Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, N)]
        self.net = bs.LiftedNetwork(WIDTHS, ACTS, dtype=dtype, random_state=0)
        self.state = self.net.init_state(self.X)
        self.solver = _solver(name)
        self.lifted = name in ("ImplicitSGD", "ImplicitSGD-defaults", "StochasticProximalGradient",
                               "ModelAveraging")

    def time_epoch(self, name, dtype):
        if self.lifted:
            self.solver.fit(self.net, self.X, self.Y, state=self.state)
        else:
            self.solver.fit(self.net, self.X, self.Y)

    def peakmem_epoch(self, name, dtype):
        self.time_epoch(name, dtype)


class ImplicitSGDEpochByActivation:
    """The implicit-SGD epoch of OneEpoch with other hidden activations: the smooth ones (tanh,
    sigmoid) run the vectorised prox and sigma of ``_kernels/_smooth.h``; their epoch against
    relu's is the ratio docs/performance.rst tracks (issue 14: at most 1.5x)."""
    params = (["relu", "tanh", "sigmoid"], ["float32", "float64"])
    param_names = ["activation", "dtype"]
    timeout = 300

    def setup(self, activation, dtype):
        rng = np.random.default_rng(0)
        self.X = (rng.random((N, 784)) - 0.5).astype(dtype)
        self.Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, N)]
        self.net = bs.LiftedNetwork(WIDTHS, [activation] * 3 + ["identity"], dtype=dtype, random_state=0)
        self.state = self.net.init_state(self.X)
        self.solver = _solver("ImplicitSGD")

    def time_epoch(self, activation, dtype):
        self.solver.fit(self.net, self.X, self.Y, state=self.state)


class MomentumStep:
    """The inertial step of one batch (``_lifted.extrapolate``) on the classification network's
    parameter vector (1.85 million entries): one pass reading two vectors and writing two, against
    a batch's (3L - 1) K products."""
    params = (["float32", "float64"], [1, 2])
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        from bregman_solvers._kernels import _lifted

        self.extrapolate = _lifted.extrapolate
        net = bs.LiftedNetwork(WIDTHS, ACTS, dtype=dtype, random_state=0)
        self.theta = net.parameter_vector.copy()
        self.previous = self.theta * 0.99

    def time_extrapolate(self, dtype, n_threads):
        self.extrapolate(self.theta, self.previous, 0.7, n_threads)
