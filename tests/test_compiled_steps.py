"""The compiled batch step (``_kernels._steps.ProximalSteps``) behind every ``StepEngine``.

Checked three ways: the K steps of implicit SGD against a plain NumPy oracle (explicit
weights, float64); the fused K steps against the same steps taken one call at a time
(``evaluate``, ``theta_step``, ``apply_x``: what the regularised fits run), to the bit;
and the argument checks of every method.
"""
import numpy as np
import oracles
import pytest

import bregman_solvers as bs
from bregman_solvers._kernels import _steps
from bregman_solvers._runtime import SETTINGS
from bregman_solvers._threads import fit_threads
from bregman_solvers.regularisers import L1, BregmanIteration, CodeL1, SquaredL2
from bregman_solvers.solvers._engine import StepEngine

WIDTHS = [12, 16, 9, 4]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((57, 12))
    Y = np.eye(4)[rng.integers(0, 4, 57)]
    return X, Y


def oracle_steps(network, X0, hidden, target, t_theta, t_x, tau, K, weight_decay=0.0):
    """K proximal-gradient steps of implicit SGD in NumPy (float64, explicit weights, phi splitting).

    Each step from one iterate: residuals ``R_l = sigma(Z_l) - X_l``, the x-step
    arguments ``V_h`` (eq. 17 with Remark 11's splitting), the parameter step with
    the proximity pull ``(tau_theta / tau) (theta - theta^k)`` (none in the first
    step) and the prox of ``SquaredL2(weight_decay)`` on the weights, then
    ``X_h = prox_{c Psi}(V_h)``.
    """
    names = [a.name for a in network.activations]
    params = [a.param for a in network.activations]
    lam, n, L = network.lambdas, X0.shape[0], network.n_layers
    W = [w.astype(np.float64) for w in network.weights]
    b = [v.astype(np.float64) for v in network.biases]
    anchor_w, anchor_b = [w.copy() for w in W], [v.copy() for v in b]
    xs = [X0.astype(np.float64), *[h.astype(np.float64) for h in hidden], target.astype(np.float64)]
    for k in range(K):
        Z = [xs[l] @ W[l].T + b[l] for l in range(L)]
        R = [oracles.sigma(names[l], Z[l], params[l]) - xs[l + 1] for l in range(L)]
        V = []
        for h in range(L - 1):
            t = t_x[h] * lam[h]
            V.append((xs[h + 1] + t * Z[h] - t_x[h] * lam[h + 1] * R[h + 1] @ W[h + 1]) / (1 + t))
        for l in range(L):
            c = t_theta[l] / tau if k > 0 else 0.0
            step = t_theta[l] * lam[l] / n
            W[l] = ((1 - c) * W[l] + c * anchor_w[l] - step * R[l].T @ xs[l]) / (1 + t_theta[l] * weight_decay)
            b[l] = (1 - c) * b[l] + c * anchor_b[l] - step * R[l].sum(axis=0)
        for h in range(L - 1):
            t = t_x[h] * lam[h]
            xs[h + 1] = oracles.prox(names[h], V[h], t / (1 + t), params[h])
    return W, b, xs[1:-1]


