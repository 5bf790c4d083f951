"""The parameter tables (bregman_solvers._params): one table per class, checked once in fit."""
import numbers
import types

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers._params import CallableValue, Interval, Options, shared_constraints, validate_params
from bregman_solvers.regularisers import L1


def check(value, *allowed):
    validate_params(types.SimpleNamespace(p=value), {"p": list(allowed)})


@pytest.mark.parametrize("interval, inside, outside", [
    (Interval(numbers.Integral, 1, None), [1, 7, np.int64(3), 10**12], [0, -1]),
    (Interval(numbers.Real, 0, 1, "left"), [0, 0.5, np.float32(0.99), 0.0], [1, 1.0, -1e-9, np.nan]),
    (Interval(numbers.Real, 0, None, "neither"), [1e-300, 3, np.inf], [0, 0.0, -2, np.nan]),
    (Interval(numbers.Integral, None, -1), [-1, -5], [0, 2]),
])
def test_an_interval_takes_its_kind_between_its_ends(interval, inside, outside):
    for value in inside:
        check(value, interval)
    for value in outside:
        with pytest.raises(ValueError, match=r"^p must be (an int|a number) in .*, got "):
            check(value, interval)
    for value in (True, False, "1", None, [1]):           # never a number: booleans included
        with pytest.raises(TypeError, match="^p must be"):
            check(value, interval)


def test_options_types_and_callables_each_name_what_is_allowed():
    check("auto", Options("auto", "lipschitz"))
    check(None, None, Interval(numbers.Integral, 1, None))
    check(True, bool)
    check(print, CallableValue())
    check("dir", None, str)
    with pytest.raises(ValueError, match=r"^p must be 'auto' or 'lipschitz', got 'paper'$"):
        check("paper", Options("auto", "lipschitz"))
    with pytest.raises(ValueError, match=r"^p must be 'a', 'b' or 'c', got 'd'$"):
        check("d", Options("a", "b", "c"))
    with pytest.raises(TypeError, match=r"^p must be True or False, got 1$"):
        check(1, bool)
    with pytest.raises(TypeError, match=r"^p must be None or a callable, got 3$"):
        check(3, None, CallableValue())
    with pytest.raises(ValueError, match=r"^p must be 'lipschitz', a number in \(0, inf\) or a schedule, got -1$"):
        check(-1, Options("lipschitz"), Interval(numbers.Real, 0, None, "neither"), CallableValue("a schedule"))


