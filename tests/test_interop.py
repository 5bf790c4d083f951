"""ONNX export and scikit-learn warm starts (bregman_solvers.interop, issue 31)."""
import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.activations import get_activation
from bregman_solvers.estimators import LiftedBregmanClassifier, LiftedEnergyOutlierDetector, SparseAutoencoder
from bregman_solvers.interop import from_sklearn, to_onnx

ACTIVATIONS = [("identity", {}), ("relu", {}), ("leaky_relu", {"a": 0.2}), ("soft_threshold", {"alpha": 0.3}),
               ("nonneg_soft_threshold", {"alpha": 0.2}), ("hard_tanh", {}), ("tanh", {}), ("sigmoid", {}),
               ("elu", {"alpha": 0.7})]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _run(model, X):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, {"input": X})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, params", ACTIVATIONS)
def test_every_activation_exports_to_the_same_forward_pass(dtype, name, params):
    """Hidden layers of the activation, an output layer of it and one softmax head: the ONNX reference
    evaluator gives the library's forward pass to 1e-5 (float32) / 1e-12 (float64), on values on
    both sides of every kink (1 sample, 7 samples)."""
    act = get_activation(name, **params)
    for outputs in (act, "softmax"):
        net = bs.LiftedNetwork([5, 6, 4, 3], [act, act, outputs], dtype=dtype, random_state=3)
        model = to_onnx(net)
        for n in (1, 7):
            X = (2 * np.random.default_rng(n).standard_normal((n, 5))).astype(dtype)
            (out,) = _run(model, X)
            assert out.dtype == dtype and out.shape == (n, 3)
            np.testing.assert_allclose(out, net.forward(X), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("classes", [np.array([3, 5, 9]), np.array(["cat", "dog", "eel"]), np.array([0, 1])])
def test_a_fitted_classifier_exports_its_scores_and_labels(classes, tmp_path):
    onnx = pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4)).astype(np.float32)
    y = classes[np.argmax(X[:, :len(classes)], axis=1)]
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(X, y)
    model = to_onnx(clf, tmp_path / "clf.onnx")
    assert onnx.load(tmp_path / "clf.onnx") == model
    scores, labels = _run(model, X)
    np.testing.assert_allclose(scores, clf.network_.predict(X), rtol=1e-5, atol=1e-5)
    assert np.array_equal(labels.astype(classes.dtype), clf.predict(X))


def test_autoencoders_and_the_detector_export_their_reconstruction():
    pytest.importorskip("onnx")
    X = np.random.default_rng(1).random((40, 6))
    for est in (SparseAutoencoder(hidden_layer_sizes=(5, 3, 5), epochs=1, random_state=0),
                LiftedEnergyOutlierDetector(hidden_layer_sizes=(5, 3, 5), epochs=1, random_state=0)):
        est.fit(X)
        (out,) = _run(to_onnx(est), X)
        np.testing.assert_allclose(out, est.network_.forward(X), rtol=1e-12, atol=1e-12)


def test_the_input_mean_is_subtracted_in_the_graph():
    net = bs.LiftedNetwork([4, 3, 2], ["relu", "identity"], dtype=np.float32, random_state=0)
    X = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    mean = X.mean(axis=0)
    (out,) = _run(to_onnx(net, input_mean=mean), X)
    np.testing.assert_allclose(out, net.forward(X - mean), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="input_mean must be 4 finite numbers"):
        to_onnx(net, input_mean=np.zeros(3))


def test_export_refuses_what_it_cannot_write():
    pytest.importorskip("onnx")
    with pytest.raises(TypeError, match="model must be a LiftedNetwork or a fitted estimator"):
        to_onnx("network")
    with pytest.raises(TypeError, match=r"\(not fitted\)"):
        to_onnx(LiftedBregmanClassifier())
    with pytest.raises(ValueError, match="opset must be an integer >= 13"):
        to_onnx(bs.LiftedNetwork([3, 2], ["identity"]), opset=11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("arch, shape", [("lenet5", (28, 28, 1)), ("resnet", (28, 28, 1)), ("lenet5", (12, 16, 3))])
def test_convolutions_pooling_and_residual_blocks_export_to_the_same_forward_pass(dtype, arch, shape):
    """The named architectures (Conv2d with padding and strides, AvgPooled, Residual with identity and
    projection skips, dense heads) through ONNX's Conv / AveragePool / Add on NCHW and back to the
    library's NHWC rows: the library's forward pass to 1e-5 / 1e-12."""
    net = bs.LiftedNetwork.from_architecture(arch, shape, 10, dtype=dtype, random_state=1)
    X = np.random.default_rng(2).random((3, int(np.prod(shape)))).astype(dtype)
    (out,) = _run(to_onnx(net), X)
    scale = float(np.abs(net.forward(X)).max())
    np.testing.assert_allclose(out, net.forward(X), rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10 * max(1.0, scale))


def test_an_operator_without_an_onnx_form_is_refused_by_layer():
    pytest.importorskip("onnx")

    class Doubling(bs.operators.Dense):
        pass

    net = bs.LiftedNetwork([bs.operators.Dense(4, 3), Doubling(3, 2)], ["relu", "identity"])
    with pytest.raises(ValueError, match="layer 2 .*: to_onnx writes Dense, Conv2d, AvgPooled and Residual layers"):
        to_onnx(net)


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("no onnx")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match=r"pip install 'bregman_solvers\[onnx\]'"):
        to_onnx(bs.LiftedNetwork([3, 2], ["identity"]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")       # 30 iterations suffice here
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "regressor"])
def test_from_sklearn_keeps_the_mlps_predictions(activation, kind):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(2)
    X = rng.standard_normal((60, 5))
    if kind == "regressor":
        mlp = MLPRegressor(hidden_layer_sizes=(7, 4), activation=activation, max_iter=30, random_state=0)
        mlp.fit(X, X[:, :2])
        expected = mlp.predict(X)
    else:
        y = np.argmax(X[:, :3 if kind == "multiclass" else 2], axis=1)
        mlp = MLPClassifier(hidden_layer_sizes=(7, 4), activation=activation, max_iter=30, random_state=0).fit(X, y)
        expected = mlp.predict_proba(X)[:, -1:] if kind == "binary" else mlp.predict_proba(X)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = from_sklearn(mlp)
    assert network.widths == [5, 7, 4, expected.shape[1]]
    np.testing.assert_allclose(network.forward(X), expected, rtol=1e-10, atol=1e-12)