def engine_for(network, X0, target, hidden):
    return StepEngine(network, X0, target, bs.LiftedState([h.copy() for h in hidden]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("acts", [["relu", "relu", "identity"], ["tanh", "relu", "sigmoid"], ["elu", "relu", "identity"]])
@pytest.mark.parametrize("tau", [2.0, 0.25])           # c = 0.05 .. 0.8: the second renormalises mid-way
@pytest.mark.parametrize("weight_decay", [0.0, 0.8])
def test_compiled_steps_against_numpy_oracle(data, dtype, acts, tau, weight_decay):
    """The K steps (a weight decay's prox taken as a factor on the weights' scale) == NumPy's."""
    X, Y = data
    network = bs.LiftedNetwork(WIDTHS, acts, dtype=dtype, random_state=0, lambdas=[1.0, 0.7, 1.3])
    X0, target = network.check_data(X, Y * 0.8 + 0.1)
    hidden = network.init_state(X0).hidden
    t_theta, t_x, K = np.array([0.2, 0.15, 0.1]), np.array([0.3, 0.2]), 6
    W, b, xs = oracle_steps(network, X0, hidden, target, t_theta, t_x, tau, K, weight_decay)

    engine = StepEngine(network, X0, target, bs.LiftedState([h.copy() for h in hidden]),
                        regulariser=SquaredL2(weight_decay) if weight_decay else None)
    assert engine.fused_steps_apply(t_theta, tau)
    engine.evaluate(t_x)
    engine.proximal_steps(K, t_theta, t_x, network.parameter_vector.copy(), tau)
    assert np.all(engine.w_scale < 1.0)           # the weights are left scaled
    engine.normalise_weights()
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    for l in range(network.n_layers):
        np.testing.assert_allclose(network.weights[l], W[l], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(network.biases[l], b[l], rtol=rtol, atol=rtol)
    for h, x in enumerate(engine.state.hidden):
        np.testing.assert_allclose(x, xs[h], rtol=rtol, atol=rtol)


def count_compiled_calls(monkeypatch):
    calls = []
    real = StepEngine.proximal_steps

    def counting(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StepEngine, "proximal_steps", counting)
    return calls


CASES = [
    dict(acts=["relu", "tanh", "identity"]),
    dict(acts=["leaky_relu", "sigmoid", "identity"], splitting="smooth"),
    dict(acts=["soft_threshold", "hard_tanh", "identity"], penalty="classical"),
    dict(acts=["relu", "hard_tanh", "identity"], penalty="mac_qp"),
    dict(acts=["elu", "relu", "softmax"]),
    dict(acts=["relu", "relu", "identity"], tau=0.3),                       # renormalised inside a batch
    dict(acts=["relu", "relu", "identity"], tau=None),                      # no proximity term
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fused_steps_equal_the_steps_one_call_at_a_time(data, dtype, case):
    """``proximal_steps`` (one compiled call) against ``evaluate`` with the pending x-step,
    ``theta_step`` and ``apply_x`` called in turn: the same kernels, wired the same way
    (the input layer in its plain form; its low-rank form is compared below)."""
    X, Y = data
    case = dict(case)
    acts, penalty = case.pop("acts"), case.pop("penalty", "bregman")
    tau = case.pop("tau", 2.0)
    if acts[-1] == "softmax":
        Y = Y * 0.9 + 0.025                                   # in the open simplex
    t_theta, t_x, K = np.array([0.1, 0.12, 0.08]), np.array([0.1, 0.15]), 4
    results = []
    for fused in (True, False):
        network = bs.LiftedNetwork(WIDTHS, acts, dtype=dtype, random_state=0, penalty=penalty)
        X0, target = network.check_data(X[:10], Y[:10])
        engine = StepEngine(network, X0, target, network.init_state(X0), **case)
        anchor = network.parameter_vector.copy()
        energy = engine.total(engine.evaluate(t_x))
        if fused:
            engine.proximal_steps(K, t_theta, t_x, None if tau is None else anchor, tau, low_rank=False)
        else:
            for k in range(K):
                if k > 0:
                    engine.evaluate(t_x, energy=False, pending_x=t_x)
                engine.theta_step(t_theta, anchor=anchor if tau is not None and k > 0 else None, tau_prox=tau)
            engine.apply_x(t_x)
        engine.normalise_weights()
        results.append((energy, network.parameter_vector.copy(), *[h.copy() for h in engine.state.hidden]))
    assert not np.array_equal(results[0][1], anchor)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [dict(regulariser=L1(1e-3)), dict(regulariser=BregmanIteration(L1(1e-3))),
                                    dict(code_regulariser=CodeL1(layer=1, alpha=0.01)),
                                    dict(tau=0.05)])                      # c = 2: the explicit pull
def test_the_python_loop_serves_what_the_compiled_call_cannot(data, kwargs, monkeypatch):
    X, Y = data
    calls = count_compiled_calls(monkeypatch)
    network = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0)
    solver_kwargs = dict(batch_size=10, inner_iterations=3, epochs=1, random_state=0, tau_theta=0.1, tau_x=0.1,
                         tau=2.0)
    solver_kwargs.update(kwargs)
    bs.ImplicitSGD(**solver_kwargs).fit(network, X, Y)
    assert calls == []
    Xb, Yb = network.check_data(X[:10], Y[:10])
    engine = StepEngine(network, Xb, Yb, network.init_state(Xb), regulariser=kwargs.get("regulariser"),
                        code_regulariser=kwargs.get("code_regulariser"))
    t_theta = np.full(3, 0.1)
    assert not engine.fused_steps_apply(t_theta, kwargs.get("tau", 2.0))
    with pytest.raises(ValueError, match="proximal_steps needs"):
        engine.proximal_steps(3, t_theta, np.full(2, 0.1), network.parameter_vector.copy(), kwargs.get("tau", 2.0))


def test_one_sample_one_feature_and_a_single_layer():
    """The smallest shapes: batch of 1, widths of 1, and one layer (no x-step)."""
    for widths, acts in [([1, 1, 1], ["relu", "identity"]), ([3, 2], ["identity"])]:
        network = bs.LiftedNetwork(widths, acts, random_state=0)
        X0 = np.array([[0.5] * widths[0]])
        target = np.array([[0.3] * widths[-1]])
        hidden = network.init_state(X0).hidden
        t_theta, t_x = np.full(len(acts), 0.2), np.full(len(acts) - 1, 0.3)
        W, b, xs = oracle_steps(network, X0, hidden, target, t_theta, t_x, 2.0, 3)
        engine = engine_for(network, X0, target, hidden)
        engine.evaluate(t_x)
        engine.proximal_steps(3, t_theta, t_x, network.parameter_vector.copy(), 2.0)
        engine.normalise_weights()
        for l in range(network.n_layers):
            np.testing.assert_allclose(network.weights[l], W[l], rtol=1e-12)
            np.testing.assert_allclose(network.biases[l], b[l], rtol=1e-12, atol=1e-15)
        for h, x in enumerate(engine.state.hidden):
            np.testing.assert_allclose(x, xs[h], rtol=1e-12, atol=1e-15)


def make_steps(dtype=np.float64, n=5, **changes):
    """A valid ``ProximalSteps`` argument set for a 4-3-2 relu/identity network, with ``changes``."""
    network = bs.LiftedNetwork([4, 3, 2], ["relu", "identity"], dtype=dtype, random_state=0)
    ws = bs.network._Workspace(network, n)

    def batch(width):
        return np.zeros((n, width), dtype)

    args = dict(penalty=0, weights=network.weights, biases=network.biases,
                xs=[batch(4), batch(3), batch(2)], z=ws.z, residual=ws.residual, loss=ws.loss, v=ws.v,
                kinds=[1, 0], params=[0.0, 0.0], threads=[1, 1], bounds=network.layer_bounds)
    args.update(changes)
    return network, args


def run_args(network, **changes):
    args = dict(n_steps=2, anchor=network.parameter_vector.copy(), anchor_scale=np.ones(2), w_scale=np.ones(2),
                step=np.full(2, 0.01), pull=np.full(2, 0.1), a_x=np.full(1, 0.5), c_z=np.full(1, 0.5),
                back=np.full(1, -0.1), prox_c=np.full(1, 0.5), min_scale=0.01)
    args.update(changes)
    return args


def test_proximal_steps_runs_with_valid_arguments():
    network, args = make_steps()
    for name in ("xs",):                                # the data and the target are only read
        args[name][0].flags.writeable = False
        args[name][-1].flags.writeable = False
    steps = _steps.ProximalSteps(**args)
    w_scale = np.ones(2)
    anchor = network.parameter_vector.copy()
    anchor.flags.writeable = False                      # the anchor is only read
    steps.run(**run_args(network, w_scale=w_scale, anchor=anchor))
    np.testing.assert_allclose(w_scale, 0.9)            # one pulled step: s = 1 - c
    steps.run(**run_args(network, anchor=None, w_scale=w_scale))
    np.testing.assert_allclose(w_scale, 0.9)            # no proximity term: no pull, the scale stays
    steps.run(**run_args(network, anchor=None, w_scale=w_scale, decay=np.array([0.5, 1.0])))
    np.testing.assert_allclose(w_scale, [0.9 * 0.25, 0.9])   # a weight decay: its factor per step


def evaluate_args(**changes):
    args = dict(w_scale=np.ones(2), a_x=np.full(1, 0.5), c_z=np.full(1, 0.5), back=np.full(1, -0.1),
                prox_c=np.full(1, 0.5), with_v=np.ones(1, np.int8), layers=np.ones(2, np.int8), with_loss=True,
                pending=False)
    args.update(changes)
    return args


@pytest.mark.parametrize("change,match", [
    (dict(w_scale=np.ones(3)), "w_scale must have length 2"),
    (dict(w_scale=np.array([1.0, -1.0])), "w_scale must be positive"),
    (dict(a_x=np.ones(2)), "a_x must have length 1"),
    (dict(with_v=np.ones(2, np.int8)), "with_v must have length 1"),
    (dict(layers=np.ones(1, np.int8)), "layers must have length 2"),
    (dict(pending=True, layers=np.array([1, 0], np.int8)), "pending x-step needs every layer"),
    (dict(pending=True, with_v=np.zeros(1, np.int8)), "pending x-step needs every layer"),
    (dict(forward=True, layers=np.array([1, 0], np.int8)), "forward pass needs every layer"),
    (dict(forward=True, pending=True), "exclude each other"),
    (dict(pending=True, prox_c=np.zeros(1)), "prox_c must be positive"),
])
def test_evaluate_refuses_bad_arguments(change, match):
    network, args = make_steps()
    steps = _steps.ProximalSteps(**args)
    with pytest.raises(ValueError, match=match):
        steps.evaluate(**evaluate_args(**change))


def test_parameter_step_refuses_bad_arguments():
    network, args = make_steps()
    steps = _steps.ProximalSteps(**args)
    base = dict(anchor=network.parameter_vector.copy(), anchor_scale=np.ones(2), w_scale=np.ones(2),
                step=np.full(2, 0.01), pull=np.full(2, 0.1), min_scale=0.01)
    before = network.parameter_vector.copy()
    for change, match in [(dict(step=np.ones(3)), "step must have length 2"),
                          (dict(pull=np.array([0.1, 1.5])), "pull must lie in"),
                          (dict(min_scale=2.0), "min_scale"), (dict(anchor=np.zeros(3)), "anchor must have shape")]:
        with pytest.raises(ValueError, match=match):
            steps.parameter_step(**{**base, **change})
    np.testing.assert_array_equal(network.parameter_vector, before)
    steps.parameter_step(**base)
    assert not np.array_equal(network.parameter_vector, before) or np.all(before == 0)


@pytest.mark.parametrize("change,error,match", [
    (dict(penalty=3), ValueError, "penalty"),
    (dict(weights=[]), ValueError, "at least one layer"),
    (dict(biases=None), TypeError, "biases"),
    (dict(kinds=[1]), ValueError, "kinds must have 2 entries"),
    (dict(kinds=[1, 99]), ValueError, r"kinds\[1\]"),
    (dict(threads=[0, 1]), ValueError, r"threads\[0\]"),
    (dict(params=[0.0, 0.0, 0.0]), ValueError, "params must have 2 entries"),
    (dict(bounds=np.array([0, 15, 20])), ValueError, "bounds"),
])
def test_proximal_steps_refuses_bad_construction(change, error, match):
    _, args = make_steps(**change)
    with pytest.raises(error, match=match):
        _steps.ProximalSteps(**args)


def test_proximal_steps_refuses_bad_arrays():
    network, args = make_steps()
    bad = {
        "xs": ([np.zeros((5, 4)), np.zeros((6, 3)), np.zeros((5, 2))], ValueError, r"xs\[1\] must have shape"),
        "z": ([np.zeros((5, 3), np.float32), np.zeros((5, 2))], TypeError, r"z\[0\] must have dtype float64"),
        "residual": ([np.zeros((3, 5)).T, np.zeros((5, 2))], ValueError, r"residual\[0\] must be C-contiguous"),
        "v": ([[[0.0] * 3] * 5], TypeError, r"v\[0\] must be a numpy array"),
    }
    for name, (value, error, match) in bad.items():
        with pytest.raises(error, match=match):
            _steps.ProximalSteps(**{**args, name: value})
    readonly = np.zeros((5, 3))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=r"z\[0\] must be writable"):
        _steps.ProximalSteps(**{**args, "z": [readonly, np.zeros((5, 2))]})
    with pytest.raises(ValueError, match="batch of at least one sample"):
        _steps.ProximalSteps(**make_steps(n=0)[1])
    with pytest.raises(TypeError, match="float32 or float64"):
        _steps.ProximalSteps(**{**args, "weights": [w.astype(np.float16) for w in network.weights]})


@pytest.mark.parametrize("change,match", [
    (dict(n_steps=0), "n_steps"),
    (dict(step=np.full(3, 0.01)), "step must have length 2"),
    (dict(prox_c=np.ones(2)), "prox_c must have length 1"),
    (dict(w_scale=np.array([1.0, 0.0])), "w_scale must be positive"),
    (dict(anchor_scale=np.array([np.inf, 1.0])), "anchor_scale must be positive"),
    (dict(pull=np.array([0.1, 1.0])), "pull must lie in"),
    (dict(prox_c=np.array([np.nan])), "prox_c must be positive"),
    (dict(min_scale=0.0), "min_scale"),
    (dict(anchor=np.zeros(5)), "anchor must have shape"),
    (dict(decay=np.ones(3)), "decay must have length 2"),
    (dict(decay=np.array([0.5, 0.0])), "decay must lie in"),
    (dict(decay=np.array([1.5, 1.0])), "decay must lie in"),
    (dict(decay=np.array([np.nan, 1.0])), "decay must lie in"),
])
def test_proximal_steps_refuses_bad_run_arguments(change, match):
    network, args = make_steps()
    steps = _steps.ProximalSteps(**args)
    before = network.parameter_vector.copy()
    with pytest.raises(ValueError, match=match):
        steps.run(**run_args(network, **change))
    np.testing.assert_array_equal(network.parameter_vector, before)       # nothing written
    with pytest.raises(TypeError):
        steps.run(**run_args(network, anchor=np.zeros(network.parameter_vector.size, np.float32)))


def test_a_shared_scale_array_must_be_float64_of_the_network_length(data):
    X, Y = data
    network = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0)
    Xb, Yb = network.check_data(X[:10], Y[:10])
    for bad in ([1.0, 1.0, 1.0], np.ones(3, np.float32), np.ones(2)):
        with pytest.raises(TypeError, match="w_scale must be a float64 array of length 3"):
            StepEngine(network, Xb, Yb, network.init_state(Xb), w_scale=bad)
    shared = np.ones(3)
    engine = StepEngine(network, Xb, Yb, network.init_state(Xb), w_scale=shared)
    engine.evaluate(np.full(2, 0.1))
    engine.proximal_steps(2, np.full(3, 0.1), np.full(2, 0.1), network.parameter_vector.copy(), 2.0)
    assert engine.w_scale is shared and np.all(shared < 1.0)            # updated in place


