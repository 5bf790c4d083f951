"""The lifted-energy outlier detector and the relaxation under it (issue 30)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import bregman_solvers as bs
from bregman_solvers.estimators import LiftedEnergyOutlierDetector
from bregman_solvers.solvers import relaxed_energy

SMALL = dict(hidden_layer_sizes=(6, 3, 6), epochs=3, batch_size=20, inner_iterations=3, x_steps=3, random_state=0)


@parametrize_with_checks([LiftedEnergyOutlierDetector(**SMALL),
                          LiftedEnergyOutlierDetector(scoring="reconstruction", solver="sgd-bp", **SMALL)])
def test_sklearn_outlier_detector_checks(estimator, check):
    check(estimator)


def subspace_data(seed=0, n_normal=600, n_anomalies=60, dim=20, rank=3):
    """Normal points on a random 3-dimensional subspace of R^20 (plus a little noise), anomalies off it
    with the same norms: only the structure, not the scale, tells them apart."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0]
    normal = rng.standard_normal((n_normal + n_anomalies, rank)) @ basis.T
    normal += 0.05 * rng.standard_normal(normal.shape)
    anomalies = rng.standard_normal((n_anomalies, dim))
    anomalies *= (np.linalg.norm(normal[n_normal:], axis=1) / np.linalg.norm(anomalies, axis=1))[:, None]
    return normal[:n_normal], np.vstack([normal[n_normal:], anomalies]), np.r_[np.zeros(n_anomalies),
                                                                               np.ones(n_anomalies)]


@pytest.fixture(scope="module")
def subspace():
    train, test, is_anomaly = subspace_data()
    detector = LiftedEnergyOutlierDetector(hidden_layer_sizes=(32, 3, 32), random_state=0).fit(train)
    return detector, train, test, is_anomaly


@pytest.mark.parametrize("scoring", ["energy", "reconstruction"])
def test_points_off_the_normal_subspace_rank_first(subspace, scoring):
    detector, train, test, is_anomaly = subspace
    detector.set_params(scoring=scoring)
    try:
        auroc = roc_auc_score(is_anomaly, -detector.score_samples(test))
    finally:
        detector.set_params(scoring="energy")
    assert auroc > 0.95, (scoring, auroc)


def test_scores_offset_predict_and_layers_agree(subspace):
    detector, train, test, _ = subspace
    terms = detector.energy_terms(test)
    assert terms.shape == (len(test), 4) and np.all(terms >= 0)
    np.testing.assert_allclose(detector.score_samples(test), -terms.sum(axis=1))
    np.testing.assert_allclose(detector.decision_function(test), detector.score_samples(test) - detector.offset_)
    assert np.array_equal(detector.predict(test), np.where(detector.decision_function(test) < 0, -1, 1))
    # contamination: that fraction of the training samples scores below offset_
    assert np.mean(detector.score_samples(train) < detector.offset_) == pytest.approx(0.1, abs=0.01)
    # the relaxed energy never exceeds the forward pass's, which is the reconstruction loss alone
    detector.set_params(scoring="reconstruction")
    forward = detector.energy_terms(test)
    detector.set_params(scoring="energy")
    assert np.all(forward[:, :-1] == 0)
    assert np.all(terms.sum(axis=1).mean() <= forward.sum(axis=1).mean())
    reconstruction = detector.autoencoder_.predict(test)
    np.testing.assert_allclose(forward[:, -1], 0.5 * np.sum((reconstruction - test) ** 2, axis=1), rtol=1e-10)


def test_scoring_changes_nothing_and_is_chunked(subspace, monkeypatch):
    """Scoring leaves the parameters alone; rows scored in chunks give the rows scored at once."""
    from bregman_solvers import _outliers

    detector, _, test, _ = subspace
    before = detector.network_.parameter_vector.copy()
    whole = detector.score_samples(test)
    monkeypatch.setattr(_outliers, "SCORE_CHUNK", 7)
    np.testing.assert_array_equal(detector.network_.parameter_vector, before)
    chunked = detector.score_samples(test)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 2, 17]), steps=st.integers(0, 8))
