"""asv: the convolution kernels (im2col, col2im, average pooling and its adjoint) and one implicit-SGD
epoch of the LeNet-5-like lifted CNN, float32 and float64.

The kernels on a batch of 100 images as LeNet-5's second convolution reads them (14x14x6, 5x5
kernels, 10x10 outputs) and its first pooling (28x28x6 by 2); the epoch on 500 random
MNIST-sized samples (the cost does not depend on the values), batch 100, K = 10, Algorithm 1
from stored variables with fixed steps (the products comparable across versions).
"""
import numpy as np

import bregman_solvers as bs
from bregman_solvers._kernels import _conv
from bregman_solvers.architectures import architecture

DTYPES = ["float32", "float64"]


class ConvolutionKernels:
    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        rng = np.random.default_rng(0)
        self.conv = bs.Conv2d((14, 14, 6), 16, 5)
        self.images = rng.random((100, self.conv.in_size)).astype(dtype)
        self.cols = self.conv.patches(self.images)
        self.back = np.zeros_like(self.images)
        self.big = rng.random((100, 28 * 28 * 6)).astype(dtype)
        self.pooled = np.empty((100, 14 * 14 * 6), dtype)
        self.big_back = np.zeros_like(self.big)
        self.geometry = self.conv._geometry()

    def time_im2col(self, dtype):
        _conv.im2col(self.images, self.cols, *self.geometry)

    def time_col2im(self, dtype):
        _conv.col2im(self.cols, self.back, *self.geometry)

    def time_avg_pool(self, dtype):
        _conv.avg_pool(self.big, self.pooled, 28, 28, 6, 2)

    def time_avg_pool_adjoint(self, dtype):
        _conv.avg_pool_adjoint(self.pooled, self.big_back, 28, 28, 6, 2)


class LeNetEpoch:
    params = (DTYPES,)
    param_names = ["dtype"]
    timeout = 300

    def setup(self, dtype):
        rng = np.random.default_rng(0)
        self.X = (rng.random((500, 784)) - 0.5).astype(dtype)
        self.Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 500)]
        self.net = bs.LiftedNetwork(architecture("lenet5", (28, 28, 1), 10), ["relu"] * 4 + ["identity"], dtype=dtype,
                                    random_state=0)
        self.state = self.net.init_state(self.X)
        self.solver = bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=1, random_state=0,
                                     track_energy=False, tau_theta=0.01, tau_x=0.1, tau=1.0, aux_start="stored",
                                     momentum=0.0)

    def time_epoch(self, dtype):
        self.solver.fit(self.net, self.X, self.Y, state=self.state)

    def peakmem_epoch(self, dtype):
        self.time_epoch(dtype)
