"""Sparse autoencoder acceptance run of issue 4 (too long for CI).

Four layers of width 784 (784-784-784-784-784), a soft-threshold code after layer 2,
relu elsewhere, identity output; l1 on the code. Trained on 1,000 MNIST training
images with implicit SGD (LBN) and, at the same regularisation (the same l1 weight on
the code activations, added to the back-propagated loss), with SGD-BP; reports code
sparsity and the reconstruction MSE on the 10,000 test images.

    python examples/sparse_autoencoder.py --data-dir ../shared/data/mnist
"""
import argparse
import json
import time

import numpy as np

import bregman_solvers as bs
from bregman_solvers.datasets import load_mnist, preprocess
from bregman_solvers.regularisers import CodeL1
from bregman_solvers.solvers._epochs import evaluate_network

ACTS = ["relu", bs.get_activation("soft_threshold", alpha=0.1), "relu", "identity"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--alpha", type=float, default=0.2, help="l1 weight on the code")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    Xtr, _ = load_mnist(args.data_dir, "train")
    Xte, _ = load_mnist(args.data_dir, "test")
    Xtr, Xte, _ = preprocess(Xtr[:args.n_train], Xte, dtype=np.float32)
    widths = [784] * 5
    results = {}
    for name in ("LBN", "SGD-BP"):
        net = bs.LiftedNetwork(widths, ACTS, dtype="float32", random_state=args.seed)
        t0 = time.time()
        if name == "LBN":
            solver = bs.ImplicitSGD(batch_size=100, inner_iterations=30, epochs=args.epochs, random_state=args.seed,
                                    tau_theta=0.1, tau_x=0.1, tau=1.0,
                                    code_regulariser=CodeL1(2, args.alpha), track_energy=False)
        else:
            # the same l1 weight, on the code activations (SGD-BP has no auxiliary variables)
            solver = bs.SGDBP(batch_size=100, learning_rate=0.05, epochs=args.epochs, random_state=args.seed,
                              code_regulariser=CodeL1(2, args.alpha), track_energy=False)
        solver.fit(net, Xtr, Xtr)
        test = evaluate_network(net, Xte, Xte, code_layer=2)
        train = evaluate_network(net, Xtr, Xtr, code_layer=2)
        results[name] = {"seconds": time.time() - t0, "test_mse": test["mse"], "test_code_sparsity": test["code_sparsity"],
                         "train_mse": train["mse"], "train_code_sparsity": train["code_sparsity"]}
        print(name, json.dumps(results[name]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