def test_every_stochastic_solver_checks_its_table_once_in_fit():
    """Each class's table names every parameter of its signature but the ones checked against the
    network; the subclasses extend ImplicitSGD's, the Dask driver takes its shards' rows from it."""
    import inspect

    from bregman_solvers.distributed import DistributedImplicitSGD

    against_the_network = {"regulariser", "code_regulariser", "validation_data", "code_layer", "random_state",
                           "client"}
    for cls in (bs.ImplicitSGD, bs.StochasticProximalGradient, bs.ModelAveraging, DistributedImplicitSGD,
                bs.ProximalGradient, bs.BlockCoordinateDescent, bs.ADMM, bs.SGDBP, bs.ImplicitSGDBP,
                bs.GradientDescentBP):
        names = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert names - against_the_network <= set(cls._parameter_constraints), cls.__name__
    assert DistributedImplicitSGD._parameter_constraints["momentum"] is bs.ImplicitSGD._parameter_constraints[
        "momentum"]
    assert bs.ModelAveraging._parameter_constraints["n_jobs"]
    # the driver shares ImplicitSGD's rows for every ImplicitSGD setting it takes, and hands them on
    shared = set(inspect.signature(DistributedImplicitSGD.__init__).parameters) & set(
        bs.ImplicitSGD._parameter_constraints)
    assert set(shared_constraints(bs.ImplicitSGD, DistributedImplicitSGD)) == shared
    shard = DistributedImplicitSGD(momentum=0.3, tau=3.0, batch_size=7, callback=print,
                                   theta_metric="euclidean")._shard_solver()
    assert (shard.momentum, shard.tau, shard.batch_size, shard.callback) == (0.3, 3.0, 7, None)
    assert shard.theta_metric == "euclidean" and DistributedImplicitSGD()._shard_solver().theta_metric == "auto"
    X, Y = np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)
    net = bs.LiftedNetwork([3, 4, 2], ["relu", "identity"], dtype="float32")
    for cls, kwargs, error, match in (
            (bs.ImplicitSGD, dict(momentum=1.0), ValueError, r"momentum must be a number in \[0, 1\)"),
            (bs.ImplicitSGD, dict(batch_size=2.5), TypeError, "batch_size must be an int"),
            (bs.ImplicitSGD, dict(aux_start="random"), ValueError, "aux_start must be 'stored' or 'forward'"),
            (bs.ModelAveraging, dict(n_jobs=0), ValueError, "n_jobs must be an int in"),
            (bs.StochasticProximalGradient, dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
            (bs.ProximalGradient, dict(tol=-1e-3), ValueError, r"tol must be a number in \[0, inf\)"),
            (bs.BlockCoordinateDescent, dict(step_scale="big"), TypeError, "step_scale must be a number in"),
            (bs.ADMM, dict(eps=0.0), ValueError, r"eps must be a number in \(0, inf\)"),
            (bs.ADMM, dict(callback=3), TypeError, "callback must be None or a callable"),
            (bs.SGDBP, dict(learning_rate=0), ValueError, r"learning_rate must be a number in \(0, inf\) or a"),
            (bs.SGDBP, dict(drop_last=None), TypeError, "drop_last must be True or False"),
            (bs.ImplicitSGDBP, dict(inner_iterations=0), ValueError, r"inner_iterations must be an int in \[1"),
            (bs.ImplicitSGDBP, dict(tau="big"), TypeError, "tau must be a number in"),
            (bs.GradientDescentBP, dict(chunk_size=0), ValueError, r"chunk_size must be an int in \[1"),
            (bs.GradientDescentBP, dict(n_threads=1.5), TypeError, "n_threads must be")):
        before = net.parameter_vector.copy()
        with pytest.raises(error, match=match):
            cls(**kwargs).fit(net, X, Y)
        np.testing.assert_array_equal(net.parameter_vector, before)          # nothing ran


def test_the_estimators_hand_on_settings_by_the_solvers_own_signatures():
    """settings_for: the estimator's hyper-parameters a solver's constructor names, and nothing
    else; every solver an estimator builds gets every such setting (no list of them is copied)."""
    import inspect

    from bregman_solvers._estimator_solvers import _STOCHASTIC_SOLVERS, _make_solver
    from bregman_solvers._params import settings_for
    from bregman_solvers.estimators import LiftedBregmanClassifier, LiftedEnergyOutlierDetector, SparseAutoencoder

    est = LiftedBregmanClassifier(inner_iterations=7, tau=3.0, tau_theta=0.2, tau_x=0.3, momentum=0.4,
                                  aux_start="stored", learning_rate=0.02, batch_size=17, n_threads=1)
    assert settings_for(bs.SGDBP, est, leave_out=("epochs",)) == dict(
        batch_size=17, learning_rate=0.02, regulariser=None, n_threads=1, random_state=None, verbose=False)
    # the Dask driver too, the parameter step's metric included (its shards run plain ImplicitSGD)
    driver = _make_solver(LiftedBregmanClassifier(n_workers=2, theta_metric="euclidean", tau=3.0), epochs=1)
    assert (driver.theta_metric, driver.tau, driver._shard_solver().theta_metric) == ("euclidean", 3.0, "euclidean")
    for name, cls in _STOCHASTIC_SOLVERS.items():
        solver = _make_solver(est.set_params(solver=name), epochs=4)
        assert isinstance(solver, cls) and solver.epochs == 4
        shared = set(inspect.signature(cls).parameters) & set(est.get_params()) - {"epochs", "random_state",
                                                                                    "regulariser"}
        for setting in shared:
            assert getattr(solver, setting) == getattr(est, setting), (name, setting)
        # the weight decay alpha / n_samples where no regulariser is given (n_samples 1 here), else it
        assert repr(solver.regulariser) == "SquaredL2(alpha=0.08)", name
        given = _make_solver(LiftedBregmanClassifier(solver=name, regulariser=L1(0.1)), epochs=1, n_samples=50)
        assert repr(given.regulariser) == "L1(alpha=0.1)", name
        decayed = _make_solver(LiftedBregmanClassifier(solver=name, alpha=2.0), epochs=1, n_samples=50)
        assert repr(decayed.regulariser) == "SquaredL2(alpha=0.04)", name
        assert _make_solver(LiftedBregmanClassifier(solver=name, alpha=0), epochs=1).regulariser is None, name
    detector = LiftedEnergyOutlierDetector(hidden_layer_sizes=(5, 2, 5), inner_iterations=3, momentum=0.2)
    handed = settings_for(SparseAutoencoder, detector)
    assert handed["hidden_layer_sizes"] == (5, 2, 5) and handed["momentum"] == 0.2
    assert not {"scoring", "x_steps", "contamination"} & set(handed)
