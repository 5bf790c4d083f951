"""scikit-learn estimators: the estimator checks, pipelines and grid search.

All of scikit-learn's estimator checks run and pass. Two are skipped by scikit-learn
itself when optional packages are absent: the pandas-input check (pandas is not a
dependency of this project) and the array-API check (needs SCIPY_ARRAY_API=1 and an
array library; the kernels are NumPy/Cython only).
"""
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from bregman_solvers.estimators import DenoisingAutoencoder, LiftedBregmanClassifier, SparseAutoencoder

SMALL = dict(epochs=3, batch_size=20, random_state=0)


@parametrize_with_checks([
    LiftedBregmanClassifier(hidden_layer_sizes=(8,), **SMALL),
    LiftedBregmanClassifier(hidden_layer_sizes=(8,), solver="sgd-bp", output="softmax", **SMALL),
    SparseAutoencoder(hidden_layer_sizes=(6, 4, 6), inner_iterations=3, **SMALL),
    DenoisingAutoencoder(hidden_layer_sizes=(6, 4, 6), inner_iterations=3, **SMALL),
])
def test_sklearn_estimator_checks(estimator, check):
    # every check passes; none is skipped or expected to fail
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 5)) * 4
    y = rng.integers(0, 3, 300)
    X = centres[y] + rng.standard_normal((300, 5))
    X = (X - X.mean(axis=0)) / X.std(axis=0)     # standardised, as users are advised to
    labels = np.array(["a", "b", "c"])[y]
    return X, labels


@pytest.mark.parametrize("solver", ["isgd", "spg", "averaging", "pg", "fista", "bcd", "admm", "sgd-bp", "isgd-bp",
                                    "gd-bp"])
def test_classifier_learns_with_every_solver(blobs, solver):
    X, y = blobs
    epochs = 300 if solver in ("pg", "fista", "bcd", "admm", "gd-bp") else 10
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), solver=solver, epochs=epochs, batch_size=50,
                                  random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"a", "b", "c"}
    assert clf.decision_function(X).shape == (300, 3)


def test_pipeline_and_grid_search(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0))
    grid = GridSearchCV(pipe, {"liftedbregmanclassifier__tau_x": [0.05, 0.1]}, cv=2).fit(X, y)
    assert grid.best_score_ > 0.8
    assert grid.score(X, y) > 0.8


def test_partial_fit_and_warm_start(blobs):
    X, y = blobs
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), batch_size=50, random_state=0)
    for _ in range(5):
        clf.partial_fit(X, y, classes=["a", "b", "c"])
    assert len(clf.history_["epoch"]) == 5 and clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match="classes must be given"):
        LiftedBregmanClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit needs a stochastic solver"):
        LiftedBregmanClassifier(solver="bcd").partial_fit(X, y, classes=["a", "b", "c"])
    warm = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=2, warm_start=True, random_state=0).fit(X, y)
    first = warm.network_.weights[0].copy()
    warm.fit(X, y)
    assert len(warm.history_["epoch"]) == 4 and not np.array_equal(first, warm.network_.weights[0])


def test_autoencoders_transform_and_reconstruct():
    rng = np.random.default_rng(0)
    X = rng.random((200, 12))
    ae = SparseAutoencoder(hidden_layer_sizes=(16, 8, 16), epochs=5, batch_size=50, random_state=0).fit(X)
    code = ae.transform(X)
    assert code.shape == (200, 8)
    assert ae.inverse_transform(code).shape == (200, 12)
    np.testing.assert_allclose(ae.inverse_transform(code), ae.predict(X), rtol=1e-10, atol=1e-12)
    assert ae.score(X) < 0
    dae = DenoisingAutoencoder(hidden_layer_sizes=(16, 8, 16), noise_std=0.2, epochs=5, batch_size=50,
                               random_state=0).fit(X)
    assert dae.predict(X).shape == X.shape
    with pytest.raises(ValueError, match="codes must have shape"):
        ae.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize("params,match", [
    ({"solver": "newton"}, "solver must be .isgd., .spg.,.* or .gd-bp., got .newton."),
    ({"epochs": 0}, r"epochs must be an int in \[1, inf\) or .auto., got 0"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"output": "tanh"}, "output must be 'identity' or 'softmax'"),
    ({"activation": "softmax"}, "cannot be softmax"),
    ({"aux_start": "fresh"}, "aux_start must be 'stored' or 'forward'"),
    ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\)"),
    ({"alpha": -0.1}, r"alpha must be a number in \[0, inf\), got -0.1"),
    ({"alpha": float("nan")}, r"alpha must be a number in \[0, inf\)"),
    ({"alpha": float("inf")}, "alpha must be finite"),
])
def test_invalid_hyper_parameters(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        LiftedBregmanClassifier(**params).fit(X, y)


def test_validation_data_penalty_and_tracked_metrics(blobs):
    X, y = blobs
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=2, batch_size=50, random_state=0,
                                  penalty="classical", tau_theta=0.1, tau_x=0.1, tau=1.0, track_metrics=True)
    clf.fit(X[:150], y[:150], validation_data=(X[150:], y[150:]))
    assert clf.network_.penalty == "classical"
    h = clf.history_
    assert len(h["val_accuracy"]) == 2 and len(h["train_accuracy"]) == 2 and len(h["energy"]) == 2
    assert h["val_accuracy"][-1] == pytest.approx(clf.score(X[150:], y[150:]))
    quiet = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=1, random_state=0).fit(X, y)
    assert "train_accuracy" not in quiet.history_ and "val_accuracy" not in quiet.history_
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        clf.fit(X, y, validation_data=X)
    with pytest.raises(ValueError, match="labels not seen before"):
        clf.fit(X, y, validation_data=(X[:5], np.full(5, 99)))


