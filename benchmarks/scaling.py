"""Thread scaling: the fused kernels and implicit-SGD epochs at 1, 2, 4, 8, 16 threads.

The epochs: the classify network (784-784-784-784-10) and LeNet-5 (``"lenet5"``, the library's
defaults with tau_x 0.1, Euclidean steps and ``theta_metric="input"``) on random images.

Counts above the machine's cores are skipped. For each count the OpenMP kernels get
that many threads; the epoch runs with the solver's ``n_threads`` (BLAS at one thread,
the products split over that many OpenMP threads, see docs/performance.rst, "Threads").
Set ``BREGMAN_SOLVERS_PRODUCT_BLOCKS`` to the largest count to split products into enough
blocks. Prints milliseconds and the speed-up over 1 thread.

    python benchmarks/scaling.py                  # all counts up to os.cpu_count()
    python benchmarks/scaling.py --threads 1 2 4
"""
import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import bregman_solvers as bs
from bregman_solvers import kernels


def best(fn, repeat):
    fn()
    out = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-samples", type=int, default=2000, help="samples of the implicit-SGD epochs")
    parser.add_argument("--no-conv", action="store_true", help="skip the LeNet-5 epochs")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    counts = [t for t in args.threads if t <= cores]
    rng = np.random.default_rng(0)
    z = (2 * rng.standard_normal((10000, 784))).astype(args.dtype)
    rows = {}
    for name in ("relu", "soft_threshold", "tanh", "softmax"):
        act = bs.get_activation(name)
        x = act(z + 1)
        g, loss = np.empty_like(z), np.empty(10000, args.dtype)
        rows[f"bregman_loss_grad {name} (10000, 784)"] = [
            best(lambda: kernels.bregman_loss_grad(act, x, z, g, loss, n_threads=t), args.repeat) for t in counts]
    X = (rng.random((args.n_samples, 784)) - 0.5).astype(args.dtype)
    Y = np.eye(10, dtype=args.dtype)[rng.integers(0, 10, args.n_samples)]

    def dense(t):
        net = bs.LiftedNetwork([784, 784, 784, 784, 10], ["relu"] * 3 + ["identity"], dtype=args.dtype,
                               random_state=0)
        return net, bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=1, random_state=0, tau_theta=0.1,
                                   tau_x=0.1, tau=1.0, track_energy=False, n_threads=t, aux_start="stored",
                                   momentum=0.0)

    def lenet5(metric):
        def make(t):
            net = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, dtype=args.dtype, random_state=0)
            return net, bs.ImplicitSGD(epochs=1, tau_x=0.1, random_state=0, track_energy=False, n_threads=t,
                                       theta_metric=metric)
        return make

    configs = {f"implicit-SGD epoch ({args.n_samples} samples, K=10)": dense}
    if not args.no_conv:
        configs[f"LeNet-5 epoch, Euclidean steps ({args.n_samples})"] = lenet5("euclidean")
        configs[f"LeNet-5 epoch, input metric ({args.n_samples})"] = lenet5("input")
    for label, make in configs.items():
        epoch = []
        for t in counts:
            net, solver = make(t)
            with threadpool_limits(t, user_api="blas"):      # the warm-up (first-call costs)
                solver.fit(net, X[:200], Y[:200])
            t0 = time.perf_counter()
            solver.fit(net, X, Y)
            epoch.append(time.perf_counter() - t0)
        rows[label] = epoch
    print(f"{os.cpu_count()} cores, {args.dtype}; ms (speed-up over 1 thread)")
    print(f"{'':48}" + "".join(f"{t:>16}" for t in counts))
    for label, times in rows.items():
        cells = "".join(f"{1e3 * v:9.1f} ({times[0] / v:4.2f}x)" for v in times)
        print(f"{label:48}{cells}")


if __name__ == "__main__":
    main()
