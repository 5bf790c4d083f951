"""Acceptance run of issue 4 on the full MNIST training set (too long for CI).

Widths 784-784-784-784-10, relu hidden layers, identity output with the MSE loss,
batch 100: implicit SGD (Algorithm 1) with its default steps, and SGD with
back-propagation, 10 epochs each; prints test accuracy per epoch and writes JSON.

    python examples/mnist_classification.py --data-dir ../shared/data/mnist --solver isgd
    python examples/mnist_classification.py --data-dir ../shared/data/mnist --solver sgdbp
"""
import argparse
import json
import time

import numpy as np

import bregman_solvers as bs
from bregman_solvers.datasets import load_mnist, one_hot, preprocess


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--solver", choices=["isgd", "sgdbp"], default="isgd")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--tau-theta", type=float, default=None, help="ImplicitSGD step (default: its own)")
    parser.add_argument("--tau-x", type=float, default=None)
    parser.add_argument("--tau", type=float, default=None)
    parser.add_argument("--learning-rate", type=float, default=None, help="SGDBP step (default: its own)")
    args = parser.parse_args(argv)
    Xtr, ytr = load_mnist(args.data_dir, "train")
    Xte, yte = load_mnist(args.data_dir, "test")
    Xtr, ytr = Xtr[:args.n_train], ytr[:args.n_train]
    Xtr, Xte, _ = preprocess(Xtr, Xte, dtype=np.dtype(args.dtype).type)
    Ytr, Yte = one_hot(ytr, 10, args.dtype), one_hot(yte, 10, args.dtype)
    net = bs.LiftedNetwork([784, 784, 784, 784, 10], ["relu"] * 3 + ["identity"], dtype=args.dtype,
                           random_state=args.seed)

    def report(result):
        h = result.history
        print(f"epoch {h['epoch'][-1]:3d}  {h['seconds'][-1]:7.1f}s  train acc {h['train_accuracy'][-1]:.4f}  "
              f"test acc {h['val_accuracy'][-1]:.4f}  test loss {h['val_loss'][-1]:.4f}", flush=True)

    common = dict(batch_size=100, epochs=args.epochs, random_state=args.seed, validation_data=(Xte, Yte),
                  callback=report, track_energy=True)
    if args.solver == "isgd":
        steps = {k: v for k, v in (("tau_theta", args.tau_theta), ("tau_x", args.tau_x), ("tau", args.tau))
                 if v is not None}
        solver = bs.ImplicitSGD(inner_iterations=10, **steps, **common)
    else:
        steps = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
        solver = bs.SGDBP(**steps, **common)
    t0 = time.time()
    result = solver.fit(net, Xtr, Ytr)
    h = result.history
    summary = {"solver": args.solver, "n_train": int(Xtr.shape[0]), "epochs": args.epochs,
               "seconds": time.time() - t0, "test_accuracy": h["val_accuracy"], "train_accuracy": h["train_accuracy"],
               "linear_rates": [r.tolist() for r in h["linear_rates"]]}
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
