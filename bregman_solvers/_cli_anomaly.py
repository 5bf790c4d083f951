"""``bregman-solvers anomaly``: one-class anomaly detection with the lifted energy (the protocol of
Ruff et al., Deep SVDD: train on one class, the test set's other classes are the anomalies), with
the AUROC table, ROC curves, score histograms and results JSON (:mod:`bregman_solvers.cli`)."""
import argparse
import os
import sys
import time

import numpy as np

from ._cli_args import _integer_at_least
from ._cli_data import _load
from ._cli_interrupts import _INTERRUPT
from ._cli_output import _markdown_table, _write_json
from ._outliers import SCORES, LiftedEnergyOutlierDetector


def _normal_class(text):
    """``--normal-class``: a digit 0-9 or ``all``."""
    if text == "all":
        return "all"
    if text.isdigit() and int(text) <= 9:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a class 0-9 or 'all', got {text!r}")


def _epochs_or_auto(text):
    if text == "auto":
        return "auto"
    return _integer_at_least(text, 1, "a positive integer or 'auto'")


def add_parser(sub, formatter, positive, seed):
    p = sub.add_parser("anomaly", formatter_class=formatter,
                       help="one-class anomaly detection with the lifted energy: AUROC per normal class")
    p.add_argument("--data-dir", default=None, help="directory with the IDX files (default: "
                   "$BREGMAN_SOLVERS_DATA, else the embedded MNIST subset)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                   help="the data set the files hold (checked where they are a standard set)")
    p.add_argument("--normal-class", type=_normal_class, default="all",
                   help="the class trained on as normal (the others of the test set are the anomalies), or 'all' "
                   "for each class in turn")
    p.add_argument("--n-train", type=positive, default=5000, help="training images (see --subset; the normal "
                   "class's among them are trained on)")
    p.add_argument("--n-test", type=positive, default=1000, help="test images (see --subset), all scored")
    p.add_argument("--subset", choices=["first", "random"], default="first",
                   help="which --n-train / --n-test images: the first ones, or a random selection seeded by --seed")
    p.add_argument("--hidden", type=positive, nargs="+", default=[128, 32, 128], metavar="WIDTH",
                   help="hidden widths of the autoencoder (the middle one is the code)")
    p.add_argument("--epochs", type=_epochs_or_auto, default="auto",
                   help="training epochs, or 'auto' (at least 300 batch steps)")
    p.add_argument("--x-steps", type=lambda t: _integer_at_least(t, 0, "an integer >= 0"), default=20,
                   help="proximal-gradient steps on a scored sample's auxiliary variables")
    p.add_argument("--seed", type=seed, default=0, help="seed of the initialisation and batches")
    p.add_argument("--threads", type=positive, default=None,
                   help="the most threads a fit uses, BLAS included (default: the usable cores)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="computation dtype")
    p.add_argument("--out", default="results/anomaly", help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=anomaly)
    return p


def anomaly(args):
    """Train a detector per normal class, score the test set by the energy and by reconstruction."""
    from sklearn.metrics import roc_auc_score, roc_curve

    Xtr, ytr, Xte, yte, mean, data = _load(args)
    # the protocol's inputs are the pixels in [0, 1]: the training mean of every class is added back
    Xtr, Xte = Xtr + mean, Xte + mean
    classes = list(range(10)) if args.normal_class == "all" else [args.normal_class]
    results, curves, histograms, interrupted = {}, {}, {}, None
    for c in classes:
        normal = Xtr[ytr == c]
        if normal.shape[0] < 2:
            raise ValueError(f"--n-train {args.n_train}: {normal.shape[0]} training image(s) of class {c}; "
                             f"raise --n-train")
        print(f"class {c}: training on {normal.shape[0]} images ...", flush=True)
        start = time.time()
        detector = LiftedEnergyOutlierDetector(
            hidden_layer_sizes=tuple(args.hidden), code_layer=(len(args.hidden) + 1) // 2, epochs=args.epochs,
            x_steps=args.x_steps, dtype=args.dtype, n_threads=args.threads, random_state=args.seed,
            verbose=not args.quiet).fit(normal)
        fit_seconds = time.time() - start
        if _INTERRUPT["seen"]:
            interrupted = f"class {c}'s training"
            break
        is_anomaly = (yte != c).astype(int)
        row = {"n_train": int(normal.shape[0]), "fit_seconds": fit_seconds}
        for scoring in SCORES:
            start = time.time()
            terms = detector.set_params(scoring=scoring).energy_terms(Xte)
            scores = terms.sum(axis=1)            # the energy: higher is more anomalous
            row[scoring] = {"auroc": float(roc_auc_score(is_anomaly, scores)), "score_seconds": time.time() - start,
                            "per_layer_auroc": [float(roc_auc_score(is_anomaly, terms[:, l]))
                                                if np.ptp(terms[:, l]) > 0 else 0.5 for l in range(terms.shape[1])]}
            curves.setdefault(scoring, {})[c] = roc_curve(is_anomaly, scores)[:2]
            histograms.setdefault(scoring, {})[c] = (scores[is_anomaly == 0], scores[is_anomaly == 1])
        results[c] = row
        print(f"  AUROC energy {100 * row['energy']['auroc']:.1f}%, reconstruction "
              f"{100 * row['reconstruction']['auroc']:.1f}% ({fit_seconds:.1f} s to fit)", flush=True)
    done = list(results)
    header = ["scoring", *(str(c) for c in done), "mean"]
    rows = [[s, *(f"{100 * results[c][s]['auroc']:.1f}" for c in done),
             f"{100 * np.mean([results[c][s]['auroc'] for c in done]):.1f}" if done else "-"] for s in SCORES]
    mark = f" (interrupted during {interrupted})" if interrupted else ""
    table = (f"AUROC (%) per normal class, {args.dataset}: {args.n_train} training images (the normal class's), "
             f"{args.n_test} test images{mark}\n\n" + _markdown_table(header, rows))
    print("\n" + table)
    with open(os.path.join(args.out, "auroc.md"), "w") as f:
        f.write(table)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    _write_json(os.path.join(args.out, "results.json"), {
        "settings": settings, "data": data, "interrupted": interrupted,
        "results": {str(c): r for c, r in results.items()}})
    if done:
        _plots(args.out, curves, histograms, args.dataset, mark)
    if interrupted:
        print(f"bregman-solvers anomaly: interrupted: kept classes {done or 'none'}; results marked interrupted in "
              f"{args.out}; rerun the remaining classes with --normal-class", file=sys.stderr)
        return 130
    return 0


def _plots(out, curves, histograms, dataset, mark):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCORES), figsize=(5 * len(SCORES), 4.5), squeeze=False)
    for ax, scoring in zip(axes[0], SCORES):
        for c, (fpr, tpr) in curves[scoring].items():
            ax.plot(fpr, tpr, label=f"class {c}")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlabel("false positive rate (normal called anomalous)")
        ax.set_ylabel("true positive rate (anomalies found)")
        ax.set_title(f"ROC, {scoring} score, {dataset}{mark}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "roc.png"), dpi=120)
    plt.close(fig)
    classes = list(histograms["energy"])
    fig, axes = plt.subplots(len(SCORES), len(classes), figsize=(max(5.0, 2.6 * len(classes)), 2.4 * len(SCORES)),
                             squeeze=False)
    for i, scoring in enumerate(SCORES):
        for j, c in enumerate(classes):
            normal, anomalous = histograms[scoring][c]
            bins = np.histogram_bin_edges(np.r_[normal, anomalous], bins=40)
            axes[i, j].hist(normal, bins=bins, alpha=0.6, density=True, label="normal")
            axes[i, j].hist(anomalous, bins=bins, alpha=0.6, density=True, label="anomalies")
            axes[i, j].set_title(f"class {c}, {scoring}", fontsize=8)
            axes[i, j].tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"scores (energy), {dataset}{mark}", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "histograms.png"), dpi=110)
    plt.close(fig)
