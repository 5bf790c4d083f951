"""The driver of a data-parallel fit: :class:`DistributedImplicitSGD` (its shards on the workers:
``_shards``; their average: ``_reduce``)."""
import math

import numpy as np

from .._params import POSITIVE_INT, Options, settings_for, shared_constraints, validate_params
from .._validation import check_integer
from ..network import LiftedNetwork
from ..regularisers import BregmanIteration
from ..solvers._base import LiftedSolver, with_thread_policy
from ..solvers._epochs import EpochLoop, divergence_error
from ..solvers._stop import STOP
from ..solvers._batches import parameters_finite
from ..solvers._continuation import PenaltyContinuation
from ..solvers.stochastic import ImplicitSGD

from ._cluster import _import_distributed, _is_dask_array, dask_client
from ._reduce import Traffic, average_on_workers
from ._shards import _Shards


#: Batches per shard between two averagings by default with ``averaging="shard"``: on full MNIST
#: with 2 workers, 5 epochs, seeds 0-3, 0.8 / 0.3 / 0.6 / 0.2 points below the single process (mean
#: 0.48), where every 60 batches was 1.3 / 0.1 / 1.5 / 0.1 (mean 0.75; docs/scaling.rst). A data
#: set with fewer batches per shard averages once per epoch.
DEFAULT_SYNC_EVERY = 20

#: The fewest batches a shard holds by default: with less data per shard the shards overlap
#: (:func:`~bregman_solvers.distributed._shards.shard_rows`; docs/scaling.rst, "Small data")
DEFAULT_MIN_SHARD_BATCHES = 50

#: What of the driver's ImplicitSGD settings stays on the driver: its epoch loop's data, callable,
#: seed (each shard gets its own) and thread cap. Every other setting of ImplicitSGD the driver
#: takes is handed to the shards' ImplicitSGD by name (a setting added to ImplicitSGD reaches them)
DRIVER_ONLY = ("random_state", "validation_data", "callback", "verbose", "n_threads")


