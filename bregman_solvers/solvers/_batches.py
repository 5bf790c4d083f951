"""Algorithm 1's batches (eq. 22-24) on one network: the batch buffers, the ``tau_theta="auto"`` step
rule and :class:`AlgorithmOneBatches`, the loop :class:`~bregman_solvers.ImplicitSGD` runs for an epoch
and a data-parallel shard (:mod:`bregman_solvers.distributed`) for a round."""
from collections import deque

import numpy as np

from .._kernels import _lifted
from .._threads import current_threads
from ..exceptions import DivergenceError
from ..network import LiftedState
from ..regularisers import BregmanIteration
from ..schedules import as_schedule
from ._continuation import PenaltyContinuation
from ._engine import normalise_weights
from ._metric import dense_only
from ._epochs import divergence_error
from ._safeguard import StepSafeguard
from ._stop import STOP

__all__ = ["AlgorithmOneBatches", "BatchProblem", "auto_steps", "auto_theta_steps", "parameters_finite"]


class _BatchBuffers:
    """Gathered copies of one batch (input, target, auxiliary variables), reused every batch."""

    def __init__(self, network, size):
        dt = network.dtype
        self.x0 = np.empty((size, network.widths[0]), dt)
        self.target = np.empty((size, network.widths[-1]), dt)
        self.hidden = [np.empty((size, w), dt) for w in network.widths[1:-1]]
        self.state = LiftedState(self.hidden)

    def gather(self, idx, X0, target, state):
        for dst, src in [(self.x0, X0), (self.target, target), *zip(self.hidden, state.hidden)]:
            np.take(src, idx, axis=0, out=dst)

    def scatter(self, idx, state):
        for src, dst in zip(self.hidden, state.hidden):
            dst[idx] = src


def parameters_finite(network):
    """Whether every parameter is finite: one read of the parameter vector by BLAS (see ``_lifted.abs_sum``)."""
    return bool(np.isfinite(_lifted.abs_sum(network.parameter_vector)))


#: Cap, multiple of ``1 / L_theta_l`` (without and with momentum) and sample size of ``tau_theta="auto"``.
AUTO_TAU_THETA_CAP = 0.5
AUTO_STEP_MULTIPLE = 1.5
#: ``tau_theta="auto"`` with ``theta_metric="input"``: a quarter of the Gauss-Newton step (LeNet-5,
#: 10,000 MNIST images, 3 epochs, with ``tau="auto"``'s 100: 94.0% test accuracy against 93.6% and a
#: recovery at 0.5; with ``tau = 10``, 0.5 was the better one, 92.3 against 91.5%: docs/layers.rst)
INPUT_METRIC_STEP = 0.25
AUTO_STEP_MULTIPLE_WITH_MOMENTUM = 1.0
AUTO_SAMPLE_ROWS = 2000


def auto_theta_steps(network, X0, state, tau=None, multiple=AUTO_STEP_MULTIPLE, cap=AUTO_TAU_THETA_CAP):
    """Per-layer ``min(0.5, multiple / L_theta_l)`` with ``L_theta_l = lambda_l (|X_{l-1}|_2^2 / m + 1) + 1 / tau``
    (for any operator ``|dA_l/dW_l|_2^2`` in place of ``|X_{l-1}|_2^2``, see
    :meth:`~bregman_solvers.operators.Operator.input_norm_sq`).

    Given the auxiliary variables, the batch problem separates over the layers' parameters,
    and each layer's block (W_l, b_l) is convex with an ``L_theta_l``-Lipschitz gradient (the
    block bound of MATH.md on the mean energy, plus the proximity term's ``1 / tau``): a
    gradient step on it decreases the energy for any step below ``2 / L_theta_l``, and
    ``1.5 / L_theta_l`` keeps a quarter of that as a margin for what the bound does not see
    (the auxiliary variables move in the same iteration; a batch's norm exceeds the sample's).
    The spectral norm is estimated by power iterations on the first :data:`AUTO_SAMPLE_ROWS`
    rows of the layer inputs (data and lifted state) and raised by 5% (power iterations
    approach it from below). Safe on data of any scale. Measured (docs/stochastic.rst, "Where
    a batch starts"): ``1 / L`` learns less per epoch, ``2 / L`` oscillates on small data.
    With momentum between batches the extrapolation already enlarges each move, and
    :class:`ImplicitSGD` passes ``multiple = 1`` (:data:`AUTO_STEP_MULTIPLE_WITH_MOMENTUM`):
    at 1.5 the training loss of small data sets jumped from epoch to epoch ("Momentum between
    batches").

    Parameters
    ----------
    network : LiftedNetwork
    X0 : ndarray of shape (n_samples, n_features)
    state : LiftedState
        The auxiliary variables (the inputs of layers 2..L).
    tau : float or None
        Weight of the proximity term (None or ``inf``: none).
    multiple : float, default 1.5
        The step as a multiple of ``1 / L_theta_l`` (below 2 for a descent step).
    cap : float, default 0.5
        The largest step (``inf``: none, the paper's rule ``tau_theta="lipschitz"``).
    """
    m = min(AUTO_SAMPLE_ROWS, X0.shape[0])
    chain = [X0[:m]] + [h[:m] for h in state.hidden]
    proximity = 0.0 if tau is None else 1.0 / tau
    steps = np.empty(network.n_layers)
    for l, op in enumerate(network.layers):
        # |dA_l / dW_l|^2 on the sample: |X_{l-1}|_2^2 for a dense layer
        est, _ = op.input_norm_sq(network._inputs(l, chain), None, 20)
        lipschitz = network.lambdas[l] * (1.05 * est / m + 1.0) + proximity
        steps[l] = min(cap, multiple / lipschitz)
    return steps


