"""The lifted network: construction, forward pass, energy and gradients against NumPy oracles."""
import numpy as np
import pytest
from scipy.special import logit

import oracles
from bregman_solvers import LiftedNetwork, LiftedState
from conftest import ALL_ACTIVATIONS, DTYPES


def numpy_forward(net, X):
    xs, zs = [np.asarray(X, np.float64)], []
    for W, b, act in zip(net.weights, net.biases, net.activations):
        z = xs[-1] @ W.astype(np.float64).T + b
        zs.append(z)
        xs.append(oracles.sigma(act.name, z, act.param))
    return zs, xs


def test_glorot_initialisation_and_seed(rng):
    net = LiftedNetwork([30, 20, 10], ["relu", "identity"], random_state=3)
    for W, (fan_in, fan_out) in zip(net.weights, [(30, 20), (20, 10)]):
        assert W.shape == (fan_out, fan_in)
        assert np.abs(W).max() <= np.sqrt(6 / (fan_in + fan_out))
    assert all((b == 0).all() for b in net.biases)
    again = LiftedNetwork([30, 20, 10], ["relu", "identity"], random_state=3)
    assert all((a == b).all() for a, b in zip(net.weights, again.weights))


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_matches_numpy_and_keeps_dtype(dtype, rng):
    net = LiftedNetwork([7, 9, 5, 3], ["tanh", "relu", "softmax"], dtype=dtype, random_state=0)
    X = rng.standard_normal((11, 7)).astype(dtype)
    out, (zs, xs) = net.forward(X, return_hidden=True)
    assert out.dtype == dtype and all(z.dtype == dtype for z in zs)
    ref_z, ref_x = numpy_forward(net, X)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref_x[-1], rtol=tol, atol=tol)
    for z, rz in zip(zs, ref_z):
        np.testing.assert_allclose(z, rz, rtol=tol, atol=tol)


def test_init_state_is_consistent_and_energy_matches_oracle(rng):
    net = LiftedNetwork([6, 8, 8, 4], ["relu", "sigmoid", "softmax"], lambdas=[1.0, 0.5, 2.0], random_state=0)
    X = rng.standard_normal((13, 6))
    Y = np.eye(4)[rng.integers(0, 4, 13)]
    state = net.init_state(X)
    assert len(state.hidden) == 2 and state.n_samples == 13
    np.testing.assert_allclose(net.consistency(X, state), 0, atol=1e-15)
    terms = net.energy(X, Y, state)
    # hidden terms vanish at a forward pass; the output term is the cross-entropy
    np.testing.assert_allclose(terms.per_layer[:2], 0, atol=1e-12)
    zs, xs = numpy_forward(net, X)
    ce = -np.mean(np.sum(Y * np.log(xs[-1]), axis=1))
    assert terms.total == pytest.approx(2.0 * ce, rel=1e-12)


@pytest.mark.parametrize("penalty", ["bregman", "classical", "mac_qp"])
def test_energy_terms_match_oracles(penalty, rng):
    net = LiftedNetwork([5, 6, 4, 3], ["relu", "tanh", "identity"], lambdas=[0.5, 1.5, 1.0],
                        random_state=2, penalty=penalty)
    X = rng.standard_normal((9, 5))
    Y = rng.standard_normal((9, 3))
    state = LiftedState([np.abs(rng.standard_normal((9, 6))), np.tanh(rng.standard_normal((9, 4)))])
    xs = [X, *state.hidden, Y]
    expected = []
    for l, (W, b, act) in enumerate(zip(net.weights, net.biases, net.activations)):
        z = xs[l] @ W.T + b
        if penalty == "bregman":
            per_sample = oracles.bregman_loss(act.name, xs[l + 1], z, act.param)
        elif penalty == "classical":
            per_sample = 0.5 * ((xs[l + 1] - z) ** 2).sum(axis=1)
        else:
            per_sample = 0.5 * ((xs[l + 1] - oracles.sigma(act.name, z)) ** 2).sum(axis=1)
        expected.append(net.lambdas[l] * per_sample.mean())
    np.testing.assert_allclose(net.energy(X, Y, state).per_layer, expected, rtol=1e-10)


def grad_psi(name, x, p):
    """The gradient of a differentiable Psi (None where Psi is an indicator or not smooth)."""
    if name == "identity":
        return np.zeros_like(x)
    if name == "leaky_relu":
        return (1 - p) / p * np.minimum(x, 0)
    if name == "tanh":
        return np.arctanh(x) - x
    if name == "sigmoid":
        return logit(x) - x
    return None


def interior_state(name, shapes, rng):
    hidden = []
    for shape in shapes:
        raw = rng.standard_normal(shape)
        x = oracles.project_domain(name, raw)
        if name in ("relu", "nonneg_soft_threshold"):
            x = x + 0.1
        elif name in ("tanh", "hard_tanh"):
            x = 0.8 * x
        elif name == "sigmoid":
            x = 0.1 + 0.8 * x
        hidden.append(np.ascontiguousarray(x))
    return LiftedState(hidden)