class DistributedImplicitSGD(LiftedSolver):
    """Implicit SGD (Algorithm 1) data-parallel on a Dask cluster: iterative parameter mixing.

    The samples are split into shards, one per worker (a seeded random split into near-equal
    parts for NumPy data, scattered once; for a ``dask.array`` chunked by rows, the chunks each
    worker already holds). Each shard keeps its auxiliary variables on its worker. A round:
    the driver sends theta once (to one worker; the others fetch it from there), each shard
    runs its next ``sync_every`` batches of Algorithm 1 (eq. 24) from it, and the new theta is
    the average of the shards' parameters weighted by the samples each processed, formed on the
    workers in a fixed tree of pairwise sums (only the average comes to the driver: two copies
    of theta through it per round, whatever the number of shards). One epoch is every shard's
    batches once.

    Parameters
    ----------
    n_workers : int, optional
        Shards (and, without a client, worker processes). Default: the client's workers, or
        the usable cores.
    sync_every : int, "epoch" or None, default None
        Batches per shard between two averagings. None: :data:`DEFAULT_SYNC_EVERY` (20) with
        ``averaging="shard"``, ``"epoch"`` with ``averaging="batch"`` (eq. 23).
    averaging : {"shard", "batch"}, default "shard"
        "shard": each shard's batches follow one another within a round (iterative parameter
        mixing). "batch": every batch starts from the round's theta and theta becomes the
        average over the round's batches; with ``sync_every="epoch"`` this is eq. 23
        (:class:`~bregman_solvers.ModelAveraging`).
    client : distributed.Client, optional
        Run on this client's cluster.
    scheduler : str, optional
        Address of a running scheduler (e.g. ``"tcp://host:8786"``), when no client is given.
    threads_per_worker : int, optional
        Threads of each worker of a new LocalCluster (default: cores / workers, at least 1);
        also the threads of each shard's passes unless ``n_threads`` is given.
    aux_storage : {"memory", "memmap"}, default "memory"
        Keep each shard's auxiliary variables in memory-mapped files (in ``aux_dir``, a
        temporary folder on the worker by default) so a worker can hold more samples than its
        memory (docs/scaling.rst measures the cost).
    aux_dir : str, optional
    dashboard : bool, default False
        Start a new LocalCluster's dashboard (on a free port).
    n_threads : int, optional
        Threads of each shard's passes (default: its worker's threads).
    momentum : float in [0, 1), default 0.7
        The inertial step between a shard's batches (see :class:`~bregman_solvers.ImplicitSGD`).
        A single shard keeps its velocity (its theta is not averaged), so one worker is
        ImplicitSGD exactly. With ``averaging="batch"`` every batch starts from the round's
        theta without velocity.
    velocity : {"restart", "average"}, default "restart"
        The momentum's velocity across an averaging, with several shards. "restart": every
        round starts without velocity. "average": the shards also keep their theta^{k-1}, which
        is averaged (on the workers) with the same weights as theta and sent back, and every
        shard goes on with the velocity of the average (twice the bytes per round). It won
        only on 20,000 images averaging every 10 batches; on full MNIST it ended lower
        (97.0 against 97.3% every 10 batches, 96.6 against 97.6% every 60: docs/scaling.rst).
        A shard's own velocity is never carried over the jump to the averaged theta (so it
        diverged: 400 samples, 2 shards, averaging every epoch).
    min_shard_batches : int or None, default :data:`DEFAULT_MIN_SHARD_BATCHES` (50)
        The fewest batches a shard of NumPy data holds. Where an even split leaves fewer, each
        shard is instead ``min(n_samples, min_shard_batches * batch_size)`` samples of the
        seeded permutation, the shards overlapping (on small data, each shard is all of it, in
        its own batch order): an epoch then costs each worker that many batches, and the
        averaged fit keeps the accuracy of one process, where an even split of small data
        fell behind it (docs/scaling.rst, "Small data"). None: always the even split. Large
        data are not affected (full MNIST at batch 100 has 600 batches: 12 shards or fewer).
    Other parameters
        As :class:`~bregman_solvers.ImplicitSGD`; ``random_state`` seeds the split and each
        shard's batches, so a fit is reproducible for a seed and a number of workers. The driver
        is not an ImplicitSGD: it holds the settings of the ImplicitSGD every shard runs
        (all but :data:`DRIVER_ONLY`), validated once per fit by that ImplicitSGD, and its own
        ``fit`` (no ``state``: the auxiliary variables live on the workers). A ``penalty_growth``
        changes the penalty weights of the shards' network copies epoch by epoch; the driver's
        ``network.lambdas`` stay as given (``history["penalty_factor"]`` has the factor).

    Notes
    -----
    A worker lost during a round costs only its shard's contribution to that round: the
    shard is re-created on a live worker (its samples sent again, their auxiliary variables
    re-initialised by a forward pass from the current theta), training continues, and
    ``history["worker_losses"]`` and the result's ``events`` record it. A script that starts a
    LocalCluster must guard its entry point with ``if __name__ == "__main__":`` (the workers are
    spawned processes).
    """

    def __init__(self, n_workers=None, sync_every=None, averaging="shard", client=None, scheduler=None,
                 threads_per_worker=None, aux_storage="memory", aux_dir=None, dashboard=False, batch_size=100,
                 inner_iterations=10, epochs=10, tau="auto", tau_theta="auto", tau_x="auto", splitting="phi",
                 regulariser=None, code_regulariser=None, shuffle=True, drop_last=False, random_state=None,
                 validation_data=None, track_energy=False, code_layer=None, early_stopping=False, patience=5,
                 callback=None, verbose=False, n_threads=None, safeguard=True, aux_start="forward",
                 momentum=0.7, velocity="restart", min_shard_batches=DEFAULT_MIN_SHARD_BATCHES, theta_metric="auto",
                 penalty_growth="auto"):
        super().__init__(callback=callback, verbose=verbose, n_threads=n_threads)
        # the shards' implicit SGD (the driver holds it as settings, see _shard_solver)
        self.batch_size = batch_size
        self.inner_iterations = inner_iterations
        self.tau = tau
        self.tau_theta = tau_theta
        self.tau_x = tau_x
        self.splitting = splitting
        self.regulariser = regulariser
        self.code_regulariser = code_regulariser
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.safeguard = safeguard
        self.aux_start = aux_start
        self.momentum = momentum
        self.theta_metric = theta_metric
        self.penalty_growth = penalty_growth
        # the fit's epochs and what the epoch loop records
        self.epochs = epochs
        self.random_state = random_state
        self.validation_data = validation_data
        self.track_energy = track_energy
        self.code_layer = code_layer
        self.early_stopping = early_stopping
        self.patience = patience
        self.n_workers = n_workers
        self.sync_every = sync_every
        self.averaging = averaging
        self.client = client
        self.scheduler = scheduler
        self.threads_per_worker = threads_per_worker
        self.aux_storage = aux_storage
        self.aux_dir = aux_dir
        self.dashboard = dashboard
        self.velocity = velocity
        self.min_shard_batches = min_shard_batches

    #: What each parameter may be (:mod:`bregman_solvers._params`): ImplicitSGD's rows for the
    #: settings the two share, and the driver's own
    _parameter_constraints = {
        # (regulariser and code_regulariser: checked against the network by the shards' ImplicitSGD)
        **shared_constraints(ImplicitSGD, __init__),
        "n_workers": [None, POSITIVE_INT],
        "threads_per_worker": [None, POSITIVE_INT],
        "sync_every": [None, Options("epoch"), POSITIVE_INT],
        "averaging": [Options("shard", "batch")],
        "velocity": [Options("average", "restart")],
        "aux_storage": [Options("memory", "memmap")],
        "aux_dir": [None, str],
        "scheduler": [None, str],
        "dashboard": [bool],
        "min_shard_batches": [None, POSITIVE_INT],
    }

    def _check_settings(self, network):
        validate_params(self, self._parameter_constraints)
        if isinstance(self.regulariser, BregmanIteration):
            raise ValueError("DistributedImplicitSGD does not support BregmanIteration (the subgradient "
                             "variables cannot be averaged consistently); use ImplicitSGD")
        self._shard_solver()._validate(network)      # the shards' settings checked against the network

    def _sync_every(self):
        """``sync_every`` with None resolved: 20 batches for shards, the epoch for eq. 23."""
        if self.sync_every is not None:
            return self.sync_every
        return DEFAULT_SYNC_EVERY if self.averaging == "shard" else "epoch"

    def _shard_solver(self):
        """The plain ImplicitSGD each shard runs: the driver's ImplicitSGD settings but
        :data:`DRIVER_ONLY`, nothing of the driver's own (made when needed, so that ``set_params``
        reaches it)."""
        return ImplicitSGD(**settings_for(ImplicitSGD, self, leave_out=DRIVER_ONLY))

    @with_thread_policy
    def fit(self, network, X0, target, initial_epoch=0):
        """Train ``network`` on ``(X0, target)`` across the cluster.

        Parameters
        ----------
        network : LiftedNetwork
            Updated in place with the averaged parameters after every round.
        X0, target : array-like or dask.array of shape (n_samples, n_0) / (n_samples, n_L)
            NumPy data are checked here, split and scattered once; dask arrays are chunked
            by rows (columns are joined), and each worker trains on the chunks it holds.
        initial_epoch : int, default 0
            The epoch to start from (the shards' auxiliary variables start from a forward pass).

        Returns
        -------
        FitResult
            ``history`` as :class:`~bregman_solvers.ImplicitSGD`'s, plus per epoch ``rounds``,
            ``bytes_per_round`` (what the driver sent and fetched in a round, the epoch's largest:
            theta out and the average in, and with an averaged velocity its theta^{k-1} in and
            out: flat in the number of shards), ``worker_bytes_per_round`` (a bound on what the
            workers sent each other: the partial sums of the averaging tree and theta from the
            worker it was sent to to the others),
            ``worker_losses``, ``shards``, ``shard_samples`` (the samples of the largest shard:
            more than an even share where small data made the shards overlap, see
            ``min_shard_batches``); ``events`` lists the lost workers.
        """
        if not isinstance(network, LiftedNetwork):
            raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
        self._check_settings(network)
        check_integer(initial_epoch, "initial_epoch", minimum=0)
        if not parameters_finite(network):
            raise ValueError("the network's parameters are not finite")
        distributed_data = _is_dask_array(X0) or _is_dask_array(target)
        if not distributed_data:
            X0, target = network.check_data(X0, target)      # bad input refused before a cluster starts
            if self.n_workers is not None and self.n_workers > X0.shape[0]:
                raise ValueError(f"n_workers={self.n_workers} shards need at least as many samples, "
                                 f"got {X0.shape[0]}")
        _import_distributed()
        with dask_client(self.client, self.scheduler, self.n_workers, self.threads_per_worker,
                         self.dashboard) as client:
            shards = _Shards(self, client, network, X0, target, distributed_data)
            # NumPy data are here too: the training metrics (track_energy) are a forward pass here
            loop = EpochLoop(self, network, None, None, None) if distributed_data else \
                EpochLoop(self, network, X0, target, None)
            try:
                return self._fit_rounds(network, shards, loop, initial_epoch)
            finally:
                shards.close()

    def _fit_rounds(self, network, shards, loop, initial_epoch):
        per_epoch = shards.n_batches()
        sync_every = self._sync_every()
        sync = max(per_epoch) if sync_every == "epoch" else min(sync_every, max(per_epoch))
        n_rounds = math.ceil(max(per_epoch) / sync)
        theta = network.parameter_vector
        # the velocity of the average travels with theta (several shards, momentum, each shard's
        # batches in a row); None: the next round starts without velocity
        average_velocity = (self.velocity == "average" and self.momentum > 0 and len(shards) > 1
                            and self.averaging == "shard")
        previous = None
        penalties = PenaltyContinuation(self.penalty_growth, network)

        def fetched_average(kept, key, traffic, epoch):
            """The weighted mean of ``key`` over ``kept`` ((result future, weight, shard) triples),
            formed on the workers (a tree of pairwise sums): only the average comes to the driver.
            A worker lost during the reduction takes its shard's result with it: the shard is
            re-created and the mean taken over the results left (None when none is left). Returns
            the mean and the number of shards lost."""
            lost = 0
            while kept:
                futures, weights, owners = zip(*kept)
                mean, moves = average_on_workers(shards.client, futures, weights, key, theta.dtype)
                traffic.tree(moves, theta.size)
                try:
                    return traffic.fetched(mean.result()), lost
                except Exception as error:
                    left = shards.replace_lost(list(owners), error, epoch)
                    lost += len(kept) - len(left)
                    kept = [kept[k] for k in left]
            return None, lost

        def run_epoch(epoch, progress):
            with STOP.watching():               # a Ctrl-C stops the fit at the end of the current round
                return rounds_of_epoch(epoch, progress)

        def rounds_of_epoch(epoch, progress):
            nonlocal previous
            energies, losses, traffics = [], 0, []
            for r in range(n_rounds):
                traffic = Traffic()
                results, summaries, lost, owners = shards.run_round(
                    theta.copy(), epoch, r * sync, (r + 1) * sync, self.averaging == "batch", previous,
                    average_velocity, traffic)
                traffics.append(traffic)
                weights = [res["samples"] if self.averaging == "shard" else res["batches"] for res in summaries]
                kept = [(future, w, i) for future, w, i in zip(results, weights, owners) if w > 0]
                average, lost_in_reduction = fetched_average(kept, "theta", traffic, epoch)
                lost += lost_in_reduction
                losses += lost
                if average is None:
                    previous = None
                    continue
                if not np.all(np.isfinite(average)):
                    raise divergence_error((self.tau_theta, self.tau_x, self.tau), epoch)
                theta[:] = average
                # a shard without velocity (a recovery restarted it) or a lost one: start afresh
                with_velocity = average_velocity and not lost and all(res["has_previous"] for res in summaries)
                previous, lost_in_reduction = fetched_average(kept, "previous", traffic, epoch) if with_velocity \
                    else (None, 0)
                losses += lost_in_reduction
                if lost_in_reduction:
                    previous = None           # the velocity of part of the shards: start the next round afresh
                for res in summaries:
                    energies += res["energies"]
                progress.update(sum(res["batches"] for res in summaries))
                STOP.check(min((r + 1) * sync, max(per_epoch)), energies, None)
            extra = loop.extra
            extra["rounds"], extra["shards"] = n_rounds, len(shards)
            extra["shard_samples"] = shards.largest
            # the most a round of the epoch sent through the driver, and between the workers
            extra["bytes_per_round"] = max((t.driver for t in traffics), default=0)
            extra["worker_bytes_per_round"] = max((t.workers for t in traffics), default=0)
            extra["worker_losses"] = losses
            if penalties.active:        # the shards' penalty weights this epoch (each shard sets its own)
                extra["penalty_factor"] = penalties.factor_of(epoch)
            extra["step_factor"] = shards.step_factor
            extra["recoveries"] = shards.recoveries
            if self.track_energy:
                per_layer = shards.energy(theta.copy())
                extra["energy"], extra["per_layer"] = float(per_layer.sum()), per_layer
            if loop.code_layer is not None:
                extra["lifted_code_sparsity"] = shards.code_sparsity(loop.code_layer)
            return float(np.mean(energies)) if energies else np.nan

        result = loop.run(run_epoch, sum(per_epoch), initial_epoch, self.epochs)
        result["events"] = list(shards.events)
        return result
