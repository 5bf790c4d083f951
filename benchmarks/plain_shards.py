"""Dask's share of a data-parallel epoch: the shards' fits as plain processes, alone and all at once.

Splits the first ``--n-train`` MNIST images into ``--shards`` strided shards and fits each with
:class:`~bregman_solvers.ImplicitSGD` (the library's defaults, the classify network, one thread, 2
epochs) as its own Python process: first shard 0 alone, then every shard at once. Beside
``benchmarks/scaling_dask.py --workers W --sync epoch`` on the same machine, the difference is what
Dask's path costs (docs/scaling.rst, "On a 16-core machine"); alone against all at once is what the
cores' shared memory costs.

    python benchmarks/plain_shards.py --data-dir DIR                      # 16 shards of 30,000 images
    python benchmarks/plain_shards.py --data-dir DIR --shards 4 --n-train 8000
"""
import argparse
import os
import subprocess
import sys

import numpy as np


def fit_shard(data_dir, n_train, shards, index, epochs):
    """One shard's fit in this process; returns its epochs' seconds."""
    import bregman_solvers as bs
    from bregman_solvers.datasets import load_mnist, one_hot, preprocess

    X, y = load_mnist(data_dir, n_samples=n_train)
    X = np.ascontiguousarray(preprocess(X)[0][index::shards])
    Y = one_hot(y[index::shards], 10, "float32")
    net = bs.LiftedNetwork([784, 784, 784, 784, 10], ["relu"] * 3 + ["identity"], dtype="float32", random_state=0)
    return bs.ImplicitSGD(epochs=epochs, random_state=0, n_threads=1).fit(net, X, Y).history["seconds"]


def run(args, indices):
    """The shards ``indices`` as concurrent processes (one thread each); their epochs' seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, __file__, "--data-dir", args.data_dir or "", "--n-train", str(args.n_train),
               "--shards", str(args.shards), "--epochs", str(args.epochs), "--only"]
    procs = [subprocess.Popen(command + [str(i)], env=env, stdout=subprocess.PIPE, text=True) for i in indices]
    return [[float(t) for t in p.communicate()[0].split()] for p in procs]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="MNIST-format IDX files (default: the embedded subset)")
    p.add_argument("--n-train", type=int, default=30000)
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--only", type=int, default=None, help=argparse.SUPPRESS)   # a child: fit one shard
    args = p.parse_args(argv)
    if args.only is not None:
        print(*fit_shard(args.data_dir or None, args.n_train, args.shards, args.only, args.epochs))
        return 0
    alone = run(args, [0])[0]
    together = run(args, range(args.shards))
    last = [seconds[-1] for seconds in together]
    print(f"{args.shards} shards of {args.n_train // args.shards} images, one thread each, {os.cpu_count()} cores")
    print(f"one shard alone: {alone[-1]:.2f} s per epoch (its last)")
    print(f"all at once:     median {np.median(last):.2f} s, {min(last):.2f}-{max(last):.2f} s per epoch "
          f"(each one's last)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
