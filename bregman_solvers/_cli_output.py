"""What the command line writes: JSON, Markdown tables and plots (matplotlib, imported when a plot
is drawn), the curves it plots, and the checkpoints it keeps in ``--out`` (:mod:`bregman_solvers.cli`)."""
import json
import os

import numpy as np


def _write_json(path, obj):
    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        raise TypeError(type(o).__name__)

    with open(path, "w") as f:
        json.dump(obj, f, indent=2, default=default)


def _cells(result, n, make):
    """A table row's ``n`` cells for one model's ``result``: ``make()``, or "diverged" throughout, or
    "interrupted" for a fit interrupted before its first epoch ended."""
    if "diverged" in result:
        return ["diverged"] * n
    if result.get("interrupted") and result["epochs_completed"] == 0:
        return ["interrupted"] * n
    return make()


def _row_name(model, result):
    """A table row's model name, marked when its fit was interrupted."""
    if result.get("interrupted"):
        return f"{model} (interrupted after {result['epochs_completed']} of {result['epochs']} epochs)"
    return model


def _markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _plot_curves(path, curves, ylabel, title, logy=False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # epochs are whole numbers
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if any(curves.values()):              # an interrupted run may have no epoch to plot
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_images(path, rows, labels, mean, n=8):
    """The first ``n`` images of each row of arrays, as square images (nothing for non-square data)."""
    side = int(round(np.sqrt(mean.size)))
    if side * side != mean.size:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, len(rows[0]))
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.1, len(rows) * 1.2))
    axes = np.atleast_2d(axes)
    for r, (images, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c] + mean, 0, 1).reshape(side, side), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _short(model):
    """A model's short name for a legend: "LBN" of "lifted Bregman network (LBN)"."""
    return model[model.find("(") + 1:-1] if model.endswith(")") else model


def _energy_curves(histories):
    """What ``energy.png`` plots for each model: quantities comparable from epoch to epoch.

    For a lifted model, the mean of the batches' energies at their visits during the epoch; for
    every model, the training loss of the forward pass (the lifted energy at consistency,
    ``x_l = sigma(z_l)``), which is what back-propagation's curve measures too. The full-data
    energy over the stored auxiliary variables stays in results.json but is not plotted: each
    batch's variables are as its last visit left them, up to an epoch older than the final
    parameters, so it is not monotone under stochastic training (and stale under the default
    forward start, which does not use them).
    """
    curves = {}
    for model, h in histories.items():
        short = _short(model)
        if h.get("batch_energy") and h.get("energy"):
            curves[f"{short}: mean batch energy during the epoch"] = h["batch_energy"]
        curves[f"{short}: training loss, forward pass"] = h.get("train_loss", [])
    return curves


def _accuracy_curves(histories):
    """What ``accuracy.png`` plots: each model's train and test accuracy per epoch, in percent."""
    curves = {}
    for model, h in histories.items():
        short = _short(model)
        curves[f"{short} train"] = [100 * a for a in h.get("train_accuracy", [])]
        curves[f"{short} test"] = [100 * a for a in h.get("val_accuracy", [])]
    return curves


#: What Table 2 reports, written under it
TABLE2_DEFINITION = ("Linear-activation rate: the fraction of (sample, unit) pairs of a hidden layer whose "
                     "pre-activation lies where the activation acts as the identity (z > 0 for ReLU), on a "
                     "forward pass of the first 2,000 training images and of the first 2,000 test images "
                     "(the paper's Table 2 does not say which set it measures).")

#: Images each linear-activation rate is measured on (the first ones of the set)
RATE_IMAGES = 2000


def _rates(est, X_train, X_test):
    """A fitted classifier's linear-activation rates per hidden layer, on training and on test images."""
    return {"linear_activation_rates": est.network_.linear_activation_rate(X_train[:RATE_IMAGES]).tolist(),
            "linear_activation_rates_test": est.network_.linear_activation_rate(X_test[:RATE_IMAGES]).tolist()}


def _table2(results, n_hidden):
    """Table 2: per model and hidden layer, the linear-activation rate on training / test images."""
    def cells(r):
        test = r.get("linear_activation_rates_test", [float("nan")] * n_hidden)
        return [f"{100 * a:.1f}% / {100 * b:.1f}%" for a, b in zip(r["linear_activation_rates"], test)]

    return _markdown_table(["model", *[f"layer {i + 1} (train / test)" for i in range(n_hidden)]],
                           [[_row_name(m, r), *_cells(r, n_hidden, lambda r=r: cells(r))] for m, r in results.items()])


def _joined(earlier, later):
    """Two histories one after the other (entry by entry)."""
    return {key: list(earlier.get(key, [])) + list(later.get(key, [])) for key in {*earlier, *later}}


def _has_checkpoints(out):
    """Whether the folder ``out`` holds a checkpoint of some model (``checkpoint-*.npz``)."""
    import glob

    return bool(glob.glob(os.path.join(glob.escape(out), "checkpoint-*.npz")))


def _check_resumable(args):
    """``--resume`` needs at least one checkpoint in ``--out``: else it is an error naming the folder."""
    if args.resume and not _has_checkpoints(args.out):
        raise FileNotFoundError(f"--resume: no checkpoint in {args.out} (checkpoints are written there by "
                                f"--checkpoint-every N; pass the --out of that run)")


def _checkpointing(args, slug, resumable=True):
    """``(callback, resume, earlier history, seen)`` for a model of the run: a callback saving a
    checkpoint (``checkpoint-<slug>.npz``, atomic) and the history so far (``.json``) every
    ``--checkpoint-every`` epochs and whenever the fit stops at a batch boundary on Ctrl-C, and with
    ``--resume`` the checkpoint to continue from and the history before it. ``seen["history"]`` is
    the whole history after the last finished epoch (what a model that diverges keeps)."""
    from . import persistence

    path = os.path.join(args.out, f"checkpoint-{slug}.npz")
    sidecar = path[:-4] + ".json"
    resume, earlier, seen = None, {}, {}
    if not resumable:
        if args.resume or args.checkpoint_every:
            print("  (its solver keeps no checkpoint: trained from the start)", flush=True)
        return None, None, {}, seen
    if args.resume and os.path.exists(path):
        resume = persistence.load(path)
        with open(sidecar) as f:
            earlier = json.load(f)
        where = f"epoch {resume.epoch}" if resume.position is None else \
            f"batch {resume.position['batch']} of epoch {resume.epoch + 1}"
        print(f"  resuming from {path} ({where})", flush=True)
    every = args.checkpoint_every

    def save(result):
        seen["history"] = _joined(earlier, result.history)
        due = every and (result.epoch % every == 0 or result.epoch == args.epochs)
        if result.get("interrupted") or due:
            persistence.save(path, result.network, result.state, epoch=result.epoch,
                             bregman_state=result.get("bregman_state"),
                             previous_parameters=result.get("previous_parameters"),
                             position=result.get("position"))
            _write_json(sidecar, seen["history"])
        return False

    return save, resume, earlier, seen


def _export(args, est, slug, mean):
    """With ``--export PATH``: the trained model as ONNX at ``PATH-<slug>.onnx``, the training mean
    subtracted in the graph (:func:`bregman_solvers.interop.to_onnx`)."""
    if not args.export:
        return
    from .interop import to_onnx

    root = args.export[:-5] if args.export.endswith(".onnx") else args.export
    path = f"{root}-{slug}.onnx"
    to_onnx(est, path, input_mean=mean)
    print(f"  exported {path}", flush=True)
