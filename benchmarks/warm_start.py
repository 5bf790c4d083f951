"""Fine-tuning with lifted training from a back-propagation start against training from scratch.

An ``MLPClassifier`` (scikit-learn, Adam, its defaults but ``max_iter``) is trained on the MNIST
training set for ``--mlp-epochs`` epochs; :func:`bregman_solvers.interop.from_sklearn` turns it into a
lifted network, and ``LiftedBregmanClassifier(output="softmax")`` continues from it
(``fit(init=...)``) for ``--epochs`` epochs; the same classifier trains from its own random start
for as many epochs. Test accuracy after every epoch and the seconds of each, side by side::

    python benchmarks/warm_start.py --data-dir ../shared/data/mnist --threads 1 --json warm.json
"""
import argparse
import json
import time
import warnings

import numpy as np


def run(data_dir, hidden, mlp_epochs, epochs, threads, seed=0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from bregman_solvers import datasets
    from bregman_solvers.estimators import LiftedBregmanClassifier
    from bregman_solvers.interop import from_sklearn

    Xtr, ytr = datasets.load_mnist(data_dir, "train")
    Xte, yte = datasets.load_mnist(data_dir, "test")
    Xtr, Xte, _ = datasets.preprocess(Xtr, Xte)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=mlp_epochs, random_state=seed).fit(Xtr, ytr)
    rows = {"SGD-BP start (MLPClassifier)": {"test_accuracy": [float(mlp.score(Xte, yte))],
                                             "seconds": [time.perf_counter() - start], "epochs": mlp_epochs}}
    print(f"MLPClassifier after {mlp_epochs} epochs: {100 * rows['SGD-BP start (MLPClassifier)']['test_accuracy'][0]:.2f}%"
          f" ({rows['SGD-BP start (MLPClassifier)']['seconds'][0]:.0f} s)", flush=True)
    for name, init in (("lifted, from the SGD-BP start", from_sklearn(mlp, dtype=np.float32)),
                       ("lifted, from scratch", None)):
        clf = LiftedBregmanClassifier(hidden_layer_sizes=hidden, output="softmax", epochs=epochs, n_threads=threads,
                                      random_state=seed, dtype="float32")
        clf.fit(Xtr, ytr, validation_data=(Xte, yte), init=init)
        rows[name] = {"test_accuracy": [float(a) for a in clf.history_["val_accuracy"]],
                      "seconds": [float(s) for s in clf.history_["seconds"]]}
        print(name, " ".join(f"{100 * a:.2f}%" for a in rows[name]["test_accuracy"]), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--mlp-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = run(args.data_dir, tuple(args.hidden), args.mlp_epochs, args.epochs, args.threads)
    print("\n| start | " + " | ".join(f"epoch {e}" for e in range(1, args.epochs + 1)) + " | s/epoch |")
    print("|---" * (args.epochs + 2) + "|")
    for name, r in rows.items():
        if "epochs" in r:
            continue
        print(f"| {name} | " + " | ".join(f"{100 * a:.2f}%" for a in r["test_accuracy"]) +
              f" | {np.mean(r['seconds']):.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "results": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