def test_from_sklearn_refuses_what_is_not_a_fitted_mlp():
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(TypeError, match="mlp must be a fitted MLPClassifier or MLPRegressor"):
        from_sklearn(MLPClassifier())


def test_a_classifier_warm_starts_from_an_imported_mlp():
    """fit(init=from_sklearn(mlp)): the classifier starts from the MLP's weights (a copy); with
    steps too small to move them it predicts what the MLP predicts; mismatches are refused by name."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(4)
    X = rng.standard_normal((120, 6))
    y = np.argmax(X[:, :3], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(10,), max_iter=200, random_state=0).fit(X, y)
    network = from_sklearn(mlp)
    before = network.parameter_vector.copy()
    clf = LiftedBregmanClassifier(output="softmax", tau_theta=1e-12, tau_x=1e-12, momentum=0.0, epochs=1,
                                  random_state=0).fit(X, y, init=network)
    np.testing.assert_array_equal(network.parameter_vector, before)            # init itself is not trained
    assert clf.network_ is not network and clf.network_.widths == [6, 10, 3]
    assert np.array_equal(clf.predict(X), mlp.predict(X))
    with pytest.raises(ValueError, match="the classifier's output is 'identity' \\(set output='softmax'\\)"):
        LiftedBregmanClassifier(output="identity", epochs=1).fit(X, y, init=network)
    with pytest.raises(ValueError, match="the data need 6 to 2"):
        LiftedBregmanClassifier(output="softmax", epochs=1).fit(X, y % 2, init=network)
    with pytest.raises(TypeError, match="init must be a LiftedNetwork"):
        LiftedBregmanClassifier(epochs=1).fit(X, y, init=mlp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onnxruntime_runs_the_exported_models_when_installed(dtype):
    """Where onnxruntime is installed, it gives the library's forward pass too (a dense network of
    every activation, and the LeNet-5-like CNN in float32: onnxruntime's CPU provider has no float64
    Conv)."""
    ort = pytest.importorskip("onnxruntime")
    acts = [get_activation(name, **params) for name, params in ACTIVATIONS]
    dense = bs.LiftedNetwork([5] + [6] * len(acts) + [3], acts + ["softmax"], dtype=dtype, random_state=0)
    lenet = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, dtype=dtype, random_state=0)
    for net in (dense, lenet) if dtype == np.float32 else (dense,):
        X = np.random.default_rng(0).random((4, net.widths[0])).astype(dtype)
        session = ort.InferenceSession(to_onnx(net).SerializeToString(), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"input": X})
        np.testing.assert_allclose(out, net.forward(X), rtol=1e-4 if dtype == np.float32 else 1e-10,
                                   atol=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_round_trip_from_scikit_learn_through_the_library_to_onnx():
    """MLPClassifier -> LiftedNetwork -> ONNX: the ONNX model's output is the MLP's predict_proba."""
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 6)).astype(np.float32)
    y = np.argmax(X[:, :4], axis=1)
    mlp = MLPClassifier(hidden_layer_sizes=(9, 5), activation="tanh", max_iter=50, random_state=0).fit(X, y)
    (out,) = _run(to_onnx(from_sklearn(mlp, dtype=np.float32)), X)
    np.testing.assert_allclose(out, mlp.predict_proba(X), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_autoencoder_warm_starts_from_an_imported_mlp_regressor():
    """An MLPRegressor trained to reproduce its input is an autoencoder: SparseAutoencoder.fit(init=)
    starts from it (a copy); with steps too small to move it, it reconstructs as the MLP predicts."""
    from sklearn.neural_network import MLPRegressor

    X = np.random.default_rng(6).random((100, 8))
    mlp = MLPRegressor(hidden_layer_sizes=(6, 3, 6), max_iter=100, random_state=0).fit(X, X)
    network = from_sklearn(mlp)
    ae = SparseAutoencoder(code_threshold=None, code_alpha=0.0, tau_theta=1e-12, tau_x=1e-12, epochs=1,
                           random_state=0).fit(X, init=network)
    assert ae.network_ is not network and ae.network_.widths == [8, 6, 3, 6, 8]
    np.testing.assert_allclose(ae.predict(X), mlp.predict(X), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="the data need 5 to 5 \\(an autoencoder's\\)"):
        SparseAutoencoder(epochs=1).fit(X[:, :5], init=network)
    soft = bs.LiftedNetwork([8, 4, 8], ["relu", "softmax"])
    with pytest.raises(ValueError, match="output activation is 'softmax', an autoencoder's is 'identity'"):
        SparseAutoencoder(epochs=1).fit(X, init=soft)
