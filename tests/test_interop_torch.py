"""PyTorch export and warm starts (bregman_solvers.interop.to_torch / from_torch, issue 31).

PyTorch is never a dependency: every test that needs it skips without it, except the one that
checks the error a user without it gets."""
import sys

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.activations import get_activation
from bregman_solvers.estimators import LiftedBregmanClassifier
from bregman_solvers.interop import from_torch, to_torch

ACTIVATIONS = [("identity", {}), ("relu", {}), ("leaky_relu", {"a": 0.2}), ("soft_threshold", {"alpha": 0.3}),
               ("nonneg_soft_threshold", {"alpha": 0.2}), ("hard_tanh", {}), ("tanh", {}), ("sigmoid", {}),
               ("elu", {"alpha": 0.7})]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _torch():
    return pytest.importorskip("torch")


def _call(module, X):
    torch = _torch()
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(X))).numpy()


def _same_parameters(a, b):
    for p, q in zip(a.parameter_vector, b.parameter_vector):
        assert p == q
    assert [act.name for act in a.activations] == [act.name for act in b.activations]
    assert [act.params for act in a.activations] == [act.params for act in b.activations]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, params", ACTIVATIONS)
def test_every_activation_goes_to_torch_and_back(dtype, name, params):
    """Hidden layers of the activation, an output layer of it and a softmax head: PyTorch's forward
    pass is the library's to 1e-5 (float32) / 1e-12 (float64) on both sides of every kink (1 and 7
    samples), and from_torch gives back the same network, parameter for parameter."""
    torch = _torch()
    act = get_activation(name, **params)
    for outputs in (act, "softmax"):
        net = bs.LiftedNetwork([5, 6, 4, 3], [act, act, outputs], dtype=dtype, random_state=3)
        module = to_torch(net)
        assert isinstance(module, torch.nn.Sequential) and len(module) == 6
        assert all(p.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype]
                   for p in module.parameters())
        for n in (1, 7):
            X = (2 * np.random.default_rng(n).standard_normal((n, 5))).astype(dtype)
            out = _call(module, X)
            assert out.dtype == dtype and out.shape == (n, 3)
            np.testing.assert_allclose(out, net.forward(X), rtol=TOL[dtype], atol=TOL[dtype])
        back = from_torch(module)
        assert back.dtype == dtype and back.widths == net.widths
        _same_parameters(net, back)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("arch, shape", [("lenet5", (28, 28, 1)), ("lenet5", (12, 16, 3)), ("resnet", (28, 28, 1))])
def test_convolutional_and_residual_networks_round_trip(dtype, arch, shape):
    """LeNet-5 (convolutions, pooling folded into the next layer) is a Sequential; the residual network
    (a block reading two layers back, with a projection) a LiftedModule; both compute the library's
    forward pass on its flat NHWC rows, and from_torch gives the network back exactly."""
    torch = _torch()
    net = bs.LiftedNetwork.from_architecture(arch, shape, 10, dtype=dtype, random_state=0)
    module = to_torch(net)
    assert isinstance(module, torch.nn.Sequential) == (arch == "lenet5")
    X = np.random.default_rng(0).random((3, int(np.prod(shape)))).astype(dtype)
    np.testing.assert_allclose(_call(module, X), net.forward(X), rtol=10 * TOL[dtype], atol=10 * TOL[dtype])
    back = from_torch(module)
    assert [op.get_config() for op in back.layers] == [op.get_config() for op in net.layers]
    _same_parameters(net, back)


