"""Layers as linear operators: the interface every solver uses, proved with operators written here alone.

The toy operators below live in this file only. That a network built from them trains through
ImplicitSGD, the proximal gradient solver, SGD-BP and DistributedImplicitSGD, with exact energy
gradients, is the proof that a new operator (a convolution, a pooling fold, a skip connection)
needs no solver change.
"""
import numpy as np
import pytest

import bregman_solvers as bs
import oracles
from bregman_solvers.operators import Dense, Operator, check_layers, operator_from_config, register_operator
from bregman_solvers.solvers._engine import StepEngine


class PlainDense(Dense):
    """The dense map, but not taken by the compiled K steps: it runs through the operator interface."""

    compiled = False


class FixedMap(Operator):
    """``A(x) = M x`` with a fixed matrix ``M`` and no weights (a given linear map), one bias per output."""

    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.in_shapes = ((self.matrix.shape[1],),)
        self.out_shape = (self.matrix.shape[0],)
        self.weight_shape = (0,)
        self.bias_shape = self.out_shape

    def __eq__(self, other):
        return type(other) is FixedMap and np.array_equal(self.matrix, other.matrix)

    __hash__ = Operator.__hash__

    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        np.matmul(inputs[0], (scale * self.matrix.T).astype(out.dtype), out=out)
        return out

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        out += alpha * (residual @ self.matrix.astype(out.dtype))
        return out

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        return out