# -- the input layer's low-rank steps (``_kernels/_low_rank.pxd``)

LOW_RANK_CASES = [
    dict(widths=[30, 20, 9, 4], acts=["relu", "tanh", "identity"], tau=2.0),
    dict(widths=[30, 20, 9, 4], acts=["relu", "tanh", "identity"], tau=0.25),    # other layers renormalise
    dict(widths=[30, 20, 9, 4], acts=["elu", "relu", "identity"], tau=None),  # no proximity term
    dict(widths=[30, 20, 4], acts=["leaky_relu", "identity"], tau=2.0, splitting="smooth"),
    dict(widths=[30, 20, 4], acts=["soft_threshold", "identity"], tau=2.0, penalty="classical"),
    dict(widths=[30, 20, 4], acts=["relu", "identity"], tau=2.0, penalty="mac_qp"),
    dict(widths=[30, 4], acts=["sigmoid"], tau=2.0),                             # the input layer is the output
    # a weight decay: the start weights' multiple beta_k in Z = beta P - G A and in the formed weights
    dict(widths=[30, 20, 9, 4], acts=["relu", "tanh", "identity"], tau=2.0, regulariser=SquaredL2(0.7)),
    dict(widths=[30, 20, 9, 4], acts=["relu", "tanh", "identity"], tau=None, regulariser=SquaredL2(0.7)),
    dict(widths=[30, 4], acts=["sigmoid"], tau=None, regulariser=SquaredL2(3.0)),   # beta = d^K: renormalised
]


