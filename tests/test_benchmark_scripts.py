"""Smoke test of the profiling script: it runs, reports every part, and puts back what it wrapped."""
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

import bregman_solvers as bs

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
           (stochastic.ImplicitSGD, "batch_steps"), (_engine.StepEngine, "iterate_finite"),
           (_batches._BatchBuffers, "scatter"), (_batches.AlgorithmOneBatches, "epoch_steps")]


def test_profile_batch_reports_the_parts_and_restores_the_wrapped_calls(capsys):
    profile = load("profile_batch")
    before = [inspect.getattr_static(owner, name) for owner, name in WRAPPED]
    profile.main(["--n-samples", "200", "--repeat", "1", "--dtypes", "float32"])
    out = capsys.readouterr().out
    for part in ("gather", "momentum step", "anchor copy", "K steps", "step 1 eval.", "finiteness check",
                 "scatter", "rest (Python)", "epoch start (steps)", "outside the K steps",
                 "without the epoch's start"):
        assert part in out
    assert [inspect.getattr_static(owner, name) for owner, name in WRAPPED] == before


def test_ab_epoch_prints_one_json_line_of_every_configuration(capsys):
    ab = load("ab_epoch")
    ab.main(["--n-samples", "200", "--repeat", "1", "--configs", "classification"])
    import json

    line = capsys.readouterr().out.strip().splitlines()[-1]
    timings = json.loads(line)
    assert set(timings) == {"classification float32 alg1", "classification float32 defaults",
                            "classification float64 alg1", "classification float64 defaults"}
    assert all(t > 0 for t in timings.values())
    ab.main(["--n-samples", "200", "--repeat", "1", "--configs", "classification", "--dtypes", "float32"])
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {
        "classification float32 alg1", "classification float32 defaults"}


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


def test_the_torch_cnn_peer_takes_the_librarys_steps():
    """``torch_peers.py``'s PyTorch lifted CNN (its own NCHW layout) against ImplicitSGD on the same
    LeNet-5 parameters and variables: one batch of K = 3 steps, the same parameters after it."""
    torch = pytest.importorskip("torch")
    from bregman_solvers.architectures import architecture

    peers = load("torch_peers")
    rng = np.random.default_rng(0)
    n = 100
    X = rng.random((n, 784)) - 0.5
    Y = np.eye(10)[rng.integers(0, 10, n)]
    net = bs.LiftedNetwork(architecture("lenet5", (28, 28, 1), 10), ["relu"] * 4 + ["identity"], random_state=0)
    state = net.init_state(X)
    peer = peers.TorchLiftedCNN(n, "float64", K=3)
    W = net.weights
    # the library's NHWC weights in the peer's NCHW layout (the pooled dense layer's columns permuted)
    perm = np.array([(h * 5 + w) * 16 + c for c in range(16) for h in range(5) for w in range(5)])
    as_peer = [W[0].transpose(0, 3, 1, 2), W[1].transpose(0, 3, 1, 2), W[2][:, perm], W[3], W[4]]
    for (_, w, _, _), b, w_lib, b_lib in zip(peer.layers, peer.biases, as_peer, net.biases):
        w.copy_(torch.from_numpy(np.ascontiguousarray(w_lib)))
        b.copy_(torch.from_numpy(b_lib.reshape(-1)[:b.shape[0]].copy()))
    hidden = []
    for h, shape in zip(state.hidden, peer.shapes[1:-1]):
        t = torch.from_numpy(h.copy())
        hidden.append(t.reshape(n, *shape[1:], shape[0]).permute(0, 3, 1, 2).contiguous() if len(shape) == 3 else t)
    peer.epoch(X, Y, hidden, np.arange(n))
    bs.ImplicitSGD(batch_size=n, inner_iterations=3, epochs=1, shuffle=False, tau_theta=0.01, tau_x=0.1, tau=1.0,
                   aux_start="stored", momentum=0.0, safeguard=False,
                   theta_metric="euclidean").fit(net, X, Y, state=state)
    W = net.weights
    for (_, w, _, _), w_lib in zip(peer.layers, [W[0].transpose(0, 3, 1, 2), W[1].transpose(0, 3, 1, 2),
                                                 W[2][:, perm], W[3], W[4]]):
        np.testing.assert_allclose(w.numpy(), w_lib, rtol=1e-10, atol=1e-12)