#: The largest step ``tau_x="lipschitz"`` takes (where the layers reading ``x_l`` have weights near zero)
LIPSCHITZ_TAU_X_CAP = 1e3


def lipschitz_x_steps(network, splitting):
    """Per hidden layer ``1 / L_x_l`` (:meth:`~bregman_solvers.LiftedNetwork.x_lipschitz`): the
    largest step for which ``|x_l|^2 / (2 tau_x) - F`` stays convex in the block ``x_l``, the
    condition under which the paper sets its steps (Section 6.1, "to ensure convexity of J in
    (16)"), at most :data:`LIPSCHITZ_TAU_X_CAP`."""
    bounds = network.x_lipschitz(splitting)
    return np.minimum(LIPSCHITZ_TAU_X_CAP, 1.0 / np.maximum(bounds, 1.0 / LIPSCHITZ_TAU_X_CAP))


#: ``tau="auto"``: the proximity weight by the parameter step's metric. In the input metric the
#: proximity's curvature ``I / tau`` adds to each layer's metric, where 1/10 damps the dense layers'
#: steps (LeNet-5, 10,000 MNIST images, 3 epochs: 94.0% test accuracy at 100 against 92.5% at 10;
#: docs/layers.rst, "Steps in the metric of each layer's input")
AUTO_TAU = {"euclidean": 10.0, "input": 100.0}
#: ``tau_x="auto"``: the auxiliary variables' step, 0.5 for a dense network and 0.1 for one with
#: another operator (0.5 fails on LeNet-5, where 0.05-0.2 learn: docs/layers.rst)
AUTO_TAU_X_DENSE, AUTO_TAU_X_OPERATORS = 0.5, 0.1


def auto_steps(network, metric):
    """``(tau, tau_x)`` that ``tau="auto"`` and ``tau_x="auto"`` stand for on ``network`` with the
    parameter step in ``metric`` (``"euclidean"`` or ``"input"``): :data:`AUTO_TAU` and
    :data:`AUTO_TAU_X_DENSE` or :data:`AUTO_TAU_X_OPERATORS`."""
    return AUTO_TAU[metric], AUTO_TAU_X_DENSE if dense_only(network) else AUTO_TAU_X_OPERATORS