@register_operator
class DenseWithSkip(Operator):
    """``A(x_{l-1}, x_{l-2}; W) = W x_{l-1} + c x_{l-2}``: a dense layer with a scaled identity skip
    (the basic block's shortcut into the pre-activation), one bias per channel of a (positions,
    channels) output, so the bias expansion is exercised too."""

    sources = (1, 2)

    def __init__(self, n_in, n_skip, channels, c=1.0):
        assert n_skip % channels == 0
        self.n_in, self.n_out, self.channels, self.c = n_in, n_skip, channels, c
        self.in_shapes = ((n_in,), (n_skip,))
        self.out_shape = (n_skip // channels, channels)
        self.weight_shape = (n_skip, n_in)
        self.bias_shape = (channels,)

    def get_config(self):
        return {"type": "DenseWithSkip", "n_in": self.n_in, "n_skip": self.n_out, "channels": self.channels,
                "c": self.c}

    def forward(self, inputs, weights, out, scale=1.0, split=(1, 1), cache=None):
        np.matmul(inputs[0], scale * weights.T, out=out)
        out += self.c * inputs[1]
        return out

    def adjoint(self, residual, weights, source, out, alpha, split=(1, 1)):
        out += alpha * (residual @ weights if source == 0 else self.c * residual)
        return out

    def weight_gradient(self, residual, inputs, out, alpha, beta=0.0, split=(1, 1), cache=None):
        out *= beta
        out += alpha * (residual.T @ inputs[0])
        return out


def blobs(n=300, features=6, classes=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = 2 * rng.standard_normal((classes, features))
    labels = rng.integers(0, classes, n)
    X = (0.4 * (centres[labels] + rng.standard_normal((n, features)))).astype(dtype)
    return X, np.eye(classes, dtype=dtype)[labels]


def toy_layers(seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((8, 8)))
    return [Dense(6, 8), FixedMap(q), Dense(8, 3)]


def skip_layers():
    return [Dense(6, 8), Dense(8, 8), DenseWithSkip(8, 8, channels=2, c=0.5), Dense(8, 3)]


def toy_network(layers, **kwargs):
    """A classifier of relu hidden layers and an identity output on ``layers()``."""
    ops = layers()
    return bs.LiftedNetwork(ops, ["relu"] * (len(ops) - 1) + ["identity"], **kwargs)


def accuracy(network, X, Y):
    return float(np.mean(network.forward(X).argmax(1) == Y.argmax(1)))


# ------------------------------------------------------------------------------ the network
def test_dense_shorthand_builds_dense_operators():
    net = bs.LiftedNetwork([5, 4, 3], ["relu", "identity"], random_state=0)
    assert net.layers == [Dense(5, 4), Dense(4, 3)] and net.compiled
    assert [w.shape for w in net.weights] == [(4, 5), (3, 4)]
    same = bs.LiftedNetwork([Dense(5, 4), Dense(4, 3)], ["relu", "identity"], random_state=0)
    np.testing.assert_array_equal(net.parameter_vector, same.parameter_vector)


def test_operator_shapes_and_errors_name_the_layer():
    net = toy_network(skip_layers, random_state=0)
    assert net.widths == [6, 8, 8, 8, 3] and not net.compiled
    assert net.biases[2].shape == (2,) and net.weights[1].shape == (8, 8)
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\(n_in=5, n_out=3\)\) reads layer 1's output"):
        check_layers([Dense(6, 8), Dense(5, 3)])
    with pytest.raises(ValueError, match="layer 1 .* source 2 must be between 1 and 1"):
        check_layers([DenseWithSkip(6, 6, 1)])
    with pytest.raises(TypeError, match="layer 2: expected an Operator"):
        check_layers([Dense(6, 8), "dense"])
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        Dense(3, 0)


def test_config_round_trip_and_unregistered_operators():
    assert operator_from_config(Dense(3, 4).get_config()) == Dense(3, 4)
    with pytest.raises(ValueError, match="unknown operator type 'Nope'"):
        operator_from_config({"type": "Nope"})
    with pytest.raises(NotImplementedError, match="FixedMap has no config"):
        FixedMap(np.eye(3)).get_config()
    with pytest.raises(TypeError, match="Operator subclass"):
        register_operator(int)


@pytest.mark.parametrize("layers", [toy_layers, skip_layers], ids=["fixed-map", "skip"])
def test_energy_gradients_match_finite_differences(layers):
    """grad_W, grad_b and grad_X of the mean energy (back terms through every reader) against
    central differences, in float64."""
    X, Y = blobs(20)
    net = toy_network(layers, random_state=0)
    rng = np.random.default_rng(3)
    state = net.init_state(X)
    for h in state.hidden:                       # away from the forward pass, inside relu's domain
        h += 0.3 * np.abs(rng.standard_normal(h.shape))
    oracles.assert_energy_gradients(net, X, Y, state, rng)


@pytest.mark.parametrize("splitting", ["smooth", "phi"])
def test_the_engines_x_step_argument_is_the_gradient_step(splitting):
    """The operator path's V_h (own term plus every reader's back term) is the x-step of MATH.md:
    in the smooth splitting ``V_h = X_h - tau N grad_{X_h} F``."""
    X, Y = blobs(16)
    net = toy_network(skip_layers, random_state=0)
    state = net.init_state(X)
    state.hidden[1] += 0.1
    _, _, gx = net.gradients(X, Y, state)
    engine = StepEngine(net, X, Y, state, splitting=splitting)
    tau = 0.3
    engine.evaluate([tau] * 3)
    for h, x in enumerate(state.hidden):
        if splitting == "smooth":
            expected = x - tau * X.shape[0] * gx[h]
        else:                                      # Remark 11: the same step, divided by 1 + t
            t = tau * net.lambdas[h]
            expected = (x - tau * X.shape[0] * gx[h] + t * x) / (1 + t)
        np.testing.assert_allclose(engine.ws.v[h], expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------ the solvers
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-8), (np.float32, 2e-3)])
def test_the_operator_path_equals_the_compiled_path(dtype, rtol):
    """A dense network run through the operator interface (PlainDense) takes the same steps as the
    compiled K steps: the same parameters up to rounding (the scaled and the explicit step forms
    differ only in rounding), with the library's defaults (momentum, auto steps, forward start)."""
    X, Y = blobs(200, dtype=dtype)
    fits = []
    for cls in (Dense, PlainDense):
        net = bs.LiftedNetwork([cls(6, 16), cls(16, 16), cls(16, 3)], ["relu", "relu", "identity"], dtype=dtype,
                               random_state=0)
        result = bs.ImplicitSGD(epochs=2, batch_size=50, inner_iterations=4, random_state=0).fit(net, X, Y)
        fits.append((net, result))
    (compiled, a), (plain, b) = fits
    assert compiled.compiled and not plain.compiled
    np.testing.assert_allclose(plain.parameter_vector, compiled.parameter_vector, rtol=rtol,
                               atol=rtol * np.abs(compiled.parameter_vector).max())
    np.testing.assert_allclose(b.history["batch_energy"], a.history["batch_energy"], rtol=rtol)


