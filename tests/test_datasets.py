"""MNIST-format loading: embedded default, directories, environment variable, every error case."""
import gzip
import os
import struct

import numpy as np
import pytest

from bregman_solvers.datasets import (EMBEDDED_DIR, add_gaussian_noise, load_fashion_mnist, load_mnist, one_hot,
                                      preprocess, read_idx)


def write_idx(path, arr, gz=True):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + arr.tobytes())


def make_dir(tmp_path, n=12, gz=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", images, gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
    return images, labels


def test_embedded_default_is_a_documented_subset(monkeypatch):
    monkeypatch.delenv("BREGMAN_SOLVERS_DATA", raising=False)
    X, y = load_mnist()
    assert X.shape == (5000, 784) and y.shape == (5000,) and X.dtype == np.uint8
    Xt, yt = load_mnist(subset="test")
    assert Xt.shape == (1000, 784) and set(np.unique(yt)) == set(range(10))
    assert os.path.exists(os.path.join(EMBEDDED_DIR, "README.md"))


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_from_a_directory_and_the_environment(tmp_path, monkeypatch, gz):
    images, labels = make_dir(tmp_path, gz=gz)
    X, y = load_mnist(tmp_path, "train")
    np.testing.assert_array_equal(X, images.reshape(12, -1))
    np.testing.assert_array_equal(y, labels)
    monkeypatch.setenv("BREGMAN_SOLVERS_DATA", str(tmp_path))
    X2, _ = load_mnist(subset="test")
    np.testing.assert_array_equal(X2, X)
    X3, y3 = load_fashion_mnist(subset="train")
    np.testing.assert_array_equal(y3, labels)


def test_subset_selection(tmp_path):
    make_dir(tmp_path)
    X, y = load_mnist(tmp_path, n_samples=5)
    assert X.shape == (5, 784)
    Xa, _ = load_mnist(tmp_path, n_samples=5, random_state=1)
    Xb, _ = load_mnist(tmp_path, n_samples=5, random_state=1)
    np.testing.assert_array_equal(Xa, Xb)
    with pytest.raises(ValueError, match="exceeds the 12 images"):
        load_mnist(tmp_path, n_samples=13)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        load_mnist(tmp_path, n_samples=0)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="subset must be 'train' or 'test'"):
        load_mnist(tmp_path, subset="valid")
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x12\x34\x08\x01" + b"\x00" * 10)
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 100) + b"\x00" * 10)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(short)
    notgz = tmp_path / "plain.gz"
    notgz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        read_idx(notgz)
    d = tmp_path / "mismatch"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(4))
    with pytest.raises(ValueError, match="do not match"):
        load_mnist(d)


def test_fashion_mnist_not_found_message(monkeypatch, tmp_path):
    monkeypatch.delenv("BREGMAN_SOLVERS_DATA", raising=False)
    import bregman_solvers.datasets as ds

    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        ds.load_fashion_mnist()


def test_preprocessing_helpers():
    X = np.array([[0, 255], [255, 255]], dtype=np.uint8)
    Xtr, Xte, mean = preprocess(X, X)
    np.testing.assert_allclose(mean, [0.5, 1.0])
    np.testing.assert_allclose(Xtr.mean(axis=0), 0)
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="labels must be a 1-D array"):
        one_hot(np.array([-1]))
    noisy = add_gaussian_noise(Xtr, 0.1, random_state=0)
    np.testing.assert_array_equal(noisy, add_gaussian_noise(Xtr, 0.1, random_state=0))
    assert noisy.dtype == Xtr.dtype and not np.array_equal(noisy, Xtr)
    with pytest.raises(ValueError, match="std must be >= 0"):
        add_gaussian_noise(Xtr, -1)
