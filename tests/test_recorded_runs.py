"""The docs' tables of recorded runs (``benchmarks/recorded_runs.py``) are generated from their records."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load():
    spec = importlib.util.spec_from_file_location("recorded_runs", ROOT / "benchmarks" / "recorded_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_table_of_a_recorded_run_is_stale():
    """Every ``docs/_run_<name>.rst`` is what its ``docs/_runs/<name>.json`` renders to (edit the
    record or rerun ``python benchmarks/recorded_runs.py render``, never the table)."""
    runs = load()
    assert runs.render(check=True) == []
    for path in (ROOT / "docs").glob("_run_*.rst"):          # no table without its record
        assert (ROOT / "docs" / "_runs" / f"{path.stem[len('_run_'):]}.json").exists(), path.name


def test_every_records_command_still_parses():
    """A record's command is what a reader types to run it again: the command line must accept it,
    and it runs the record's epochs (given, or its preset's; fewer where a model diverged)."""
    from bregman_solvers._cli_presets import apply_preset

    runs = load()
    for path in sorted((ROOT / "docs" / "_runs").glob("*.json")):
        rec = json.loads(path.read_text())
        if "per_epoch" in rec:
            args = runs.parse_command(rec["command"])
            apply_preset(args)            # the sizes and epochs the command leaves to its --preset
            curve = "val_mse" if args.command in ("autoencoder", "denoise") else "val_accuracy"
            recorded = max(len(h[curve]) for h in rec["per_epoch"].values())
            diverged = any("diverged" in row for row in rec["table1"].values())
            assert recorded == args.epochs or (diverged and recorded < args.epochs), path.name
    with pytest.raises(SystemExit):
        runs.parse_command("bregman-solvers classify --no-such-option")


def test_a_record_made_from_an_output_folder_renders_what_ran(tmp_path):
    runs = load()
    history = {"val_accuracy": [0.95, 0.981, 0.99], "train_accuracy": [0.9, 0.95, 0.99], "seconds": [10.0, 12.0, 11.0],
               "energy": [1.0, 0.5, 0.2]}
    results = {"settings": {"dataset": "mnist", "n_train": 1000, "n_test": 500, "dtype": "float32", "arch": "lenet5",
                            "subset": "random"},
               "table1": {"LBN": {"test_accuracy": 0.99}}, "history": {"LBN": history}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    rec = runs.record(tmp_path, "bregman-solvers classify ...", "a test machine", "the library's defaults",
                      date="2026-12-03", commit="0123456789abcdef")
    assert rec["per_epoch"]["LBN"] == {k: history[k] for k in ("train_accuracy", "val_accuracy", "seconds")}
    text = runs.rst("toy", rec)
    assert "a random 1000 training images" in text and "3 epochs" in text and "the library's defaults" in text
    assert "95.0, 98.1, 99.0%" in text and "10-12" in text
    assert "2 (22 s) / 3 (33 s)" in text                   # first epochs at 98% and 99%
    assert "commit ``0123456``" in text and "seed 0" in text
    del rec["machine"]
    with pytest.raises(ValueError, match="lacks machine"):
        runs.rst("toy", rec)


def test_a_classification_record_sets_table_1_and_2_beside_the_papers(tmp_path):
    """The paper's network (three hidden layers, --arch mlp): the final rows beside the paper's Table 1
    and Table 2 (Section 6.1), each labelled with its epochs; other architectures get no such table."""
    runs = load()
    history = {"val_accuracy": [0.95, 0.96], "train_accuracy": [0.96, 0.98], "seconds": [90.0, 91.0]}
    row = {"train_accuracy": 0.98, "test_accuracy": 0.96, "linear_activation_rates": [0.5, 0.25, 0.75],
           "linear_activation_rates_test": [0.5, 0.25, 0.5]}
    results = {"settings": {"command": "classify", "dataset": "fashion-mnist", "n_train": 60000, "n_test": 10000,
                            "arch": "mlp", "hidden": [784, 784, 784], "preset": "paper"},
               "table1": {"lifted Bregman network (LBN, paper)": row, "SGD-BP": row,
                          "standard lifted network": {"diverged": "..."}},
               "history": {"lifted Bregman network (LBN, paper)": history, "SGD-BP": history}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    rec = runs.record(tmp_path, "bregman-solvers classify ...", "a test machine", "the paper's method",
                      date="2026-12-03", commit="0123456789abcdef")
    text = runs.rst("toy", rec)
    assert "Table 1 and Table 2 after 2 epochs here and 100 in the paper" in text
    lbn = text[text.index("   * - lifted Bregman network (LBN, paper)\n     - 98.0%"):]
    assert lbn.splitlines()[1:5] == ["     - 98.0% / 96.0%", "     - 93.5% / 85.7%",
                                     "     - 50.0, 25.0, 75.0% / 50.0, 25.0, 50.0%", "     - 59.2, 85.7, 64.7%"]
    assert "standard lifted network" not in text.split("Table 1 and Table 2")[1]      # diverged: no final row
    rec["settings"]["arch"] = "lenet5"
    assert "Table 1 and Table 2" not in runs.rst("toy", rec)


def test_an_autoencoder_record_renders_its_reconstruction_error(tmp_path):
    """An autoencoder run's record: per model the test MSE after every tenth epoch and the last, the
    final MSE, code sparsity and training objective; a diverged model says so."""
    runs = load()
    mse = [0.1 - 0.001 * e for e in range(25)]
    history = {"val_mse": mse, "val_code_sparsity": [0.9] * 25, "train_loss": [1.0] * 25, "seconds": [2.0] * 25}
    results = {"settings": {"command": "autoencoder", "dataset": "mnist", "n_train": 1000, "n_test": 10000,
                            "subset": "random", "preset": "paper"},
               "results": {"LBN-S": {"test_mse": mse[-1], "test_code_sparsity": 0.9, "train_objective": 12.5},
                           "SGD-BP": {"diverged": "the energy blew up", "seconds": 1.0}},
               "history": {"LBN-S": history, "SGD-BP": {"val_mse": mse[:5], "seconds": [1.0] * 5}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    rec = runs.record(tmp_path, "bregman-solvers autoencoder --preset paper", "a test machine", "the paper's method",
                      date="2026-12-03", commit="0123456789abcdef")
    assert rec["table1"] == results["results"] and rec["per_epoch"]["LBN-S"]["val_mse"] == mse
    text = runs.rst("toy", rec)
    assert "a random 1000 training images" in text and "25 epochs" in text
    assert "test MSE after epochs 10, 20, ... 25" in text
    assert "     - 10: 0.0910, 20: 0.0810, 25: 0.0760\n     - 0.07600\n     - 90.0%\n     - 12.5" in text
    assert "   * - SGD-BP\n     - 5: 0.0960\n     - diverged" in text


def test_every_plot_of_the_docs_is_drawn_from_existing_records():
    """The docs' ``.. plot::`` blocks call ``recorded_runs.figure`` on records that exist and have the
    curve asked for (the figure is drawn from them at build time: a plot cannot go stale); the
    results pages show no picture made by hand."""
    import re

    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = load()
    calls = []
    for page in ("results.rst", "layers.rst"):
        text = (ROOT / "docs" / page).read_text()
        calls += re.findall(r"figure\((.+)\)\n", text)
        if page == "results.rst":
            assert ".. image::" not in text
    assert len(calls) >= 2
    for call in calls:
        ax = eval(f"runs.figure({call})", {"runs": runs})           # the call as the docs make it
        assert ax.lines and all(len(line.get_xdata()) >= 1 for line in ax.lines)
        plt.close(ax.figure)
    both = runs.figure(["paper-mnist-30epochs", "library-mnist-30epochs"])     # one SGD-BP run in both
    assert [line.get_label().split(" (")[0] for line in both.lines].count("SGD-BP") == 1
    plt.close(both.figure)
    with pytest.raises(ValueError, match="curve must be one of"):
        runs.figure("paper-mnist-30epochs", "accuracy")
    with pytest.raises(ValueError, match="no model"):
        runs.figure("paper-mnist-30epochs", "val_mse")