@pytest.mark.parametrize("layers", [toy_layers, skip_layers], ids=["fixed-map", "skip"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_toy_operators_train_with_implicit_sgd_defaults(layers, dtype):
    X, Y = blobs(300, dtype=dtype)
    net = toy_network(layers, dtype=dtype, random_state=0)
    before = accuracy(net, X, Y)
    result = bs.ImplicitSGD(epochs=12, batch_size=50, inner_iterations=5, random_state=0).fit(net, X, Y)
    assert accuracy(net, X, Y) >= max(0.9, before)
    assert result.history["batch_energy"][-1] < result.history["batch_energy"][0]
    assert all(np.isfinite(net.parameter_vector))


def test_toy_operators_with_the_other_solvers():
    """The deterministic proximal gradient (auto steps from the operators' norm bounds), the
    stochastic proximal gradient, model averaging and the back-propagation baseline."""
    X, Y = blobs(200)
    # seeded: unseeded, the stochastic proximal gradient's accuracy spread over 0.805-0.84 (12 seeds)
    # and once fell below the bound in a full run; model averaging 0.85-0.915, SGD-BP 0.995-1.0
    for solver in (bs.ProximalGradient(max_iter=60, tol=0),
                   bs.StochasticProximalGradient(epochs=3, batch_size=50, random_state=0),
                   bs.ModelAveraging(epochs=3, batch_size=50, n_jobs=2, random_state=0),
                   bs.SGDBP(epochs=20, batch_size=20, learning_rate=0.1, random_state=0)):
        net = toy_network(skip_layers, random_state=0)
        solver.fit(net, X, Y)
        assert accuracy(net, X, Y) > 0.8, type(solver).__name__


def test_checkpoints_of_operators(tmp_path):
    """A registered operator round-trips through a checkpoint (and a resumed fit equals the
    uninterrupted one); one without a config is refused, naming the layer."""
    X, Y = blobs(200)
    fit = dict(batch_size=50, inner_iterations=3, random_state=0)
    whole = toy_network(skip_layers, random_state=0)
    bs.ImplicitSGD(epochs=2, **fit).fit(whole, X, Y)
    half = toy_network(skip_layers, random_state=0)
    state = half.init_state(X)
    result = bs.ImplicitSGD(epochs=1, **fit).fit(half, X, Y, state=state)
    path = bs.persistence.save(tmp_path / "skip", half, state, 1, previous_parameters=result.previous_parameters)
    back = bs.persistence.load(path)
    assert back.network.layers == half.layers and back.network.biases[2].shape == (2,)
    bs.ImplicitSGD(epochs=2, **fit).fit(back.network, X, Y, state=back.state, initial_epoch=1,
                                        previous_parameters=back.previous_parameters)
    np.testing.assert_array_equal(back.network.parameter_vector, whole.parameter_vector)
    with pytest.raises(ValueError, match="layer 2: FixedMap has no config"):
        bs.persistence.save(tmp_path / "net", toy_network(toy_layers, random_state=0))


def test_toy_operators_train_on_dask():
    """The shards hold the toy network (pickled to worker processes) and train it as one process
    does: one shard is ImplicitSGD exactly, two shards learn."""
    distributed = pytest.importorskip("distributed")
    from bregman_solvers.distributed import DistributedImplicitSGD

    X, Y = blobs(300, dtype=np.float32)
    fast = dict(batch_size=50, inner_iterations=3, epochs=3, random_state=3, n_threads=1)

    def network():
        return toy_network(toy_layers, dtype=np.float32, random_state=0)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        alone, one, two = network(), network(), network()
        before = accuracy(two, X, Y)
        bs.ImplicitSGD(**fast).fit(alone, X, Y)
        DistributedImplicitSGD(n_workers=1, client=client, **fast).fit(one, X, Y)
        result = DistributedImplicitSGD(n_workers=2, client=client, **fast).fit(two, X, Y)
    np.testing.assert_array_equal(one.parameter_vector, alone.parameter_vector)
    # (150 samples a shard, three batches an epoch: the small-data regime of averaging)
    assert accuracy(two, X, Y) > max(0.75, before + 0.3)
    assert result.history["shards"][-1] == 2
