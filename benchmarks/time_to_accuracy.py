"""Seconds to a test accuracy: LBN (implicit SGD) against SGD-BP, side by side.

The paper's classification setting (784-784-784-784-10, relu, identity output, batch 100,
K = 10), float32, on full MNIST and Fashion-MNIST (60,000 / 10,000). Prints, per data set
and model, the training seconds (validation excluded) and epochs until the test accuracy
first reaches each target (90, 95, 96, 97% for MNIST; 80, 85% for Fashion-MNIST), and the
final accuracies::

    python benchmarks/time_to_accuracy.py --data-dir ../shared/data --epochs 20
    python benchmarks/time_to_accuracy.py --data-dir ../shared/data --datasets fashion-mnist \\
        --aux-start stored --tau-theta 0.5 --momentum 0 --epochs 5     # Algorithm 1 as the paper states it

``--data-dir`` holds ``mnist/`` and ``fashion-mnist/`` with the IDX files (without it: the
embedded MNIST subset, for a quick look). ``--json FILE`` also writes every epoch's accuracy
and seconds.
"""
import argparse
import json
import os
import time

import numpy as np

import bregman_solvers as bs
from bregman_solvers.datasets import load_fashion_mnist, load_mnist, one_hot, preprocess

TARGETS = {"mnist": (0.90, 0.95, 0.96, 0.97), "fashion-mnist": (0.80, 0.85)}
HIDDEN = [784, 784, 784]


def load(dataset, data_dir, n_train, n_test, dtype):
    loader = load_mnist if dataset == "mnist" else load_fashion_mnist
    path = None if data_dir is None else os.path.join(data_dir, dataset)
    X, y = loader(path, "train")
    Xt, yt = loader(path, "test")
    X, Xt, _ = preprocess(X[:n_train], Xt[:n_test], dtype=np.dtype(dtype).type)
    n_classes = int(max(y.max(), yt.max())) + 1
    return X, one_hot(y[:n_train], n_classes, dtype), Xt, one_hot(yt[:n_test], n_classes, dtype)


def epoch_line(dataset, model):
    """A callback printing each epoch's test accuracy and seconds as it ends (the table comes at the end)."""
    def report(result):
        h = result.history
        print(f"  {dataset} {model} epoch {h['epoch'][-1]}: {100 * h['val_accuracy'][-1]:.2f}% "
              f"({h['seconds'][-1]:.1f} s)", flush=True)
        return False
    return report


def make_solver(model, args, validation, callback=None):
    common = dict(batch_size=args.batch_size, epochs=args.epochs, random_state=args.seed,
                  validation_data=validation, n_threads=args.threads, verbose=args.verbose, callback=callback)
    if model == "LBN":
        return bs.ImplicitSGD(inner_iterations=args.inner_iterations, tau_theta=args.tau_theta, tau_x=args.tau_x,
                              tau=args.tau, aux_start=args.aux_start, momentum=args.momentum, **common)
    return bs.SGDBP(learning_rate=args.learning_rate, **common)


def first_reaching(accuracies, seconds, target):
    """(seconds, epochs) until the accuracy first reaches ``target``, or None."""
    for epoch, acc in enumerate(accuracies):
        if acc >= target:
            return float(np.sum(seconds[:epoch + 1])), epoch + 1
    return None


def run(dataset, args):
    X, Y, Xt, Yt = load(dataset, args.data_dir, args.n_train, args.n_test, args.dtype)
    widths = [X.shape[1], *HIDDEN, Y.shape[1]]
    out = {}
    for model in args.models:
        net = bs.LiftedNetwork(widths, ["relu"] * len(HIDDEN) + ["identity"], dtype=args.dtype,
                               random_state=args.seed)
        start = time.perf_counter()
        history = make_solver(model, args, (Xt, Yt), epoch_line(dataset, model)).fit(net, X, Y).history
        out[model] = {"val_accuracy": history["val_accuracy"], "seconds": history["seconds"],
                      "wall": time.perf_counter() - start, "step_factor": history.get("step_factor")}
    return out


def report(dataset, results, targets):
    header = f"{'model':8}" + "".join(f"{f'{100 * t:.0f}%':>16}" for t in targets) + f"{'final':>9}{'s/epoch':>9}"
    lines = [f"{dataset}: seconds (epochs) to the test accuracy", header]
    for model, r in results.items():
        cells = []
        for t in targets:
            hit = first_reaching(r["val_accuracy"], r["seconds"], t)
            cells.append(f"{f'{hit[0]:.0f} s ({hit[1]})' if hit else '-':>16}")
        lines.append(f"{model:8}" + "".join(cells) + f"{100 * r['val_accuracy'][-1]:8.2f}%"
                     f"{np.mean(r['seconds']):9.1f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="directory holding mnist/ and fashion-mnist/ (IDX files)")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"], choices=list(TARGETS))
    parser.add_argument("--models", nargs="+", default=["LBN", "SGD-BP"], choices=["LBN", "SGD-BP"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--inner-iterations", type=int, default=10)
    parser.add_argument("--aux-start", choices=["stored", "forward"], default="forward",
                        help="where a batch's auxiliary variables start (ImplicitSGD's aux_start)")
    parser.add_argument("--momentum", type=float, default=bs.ImplicitSGD().momentum,
                        help="LBN's momentum between batches (the library's default)")
    parser.add_argument("--tau-theta", type=lambda t: t if t == "auto" else float(t), default="auto",
                        help="LBN's parameter step, a number or 'auto' (the library's default)")
    parser.add_argument("--tau-x", type=float, default=0.5)
    parser.add_argument("--tau", type=float, default=10.0)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every epoch's accuracy and seconds here")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.data_dir is None and args.datasets != ["mnist"]:
        parser.error("Fashion-MNIST needs --data-dir (only MNIST has an embedded subset)")
    everything = {}
    for dataset in args.datasets:
        everything[dataset] = run(dataset, args)
        print(report(dataset, everything[dataset], TARGETS[dataset]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "results": everything}, f, indent=1)
    return everything


if __name__ == "__main__":
    main()