class StepRule:
    """A fit's step sizes, decided once per fit (:class:`ImplicitSGD`'s ``tau_theta``, ``tau_x``,
    ``tau``): numbers and schedules as given, or per-layer steps from Lipschitz bounds.

    ``tau_theta``: ``"auto"`` (the library's rule, ``min(0.5, m / L_theta_l)`` with ``m`` 1.5,
    or 1 with momentum), ``"lipschitz"`` (the paper's, ``1 / L_theta_l`` uncapped) or a schedule;
    ``tau_x``: ``"lipschitz"`` (``1 / L_x_l``, :func:`lipschitz_x_steps`) or a schedule; ``tau``: a
    schedule or None (no proximity term). :meth:`for_epoch` gives an epoch's base steps.
    """

    def __init__(self, tau_theta, tau_x, tau, momentum, splitting, metric="euclidean"):
        self.tau_theta, self.tau_x, self.tau, self.splitting = tau_theta, tau_x, tau, splitting
        self.metric = metric
        self.multiple = AUTO_STEP_MULTIPLE_WITH_MOMENTUM if momentum else AUTO_STEP_MULTIPLE
        #: whether a divergence reports every layer's step (the rules give one per layer)
        self.theta_per_layer = isinstance(tau_theta, str)
        self.x_per_layer = isinstance(tau_x, str)

    @staticmethod
    def checked(value, rules, name):
        """The step ``name`` as given: one of the named ``rules`` (any other string refused by name),
        else a schedule (a number or a callable of the epoch)."""
        if isinstance(value, str):
            if value not in rules:
                raise ValueError(f"{name} must be a positive number, a schedule or one of "
                                 f"{', '.join(map(repr, rules))}, got {value!r}")
            return value
        return as_schedule(value, name)

    def for_epoch(self, epoch, network, X0, state, w_scale):
        """``(tau_theta per layer, tau_x per hidden layer, tau or None)`` of epoch ``epoch``: the
        bounds of a rule estimated now, on this data and the weights at the epoch's start (the
        weights held scaled by ``w_scale`` are made explicit first)."""
        L = network.n_layers
        tau = None if self.tau is None else self.tau(epoch)
        if self.metric == "input" and isinstance(self.tau_theta, str):
            # the input metric bounds each block's curvature: t = 1 is its Gauss-Newton step
            theta = np.full(L, INPUT_METRIC_STEP if self.tau_theta == "auto" else 1.0)
        elif self.tau_theta == "lipschitz":
            theta = auto_theta_steps(network, X0, state, tau, 1.0, np.inf)
        elif self.tau_theta == "auto":
            theta = auto_theta_steps(network, X0, state, tau, self.multiple)
        else:
            theta = np.full(L, self.tau_theta(epoch))
        if self.tau_x == "lipschitz":
            normalise_weights(network, w_scale)
            x = lipschitz_x_steps(network, self.splitting)
        else:
            x = np.full(L - 1, self.tau_x(epoch))
        return theta, x, tau

    def reported(self, t_theta, t_x, tau):
        """The steps a divergence message names: per layer where a rule set them, else the one value."""
        return (t_theta if self.theta_per_layer else t_theta[0], t_x if self.x_per_layer else t_x[0], tau)


class BatchProblem:
    """One batch's sub-problem (eq. 24), as :class:`AlgorithmOneBatches` hands it to
    :meth:`~bregman_solvers.ImplicitSGD.batch_steps`.

    Attributes
    ----------
    engine : StepEngine
        The batch's problem (its rows gathered, the network's parameters at ``anchor``).
    indices : ndarray of int
        The batch's rows in the training data.
    n_inner : int
        K, the inner steps.
    tau_theta, tau_x : ndarray
        This batch's steps (per layer, per hidden layer), the safeguard's factor applied.
    tau : float or None
        The proximity term's weight (None: no proximity term).
    anchor, anchor_scale : ndarray
        theta^k as a flat parameter vector and the scales its weights carry (see
        :meth:`~bregman_solvers.solvers._engine.StepEngine.theta_step`).
    keep_scale : bool
        Leave the weights scaled after the steps (the runner keeps them so between batches).
    bound : float or None
        A start energy above it counts as a divergence (the safeguard's bound).
    forward_start : bool
        The batch's auxiliary variables start from the forward pass of theta^k.
    check_parameters : bool
        Check the parameters for non-finite values after the steps. The runner leaves it to the
        next batch when one follows and the safeguard is on: non-finite parameters make that
        batch's start energy non-finite, and the safeguard then undoes this batch (one read of
        every parameter per batch saved).
    """

    __slots__ = ("engine", "indices", "n_inner", "tau_theta", "tau_x", "tau", "anchor", "anchor_scale",
                 "keep_scale", "bound", "forward_start", "check_parameters", "_reported", "_raise")

    def __init__(self, engine, indices, n_inner, tau_theta, tau_x, tau, anchor, anchor_scale=None,
                 keep_scale=False, bound=None, forward_start=False, reported=None, raise_divergence=None,
                 check_parameters=True):
        self.engine, self.indices, self.n_inner = engine, indices, n_inner
        self.tau_theta, self.tau_x, self.tau = tau_theta, tau_x, tau
        self.anchor, self.anchor_scale, self.keep_scale = anchor, anchor_scale, keep_scale
        self.bound, self.forward_start, self.check_parameters = bound, forward_start, check_parameters
        self._reported = (tau_theta, tau_x, tau) if reported is None else reported
        self._raise = raise_divergence

    def diverged(self, at_start=False):
        """Raise the fit's :class:`~bregman_solvers.exceptions.DivergenceError` for this batch's steps
        (``at_start``: its start energy was non-finite or past the bound, so the batch before it is
        what diverged); the runner backs off and retries (see :class:`AlgorithmOneBatches`)."""
        if self._raise is None:
            raise divergence_error(self._reported, None, at_start=at_start)
        self._raise(self._reported, at_start=at_start)


