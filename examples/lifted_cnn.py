"""A lifted CNN built from operators: LeNet-5 or a residual network, trained with implicit SGD.

Shows the pieces of docs/layers.rst in one script: a named architecture (or the same layers
written out), the memory estimate before training, image inputs, and the test accuracy per epoch.
On the embedded MNIST subset by default (2,000 training images, about 6 s an epoch on 2 cores; in
the input metric, the default for both networks, with the command line's convolutional steps):

    python examples/lifted_cnn.py
    python examples/lifted_cnn.py --arch resnet --epochs 3
    python examples/lifted_cnn.py --data-dir ../shared/data/mnist --n-train 60000 --epochs 20
"""
import argparse
import time

import numpy as np

import bregman_solvers as bs
from bregman_solvers.datasets import load_mnist, one_hot, preprocess


def lenet5_written_out(n_classes=10):
    """The layers ``architecture("lenet5", (28, 28, 1), 10)`` builds, one by one."""
    return [bs.Conv2d((28, 28, 1), 6, 5, padding=2),                          # 28x28x6
            bs.AvgPooled(bs.Conv2d((14, 14, 6), 16, 5), 2),                   # pool 2, then 10x10x16
            bs.AvgPooled(bs.Dense(5 * 5 * 16, 120), 2, in_shape=(10, 10, 16)),  # pool 2, flatten, dense
            bs.Dense(120, 84),
            bs.Dense(84, n_classes)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["lenet5", "resnet"], default="lenet5")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tau-x", default="auto", help="the auxiliary variables' step: 'auto' (0.1 for a CNN; "
                        "0.5, the dense networks', fails on LeNet-5: docs/layers.rst) or a number")
    parser.add_argument("--theta-metric", choices=["auto", "euclidean", "input"], default="auto",
                        help="the parameter step's metric: auto is the input metric for both networks")
    args = parser.parse_args(argv)

    X, y = load_mnist(args.data_dir, "train")
    Xt, yt = load_mnist(args.data_dir, "test")
    X, Xt, _ = preprocess(X[:args.n_train], Xt[:args.n_test], dtype=np.float32)
    y, yt = y[:args.n_train], yt[:args.n_test]
    if args.arch == "lenet5":
        layers = lenet5_written_out()
        assert layers == bs.architectures.architecture("lenet5", (28, 28, 1), 10)
        net = bs.LiftedNetwork(layers, ["relu"] * 4 + ["identity"], dtype="float32", random_state=0)
    else:
        net = bs.LiftedNetwork.from_architecture("resnet", (28, 28, 1), 10, dtype="float32", random_state=0)
    print(net.memory_estimate(X.shape[0]))

    def report(result):
        accuracy = np.mean(net.predict(Xt).argmax(1) == yt)
        print(f"epoch {result.epoch}: test accuracy {100 * accuracy:.1f}% ({time.time() - start:.0f} s)", flush=True)
        return False

    start = time.time()
    tau_x = args.tau_x if args.tau_x == "auto" else float(args.tau_x)
    solver = bs.ImplicitSGD(epochs=args.epochs, tau_x=tau_x, random_state=0, callback=report,
                            theta_metric=args.theta_metric)
    # "auto" steps: in the input metric a weak proximity term (tau 100) and a quarter of the
    # Gauss-Newton step; tau_x 0.1 (docs/layers.rst, "Steps in the metric of each layer's input")
    tau, tau_x = solver.steps_for(net)
    print(f"parameter steps in the {solver.metric_for(net)} metric, tau {tau}, tau_x {tau_x}")
    # the hidden layers' penalty weights grow 1, 2, 3, 4 over the first epochs (penalty_growth="auto")
    print(f"penalty continuation: {solver.growth_for(net)!r}")
    solver.fit(net, X, one_hot(y, 10, "float32"))


if __name__ == "__main__":
    main()
