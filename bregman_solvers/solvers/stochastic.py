"""Stochastic lifted solvers: implicit SGD (Algorithm 1) and the stochastic prox-gradient (model
averaging, which runs the same batches from one anchor: :mod:`bregman_solvers.solvers.averaging`).

They keep the auxiliary variables of **all** samples (in the network's dtype,
``n_samples x sum of hidden widths``), initialised by a forward pass, and sweep
over seeded mini-batches once per epoch.
"""
import numbers

import numpy as np

from .._params import POSITIVE_INT, POSITIVE_REAL, SCHEDULE, Interval, Options, is_auto, validate_params
from .._validation import check_parameter_vector
from ..schedules import BatchScheduler, as_schedule
from ._base import LiftedSolver, with_thread_policy
from ._engine import StepEngine
from ._metric import METRIC_OPTIONS, check_input_metric, resolved_metric
from ._epochs import EpochLoop
from ._stop import STOP, StopAtBatch, check_position
from ._batches import AlgorithmOneBatches, StepRule, _BatchBuffers, auto_steps, parameters_finite
from ._continuation import PenaltyContinuation, resolved_growth
from ._safeguard import Safeguard

__all__ = ["ImplicitSGD", "StochasticProximalGradient"]


class ImplicitSGD(LiftedSolver):
    """Implicit stochastic gradient descent on the lifted energy: Algorithm 1 (eq. 24), "LBN".

    Every epoch the samples are shuffled (seeded) into batches. For batch B the
    solver takes ``inner_iterations`` (K) proximal-gradient steps on::

        min_{theta, X_B}  E_B(theta, X_B) + |theta - theta^k|^2 / (2 tau),

    started at ``theta^k`` and the stored ``X_B``, then writes ``theta^{k+1}`` and ``X_B``
    back. Steps follow MATH.md's scaling convention: ``tau_theta`` on the mean batch
    energy, ``tau_x`` per sample; neither depends on the batch size. With
    ``batch_size = n_samples`` this is the deterministic variant (LBN-D).

    Parameters
    ----------
    batch_size : int, default 100
    inner_iterations : int, default 10
        K, the proximal-gradient steps per batch.
    epochs : int, default 10
    tau : float, schedule or "auto", default "auto"
        Weight of the proximity term (``inf`` switches it off). ``"auto"`` is 10 with Euclidean
        parameter steps and 100 in the input metric (``theta_metric``), where the proximity's
        curvature ``I / tau`` adds to each layer's metric and 1/10 holds the dense layers back
        (LeNet-5, 10,000 MNIST images, 3 epochs: 94.0% test accuracy at 100, 92.5% at 10;
        docs/layers.rst). :meth:`steps_for` says what it is on a network.
    tau_theta : float, schedule or "auto", default "auto"
        The parameter step. ``"auto"`` takes, per layer and epoch, ``min(0.5, 1.5 / L_theta_l)``
        (``1 / L_theta_l`` with momentum)
        from the layer's Lipschitz bound on this data (see :func:`auto_theta_steps`): safe on
        data of any scale. With the forward start and no momentum it reaches 97.6% test accuracy
        on MNIST after 4 epochs (98.3% after 20) and 87.0% on Fashion-MNIST (relu layers of width
        784, batch 100, K = 10, ``tau = 10``), where a fixed 0.5 reaches 97.8% on MNIST but wrecks
        the output layer on Fashion-MNIST (10% after an epoch); from stored variables 0.5 gave
        96.2% on MNIST and halved itself four times on Fashion-MNIST (docs/results.rst).
        ``"lipschitz"`` takes ``1 / L_theta_l`` exactly, uncapped: the paper's rule (Section 6.1
        sets the steps "to ensure convexity of J in (16)", i.e. ``tau_theta <= 1 / L_theta``;
        its numbers are lost from the text). Numbers and schedules (callables of the epoch, see
        :mod:`bregman_solvers.schedules`) are used as given. With ``theta_metric="input"``,
        ``"auto"`` is 0.25 and ``"lipschitz"`` 1 for every layer (the metric bounds each block's
        curvature; 0.25 with ``tau="auto"``'s 100 reached 94.0% where 0.5 reached 93.6% and
        needed a recovery; with ``tau = 10``, 0.5 is the better one).
    theta_metric : {"auto", "euclidean", "input"}, default "auto"
        The metric of the parameter step. ``"input"``: each layer's step is a damped Gauss-Newton
        step in the metric of its input's second moments (its patch matrix's for a convolution,
        ``bregman_solvers/solvers/_metric.py``), so that badly conditioned layers (convolutions)
        take steps of the same order as the others; no regulariser but a weight decay; Dense,
        Conv2d, AvgPooled and Residual layers; the steps one call at a time (not the
        compiled K steps). On
        10,000 MNIST images LeNet-5 reached 92.8% test accuracy after 3 epochs against 88.9% in the
        Euclidean metric (docs/layers.rst); with ``tau=100, tau_theta=0.25`` (the defaults'
        ``"auto"`` in this metric) 94.0%. ``"auto"`` (:meth:`metric_for`): ``"input"`` for a network with
        a convolution that allows it, else ``"euclidean"``.
    tau_x : float, schedule, "auto" or "lipschitz", default "auto"
        The auxiliary variables' step. ``"auto"``: 0.5 for a network of dense layers, 0.1 for one
        with another operator (a convolution, pooling, a residual block), where 0.5 fails on
        LeNet-5 and 0.05-0.2 learn (docs/layers.rst). ``"lipschitz"``: per hidden layer and epoch ``1 / L_x_l``
        from the weights at the epoch's start (:meth:`~bregman_solvers.LiftedNetwork.x_lipschitz`, the same convexity
        condition in the x blocks).
    splitting : {"phi", "smooth"}
        See :class:`ProximalGradient`.
    regulariser, code_regulariser
        Regularisation of the weights and of one hidden layer's auxiliary variable.
    shuffle, drop_last : bool
        Batch scheduling (see :class:`~bregman_solvers.schedules.BatchScheduler`).
    random_state : int or None
        Seed of the shuffling; the same seed gives the same fit.
    validation_data : (X, target), optional
        Evaluated every epoch: output loss, and accuracy (one-hot targets) or
        reconstruction MSE.
    track_energy : bool, default False
        Also record every epoch the full-data energy (``history["energy"]``), the
        training loss and accuracy, and the diagnostics linear-activation rates and
        consistency (on up to 2,000 samples): one forward pass over the training data
        per epoch (its share of an epoch is in docs/performance.rst). By default an
        epoch records only what costs nothing: the running energy of its batches
        (``history["batch_energy"]``: the mean over the epoch's batches of each batch's
        energy before its steps), seconds, validation metrics (with
        ``validation_data``) and the lifted code's sparsity (a count over the
        auxiliary variables).
    code_layer : int, optional
        Hidden layer whose sparsity is recorded (default: the code regulariser's).
    early_stopping : bool, default False
        Stop when the validation loss (else the training loss) has not improved by
        more than 0.01% for ``patience`` epochs; the parameters of the best epoch are
        restored.
    patience : int, default 5
    callback : callable, optional
        ``callback(result)`` after every epoch; return True to stop.
    verbose : bool
        A tqdm progress bar over the batches of each epoch.
    n_threads : int or None
        The most threads the fit uses, BLAS included (None: the network's
        ``n_threads``, and if that is None too the usable cores that no other fit of
        this process holds). During the fit BLAS runs one thread and the library
        splits the products over its own threads (docs/performance.rst, "Threads");
        the results do not depend on this number.
    safeguard : bool or Safeguard, default True
        Make divergence a non-event (a :class:`~bregman_solvers.Safeguard` sets its bound,
        floor and undo depth; True is its defaults): a batch whose steps blow up is retried from its
        anchor with halved steps, and a batch that starts diverged undoes the batch
        before it (its auxiliary variables re-initialised by a forward pass); the
        halving persists for the rest of the fit (``history["step_factor"]``,
        ``history["recoveries"]``; the epoch's base steps per layer before that factor are
        ``history["tau_theta"]`` and ``history["tau_x"]``) and the first one warns
        (:class:`~bregman_solvers.exceptions.DivergenceWarning`). A
        :class:`~bregman_solvers.exceptions.DivergenceError` is raised only when the
        steps fall below 2^-20 of their values (or at once with ``safeguard=False``,
        and with a :class:`~bregman_solvers.regularisers.BregmanIteration`
        regulariser, whose subgradients cannot be rolled back).
    aux_start : {"forward", "stored"}, default "forward"
        Where a batch's auxiliary variables start its K steps. ``"stored"``: where its last
        visit left them (Algorithm 1 as the paper states it; in the first epoch, the
        forward pass of the initial network). ``"forward"``: the forward pass of the
        current theta^k, taken by the batch's first evaluation from the products it computes
        anyway (dense layers; other operators: one forward pass per batch). The forward start learns more per epoch, most of all in the first
        epochs, where the stored variables belong to a network long gone: on MNIST 96% is
        reached after 2 epochs instead of 4 (:doc:`/stochastic`, "Where a batch starts").
        The stored variables are still updated, so both can be mixed across fits. For the
        paper's Algorithm 1 as it states it, pass ``aux_start="stored", momentum=0`` with its step
        rule ``tau_theta="lipschitz", tau_x="lipschitz"`` (the command line's ``--preset paper``).
    momentum : float in [0, 1), default 0.7
        beta of the inertial step between batches: batch k runs its K steps from, and with the
        proximity term to, ``y^k = theta^k + beta (theta^k - theta^{k-1})`` instead of
        theta^k, where theta^{k-1} is the previous batch's result (the inertial proximal point
        method of Alvarez and Attouch, applied to Algorithm 1's batch problems, which are
        stochastic proximal-point steps). One fused pass over the parameters per batch. The
        first batch of a fit starts without velocity; a recovery of the safeguard restarts it
        and halves beta with the steps. With momentum, ``tau_theta="auto"`` takes ``1 / L``
        instead of ``1.5 / L`` (the extrapolation enlarges the move; at 1.5 the training loss of
        small data sets jumped between epochs). Measured on MNIST: 96.5% test accuracy after
        one epoch instead of 95.6% (:doc:`/stochastic`, "Momentum between batches"); 0.8 loses
        accuracy and 0.9 diverges on Fashion-MNIST. 0 is Algorithm 1 as the paper states it.
    penalty_growth : float >= 0, schedule or "auto", default "auto"
        A penalty continuation: in epoch ``e`` (0-based) the hidden layers' penalty weights are
        ``lambda_l (1 + penalty_growth * e)`` (a schedule: ``lambda_l * penalty_growth(e)``, e.g.
        :class:`~bregman_solvers.schedules.Ramp`); the output layer's stays. As they grow, the
        auxiliary variables are held ever closer to the network's activations: the quadratic
        penalty method's continuation (:class:`PenaltyContinuation
        <bregman_solvers.solvers._continuation.PenaltyContinuation>`). During the fit
        ``network.lambdas`` hold the epoch's weights (steps, energies and callbacks see them) and
        are restored on return; a resumed fit is exact. ``history["penalty_factor"]`` has each
        epoch's factor. 0 is the paper's (constant weights). ``"auto"`` (:meth:`growth_for`):
        ``Ramp(1, 1, 4)`` (1, 2, 3, 4, 4, ...) for a network with a layer other than a dense one, 0
        for a dense network. LeNet-5 on the full data, 20 epochs (docs/layers.rst): MNIST passed 98%
        test accuracy in epoch 4 instead of 7 and ended at 98.65% (constant weights: 97.7%),
        Fashion-MNIST at 87.4% (85.9%); weights growing without a bound fell back on Fashion-MNIST
        (84.6% after 11 epochs).
    """

    _fixed_inner = None
    _no_proximity = False

    #: What each parameter may be (:mod:`bregman_solvers._params`), checked once per fit; the
    #: subclasses and the Dask driver build theirs from it. ``regulariser``, ``code_regulariser``,
    #: ``validation_data``, ``code_layer`` and ``random_state`` are checked against the network.
    _parameter_constraints = {
        **LiftedSolver._parameter_constraints,
        "batch_size": [POSITIVE_INT],
        "inner_iterations": [POSITIVE_INT],
        "epochs": [POSITIVE_INT],
        "tau": [Options("auto"), POSITIVE_REAL, SCHEDULE],
        "tau_theta": [Options("auto", "lipschitz"), POSITIVE_REAL, SCHEDULE],
        "tau_x": [Options("auto", "lipschitz"), POSITIVE_REAL, SCHEDULE],
        "splitting": [Options("phi", "smooth")],
        "theta_metric": [Options(*METRIC_OPTIONS)],
        "shuffle": [bool],
        "drop_last": [bool],
        "track_energy": [bool],
        "early_stopping": [bool],
        "patience": [POSITIVE_INT],
        "safeguard": [bool, Safeguard],
        "aux_start": [Options("stored", "forward")],
        "momentum": [Interval(numbers.Real, 0, 1, "left")],
        "penalty_growth": [Options("auto"), Interval(numbers.Real, 0, None, "left"), SCHEDULE],
    }

    def __init__(self, batch_size=100, inner_iterations=10, epochs=10, tau="auto", tau_theta="auto", tau_x="auto",
                 splitting="phi", regulariser=None, code_regulariser=None, shuffle=True, drop_last=False,
                 random_state=None, validation_data=None, track_energy=False, code_layer=None,
                 early_stopping=False, patience=5, callback=None, verbose=False, n_threads=None, safeguard=True,
                 aux_start="forward", momentum=0.7, theta_metric="auto", penalty_growth="auto"):
        super().__init__(callback=callback, verbose=verbose, n_threads=n_threads)
        self.theta_metric = theta_metric
        self.penalty_growth = penalty_growth
        self.safeguard = safeguard
        self.aux_start = aux_start
        self.momentum = momentum
        self.batch_size = batch_size
        self.inner_iterations = inner_iterations
        self.epochs = epochs
        self.tau = tau
        self.tau_theta = tau_theta
        self.tau_x = tau_x
        self.splitting = splitting
        self.regulariser = regulariser
        self.code_regulariser = code_regulariser
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.random_state = random_state
        self.validation_data = validation_data
        self.track_energy = track_energy
        self.code_layer = code_layer
        self.early_stopping = early_stopping
        self.patience = patience

    # ------------------------------------------------------------------ set-up
    def _validate(self, network=None):
        """Every parameter against the class's table, once per fit before any work (a schedule
        is also called at epoch 0); returns :meth:`_settings`."""
        validate_params(self, self._parameter_constraints)
        PenaltyContinuation.checked(self.penalty_growth)      # finite, and a schedule's value at epoch 0
        if network is None:
            return None
        if self.theta_metric == "input":
            check_input_metric(network, self.regulariser)
        return self._settings(network)

    def metric_for(self, network):
        """The parameter step's metric on ``network``, ``"euclidean"`` or ``"input"``:
        ``theta_metric``, where ``"auto"`` is ``"input"`` for a network with a layer other than
        :class:`~bregman_solvers.operators.Dense` whose layers and regulariser allow it (LeNet-5, the
        residual networks; not an operator without a design matrix, not an l1 regulariser) and
        ``"euclidean"`` otherwise."""
        return resolved_metric(self.theta_metric, network, self.regulariser)

    def steps_for(self, network):
        """``(tau, tau_x)`` as this solver takes them on ``network``: ``"auto"`` resolved
        (:func:`~bregman_solvers.solvers._batches.auto_steps`: tau 10 with Euclidean parameter
        steps and 100 in the input metric; tau_x 0.5 for a dense network and 0.1 for one with
        another operator), anything else as given."""
        auto_tau, auto_tau_x = auto_steps(network, self.metric_for(network))
        return (auto_tau if is_auto(self.tau) else self.tau, auto_tau_x if is_auto(self.tau_x) else self.tau_x)

    def growth_for(self, network):
        """``penalty_growth`` as this solver takes it on ``network``: ``"auto"`` resolved
        (:func:`~bregman_solvers.solvers._continuation.auto_growth`), anything else as given."""
        return resolved_growth(self.penalty_growth, network)

    def _settings(self, network):
        """``(K, tau schedule or None, tau_theta rule, tau_x rule)`` of the validated parameters on
        ``network`` (``"auto"`` resolved for it: :meth:`steps_for`)."""
        n_inner = self._fixed_inner or int(self.inner_iterations)
        tau, tau_x = self.steps_for(network)
        if self._no_proximity or tau == np.inf:
            tau = None
        else:
            tau = as_schedule(tau, "tau")
        return (n_inner, tau, StepRule.checked(self.tau_theta, ("auto", "lipschitz"), "tau_theta"),
                StepRule.checked(tau_x, ("lipschitz",), "tau_x"))

    @with_thread_policy
    def fit(self, network, X0, target, state=None, initial_epoch=0, bregman_state=None,
            previous_parameters=None, position=None):
        """Train ``network`` on ``(X0, target)``.

        Parameters
        ----------
        network : LiftedNetwork
            Updated in place.
        X0 : array-like of shape (n_samples, n_0)
        target : array-like of shape (n_samples, n_L)
        state : LiftedState, optional
            Auxiliary variables of all samples (default: a forward pass); updated in place.
        initial_epoch : int, default 0
            Epoch to start from when resuming from a checkpoint (the batches of an
            epoch depend only on ``random_state`` and the epoch number).
        bregman_state : BregmanState, optional
            The subgradient variables of a :class:`~bregman_solvers.regularisers.BregmanIteration`
            regulariser, when resuming.
        previous_parameters : ndarray, optional
            theta^{k-1} of the momentum (a flat vector like ``network.parameter_vector``), when
            resuming: the resumed fit then continues exactly like the uninterrupted one. Without
            it the first batch starts without velocity.
        position : dict, optional
            Where an interrupted fit stopped inside epoch ``initial_epoch`` (its result's
            ``position``, or a checkpoint's): the epoch continues after the batches it had done,
            with the steps it had, and its ``batch_energy`` counts them too.

        Returns
        -------
        FitResult
            ``history`` has one entry per epoch (see :class:`~bregman_solvers.solvers.FitResult`);
            ``previous_parameters`` is the momentum's theta^{k-1} after the last completed batch
            (None without momentum), for a checkpoint. A fit stopped at a batch boundary
            (:func:`~bregman_solvers.solvers._stop.request_stop`, the command line's Ctrl-C) has
            ``interrupted`` True and ``position`` (the batches done in epoch ``epoch``, their
            energies and the epoch's steps): ``fit(..., initial_epoch=result.epoch,
            position=result.position, state=result.state, previous_parameters=...)`` then
            continues exactly like the uninterrupted fit.
        """
        self._validate(network)
        X0, target, state = self._prepare(network, X0, target, state)
        loop = EpochLoop(self, network, X0, target, state, bregman_state)
        scheduler = BatchScheduler(X0.shape[0], self.batch_size, self.shuffle, self.drop_last, self.random_state)
        if not parameters_finite(network):
            raise ValueError("the network's parameters are not finite")
        batches = AlgorithmOneBatches(self, network, X0, target, state, loop.bregman_state, loop.raise_divergence)
        if previous_parameters is not None:
            batches.previous = check_parameter_vector(network, previous_parameters, "previous_parameters")
        loop.result_fields["previous_parameters"] = lambda: None if batches.previous is None else \
            batches.previous.copy()
        loop.resumable_batches = True
        start = check_position(position, len(scheduler), network.n_layers)

        def run_epoch(epoch, progress):
            todo, offset, done, steps = scheduler.epoch(epoch), 0, [], None
            if start is not None and epoch == initial_epoch:
                # resumed inside this epoch: its remaining batches, with the steps it started with
                offset, done, steps = start["batch"], start["energies"], start["steps"]
                todo = todo[offset:]
                progress.update(offset)
            if steps is None:
                steps = batches.epoch_steps(epoch)
            else:
                batches.guard.recoveries = 0
                batches.begin_epoch(epoch)
            # a stop asked for while the epoch started (or the last one was evaluated): before its first batch
            STOP.check(offset, done, steps)
            try:
                energies = done + batches.run(todo, steps, progress)
            except StopAtBatch as stop:
                raise StopAtBatch(offset + stop.batch, done + stop.energies, steps) from None
            loop.extra["step_factor"], loop.extra["recoveries"] = batches.guard.factor, batches.guard.recoveries
            # the epoch's base steps (a rule's per-layer values), before the safeguard's factor
            loop.extra["tau_theta"], loop.extra["tau_x"] = [float(t) for t in steps[0]], [float(t) for t in steps[1]]
            if batches.penalties.active:
                loop.extra["penalty_factor"] = batches.penalties.factor
            return float(np.mean(energies))

        try:
            return loop.run(run_epoch, len(scheduler), initial_epoch, self.epochs)
        finally:
            batches.penalties.restore()
            # the field's function holds the batch runner, which holds the loop (its
            # raise_divergence): a cycle that would keep the safeguard's parameter copies and the
            # step engines (5-6 parameter vectors) alive until the garbage collector's next full
            # pass, so that every fit's buffers were fresh memory, faulted in page by page
            loop.result_fields.clear()

    def _batch_engine(self, network, size, bregman_state=None, w_scale=None):
        """Buffers and step engine for batches of ``size`` samples."""
        buf = _BatchBuffers(network, size)
        engine = StepEngine(network, buf.x0, buf.target, buf.state, self.splitting, self.regulariser,
                            self.code_regulariser, bregman_state, w_scale, self.metric_for(network))
        return buf, engine

    def batch_steps(self, batch):
        """Algorithm 1's inner solve of one batch: K proximal-gradient steps (eq. 17) on the batch
        problem (eq. 24) from ``batch.anchor`` = theta^k; returns the batch energy before them.

        The batch runner calls it once per batch with a
        :class:`~bregman_solvers.solvers.BatchProblem`; a subclass may override it to
        watch or change a batch's inner solve (call ``super().batch_steps(batch)`` for the steps
        themselves). The Dask shards run plain ImplicitSGD.

        The proximity term to the anchor is used when ``batch.tau`` is not None. Only the first
        pass computes the penalties (the energy reported for the batch); the others compute just
        residuals. The weights are normalised after the K steps unless ``batch.keep_scale``. A
        divergence is caught by the energy (first pass) or by the check of the parameters (unless
        ``batch.check_parameters`` is False: the next batch's start energy checks them) and
        auxiliary variables after the K steps: on a non-finite value the parameters are reset to
        the anchor (the last finite iterate) and :meth:`BatchProblem.diverged
        <bregman_solvers.solvers.BatchProblem.diverged>` raises. A start energy above
        ``batch.bound`` counts as a divergence too (see ``_safeguard``). With
        ``batch.forward_start`` the batch's auxiliary variables start from the forward pass of the
        anchor, taken by the first evaluation
        (:meth:`~bregman_solvers.solvers._engine.StepEngine.evaluate`).
        """
        engine, t_theta, t_x, tau = batch.engine, batch.tau_theta, batch.tau_x, batch.tau
        start, start_scale = batch.anchor, batch.anchor_scale
        energy = engine.total(engine.evaluate(t_x, forward=batch.forward_start))
        if not np.isfinite(energy) or (batch.bound is not None and energy > batch.bound):
            engine.normalise_weights()
            batch.diverged(at_start=True)
        if engine.fused_steps_apply(t_theta, tau):
            engine.proximal_steps(batch.n_inner, t_theta, t_x, start if tau is not None else None, tau, start_scale)
        else:
            # each x-step but the last is taken by the next iteration's layer passes, on rows in cache
            defer_x = engine.x_step_deferrable
            for k in range(batch.n_inner):
                if k > 0:
                    engine.evaluate(t_x, energy=False, pending_x=t_x if defer_x else None)
                # the first step starts at theta^k itself, where the proximity term's gradient is 0:
                # no pull towards the anchor is needed (one pass over all parameters saved per batch)
                anchor = start if tau is not None and k > 0 else None
                engine.theta_step(t_theta, anchor=anchor, tau_prox=tau, anchor_scale=start_scale)
                if not defer_x or k == batch.n_inner - 1:
                    engine.apply_x(t_x)
        if not batch.keep_scale:
            engine.normalise_weights()
        # (a stop requested during the steps ends the run after this batch: no next batch checks them)
        if not engine.iterate_finite(parameters=batch.check_parameters or STOP.pending):
            engine.restore_parameters(start, start_scale)
            engine.normalise_weights()
            batch.diverged()
        return energy