def test_undercomplete_autoencoder_and_validation_noise():
    rng = np.random.default_rng(0)
    X = rng.random((80, 12))
    ae = SparseAutoencoder(hidden_layer_sizes=(12, 3, 12), code_threshold=None, code_alpha=0.0, epochs=1,
                           batch_size=40, inner_iterations=2, random_state=0, track_metrics=True)
    ae.fit(X[:60], validation_data=X[60:])
    assert [a.name for a in ae.network_.activations] == ["relu", "relu", "relu", "identity"]
    assert ae.transform(X).shape == (80, 3) and len(ae.history_["val_mse"]) == 1
    dae = DenoisingAutoencoder(hidden_layer_sizes=(12, 12, 12), noise_std=0.3, epochs=1, batch_size=40,
                               inner_iterations=2, random_state=0)
    dae.fit(X[:60], validation_data=X[60:])
    from bregman_solvers.datasets import add_gaussian_noise

    noisy = add_gaussian_noise(X[60:], 0.3, random_state=1)           # the validation stream: seed + 1
    assert dae.history_["val_mse"][-1] == pytest.approx(float(np.mean((dae.predict(noisy) - X[60:]) ** 2)))


def test_stochastic_solvers_have_no_iteration_limit_attributes():
    import bregman_solvers as bs

    for solver in (bs.ImplicitSGD(), bs.StochasticProximalGradient(), bs.ModelAveraging()):
        assert not hasattr(solver, "max_iter") and not hasattr(solver, "tol")
    assert bs.ProximalGradient(max_iter=7).max_iter == 7


def test_forward_start_reaches_the_solver(blobs, monkeypatch):
    """aux_start goes to implicit SGD: a forward-start fit differs from a stored-start one."""
    X, y = blobs
    fits = {start: LiftedBregmanClassifier(hidden_layer_sizes=(8,), epochs=2, inner_iterations=2, random_state=0,
                                           aux_start=start).fit(X, y) for start in ("stored", "forward")}
    assert not np.array_equal(fits["stored"].network_.weights[0], fits["forward"].network_.weights[0])
    assert fits["forward"].score(X, y) > 0.5


@pytest.mark.parametrize("n, solver, batch_size, epochs", [
    (1347, "isgd", 100, 43), (426, "isgd", 100, 120), (133, "isgd", 100, 300), (5000, "isgd", 100, 12),
    (6000, "isgd", 100, 10), (60, "isgd", 100, 600), (426, "sgd-bp", 50, 67), (426, "pg", 100, 10)])
def test_auto_epochs_give_small_data_600_batch_steps(n, solver, batch_size, epochs):
    """epochs="auto" (the classifier's default): at least 600 batch steps and 10 epochs for a stochastic
    solver, 10 iterations for a deterministic one; what the solver receives."""
    from bregman_solvers._estimator_solvers import _resolved_epochs

    est = LiftedBregmanClassifier(solver=solver, batch_size=batch_size)
    assert est.epochs == "auto" and _resolved_epochs(est, n) == epochs
    assert _resolved_epochs(LiftedBregmanClassifier(epochs=3), n) == 3


def test_auto_epochs_reach_the_fit(blobs):
    X, y = blobs
    est = LiftedBregmanClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X[:150], y[:150])
    assert len(est.history_["epoch"]) == 300                 # 150 samples: 2 batches an epoch
    with pytest.raises(ValueError, match=r"epochs must be an int in \[1, inf\) or 'auto', got 'many'"):
        LiftedBregmanClassifier(epochs="many").fit(X, y)


def test_the_weight_decay_alpha_is_squared_l2_over_the_samples(blobs):
    """``alpha`` fits as ``regulariser=SquaredL2(alpha / n_samples)`` (to the bit: the same solver),
    shrinks the weights against ``alpha=0``, and gives way to an explicit regulariser."""
    from bregman_solvers.regularisers import L1, SquaredL2

    X, y = blobs
    X, y = X[:120], y[:120]
    common = dict(hidden_layer_sizes=(8,), epochs=5, random_state=0)
    decayed = LiftedBregmanClassifier(alpha=3.0, **common).fit(X, y)
    explicit = LiftedBregmanClassifier(alpha=0.0, regulariser=SquaredL2(3.0 / 120), **common).fit(X, y)
    plain = LiftedBregmanClassifier(alpha=0.0, **common).fit(X, y)
    np.testing.assert_array_equal(decayed.network_.parameter_vector, explicit.network_.parameter_vector)
    assert sum(np.linalg.norm(w) for w in decayed.network_.weights) < \
        sum(np.linalg.norm(w) for w in plain.network_.weights)
    l1 = LiftedBregmanClassifier(alpha=3.0, regulariser=L1(1e-3), **common).fit(X, y)
    l1_only = LiftedBregmanClassifier(alpha=0.0, regulariser=L1(1e-3), **common).fit(X, y)
    np.testing.assert_array_equal(l1.network_.parameter_vector, l1_only.network_.parameter_vector)
