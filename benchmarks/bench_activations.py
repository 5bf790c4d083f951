"""asv: every activation kernel at (100, 784) and (10000, 784), float32 and float64.

The kernels are called through :mod:`bregman_solvers.kernels` with preallocated
outputs, so the numbers are the kernels' own cost (plus a few microseconds of
argument checks), on all cores; ``ThreadScaling`` repeats the fused kernel on 1
and 2 threads.
"""
import numpy as np

from bregman_solvers import get_activation, kernels
from bregman_solvers.activations import available

SHAPES = ["100x784", "10000x784"]
DTYPES = ["float32", "float64"]


def _touched(shape, dtype):
    """An output array whose pages are already mapped (np.empty maps them on first write)."""
    out = np.empty(shape, dtype=dtype)
    out.fill(0)
    return out


def _inputs(name, shape, dtype):
    rng = np.random.default_rng(0)
    n, d = (int(v) for v in shape.split("x"))
    act = get_activation(name)
    z = (2 * rng.standard_normal((n, d))).astype(dtype)
    x = act(z + rng.standard_normal((n, d)).astype(dtype))
    return act, x, z


class ActivationKernels:
    params = (available(), SHAPES, DTYPES)
    param_names = ["activation", "shape", "dtype"]

    def setup(self, name, shape, dtype):
        self.act, self.x, self.z = _inputs(name, shape, dtype)
        self.out2 = _touched(self.z.shape, dtype)
        self.work = self.z.copy()
        self.out1 = _touched(self.z.shape[0], dtype)

    def time_sigma(self, *_):
        kernels.sigma(self.act, self.z, self.out2)

    def time_sigma_inplace(self, *_):
        kernels.sigma(self.act, self.work, self.work)

    def time_phi(self, *_):
        kernels.phi(self.act, self.x, self.out1)

    def time_phi_conj(self, *_):
        kernels.phi_conj(self.act, self.z, self.out1)

    def time_prox(self, *_):
        kernels.prox(self.act, self.z, 0.5, self.out2)

    def time_bregman_loss(self, *_):
        kernels.bregman_loss(self.act, self.x, self.z, self.out1)

    def time_bregman_grad(self, *_):
        kernels.bregman_grad(self.act, self.x, self.z, self.out2)

    def time_bregman_loss_grad(self, *_):
        kernels.bregman_loss_grad(self.act, self.x, self.z, self.out2, self.out1)


class ThreadScaling:
    """The fused loss+gradient kernel at (10000, 784) on 1 and 2 threads."""

    params = (["relu", "soft_threshold", "tanh", "softmax"], DTYPES, [1, 2])
    param_names = ["activation", "dtype", "n_threads"]

    def setup(self, name, dtype, n_threads):
        self.act, self.x, self.z = _inputs(name, "10000x784", dtype)
        self.grad = _touched(self.z.shape, dtype)
        self.loss = _touched(self.z.shape[0], dtype)

    def time_bregman_loss_grad(self, name, dtype, n_threads):
        kernels.bregman_loss_grad(self.act, self.x, self.z, self.grad, self.loss, n_threads=n_threads)


class ValidatedActivationCalls:
    """The validated Activation methods (allocating outputs, checking finiteness) at (100, 784)."""

    params = (["relu", "tanh"], DTYPES)
    param_names = ["activation", "dtype"]

    def setup(self, name, dtype):
        self.act, self.x, self.z = _inputs(name, "100x784", dtype)

    def time_call(self, *_):
        self.act(self.z)

    def time_bregman_loss_grad(self, *_):
        self.act.bregman_loss_grad(self.x, self.z)


class SmoothKernelsBySimd:
    """tanh and sigmoid's sigma and prox at (100, 784), one thread, on the baseline loops and on
    their AVX2 copies (``kernels.simd_level``; the same results bit for bit): what the run-time
    dispatch is worth. On a CPU without AVX2 both rows run the baseline."""
    params = (["tanh", "sigmoid"], DTYPES, ["baseline", "avx2"])
    param_names = ["activation", "dtype", "simd"]

    def setup(self, name, dtype, simd):
        self.act, self.x, self.z = _inputs(name, "100x784", dtype)
        self.out = _touched(self.z.shape, dtype)
        self.previous = kernels.simd_level()
        kernels.simd_level(simd)

    def teardown(self, *_):
        kernels.simd_level(self.previous)

    def time_sigma(self, *_):
        kernels.sigma(self.act, self.z, self.out, n_threads=1)

    def time_prox(self, *_):
        kernels.prox(self.act, self.z, 0.5, self.out, n_threads=1)
