"""--preset: what the library's defaults and the paper's settings set, on every experiment (issue 33)."""
import json

import pytest

from bregman_solvers.cli import build_parser, main
from bregman_solvers._cli_presets import apply_preset, lbn_name

SMALL = ["--n-train", "120", "--n-test", "60", "--epochs", "1", "--quiet", "--threads", "1"]


def _args(argv):
    args = build_parser().parse_args(argv)
    apply_preset(args)
    return args


@pytest.mark.parametrize("argv, input_metric, auto_input_metric, name", [
    ([], True, True, "LBN, library defaults, input metric"),
    ([], False, False, "LBN, library defaults"),
    (["--inner-iterations", "10", "--tau-theta", "0.5", "--momentum", "0.9", "--batch-size", "50"], True, True,
     "LBN, library preset, --batch-size 50 --inner-iterations 10 --momentum 0.9 --tau-theta 0.5, input metric"),
    (["--penalty-growth", "1:4", "--tau", "1000", "--aux-start", "stored"], False, False,
     "LBN, library preset, --aux-start stored --tau 1000.0 --penalty-growth 1:4"),
    (["--theta-metric", "euclidean"], False, True, "LBN, library preset, --theta-metric euclidean"),
    (["--preset", "paper"], False, False, "LBN, paper"),
    (["--preset", "paper", "--inner-iterations", "20"], False, False, "LBN, paper, --inner-iterations 20"),
])
def test_the_lbn_models_name_says_what_differs_from_its_preset(argv, input_metric, auto_input_metric, name):
    """The name in tables, legends, results.json and checkpoints says ``library defaults`` only when
    nothing LBN trains with was given; otherwise the options given with their values (K given as the preset's
    10 too: ``apply_preset`` fills it after noting what was given)."""
    args = _args(["classify", *argv])
    args.theta_metric = args.theta_metric or "auto"
    assert lbn_name(args, input_metric, auto_input_metric) == f"lifted Bregman network ({name})"
    assert args.inner_iterations == (20 if "20" in argv else 10)


@pytest.mark.parametrize("command, sizes", [
    ("classify", dict(epochs=100, n_train=60000, n_test=10000, subset="first", inner_iterations=10)),
    ("autoencoder", dict(epochs=100, n_train=1000, n_test=10000, subset="random", inner_iterations=10)),
    ("denoise", dict(epochs=50, n_train=1000, n_test=10000, subset="random", inner_iterations=10)),
])
def test_the_paper_preset_sets_the_papers_sizes_and_options_given_win(command, sizes):
    """Section 6: classification on the full sets for 100 epochs; the MNIST-1K sparse autoencoder on
    1,000 random images for 100 epochs; the Fashion-MNIST-1K denoising for 50 epochs, K = 30 for its
    10K experiment. The library's preset keeps the small defaults; any option given wins."""
    args = _args([command, "--preset", "paper"])
    assert {k: getattr(args, k) for k in sizes} == sizes
    library = _args([command])
    assert (library.preset, library.epochs, library.subset, library.inner_iterations) == ("library", 5, "first", 10)
    given = _args([command, "--preset", "paper", "--epochs", "3", "--subset", "first", "--inner-iterations", "4"])
    assert (given.epochs, given.subset, given.inner_iterations) == (3, "first", 4)
    if command == "denoise":
        assert _args([command, "--preset", "paper", "--n-train", "10000"]).inner_iterations == 30


def _spy(monkeypatch, cls):
    seen = []
    real_fit = cls.fit

    def spy(self, *args, **kwargs):
        seen.append(self.get_params())
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", spy)
    return seen


def test_classify_with_the_paper_preset_trains_algorithm_1_as_published(tmp_path, monkeypatch):
    """LBN: the convexity steps 1/L for both blocks, stored start, no momentum, Glorot (the estimators'
    only initialisation), the library's tau (lost from the paper's text), named "(LBN, paper)" in the
    tables and JSON; SGD-BP keeps its step; the settings record the preset."""
    from bregman_solvers import cli

    seen = _spy(monkeypatch, cli.LiftedBregmanClassifier)
    assert main(["classify", "--preset", "paper", *SMALL, "--hidden", "16", "--out", str(tmp_path)]) == 0
    lbn = next(p for p in seen if p["solver"] == "isgd")
    assert (lbn["tau_theta"], lbn["tau_x"], lbn["tau"], lbn["momentum"], lbn["aux_start"], lbn["theta_metric"]) == \
        ("lipschitz", "lipschitz", "auto", 0.0, "stored", "euclidean")   # tau "auto": 10 in the Euclidean metric
    assert next(p for p in seen if p["solver"] == "sgd-bp")["learning_rate"] == 0.1
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["table1"]) == {"lifted Bregman network (LBN, paper)", "SGD-BP"}
    assert results["settings"]["preset"] == "paper" and results["settings"]["inner_iterations"] == 10
    assert "| lifted Bregman network (LBN, paper) |" in (tmp_path / "table1.md").read_text()
    seen.clear()
    assert main(["classify", *SMALL, "--hidden", "16", "--out", str(tmp_path / "library")]) == 0
    lbn = next(p for p in seen if p["solver"] == "isgd")
    assert (lbn["tau_theta"], lbn["tau_x"], lbn["momentum"], lbn["aux_start"]) == ("auto", "auto", 0.7, "forward")
    table = json.loads((tmp_path / "library" / "results.json").read_text())["table1"]
    assert "lifted Bregman network (LBN, library defaults)" in table


@pytest.mark.parametrize("command", ["autoencoder", "denoise"])
def test_the_autoencoders_with_the_paper_preset(tmp_path, monkeypatch, command):
    from bregman_solvers import cli

    cls = cli.DenoisingAutoencoder if command == "denoise" else cli.SparseAutoencoder
    seen = _spy(monkeypatch, cls)
    models = ["LBN-S", "SGD-BP"]
    assert main([command, "--preset", "paper", *SMALL, "--models", *models, "--out", str(tmp_path)]) == 0
    lifted = next(p for p in seen if p["solver"] == "isgd")
    assert (lifted["tau_theta"], lifted["tau_x"], lifted["momentum"], lifted["aux_start"]) == \
        ("lipschitz", "lipschitz", 0.0, "stored")
    assert next(p for p in seen if p["solver"] == "sgd-bp")["learning_rate"] == 0.05
    assert (tmp_path / "table.md").read_text().startswith("lifted models: the paper's Algorithm 1 (--preset paper")
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert (settings["preset"], settings["subset"]) == ("paper", "random")


def test_the_paper_sizes_on_the_embedded_subset_say_why_in_one_line(tmp_path, capsys):
    assert main(["classify", "--preset", "paper", "--quiet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n-train 60000 is more than the 5000 images" in err
    assert "--preset paper asks for the paper's sizes" in err
    with pytest.raises(SystemExit):
        main(["classify", "--preset", "exact"])
    assert "invalid choice: 'exact'" in capsys.readouterr().err