class StochasticProximalGradient(ImplicitSGD):
    """Stochastic proximal gradient (Section 4.2.1): one step in ``X_B`` and ``theta`` per batch.

    Implicit SGD with one inner iteration and no proximity term: for every batch,
    one proximal step in its auxiliary variables and one stochastic gradient step in
    the parameters, from the same iterate. Parameters as :class:`ImplicitSGD`
    (``inner_iterations`` and ``tau`` are fixed to 1 and off; a batch's auxiliary variables
    start where its last visit left them, ``aux_start="stored"``; ``tau_theta`` defaults to 0.5 and
    ``penalty_growth`` to 0).
    """

    _fixed_inner = 1
    _no_proximity = True

    def __init__(self, batch_size=100, epochs=10, tau_theta=0.5, tau_x="auto", splitting="phi", regulariser=None,
                 code_regulariser=None, shuffle=True, drop_last=False, random_state=None, validation_data=None,
                 track_energy=False, code_layer=None, early_stopping=False, patience=5, callback=None,
                 verbose=False, n_threads=None, safeguard=True, penalty_growth=0.0):
        super().__init__(batch_size=batch_size, inner_iterations=1, epochs=epochs, tau=np.inf, tau_theta=tau_theta,
                         tau_x=tau_x, splitting=splitting, regulariser=regulariser,
                         code_regulariser=code_regulariser, shuffle=shuffle, drop_last=drop_last,
                         random_state=random_state, validation_data=validation_data, track_energy=track_energy,
                         code_layer=code_layer, early_stopping=early_stopping, patience=patience,
                         callback=callback, verbose=verbose, n_threads=n_threads, safeguard=safeguard,
                         aux_start="stored", momentum=0.0, penalty_growth=penalty_growth)
