"""Recorded runs: long command-line runs kept in ``docs/_runs`` and the tables the docs show from them.

A record is one JSON file (``docs/_runs/<name>.json``) made from a finished run's output folder:
the command, the date, the machine and what ran beside it, which method ran (the paper's or the
library's defaults), the settings (epochs, subset, dtype, ...), each model's final row and its
per-epoch figures. The docs never type those numbers: ``render`` writes ``docs/_run_<name>.rst``
(a list-table and the line that says what ran) for every record, and ``tests/test_recorded_runs.py``
fails when a table differs from its record (a stale table)::

    python benchmarks/recorded_runs.py record OUT_DIR NAME --command "..." --machine "..." --method "..."
    python benchmarks/recorded_runs.py render             # every docs/_runs/*.json -> docs/_run_*.rst
    python benchmarks/recorded_runs.py render --check     # exit 1 where a table is stale

The docs' plots of these runs are drawn from the same records when the docs are built
(:func:`figure`, through Matplotlib's ``plot`` directive), so they cannot go stale either.
"""
import argparse
import datetime
import json
import shlex
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUNS = DOCS / "_runs"

#: what a record must say, besides its figures
REQUIRED = ("command", "date", "machine", "method", "settings", "table1", "per_epoch")


def _commit():
    """The checkout's commit (None outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=DOCS.parent, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def record(out_dir, command, machine, method, date=None, commit=None):
    """The record of the run whose output folder (``--out``) is ``out_dir`` (``commit``: default the
    checkout's; the settings, seed included, come from the run's ``results.json``)."""
    with open(Path(out_dir) / "results.json") as f:
        results = json.load(f)
    keys = ("train_accuracy", "val_accuracy", "seconds", "val_mse", "val_code_sparsity", "train_loss")
    per_epoch = {name: {key: history[key] for key in keys if key in history}
                 for name, history in results["history"].items()}
    # a classification's final rows are its Table 1; an autoencoder's its results table
    final = results["table1"] if "table1" in results else results["results"]
    return {"command": command, "commit": commit or _commit(), "date": date or datetime.date.today().isoformat(),
            "machine": machine, "method": method, "settings": results["settings"], "table1": final,
            "per_epoch": per_epoch}


def parse_command(command):
    """The command line's parsed arguments for a record's ``command`` (``bregman-solvers ...``); raises
    ``SystemExit`` when the command line no longer accepts it."""
    from bregman_solvers.cli import build_parser

    words = shlex.split(command)
    if words[:1] != ["bregman-solvers"]:
        raise ValueError(f"a record's command starts with 'bregman-solvers', got {command!r}")
    return build_parser().parse_args(words[1:])


def _percent(values):
    return ", ".join(f"{100 * v:.1f}" for v in values) + "%"


def _seconds(values):
    low, high = min(values), max(values)
    digits = 1 if high < 10 else 0         # a fast model's seconds keep a decimal
    same = round(low, digits) == round(high, digits)
    return f"{low:.{digits}f}" if same else f"{low:.{digits}f}-{high:.{digits}f}"


def _first_epoch_reaching(accuracies, level):
    for epoch, value in enumerate(accuracies, start=1):
        if value >= level:
            return epoch
    return None


#: the test accuracies whose first epoch a table reports, per data set (issue 26's marks)
LEVELS = {"mnist": (0.98, 0.99), "fashion-mnist": (0.88, 0.90)}

#: The paper's Table 1 (train, test accuracy after 100 epochs) and Table 2 (linear-activation rates of
#: hidden layers 1-3), Section 6.1, by data set and row; its standard lifted network is quoted there
#: from Zach and Estellers (2019)
PAPER_TABLE1 = {"mnist": {"Standard Lifted Network": (85.6, 86.3), "Lifted Bregman Network": (99.3, 96.8),
                          "SGD-BP": (99.6, 96.9)},
                "fashion-mnist": {"Standard Lifted Network": (81.4, 80.0), "Lifted Bregman Network": (93.5, 85.7),
                                  "SGD-BP": (95.8, 87.9)}}
PAPER_TABLE2 = {"mnist": {"Standard Lifted Network": (99.9, 99.9, 99.9), "Lifted Bregman Network": (47.4, 82.2, 70.1),
                          "SGD-BP": (40.1, 29.7, 73.6)},
                "fashion-mnist": {"Standard Lifted Network": (99.9, 99.9, 99.9),
                                  "Lifted Bregman Network": (59.2, 85.7, 64.7), "SGD-BP": (32.2, 28.1, 78.4)}}


def _paper_row(model):
    """The paper's row name for one of the command line's models."""
    if model.startswith("lifted Bregman network"):
        return "Lifted Bregman Network"
    return {"standard lifted network": "Standard Lifted Network"}.get(model, model)


def _beside_the_paper(rec, epochs):
    """Table 1 and Table 2 of a classification record beside the paper's (the paper's network: --arch
    mlp, three hidden layers), each labelled with its epochs; [] for other records."""
    s = rec["settings"]
    dataset = s.get("dataset")
    if s.get("command") != "classify" or s.get("arch", "mlp") != "mlp" or dataset not in PAPER_TABLE1 or \
            len(s.get("hidden", [])) != 3:
        return []
    lines = ["", f"Table 1 and Table 2 after {epochs} epochs here and 100 in the paper (Section 6.1; linear-activation "
             "rates on the first 2,000 training / test images here, on an unnamed set in the paper):", "",
             ".. list-table::", "   :header-rows: 1", "",
             "   * - model", f"     - train / test, {epochs} epochs", "     - paper: train / test, 100 epochs",
             f"     - rates of layers 1-3, train / test, {epochs} epochs", "     - paper: rates of layers 1-3"]
    for model, row in rec["table1"].items():
        paper = _paper_row(model)
        t1, t2 = PAPER_TABLE1[dataset].get(paper), PAPER_TABLE2[dataset].get(paper)
        if "train_accuracy" not in row:
            continue                      # an interrupted or diverged model: no final row
        rates = ", ".join(f"{100 * a:.1f}" for a in row.get("linear_activation_rates", []))
        rates_test = ", ".join(f"{100 * a:.1f}" for a in row.get("linear_activation_rates_test", []))
        lines += [f"   * - {model}", f"     - {100 * row['train_accuracy']:.1f}% / {100 * row['test_accuracy']:.1f}%",
                  "     - " + (f"{t1[0]}% / {t1[1]}%" if t1 else "(not in the paper)"),
                  f"     - {rates}% / {rates_test}%" if rates_test else f"     - {rates}%",
                  "     - " + (", ".join(f"{r}" for r in t2) + "%" if t2 else "(not in the paper)")]
    return lines


def _milestones(values, epochs):
    """Values after every tenth epoch (every epoch up to 10 epochs) and the last: a long run's curve
    in a table cell."""
    step = 1 if epochs <= 10 else 10
    picked = [(e, values[e - 1]) for e in range(step, len(values) + 1, step)]
    if values and (not picked or picked[-1][0] != len(values)):
        picked.append((len(values), values[-1]))
    return picked


def _autoencoder_rows(rec, epochs):
    """An autoencoder record's table: per model the test reconstruction MSE along the run, the final
    MSE and code sparsity on the test images, the training objective and seconds per epoch."""
    lines = [".. list-table::", "   :header-rows: 1", "",
             "   * - model", f"     - test MSE after epochs {'1-' if epochs <= 10 else '10, 20, ... '}{epochs}",
             "     - final test MSE", "     - test code sparsity", "     - training objective",
             "     - seconds per epoch"]
    # a model that diverged has a row in the table, and per-epoch values up to its last finished epoch
    for model in dict.fromkeys([*rec["table1"], *rec["per_epoch"]]):
        row, history = rec["table1"].get(model, {}), rec["per_epoch"].get(model, {})
        curve = ", ".join(f"{v:.4f}" if epochs <= 10 else f"{e}: {v:.4f}"
                          for e, v in _milestones(history.get("val_mse", []), epochs))
        final = ("diverged", "", "") if "diverged" in row else (
            f"{row['test_mse']:.5f}", f"{100 * row['test_code_sparsity']:.1f}%", f"{row['train_objective']:.4g}")
        lines += [f"   * - {model}", f"     - {curve}", *(f"     - {cell}" for cell in final),
                  f"     - {_seconds(history['seconds']) if history.get('seconds') else ''}"]
    return lines


def rst(name, rec):
    """The reST of one record: what ran, then per model the test accuracy after every epoch, seconds
    per epoch, and the epoch and seconds at which it first reached each of :data:`LEVELS` (an
    autoencoder's record: its test reconstruction error instead, :func:`_autoencoder_rows`)."""
    missing = [key for key in REQUIRED if key not in rec]
    if missing:
        raise ValueError(f"record {name!r} lacks {', '.join(missing)}")
    s = rec["settings"]
    autoencoder = s.get("command") in ("autoencoder", "denoise")
    epochs = max(len(v.get("val_mse" if autoencoder else "val_accuracy", [])) for v in rec["per_epoch"].values())
    levels = LEVELS.get(s.get("dataset"), (0.9,))
    images = (f"a random {s.get('n_train')}" if s.get("subset") == "random" else f"the first {s.get('n_train')}")
    lines = [
        f".. Generated by ``python benchmarks/recorded_runs.py render`` from ``docs/_runs/{name}.json``; "
        "do not edit.",
        "",
        f"``{rec['command']}`` ({rec['date']}; {s.get('dataset', '?')}, {images} training images, "
        f"{s.get('n_test')} test images, {s.get('dtype', 'float32')}, {epochs} epochs, "
        f"``--arch {s.get('arch', 'mlp')}``, seed {s.get('seed', 0)}; {rec['method']}; {rec['machine']}"
        + (f"; commit ``{rec['commit'][:7]}``" if rec.get("commit") else "") + "):",
        "",
    ]
    if autoencoder:
        return "\n".join(lines + _autoencoder_rows(rec, epochs)) + "\n"
    lines += [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - model",
        f"     - test accuracy after epochs 1-{epochs}",
        "     - seconds per epoch",
        "     - first epoch (seconds) at " + " / ".join(f"{100 * level:.0f}%" for level in levels),
    ]
    for model, history in rec["per_epoch"].items():
        accuracy, seconds = history.get("val_accuracy", []), history.get("seconds", [])
        reached = []
        for level in levels:
            epoch = _first_epoch_reaching(accuracy, level)
            reached.append("not reached" if epoch is None else f"{epoch} ({sum(seconds[:epoch]):.0f} s)")
        lines += [f"   * - {model}", f"     - {_percent(accuracy)}", f"     - {_seconds(seconds)}",
                  f"     - {' / '.join(reached)}"]
    lines += _beside_the_paper(rec, epochs)
    return "\n".join(lines) + "\n"


#: what each per-epoch curve of a record is, for a plot's axis
CURVES = {"val_accuracy": ("test accuracy (%)", 100), "train_accuracy": ("training accuracy (%)", 100),
          "val_mse": ("test reconstruction MSE", 1), "train_loss": ("training objective (forward pass)", 1),
          "val_code_sparsity": ("test code sparsity (%)", 100)}


def load(name, runs=RUNS):
    """The record ``docs/_runs/<name>.json``."""
    with open(Path(runs) / f"{name}.json") as f:
        return json.load(f)


def figure(names, curve="val_accuracy", runs=RUNS, ax=None):
    """Plot the per-epoch ``curve`` (a key of :data:`CURVES`) of every model in the records ``names``,
    one line each, labelled with the model and the record's name (a model whose curve an earlier
    record already drew, e.g. the same SGD-BP run in both presets' records, is drawn once); returns
    the Axes. The docs call it
    from Matplotlib's ``plot`` directive, so their figures are drawn from the records at build time."""
    import matplotlib.pyplot as plt

    if curve not in CURVES:
        raise ValueError(f"curve must be one of {sorted(CURVES)}, got {curve!r}")
    label, scale = CURVES[curve]
    if ax is None:
        ax = plt.figure(figsize=(6.4, 4.0)).add_subplot()
    drawn = set()
    for name in ([names] if isinstance(names, str) else names):
        for model, history in load(name, runs)["per_epoch"].items():
            values = history.get(curve)
            if values and (model, tuple(values)) not in drawn:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, [scale * v for v in values], marker="." if len(values) <= 30 else None,
                        label=f"{model} ({name})")
                drawn.add((model, tuple(values)))
    if not drawn:
        raise ValueError(f"no model of {names!r} has a per-epoch {curve!r}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return ax


def render(check=False, runs=RUNS, docs=DOCS):
    """Write (or with ``check`` compare) ``docs/_run_<name>.rst`` for every record; returns the stale names."""
    stale = []
    for path in sorted(Path(runs).glob("*.json")):
        rec = load(path.stem, runs)
        if "per_epoch" not in rec:
            continue                      # a benchmark's record (anomaly, warm start): its own script renders it
        text = rst(path.stem, rec)
        target = Path(docs) / f"_run_{path.stem}.rst"
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(path.stem)
        else:
            target.write_text(text)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="make docs/_runs/NAME.json from a run's output folder")
    rec.add_argument("out_dir")
    rec.add_argument("name")
    rec.add_argument("--command", required=True, help="the command that ran, as typed")
    rec.add_argument("--machine", required=True, help="the machine and what ran beside it")
    rec.add_argument("--method", required=True, help="the paper's method or the library's defaults, and how")
    rec.add_argument("--date", default=None)
    rec.add_argument("--commit", default=None, help="the commit that ran (default: the checkout's)")
    ren = sub.add_parser("render", help="write docs/_run_NAME.rst for every record")
    ren.add_argument("--check", action="store_true", help="only compare; exit 1 where a table is stale")
    args = parser.parse_args(argv)
    if args.action == "record":
        path = RUNS / f"{args.name}.json"
        parse_command(args.command)
        with open(path, "w") as f:
            json.dump(record(args.out_dir, args.command, args.machine, args.method, args.date, args.commit), f,
                      indent=2)
        print(f"wrote {path}")
        return 0
    stale = render(check=args.check)
    if stale:
        print("stale tables (run `python benchmarks/recorded_runs.py render`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
