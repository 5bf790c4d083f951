"""``bregman-solvers demo``: a short demonstration of the proximal-activation kernels.

For every activation it evaluates sigma, the Bregman loss and its gradient on a
batch, checks Lemma 8 (grad_z B = sigma(z) - x) against a finite difference and
the consistency property B(sigma(z), z) = 0, and times the fused loss+gradient
kernel on 1 and on all threads.
"""
import sys
import time

import numpy as np

from . import kernels, show_config
from .activations import available, get_activation


def _best_of(fn, repeat=5):
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def demo(n_samples=10000, n_features=784, dtype="float32", seed=0, out=None):
    rng = np.random.default_rng(seed)
    out = sys.stdout if out is None else out      # looked up per call: a redirected stdout is honoured
    show_config(file=out)
    n_all = kernels.effective_n_threads(None)
    print(f"\nBregman kernels on a ({n_samples}, {n_features}) {dtype} batch", file=out)
    header = f"{'activation':24} {'mean B(x,z)':>12} {'B(s(z),z)':>10} {'FD check':>9} {'1 thread':>10} {f'{n_all} threads':>11}"
    print(header, file=out)
    for name in available():
        act = get_activation(name)
        z = (2 * rng.standard_normal((n_samples, n_features))).astype(dtype)
        x = act(z + rng.standard_normal(z.shape).astype(dtype))
        grad, loss = np.empty_like(z), np.empty(n_samples, dtype)
        kernels.bregman_loss_grad(act, x, z, grad, loss)
        at_consistency = float(np.abs(act.bregman_loss(act(z), z)).max())
        # Lemma 8 on one sample in float64: a central difference of B in z
        x0, z0 = x[:1].astype(np.float64), z[:1].astype(np.float64)
        h, j = 1e-6, 0
        step = np.zeros_like(z0)
        step[0, j] = h
        fd = (act.bregman_loss(x0, z0 + step)[0] - act.bregman_loss(x0, z0 - step)[0]) / (2 * h)
        ok = abs(fd - act.bregman_grad(x0, z0)[0, j]) < 1e-5
        t1 = _best_of(lambda: kernels.bregman_loss_grad(act, x, z, grad, loss, n_threads=1))
        tn = _best_of(lambda: kernels.bregman_loss_grad(act, x, z, grad, loss, n_threads=n_all))
        print(
            f"{name:24} {float(loss.mean()):12.4f} {at_consistency:10.1e} {'ok' if ok else 'FAIL':>9} "
            f"{1e3 * t1:8.2f}ms {1e3 * tn:9.2f}ms",
            file=out,
        )
    return 0
