"""The penalty continuation (``penalty_growth``): the hidden layers' penalty weights grow by epoch,
the network leaves the fit as it came, a checkpoint written during the fit resumes exactly, and
every lifted stochastic solver, the Dask shards, the estimator and the command line take it."""
import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.estimators import LiftedBregmanClassifier
from bregman_solvers.schedules import Ramp
from bregman_solvers.solvers._continuation import PenaltyContinuation
from bregman_solvers.solvers._safeguard import StepSafeguard

WIDTHS = [12, 16, 16, 4]
SETTINGS = dict(inner_iterations=2, batch_size=50, random_state=3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12))
    teacher = bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], random_state=5)
    return X, np.eye(4)[teacher.forward(X).argmax(axis=1)]


def net(dtype=np.float64, lambdas=(1.0, 0.5, 2.0)):
    return bs.LiftedNetwork(WIDTHS, ["relu", "relu", "identity"], lambdas=list(lambdas), dtype=dtype, random_state=0)


@pytest.mark.parametrize("growth, factors", [(1.0, [1, 2, 3, 4]), (0.5, [1, 1.5, 2, 2.5]),
                                             (Ramp(1, 1, 2.5), [1, 2, 2.5, 2.5]),
                                             (lambda e: 2.0 ** -e, [1, 0.5, 0.25, 0.125])])
def test_each_epoch_scales_the_hidden_weights_and_the_fit_restores_them(data, growth, factors):
    X, Y = data
    network, seen = net(), []
    result = bs.ImplicitSGD(epochs=4, penalty_growth=growth, callback=lambda r: seen.append(list(network.lambdas)),
                            **SETTINGS).fit(network, X, Y)
    assert seen == [[1.0 * f, 0.5 * f, 2.0] for f in factors]       # the output layer's weight stays
    assert result.history["penalty_factor"] == factors
    assert network.lambdas == [1.0, 0.5, 2.0] and not hasattr(network, "_lambdas_of_fit")