class AlgorithmOneBatches:
    """Algorithm 1's batches on one network, its data and their auxiliary variables.

    What :class:`ImplicitSGD` runs for an epoch and a data-parallel worker
    (:mod:`bregman_solvers.distributed`) for a round on its shard: for each batch,
    gather its rows, take the K inner steps from the anchor theta^k (eq. 24), scatter
    its auxiliary variables back; a divergence backs off through the
    :class:`~bregman_solvers.solvers._safeguard.StepSafeguard`. Buffers and engines
    are kept per batch size, so consecutive calls reuse them.

    Parameters
    ----------
    solver : ImplicitSGD
        The hyper-parameters (steps, K, splitting, regularisers, safeguard).
    network, X0, target, state
        Updated in place: the parameters and the auxiliary variables of the batches run.
    bregman_state : BregmanState, optional
    raise_divergence : callable
        ``raise_divergence(steps, at_start=False)`` raises the fit's
        :class:`~bregman_solvers.exceptions.DivergenceError`.
    """

    def __init__(self, solver, network, X0, target, state, bregman_state, raise_divergence):
        self.solver = solver
        # the solver's parameters were checked by its fit (or the Dask driver's) before any work
        self.n_inner, tau, tau_theta, tau_x = solver._settings(network)
        self.momentum = float(solver.momentum)
        self.steps = StepRule(tau_theta, tau_x, tau, self.momentum, solver.splitting,
                              solver.metric_for(network))
        self.network, self.X0, self.target, self.state = network, X0, target, state
        self.bregman_state = bregman_state
        self.raise_divergence = raise_divergence
        self.forward_start = solver.aux_start == "forward"
        # theta^{k-1} of the inertial step (None: the next batch starts the momentum afresh)
        self.previous = None
        self.buffers, self.engines = {}, {}
        L = network.n_layers
        # the weights' scales of the scaled proximity step, shared by the engines of all batch
        # sizes: between batches the weights stay scaled, and the anchor is copied with them
        self.w_scale, self.anchor_scale = np.ones(L), np.ones(L)
        # the parameter vector as segments W_1, b_1, W_2, b_2, ... (the inertial step's scales)
        starts = network.layer_bounds[:-1]
        self._segments = np.append(np.column_stack([starts, starts + [op.n_weights for op in network.layers]]),
                                   network.layer_bounds[-1]).astype(np.intp)
        self._segment_scales = np.ones(2 * L)
        # divergence backs off and halves the steps (Bregman iterations' subgradients cannot be rolled back)
        self.guard = StepSafeguard(network.parameter_vector, False if isinstance(
            solver.regulariser, BregmanIteration) else solver.safeguard)
        self.penalties = PenaltyContinuation(solver.penalty_growth, network)

    def begin_epoch(self, epoch):
        """The penalty weights of epoch ``epoch`` (the penalty continuation,
        :class:`~bregman_solvers.solvers._continuation.PenaltyContinuation`), set on the network and
        told to the safeguard (its bound scales with them); returns their factor."""
        factor = self.penalties.apply(epoch)
        self.guard.energy_scale = max(1.0, factor)
        return factor

    def epoch_steps(self, epoch):
        """The base steps of epoch ``epoch`` (:meth:`StepRule.for_epoch`): per-layer ``tau_theta``,
        per-layer ``tau_x`` and ``tau`` (None: no proximity term), after :meth:`begin_epoch` (the
        step rules read the penalty weights). Starts the epoch's count of recoveries
        (``guard.recoveries``)."""
        self.guard.recoveries = 0
        self.begin_epoch(epoch)
        return self.steps.for_epoch(epoch, self.network, self.X0, self.state, self.w_scale)

    def run(self, batches, steps, progress=None):
        """Run ``batches`` (index arrays into ``X0``) in order with the base ``steps`` of
        :meth:`epoch_steps`; returns each batch's energy before its steps. The weights are
        explicit (normalised) when it returns or raises. A stop requested through
        :func:`~bregman_solvers.solvers._stop.request_stop` ends it after the current batch with
        :class:`~bregman_solvers.solvers._stop.StopAtBatch`."""
        energies = []
        queue = deque(batches)
        try:
            with STOP.watching():
                self._run_queue(queue, steps, energies, progress)
        finally:
            # explicit weights between calls (metrics, callbacks, averaging) and after an error
            normalise_weights(self.network, self.w_scale)
        return energies

    def _run_queue(self, queue, steps, energies, progress):
        base_theta, base_x, t_prox = steps
        network, guard, w_scale, anchor_scale = self.network, self.guard, self.w_scale, self.anchor_scale
        total = len(queue)
        while queue:
            idx = queue.popleft()
            t_theta, t_x = base_theta * guard.factor, base_x * guard.factor
            reported = self.steps.reported(t_theta, t_x, t_prox)
            buf, engine = self._engine(len(idx))
            buf.gather(idx, self.X0, self.target, self.state)
            engine.new_batch()
            # theta^k: the anchor, and the fallback on divergence, with the scales its weights
            # carry; the inertial step writes it in its own pass, else a BLAS copy (on BLAS's
            # awake threads)
            anchor = guard.anchor
            if not (self.momentum and self._extrapolate(anchor)):
                _lifted.copy(network.parameter_vector, anchor)
            anchor_scale[:] = w_scale
            # keep the scales across batches when every step takes the scaled form: saves
            # the pass over the weights that multiplies them back in
            keep_scale = engine.step_form(t_theta, t_prox) == "scaled"
            try:
                # with the forward start the batch's variables start from the forward pass of theta^k
                # (not where its last visit left them), taken by the first evaluation
                first = self.solver.batch_steps(BatchProblem(
                    engine, idx, self.n_inner, t_theta, t_x, t_prox, anchor, anchor_scale, keep_scale,
                    guard.bound(), self.forward_start, reported, self.raise_divergence,
                    check_parameters=not (guard.enabled and queue)))
            except DivergenceError as error:
                self.restart_momentum()               # the velocity led here: start afresh
                if error.at_start:
                    # the previous batch's steps blew the parameters up (its own check of them may
                    # have been left to this start): undo it, redo both; undone first, so that a fit
                    # that stops here keeps that batch's finite anchor
                    undone = guard.undo_previous(network, engine, self.X0, self.state, failing=idx)
                    guard.back_off(error)             # raises at the floor (or without the safeguard)
                    if undone is None:
                        raise
                    queue.appendleft(idx)
                    if undone is not guard.SNAPSHOT:
                        queue.extendleft(reversed(undone))    # the oldest first
                else:
                    guard.back_off(error)
                    queue.appendleft(idx)             # the anchor is back: retry the batch
                continue
            energies.append(first)
            buf.scatter(idx, self.state)
            guard.completed(idx, first, anchor_scale)
            if progress is not None:
                progress.update(1)
            # after a completed batch the queue holds the epoch's remaining batches in order
            STOP.check(total - len(queue), energies, steps)

    def _extrapolate(self, anchor):
        """The inertial step: theta^k becomes the anchor ``y^k = theta^k + beta (theta^k - theta^{k-1})``,
        written to the parameters and to ``anchor`` in one pass; returns whether it wrote ``anchor``
        (not on the first batch of a velocity, which only remembers theta^k).

        ``beta`` is the momentum times the safeguard's factor: a recovery halves it with the steps
        (the velocity, not only the step, can be what diverges)."""
        theta = self.network.parameter_vector
        if self.previous is None:
            normalise_weights(self.network, self.w_scale)      # the velocity is one of explicit weights
            self.previous = theta.copy()
            return False
        # the weights held scaled (W_l / s_l, kept so between batches) are made explicit in the
        # extrapolation's own pass: segments W_1, b_1, W_2, ... with scales s_1, 1, s_2, ...
        self._segment_scales[0::2] = self.w_scale
        _lifted.extrapolate(theta, self.previous, self.momentum * self.guard.factor, current_threads() or 1,
                            anchor, self._segments, self._segment_scales)
        self.w_scale[:] = 1.0
        return True

    def restart_momentum(self):
        """Forget the velocity: the next batch starts from theta^k itself."""
        self.previous = None

    def _engine(self, size):
        if size not in self.buffers:
            self.buffers[size], self.engines[size] = self.solver._batch_engine(
                self.network, size, self.bregman_state, self.w_scale)
        return self.buffers[size], self.engines[size]
