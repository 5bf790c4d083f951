"""Where the time of an implicit-SGD batch goes: the calls of one epoch, timed by wrapping them.

On the embedded MNIST images (the first ``--n-samples``), the classification configuration of
``compare.py`` (784-784-784-784-10 relu, batch 100,
K = 10, ``track_energy=False``; ``--config autoencoder``: 784 x 5, K = 30) with ImplicitSGD's defaults (the forward start, momentum 0.7,
``tau_theta="auto"``); per batch, in milliseconds: gathering the batch, the momentum's
extrapolation, copying the anchor theta^k, the K steps (the first step's evaluation, which
also takes the forward start and the energy the batch reports, then one compiled call),
the finiteness check, writing the batch back, the rest (Python between them), the epoch's
start (the step rule's estimate, once per epoch: spread over the few batches of this epoch
it looks like a per-batch cost, which it is not), and the share of the batch outside the K
steps, with and without the epoch's start. One fit of ``--repeat`` + 1 epochs runs; the first (the
warm-up, with the fit's own setup) is not timed, and the best of the others counts::

    python benchmarks/profile_batch.py [--repeat 3] [--dtypes float32 float64] [--config autoencoder]
"""
import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

import bregman_solvers as bs
from bregman_solvers._kernels import _lifted
from bregman_solvers.datasets import EMBEDDED_DIR, load_mnist, one_hot, preprocess
from bregman_solvers.solvers import _batches, _engine, stochastic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import CONFIGS  # noqa: E402 - the sibling module (its configurations), whatever the cwd

BATCH = 100


def timed_calls(targets, totals):
    """Wrap ``(owner, name, label)`` callables so that each call's seconds add to ``totals[label]``;
    ``label`` may be a function of the call's keyword arguments. Returns what to restore."""
    originals = []
    for owner, name, label in targets:
        static = inspect.getattr_static(owner, name)
        real = getattr(owner, name)
        originals.append((owner, name, static))

        def wrapper(*args, real=real, label=label, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                key = label(kwargs) if callable(label) else label
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

        setattr(owner, name, staticmethod(wrapper) if isinstance(static, staticmethod) else wrapper)
    return originals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="classification")
    args = parser.parse_args(argv)
    widths, K = CONFIGS[args.config]
    if args.repeat < 1 or not BATCH <= args.n_samples <= 5000:
        parser.error(f"--repeat must be >= 1 and --n-samples between {BATCH} and 5000 (the embedded images)")
    steps_label = "K steps"
    totals = {}
    originals = timed_calls([
        (_batches._BatchBuffers, "gather", "gather"),
        (_lifted, "copy", "anchor copy"),
        (_lifted, "extrapolate", "momentum step + anchor"),  # the copy fused into the step
        # the first step's evaluation: the forward start, the energy the batch reports
        (_engine.StepEngine, "evaluate", "first evaluation"),
        (stochastic.ImplicitSGD, "batch_steps", "_all"),
        (_engine.StepEngine, "iterate_finite", "finiteness check"),
        (_batches._BatchBuffers, "scatter", "scatter"),
        # once per epoch, not per batch: the step rule's estimate at the epoch's start
        (_batches.AlgorithmOneBatches, "epoch_steps", "epoch start"),
    ], totals)
    n_batches = args.n_samples // BATCH
    # the embedded MNIST images (random data with random labels made the defaults diverge and
    # recover, whose undo and redo then counted as "rest" and "K steps")
    images, labels = load_mnist(EMBEDDED_DIR, n_samples=args.n_samples)
    try:
        for dtype in args.dtypes:
            X, _ = preprocess(images, dtype=np.dtype(dtype).type)
            Y = X.copy() if widths[-1] == widths[0] else one_hot(labels, 10, dtype)
            net = bs.LiftedNetwork(widths, ["relu"] * (len(widths) - 2) + ["identity"], dtype=dtype, random_state=0)
            state = net.init_state(X)
            marks = []

            def mark_epoch(result):
                # one fit of several epochs, each timed from the previous epoch's end: the fit's own
                # setup (validation, thread limits) is not a per-batch cost and stays out
                marks.append((time.perf_counter(), dict(totals), result.history["recoveries"][-1]))
                totals.clear()

            solver = bs.ImplicitSGD(batch_size=BATCH, inner_iterations=K, epochs=args.repeat + 1, random_state=0,
                                    track_energy=False, shuffle=False, callback=mark_epoch)
            totals.clear()
            solver.fit(net, X, Y, state=state)
            best = min(((later[0] - earlier[0], later[1]) for earlier, later in zip(marks, marks[1:])),
                       key=lambda timed: timed[0])
            recovered = sum(mark[2] for mark in marks[1:])
            if recovered:
                print(f"  (the timed epochs diverged and recovered {recovered} time(s): undo and redo are "
                      "in the parts below)")
            epoch, parts = best
            # batch_steps = first evaluation + the compiled call + the finiteness check
            inner = parts.pop("_all")
            parts[steps_label] = inner - parts.get("finiteness check", 0.0)
            first = parts.pop("first evaluation", 0.0)
            print(f"{dtype}: {epoch / n_batches * 1e3:.2f} ms per batch of {BATCH} (K = {K}), "
                  f"best of {args.repeat} epochs of {args.n_samples} samples")
            for label in ("gather", "momentum step + anchor", "anchor copy", steps_label):
                print(f"  {label:24} {parts.get(label, 0.0) / n_batches * 1e3:8.3f} ms")
            print(f"    {'of which step 1 eval.':22} {first / n_batches * 1e3:8.3f} ms")
            for label in ("finiteness check", "scatter"):
                print(f"  {label:24} {parts.get(label, 0.0) / n_batches * 1e3:8.3f} ms")
            rest = epoch - sum(parts.values())
            print(f"  {'rest (Python)':24} {rest / n_batches * 1e3:8.3f} ms")
            start_of_epoch = parts.pop("epoch start", 0.0)
            print(f"  {'epoch start (steps)':24} {start_of_epoch / n_batches * 1e3:8.3f} ms "
                  f"({start_of_epoch * 1e3:.1f} ms once per epoch, here over {n_batches} batches)")
            outside = epoch - parts[steps_label]
            print(f"  outside the K steps: {100 * outside / epoch:.1f}% of the batch; "
                  f"{100 * (outside - start_of_epoch) / (epoch - start_of_epoch):.1f}% without the epoch's start")
    finally:
        for owner, name, real in originals:
            setattr(owner, name, real)


if __name__ == "__main__":
    main()
