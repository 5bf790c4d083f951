"""Back-propagation baselines of the paper (Section 6): GD-BP (eq. 3), SGD-BP (eq. 20), ISGD-BP (eq. 22).

Our own back-propagation (Algorithm 2) on the same :class:`~bregman_solvers.LiftedNetwork`
parameters and the same output loss as the lifted energy's last term,
``lambda_L mean_i B_L(y_i, z_L^i)`` (the squared error for an identity output, the
cross-entropy for softmax). Forward: one GEMM and one activation pass per layer.
Backward: ``delta_L = lambda_L (sigma_L(z_L) - y) / N`` by the fused Bregman kernel,
``grad_W_l = delta_l^T x_{l-1}``, ``delta_{l-1} = J_sigma(z_{l-1})^T (delta_l W_l)``, all in the
network's workspace (no allocation per batch).
"""
import numpy as np

from .._kernels import _activations, _lifted
from ..regularisers import BregmanIteration, check_code_regulariser, check_regulariser
from ..schedules import BatchScheduler, as_schedule
from .._params import POSITIVE_INT, POSITIVE_REAL, SCHEDULE, validate_params
from ._base import LiftedSolver, with_thread_policy
from ._epochs import EpochLoop
from ._safeguard import GROWTH
from .stochastic import _BatchBuffers

__all__ = ["GradientDescentBP", "SGDBP", "ImplicitSGDBP", "backprop_gradients"]


def backprop_gradients(network, X, target, ws=None, scale=None, code_regulariser=None):
    """Loss and gradients of ``lambda_L mean_i B_L(y_i, z_L^i)`` by back-propagation.

    Writes the gradients into the workspace's ``grad_w`` / ``grad_b``. ``scale``
    replaces ``lambda_L / n_samples`` (to accumulate a full-batch gradient over
    chunks). With a :class:`~bregman_solvers.regularisers.CodeL1`, the activity
    penalty ``alpha mean_i |x_code^i|_1`` is added (its subgradient ``alpha sign(x)``
    enters the back-propagated delta of the code layer). Returns the loss summed
    over the samples.
    """
    n = X.shape[0]
    ws = network.workspace(n) if ws is None else ws
    L = network.n_layers
    acts = [X]
    split = network._product_split()
    for l in range(L):
        network._preactivation(l, network._inputs(l, acts), ws.z[l])
        if l < L - 1:
            act = network.activations[l]
            act(ws.z[l], out=ws.v[l], n_threads=network._threads(ws.z[l]), check_finite=False)
            acts.append(ws.v[l])
    last = network.activations[-1]
    # delta_L = sigma_L(z_L) - y and the per-sample loss, in one pass
    _activations.bregman_loss_grad(last.kind, last.param, target, ws.z[L - 1], ws.residual[L - 1],
                                   ws.loss[L - 1], network._threads(ws.z[L - 1]))
    loss = float(np.sum(ws.loss[L - 1], dtype=np.float64)) * network.lambdas[-1]
    factor = network.lambdas[-1] / n if scale is None else scale
    code = code_regulariser
    if code is not None:
        loss += code.alpha * float(np.abs(acts[code.layer]).sum())
    ws.residual[L - 1] *= factor
    # the deltas of the hidden layers receive the back terms of every layer that reads them
    for h in range(L - 1):
        ws.residual[h].fill(0.0)
    for l in range(L - 1, -1, -1):
        delta, op = ws.residual[l], network.layers[l]
        op.weight_gradient(delta, network._inputs(l, acts), ws.grad_w[l], 1.0, 0.0, split)
        op.bias_gradient(delta, ws.grad_b[l])
        for j, source in enumerate(op.sources):
            if l - source >= 0:
                op.adjoint(delta, network.weights[l], j, ws.residual[l - source], 1.0, split)
        if l > 0:
            prev = ws.residual[l - 1]
            if code is not None and code.layer == l:
                # d/dx of alpha |x|_1 (mean over samples, scaled like the loss)
                prev += (code.alpha * factor / network.lambdas[-1]) * np.sign(acts[l])
            act = network.activations[l - 1]
            _lifted.backprop_activation(act.kind, act.param, ws.z[l - 1], prev, network._threads(prev))
    return loss


