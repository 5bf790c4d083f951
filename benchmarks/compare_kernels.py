"""Fused Bregman kernels against the equivalent NumPy expressions, side by side.

For every activation this times, in one run and on the same data:

* ``fused``: ``bregman_solvers.kernels.bregman_loss_grad`` (one pass: sigma(z) - x
  into a preallocated gradient and the per-sample loss), on ``n_threads`` threads;
* ``numpy``: the best plain NumPy expression of the same two results, with
  preallocated buffers and ``out=`` arguments (a fair peer, not a straw man);

and prints the ratio numpy / fused. Run::

    python benchmarks/compare_kernels.py                 # (10000, 784), both dtypes
    python benchmarks/compare_kernels.py --shape 100 784 --threads 1

The NumPy references compute the same stable formulas as the kernels (see
``tests/oracles.py`` for the oracle versions used by the tests).
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bregman_solvers import get_activation, kernels
from bregman_solvers.activations import available


def best_time(fn, repeat, number=1):
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


class NumpyReference:
    """sigma(z) - x and the per-sample loss with NumPy, reusing preallocated buffers."""

    def __init__(self, name, param, shape, dtype):
        self.name, self.p = name, param
        self.s = np.empty(shape, dtype)
        self.t = np.empty(shape, dtype)
        self.loss = np.empty(shape[0], dtype)
        self._extra = np.empty(shape, dtype)

    def loss_buffer(self, shape, dtype):
        return self._extra

    def __call__(self, x, z, grad):
        s, t, p = self.s, self.t, self.p
        name = self.name
        if name == "identity":
            np.subtract(z, x, out=grad)
            np.multiply(grad, grad, out=t)
            np.sum(t, axis=1, out=self.loss)
            self.loss *= 0.5
            return
        if name == "relu":
            np.maximum(z, 0, out=s)
            np.subtract(s, z, out=t)        # max(-z, 0)
            np.multiply(t, x, out=t)
        elif name == "leaky_relu":
            # B = 0.5 (x - s)^2 + Psi(x) - Psi(s) - <z - s, x - s>, Psi(x) = c min(x, 0)^2
            c = (1 - p) / (2 * p)
            np.multiply(z, p, out=t)
            np.maximum(z, t, out=s)          # z >= 0 ? z : a z  (a <= 1)
            np.subtract(s, x, out=grad)
            np.minimum(x, 0, out=t)
            np.square(t, out=t)
            t *= c                           # Psi(x)
            buf = self.loss_buffer(shape=s.shape, dtype=s.dtype)
            np.minimum(s, 0, out=buf)
            np.square(buf, out=buf)
            buf *= c                         # Psi(s)
            t -= buf
            np.subtract(z, s, out=buf)
            buf *= grad                      # (z - s)(s - x)
            t += buf
            np.square(grad, out=buf)
            buf *= 0.5
            t += buf
            np.sum(t, axis=1, out=self.loss)
            return
        elif name == "soft_threshold":
            np.abs(z, out=t)
            t -= p
            np.maximum(t, 0, out=t)
            np.copysign(t, z, out=s)
            np.clip(z, -p, p, out=t)
            np.multiply(t, x, out=t)
            np.subtract(p * np.abs(x), t, out=t)
        elif name == "nonneg_soft_threshold":
            np.subtract(z, p, out=s)
            np.maximum(s, 0, out=s)
            np.minimum(z, p, out=t)
            np.subtract(p, t, out=t)
            np.multiply(t, x, out=t)
        elif name == "hard_tanh":
            np.clip(z, -1, 1, out=s)
            np.subtract(z, s, out=t)
            np.multiply(t, s - x, out=t)
        elif name in ("tanh", "sigmoid"):
            if name == "tanh":
                np.tanh(z, out=s)
                q, y = (1 + x) / 2, 2 * z
            else:
                np.negative(z, out=t)
                np.exp(t, out=t)
                t += 1
                np.reciprocal(t, out=s)
                q, y = x, z
            np.subtract(s, x, out=grad)
            with np.errstate(divide="ignore", invalid="ignore"):
                kl = (np.where(q > 0, q * np.log(q), 0) + np.where(q < 1, (1 - q) * np.log1p(-q), 0)
                      + q * np.logaddexp(0, -y) + (1 - q) * np.logaddexp(0, y))
            np.sum(kl, axis=1, out=self.loss)
            return
        elif name == "softmax":
            m = z.max(axis=1, keepdims=True)
            np.subtract(z, m, out=t)
            np.exp(t, out=s)
            tot = s.sum(axis=1, keepdims=True)
            s /= tot
            np.subtract(s, x, out=grad)
            with np.errstate(divide="ignore", invalid="ignore"):
                logx = np.where(x > 0, np.log(x), 0)
            t -= np.log(tot)
            np.subtract(logx, t, out=t)
            t *= x
            np.sum(t, axis=1, out=self.loss)
            return
        np.subtract(s, x, out=grad)
        np.square(grad, out=s)
        s *= 0.5
        s += t
        np.sum(s, axis=1, out=self.loss)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(10000, 784))
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads of the kernels (default all)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    args = parser.parse_args(argv)
    n_threads = kernels.effective_n_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = tuple(args.shape)
    print(f"shape {shape}, kernel threads {n_threads}; times in ms (best of {args.repeat})")
    print(f"{'dtype':8} {'activation':24} {'fused':>9} {'numpy':>9} {'numpy/fused':>12}")
    ratios = []
    for dtype in args.dtypes:
        z = (2 * rng.standard_normal(shape)).astype(dtype)
        for name in available():
            act = get_activation(name)
            # an x in the domain, near but not at sigma(z)
            x = act(rng.standard_normal(shape).astype(dtype) + z)
            grad = np.empty_like(z)
            loss = np.empty(shape[0], dtype)
            ref = NumpyReference(name, act.param, shape, np.dtype(dtype))
            t_fused = best_time(lambda: kernels.bregman_loss_grad(act, x, z, grad, loss, n_threads=n_threads), args.repeat)
            with threadpool_limits(n_threads):
                t_numpy = best_time(lambda: ref(x, z, grad), args.repeat)
            # the two must agree, or the comparison means nothing
            kernels.bregman_loss_grad(act, x, z, grad, loss, n_threads=n_threads)
            g_ref = grad.copy()
            ref(x, z, g_ref)
            tol = 1e-3 if dtype == "float32" else 1e-9
            assert np.allclose(g_ref, grad, rtol=tol, atol=tol), name
            assert np.allclose(ref.loss, loss, rtol=tol, atol=tol * shape[1]), name
            ratios.append(t_numpy / t_fused)
            print(f"{dtype:8} {name:24} {1e3 * t_fused:9.3f} {1e3 * t_numpy:9.3f} {t_numpy / t_fused:11.2f}x")
    print(f"smallest speed-up: {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
