"""The command line end to end on tiny data, into a temporary directory."""
import json

import pytest

from bregman_solvers.cli import main

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
    assert set(table) == {"standard lifted network", "lifted Bregman network (LBN)", "SGD-BP"}
    for row in table.values():
        assert 0 <= row["test_accuracy"] <= 1 and len(row["linear_activation_rates"]) == 2
    assert results["settings"]["epochs"] == 2 and results["settings"]["command"] == "classify"
    assert "| model |" in (tmp_path / "table1.md").read_text()
    assert "layer 2" in (tmp_path / "table2.md").read_text()
    assert_png(tmp_path / "accuracy.png")
    assert_png(tmp_path / "energy.png")


@pytest.mark.parametrize("command", ["autoencoder", "denoise"])
def test_autoencoders(tmp_path, command):
    args = [command, *TINY, "--n-train", "100", "--epochs", "1", "--out", str(tmp_path), "--inner-iterations", "2"]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    expected = ({"LBN-S", "SGD-BP", "ISGD-BP", "undercomplete LBN"} if command == "denoise"
                else {"LBN-S", "LBN-D", "GD-BP", "SGD-BP"})
    assert set(results["results"]) == expected
    for row in results["results"].values():
        assert row["test_mse"] > 0 and 0 <= row["test_code_sparsity"] <= 1
    for name in ("objective.png", "sparsity.png", "reconstructions.png"):
        assert_png(tmp_path / name)


def test_demo_and_errors(tmp_path, capsys):
    assert main(["demo", "--n-samples", "50", "--n-features", "7"]) == 0
    assert "relu" in capsys.readouterr().out
    assert main(["classify", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "--epochs", "0"])
    with pytest.raises(SystemExit):
        main(["unknown"])


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
