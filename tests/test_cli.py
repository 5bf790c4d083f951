"""The command line end to end on tiny data, into a temporary directory."""
import json

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.cli import _accuracy_curves, _energy_curves, main

PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--n-train", "200", "--n-test", "100", "--epochs", "2", "--quiet", "--threads", "1"]


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000


def test_classify(tmp_path, capsys):
    assert main(["classify", *TINY, "--hidden", "32", "32", "--classical", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "Table 2" in out and "SGD-BP" in out
    results = json.loads((tmp_path / "results.json").read_text())
    table = results["table1"]
    assert set(table) == {"standard lifted network", "lifted Bregman network (LBN, library defaults)", "SGD-BP"}
    for row in table.values():
        assert 0 <= row["test_accuracy"] <= 1 and len(row["linear_activation_rates"]) == 2
        assert len(row["linear_activation_rates_test"]) == 2          # Table 2 on training and test images
    assert results["settings"]["epochs"] == 2 and results["settings"]["command"] == "classify"
    assert "| model |" in (tmp_path / "table1.md").read_text()
    assert "layer 2" in (tmp_path / "table2.md").read_text()
    assert_png(tmp_path / "accuracy.png")
    assert_png(tmp_path / "energy.png")
    curves = _energy_curves(results["history"])
    # quantities comparable across epochs: the lifted models' mean batch energy, every model's forward-pass
    # loss (the full-data energy over stored auxiliary variables stays in results.json only)
    assert not any("full-data" in label for label in curves)
    assert sum("mean batch energy" in label for label in curves) == 2
    assert sum("forward pass" in label for label in curves) == 3
    assert all(len(values) == 2 and min(values) > 0 for values in curves.values())
    accuracy = _accuracy_curves(results["history"])
    assert len(accuracy) == 6 and all(0 <= v <= 100 for values in accuracy.values() for v in values)
    assert any(v > 1 for values in accuracy.values() for v in values)            # percent, not fractions
    assert "Linear-activation rate:" in (tmp_path / "table2.md").read_text() and "Linear-activation rate:" in out


def test_classify_a_convolutional_network(tmp_path, capsys):
    assert main(["classify", "--arch", "lenet5", "--n-train", "200", "--n-test", "100", "--epochs", "1", "--quiet",
                 "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "memory: auxiliary variables 5.21 MB (200 samples x 6,508 entries, float32)" in out
    assert "layer 4 (train / test) |" in out and "layer 5" not in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["arch"] == "lenet5"
    assert all(len(row["linear_activation_rates"]) == 4 for row in results["table1"].values())


@pytest.mark.parametrize("options, metric, label", [
    (["--arch", "lenet5"], "auto", "LBN, library defaults, input metric"),
    (["--arch", "resnet"], "auto", "LBN, library defaults, input metric"),
    (["--arch", "mlp", "--hidden", "16"], "auto", "LBN, library defaults"),
    (["--arch", "lenet5", "--theta-metric", "input"], "input", "LBN, library defaults, input metric"),
    (["--arch", "lenet5", "--theta-metric", "euclidean"], "euclidean", "LBN, library preset, --theta-metric euclidean"),
    (["--arch", "lenet5", "--preset", "paper"], "euclidean", "LBN, paper"),
])
def test_classify_takes_the_input_metric_for_convolutions_by_default(tmp_path, monkeypatch, options, metric, label):
    """For --arch lenet5 and resnet the library's lifted model takes the input metric unless told
    otherwise (``theta_metric="auto"``; the convolutional preset's t = 0.25 per layer) and says so in
    its name; the dense network, the paper's preset and --theta-metric euclidean take the Euclidean
    steps; the settings record the option."""
    from bregman_solvers import cli

    seen, steps_given = {}, {}

    class Recording(cli.LiftedBregmanClassifier):
        def fit(self, X, y, **kwargs):
            seen[self.solver] = self.theta_metric
            steps_given[self.solver] = (self.tau, self.tau_theta)
            return super().fit(X, y, **kwargs)

    monkeypatch.setattr(cli, "LiftedBregmanClassifier", Recording)
    args = ["classify", *TINY, "--epochs", "1", *options, "--out", str(tmp_path)]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["theta_metric"] == metric and seen == {"isgd": metric, "sgd-bp": metric}
    lifted = next(name for name in results["history"] if name.startswith("lifted"))
    assert lifted == f"lifted Bregman network ({label})"
    steps = results["history"][lifted]["tau_theta"][0]
    # the defaults' "auto" in the input metric: t = 0.25 (and tau = 100: test_stochastic) per layer
    assert all(t == 0.25 for t in steps) == ("input metric" in label)
    assert steps_given["isgd"] == (("auto", "lipschitz") if "paper" in label else ("auto", "auto"))
    # tau_x "auto" (or the paper's rule): 0.1 for every hidden layer of a convolutional network
    assert all(t == 0.1 for t in results["history"][lifted]["tau_x"][0]) == ("paper" not in label and
                                                                           "16" not in options)


@pytest.mark.parametrize("command", ["autoencoder", "denoise"])
def test_autoencoders(tmp_path, command):
    args = [command, *TINY, "--n-train", "100", "--epochs", "1", "--out", str(tmp_path), "--inner-iterations", "2"]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    expected = ({"LBN-S", "SGD-BP", "ISGD-BP", "UAE-LBN", "UAE-SGD-BP"} if command == "denoise"
                else {"LBN-S", "LBN-D", "GD-BP", "SGD-BP"})
    assert set(results["results"]) == expected
    for row in results["results"].values():
        assert row["test_mse"] > 0 and 0 <= row["test_code_sparsity"] <= 1
    for name in ("objective.png", "test_mse.png", "sparsity.png", "reconstructions.png", "reconstructions_train.png"):
        assert_png(tmp_path / name)
    if command == "denoise":            # the undercomplete autoencoders of Section 6: code width 70 by default
        assert results["settings"]["code_width"] == 70


def test_the_undercomplete_code_width_reaches_both_models(tmp_path, monkeypatch):
    from bregman_solvers import cli

    seen = {}
    real = cli.DenoisingAutoencoder

    def recording(**params):
        est = real(**params)
        seen[params["solver"], params["code_threshold"]] = params["hidden_layer_sizes"]
        return est

    monkeypatch.setattr(cli, "DenoisingAutoencoder", recording)
    assert main(["denoise", *TINY, "--n-train", "100", "--epochs", "1", "--inner-iterations", "2", "--code-width", "12",
                 "--models", "UAE-LBN", "UAE-SGD-BP", "--out", str(tmp_path)]) == 0
    assert seen == {("isgd", None): (784, 12, 784), ("sgd-bp", None): (784, 12, 784)}


def test_a_diverging_baseline_is_reported_and_the_others_go_on(tmp_path, capsys):
    """Back-propagation's steps are used as given: with a huge learning rate SGD-BP and ISGD-BP
    diverge; their rows read 'diverged', the lifted model's result is still written."""
    args = ["denoise", *TINY, "--n-train", "100", "--epochs", "1", "--out", str(tmp_path), "--inner-iterations", "2",
            "--learning-rate", "1e6", "--models", "LBN-S", "SGD-BP", "ISGD-BP"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "SGD-BP diverged" in out and "ISGD-BP diverged" in out
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"LBN-S", "SGD-BP", "ISGD-BP"}
    assert "diverged" in results["SGD-BP"] and "diverged" in results["ISGD-BP"]
    assert results["LBN-S"]["test_mse"] > 0
    table = (tmp_path / "table.md").read_text()
    assert "| SGD-BP | diverged | diverged |" in table
    assert main(["classify", *TINY, "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "c"),
                 "--learning-rate", "1e6"]) == 0
    assert "| SGD-BP | diverged | diverged |" in (tmp_path / "c" / "table1.md").read_text()


def test_a_model_that_diverges_later_keeps_its_history_up_to_the_divergence(tmp_path, monkeypatch):
    """SGD-BP diverging in its third epoch: its row reads 'diverged', and its first two epochs are in
    results.json's history (what a record of the run is made from) with the epochs it finished."""
    from bregman_solvers import cli
    from bregman_solvers.exceptions import DivergenceError

    class DivergingInEpochThree(cli.LiftedBregmanClassifier):
        def fit(self, X, y, validation_data=None, callback=None, resume=None, init=None):
            if self.solver != "sgd-bp":
                return super().fit(X, y, validation_data=validation_data, callback=callback, resume=resume)

            def then_diverge(result):
                if result.epoch == 3:
                    raise DivergenceError("the loss grew 1e4-fold")
                return callback(result)

            return super().fit(X, y, validation_data=validation_data, callback=then_diverge, resume=resume)

    monkeypatch.setattr(cli, "LiftedBregmanClassifier", DivergingInEpochThree)
    args = ["classify", *TINY, "--epochs", "4", "--hidden", "8", "--inner-iterations", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    row = saved["table1"]["SGD-BP"]
    assert "diverged" in row and row["epochs_before_divergence"] == 2
    assert len(saved["history"]["SGD-BP"]["val_accuracy"]) == 2
    assert len(saved["history"][next(m for m in saved["table1"] if m != "SGD-BP")]["val_accuracy"]) == 4
    assert "| SGD-BP | diverged | diverged |" in (tmp_path / "table1.md").read_text()


def test_autoencoder_models_option(tmp_path):
    args = ["autoencoder", *TINY, "--n-train", "100", "--epochs", "1", "--out", str(tmp_path), "--inner-iterations",
            "2", "--models", "SGD-BP", "LBN-D"]
    assert main(args) == 0
    assert set(json.loads((tmp_path / "results.json").read_text())["results"]) == {"LBN-D", "SGD-BP"}
    with pytest.raises(SystemExit):
        main(["autoencoder", *TINY, "--models", "ISGD-BP"])        # a model of denoise only


def test_demo_and_errors(tmp_path, capsys):
    assert main(["demo", "--n-samples", "50", "--n-features", "7"]) == 0
    assert "relu" in capsys.readouterr().out
    assert main(["classify", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "--epochs", "0"])
    with pytest.raises(SystemExit):
        main(["unknown"])


@pytest.mark.parametrize("option, value", [("--epochs", "abc"), ("--epochs", "0"), ("--seed", "-3"),
                                           ("--threshold", "inf"), ("--noise", "-0.5"), ("--alpha", "nan"),
                                           ("--tau-x", "0"), ("--tau-theta", "often"), ("--momentum", "1"),
                                           ("--momentum", "-0.1"), ("--momentum", "much")])
def test_a_bad_option_value_is_refused_naming_the_option(capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        main(["denoise", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be" in err and repr(value) in err


def test_sizes_beyond_the_data_and_an_out_file_are_clear_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BREGMAN_SOLVERS_DATA", raising=False)         # the embedded subset
    assert main(["classify", "--n-train", "100000", "--n-test", "100", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--n-train 100000 is more than the 5000 images" in err and "--data-dir" in err
    assert not (tmp_path / "results.json").exists()
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert main(["classify", *TINY, "--out", str(afile)]) == 2
    assert "--out" in capsys.readouterr().err
    assert afile.read_text() == "keep me"


def test_step_options_reach_the_estimators(tmp_path, monkeypatch):
    """--tau-theta/--tau-x/--tau/--learning-rate override the models' step sizes; unset, each model keeps
    its own (LBN "auto" for all three, i.e. 0.5/10 for tau_x/tau on this dense network; the classical
    network 0.1/0.1/1, SGD-BP 0.1)."""
    from bregman_solvers import cli

    seen = []
    real_fit = cli.LiftedBregmanClassifier.fit

    def spy(self, X, y, **kwargs):
        seen.append({k: self.get_params()[k] for k in ("solver", "penalty", "tau_theta", "tau_x", "tau",
                                                       "learning_rate", "momentum")})
        return real_fit(self, X, y, **kwargs)

    monkeypatch.setattr(cli.LiftedBregmanClassifier, "fit", spy)
    assert main(["classify", *TINY, "--hidden", "16", "--classical", "--out", str(tmp_path)]) == 0
    by_penalty = {(s["solver"], s["penalty"]): s for s in seen}
    assert by_penalty[("isgd", "bregman")]["tau_theta"] == "auto" == by_penalty[("isgd", "bregman")]["tau"]
    seen.clear()
    assert main(["classify", *TINY, "--hidden", "16", "--tau", "auto", "--tau-x", "auto", "--out",
                 str(tmp_path / "auto")]) == 0
    assert (seen[0]["tau"], seen[0]["tau_x"]) == ("auto", "auto")
    assert by_penalty[("isgd", "classical")]["tau_x"] == 0.1 and by_penalty[("isgd", "classical")]["tau"] == 1.0
    # the momentum: LBN's default, none for the classical network as published
    assert by_penalty[("isgd", "bregman")]["momentum"] == 0.7 and by_penalty[("isgd", "classical")]["momentum"] == 0
    assert by_penalty[("sgd-bp", "bregman")]["learning_rate"] == 0.1
    seen.clear()
    assert main(["classify", *TINY, "--hidden", "16", "--tau-theta", "auto", "--tau-x", "0.2", "--tau", "5",
                 "--learning-rate", "0.01", "--momentum", "0.3", "--out", str(tmp_path)]) == 0
    lbn = next(s for s in seen if s["solver"] == "isgd")
    assert (lbn["tau_theta"], lbn["tau_x"], lbn["tau"], lbn["momentum"]) == ("auto", 0.2, 5.0, 0.3)
    assert next(s for s in seen if s["solver"] == "sgd-bp")["learning_rate"] == 0.01
    for bad in (["--tau-x", "0"], ["--tau", "-1"], ["--tau-theta", "fast"], ["--learning-rate", "nan"]):
        with pytest.raises(SystemExit):
            main(["classify", *bad])


def test_the_cli_serves_data_of_any_width(tmp_path, monkeypatch):
    """Nothing assumes 784 features or 10 classes: 36-pixel images of 3 classes train and plot."""
    import numpy as np

    from bregman_solvers import _cli_data

    rng = np.random.default_rng(0)

    def loader(data_dir, kind):
        n = 120 if kind == "train" else 60
        return rng.random((n, 36)).astype(np.float32), rng.integers(0, 3, n)

    monkeypatch.setattr(_cli_data, "load_mnist", loader)
    assert main(["classify", "--n-train", "120", "--n-test", "60", "--epochs", "1", "--quiet", "--hidden", "8",
                 "--out", str(tmp_path / "c")]) == 0
    assert main(["autoencoder", "--n-train", "120", "--n-test", "60", "--epochs", "1", "--quiet",
                 "--inner-iterations", "2", "--aux-start", "forward", "--out", str(tmp_path / "a")]) == 0
    assert_png(tmp_path / "a" / "reconstructions.png")          # 6 x 6 images
    assert_png(tmp_path / "a" / "reconstructions_train.png")


def test_a_missing_data_set_tells_a_command_line_user_about_data_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BREGMAN_SOLVERS_DATA", str(tmp_path / "nowhere"))
    from bregman_solvers import datasets

    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "nowhere"))
    assert main(["classify", "--dataset", "fashion-mnist", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "path=" not in err and err.count("BREGMAN_SOLVERS_DATA") == 1
    assert err.count("\n") == 1 and str(tmp_path / "nowhere") in err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    out = capsys.readouterr().out
    assert "(default: 5000; 60000" in out and "(default: 100)" in out and "(default: float32)" in out
    assert "(default: library)" in out and "lipschitz with --preset paper" in out


def test_checkpoints_and_resume_give_the_uninterrupted_run(tmp_path):
    """classify --checkpoint-every 1: stopped after 2 of 3 epochs and resumed with --resume, the
    tables and histories are those of the uninterrupted 3-epoch run."""
    args = ["classify", "--n-train", "200", "--n-test", "100", "--quiet", "--threads", "1", "--hidden", "16"]
    assert main([*args, "--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--epochs", "2", "--checkpoint-every", "1", "--out", str(tmp_path / "parts")]) == 0
    assert (tmp_path / "parts" / "checkpoint-lbn.npz").exists() and (tmp_path / "parts" / "checkpoint-sgd-bp.npz").exists()
    assert main([*args, "--epochs", "3", "--checkpoint-every", "1", "--resume", "--out", str(tmp_path / "parts")]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    parts = json.loads((tmp_path / "parts" / "results.json").read_text())
    for model in whole["table1"]:
        for key in ("train_accuracy", "test_accuracy", "linear_activation_rates"):
            assert parts["table1"][model][key] == whole["table1"][model][key], (model, key)
        assert parts["history"][model]["val_accuracy"] == whole["history"][model]["val_accuracy"]
        assert parts["history"][model]["epoch"] == [1, 2, 3]
    assert (tmp_path / "whole" / "table1.md").read_text() == (tmp_path / "parts" / "table1.md").read_text()


def test_autoencoder_checkpoints_and_resume_give_the_uninterrupted_run(tmp_path):
    """autoencoder and denoise take --checkpoint-every / --resume like classify (stochastic models);
    GD-BP's deterministic solver keeps no checkpoint and trains from the start."""
    args = ["autoencoder", "--n-train", "100", "--n-test", "50", "--quiet", "--threads", "1", "--models", "LBN-S",
            "SGD-BP"]
    assert main([*args, "--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--epochs", "2", "--checkpoint-every", "1", "--out", str(tmp_path / "parts")]) == 0
    assert main([*args, "--epochs", "3", "--resume", "--out", str(tmp_path / "parts")]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    parts = json.loads((tmp_path / "parts" / "results.json").read_text())
    for model in ("LBN-S", "SGD-BP"):
        assert parts["results"][model]["test_mse"] == whole["results"][model]["test_mse"], model
        assert parts["history"][model]["val_mse"] == whole["history"][model]["val_mse"], model
        assert parts["history"][model]["epoch"] == [1, 2, 3]
    assert main(["autoencoder", *TINY, "--models", "GD-BP", "--checkpoint-every", "1", "--out",
                 str(tmp_path / "gd")]) == 0
    assert not list((tmp_path / "gd").glob("checkpoint-*"))


def test_resume_without_a_checkpoint_is_an_error_naming_the_folder(tmp_path, capsys):
    for command in ("classify", "autoencoder", "denoise"):
        assert main([command, *TINY, "--resume", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--resume: no checkpoint in" in err and str(tmp_path) in err


def test_errors_are_one_line_with_a_hint(capsys):
    """argparse's errors: one line and the --help hint, no usage block; value forms stated."""
    for argv, says in ((["classify", "--tau-theta", "abc"], "must be 'auto' or 'lipschitz' or 'cosine:START:END' or a"),
                       (["classify", "--tau-x", "-1"], "must be 'auto' or 'lipschitz' or 'cosine:START:END' or a"),
                       (["classify", "--tau", "lipschitz"], "must be 'auto' or a positive number"),
                       (["classify", "--epochs", "0"], "must be a positive integer"),
                       (["bogus"], "invalid choice"), ([], "required: command")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 2 and "error:" in lines[0] and says in lines[0] and "--help" in lines[1], err


def test_help_states_each_default_once_and_helps_every_option(capsys):
    import argparse

    from bregman_solvers.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or "-h" in action.option_strings:
                continue
            assert action.help and len(action.help) > 8, (command, action.dest)
            rendered = formatter._get_help_string(action) % {"default": action.default}
            assert rendered.count("(default") <= 1, (command, action.dest, rendered)
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a number, 'auto' (the library's rule), 'lipschitz' (1/L, the paper's) or 'cosine:START:END'" in out and "(default: the usable cores) (default" not in out


def test_data_dir_errors_name_the_problem(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["classify", *TINY, "--data-dir", str(a_file), "--out", str(tmp_path / "o")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_data_folder_of_the_other_set_is_refused(tmp_path, capsys):
    """--dataset fashion-mnist on MNIST's files (recognised by their labels' checksum) is an error;
    results.json records the folder read and what its files were recognised as."""
    from bregman_solvers.datasets import EMBEDDED_DIR

    assert main(["classify", *TINY, "--dataset", "fashion-mnist", "--data-dir", EMBEDDED_DIR, "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds MNIST's files" in err and "not Fashion-MNIST's" in err
    assert main(["classify", *TINY, "--hidden", "8", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text())["data"]
    assert data["directory"] == EMBEDDED_DIR and data["recognised"] == ["mnist train", "mnist test"]


def test_an_unreachable_scheduler_is_one_line_after_the_timeout(tmp_path, capsys):
    pytest.importorskip("distributed")
    code = main(["classify", *TINY, "--hidden", "8", "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def _interrupt_at(monkeypatch, owner, name, call):
    """Deliver a real SIGINT (through the command's handler) on the ``call``-th call of owner.name."""
    import os
    import signal

    real, count = getattr(owner, name), {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    import inspect

    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    monkeypatch.setattr(owner, name, staticmethod(wrapped) if static else wrapped)


INTERRUPTIBLE = ["classify", "--n-train", "200", "--n-test", "100", "--quiet", "--threads", "1", "--hidden", "16",
                 "--epochs", "3"]


def _resume_gives_the_whole_run(tmp_path, whole, parts, *extra):
    assert main([*INTERRUPTIBLE, *extra, "--resume", "--out", str(tmp_path / parts)]) == 0
    whole_results = json.loads((tmp_path / whole / "results.json").read_text())
    parts_results = json.loads((tmp_path / parts / "results.json").read_text())
    assert parts_results["interrupted"] is None
    for model in whole_results["table1"]:
        for key in ("val_accuracy", "batch_energy", "train_accuracy"):
            assert parts_results["history"][model][key] == whole_results["history"][model][key], (model, key)
    assert (tmp_path / whole / "table1.md").read_text() == (tmp_path / parts / "table1.md").read_text()


@pytest.mark.parametrize("every", [[], ["--checkpoint-every", "1"]])
def test_ctrl_c_during_a_fit_stops_at_the_batch_and_resumes_to_the_whole_run(tmp_path, capsys, monkeypatch, every):
    """Ctrl-C during the first batch of LBN's second epoch: the batch finishes, the fit stops there and
    writes a checkpoint of that point (with or without --checkpoint-every); exit 130, one line, LBN
    marked interrupted in results.json and the tables, SGD-BP not trained; --resume then gives the
    uninterrupted run's histories and tables."""
    from bregman_solvers.solvers import stochastic

    assert main([*INTERRUPTIBLE, "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stochastic.ImplicitSGD, "batch_steps", 3)        # 2 batches per epoch: epoch 2
        code = main([*INTERRUPTIBLE, *every, "--out", str(tmp_path / "parts")])
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1 and "Traceback" not in err
    assert "kept lifted Bregman network (LBN, library defaults) after 1 of 3 epochs; not trained: SGD-BP" in err and "--resume" in err
    results = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert results["interrupted"]["not_trained"] == ["SGD-BP"] and list(results["table1"]) == [
        "lifted Bregman network (LBN, library defaults)"]
    assert results["table1"]["lifted Bregman network (LBN, library defaults)"]["epochs_completed"] == 1
    assert "interrupted" in (tmp_path / "parts" / "table1.md").read_text().splitlines()[0]
    checkpoint = bs.load(tmp_path / "parts" / "checkpoint-lbn.npz")
    assert checkpoint.epoch == 1 and checkpoint.position["batch"] == 1
    _resume_gives_the_whole_run(tmp_path, "whole", "parts", *every)


def test_ctrl_c_during_the_epochs_evaluation_keeps_the_epochs_batches(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the second epoch's validation metrics are computed: the fit is watching, so the
    evaluation finishes and the stop lands before epoch 3's first batch (a checkpoint there, epoch 2
    recorded), and --resume goes on as the whole run."""
    from bregman_solvers.solvers import _epochs

    assert main([*INTERRUPTIBLE, "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        # the training and validation metrics of each epoch: two calls per epoch
        _interrupt_at(patch, _epochs, "evaluate_network", 3)
        assert main([*INTERRUPTIBLE, "--out", str(tmp_path / "parts")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "after 2 of 3 epochs" in err and "--resume" in err
    checkpoint = bs.load(tmp_path / "parts" / "checkpoint-lbn.npz")
    assert checkpoint.epoch == 2 and checkpoint.position["batch"] == 0          # before epoch 3's batches
    _resume_gives_the_whole_run(tmp_path, "whole", "parts")


def test_ctrl_c_in_the_first_epoch_writes_marked_results_without_a_traceback(tmp_path, capsys, monkeypatch):
    from bregman_solvers.solvers import stochastic

    _interrupt_at(monkeypatch, stochastic.ImplicitSGD, "batch_steps", 1)
    assert main([*INTERRUPTIBLE, "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "after 0 of 3 epochs" in err and "resume with the same command" in err
    assert "| interrupted | interrupted |" in (tmp_path / "table1.md").read_text()


@pytest.mark.parametrize("point", ["evaluation", "plotting"])
def test_ctrl_c_outside_the_epochs_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch, point):
    from bregman_solvers import cli
    from bregman_solvers.network import LiftedNetwork

    owner, name = (LiftedNetwork, "linear_activation_rate") if point == "evaluation" else (cli, "_plot_curves")
    _interrupt_at(monkeypatch, owner, name, 1)
    assert main([*INTERRUPTIBLE, "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    if point == "plotting":         # the tables and JSON were written before the plots
        assert (tmp_path / "results.json").exists()


def test_ctrl_c_in_a_real_process_stops_writes_a_checkpoint_and_resumes_to_the_whole_run(tmp_path):
    """The command as a user runs it, interrupted by a real SIGINT a second into LBN's fit (wherever it
    lands: a batch or an epoch's evaluation): exit 130, one line on stderr and no traceback, a
    checkpoint without --checkpoint-every, results marked interrupted; --resume then ends with the
    uninterrupted run's histories and tables."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "bregman_solvers", "classify", "--n-train", "2000", "--n-test", "200",
               "--quiet", "--threads", "1", "--hidden", "128", "128", "--epochs", "20"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(bs.__file__)),
                                                                      os.environ.get("PYTHONPATH")])))
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300)
    assert whole.returncode == 0, whole.stderr
    process = subprocess.Popen([*command, "--out", str(tmp_path / "parts")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert process.stdout.readline().startswith("training lifted Bregman network")
    assert process.stdout.readline().startswith("  memory:")           # printed just before the fit starts
    # a third into LBN's fit as the whole run timed it: inside the fit on any machine's speed
    lbn = json.loads((tmp_path / "whole" / "results.json").read_text())["table1"]["lifted Bregman network (LBN, library defaults)"]
    time.sleep(lbn["seconds"] / 3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and "interrupted: kept lifted Bregman network" in err
    assert json.loads((tmp_path / "parts" / "results.json").read_text())["interrupted"]["not_trained"] == ["SGD-BP"]
    assert (tmp_path / "parts" / "checkpoint-lbn.npz").exists()
    resumed = subprocess.run([*command, "--resume", "--out", str(tmp_path / "parts")], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole_results = json.loads((tmp_path / "whole" / "results.json").read_text())
    parts_results = json.loads((tmp_path / "parts" / "results.json").read_text())
    for model in whole_results["table1"]:
        for key in ("val_accuracy", "batch_energy"):
            assert parts_results["history"][model][key] == whole_results["history"][model][key], (model, key)
    assert (tmp_path / "whole" / "table1.md").read_text() == (tmp_path / "parts" / "table1.md").read_text()


# Runs the console script's entry point in a fresh process after wrapping one function so that its
# N-th call sends this process a real SIGINT: the signal meets the command's own handler exactly where
# a user's Ctrl-C at that point would.
_SIGINT_AT = """
import os, signal, sys, importlib
module, name, call = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner = importlib.import_module(module)
real, count = getattr(owner, name), [0]
def wrapped(*args, **kwargs):
    count[0] += 1
    if count[0] == call:
        os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)
setattr(owner, name, wrapped)
from bregman_solvers._entry import main
sys.exit(main(sys.argv[4:]))
"""


@pytest.mark.parametrize("point", ["evaluation", "plotting"])
def test_ctrl_c_at_the_evaluation_or_the_plots_of_a_real_process(tmp_path, point):
    """SIGINT in a separate process while an epoch's metrics are computed (the second epoch's
    training metrics) or while the first plot is drawn: exit 130, one line on stderr, no traceback;
    at the evaluation a checkpoint (without --checkpoint-every) and results marked interrupted; at the
    plots every table and results.json already written and complete (and, with --checkpoint-every,
    the finished fits' checkpoints). ``--resume`` then ends with the
    uninterrupted run's histories, tables and plots."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(bs.__file__)),
                                                                      os.environ.get("PYTHONPATH")])))
    where = {"evaluation": ("bregman_solvers.solvers._epochs", "evaluate_network", "3"),
             "plotting": ("bregman_solvers.cli", "_plot_curves", "1")}[point]
    # at the plots every fit has finished: only --checkpoint-every leaves something to resume from
    keep = ["--checkpoint-every", "1"] if point == "plotting" else []

    def run(*argv, interrupt=False):
        prefix = [sys.executable, "-c", _SIGINT_AT, *where] if interrupt else [sys.executable, "-m", "bregman_solvers"]
        return subprocess.run([*prefix, *INTERRUPTIBLE, *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    whole = run("--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    parts = run(*keep, "--out", str(tmp_path / "parts"), interrupt=True)
    assert parts.returncode == 130, (parts.stdout, parts.stderr)
    assert parts.stderr.count("\n") == 1 and "Traceback" not in parts.stderr and "interrupted" in parts.stderr
    results = json.loads((tmp_path / "parts" / "results.json").read_text())
    if point == "evaluation":
        assert "after 2 of 3 epochs" in parts.stderr and "--resume" in parts.stderr
        assert results["interrupted"]["not_trained"] == ["SGD-BP"]
        assert bs.load(tmp_path / "parts" / "checkpoint-lbn.npz").epoch == 2
    else:
        assert results["interrupted"] is None and (tmp_path / "parts" / "table1.md").exists()
        assert not (tmp_path / "parts" / "accuracy.png").exists()
    resumed = run(*keep, "--resume", "--out", str(tmp_path / "parts"))
    assert resumed.returncode == 0, resumed.stderr
    whole_results = json.loads((tmp_path / "whole" / "results.json").read_text())
    parts_results = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert parts_results["interrupted"] is None
    for model in whole_results["table1"]:
        for key in ("val_accuracy", "batch_energy", "train_accuracy"):
            assert parts_results["history"][model][key] == whole_results["history"][model][key], (model, key)
    for name in ("table1.md", "table2.md"):
        assert (tmp_path / "whole" / name).read_text() == (tmp_path / "parts" / name).read_text(), name
    assert (tmp_path / "parts" / "accuracy.png").exists() and (tmp_path / "parts" / "energy.png").exists()


ANOMALY = ["anomaly", "--n-train", "400", "--n-test", "200", "--epochs", "2", "--hidden", "16", "4", "16",
           "--x-steps", "3", "--quiet", "--threads", "1"]


def test_anomaly_writes_the_auroc_table_plots_and_json(tmp_path, capsys):
    assert main([*ANOMALY, "--normal-class", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "AUROC (%) per normal class, mnist" in out and "| energy |" in out and "| reconstruction |" in out
    results = json.loads((tmp_path / "results.json").read_text())
    row = results["results"]["1"]
    labels = bs.datasets.load_mnist(subset="train")[1][:400]
    assert results["interrupted"] is None and row["n_train"] == int(np.sum(labels == 1))
    for scoring in ("energy", "reconstruction"):
        assert 0.5 < row[scoring]["auroc"] <= 1 and len(row[scoring]["per_layer_auroc"]) == 4
    assert {p.name for p in tmp_path.iterdir()} == {"auroc.md", "results.json", "roc.png", "histograms.png"}


def test_anomaly_refuses_bad_classes_and_too_few_images_in_one_line(tmp_path, capsys):
    for argv in ([*ANOMALY, "--normal-class", "10"], [*ANOMALY, "--normal-class", "one"],
                 [*ANOMALY, "--x-steps", "-1"], [*ANOMALY, "--epochs", "0"]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--out", str(tmp_path)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "error:" in err and "Traceback" not in err and err.count("\n") <= 2, err
    assert main(["anomaly", "--n-train", "5", "--normal-class", "3", "--out", str(tmp_path)]) == 2
    assert "training image(s) of class 3; raise --n-train" in capsys.readouterr().err


def test_ctrl_c_during_an_anomaly_fit_keeps_the_classes_done(tmp_path, capsys, monkeypatch):
    from bregman_solvers.solvers import stochastic

    _interrupt_at(monkeypatch, stochastic.ImplicitSGD, "batch_steps", 3)      # 2 epochs of 1 batch: class 1
    assert main([*ANOMALY, "--n-train", "100", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted: kept classes [0]" in err and "Traceback" not in err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["interrupted"] == "class 1's training" and list(results["results"]) == ["0"]
    assert "(interrupted during class 1's training)" in (tmp_path / "auroc.md").read_text()


def test_export_writes_each_model_as_onnx_with_the_centring_in_the_graph(tmp_path, capsys):
    """--export: every trained model as ONNX; the graph takes pixels in [0, 1] (the training mean is
    subtracted inside) and predicts what the run's table says."""
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    assert main(["classify", *TINY, "--hidden", "16", "--out", str(tmp_path), "--export",
                 str(tmp_path / "model.onnx")]) == 0
    assert "exported" in capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    X, y = bs.datasets.load_mnist(subset="test", n_samples=100)
    for slug, model in (("lbn", "lifted Bregman network (LBN, library defaults)"), ("sgd-bp", "SGD-BP")):
        graph = onnx.load(tmp_path / f"model-{slug}.onnx")
        (labels,) = ReferenceEvaluator(graph).run(["label"], {"input": X.astype(np.float32) / 255})
        assert np.mean(labels == y) == pytest.approx(results["table1"][model]["test_accuracy"])
    assert main(["autoencoder", *TINY, "--models", "LBN-S", "--out", str(tmp_path / "ae"), "--export",
                 str(tmp_path / "ae.onnx")]) == 0
    assert (tmp_path / "ae-lbn-s.onnx").exists()


def test_export_into_a_missing_folder_is_one_line_before_training(tmp_path, capsys):
    pytest.importorskip("onnx")
    assert main(["classify", *TINY, "--out", str(tmp_path), "--export", str(tmp_path / "no" / "m.onnx")]) == 2
    captured = capsys.readouterr()
    assert "training" not in captured.out and captured.err.count("\n") == 1
    assert "--export:" in captured.err and "is not a folder this process can write to" in captured.err


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    """A SIGINT while the command is still importing NumPy, SciPy and scikit-learn (its first ~1.5 s):
    exit 130 and one line, no traceback (`import bregman_solvers` itself loads nothing heavy, so the
    entry point catches it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(bs.__file__)),
                                                                      os.environ.get("PYTHONPATH")])))
    check = subprocess.run([sys.executable, "-c", "import sys, bregman_solvers; print('numpy' in sys.modules)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert check.stdout.strip() == "False"
    process = subprocess.Popen([sys.executable, "-m", "bregman_solvers", "classify", "--out", str(tmp_path / "o")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    time.sleep(0.25)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err and err.count("\n") == 1 and "interrupted" in err, err


def test_subset_random_is_a_seeded_selection_of_the_images(tmp_path):
    """--subset random: as many images as asked, drawn without repetition (in file order) by --seed, the
    test set by another stream; --subset first: the first ones; results.json records which."""
    import argparse

    from bregman_solvers._cli_data import _load

    def load(subset, seed):
        args = argparse.Namespace(data_dir=None, dataset="mnist", n_train=300, n_test=100, dtype="float32",
                                  subset=subset, seed=seed)
        return _load(args)

    first, again, other, plain = load("random", 3), load("random", 3), load("random", 4), load("first", 3)
    Xall, yall = bs.datasets.load_mnist(subset="train")
    assert first[0].shape == (300, 784) and first[2].shape == (100, 784) and first[5]["subset"] == "random"
    assert plain[5]["subset"] == "first" and np.array_equal(plain[1], yall[:300])
    for a, b in zip(first[:4], again[:4]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1]) and not np.array_equal(first[1], plain[1])
    rows = {r.tobytes() for r in Xall}                       # every selected image is one of the set's
    assert all((np.rint((x + first[4]) * 255).astype(np.uint8).tobytes() in rows) for x in first[0][:20])
    assert main(["classify", *TINY, "--hidden", "8", "--subset", "random", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["data"]["subset"] == "random"


def test_figures_draws_the_papers_figures_1_and_2(tmp_path):
    """``bregman-solvers figures``: both PNGs written; the curves they show are the library's own
    activations and Bregman losses, each loss above the squared error and zero where x = sigma(z)."""
    from bregman_solvers import _cli_figures

    assert main(["figures", "--out", str(tmp_path)]) == 0
    for name in ("figure1_activations.png", "figure2_bregman_losses.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    for _, name, params, x_value in _cli_figures.PANELS:
        sigma, loss, squared = _cli_figures._curves(name, params, x_value)
        assert np.all(loss >= squared - 1e-12)                       # Theorem 10
        at = np.argmin(np.abs(sigma - x_value))                      # x = sigma(z) there (to the grid)
        assert loss[at] < 1e-3 and np.all(np.diff(sigma) >= -1e-15)  # monotone activations


def test_output_option_reaches_every_model(tmp_path, monkeypatch, capsys):
    """--output softmax: every model's output layer is softmax (its Bregman loss the cross-entropy);
    the default is the paper's identity output with the mean squared error; the settings record it;
    another value is refused by name."""
    from bregman_solvers import cli

    seen = {}

    class Recording(cli.LiftedBregmanClassifier):
        def fit(self, X, y, **kwargs):
            fitted = super().fit(X, y, **kwargs)
            seen[self.solver] = self.network_.activations[-1].name
            return fitted

    monkeypatch.setattr(cli, "LiftedBregmanClassifier", Recording)
    for output in ("softmax", None):
        seen.clear()
        option = ["--output", output] if output else []
        assert main(["classify", *TINY, "--hidden", "16", *option, "--out", str(tmp_path / str(output))]) == 0
        assert seen == {"isgd": output or "identity", "sgd-bp": output or "identity"}
        settings = json.loads((tmp_path / str(output) / "results.json").read_text())["settings"]
        assert settings["output"] == (output or "identity")
    with pytest.raises(SystemExit):
        main(["classify", "--output", "sigmoid"])
    assert "--output" in capsys.readouterr().err


def test_blocks_builds_the_deeper_residual_network(tmp_path, capsys):
    """--blocks 2 with --arch resnet: two basic blocks (five hidden lifted layers), the memory line
    counts their auxiliary variables, the settings record it; with another --arch it is refused."""
    assert main(["classify", *TINY, "--epochs", "1", "--arch", "resnet", "--blocks", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "x 15,680 entries" in out                   # (1 + 2 x 2) x 14 x 14 x 16 per sample
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["blocks"] == 2
    lifted = next(name for name in results["history"] if name.startswith("lifted"))
    assert len(results["history"][lifted]["tau_x"][0]) == 5
    for argv in (["--arch", "lenet5", "--blocks", "2"], ["--blocks", "3"], ["--arch", "resnet", "--blocks", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(["classify", *argv, "--out", str(tmp_path)])
        assert exit_.value.code == 2 and "--blocks" in capsys.readouterr().err


def test_a_cosine_step_is_annealed_over_the_epochs(tmp_path, capsys):
    """--tau-theta cosine:0.4:0.1 anneals LBN's parameter step from 0.4 in the first epoch to 0.1 in
    the last (the history's base steps per epoch); the settings keep the text; malformed forms
    (END above START, a missing or non-positive part) are refused by name."""
    assert main(["classify", *TINY, "--epochs", "3", "--hidden", "8", "--tau-theta", "cosine:0.4:0.1",
                 "--tau-x", "cosine:0.5:0.5", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["tau_theta"] == "cosine:0.4:0.1"
    lifted = next(name for name in results["history"] if name.startswith("lifted"))
    history = results["history"][lifted]
    np.testing.assert_allclose([steps[0] for steps in history["tau_theta"]], [0.4, 0.25, 0.1])
    assert [steps[0] for steps in history["tau_x"]] == [0.5] * 3
    for bad in ("cosine:0.1:0.4", "cosine:0.4", "cosine:0.4:0", "cosine:-1:-2", "cosine:a:b", "linear:0.4:0.1"):
        with pytest.raises(SystemExit):
            main(["classify", "--tau-theta", bad])
        assert "'cosine:START:END'" in capsys.readouterr().err


def test_a_penalty_growth_reaches_the_lifted_models_only(tmp_path, capsys):
    """--penalty-growth RATE:MAX: LBN's hidden penalty weights grow by RATE an epoch, held at MAX (the
    history's factor per epoch); SGD-BP has no penalties; the settings keep the text; malformed forms
    (a negative rate, MAX below 1, not finite, three parts) are refused by name."""
    assert main(["classify", *TINY, "--epochs", "3", "--hidden", "8", "--penalty-growth", "1:2.5",
                 "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["penalty_growth"] == "1:2.5"
    lifted = next(name for name in results["history"] if name.startswith("lifted"))
    assert results["history"][lifted]["penalty_factor"] == [1.0, 2.0, 2.5]
    assert "penalty_factor" not in results["history"]["SGD-BP"]
    for bad in ("-1", "1:0.5", "inf", "1:2:3", "a", "1:nan", "", "Auto"):
        with pytest.raises(SystemExit):
            main(["classify", "--penalty-growth", bad])
        assert "must be 'auto', RATE (a number >= 0) or RATE:MAX (MAX >= 1)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, factors", [([], None), (["--arch", "lenet5"], [1.0, 2.0]),
                                           (["--arch", "lenet5", "--preset", "paper", "--epochs", "2"], None),
                                           (["--penalty-growth", "auto"], None),
                                           (["--preset", "paper", "--epochs", "2", "--penalty-growth", "2"],
                                            [1.0, 3.0])])
def test_the_penalty_growth_defaults_to_auto_and_to_constant_weights_for_the_paper(tmp_path, argv, factors):
    """Unset, --penalty-growth is 'auto' (1:4 for a convolutional --arch, 0 for mlp) with the library's
    preset and 0 with the paper's (its constant weights); a value given wins over either."""
    assert main(["classify", *TINY, "--hidden", "8", "--n-train", "100", *argv, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    lifted = next(name for name in results["history"] if name.startswith("lifted"))
    assert results["history"][lifted].get("penalty_factor") == factors