def low_rank_and_plain(dtype, case, batches, K=6, n=37, threads=None):
    """The K steps on consecutive ``batches`` (seeds) through one engine, in low-rank and in plain form
    (``threads``: inside a fit of that many threads, whose products split over them)."""
    if threads is None:
        return _low_rank_and_plain(dtype, case, batches, K, n, threads)
    with fit_threads(threads):
        return _low_rank_and_plain(dtype, case, batches, K, n, threads)


def _low_rank_and_plain(dtype, case, batches, K, n, threads):
    case = dict(case)
    widths, acts, tau = case.pop("widths"), case.pop("acts"), case.pop("tau")
    penalty = case.pop("penalty", "bregman")
    results = []
    for low_rank in (True, False):
        network = bs.LiftedNetwork(widths, acts, dtype=dtype, random_state=0, penalty=penalty, n_threads=threads)
        X0 = np.zeros((n, widths[0]), dtype)
        target = np.zeros((n, widths[-1]), dtype)
        engine = StepEngine(network, X0, target, bs.LiftedState([np.zeros((n, w), dtype) for w in widths[1:-1]]),
                            **case)
        t_theta, t_x = np.linspace(0.2, 0.1, len(acts)), np.linspace(0.3, 0.2, len(acts) - 1)
        for seed in batches:                      # a new batch gathered into the same buffers
            rng = np.random.default_rng(seed)
            X0[:] = rng.standard_normal(X0.shape)
            target[:] = 0.1 + 0.8 * np.eye(widths[-1])[rng.integers(0, widths[-1], n)]
            network.forward_hidden(X0, engine.state.hidden, engine.w_scale)
            engine.evaluate(t_x)
            anchor = network.parameter_vector.copy()
            engine.proximal_steps(K, t_theta, t_x, None if tau is None else anchor, tau,
                                  anchor_scale=engine.w_scale.copy(), low_rank=low_rank)
        engine.normalise_weights()
        results.append([network.parameter_vector.copy(), *[h.copy() for h in engine.state.hidden]])
    return results


