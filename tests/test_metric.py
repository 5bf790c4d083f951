"""The parameter step in the metric of each layer's input (``theta_metric="input"``,
``solvers/_metric.py``): one step against a NumPy oracle (its design matrices from
``sliding_window_view``), the Gauss-Newton property on a quadratic block, whole fits, bad input."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import bregman_solvers as bs
from bregman_solvers.convolution import AvgPooled, Conv2d
from bregman_solvers.operators import Dense, Operator
from bregman_solvers.residual import Residual
from bregman_solvers.regularisers import L1, SquaredL2
from bregman_solvers.solvers import _metric
from bregman_solvers.solvers._engine import StepEngine

SHAPE = (6, 6, 2)


def small_cnn(dtype):
    """conv 3 3x3 on 6x6x2, average pooling 2 folded into a 3x3 conv of 4, a dense head of 5."""
    conv = Conv2d(SHAPE, 3, 3)                                         # -> 4 x 4 x 3
    pooled = AvgPooled(Conv2d((2, 2, 3), 4, 2, padding=1), 2, (4, 4, 3))  # pool -> 2x2x3, conv -> 3x3x4
    head = Dense(36, 5)
    return bs.LiftedNetwork([conv, pooled, head], ["relu", "tanh", "identity"], dtype=dtype, random_state=1)


def small_resnet(dtype, projection=False):
    """conv 3 3x3 on 6x6x2, then a basic block: conv 3 (or 4) 3x3 padded, and a padded conv with the
    skip from the block's input (identity, or a learned 1x1 projection 3 -> 4), a dense head of 5."""
    width = 4 if projection else 3
    layers = [Conv2d(SHAPE, 3, 3), Conv2d((4, 4, 3), width, 3, padding=1),
              Residual(Conv2d((4, 4, width), width, 3, padding=1), skip_shape=(4, 4, 3), projection=projection),
              Dense(16 * width, 5)]
    return bs.LiftedNetwork(layers, ["relu", "relu", "tanh", "identity"], dtype=dtype, random_state=1)


class NoDesign(Dense):
    """A dense map that does not say its design matrix (as an operator of one's own might not)."""

    design = Operator.design


def channel_rows(op, w):
    """The documented layout, without the operators' own helpers: a row per output channel; a
    projection block's flat weights hold the main path's rows, then the projection's."""
    channels = op.bias_shape[0]
    if isinstance(op, Residual) and op.projection is not None:
        n_main = op.operator.n_weights
        return np.hstack([w.reshape(-1)[:n_main].reshape(channels, -1), w.reshape(-1)[n_main:].reshape(channels, -1)])
    return w.reshape(channels, -1)


NETWORKS = {
    # the network, its design matrices from the chain x_0 .. x_{L-1} in NumPy, each layer's t
    "cnn": (small_cnn, lambda xs: [patches(xs[0], SHAPE, 3), patches(pool(xs[1], (4, 4, 3)), (2, 2, 3), 2,
                                                                      padding=1), xs[2]], [0.5, 0.3, 0.7]),
    "residual": (small_resnet, lambda xs: [patches(xs[0], SHAPE, 3), patches(xs[1], (4, 4, 3), 3, padding=1),
                                           patches(xs[2], (4, 4, 3), 3, padding=1), xs[3]], [0.5, 0.3, 0.7, 0.4]),
    # the block's rows: its main path's patches of x_2 (4 channels), then the 1x1 projection's x_1 pixels
    "projection": (lambda dtype: small_resnet(dtype, projection=True),
                   lambda xs: [patches(xs[0], SHAPE, 3), patches(xs[1], (4, 4, 3), 3, padding=1),
                               np.hstack([patches(xs[2], (4, 4, 4), 3, padding=1), xs[1].reshape(-1, 3)]), xs[3]],
                   [0.5, 0.3, 0.7, 0.4]),
}


