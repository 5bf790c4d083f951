"""asv: scoring by the lifted energy (:func:`~bregman_solvers.solvers.relaxed_energy`, the hot path of
:class:`~bregman_solvers.estimators.LiftedEnergyOutlierDetector`), float32 and float64.

1,000 MNIST-sized rows through the detector's default autoencoder (784-128-32-128-784, random
weights: the cost does not depend on their values): the forward pass alone (``x_steps=0``, the
reconstruction score) and 20 x-steps (the energy score's default).
"""
import functools

import numpy as np

import bregman_solvers as bs
from bregman_solvers.solvers import relaxed_energy

from ._common import DTYPES, FEATURES, THREADS, size, uniform

ROWS = size(1000, 10)
HIDDEN = [size(128, 8), size(32, 4), size(128, 8)]


@functools.cache
def _case(dtype):
    widths = [size(FEATURES, 12), *HIDDEN, size(FEATURES, 12)]
    net = bs.LiftedNetwork(widths, ["relu", "relu", "relu", "identity"], dtype=dtype, random_state=0)
    X = uniform((ROWS, widths[0]), dtype, 0.0, 1.0)
    return net, X


class RelaxedEnergy:
    params = (DTYPES, [0, 20])
    param_names = ["dtype", "x_steps"]

    def setup(self, dtype, x_steps):
        self.net, self.X = _case(dtype)

    def time_relaxed_energy(self, dtype, x_steps):
        relaxed_energy(self.net, self.X, self.X, x_steps, n_threads=THREADS)
