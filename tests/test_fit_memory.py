"""A fit's buffers are freed when it returns, not when the garbage collector next runs.

A reference cycle through a fit's objects (the batch runner, its safeguard's parameter copies,
the step engines' workspaces) keeps them alive until Python's cyclic collector makes a full
pass: repeated fits (an epoch at a time, ``partial_fit``-style loops, Dask rounds, a grid
search) then hold several parameter vectors each and fault fresh memory in on every fit (on a
784-784-784-784-10 float64 network, a quarter of a 20-batch epoch's time). Reference counting
alone must free them, so no object of the package may be left in a cycle after a fit.
"""
import gc
import warnings

import numpy as np
import pytest

import bregman_solvers as bs
from bregman_solvers.estimators import LiftedBregmanClassifier

FAST = dict(batch_size=20, epochs=2, random_state=0)
SOLVERS = {
    "ImplicitSGD": lambda: bs.ImplicitSGD(inner_iterations=3, **FAST),
    "ImplicitSGD-momentum": lambda: bs.ImplicitSGD(inner_iterations=3, momentum=0.5, **FAST),
    "StochasticProximalGradient": lambda: bs.StochasticProximalGradient(**FAST),
    "ModelAveraging": lambda: bs.ModelAveraging(inner_iterations=3, **FAST),
    "ProximalGradient": lambda: bs.ProximalGradient(max_iter=3),
    "BlockCoordinateDescent": lambda: bs.BlockCoordinateDescent(max_iter=3),
    "ADMM": lambda: bs.ADMM(max_iter=3),
    "SGDBP": lambda: bs.SGDBP(**FAST),
    "ImplicitSGDBP": lambda: bs.ImplicitSGDBP(**FAST),
    "GradientDescentBP": lambda: bs.GradientDescentBP(epochs=2),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.random((60, 20)), np.eye(3)[rng.integers(0, 3, 60)]


def _left_in_cycles(run):
    """The package's objects that ``run()`` leaves in reference cycles (found by a full collection)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return sorted({type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("bregman_solvers")})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("name", list(SOLVERS))
def test_a_fit_leaves_nothing_in_reference_cycles(name):
    X, Y = _data()
    solver = SOLVERS[name]()
    net = bs.LiftedNetwork([20, 8, 3], ["relu", "identity"], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # ConvergenceWarning of the short deterministic fits
        solver.fit(net, X, Y)                     # the first fit imports what the solver imports lazily
        assert _left_in_cycles(lambda: solver.fit(net, X, Y)) == []


def test_a_diverged_fit_leaves_nothing_in_reference_cycles():
    X, Y = _data()
    net = bs.LiftedNetwork([20, 8, 3], ["relu", "identity"], random_state=0)
    solver = bs.ImplicitSGD(inner_iterations=3, tau_theta=1e12, tau_x=1e12, safeguard=False, **FAST)

    def diverge():
        with pytest.raises(bs.DivergenceError):
            solver.fit(net.copy(), X * 1e6, Y)

    diverge()
    assert _left_in_cycles(diverge) == []


def test_the_estimator_leaves_nothing_in_reference_cycles():
    X, Y = _data()
    clf = LiftedBregmanClassifier(hidden_layer_sizes=(8,), epochs=2, batch_size=20, random_state=0)
    clf.fit(X, Y.argmax(axis=1))
    assert _left_in_cycles(lambda: clf.fit(X, Y.argmax(axis=1))) == []