def test_relaxation_decreases_the_energy_from_the_forward_pass(dtype, seed, n, steps):
    """relaxed_energy: 0 steps is the forward pass's energy (the output loss alone); every further
    step keeps the mean energy at most the previous one's; the network is not changed."""
    rng = np.random.default_rng(seed)
    net = bs.LiftedNetwork([5, 7, 2, 5], ["relu", "tanh", "identity"], dtype=dtype, random_state=seed)
    X = rng.standard_normal((n, 5)).astype(dtype)
    before = net.parameter_vector.copy()
    energies = [relaxed_energy(net, X, X, k)[0].sum(axis=1).mean() for k in range(steps + 1)]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert all(b <= a + tol * max(1.0, abs(a)) for a, b in zip(energies, energies[1:])), energies
    forward = relaxed_energy(net, X, X, 0)[0]
    np.testing.assert_allclose(forward[:, -1], 0.5 * np.sum((net.forward(X).astype(np.float64) - X) ** 2, axis=1),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_array_equal(net.parameter_vector, before)


def test_relaxation_of_non_contiguous_rows_equals_the_copy():
    net = bs.LiftedNetwork([6, 4, 6], ["relu", "identity"], random_state=1)
    X = np.random.default_rng(1).standard_normal((10, 12))[:, ::2]
    a, _ = relaxed_energy(net, X, X, 5)
    b, _ = relaxed_energy(net, np.ascontiguousarray(X), np.ascontiguousarray(X), 5)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params, match", [
    ({"scoring": "distance"}, "scoring must be .energy. or .reconstruction., got .distance."),
    ({"x_steps": -1}, r"x_steps must be an int in \[0, inf\), got -1"),
    ({"contamination": 0.0}, r"contamination must be a number in \(0, 0.5\]"),
    ({"contamination": 0.7}, r"contamination must be a number in \(0, 0.5\]"),
    ({"contamination": "auto"}, r"contamination must be a number in \(0, 0.5\]"),
    ({"epochs": "many"}, r"epochs must be an int in \[1, inf\) or 'auto', got 'many'"),
])
def test_bad_parameters_are_refused_by_name(params, match):
    X = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises((ValueError, TypeError), match=match):
        LiftedEnergyOutlierDetector(**{**SMALL, **params}).fit(X)


def test_bad_input_is_refused(subspace):
    detector, _, test, _ = subspace
    with pytest.raises(ValueError, match="features"):
        detector.score_samples(test[:, :5])
    bad = test.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detector.score_samples(bad)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0"):
        relaxed_energy(detector.network_, test, test, -2)


@pytest.mark.filterwarnings("ignore::bregman_solvers.exceptions.DivergenceWarning")     # 30 random rows, 1 epoch
def test_an_autoencoder_with_a_convolutional_decoder_layer_refuses_inverse_transform():
    from bregman_solvers.estimators import SparseAutoencoder

    X = np.random.default_rng(0).random((30, 16))
    layers = [bs.operators.Dense(16, 8), bs.operators.Dense(8, 16), bs.Conv2d((4, 4, 1), 1, 1)]
    ae = SparseAutoencoder(layers=layers, code_layer=1, epochs=1, random_state=0).fit(X)
    assert ae.transform(X).shape == (30, 8)
    with pytest.raises(ValueError, match="inverse_transform needs a decoder of dense layers"):
        ae.inverse_transform(ae.transform(X))


def test_a_convolutional_encoder_detects_anomalies_through_the_operators():
    """layers=: a Conv2d encoder (8x8 digits, 3x3 kernels), a dense code and decoder; trained on
    scikit-learn's zeros, the energy ranks the other digits first; the scoring runs through the
    operators and leaves the parameters alone; inverse_transform refuses a non-dense decoder."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    layers = [bs.Conv2d((8, 8, 1), 4, 3), bs.operators.Dense(144, 8), bs.operators.Dense(8, 64)]
    detector = LiftedEnergyOutlierDetector(layers=layers, code_layer=2, epochs=30, x_steps=5,
                                           random_state=0).fit(X[y == 0][:150])
    assert type(detector.network_.layers[0]).__name__ == "Conv2d" and detector.network_.layers[0] is not layers[0]
    before = detector.network_.parameter_vector.copy()
    test = np.r_[X[y == 0][150:], X[y != 0][:300]]
    auroc = roc_auc_score(np.r_[np.zeros((y == 0).sum() - 150), np.ones(300)], -detector.score_samples(test))
    assert auroc > 0.9, auroc
    np.testing.assert_array_equal(detector.network_.parameter_vector, before)
    with pytest.raises(ValueError, match="the last writes 8; an autoencoder of X's 64 features needs both 64"):
        LiftedEnergyOutlierDetector(layers=layers[:2], epochs=1).fit(X[:20])