class _BPSolver:
    """Common hyper-parameters and the parameter update of the back-propagation baselines."""

    #: What each parameter may be (:mod:`bregman_solvers._params`), checked once at the start of
    #: ``fit``; each baseline's table extends it. ``regulariser`` and ``code_regulariser`` are
    #: checked against the network, ``random_state`` by the batch scheduler.
    _parameter_constraints = {
        **LiftedSolver._parameter_constraints,
        "learning_rate": [POSITIVE_REAL, SCHEDULE],
        "epochs": [POSITIVE_INT],
        "track_energy": [bool],
        "early_stopping": [bool],
        "patience": [POSITIVE_INT],
    }

    def __init__(self, learning_rate, epochs, regulariser, validation_data, track_energy, code_layer,
                 early_stopping, patience, callback, verbose, code_regulariser=None, n_threads=None):
        self.n_threads = n_threads
        self.code_regulariser = code_regulariser
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.regulariser = regulariser
        self.validation_data = validation_data
        self.track_energy = track_energy
        self.code_layer = code_layer
        self.early_stopping = early_stopping
        self.patience = patience
        self.callback = callback
        self.verbose = verbose

    def _prepare(self, network, X, target):
        from ..network import LiftedNetwork

        if not isinstance(network, LiftedNetwork):
            raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
        validate_params(self, self._parameter_constraints)
        check_regulariser(self.regulariser)
        if self.code_regulariser is not None:
            check_code_regulariser(self.code_regulariser, network)
        return network.check_data(X, target)

    def _step(self, network, grad_w, grad_b, lr, loop, anchor=None, tau=None, loss=0.0):
        """theta <- theta - lr grad (+ proximity to ``anchor``), through the regulariser (grads overwritten).

        A non-finite gradient or ``loss`` (the batch's, at the current parameters), or a loss grown
        past :data:`~bregman_solvers.solvers._safeguard.GROWTH`
        times the fit's first, raises the fit's divergence before anything is applied (parameters
        that blew up but are still finite: the lifted solvers' bound, without their back-off)."""
        reg = self.regulariser
        if loop.first_loss is None:
            loop.first_loss = loss
        grown = loss > GROWTH * max(loop.first_loss, 1.0)
        if grown or not np.isfinite(loss) or not all(np.isfinite(g).all() for g in grad_w + grad_b):
            loop.raise_divergence((lr, None, tau))     # nothing applied: the last finite parameters stay
        for l in range(network.n_layers):
            gw, gb = grad_w[l], grad_b[l]
            if anchor is not None:
                for g, cur, ref in ((gw, network.weights[l], anchor[0][l]), (gb, network.biases[l], anchor[1][l])):
                    g *= tau
                    g += cur
                    g -= ref
                    g *= 1.0 / tau
            gb *= lr
            network.biases[l] -= gb
            if isinstance(reg, BregmanIteration):
                reg.step(network.weights[l], gw, lr, loop.bregman_state.v[l])
                continue
            gw *= lr
            network.weights[l] -= gw
            if reg is not None:
                reg.prox(network.weights[l], lr, out=network.weights[l])
        if not all(np.isfinite(p).all() for p in network.weights + network.biases):
            loop.raise_divergence((lr, None, tau))


class SGDBP(_BPSolver):
    """Mini-batch stochastic gradient descent with back-propagation (eq. 20), "SGD-BP".

    Parameters
    ----------
    batch_size : int, default 100
    learning_rate : float or schedule, default 0.1
    epochs : int, default 10
    regulariser : L1, SquaredL2, Nuclear, BregmanIteration or None
        Applied to the weights by its prox after each step (or a linearised
        Bregman step).
    code_regulariser : CodeL1 or None
        The activity penalty ``alpha |x_code|_1`` on a hidden layer's activations,
        the back-propagation counterpart of the lifted code regulariser.
    shuffle, drop_last, random_state, validation_data, track_energy, code_layer,
    early_stopping, patience, callback, verbose
        As in :class:`~bregman_solvers.ImplicitSGD`; ``history["energy"]`` is not
        recorded (there are no auxiliary variables), the training loss is.
    """

    _parameter_constraints = {
        **_BPSolver._parameter_constraints,
        "batch_size": [POSITIVE_INT],
        "shuffle": [bool],
        "drop_last": [bool],
    }

    def __init__(self, batch_size=100, learning_rate=0.1, epochs=10, regulariser=None, code_regulariser=None,
                 shuffle=True, drop_last=False, random_state=None, validation_data=None, track_energy=False,
                 code_layer=None, early_stopping=False, patience=5, callback=None, verbose=False, n_threads=None):
        super().__init__(learning_rate, epochs, regulariser, validation_data, track_energy, code_layer,
                         early_stopping, patience, callback, verbose, code_regulariser, n_threads)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.random_state = random_state

    @with_thread_policy
    def fit(self, network, X, target, initial_epoch=0, bregman_state=None):
        """Train ``network`` on ``(X, target)``; returns a :class:`~bregman_solvers.FitResult`."""
        X, target = self._prepare(network, X, target)
        lr = as_schedule(self.learning_rate, "learning_rate")
        loop = EpochLoop(self, network, X, target, None, bregman_state)
        scheduler = BatchScheduler(X.shape[0], self.batch_size, self.shuffle, self.drop_last, self.random_state)
        buffers = {}

        def run_epoch(epoch, progress):
            rate = lr(epoch)
            losses = []
            for idx in scheduler.epoch(epoch):
                size = len(idx)
                if size not in buffers:
                    buffers[size] = _BatchBuffers(network, size)
                buf = buffers[size]
                np.take(X, idx, axis=0, out=buf.x0)
                np.take(target, idx, axis=0, out=buf.target)
                losses.append(self._batch(network, buf, rate, loop, epoch) / size)
                progress.update(1)
            return float(np.mean(losses))

        return loop.run(run_epoch, len(scheduler), initial_epoch, self.epochs)

    def _batch(self, network, buf, rate, loop, epoch):
        ws = network.workspace(buf.x0.shape[0])
        loss = backprop_gradients(network, buf.x0, buf.target, ws, code_regulariser=self.code_regulariser)
        self._step(network, ws.grad_w, ws.grad_b, rate, loop, loss=loss)
        return loss


