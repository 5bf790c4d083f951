"""Data-parallel implicit SGD on Dask: accuracy, seconds per epoch and bytes per round.

Trains the classify configuration (784-784-784-784-10 relu, identity output, batch 100,
K = 10, tau_theta = tau_x = 0.5, tau = 10, no momentum, float32; ``--defaults``: the library's
steps) on MNIST-format data with
:class:`~bregman_solvers.DistributedImplicitSGD` for every number of workers and every
``sync_every`` asked for, beside the single-process :class:`~bregman_solvers.ImplicitSGD`
on all cores, and prints one table (docs/scaling.rst). Each configuration runs on a new
LocalCluster of ``workers`` processes with ``cores // workers`` threads each (at least 1);
the cluster's start is not in the epoch times.

    python benchmarks/scaling_dask.py --data-dir DIR                       # the docs' first table
    python benchmarks/scaling_dask.py --data-dir DIR --defaults            # with the library's defaults
    python benchmarks/scaling_dask.py --data-dir DIR --defaults --velocity average restart   # both velocities
    python benchmarks/scaling_dask.py --data-dir DIR --workers 16 --sync 60 --epochs 1   # a 16-core machine
    python benchmarks/scaling_dask.py --data-dir DIR --threads-vs-workers  # 2 x 1 vs 1 x 2, quiet and busy
    python benchmarks/scaling_dask.py --data-dir DIR --memmap              # auxiliary variables on disk
    python benchmarks/scaling_dask.py --model rows.json                    # the cost model of a --json run

Without ``--data-dir`` it runs on the embedded 5,000-image subset (a smoke test).
"""
import argparse
import math
import json
import multiprocessing
import subprocess
import sys

import numpy as np

import bregman_solvers as bs
from bregman_solvers._threads import usable_cores
from bregman_solvers.datasets import load_mnist, one_hot, preprocess

#: The settings of docs/scaling.rst's first tables (the library's defaults when they were measured:
#: stored start, fixed steps, no momentum); ``--defaults`` gives today's (forward start, auto, 0.7)
STEPS = dict(batch_size=100, inner_iterations=10, tau_theta=0.5, tau_x=0.5, tau=10.0, aux_start="stored",
             momentum=0.0)


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