def test_auto_grows_a_convolutional_networks_weights_to_four_and_keeps_a_dense_ones(data):
    """``"auto"`` (the default of ImplicitSGD, the Dask driver and the classifier): Ramp(1, 1, 4) for a
    network with a layer other than Dense, 0 for a dense network (no factor recorded)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 36)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    layers = [bs.Conv2d((6, 6, 1), 2, 3), bs.AvgPooled(bs.Dense(8, 3), 2, in_shape=(4, 4, 2))]
    conv = bs.LiftedNetwork(layers, ["relu", "identity"], dtype="float32", random_state=0)
    solver = bs.ImplicitSGD(epochs=5, batch_size=20, inner_iterations=2, random_state=0)
    assert repr(solver.growth_for(conv)) == "Ramp(1, slope=1, maximum=4)" and solver.growth_for(net()) == 0.0
    result = solver.fit(conv, X, Y)
    assert result.history["penalty_factor"] == [1.0, 2.0, 3.0, 4.0, 4.0] and conv.lambdas == [1.0, 1.0]
    assert bs.ImplicitSGD(penalty_growth=0.5).growth_for(conv) == 0.5
    assert bs.ModelAveraging().penalty_growth == 0 and bs.StochasticProximalGradient().penalty_growth == 0
    with pytest.raises(ValueError, match="penalty_growth"):
        bs.ImplicitSGD(penalty_growth="autox").fit(conv, X, Y)


def test_no_growth_is_the_plain_fit_and_records_nothing(data):
    X, Y = data
    a, b = net(), net()
    ra = bs.ImplicitSGD(epochs=3, **SETTINGS).fit(a, X, Y)
    rb = bs.ImplicitSGD(epochs=3, penalty_growth=0, **SETTINGS).fit(b, X, Y)
    np.testing.assert_array_equal(a.parameter_vector, b.parameter_vector)
    assert "penalty_factor" not in ra.history and "penalty_factor" not in rb.history


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_growth_is_the_fit_whose_callback_raises_the_weights_by_hand(data, dtype):
    """What the option does, written out: after epoch e a callback sets the hidden weights to their
    start times 1 + (e + 1) growth, so that epoch e + 1 (its steps, its batches) runs with them."""
    X, Y = (a.astype(dtype) for a in data)
    grown = net(dtype)
    r = bs.ImplicitSGD(epochs=4, penalty_growth=0.5, track_energy=True, **SETTINGS).fit(grown, X, Y)
    by_hand = net(dtype)

    def raise_weights(result):
        epoch = len(result.history["epoch"])
        by_hand.lambdas[:2] = [1.0 * (1 + 0.5 * epoch), 0.5 * (1 + 0.5 * epoch)]

    h = bs.ImplicitSGD(epochs=4, callback=raise_weights, track_energy=True, **SETTINGS).fit(by_hand, X, Y)
    np.testing.assert_array_equal(grown.parameter_vector, by_hand.parameter_vector)
    assert r.history["batch_energy"] == h.history["batch_energy"]
    assert r.history["energy"] == h.history["energy"]
    assert r.history["tau_theta"] == h.history["tau_theta"]     # the auto steps read the epoch's weights
    plain = net(dtype)
    bs.ImplicitSGD(epochs=4, **SETTINGS).fit(plain, X, Y)
    assert not np.allclose(plain.parameter_vector, grown.parameter_vector)


def test_a_checkpoint_written_during_the_fit_resumes_exactly(data, tmp_path):
    """The command line's checkpoints are written by the callback, while the network holds the
    epoch's grown weights: the checkpoint keeps the weights the fit began with, and the resumed fit
    grows them again from the epoch (parameters, batch energies and factors as uninterrupted)."""
    X, Y = data
    settings = dict(penalty_growth=1.0, track_energy=True, **SETTINGS)
    whole_net = net()
    whole = bs.ImplicitSGD(epochs=4, **settings).fit(whole_net, X, Y)
    first = net()

    def checkpoint(result):
        if len(result.history["epoch"]) == 2:
            bs.save(tmp_path / "ckpt.npz", first, result.state, epoch=result.epoch,
                    previous_parameters=result.previous_parameters)

    r = bs.ImplicitSGD(epochs=3, callback=checkpoint, **settings).fit(first, X, Y)
    ckpt = bs.load(tmp_path / "ckpt.npz")
    assert ckpt.network.lambdas == [1.0, 0.5, 2.0] and ckpt.epoch == 2
    rest = bs.ImplicitSGD(epochs=4, **settings).fit(ckpt.network, X, Y, state=ckpt.state, initial_epoch=ckpt.epoch,
                                                   previous_parameters=ckpt.previous_parameters)
    np.testing.assert_array_equal(ckpt.network.parameter_vector, whole_net.parameter_vector)
    assert rest.history["penalty_factor"] == [3.0, 4.0] and r.history["penalty_factor"][:2] == [1.0, 2.0]
    assert whole.history["batch_energy"][2:] == rest.history["batch_energy"]


def test_a_stop_inside_an_epoch_resumes_with_that_epochs_weights(data):
    """A fit stopped at a batch boundary and resumed from its position keeps the stopped epoch's
    steps (from the position) and sets its penalty weights again (from the epoch)."""
    from bregman_solvers.solvers import _stop

    X, Y = data
    settings = dict(epochs=3, penalty_growth=1.0, **SETTINGS)
    full = net()
    whole = bs.ImplicitSGD(**settings).fit(full, X, Y)
    count = {"n": 0}

    class StopsInEpochTwo(bs.ImplicitSGD):
        def batch_steps(self, batch):
            count["n"] += 1
            if count["n"] == 9:                   # batch 3 of epoch 1 (6 batches an epoch)
                _stop.request_stop()
            return super().batch_steps(batch)

    first = net()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        r = StopsInEpochTwo(**settings).fit(first, X, Y)
    assert r.interrupted and r.epoch == 1 and first.lambdas == [1.0, 0.5, 2.0]
    rest = bs.ImplicitSGD(**settings).fit(first, X, Y, state=r.state, initial_epoch=r.epoch,
                                          previous_parameters=r.previous_parameters, position=r.position)
    np.testing.assert_array_equal(first.parameter_vector, full.parameter_vector)
    assert rest.history["penalty_factor"] == whole.history["penalty_factor"][1:] == [2.0, 3.0]


def test_model_averaging_and_the_stochastic_prox_gradient_take_it(data):
    X, Y = data
    results = []
    for n_jobs in (1, 2):
        network, seen = net(), []
        r = bs.ModelAveraging(epochs=3, n_jobs=n_jobs, penalty_growth=1.0, inner_iterations=2, batch_size=50,
                              random_state=3, callback=lambda res: seen.append(list(network.lambdas))).fit(network, X, Y)
        assert seen[-1] == [3.0, 1.5, 2.0] and network.lambdas == [1.0, 0.5, 2.0]
        assert r.history["penalty_factor"] == [1.0, 2.0, 3.0]
        results.append(network.parameter_vector.copy())
    np.testing.assert_array_equal(*results)            # every worker's copy had the epoch's weights
    plain = net()
    bs.ModelAveraging(epochs=3, inner_iterations=2, batch_size=50, random_state=3).fit(plain, X, Y)
    assert not np.allclose(plain.parameter_vector, results[0])
    network = net(lambdas=(1.0, 1.0, 1.0))
    r = bs.StochasticProximalGradient(epochs=2, batch_size=50, random_state=3, penalty_growth=0.5).fit(network, X, Y)
    assert r.history["penalty_factor"] == [1.0, 1.5] and network.lambdas == [1.0, 1.0, 1.0]


def test_a_shard_runs_the_epochs_weights(data):
    """The Dask shards set the weights on their network copy per epoch: two epoch-long rounds of
    one shard are the two-epoch ImplicitSGD fit with the same growth."""
    from bregman_solvers.distributed import ShardTrainer

    X, Y = data
    solver = bs.ImplicitSGD(batch_size=50, inner_iterations=2, penalty_growth=1.0)
    network = net()
    shard = ShardTrainer(network, X, Y, solver, seed=3)
    theta = network.parameter_vector.copy()
    for epoch in range(2):
        theta = shard.run_round(theta, epoch, 0, shard.n_batches(), keep_velocity=True)["theta"]
    assert shard.network.lambdas == [2.0, 1.0, 2.0]
    single = net()
    bs.ImplicitSGD(batch_size=50, inner_iterations=2, epochs=2, random_state=3, penalty_growth=1.0).fit(single, X, Y)
    np.testing.assert_array_equal(theta, single.parameter_vector)


def test_the_safeguards_bound_grows_with_the_weights():
    guard = StepSafeguard(np.zeros(3))
    assert guard.bound() is None
    guard.completed(np.arange(2), 5.0, np.ones(1))
    assert guard.bound() == guard.settings.growth * 5.0
    guard.energy_scale = 4.0
    assert guard.bound() == guard.settings.growth * 20.0


@pytest.mark.parametrize("bad, error, match", [
    (-1.0, ValueError, "penalty_growth"), (np.inf, ValueError, "penalty_growth"), (np.nan, ValueError, "penalty_growth"),
    ("fast", ValueError, "penalty_growth"), (True, TypeError, "penalty_growth"),
    (lambda e: 0.0, ValueError, r"penalty_growth\(0\)"), (lambda e: np.nan, ValueError, r"penalty_growth\(0\)"),
    (lambda e: "x", ValueError, r"penalty_growth\(0\)")])
def test_bad_growth_is_refused_by_name_before_any_work(data, bad, error, match):
    X, Y = data
    network = net()
    before = network.parameter_vector.copy()
    with pytest.raises(error, match=match):
        bs.ImplicitSGD(epochs=2, penalty_growth=bad, **SETTINGS).fit(network, X, Y)
    np.testing.assert_array_equal(network.parameter_vector, before)


def test_a_schedule_going_bad_later_names_its_epoch_and_leaves_the_weights(data):
    X, Y = data
    network = net()
    with pytest.raises(ValueError, match=r"penalty_growth\(2\) must be a finite positive number"):
        bs.ImplicitSGD(epochs=4, penalty_growth=lambda e: 1.0 if e < 2 else -1.0, **SETTINGS).fit(network, X, Y)
    assert network.lambdas == [1.0, 0.5, 2.0] and np.isfinite(network.parameter_vector).all()


def test_ramp_schedule_and_its_checks():
    assert [Ramp(1, 0.5, 2)(e) for e in range(4)] == [1.0, 1.5, 2.0, 2.0]
    assert [Ramp()(e) for e in range(3)] == [1.0, 2.0, 3.0] and repr(Ramp(1, 1, 4)) == "Ramp(1, slope=1, maximum=4)"
    with pytest.raises(ValueError, match="maximum must be at least value"):
        Ramp(2, 1, 1)
    with pytest.raises(ValueError, match="slope"):
        Ramp(1, -1)
    with pytest.raises(TypeError, match="maximum"):
        Ramp(1, 1, "big")
    continuation = PenaltyContinuation(Ramp(1, 1, 3), net())
    assert [continuation.factor_of(e) for e in range(5)] == [1, 2, 3, 3, 3]


def test_copy_does_not_share_the_weights():
    a = net()
    b = a.copy()
    b.lambdas[0] = 7.0
    assert a.lambdas[0] == 1.0


def test_the_estimator_hands_it_to_the_lifted_solvers_only(data):
    X, Y = data
    y = Y.argmax(1)
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=3, penalty_growth=1.0, random_state=0,
                                     batch_size=50).fit(X, y)
    assert clf.history_["penalty_factor"] == [1.0, 2.0, 3.0] and clf.network_.lambdas == [1.0, 1.0]
    bp = LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=2, penalty_growth=1.0, solver="sgd-bp",
                                    random_state=0, batch_size=50).fit(X, y)
    assert "penalty_factor" not in bp.history_
    with pytest.raises(ValueError, match="penalty_growth"):
        LiftedBregmanClassifier(hidden_layer_sizes=(16,), epochs=1, penalty_growth=-2.0).fit(X, y)


def test_partial_fit_runs_the_next_epoch_each_call():
    """Each partial_fit call is the epoch after those done: its own batch order, and the continuation's
    weights grow call by call (a convolutional network, penalty_growth="auto")."""
    rng = np.random.default_rng(2)
    X = rng.random((60, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    clf = LiftedBregmanClassifier(layers=[bs.Conv2d((6, 6, 1), 2, 3), bs.AvgPooled(bs.Dense(8, 3), 2, in_shape=(4, 4, 2))],
                                  output="identity", batch_size=20, inner_iterations=2, random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.history_["epoch"] == [1, 2, 3] and clf.history_["penalty_factor"] == [1.0, 2.0, 3.0]
    assert clf.network_.lambdas == [1.0, 1.0]

