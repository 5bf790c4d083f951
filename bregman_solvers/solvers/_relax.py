"""The lifted energy of samples under fixed parameters: the auxiliary variables relaxed for them.

With theta fixed, the lifted energy (eq. 13 / 25) of a sample depends only on its auxiliary
variables, and over them it is a sum of Bregman penalties that the proximal-gradient x-steps of
the solvers decrease (MATH.md, "x-step"): starting from the forward pass (where every hidden
penalty is 0 and the energy is the output loss, the reconstruction error of an autoencoder), a
few steps find auxiliary variables that explain the sample more cheaply. What remains measures how
far the network is from explaining the sample at all, layer by layer: the anomaly score of
:class:`~bregman_solvers.estimators.LiftedEnergyOutlierDetector` (the paper's outlook, Section 7).
"""
import numpy as np

from .._validation import check_integer
from .._threads import fit_threads
from ._engine import StepEngine

__all__ = ["relaxed_energy"]

#: Halvings of the x-step allowed when a step raises the energy (the block bound is per layer;
#: the layers' steps are taken together)
MAX_HALVINGS = 30


def relaxed_energy(network, X0, target, n_steps=20, n_threads=None):
    """Per sample and layer, the lifted energy at auxiliary variables relaxed with theta fixed.

    ``n_steps`` proximal-gradient steps on the hidden layers' auxiliary variables alone, from
    the forward pass, with the per-layer step ``1 / L_x`` of MATH.md's block bound (the layers
    step together, so a step that raises the rows' mean energy is undone and retried halved:
    the energy never increases). The network is not changed. Memory: the network's workspace
    and the auxiliary variables of ``X0.shape[0]`` rows (twice); chunk the rows of large inputs.

    Parameters
    ----------
    network : LiftedNetwork
    X0 : array-like of shape (n_samples, n_0)
    target : array-like of shape (n_samples, n_L)
        The output layer's variable: the input itself for an autoencoder.
    n_steps : int, default 20
        0 gives the energy of the forward pass: with the Bregman penalty, the output loss alone.
    n_threads : int or None
        The most threads (None: the network's, else the usable cores), as in a fit.

    Returns
    -------
    terms : ndarray of shape (n_samples, n_layers), float64
        ``lambda_l B_l(x_l, z_l)`` per sample (eq. 13's summands); their row sums are the
        samples' energies.
    state : LiftedState
        The relaxed auxiliary variables.
    """
    n_steps = check_integer(n_steps, "n_steps", minimum=0)
    X0, target = network.check_data(X0, target)
    with fit_threads(network.n_threads if n_threads is None else n_threads):
        state = network.init_state(X0)
        engine = StepEngine(network, X0, target, state)
        # a layer whose readers have W = 0 has no smooth coupling: any step is a descent; cap it
        tau_x = np.minimum(1.0 / np.maximum(engine.x_lipschitz(), 1e-12), 1e6) if n_steps else None
        # one pass per step: the energy at the iterate and the argument of its x-step together
        energy = engine.total(engine.evaluate(tau_x))
        previous = [h.copy() for h in state.hidden] if n_steps else []

        def back_to_previous():
            for h, p in zip(state.hidden, previous):
                np.copyto(h, p)
            engine.forget_inputs()

        for _ in range(n_steps):
            for h, p in zip(state.hidden, previous):
                np.copyto(p, h)
            engine.apply_x(tau_x)
            new = engine.total(engine.evaluate(tau_x))
            halvings = 0
            while not new <= energy and halvings < MAX_HALVINGS:
                back_to_previous()                               # the iterate again, half the step
                tau_x, halvings = 0.5 * tau_x, halvings + 1
                engine.evaluate(tau_x, energy=False)
                engine.apply_x(tau_x)
                new = engine.total(engine.evaluate(tau_x))
            if not new <= energy:                                # no smaller step helps: stay
                back_to_previous()
                engine.evaluate()
                break
            energy = new
    terms = np.stack([np.asarray(loss, dtype=np.float64) * lam
                      for loss, lam in zip(engine.ws.loss, network.lambdas)], axis=1)
    return terms, state
