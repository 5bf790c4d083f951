"""One implicit-SGD epoch of the installed (or ``PYTHONPATH``) library, for A/B comparisons of commits.

Run it from each commit's tree in turn (separate processes, alternated, the best of a few rounds
per commit counts), quiet and beside a busy process::

    PYTHONPATH=/path/to/old/tree python benchmarks/ab_epoch.py
    PYTHONPATH=/path/to/new/tree python benchmarks/ab_epoch.py

It prints one JSON line: per configuration of ``compare.py`` (classification 784-784-784-784-10
with K = 10, autoencoder 784 x 5 with K = 30; relu; batch 100), dtype and mode, the best epoch of
``--repeat`` in seconds per 1,000 samples. Mode ``alg1`` is Algorithm 1 from stored variables with
``tau_theta = tau_x = 0.1``, ``tau = 1``, no momentum (what the peers compute); ``defaults`` is
ImplicitSGD's defaults (classification only). Only the public API of releases since the
momentum was added is used, so old commits run it unchanged. Random data: the timing, not the
accuracy, is the point.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import bregman_solvers as bs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ALGORITHM_1, CONFIGS  # noqa: E402 - the sibling module, whatever the cwd


def epoch_seconds(widths, K, dtype, settings, n_samples, repeat, rng):
    """The best of ``repeat`` epochs, in seconds per 1,000 samples."""
    X = (rng.random((n_samples, widths[0])) - 0.5).astype(dtype)
    Y = X.copy() if widths[-1] == widths[0] else np.eye(widths[-1], dtype=dtype)[rng.integers(0, widths[-1],
                                                                                              n_samples)]
    net = bs.LiftedNetwork(widths, ["relu"] * (len(widths) - 2) + ["identity"], dtype=dtype, random_state=0)
    state = net.init_state(X)
    solver = bs.ImplicitSGD(batch_size=100, inner_iterations=K, epochs=1, random_state=0, track_energy=False,
                            shuffle=False, **settings)
    solver.fit(net, X[:200], Y[:200])                   # warm-up: buffers, thread pools
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        solver.fit(net, X, Y, state=state)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / n_samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "float64"], default=["float32", "float64"])
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.n_samples < 200:
        parser.error("--repeat must be >= 1 and --n-samples >= 200")
    rng = np.random.default_rng(0)
    out = {}
    for config in args.configs:
        widths, K = CONFIGS[config]
        for dtype in args.dtypes:
            modes = {"alg1": ALGORITHM_1}
            if config == "classification":
                modes["defaults"] = {}
            for mode, settings in modes.items():
                out[f"{config} {dtype} {mode}"] = epoch_seconds(widths, K, dtype, settings, args.n_samples,
                                                               args.repeat, rng)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
