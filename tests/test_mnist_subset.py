"""The acceptance code paths of issue 4 on a small MNIST subset (skipped when the data are absent).

The full runs (60,000 images, widths 784 throughout) live in ``examples/``.
"""
import os

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.datasets import load_mnist, one_hot, preprocess
from bregman_solvers.regularisers import CodeL1

# the full MNIST files: BREGMAN_SOLVERS_DATA where it holds them, else ../shared/data/mnist beside the checkout
BESIDE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
DATA = os.environ.get("BREGMAN_SOLVERS_DATA") or BESIDE
pytestmark = pytest.mark.skipif(not os.path.isdir(DATA), reason="the full MNIST files were not found: set "
                                "BREGMAN_SOLVERS_DATA or put them in ../shared/data/mnist")


@pytest.fixture(scope="module")
def mnist():
    Xtr, ytr = load_mnist(DATA, "train")
    Xte, yte = load_mnist(DATA, "test")
    Xtr, Xte, _ = preprocess(Xtr[:2000], Xte[:1000], dtype=np.float32)
    return Xtr, one_hot(ytr[:2000], 10, np.float32), Xte, one_hot(yte[:1000], 10, np.float32)


def test_classification_subset(mnist):
    Xtr, Ytr, Xte, Yte = mnist
    widths = [784, 128, 128, 10]
    acts = ["relu", "relu", "identity"]
    lbn = bs.LiftedNetwork(widths, acts, dtype="float32", random_state=0)
    r = bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=3, random_state=0,
                       validation_data=(Xte, Yte)).fit(lbn, Xtr, Ytr)
    assert r.history["val_accuracy"][-1] >= 0.65   # chance is 0.1; 2,000 images, 3 epochs
    bp = bs.LiftedNetwork(widths, acts, dtype="float32", random_state=0)
    r = bs.SGDBP(batch_size=100, epochs=3, random_state=0, validation_data=(Xte, Yte)).fit(bp, Xtr, Ytr)
    assert r.history["val_accuracy"][-1] >= 0.65   # chance is 0.1; 2,000 images, 3 epochs


def test_sparse_autoencoder_subset(mnist):
    Xtr, _, Xte, _ = mnist
    acts = ["relu", bs.get_activation("soft_threshold", alpha=0.1), "relu", "identity"]
    ae = bs.LiftedNetwork([784, 128, 128, 128, 784], acts, dtype="float32", random_state=0)
    r = bs.ImplicitSGD(batch_size=100, inner_iterations=10, epochs=3, random_state=0, track_energy=False,
                       tau_theta=0.1, tau_x=0.1, tau=1.0,
                       code_regulariser=CodeL1(2, 0.2), validation_data=(Xte, Xte)).fit(ae, Xtr[:500], Xtr[:500])
    h = r.history
    assert h["lifted_code_sparsity"][-1] > 0.7
    assert h["val_code_sparsity"][-1] > max(0.45, h["val_code_sparsity"][0])
    assert h["val_mse"][-1] < h["val_mse"][0]
