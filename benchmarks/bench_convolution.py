"""asv: the convolution kernels (im2col, col2im, average pooling and its adjoint) and one implicit-SGD
epoch of the LeNet-5-like lifted CNN, float32 and float64.

The kernels on a batch of 100 images as LeNet-5's second convolution reads them (14x14x6, 5x5
kernels, 10x10 outputs) and its first pooling (28x28x6 by 2); the epoch on 500 random
MNIST-sized samples (the cost does not depend on the values), batch 100, K = 10, Algorithm 1
from stored variables with fixed steps (the products comparable across versions).
"""
import functools

import numpy as np

import bregman_solvers as bs
from bregman_solvers._kernels import _conv
from bregman_solvers.architectures import architecture

from ._common import DTYPES, THREADS, EpochTiming, classification_data, size

BATCH = size(100, 3)


@functools.cache
def _kernel_case(dtype):
    rng = np.random.default_rng(0)
    conv = bs.Conv2d((14, 14, 6), 16, 5)
    images = rng.random((BATCH, conv.in_size)).astype(dtype)
    big = rng.random((BATCH, 28 * 28 * 6)).astype(dtype)
    return dict(conv=conv, images=images, cols=conv.patches(images), back=np.zeros_like(images), big=big,
                pooled=np.empty((BATCH, 14 * 14 * 6), dtype), big_back=np.zeros_like(big),
                geometry=conv._geometry())


class ConvolutionKernels:
    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        self.__dict__.update(_kernel_case(dtype))

    def time_im2col(self, dtype):
        _conv.im2col(self.images, self.cols, *self.geometry)

    def time_col2im(self, dtype):
        _conv.col2im(self.cols, self.back, *self.geometry)

    def time_avg_pool(self, dtype):
        _conv.avg_pool(self.big, self.pooled, 28, 28, 6, 2)

    def time_avg_pool_adjoint(self, dtype):
        _conv.avg_pool_adjoint(self.pooled, self.big_back, 28, 28, 6, 2)


@functools.cache
def _lenet_case(dtype, metric="euclidean"):
    X, Y = classification_data(size(500, 6), dtype)
    net = bs.LiftedNetwork(architecture("lenet5", (28, 28, 1), 10), ["relu"] * 4 + ["identity"], dtype=dtype,
                           random_state=0)
    # the Euclidean steps at a fixed step (what compare.py's floor counts), or the input metric
    # (the default for convolutional networks) with the command line's convolutional steps
    steps = dict(tau_theta=0.01, tau=1.0) if metric == "euclidean" else dict(tau_theta=0.25, tau=100.0)
    solver = bs.ImplicitSGD(batch_size=BATCH, inner_iterations=10, epochs=1, random_state=0, track_energy=False,
                            tau_x=0.1, aux_start="stored", momentum=0.0, n_threads=THREADS, theta_metric=metric,
                            **steps)
    return X, Y, net, net.init_state(X), solver


class LeNetEpoch(EpochTiming):
    params = (DTYPES, ["euclidean", "input"])
    param_names = ["dtype", "theta_metric"]

    def setup(self, dtype, metric):
        self.X, self.Y, self.net, self.state, self.solver = _lenet_case(dtype, metric)

    def time_epoch(self, dtype, metric):
        self.solver.fit(self.net, self.X, self.Y, state=self.state)

    def peakmem_epoch(self, dtype, metric):
        self.time_epoch(dtype, metric)
