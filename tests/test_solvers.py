"""Deterministic solvers: descent, agreement, optimality conditions, baselines, input checks."""
import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.solvers._engine import StepEngine

WIDTHS = [20, 30, 30, 5]


@pytest.fixture(scope="module")
def problem():
    """200 samples, widths 20-30-30-5, relu hidden layers, identity output, one-hot targets."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 20))
    Y = np.eye(5)[rng.integers(0, 5, 200)]
    return X, Y


def relu_net(**kw):
    return bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0, **kw)


def stop_below(threshold):
    return lambda result: result.history["energy"][-1] <= threshold


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "elu"])
@pytest.mark.parametrize("splitting", ["phi", "smooth"])
def test_proximal_gradient_with_lipschitz_steps_decreases_monotonically(problem, activation, splitting):
    X, Y = problem
    net = bs.LiftedNetwork(WIDTHS, [activation, activation, "identity"], random_state=0)
    result = bs.ProximalGradient(max_iter=150, tol=0, backtracking=False, splitting=splitting).fit(net, X, Y)
    energy = np.array(result.history["energy"])
    assert np.all(np.diff(energy) <= 1e-12 * energy[:-1])
    assert energy[-1] < 0.5 * energy[0]
    assert result.n_iter == 150 and not result.converged


def test_block_coordinate_descent_decreases_monotonically(problem):
    X, Y = problem
    result = bs.BlockCoordinateDescent(max_iter=60, tol=0).fit(relu_net(), X, Y)
    energy = np.array(result.history["energy"])
    assert np.all(np.diff(energy) <= 1e-12 * energy[:-1])


def test_three_solvers_agree_on_a_convex_problem():
    """One softmax layer: the energy is convex in theta with a unique minimum value."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 10))
    Y = np.eye(4)[rng.integers(0, 4, 200)]
    energies = []
    for solver in (bs.ProximalGradient(max_iter=5000, tol=1e-14, accelerated=True),
                   bs.BlockCoordinateDescent(max_iter=2000, tol=1e-14),
                   bs.ADMM(max_iter=1000, tol=1e-14)):
        result = solver.fit(bs.LiftedNetwork([10, 4], ["softmax"], random_state=0), X, Y)
        assert result.converged
        energies.append(result.energy)
    np.testing.assert_allclose(energies, energies[0], rtol=1e-4)


def test_three_solvers_reach_the_same_energy_and_a_consistent_state(problem):
    """On the 20-30-30-5 relu problem the network interpolates: the energy's infimum is 0.

    Every solver drives it below 5e-5 of its starting value, so all three agree to 1e-4
    relative to the problem's scale, and the trained lifted state is consistent
    (x_l = sigma_l(z_l) to 1e-3) with the residuals of every layer summing to ~0
    over the samples (the b-optimality of MATH.md).
    """
    X, Y = problem
    e0 = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0)
    e0 = e0.energy(X, Y, e0.init_state(X)).total
    finals = []
    for solver in (bs.ProximalGradient(max_iter=40000, tol=0, accelerated=True),
                   bs.BlockCoordinateDescent(max_iter=20000, tol=0),
                   bs.ADMM(max_iter=20000, tol=0)):
        solver.callback = stop_below(5e-5 * e0)
        net = relu_net()
        result = solver.fit(net, X, Y)
        assert result.energy <= 5e-5 * e0, (type(solver).__name__, result.energy, result.n_iter)
        finals.append(result.energy)
        assert np.all(net.consistency(X, result.state) <= 1e-3)
        engine = StepEngine(net, *net.check_data(X, Y), result.state)
        engine.evaluate()
        for residual in engine.ws.residual:
            assert np.abs(residual.mean(axis=0)).max() <= 2e-3
    assert max(finals) - min(finals) <= 1e-4 * e0


def test_bias_optimality_at_convergence_of_the_convex_problem():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 6))
    Y = rng.standard_normal((100, 3))
    net = bs.LiftedNetwork([6, 3], ["identity"], random_state=0)
    result = bs.BlockCoordinateDescent(max_iter=3000, tol=1e-15).fit(net, X, Y)
    _, gb, _ = net.gradients(X, Y, result.state)
    assert np.abs(gb[0]).max() <= 1e-7


def test_classical_lifted_network_is_nearly_linear_but_bregman_is_not(problem):
    """Table 2 in miniature: linear-activation rates of the hidden relu layers."""
    X, Y = problem
    rates = {}
    for penalty in ("classical", "bregman"):
        net = relu_net(penalty=penalty)
        bs.BlockCoordinateDescent(max_iter=600, tol=0).fit(net, X, Y)
        rates[penalty] = net.linear_activation_rate(X)
    assert np.all(rates["classical"] >= 0.97)
    assert np.all(rates["bregman"] <= 0.8)


def test_mac_qp_baseline_trains(problem):
    X, Y = problem
    net = relu_net(penalty="mac_qp")
    result = bs.ProximalGradient(max_iter=300, tol=0).fit(net, X, Y)
    assert result.energy < 0.2 * result.history["energy"][0]
    with pytest.raises(ValueError, match="ADMM supports the Bregman penalty only"):
        bs.ADMM(max_iter=2).fit(relu_net(penalty="mac_qp"), X, Y)


@pytest.mark.parametrize("solver", [bs.ProximalGradient(max_iter=5), bs.BlockCoordinateDescent(max_iter=3),
                                    bs.ADMM(max_iter=3), bs.ProximalGradient(max_iter=5, accelerated=True)])
