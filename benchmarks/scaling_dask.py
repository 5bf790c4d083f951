"""Data-parallel implicit SGD on Dask: accuracy, seconds per epoch and bytes per round.

Trains the classify configuration (784-784-784-784-10 relu, identity output, batch 100,
K = 10, tau_theta = tau_x = 0.5, tau = 10, float32) on MNIST-format data with
:class:`~bregman_solvers.DistributedImplicitSGD` for every number of workers and every
``sync_every`` asked for, beside the single-process :class:`~bregman_solvers.ImplicitSGD`
on all cores, and prints one table (docs/scaling.rst). Each configuration runs on a new
LocalCluster of ``workers`` processes with ``cores // workers`` threads each (at least 1);
the cluster's start is not in the epoch times.

    python benchmarks/scaling_dask.py --data-dir DIR                       # the docs' table
    python benchmarks/scaling_dask.py --data-dir DIR --workers 16 --sync 60 --epochs 1   # a 16-core machine
    python benchmarks/scaling_dask.py --data-dir DIR --threads-vs-workers  # 2 x 1 vs 1 x 2, quiet and busy
    python benchmarks/scaling_dask.py --data-dir DIR --memmap              # auxiliary variables on disk

Without ``--data-dir`` it runs on the embedded 5,000-image subset (a smoke test).
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np

import bregman_solvers as bs
from bregman_solvers._threads import usable_cores
from bregman_solvers.datasets import load_mnist, one_hot, preprocess

STEPS = dict(batch_size=100, inner_iterations=10, tau_theta=0.5, tau_x=0.5, tau=10.0)


def load(args):
    """Training and test images of the data set (scaled to [0, 1], centred by the training mean)."""
    Xtr, ytr = load_mnist(args.data_dir, "train")
    Xte, yte = load_mnist(args.data_dir, "test")
    Xtr, ytr, Xte, yte = Xtr[:args.n_train], ytr[:args.n_train], Xte[:args.n_test], yte[:args.n_test]
    Xtr, Xte, _ = preprocess(Xtr, Xte)
    return Xtr, one_hot(ytr, 10, "float32"), Xte, one_hot(yte, 10, "float32")


def network(n_features):
    return bs.LiftedNetwork([n_features, 784, 784, 784, 10], ["relu"] * 3 + ["identity"], dtype="float32",
                            random_state=0)


def fit(data, epochs, workers=None, sync="epoch", threads=None, aux_storage="memory", seed=0):
    """One fit; returns its row: accuracy per epoch, seconds per epoch, bytes per round, rounds."""
    Xtr, Ytr, Xte, Yte = data
    net = network(Xtr.shape[1])
    common = dict(epochs=epochs, random_state=seed, validation_data=(Xte, Yte), **STEPS)
    if workers is None:
        result = bs.ImplicitSGD(n_threads=threads, **common).fit(net, Xtr, Ytr)
    else:
        result = bs.DistributedImplicitSGD(n_workers=workers, sync_every=sync, threads_per_worker=threads,
                                           aux_storage=aux_storage, **common).fit(net, Xtr, Ytr)
    h = result.history
    return {"workers": workers, "sync_every": sync, "threads": threads, "aux_storage": aux_storage,
            "accuracy": h["val_accuracy"], "seconds": h["seconds"],
            "bytes_per_round": (h.get("bytes_per_round") or [0])[0], "rounds": (h.get("rounds") or [0])[0],
            "worker_losses": int(sum(h.get("worker_losses") or [0]))}


def describe(row):
    who = "ImplicitSGD, 1 process" if row["workers"] is None else f"{row['workers']} workers"
    sync = "" if row["workers"] is None else f", sync {row['sync_every']}"
    return (f"| {who}{sync} | {row['threads']} | " + " ".join(f"{100 * a:.1f}" for a in row["accuracy"])
            + f" | {np.median(row['seconds']):.1f} | {row['rounds']} | {row['bytes_per_round'] / 1e6:.1f} |")


HEADER = ("| run | threads each | test accuracy per epoch (%) | s/epoch (median) | rounds/epoch | "
          "MB per round |\n|---|---|---|---|---|---|")


def busy_process():
    """A single-threaded busy loop beside the measurement (a colleague's job on a shared machine)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="MNIST-format IDX files (default: the embedded subset)")
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--sync", nargs="+", default=["epoch", "60", "10"], help="sync_every values")
    p.add_argument("--no-reference", action="store_true", help="skip the single-process ImplicitSGD")
    p.add_argument("--threads-vs-workers", action="store_true",
                   help="only: 2 workers x 1 thread vs 1 process x 2 threads, quiet and beside a busy process")
    p.add_argument("--memmap", action="store_true", help="only: auxiliary variables in memory vs memory-mapped")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    data = load(args)
    cores = usable_cores()
    print(f"{data[0].shape[0]} training / {data[2].shape[0]} test images, {cores} cores, {args.epochs} epochs",
          flush=True)
    rows = []

    def run(label=None, **kw):
        row = fit(data, args.epochs, **kw)
        if label:
            row["label"] = label
        rows.append(row)
        print(describe(row) + (f" {label}" if label else ""), flush=True)

    print(HEADER)
    if args.threads_vs_workers:
        for busy in (False, True):
            for _ in range(2):                  # interleaved: this machine's speed drifts
                other = busy_process() if busy else None
                try:
                    run("busy" if busy else "quiet", threads=cores)
                    run("busy" if busy else "quiet", workers=cores, threads=1)
                finally:
                    if other is not None:
                        other.kill()
    elif args.memmap:
        for _ in range(2):
            for storage in ("memory", "memmap"):
                run(storage, workers=2, threads=max(1, cores // 2), aux_storage=storage)
    else:
        if not args.no_reference:
            run(threads=cores)
        for workers in args.workers:
            for sync in (args.sync if workers > 1 else ["epoch"]):   # one shard: sync_every changes nothing
                run(workers=workers, sync=sync if sync == "epoch" else int(sync),
                    threads=max(1, cores // workers))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