class ImplicitSGDBP(SGDBP):
    """Implicit SGD with back-propagation (eq. 22), "ISGD-BP".

    For every batch, ``inner_iterations`` gradient steps (back-propagation) on
    ``loss_B(theta) + |theta - theta^k|^2 / (2 tau)``, started at ``theta^k``.

    Parameters
    ----------
    inner_iterations : int, default 10
    tau : float or schedule, default 1.0
    learning_rate : float or schedule, default 0.1
        The inner step.
    Other parameters as :class:`SGDBP`.
    """

    _parameter_constraints = {
        **SGDBP._parameter_constraints,
        "inner_iterations": [POSITIVE_INT],
        "tau": [POSITIVE_REAL, SCHEDULE],
    }

    def __init__(self, batch_size=100, inner_iterations=10, tau=1.0, learning_rate=0.1, epochs=10,
                 regulariser=None, code_regulariser=None, shuffle=True, drop_last=False, random_state=None,
                 validation_data=None, track_energy=False, code_layer=None, early_stopping=False, patience=5,
                 callback=None, verbose=False, n_threads=None):
        super().__init__(batch_size=batch_size, learning_rate=learning_rate, epochs=epochs, regulariser=regulariser,
                         code_regulariser=code_regulariser,
                         shuffle=shuffle, drop_last=drop_last, random_state=random_state,
                         validation_data=validation_data, track_energy=track_energy, code_layer=code_layer,
                         early_stopping=early_stopping, patience=patience, callback=callback, verbose=verbose, n_threads=n_threads)
        self.inner_iterations = inner_iterations
        self.tau = tau

    def _prepare(self, network, X, target):
        prepared = super()._prepare(network, X, target)        # the table checked there
        self._n_inner = int(self.inner_iterations)
        self._tau = as_schedule(self.tau, "tau")
        return prepared

    def _batch(self, network, buf, rate, loop, epoch):
        ws = network.workspace(buf.x0.shape[0])
        anchor = network.get_parameters()
        tau = self._tau(epoch)
        first = None
        for _ in range(self._n_inner):
            loss = backprop_gradients(network, buf.x0, buf.target, ws, code_regulariser=self.code_regulariser)
            first = loss if first is None else first
            self._step(network, ws.grad_w, ws.grad_b, rate, loop, anchor, tau, loss)
        return first


class GradientDescentBP(_BPSolver):
    """Full-batch gradient descent with back-propagation (eq. 3), "GD-BP".

    One step per epoch on the loss of all samples; the gradient is accumulated over
    chunks of ``chunk_size`` rows, so memory stays bounded for any data size.

    Parameters
    ----------
    learning_rate : float or schedule, default 0.1
    epochs : int, default 100
        Number of gradient steps.
    chunk_size : int, default 1000
    Other parameters as :class:`SGDBP`.
    """

    _parameter_constraints = {**_BPSolver._parameter_constraints, "chunk_size": [POSITIVE_INT]}

    def __init__(self, learning_rate=0.1, epochs=100, chunk_size=1000, regulariser=None, code_regulariser=None,
                 validation_data=None, track_energy=False, code_layer=None, early_stopping=False, patience=5,
                 callback=None, verbose=False, n_threads=None):
        super().__init__(learning_rate, epochs, regulariser, validation_data, track_energy, code_layer,
                         early_stopping, patience, callback, verbose, code_regulariser, n_threads)
        self.chunk_size = chunk_size

    @with_thread_policy
    def fit(self, network, X, target, initial_epoch=0, bregman_state=None):
        """Train ``network``; see :meth:`SGDBP.fit`."""
        X, target = self._prepare(network, X, target)
        chunk = min(int(self.chunk_size), X.shape[0])
        lr = as_schedule(self.learning_rate, "learning_rate")
        loop = EpochLoop(self, network, X, target, None, bregman_state)
        n = X.shape[0]
        acc_w = [np.empty_like(w) for w in network.weights]
        acc_b = [np.empty_like(b) for b in network.biases]

        def run_epoch(epoch, progress):
            loss = 0.0
            scale = network.lambdas[-1] / n        # the mean over all n samples, chunk by chunk
            for acc in acc_w + acc_b:
                acc.fill(0)
            for a in range(0, n, chunk):
                xb, yb = X[a:a + chunk], target[a:a + chunk]
                ws = network.workspace(xb.shape[0])
                loss += backprop_gradients(network, xb, yb, ws, scale=scale, code_regulariser=self.code_regulariser)
                for acc, g in zip(acc_w + acc_b, ws.grad_w + ws.grad_b):
                    acc += g
            self._step(network, acc_w, acc_b, lr(epoch), loop, loss=loss)
            progress.update(1)
            return loss / n

        return loop.run(run_epoch, 1, initial_epoch, self.epochs)
