"""The classifier's defaults on scikit-learn's small tabular sets, over seeds, beside MLPClassifier.

For each of digits, breast cancer and wine: a stratified 75/25 split per seed (the split and the
model share the seed), features standardised on the training part (``StandardScaler``), then
``LiftedBregmanClassifier()`` and ``MLPClassifier()`` with their defaults (MLPClassifier's
``max_iter=1000`` so that it converges without warnings). Prints, per set and model, the mean and
the minimum test accuracy over the seeds and the mean fit seconds::

    python benchmarks/small_tabular.py                 # 10 seeds
    python benchmarks/small_tabular.py --seeds 3 --json results.json
"""
import argparse
import json
import time
import warnings

import numpy as np

# scikit-learn is imported in run(): asv imports every module of benchmarks/ in an environment without it
SETS = ("digits", "breast cancer", "wine")


def run(seeds, sets=SETS):
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from bregman_solvers.estimators import LiftedBregmanClassifier

    loaders = {"digits": datasets.load_digits, "breast cancer": datasets.load_breast_cancer,
               "wine": datasets.load_wine}
    models = {"LiftedBregmanClassifier": lambda seed: LiftedBregmanClassifier(random_state=seed),
              "MLPClassifier": lambda seed: MLPClassifier(max_iter=1000, random_state=seed)}
    results = {}
    for set_name in sets:
        X, y = loaders[set_name](return_X_y=True)
        for model, make in models.items():
            accuracies, seconds = [], []
            for seed in range(seeds):
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
                scaler = StandardScaler().fit(Xtr)
                est = make(seed)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est.fit(scaler.transform(Xtr), ytr)
                seconds.append(time.perf_counter() - start)
                accuracies.append(est.score(scaler.transform(Xte), yte))
            results.setdefault(set_name, {})[model] = {"accuracy": accuracies, "seconds": seconds}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (split and model)")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="the data sets")
    parser.add_argument("--json", default=None, help="also write the per-seed results here")
    args = parser.parse_args(argv)
    results = run(args.seeds, args.sets)
    print(f"test accuracy over {args.seeds} seeds (mean / min), mean fit seconds")
    print(f"{'data set':<14} {'model':<24} {'mean':>7} {'min':>7} {'fit s':>7}")
    for set_name, by_model in results.items():
        for model, r in by_model.items():
            acc = np.array(r["accuracy"])
            print(f"{set_name:<14} {model:<24} {100 * acc.mean():6.1f}% {100 * acc.min():6.1f}% "
                  f"{np.mean(r['seconds']):7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