@pytest.mark.parametrize("penalty", ["bregman", "classical", "mac_qp"])
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_gradients_against_finite_differences(name, penalty, rng):
    from test_activation_kernels import make_activation

    act, p = make_activation(name)
    net = LiftedNetwork([4, 5, 3, 2], [act, act, "identity"], lambdas=[1.0, 0.7, 1.3], random_state=1,
                        penalty=penalty)
    X0 = rng.standard_normal((6, 4))
    T = rng.standard_normal((6, 2))
    state = interior_state(name, [(6, 5), (6, 3)], rng)
    gw, gb, gx = net.gradients(X0, T, state)
    h = 1e-6

    def fd(arr, idx):
        old = arr[idx]
        arr[idx] = old + h
        ep = net.energy(X0, T, state).total
        arr[idx] = old - h
        em = net.energy(X0, T, state).total
        arr[idx] = old
        return (ep - em) / (2 * h)

    for l in range(3):
        for idx in [(0, 0), (1, 2), (-1, -1)]:
            assert fd(net.weights[l], idx) == pytest.approx(gw[l][idx], abs=1e-6, rel=1e-5)
        assert fd(net.biases[l], (0,)) == pytest.approx(gb[l][0], abs=1e-6, rel=1e-5)
    if name == "softmax" and penalty == "bregman":
        return  # Phi is +inf off the simplex: a coordinate perturbation leaves the domain
    for hid, x in enumerate(state.hidden):
        extra = np.zeros_like(x)
        if penalty == "bregman":
            g = grad_psi(name, x, p)
            if g is None:
                continue  # Psi is an indicator or a kink: its subgradient lives in the prox step
            extra = net.lambdas[hid] * g / X0.shape[0]
        for idx in [(0, 0), (3, 1)]:
            assert fd(x, idx) == pytest.approx(gx[hid][idx] + extra[idx], abs=1e-6, rel=1e-5)


def test_linear_activation_rate(rng):
    net = LiftedNetwork([3, 4, 2], ["relu", "identity"], random_state=0)
    X = rng.standard_normal((50, 3))
    _, (zs, _) = net.forward(X, return_hidden=True)
    assert net.linear_activation_rate(X)[0] == pytest.approx(np.mean(zs[0] > 0))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"layers": [3]}, ValueError, "at least the input and output"),
        ({"layers": [3, 0, 2]}, ValueError, "positive integers"),
        ({"layers": "34"}, TypeError, "layers must be a sequence"),
        ({"activations": ["relu"]}, ValueError, "sequence of 2"),
        ({"activations": "gelu"}, ValueError, "unknown activation"),
        ({"lambdas": [1.0, -1.0]}, ValueError, "lambdas must be finite and positive"),
        ({"lambdas": [1.0]}, ValueError, "sequence of 2 numbers"),
        ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
        ({"penalty": "l2"}, ValueError, "penalty must be one of"),
    ],
)
def test_invalid_network_arguments(kwargs, error, match):
    args = {"layers": [3, 4, 2], "activations": "relu"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        LiftedNetwork(**args)


def test_bad_data_and_state_are_refused(rng):
    net = LiftedNetwork([3, 4, 2], ["relu", "identity"], random_state=0)
    X = rng.standard_normal((5, 3))
    Y = rng.standard_normal((5, 2))
    state = net.init_state(X)
    with pytest.raises(ValueError, match="X0 has 4 features but the network's input width is 3"):
        net.energy(rng.standard_normal((5, 4)), Y, state)
    with pytest.raises(ValueError, match=r"target must have shape \(5, 2\)"):
        net.energy(X, rng.standard_normal((5, 3)), state)
    with pytest.raises(ValueError, match="target must be finite"):
        net.energy(X, np.full((5, 2), np.nan), state)
    with pytest.raises(ValueError, match=r"state.hidden\[0\] must have shape \(5, 4\)"):
        net.energy(X, Y, LiftedState([np.zeros((4, 4))]))
    with pytest.raises(TypeError, match="state must be a LiftedState"):
        net.energy(X, Y, [np.zeros((5, 4))])
    with pytest.raises(TypeError, match="has dtype float32"):
        net.energy(X, Y, LiftedState([np.zeros((5, 4), np.float32)]))


def test_float32_network_stays_float32(rng):
    net = LiftedNetwork([3, 4, 2], ["relu", "identity"], dtype=np.float32, random_state=0)
    X = rng.standard_normal((5, 3))  # float64 input is cast to the network's dtype
    state = net.init_state(X)
    assert state.hidden[0].dtype == np.float32
    gw, gb, gx = net.gradients(X, rng.standard_normal((5, 2)), state)
    assert all(g.dtype == np.float32 for g in gw + gb + gx)


def test_predict_is_the_forward_pass_and_score_the_accuracy():
    import bregman_solvers as bs

    rng = np.random.default_rng(0)
    net = bs.LiftedNetwork([6, 7, 4], ["relu", "identity"], random_state=0)
    X = rng.standard_normal((25, 6))
    y = rng.integers(0, 4, 25)
    out = net.predict(X)
    np.testing.assert_array_equal(out, net.forward(X))
    expected = np.mean(out.argmax(axis=1) == y)
    assert net.score(X, y) == expected == net.score(X, np.eye(4)[y])
    assert net.score(X, out.argmax(axis=1)) == 1.0
    for bad, says in ((y[:-1], "25 labels"), (y + 4, "in 0..3"), (y.astype(float), "integer labels"),
                      (np.full((25, 4), 0.25), "not one-hot"), (np.eye(5)[y % 5], "one-hot rows")):
        with pytest.raises(ValueError, match=says):
            net.score(X, bad)