def test_a_pytorch_cnn_in_nchw_reads_in_with_its_columns_in_nhwc_order():
    """A CNN as a PyTorch user writes it (NCHW images, Flatten, then Linear): with input_shape the
    converted network gives the same outputs on the images flattened in NHWC order; the pooling is
    folded into the operator that reads it (AvgPooled around a Conv2d and around a Dense)."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                        nn.Sequential(nn.Conv2d(4, 5, (3, 2), stride=2), nn.Tanh()), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(20, 7), nn.LeakyReLU(0.1), nn.Linear(7, 3, bias=False)).double()
    images = np.random.default_rng(1).standard_normal((4, 3, 20, 16))
    net = from_torch(cnn, input_shape=(3, 20, 16))
    assert [type(op).__name__ for op in net.layers] == ["Conv2d", "AvgPooled", "AvgPooled", "Dense"]
    assert [type(op.operator).__name__ for op in net.layers[1:3]] == ["Conv2d", "Dense"]
    assert [a.name for a in net.activations] == ["relu", "tanh", "leaky_relu", "identity"]
    rows = images.transpose(0, 2, 3, 1).reshape(4, -1)
    with torch.no_grad():
        expected = cnn(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(net.forward(rows), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(net.biases[3], 0)             # a Linear without bias: a zero bias


def test_a_warm_start_from_torch_trains_with_the_estimator():
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = np.argmax(X[:, :3], axis=1)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    optimiser = torch.optim.SGD(mlp.parameters(), lr=0.1)
    for _ in range(200):
        optimiser.zero_grad()
        nn.functional.cross_entropy(mlp(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        optimiser.step()
    start = from_torch(nn.Sequential(*mlp, nn.Softmax(dim=1)))     # the classifier's softmax output
    bp_accuracy = float(np.mean(np.argmax(start.forward(X), axis=1) == y))
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(X, y, init=start)
    assert clf.network_ is not start and clf.score(X, y) >= bp_accuracy - 0.05
    np.testing.assert_allclose(_call(to_torch(clf), X), clf.network_.forward(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build, match", [
    (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), r"module 1 \(BatchNorm1d\) has no counterpart"),
    (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(4, 3)), "an activation must follow a Linear or Conv2d"),
    (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Tanh()), "an activation must follow"),
    (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)), r"Softmax\(dim=0\) has no counterpart"),
    (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Hardtanh(0, 2)), r"Hardtanh\(0, 2\) has no counterpart"),
    (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2)), "Linear expects 5 features, the layer before"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3)), r"Conv2d reads images: pass input_shape"),
    (lambda nn: nn.Sequential(), "has no Linear or Conv2d layer"),
])
def test_what_has_no_counterpart_is_refused_by_name(build, match):
    torch = _torch()
    with pytest.raises(ValueError, match=match):
        from_torch(build(torch.nn))


@pytest.mark.parametrize("build, match", [
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), "no groups or dilation"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3, padding="same")), "one zero padding"),
    (lambda nn: nn.Sequential(nn.Conv2d(2, 2, 3)), "1 input channels"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2, stride=1)), "window equal to its"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2)), "before its activation"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2)), "ends with a pooling"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), "ends with an image"),
    (lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(4, 2)), "put an nn.Flatten before it"),
])
def test_convolutions_without_a_counterpart_are_refused_by_name(build, match):
    torch = _torch()
    with pytest.raises(ValueError, match=match):
        from_torch(build(torch.nn), input_shape=(1, 8, 8))


def test_bad_arguments_are_refused_by_name():
    torch = _torch()
    with pytest.raises(TypeError, match="module must be a torch.nn.Sequential"):
        from_torch(torch.nn.Linear(3, 2))
    with pytest.raises(TypeError, match="module must be a torch.nn.Sequential"):
        from_torch("model")
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 2)), input_shape=(8, 8))
    with pytest.raises(TypeError, match="model must be a LiftedNetwork or a fitted estimator"):
        to_torch("network")
    with pytest.raises(TypeError, match=r"\(not fitted\)"):
        to_torch(LiftedBregmanClassifier())


def test_without_pytorch_the_error_names_the_extra(monkeypatch):
    """Runs everywhere (CI has no PyTorch): the ImportError says what to install."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "bregman_solvers._torch", raising=False)
    net = bs.LiftedNetwork([3, 2], ["identity"], random_state=0)
    for call in (lambda: to_torch(net), lambda: from_torch(object())):
        with pytest.raises(ImportError, match=r"pip install 'bregman_solvers\[torch\]'"):
            call()