def fit(data, epochs, workers=None, sync="epoch", threads=None, aux_storage="memory", seed=0, velocity=None):
    """One fit; returns its row: accuracy per epoch, seconds per epoch, bytes per round, rounds.

    ``velocity``: DistributedImplicitSGD's (None: the library's default)."""
    Xtr, Ytr, Xte, Yte = data
    net = network(Xtr.shape[1])
    common = dict(epochs=epochs, random_state=seed, validation_data=(Xte, Yte), **STEPS)
    if workers is None:
        solver = bs.ImplicitSGD(n_threads=threads, **common)
    else:
        solver = bs.DistributedImplicitSGD(n_workers=workers, sync_every=sync, threads_per_worker=threads,
                                           aux_storage=aux_storage, **common)
        if velocity is not None:
            solver.velocity = velocity
    result = solver.fit(net, Xtr, Ytr)
    h = result.history
    return {"workers": workers, "sync_every": sync, "threads": threads, "aux_storage": aux_storage,
            # only where a velocity crosses an averaging
            "velocity": solver.velocity if workers and workers > 1 and STEPS["momentum"] else None,
            "seed": seed, "n_batches": -(-Xtr.shape[0] // STEPS["batch_size"]), "theta_bytes": net.parameter_vector.nbytes,
            "accuracy": h["val_accuracy"], "seconds": h["seconds"],
            "bytes_per_round": (h.get("bytes_per_round") or [0])[0], "rounds": (h.get("rounds") or [0])[0],
            "worker_bytes_per_round": (h.get("worker_bytes_per_round") or [0])[0],
            "worker_losses": int(sum(h.get("worker_losses") or [0])),
            # the safeguard's halvings per epoch and the step factor at each epoch's end: a recovery
            # shows as a dip in the accuracy curve
            "recoveries": [int(r) for r in h.get("recoveries", [])],
            "step_factor": [float(f) for f in h.get("step_factor", [])]}


def describe(row):
    who = "ImplicitSGD, 1 process" if row["workers"] is None else f"{row['workers']} workers"
    sync = "" if row["workers"] is None else f", sync {row['sync_every']}"
    if row.get("velocity"):
        sync += f", velocity {row['velocity']}"
    return (f"| {who}{sync} | {row['threads']} | " + " ".join(f"{100 * a:.1f}" for a in row["accuracy"])
            + f" | {np.median(row['seconds']):.1f} | {row['rounds']} | {row['bytes_per_round'] / 1e6:.1f} |")


HEADER = ("| run | threads each | test accuracy per epoch (%) | s/epoch (median) | rounds/epoch | "
          "MB per round |\n|---|---|---|---|---|---|")


#: What the cost model assumes beyond this machine (docs/scaling.rst): one process's products scale
#: 5.5x from 1 to 16 threads at batch 100 (measured on a 16-core machine), and machines talk over
#: 10 Gb/s Ethernet (1.25 GB/s at the driver's network card)
GEMM_SPEEDUP_16 = 5.5
NETWORK_BANDWIDTH = 1.25e9


def round_bytes(W, theta_bytes, tree=True):
    """Bytes on a round's critical path with ``W`` shards. Gathered at the driver (the rows measured
    before the tree, which carry no ``worker_bytes_per_round``): ``2 W |theta|`` through its card.
    Averaged on the workers: the driver's ``2 |theta|`` (theta out, the average in), then
    ``ceil(log2 W)`` levels of the tree, each one float64 partial sum (``2 |theta|`` for float32)
    up and theta down (assuming Dask spreads it from the replicas it has made, as it fetches a key
    from any holder)."""
    if not tree:
        return 2 * W * theta_bytes
    return (2 + 3 * math.ceil(math.log2(W))) * theta_bytes if W > 1 else 2 * theta_bytes


def cost_model(rows, cores):
    """Fit ``seconds per epoch = (batches / W) t_batch + rounds x round_bytes(W) / bandwidth`` to the
    rows of single-threaded workers that do not oversubscribe the cores (W x 1 <= cores), several
    ``sync_every`` each; returns the fitted constants and the predictions for larger machines (with
    the averaging tree, :func:`round_bytes`).

    ``t_batch`` is one batch on one thread while the other cores work too (memory and cache
    shared, as they will be); ``bandwidth`` is what a round achieves per byte on its critical path
    (pickling, the loopback, the average).
    """
    fit_rows = [r for r in rows if r["workers"] and r["workers"] > 1 and r["threads"] == 1
                and r["workers"] <= cores and r["aux_storage"] == "memory"]
    if len({r["rounds"] for r in fit_rows}) < 2:
        return None
    n_batches, theta_bytes = fit_rows[0]["n_batches"], fit_rows[0]["theta_bytes"]
    # unknowns: t_batch, seconds per byte on a round's critical path
    A = np.array([[n_batches / r["workers"],
                   r["rounds"] * round_bytes(r["workers"], theta_bytes, tree="worker_bytes_per_round" in r)]
                  for r in fit_rows])
    y = np.array([np.median(r["seconds"]) for r in fit_rows])
    (t_batch, per_byte), *_ = np.linalg.lstsq(A, y, rcond=None)
    per_byte = max(per_byte, 1e-12)
    residual = float(np.max(np.abs(A @ [t_batch, per_byte] - y) / y))
    return {"t_batch_s": float(t_batch), "driver_GB_per_s": 1e-9 / per_byte, "largest_relative_residual": residual,
            "theta_MB": theta_bytes / 1e6, "n_batches": n_batches,
            "predicted_s_per_epoch": predictions(t_batch, 1.0 / per_byte, theta_bytes, n_batches)}


def predictions(t_batch, local_bandwidth, theta_bytes, n_batches):
    """Seconds per epoch on the larger machines of docs/scaling.rst, with the averaging tree."""
    def data_parallel(W, sync, bandwidth, speedup=1.0):
        per_shard = n_batches / W
        return per_shard * t_batch / speedup + np.ceil(per_shard / sync) * round_bytes(W, theta_bytes) / bandwidth

    rows = {
        "16 cores, 1 process x 16 threads": n_batches * t_batch / GEMM_SPEEDUP_16,
        "16 cores, 16 workers x 1 thread, sync 60": data_parallel(16, 60, local_bandwidth),
        "16 cores, 16 workers x 1 thread, sync 10": data_parallel(16, 10, local_bandwidth),
        "4 x 16 cores, 4 workers x 16 threads, sync 60": data_parallel(4, 60, NETWORK_BANDWIDTH, GEMM_SPEEDUP_16),
        "4 x 16 cores, 64 workers x 1 thread, sync epoch": data_parallel(64, n_batches, NETWORK_BANDWIDTH),
        "4 x 16 cores, 64 workers x 1 thread, sync 2": data_parallel(64, 2, NETWORK_BANDWIDTH),
    }
    return {k: round(float(v), 2) for k, v in rows.items()}


def bytes_per_round(workers, n_train=2000):
    """Bytes through the driver and between the workers in one round, measured by fits of a small
    network (784-64-10) on the embedded images, one epoch averaged every 5 batches, for each number
    of local workers (one thread each); returns rows ``(workers, driver bytes, worker bytes, theta bytes)``."""
    X, y = bs.datasets.load_mnist(subset="train", n_samples=n_train)
    X = (X / 255.0).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[y]
    rows = []
    for W in workers:
        net = bs.LiftedNetwork([784, 64, 10], ["relu", "identity"], dtype="float32", random_state=0)
        h = bs.DistributedImplicitSGD(n_workers=W, threads_per_worker=1, sync_every=5, epochs=1,
                                      random_state=0).fit(net, X, Y).history      # the library's defaults
        rows.append((W, h["bytes_per_round"][0], h["worker_bytes_per_round"][0], net.parameter_vector.nbytes))
    return rows


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
                   help="only: 1 process x 1 thread, 1 process x all cores, one worker per core; quiet and beside "
                   "a busy process")
    p.add_argument("--memmap", action="store_true", help="only: auxiliary variables in memory vs memory-mapped")
    p.add_argument("--repeat", type=int, default=1, help="repetitions of --threads-vs-workers and --memmap")
    p.add_argument("--aux-start", choices=["stored", "forward"], default="stored",
                   help="where a batch's auxiliary variables start (the tables: stored)")
    p.add_argument("--tau-theta", type=lambda t: t if t == "auto" else float(t), default=0.5,
                   help="the parameter step, a number or 'auto' (the tables: 0.5)")
    p.add_argument("--momentum", type=float, default=0.0, help="the momentum between batches (the tables: 0)")
    p.add_argument("--defaults", action="store_true",
                   help="the library's defaults: --aux-start forward --tau-theta auto --momentum 0.7")
    p.add_argument("--velocity", nargs="+", choices=["average", "restart"], default=None,
                   help="DistributedImplicitSGD's velocity across an averaging, with momentum (default: the "
                   "library's)")
    p.add_argument("--seed", type=int, default=0, help="random_state of every fit (the split, the batches)")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--bytes", type=int, nargs="+", default=None, metavar="W",
                   help="only: the bytes of a round through the driver and between the workers, for W local "
                   "workers each (a small network on the embedded images)")
    p.add_argument("--model", default=None, metavar="JSON",
                   help="only: fit the cost model to the rows of an earlier --json and print its predictions")
    args = p.parse_args(argv)
    STEPS.update(aux_start=args.aux_start, tau_theta=args.tau_theta, momentum=args.momentum)
    if args.defaults:
        library = bs.ImplicitSGD()
        STEPS.update(aux_start=library.aux_start, tau_theta=library.tau_theta, momentum=library.momentum)
    if args.bytes:
        print("| workers | through the driver per round | between the workers (bound) | theta |\n|---|---|---|---|")
        for W, driver, workers, theta in bytes_per_round(args.bytes):
            print(f"| {W} | {driver / 1e3:.1f} kB | {workers / 1e3:.1f} kB | {theta / 1e3:.1f} kB |", flush=True)
        return 0
    if args.model:
        with open(args.model) as f:
            rows = json.load(f)
        for row in rows:          # JSON keys are strings
            row.setdefault("n_batches", -(-args.n_train // STEPS["batch_size"]))
            row.setdefault("theta_bytes", 4 * (784 * 784 * 3 + 784 * 3 + 7840 + 10))
        print(json.dumps(cost_model(rows, usable_cores()), indent=1))
        return 0
    data = load(args)
    cores = usable_cores()
    print(f"{data[0].shape[0]} training / {data[2].shape[0]} test images, {cores} cores, {args.epochs} epochs",
          flush=True)
    rows = []

    def run(label=None, **kw):
        row = fit(data, args.epochs, seed=args.seed, **kw)
        if label:
            row["label"] = label
        rows.append(row)
        print(describe(row) + (f" {label}" if label else ""), flush=True)

    print(HEADER)
    if args.threads_vs_workers:
        for busy in (False, True):
            for _ in range(args.repeat):        # interleaved: this machine's speed drifts
                other = busy_process() if busy else None
                try:
                    label = "beside a busy process" if busy else "quiet"
                    run(label, threads=1)                           # the in-process scaling's baseline
                    run(label, threads=cores)
                    run(label, workers=cores, threads=1)
                finally:
                    if other is not None:
                        other.kill()
    elif args.memmap:
        for _ in range(args.repeat):
            for storage in ("memory", "memmap"):
                run(storage, workers=2, threads=max(1, cores // 2), aux_storage=storage)
    else:
        if not args.no_reference:
            run(threads=cores)
        velocities = args.velocity or [None]         # None: the library's default
        for workers in args.workers:
            for sync in (args.sync if workers > 1 else ["epoch"]):   # one shard: sync_every changes nothing
                # one shard, or no momentum: no velocity crosses an averaging
                for velocity in (velocities if workers > 1 and STEPS["momentum"] else velocities[:1]):
                    run(workers=workers, sync=sync if sync == "epoch" else int(sync),
                        threads=max(1, cores // workers), velocity=velocity)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