def patches(images, shape, kernel, padding=0):
    """The patch matrix (n H_out W_out, k k C) of NHWC images, from NumPy's sliding windows."""
    n = images.shape[0]
    x = np.pad(images.reshape(n, *shape), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = sliding_window_view(x, (kernel, kernel), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    return windows.reshape(-1, kernel * kernel * shape[2])


def pool(images, shape):
    n, (h, w, c) = images.shape[0], shape
    return images.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4)).reshape(n, -1)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((7, int(np.prod(SHAPE)))), np.eye(5)[rng.integers(0, 5, 7)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_anchor", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize("kind", NETWORKS)
def test_one_step_against_a_numpy_oracle(batch, dtype, with_anchor, decay, kind):
    """``[W b] -= t (G + ([W b] - anchor) / tau) (M + I / tau + delta I)^(-1)`` per layer, with
    ``M = (lambda / n) [D 1]^T [D 1]`` from NumPy's patch matrices (a convolution, a pooled
    convolution with padding, a dense layer; a residual block with an identity skip, whose skip is
    constant in its weights: its main path's patches); a weight decay ``alpha`` adds ``alpha W`` to
    ``G`` and ``alpha I`` to the weights' part of ``M``."""
    build, design_matrices, t = NETWORKS[kind]
    network = build(dtype)
    X, Y = network.check_data(*batch)
    engine = StepEngine(network, X, Y, network.init_state(X), metric="input",
                        regulariser=SquaredL2(decay) if decay else None)
    engine.evaluate(np.full(network.n_layers - 1, 0.1))
    engine.theta_gradients()
    grads = [(g.astype(np.float64).copy(), h.astype(np.float64).copy())
             for g, h in zip(engine.ws.grad_w, engine.ws.grad_b)]
    designs = design_matrices([X.astype(np.float64), *[h.astype(np.float64) for h in engine.state.hidden]])
    before = network.parameter_vector.astype(np.float64)
    anchor, tau = None, 2.0
    if with_anchor:
        anchor = (network.parameter_vector + 0.05 * np.random.default_rng(2).standard_normal(before.size)).astype(dtype)
    t = np.array(t)
    expected = []
    for l, (D, (gw, gb)) in enumerate(zip(designs, grads)):
        op = network.layers[l]
        channels = op.bias_shape[0]
        ones = np.hstack([D, np.ones((D.shape[0], 1))])
        M = network.lambdas[l] / X.shape[0] * ones.T @ ones
        G = np.hstack([channel_rows(op, gw), gb.reshape(channels, 1)])
        weights, biases = network.unflatten(before)
        theta = np.hstack([channel_rows(op, weights[l]), biases[l].reshape(channels, 1)])
        d = len(M) - 1
        G[:, :d] += decay * theta[:, :d]
        M[:d, :d] += decay * np.eye(d)
        if anchor is not None:
            aw, ab = network.unflatten(anchor.astype(np.float64))
            G = G + (theta - np.hstack([channel_rows(op, aw[l]), ab[l].reshape(channels, 1)])) / tau
            M = M + np.eye(len(M)) / tau
        M = M + _metric.DAMPING * np.trace(M) / len(M) * np.eye(len(M))
        expected.append((theta, G, M))
    engine.theta_step(t, anchor=anchor, tau_prox=tau if anchor is not None else None)
    for l, (theta, G, M) in enumerate(expected):
        op = network.layers[l]
        got = np.hstack([channel_rows(op, network.weights[l]), network.biases[l].reshape(op.bias_shape[0], 1)])
        if dtype == np.float64:
            new = theta - t[l] * np.linalg.solve(M, G.T).T
            np.testing.assert_allclose(got, new, rtol=1e-10, atol=1e-10 * np.abs(new).max())
        else:
            # D^T D is formed in float32, and M's conditioning (up to 1 / DAMPING) amplifies its
            # rounding in the solution: check the backward error instead, the step solving
            # (step) M = G up to float32's rounding of M and of the stored parameters
            step = (theta - got) / t[l]
            eps = np.finfo(np.float32).eps
            bound = 10 * eps * (np.abs(step) @ np.abs(M) + np.abs(theta) @ np.abs(M) / t[l] + np.abs(G))
            assert np.all(np.abs(step @ M - G) <= bound), np.max(np.abs(step @ M - G) / bound)


def test_the_metrics_are_kept_for_their_batch(batch):
    """Each layer's metric is factored at the batch's first parameter step and kept for its other
    steps (also after x-steps moved the hidden layers' inputs), forgotten by ``new_batch``; a step
    on new data in place (as the batch runner gathers it) then equals a fresh engine's step to the
    bit, and a changed proximity step takes new factors."""
    X, Y = batch
    steps = dict(tau_theta=np.array([0.5, 0.3, 0.7]))
    reused = small_cnn(np.float64)
    X_in, Y_in = reused.check_data(X, Y)
    X_in = X_in.copy()
    engine = StepEngine(reused, X_in, Y_in, reused.init_state(X_in), metric="input")
    engine.evaluate(np.full(2, 0.1))
    engine.theta_step(**steps)
    kept = dict(engine.metric_factors)
    assert set(kept) == {0, 1, 2}
    engine.apply_x(np.full(2, 0.1))
    engine.evaluate(np.full(2, 0.1))
    engine.theta_step(**steps)
    assert all(engine.metric_factors[l] is kept[l] for l in kept)
    X_in[...] = np.random.default_rng(3).standard_normal(X.shape)    # the next batch, in place
    engine.new_batch()
    assert not engine.metric_factors
    fresh = small_cnn(np.float64)
    np.copyto(fresh.parameter_vector, reused.parameter_vector)
    for h, start in zip(engine.state.hidden, reused.init_state(X_in).hidden):
        np.copyto(h, start)
    twin = StepEngine(fresh, X_in.copy(), Y_in, fresh.init_state(X_in), metric="input")
    for e in (engine, twin):
        e.evaluate(np.full(2, 0.1))
        e.theta_step(**steps)
    np.testing.assert_array_equal(reused.parameter_vector, fresh.parameter_vector)
    assert all(engine.metric_factors[l] is not kept[l] for l in kept)
    again = dict(engine.metric_factors)
    engine.evaluate(np.full(2, 0.1))
    engine.theta_step(**steps, anchor=reused.parameter_vector.copy(), tau_prox=2.0)
    assert all(engine.metric_factors[l] is not again[l] for l in again)


def test_inputs_that_overflowed_leave_nan_for_the_divergence_check(batch):
    """A metric that is not finite (inputs that overflowed in float32, as in a diverging batch) has
    no Cholesky factor: the step leaves NaN in that layer's parameters, which the batch's finiteness
    check reports (the safeguard then backs off), instead of raising from LAPACK."""
    network = small_cnn(np.float32)
    X, Y = network.check_data(*batch)
    X = X.copy()
    X[0, :5] = 1e30                            # its patches' squares overflow float32
    engine = StepEngine(network, X, Y, network.init_state(X), metric="input")
    engine.evaluate(np.full(2, 0.1))
    engine.theta_step(np.array([0.5, 0.5, 0.5]))
    assert np.isnan(network.weights[0]).all() and not engine.iterate_finite()


def test_a_full_step_on_a_quadratic_block_is_its_gauss_newton_step(batch):
    """One identity layer (its energy quadratic in [W b]): with t = 1 the step leaves a gradient of
    the size of the damping's (the Euclidean step at the Lipschitz bound leaves most of it), and the
    energy falls further than with the Euclidean step."""
    X, _ = batch
    rng = np.random.default_rng(5)
    X = X * np.linspace(0.05, 3.0, X.shape[1])                      # badly conditioned inputs
    Y = rng.standard_normal((X.shape[0], 4))
    norms, energies = {}, {}
    for metric in ("input", "euclidean"):
        network = bs.LiftedNetwork([X.shape[1], 4], ["identity"], dtype="float64", random_state=0)
        engine = StepEngine(network, X, Y, network.init_state(X), metric=metric)
        start = engine.total(engine.evaluate())
        engine.theta_gradients()
        before = np.linalg.norm(np.concatenate([engine.ws.grad_w[0].ravel(), engine.ws.grad_b[0]]))
        t = 1.0 if metric == "input" else 1.0 / (network.lambdas[0] * (np.linalg.norm(
            np.hstack([X, np.ones((X.shape[0], 1))]), 2) ** 2 / X.shape[0]))
        engine.theta_step(np.array([t]))
        energies[metric] = engine.total(engine.evaluate())
        engine.theta_gradients()
        after = np.linalg.norm(np.concatenate([engine.ws.grad_w[0].ravel(), engine.ws.grad_b[0]]))
        norms[metric] = after / before
        assert energies[metric] < start
    assert norms["input"] < 0.05 < norms["euclidean"]
    assert energies["input"] < energies["euclidean"]


def test_lenet5_learns_faster_in_the_input_metric():
    """The embedded MNIST images, 2 epochs of LeNet-5 (the command line's conv steps, tau_x 0.1): the
    input metric ahead of the Euclidean steps (whose convolution steps are their tight Lipschitz
    bounds, about 0.002 and 0.01), with the rule's 0.25 for every layer (and tau "auto": 100 in the
    input metric, 10 in the Euclidean one)."""
    from bregman_solvers.datasets import load_mnist, one_hot, preprocess

    X, y = load_mnist(n_samples=600)
    X, _ = preprocess(X)
    Y = one_hot(y, 10, "float32")
    accuracy = {}
    for metric in ("euclidean", "input"):
        network = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, dtype="float32", random_state=0)
        result = bs.ImplicitSGD(epochs=2, tau_x=0.1, random_state=0, theta_metric=metric, n_threads=1,
                                validation_data=(X, Y)).fit(network, X, Y)
        accuracy[metric] = result.history["val_accuracy"][-1]
        if metric == "input":
            assert result.history["tau_theta"][0] == [0.25] * 5 and result.history["recoveries"] == [0, 0]
    assert accuracy["input"] > accuracy["euclidean"] + 0.05