def assert_same_to_rounding(low_rank, plain, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(low_rank, plain):
        assert np.max(np.abs(a - b)) <= rtol * max(1.0, np.max(np.abs(b)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LOW_RANK_CASES)
def test_the_low_rank_input_layer_takes_the_plain_steps(dtype, case):
    """Its weights ``beta W^(0) - A^T X_0`` and pre-activations ``beta P - G A`` give the plain form's
    iterates to rounding, over three batches through one engine (its buffers reused, the Gram
    matrix and the product P made again for each batch), with and without the proximity pull and
    a weight decay."""
    low_rank, plain = low_rank_and_plain(dtype, case, batches=(1, 2, 3))
    assert not np.array_equal(low_rank[0], plain[0])          # a different arithmetic ...
    assert_same_to_rounding(low_rank, plain, dtype)           # ... for the same steps


@pytest.mark.parametrize("n", [1, 2, 130])
def test_the_low_rank_form_at_odd_batch_sizes_and_on_threads(n):
    """One sample (a rank-one Gram matrix), two, and a batch larger than the layer, on two threads
    (split products)."""
    for dtype in (np.float32, np.float64):
        for case in (LOW_RANK_CASES[0], LOW_RANK_CASES[-3]):
            low_rank, plain = low_rank_and_plain(dtype, case, batches=(5, 6), K=4, n=n, threads=2)
            assert_same_to_rounding(low_rank, plain, dtype)


@pytest.mark.parametrize("n, widths", [(100, [40, 450, 10]),     # G A split in columns (output units)
                                         (300, [40, 64, 10]),      # ... in rows (samples)
                                         (300, [40, 450, 10])])    # and the coefficients' step in blocks
@pytest.mark.parametrize("case", [LOW_RANK_CASES[0], LOW_RANK_CASES[-3]])
def test_the_low_rank_layer_in_one_region_with_its_pass(n, widths, case, monkeypatch):
    """Where ``G A`` is large enough to split, the copy of ``beta P``, the product's blocks and the
    pass's rows run in one parallel region (and the coefficients' step in blocks of output units):
    bitwise the result of one thread (the blocks, not the threads, decide the arithmetic), and the
    plain steps' iterates to rounding."""
    monkeypatch.setattr(SETTINGS, "product_blocks", 2)
    case = dict(case, widths=widths, acts=["relu", "identity"])
    for dtype in (np.float32, np.float64):
        one = low_rank_and_plain(dtype, case, batches=(3, 4), K=4, n=n, threads=1)
        two = low_rank_and_plain(dtype, case, batches=(3, 4), K=4, n=n, threads=2)
        for a, b in zip(one[0], two[0]):
            np.testing.assert_array_equal(a, b)
        assert_same_to_rounding(*two, dtype)


@pytest.mark.parametrize("tau", [2.0, 0.25, None])       # 0.25: the weights' scales renormalise within a batch
def test_back_terms_and_parameter_steps_in_one_region(tau, monkeypatch):
    """On threads, every back term and then every parameter step run as the blocks of one
    parallel region (``_kernels/_sweep.pxd``): bitwise the layer-by-layer calls of one thread,
    for layers whose gradient product splits in rows (500 -> 500), in columns (500 -> 200), not
    at all (200 -> 10), with and without the low-rank input layer, and across the steps whose
    weights renormalise (those take the layer-by-layer calls)."""
    monkeypatch.setattr(SETTINGS, "product_blocks", 2)
    case = dict(widths=[60, 500, 500, 200, 10], acts=["relu", "tanh", "relu", "identity"], tau=tau)
    for dtype in (np.float32, np.float64):
        one = low_rank_and_plain(dtype, case, batches=(7, 8), K=5, n=100, threads=1)
        two = low_rank_and_plain(dtype, case, batches=(7, 8), K=5, n=100, threads=2)
        for form in (0, 1):                                   # low-rank, plain
            for a, b in zip(one[form], two[form]):
                np.testing.assert_array_equal(a, b)
        assert_same_to_rounding(*two, dtype)


def test_the_low_rank_form_is_taken_where_it_saves_products():
    """The rule counts multiply-adds: batch 100 of a 784-784 input layer at K = 10 (the classify
    configuration) and K = 30 take it; one inner step (the stochastic proximal gradient) or a
    batch of the whole data (LBN-D) do not."""
    def engine(n, widths):
        network = bs.LiftedNetwork(widths, ["relu"] * (len(widths) - 2) + ["identity"], dtype="float32")
        X0, target = np.zeros((n, widths[0]), "float32"), np.zeros((n, widths[-1]), "float32")
        return StepEngine(network, X0, target, network.init_state(X0))

    classify = engine(100, [784, 784, 784, 784, 10])
    assert classify.low_rank_pays(10) and classify.low_rank_pays(30)
    assert classify.low_rank_pays(2) and not classify.low_rank_pays(1)
    assert not engine(2000, [784, 64, 10]).low_rank_pays(10)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_whole_fits_with_and_without_the_low_rank_form(data, momentum):
    """ImplicitSGD (momentum, the safeguard, scales kept across batches of two sizes) in float64:
    the same fit to rounding with the input layer's steps in low-rank form (the compiled K steps
    take it at this batch size and K) and with every step explicit (a regulariser of weight 0,
    whose prox is the identity, keeps the fit off the compiled steps)."""
    X, Y = data
    fits = []
    for regulariser in (None, L1(0.0)):
        network = bs.LiftedNetwork(WIDTHS, ["relu", "tanh", "identity"], random_state=0)
        X0, target = network.check_data(X[:10], Y[:10])
        engine = StepEngine(network, X0, target, network.init_state(X0), regulariser=regulariser)
        assert engine.low_rank_pays(5) and engine.fused_steps_apply(np.full(3, 0.1), 10.0) == (regulariser is None)
        result = bs.ImplicitSGD(batch_size=10, inner_iterations=5, epochs=3, tau_x=0.2, momentum=momentum,
                                random_state=0, regulariser=regulariser).fit(network, X, Y)
        fits.append(result.network.parameter_vector.copy())
    np.testing.assert_allclose(fits[0], fits[1], rtol=1e-9, atol=1e-9)


class ProxSquaredL2(SquaredL2):
    """The same weight decay taken by its prox on explicit weights: only ``SquaredL2`` itself is a
    factor on the scale (a subclass may change the prox), so this one keeps fits off the compiled steps."""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("threads", [1, 2])
def test_whole_fits_with_a_weight_decay_on_the_compiled_steps(data, dtype, momentum, threads):
    """ImplicitSGD with ``SquaredL2`` (momentum, the safeguard, two batch sizes, renormalised scales,
    products split over threads) on the compiled K steps == the same fit with the prox taken on
    explicit weights, to rounding; the energy's regularisation term read through the scales."""
    X, Y = data
    fits = []
    for regulariser in (SquaredL2(0.3), ProxSquaredL2(0.3)):
        network = bs.LiftedNetwork(WIDTHS, ["relu", "tanh", "identity"], dtype=dtype, random_state=0,
                                   n_threads=threads)
        X0, target = network.check_data(X[:10], Y[:10])
        engine = StepEngine(network, X0, target, network.init_state(X0), regulariser=regulariser)
        compiled = type(regulariser) is SquaredL2
        assert engine.fused_steps_apply(np.full(3, 0.1), 2.0) == compiled and engine.low_rank_pays(5)
        result = bs.ImplicitSGD(batch_size=10, inner_iterations=5, epochs=3, tau=2.0, tau_x=0.2,
                                momentum=momentum, random_state=0, regulariser=regulariser).fit(network, X, Y)
        fits.append((result.network.parameter_vector.copy(), np.array(result.history["energy"])))
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for a, b in zip(*fits):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    plain = bs.ImplicitSGD(batch_size=10, inner_iterations=5, epochs=3, tau=2.0, tau_x=0.2, momentum=momentum,
                           random_state=0).fit(bs.LiftedNetwork(WIDTHS, ["relu", "tanh", "identity"], dtype=dtype,
                                                                random_state=0), X, Y)
    decayed, undecayed = fits[0][0], plain.network.parameter_vector
    assert np.linalg.norm(decayed) < np.linalg.norm(undecayed)           # the decay did act


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES[:5])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_forward_start_inside_the_first_evaluation(data, dtype, case, threads):
    """``evaluate(forward=True)`` (each hidden layer's pass sets its target to ``sigma(Z + b)`` from the
    product it computes anyway) against the forward pass followed by ``evaluate``: the same
    auxiliary variables, energy, residuals and x-step arguments, to the bit."""
    X, Y = data
    case = dict(case)
    acts, penalty = case.pop("acts"), case.pop("penalty", "bregman")
    if acts[-1] == "softmax":
        Y = Y * 0.9 + 0.025
    t_x = np.array([0.1, 0.15])
    results = []
    for fused in (True, False):
        network = bs.LiftedNetwork(WIDTHS, acts, dtype=dtype, random_state=0, penalty=penalty, n_threads=threads)
        X0, target = network.check_data(X, Y)
        state = network.init_state(X0)
        for h in state.hidden:
            h[:] = 7.0                                      # stale variables, overwritten by the forward pass
        engine = StepEngine(network, X0, target, state, **case)
        if fused:
            terms = engine.evaluate(t_x, forward=True)
        else:
            network.forward_hidden(X0, state.hidden)
            terms = engine.evaluate(t_x)
        results.append([terms, *state.hidden, *engine.ws.residual, *engine.ws.v])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_the_forward_start_needs_every_layer_and_no_pending_step(data):
    X, Y = data
    network = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0)
    X0, target = network.check_data(X, Y)
    engine = StepEngine(network, X0, target, network.init_state(X0))
    t_x = np.array([0.1, 0.1])
    with pytest.raises(ValueError, match="forward pass needs all layers"):
        engine.evaluate(t_x, layers=[0, 1], forward=True)
    with pytest.raises(ValueError, match="forward pass needs all layers"):
        engine.evaluate(t_x, pending_x=t_x, forward=True)