def test_the_torch_peer_process_starts_without_the_librarys_openmp_settings(monkeypatch):
    """The peer's process gets the user's environment, not what ``import bregman_solvers`` set (PyTorch
    ships the same OpenMP runtime, which would read the library's short spin)."""
    from bregman_solvers import _runtime

    peers = load("torch_peers")
    ours = {"GOMP_SPINCOUNT": "2300", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}
    monkeypatch.setattr(_runtime, "SET_BY_IMPORT", ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"))
    assert peers.peer_environment(ours) == {"OMP_NUM_THREADS": "2"}
    monkeypatch.setattr(_runtime, "SET_BY_IMPORT", ("OMP_WAIT_POLICY",))      # the user's own count
    assert peers.peer_environment(ours) == {"GOMP_SPINCOUNT": "2300", "OMP_NUM_THREADS": "2"}


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_the_torch_peer_runs_an_epoch_in_its_own_process(tmp_path, kind):
    pytest.importorskip("torch")
    peers = load("torch_peers")
    rng = np.random.default_rng(0)
    X = (rng.random((200, 784)) - 0.5).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 200)]
    case = tmp_path / "case.npz"
    if kind == "mlp":
        net = bs.LiftedNetwork([784, 30, 10], ["relu", "identity"], dtype=np.float32, random_state=0)
        peers.save_case(case, "mlp", X, Y, widths=net.widths, K=2, weights=net.weights, biases=net.biases,
                        hidden=net.init_state(X).hidden)
    else:
        peers.save_case(case, "cnn", X, Y)
    seconds = peers.epoch_in_own_process(case)
    assert len(seconds) == (2 if kind == "mlp" else 1) and all(0 < s < 60 for s in seconds)
    case.write_bytes(b"not a case")
    with pytest.raises(RuntimeError, match="the PyTorch peer failed"):
        peers.epoch_in_own_process(case)


def test_scaling_dask_measures_the_bytes_of_a_round_and_predicts_with_the_tree():
    """--bytes: what the driver sends and fetches per round does not grow with the workers; the cost
    model's round bytes: 2 W |theta| at a driver-side average, (2 + 3 ceil(log2 W)) |theta| with the tree."""
    pytest.importorskip("distributed")
    scaling = load("scaling_dask")
    rows = scaling.bytes_per_round([1, 3], n_train=600)
    (_, driver_1, workers_1, theta), (_, driver_3, workers_3, _) = rows
    assert driver_1 == driver_3 == 2 * theta and workers_1 < workers_3
    assert scaling.round_bytes(64, 10, tree=False) == 1280 and scaling.round_bytes(64, 10) == 200
    assert scaling.round_bytes(1, 10) == 20
    predicted = scaling.predictions(0.237, 1.29e9, 7.4e6, 600)
    assert predicted["4 x 16 cores, 64 workers x 1 thread, sync 2"] < 3.0


def test_scaling_dask_rows_record_the_safeguards_recoveries():
    """A fit's row carries the accuracy, seconds, recoveries and step factor of every epoch (a dip in
    a two-worker curve can then be told from a recovery)."""
    from types import SimpleNamespace

    scaling = load("scaling_dask")
    data = scaling.load(SimpleNamespace(data_dir=None, n_train=300, n_test=100))      # the embedded images
    row = scaling.fit(data, epochs=2, threads=1)
    assert len(row["accuracy"]) == len(row["seconds"]) == 2
    assert len(row["recoveries"]) == 2 and all(isinstance(r, int) and r >= 0 for r in row["recoveries"])
    assert len(row["step_factor"]) == 2 and all(0 < f <= 1 for f in row["step_factor"])


def test_plain_shards_times_one_shard_alone_and_all_at_once(capsys):
    """The shards as plain processes (the embedded images): one alone, then all at once, each one's
    epochs' seconds read back from its process; a child fits exactly its strided shard."""
    shards = load("plain_shards")
    assert shards.main(["--shards", "2", "--n-train", "200", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 shards of 100 images" in out and "one shard alone:" in out and "all at once:     median" in out
    seconds = shards.fit_shard(None, 200, 2, 1, 2)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