def test_a_dense_network_and_a_resumed_fit():
    """Dense layers take the same step (not the compiled one); a fit stopped after one epoch and
    resumed from its checkpoint ends where the whole fit does."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 9))
    Y = np.eye(3)[rng.integers(0, 3, 60)]
    settings = dict(batch_size=20, inner_iterations=3, random_state=0, theta_metric="input")
    whole = bs.LiftedNetwork([9, 8, 3], ["relu", "identity"], dtype="float64", random_state=0)
    bs.ImplicitSGD(epochs=2, **settings).fit(whole, X, Y)
    part = bs.LiftedNetwork([9, 8, 3], ["relu", "identity"], dtype="float64", random_state=0)
    first = bs.ImplicitSGD(epochs=1, **settings).fit(part, X, Y)
    bs.ImplicitSGD(epochs=2, **settings).fit(part, X, Y, state=first.state, initial_epoch=1,
                                            previous_parameters=first.previous_parameters)
    np.testing.assert_allclose(part.parameter_vector, whole.parameter_vector, rtol=1e-12, atol=1e-12)


def test_bad_settings_are_refused_by_name(batch):
    X, Y = batch
    dense = bs.LiftedNetwork([72, 6, 5], ["relu", "identity"], random_state=0)
    with pytest.raises(ValueError, match="theta_metric must be 'auto', 'euclidean' or 'input', got 'newton'"):
        bs.ImplicitSGD(epochs=1, theta_metric="newton").fit(dense, X, Y)
    with pytest.raises(ValueError, match=r"theta_metric='input' takes no regulariser but a weight decay .*L1"):
        bs.ImplicitSGD(epochs=1, theta_metric="input", regulariser=L1(0.1)).fit(dense, X, Y)
    no_design = bs.LiftedNetwork([Dense(72, 6), NoDesign(6, 5)], ["relu", "identity"], random_state=0)
    with pytest.raises(ValueError, match="needs layers .* layer 2 is NoDesign"):
        bs.ImplicitSGD(epochs=1, theta_metric="input").fit(no_design, X, Y)
    X0, target = dense.check_data(X, Y)
    with pytest.raises(ValueError, match="metric must be one of"):
        StepEngine(dense, X0, target, dense.init_state(X0), metric="newton")
    with pytest.raises(ValueError, match="takes no regulariser but a weight decay"):
        StepEngine(dense, X0, target, dense.init_state(X0), regulariser=L1(0.1), metric="input")


def test_auto_takes_the_input_metric_for_a_convolutional_network_that_allows_it(batch):
    """``theta_metric="auto"`` (the default): the input metric for a network with a convolution
    (the small CNN, LeNet-5, the residual networks), the Euclidean steps for dense layers only, an
    operator without a design matrix or an l1 regulariser (which the input metric refuses); a fit
    with the default takes the input metric's steps (0.25 per layer) and ends where
    ``theta_metric="input"`` does, to the bit."""
    lenet5 = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, random_state=0)
    residual = bs.LiftedNetwork.from_architecture("resnet", (6, 6, 2), 5, random_state=0)
    projection = small_resnet(np.float32, projection=True)
    no_design = bs.LiftedNetwork([Conv2d(SHAPE, 3, 3), NoDesign(48, 5)], ["relu", "identity"], random_state=0)
    dense = bs.LiftedNetwork([72, 6, 5], ["relu", "identity"], random_state=0)
    assert bs.ImplicitSGD().theta_metric == "auto"
    assert bs.ImplicitSGD().metric_for(lenet5) == "input" == bs.ImplicitSGD().metric_for(small_cnn(np.float32))
    assert bs.ImplicitSGD(regulariser=SquaredL2(0.1)).metric_for(lenet5) == "input"
    assert bs.ImplicitSGD(regulariser=L1(0.1)).metric_for(lenet5) == "euclidean"
    assert bs.ImplicitSGD().metric_for(residual) == "input" == bs.ImplicitSGD().metric_for(projection)
    assert bs.ImplicitSGD().metric_for(no_design) == "euclidean" == bs.ImplicitSGD().metric_for(dense)
    assert bs.ImplicitSGD(theta_metric="euclidean").metric_for(lenet5) == "euclidean"
    assert bs.ImplicitSGD(theta_metric="input").metric_for(dense) == "input"
    X, Y = batch
    fits = {}
    for metric in ("auto", "input", "euclidean"):
        network = small_cnn(np.float64)
        result = bs.ImplicitSGD(epochs=1, batch_size=3, random_state=0, theta_metric=metric).fit(network, X, Y)
        fits[metric] = (network.parameter_vector.copy(), result.history["tau_theta"][0])
    np.testing.assert_array_equal(fits["auto"][0], fits["input"][0])
    assert fits["auto"][1] == [0.25] * 3 != fits["euclidean"][1]
    assert not np.array_equal(fits["auto"][0], fits["euclidean"][0])


def test_auto_proximity_and_auxiliary_steps_follow_the_network_and_the_metric(batch):
    """``tau="auto"`` is 10 with Euclidean parameter steps and 100 in the input metric; ``tau_x="auto"``
    0.5 for dense layers and 0.1 for a network with another operator; given values pass through. A fit
    with the defaults ends where one given the resolved numbers does, to the bit, for ImplicitSGD and
    its subclasses (which share the rule), and the estimators hand "auto" on (ISGD-BP takes it as 10)."""
    from bregman_solvers._estimator_solvers import _make_solver
    from bregman_solvers.estimators import LiftedBregmanClassifier

    lenet5 = bs.LiftedNetwork.from_architecture("lenet5", (28, 28, 1), 10, random_state=0)
    dense = bs.LiftedNetwork([72, 6, 5], ["relu", "identity"], random_state=0)
    assert bs.ImplicitSGD().steps_for(dense) == (10.0, 0.5)
    assert bs.ImplicitSGD().steps_for(lenet5) == (100.0, 0.1)
    assert bs.ImplicitSGD(theta_metric="euclidean").steps_for(lenet5) == (10.0, 0.1)
    assert bs.ImplicitSGD(theta_metric="input").steps_for(dense) == (100.0, 0.5)
    assert bs.ImplicitSGD(tau=3.0, tau_x="lipschitz").steps_for(lenet5) == (3.0, "lipschitz")
    assert bs.ModelAveraging().steps_for(lenet5) == (100.0, 0.1)
    X, Y = batch
    for make, resolved in [(small_cnn, dict(tau=100.0, tau_x=0.1)), (small_resnet, dict(tau=100.0, tau_x=0.1)),
                           (lambda dtype: bs.LiftedNetwork([72, 6, 5], ["relu", "identity"], dtype=dtype,
                                                           random_state=0), dict(tau=10.0, tau_x=0.5))]:
        for cls in (bs.ImplicitSGD, bs.ModelAveraging, bs.StochasticProximalGradient):
            given = {} if cls is bs.StochasticProximalGradient else dict(tau=resolved["tau"])
            ends = []
            for settings in ({}, dict(given, tau_x=resolved["tau_x"])):
                network = make(np.float64)
                cls(epochs=1, batch_size=3, random_state=0, **settings).fit(network, X, Y)
                ends.append(network.parameter_vector.copy())
            np.testing.assert_array_equal(*ends)
    assert _make_solver(LiftedBregmanClassifier(solver="isgd-bp")).tau == 10.0
    assert _make_solver(LiftedBregmanClassifier()).tau == "auto"
    with pytest.raises(ValueError, match="tau"):
        bs.ImplicitSGD(tau="automatic").fit(small_cnn(np.float64), X, Y)
    with pytest.raises(ValueError, match="tau_x"):
        bs.ImplicitSGD(tau_x="auto-ish").fit(small_cnn(np.float64), X, Y)