def test_float32_runs_stay_float32(problem, solver):
    X, Y = problem
    net = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], dtype=np.float32, random_state=0)
    result = solver.fit(net, X, Y)
    assert all(w.dtype == np.float32 for w in net.weights + net.biases)
    assert all(h.dtype == np.float32 for h in result.state.hidden)
    assert result.history["energy"][-1] < result.history["energy"][0]


def test_fit_result_and_callback(problem):
    X, Y = problem
    seen = []

    def callback(result):
        seen.append(result.n_iter)
        return result.n_iter >= 3

    result = bs.ProximalGradient(max_iter=50, callback=callback).fit(relu_net(), X, Y)
    assert seen == [1, 2, 3] and result.n_iter == 3 and result.message == "stopped by the callback"
    assert len(result.history["energy"]) == 4 and len(result.history["tau_x"]) == 3
    assert isinstance(result.state, bs.LiftedState) and isinstance(result, bs.FitResult)


def test_fixed_steps_and_divergence_is_reported(problem):
    X, Y = problem
    ok = bs.ProximalGradient(tau_theta=0.05, tau_x=0.05, max_iter=20, backtracking=False).fit(relu_net(), X, Y)
    assert ok.energy < ok.history["energy"][0]
    with pytest.raises(FloatingPointError, match="non-finite"):
        bs.ProximalGradient(tau_theta=1e6, tau_x=1e6, max_iter=50, backtracking=False).fit(relu_net(), X, Y)


def test_solvers_refuse_bad_input(problem):
    X, Y = problem
    with pytest.raises(ValueError, match="X0 has 19 features"):
        bs.ProximalGradient().fit(relu_net(), X[:, :19], Y)
    with pytest.raises(ValueError, match="X0 must be finite"):
        bad = X.copy()
        bad[0, 0] = np.nan
        bs.BlockCoordinateDescent().fit(relu_net(), bad, Y)
    with pytest.raises(ValueError, match=r"target must have shape \(200, 5\)"):
        bs.ADMM().fit(relu_net(), X, Y[:, :4])
    with pytest.raises(TypeError, match="network must be a LiftedNetwork"):
        bs.ProximalGradient().fit("net", X, Y)
    with pytest.raises(ValueError, match=r"max_iter must be an int in \[1, inf\), got 0"):
        bs.ProximalGradient(max_iter=0).fit(relu_net(), X, Y)
    with pytest.raises(ValueError, match=r"tau_theta must be 'lipschitz' or a number in \(0, inf\), got -1.0"):
        bs.ProximalGradient(tau_theta=-1.0).fit(relu_net(), X, Y)
    with pytest.raises(ValueError, match="splitting must be 'phi' or 'smooth', got 'both'"):
        bs.ProximalGradient(splitting="both").fit(relu_net(), X, Y)
    with pytest.raises(ValueError, match=r"inner_iterations must be an int in \[1, inf\), got 0"):
        bs.BlockCoordinateDescent(inner_iterations=0).fit(relu_net(), X, Y)
    with pytest.raises(ValueError, match="rho must be"):
        bs.ADMM(rho=0.0).fit(relu_net(), X, Y)
    state = relu_net().init_state(X[:10])
    with pytest.raises(ValueError, match=r"state.hidden\[0\] must have shape \(200, 30\)"):
        bs.ProximalGradient().fit(relu_net(), X, Y, state=state)


def test_fit_does_not_rewrite_hyper_parameters(problem):
    X, Y = problem
    solver = bs.ProximalGradient(max_iter=3)
    before = dict(vars(solver))
    solver.fit(relu_net(), X, Y)
    assert vars(solver) == before


def test_results_do_not_depend_on_the_openmp_thread_count(problem, monkeypatch):
    X, Y = problem
    # the network runs passes this small on one thread: lift that so both counts really run
    monkeypatch.setattr("bregman_solvers._runtime.SETTINGS.min_entries_per_thread", 1)
    energies = []
    for n_threads in (1, 2):
        net = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=0, n_threads=n_threads)
        energies.append(bs.ProximalGradient(max_iter=20, tol=0).fit(net, X, Y).history["energy"])
    np.testing.assert_array_equal(energies[0], energies[1])


def test_own_exceptions_and_warnings(problem):
    """A diverging fit raises DivergenceError (a FloatingPointError) with the steps and epoch; a
    deterministic fit that runs out of iterations warns with ConvergenceWarning (scikit-learn's)."""
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    from bregman_solvers.exceptions import ConvergenceWarning, DivergenceError

    X, Y = problem
    assert issubclass(DivergenceError, FloatingPointError)
    assert issubclass(ConvergenceWarning, SklearnConvergenceWarning)
    with pytest.raises(DivergenceError) as info:
        bs.ImplicitSGD(tau_theta=50.0, tau_x=50.0, epochs=2, batch_size=50, random_state=0,
                       safeguard=False).fit(relu_net(), X * 100, Y)
    assert info.value.steps["tau_theta"] == 50.0 and info.value.epoch == 0
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        bs.ProximalGradient(max_iter=2).fit(relu_net(), X, Y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bs.ProximalGradient(max_iter=2, tol=0).fit(relu_net(), X, Y)       # a fixed number of iterations


def test_a_fit_result_shows_a_summary_not_its_arrays(problem):
    X, Y = problem
    result = bs.ProximalGradient(max_iter=3, tol=0).fit(relu_net(), X, Y)
    text = repr(result)
    assert text.startswith("FitResult: maximum number of iterations reached")
    assert "energy:" in text and "history (4 entries), last: energy=" in text
    assert "array(" not in text and "[" not in text.split("history")[1]
    assert len(text.splitlines()) < 10 and str(result) == text
