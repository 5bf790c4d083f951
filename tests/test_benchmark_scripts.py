"""Smoke test of the profiling script: it runs, reports every part, and puts back what it wrapped."""
import importlib.util
import inspect
from pathlib import Path

from bregman_solvers._kernels import _lifted
from bregman_solvers.solvers import _batches, _engine, stochastic


def load(name):
    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRAPPED = [(_batches._BatchBuffers, "gather"), (_lifted, "copy"), (_lifted, "extrapolate"),
           (_engine.StepEngine, "evaluate"),
           (stochastic.ImplicitSGD, "_inner_steps"), (_engine.StepEngine, "iterate_finite"),
           (_batches._BatchBuffers, "scatter")]


def test_profile_batch_reports_the_parts_and_restores_the_wrapped_calls(capsys):
    profile = load("profile_batch")
    before = [inspect.getattr_static(owner, name) for owner, name in WRAPPED]
    profile.main(["--n-samples", "200", "--repeat", "1", "--dtypes", "float32"])
    out = capsys.readouterr().out
    for part in ("gather", "momentum step", "anchor copy", "K steps", "step 1 eval.", "finiteness check",
                 "scatter", "rest (Python)", "outside the K steps"):
        assert part in out
    assert [inspect.getattr_static(owner, name) for owner, name in WRAPPED] == before


def test_contention_script_times_both_conditions_and_stops_its_competitor(capsys, monkeypatch):
    contention = load("contention")
    started = []
    real_enter = contention.Competitor.__enter__

    def remember(self):
        started.append(self)
        return real_enter(self)

    monkeypatch.setattr(contention.Competitor, "__enter__", remember)
    medians = contention.main(["--n-samples", "100", "--repeat", "1", "--no-torch"])
    out = capsys.readouterr().out
    assert "busy/quiet" in out and "library n_threads=1" in out
    assert set(medians) == {"library", "library n_threads=1"}
    assert all(m["quiet"] > 0 and m["busy"] > 0 for m in medians.values())
    assert len(started) == 1 and started[0].process.poll() is not None     # the competitor is gone


def test_time_to_accuracy_reports_seconds_and_epochs_to_each_target(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("BREGMAN_SOLVERS_DATA", raising=False)          # the embedded subset
    tta = load("time_to_accuracy")
    results = tta.main(["--datasets", "mnist", "--n-train", "300", "--n-test", "200", "--epochs", "2",
                        "--threads", "1", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "seconds (epochs) to the test accuracy" in out and "LBN" in out and "SGD-BP" in out
    assert set(results["mnist"]) == {"LBN", "SGD-BP"}
    assert all(len(r["val_accuracy"]) == 2 for r in results["mnist"].values())
    assert tta.first_reaching([0.5, 0.91, 0.96], [1.0, 2.0, 3.0], 0.9) == (3.0, 2)
    assert tta.first_reaching([0.5], [1.0], 0.9) is None
    assert (tmp_path / "r.json").exists()


def test_compare_runs_the_convolutional_config(capsys):
    """compare.py's lenet5 row (the asv convolution benchmarks run in tests/test_benchmarks.py)."""
    load("compare").main(["--configs", "lenet5", "--n-samples", "200", "--dtypes", "float32"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lenet5")]
    assert len(row) == 1 and float(row[0].split()[-1]) > 0


def test_anomaly_benchmark_reports_every_method_side_by_side(capsys, tmp_path, monkeypatch):
    """The one-class protocol on the embedded subset, two normal classes, every method: one AUROC per
    method and class in the table and the JSON (small settings through the detector's defaults)."""
    import json

    from bregman_solvers import _outliers

    anomaly = load("anomaly")
    small = dict(hidden_layer_sizes=(16, 4, 16), epochs=1, inner_iterations=2, x_steps=2)
    real = _outliers.LiftedEnergyOutlierDetector

    def detector(**kw):
        return real(**{**kw, **small})

    monkeypatch.setattr(_outliers, "LiftedEnergyOutlierDetector", detector)
    import bregman_solvers.estimators as estimators

    monkeypatch.setattr(estimators, "LiftedEnergyOutlierDetector", detector)
    anomaly.main(["--classes", "0", "7", "--threads", "1", "--json", str(tmp_path / "a.json")])
    out = capsys.readouterr().out
    for method in anomaly.METHODS:
        assert f"| {method} |" in out, method
    results = json.loads((tmp_path / "a.json").read_text())["results"]
    assert set(results) == set(anomaly.METHODS)
    assert all(0 <= results[m][c]["auroc"] <= 1 for m in results for c in ("0", "7"))
    # one epoch trains the lifted autoencoder enough to rank (SGD-BP's small steps may not)
    assert all(results[m][c]["auroc"] > 0.5 for m in ("lifted energy", "IsolationForest") for c in ("0", "7"))
