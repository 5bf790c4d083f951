"""asv: the activation kernels, called through :mod:`bregman_solvers.kernels` with preallocated outputs.

The numbers are the kernels' own cost (plus a few microseconds of argument checks) on
``_common.THREADS`` threads. ``ActivationKernels`` times every kernel (sigma, in place, Phi, Phi*,
prox, loss, gradient, fused) on a representative subset of the activations: relu (piecewise
linear), soft_threshold (a threshold), tanh (smooth, vectorised ``_smooth.h``) and softmax
(coupled along a row), at a fit's batch (100, 784) and a throughput size (10000, 784), both dtypes.
``ActivationKernelsFullGrid`` times every activation on that grid; it is skipped unless
``BREGMAN_SOLVERS_BENCH_FULL_GRID=1`` (see ``_common``).
"""
import functools

from bregman_solvers import get_activation, kernels
from bregman_solvers.activations import available

from ._common import DTYPES, FULL_GRID, THREADS, size, touched, uniform

SHAPES = ["100x784", "10000x784"]
REPRESENTATIVE = ["relu", "soft_threshold", "tanh", "softmax"]


def _rows(shape):
    n, d = (int(v) for v in shape.split("x"))
    return (size(n, min(n, 7)), size(d, 5))


@functools.cache
def _case(name, shape, dtype):
    """The activation, a feasible x = sigma(z + noise), z, and the outputs, for one grid point."""
    act = get_activation(name)
    n, d = _rows(shape)
    z = uniform((n, d), dtype)
    x = act(z + 0.5 * uniform((n, d), dtype)[::-1])
    return act, x, z, touched((n, d), dtype), z.copy(), touched(n, dtype)


class ActivationKernels:
    params = (REPRESENTATIVE, SHAPES, DTYPES)
    param_names = ["activation", "shape", "dtype"]

    def setup(self, name, shape, dtype):
        self.act, self.x, self.z, self.out2, self.work, self.out1 = _case(name, shape, dtype)

    def time_sigma(self, *_):
        kernels.sigma(self.act, self.z, self.out2, n_threads=THREADS)

    def time_sigma_inplace(self, *_):
        kernels.sigma(self.act, self.work, self.work, n_threads=THREADS)

    def time_phi(self, *_):
        kernels.phi(self.act, self.x, self.out1, n_threads=THREADS)

    def time_phi_conj(self, *_):
        kernels.phi_conj(self.act, self.z, self.out1, n_threads=THREADS)

    def time_prox(self, *_):
        kernels.prox(self.act, self.z, 0.5, self.out2, n_threads=THREADS)

    def time_bregman_loss(self, *_):
        kernels.bregman_loss(self.act, self.x, self.z, self.out1, n_threads=THREADS)

    def time_bregman_grad(self, *_):
        kernels.bregman_grad(self.act, self.x, self.z, self.out2, n_threads=THREADS)

    def time_bregman_loss_grad(self, *_):
        kernels.bregman_loss_grad(self.act, self.x, self.z, self.out2, self.out1, n_threads=THREADS)


class ActivationKernelsFullGrid(ActivationKernels):
    """Every activation x shape x dtype (320 rows, about 5 minutes on 2 cores): asked for with
    ``BREGMAN_SOLVERS_BENCH_FULL_GRID=1 asv run --python=same -b ActivationKernelsFullGrid``."""
    params = (available(), SHAPES, DTYPES)

    def setup(self, name, shape, dtype):
        if not FULL_GRID:
            raise NotImplementedError("the full grid runs with BREGMAN_SOLVERS_BENCH_FULL_GRID=1")
        super().setup(name, shape, dtype)


class ThreadScaling:
    """The fused loss+gradient kernel at (10000, 784) on 1, 2 and all usable threads."""

    params = (REPRESENTATIVE, DTYPES, sorted({1, 2, THREADS}))
    param_names = ["activation", "dtype", "n_threads"]

    def setup(self, name, dtype, n_threads):
        self.act, self.x, self.z, self.grad, _, self.loss = _case(name, "10000x784", dtype)

    def time_bregman_loss_grad(self, name, dtype, n_threads):
        kernels.bregman_loss_grad(self.act, self.x, self.z, self.grad, self.loss, n_threads=n_threads)


class ValidatedActivationCalls:
    """The validated Activation methods (allocating outputs, checking finiteness) at (100, 784)."""

    params = (["relu", "tanh"], DTYPES)
    param_names = ["activation", "dtype"]

    def setup(self, name, dtype):
        self.act, self.x, self.z = _case(name, "100x784", dtype)[:3]

    def time_call(self, *_):
        self.act(self.z, n_threads=THREADS)

    def time_bregman_loss_grad(self, *_):
        self.act.bregman_loss_grad(self.x, self.z, n_threads=THREADS)


class SmoothKernelsBySimd:
    """tanh and sigmoid's sigma and prox at (100, 784), one thread, on the baseline loops and on
    their AVX2 copies (``kernels.simd_level``; the same results bit for bit): what the run-time
    dispatch is worth. On a CPU without AVX2 both rows run the baseline."""
    params = (["tanh", "sigmoid"], DTYPES, ["baseline", "avx2"])
    param_names = ["activation", "dtype", "simd"]

    def setup(self, name, dtype, simd):
        self.act, self.x, self.z, self.out = _case(name, "100x784", dtype)[:4]
        self.previous = kernels.simd_level()
        kernels.simd_level(simd)

    def teardown(self, *_):
        kernels.simd_level(self.previous)

    def time_sigma(self, *_):
        kernels.sigma(self.act, self.z, self.out, n_threads=1)

    def time_prox(self, *_):
        kernels.prox(self.act, self.z, 0.5, self.out, n_threads=1)
