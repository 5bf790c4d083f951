"""The driver of a data-parallel fit: :class:`DistributedImplicitSGD` and its shards' placement."""
import math
import uuid

import numpy as np

from .._runtime import SETTINGS
from .._validation import check_integer
from ..network import LiftedNetwork
from ..regularisers import BregmanIteration
from ..solvers._base import LiftedSolver, with_thread_policy
from ..solvers._epochs import EpochLoop, divergence_error
from ..solvers._stop import STOP
from ..solvers._batches import ParameterAverage, parameters_finite
from ..solvers.stochastic import ImplicitSGD

from ._cluster import _import_distributed, _is_dask_array, dask_client, lost_worker_error
from ._shard import ShardTrainer, _shard_round


#: Seconds to wait for a live worker to take over a lost worker's shard
REPLACEMENT_TIMEOUT = 120


#: Batches per shard between two averagings by default with ``averaging="shard"``: on full MNIST
#: with 2 workers, 5 epochs, two seeds, 0.3 and 0.2 points below the single process, where one
#: averaging per epoch was 0.8 and 0.2 (docs/scaling.rst). A data set with fewer batches per shard
#: averages once per epoch.
DEFAULT_SYNC_EVERY = 60

#: The settings of the implicit SGD every shard runs (the batch steps), passed on as they are
SHARD_SETTINGS = ("batch_size", "inner_iterations", "tau", "tau_theta", "tau_x", "splitting", "regulariser",
                  "code_regulariser", "shuffle", "drop_last", "safeguard", "aux_start", "momentum")


class DistributedImplicitSGD(LiftedSolver):
    """Implicit SGD (Algorithm 1) data-parallel on a Dask cluster: iterative parameter mixing.

    The samples are split into shards, one per worker (a seeded random split into near-equal
    parts for NumPy data, scattered once; for a ``dask.array`` chunked by rows, the chunks each
    worker already holds). Each shard keeps its auxiliary variables on its worker. A round:
    the driver sends theta to every shard, each runs its next ``sync_every`` batches of
    Algorithm 1 (eq. 24) from it, and the new theta is the average of the shards' parameters
    weighted by the samples each processed. One epoch is every shard's batches once.

    Parameters
    ----------
    n_workers : int, optional
        Shards (and, without a client, worker processes). Default: the client's workers, or
        the usable cores.
    sync_every : int, "epoch" or None, default None
        Batches per shard between two averagings. None: :data:`DEFAULT_SYNC_EVERY` (60) with
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
        round starts without velocity. "average": the shards also return their theta^{k-1},
        the driver averages it with the same weights as theta and sends it back, and every
        shard goes on with the velocity of the average (twice the bytes per round). It won
        only on 20,000 images averaging every 10 batches; on full MNIST it ended lower
        (97.0 against 97.3% every 10 batches, 96.6 against 97.6% every 60: docs/scaling.rst). A shard's own velocity is never carried over the jump to the
        averaged theta (so it diverged: 400 samples, 2 shards, averaging every epoch).
    Other parameters
        As :class:`~bregman_solvers.ImplicitSGD`; ``random_state`` seeds the split and each
        shard's batches, so a fit is reproducible for a seed and a number of workers. The driver
        is not an ImplicitSGD: it holds the settings of the ImplicitSGD every shard runs
        (:data:`SHARD_SETTINGS`), validated once per fit by that ImplicitSGD, and its own
        ``fit`` (no ``state``: the auxiliary variables live on the workers).

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
                 inner_iterations=10, epochs=10, tau=10.0, tau_theta="auto", tau_x=0.5, splitting="phi",
                 regulariser=None, code_regulariser=None, shuffle=True, drop_last=False, random_state=None,
                 validation_data=None, track_energy=False, code_layer=None, early_stopping=False, patience=5,
                 callback=None, verbose=False, n_threads=None, safeguard=True, aux_start="forward",
                 momentum=0.7, velocity="restart"):
        super().__init__(callback=callback, verbose=verbose, n_threads=n_threads)
        # the shards' implicit SGD (SHARD_SETTINGS; the driver holds it as settings, see _shard_solver)
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

    def _check_settings(self, network):
        if self.n_workers is not None:
            check_integer(self.n_workers, "n_workers")
        if self.threads_per_worker is not None:
            check_integer(self.threads_per_worker, "threads_per_worker")
        if self.sync_every not in (None, "epoch"):
            check_integer(self.sync_every, "sync_every")
        if self.averaging not in ("shard", "batch"):
            raise ValueError(f"averaging must be 'shard' or 'batch', got {self.averaging!r}")
        if self.velocity not in ("average", "restart"):
            raise ValueError(f"velocity must be 'average' or 'restart', got {self.velocity!r}")
        if self.aux_storage not in ("memory", "memmap"):
            raise ValueError(f"aux_storage must be 'memory' or 'memmap', got {self.aux_storage!r}")
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {type(self.scheduler).__name__}")
        if isinstance(self.regulariser, BregmanIteration):
            raise ValueError("DistributedImplicitSGD does not support BregmanIteration (the subgradient "
                             "variables cannot be averaged consistently); use ImplicitSGD")
        self._shard_solver()._validate(network)      # the shards' settings, and the epochs, checked once

    def _sync_every(self):
        """``sync_every`` with None resolved: 60 batches for shards, the epoch for eq. 23."""
        if self.sync_every is not None:
            return self.sync_every
        return DEFAULT_SYNC_EVERY if self.averaging == "shard" else "epoch"

    def _shard_solver(self):
        """The plain ImplicitSGD each shard runs: the driver's :data:`SHARD_SETTINGS`, nothing of the
        driver's own (made when needed, so that ``set_params`` reaches it)."""
        return ImplicitSGD(epochs=self.epochs, **{name: getattr(self, name) for name in SHARD_SETTINGS})

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
            ``bytes_per_round`` (theta, and with an averaged velocity theta^{k-1}, sent to and
            received from every shard),
            ``worker_losses``, ``shards``; ``events`` lists the lost workers.
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

        def weighted_mean(results, weights, key):
            average = ParameterAverage(theta.size)
            for res, w in zip(results, weights):       # in shard order: reproducible
                average.add(res[key], w)
            return average.mean()

        def run_epoch(epoch, progress):
            with STOP.watching():               # a Ctrl-C stops the fit at the end of the current round
                return rounds_of_epoch(epoch, progress)

        def rounds_of_epoch(epoch, progress):
            nonlocal previous
            energies, losses = [], 0
            for r in range(n_rounds):
                results, lost = shards.run_round(theta.copy(), epoch, r * sync, (r + 1) * sync,
                                                 self.averaging == "batch", previous, average_velocity)
                losses += lost
                weights = [res["samples"] if self.averaging == "shard" else res["batches"] for res in results]
                if sum(weights) == 0:
                    continue
                average = weighted_mean(results, weights, "theta")
                if not np.all(np.isfinite(average)):
                    raise divergence_error((self.tau_theta, self.tau_x, self.tau), epoch)
                theta[:] = average
                # a shard without velocity (a recovery restarted it) or a lost one: start afresh
                with_velocity = average_velocity and not lost and all(res["previous"] is not None
                                                                      for res in results)
                previous = weighted_mean(results, weights, "previous").astype(theta.dtype) \
                    if with_velocity else None
                for res in results:
                    energies += res["energies"]
                progress.update(sum(res["batches"] for res in results))
                STOP.check(min((r + 1) * sync, max(per_epoch)), energies, None)
            extra = loop.extra
            extra["rounds"], extra["shards"] = n_rounds, len(shards)
            extra["bytes_per_round"] = 2 * len(shards) * theta.nbytes * (2 if average_velocity else 1)
            extra["worker_losses"] = losses
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


class _Shards:
    """The actors of one fit: creation, rounds, re-creation after a lost worker."""

    def __init__(self, solver, client, network, X0, target, distributed_data):
        self.client, self.network = client, network
        self.solver = solver._shard_solver()
        self.aux_storage, self.aux_dir = solver.aux_storage, solver.aux_dir
        self.events, self.step_factor, self.recoveries = [], 1.0, 0
        self.round_index = 0
        seed = solver.random_state
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        self.seed = int(seed)
        workers = self._workers()
        if not workers:
            raise RuntimeError("the Dask cluster has no workers")
        self.n_threads = {w: solver.n_threads or info for w, info in workers.items()}
        # one block count for every shard: this process's, or more for workers with more threads
        self.product_blocks = max(SETTINGS.product_blocks, *self.n_threads.values())
        if distributed_data:
            self.data = self._chunks_by_worker(X0, target, workers)
        else:
            n_shards = min(solver.n_workers or len(workers), X0.shape[0])
            # one seeded permutation split into near-equal shards; each shard in its original row order
            # (so one shard is exactly the single-process fit's data and batches)
            order = np.random.default_rng(self.seed).permutation(X0.shape[0]) if n_shards > 1 else \
                np.arange(X0.shape[0])
            parts = [np.sort(p) for p in np.array_split(order, n_shards)]
            names = sorted(workers)
            # (worker, rows): the rows are sliced at each (re-)creation, so the driver holds no copy
            self.data = [(names[i % len(names)], p, None) for i, p in enumerate(parts)]
            self.X0, self.target = X0, target
        self.keys = [None] * len(self.data)
        futures = [self._create(i, where) for i, (where, _, _) in enumerate(self.data)]
        self.actors = [f.result() for f in futures]
        self.batch_counts = [a.n_batches().result() for a in self.actors]
        # a re-created shard holds the same rows: the counts stay valid for the whole fit
        self.n_samples = sum(a.n_samples().result() for a in self.actors)

    def __len__(self):
        return len(self.actors)

    def lost(self, i, error):
        """Whether shard ``i``'s call failed with ``error`` because its worker is gone: a typed
        failure of a lost worker (:func:`lost_worker_error`), or its worker no longer among the
        scheduler's (public ``Client.scheduler_info``)."""
        return lost_worker_error(error) or self.data[i][0] not in self._workers()

    def _workers(self):
        """Address -> threads of every worker of the cluster."""
        return {addr: info.get("nthreads", 1) for addr, info in self.client.scheduler_info()["workers"].items()}

    def _chunks_by_worker(self, X0, target, workers):
        """``(worker, X chunks, Y chunks)`` for every worker holding row chunks of the persisted arrays."""
        import dask.array as da
        from distributed import futures_of, wait

        X0 = da.asarray(X0)
        X0 = X0.rechunk({1: -1}) if X0.ndim == 2 else X0
        target = da.asarray(target).rechunk({0: X0.chunks[0], **({1: -1} if np.ndim(target) == 2 else {})})
        X0, target = self.client.persist([X0, target])
        wait([X0, target])
        x_keys = [k for k in X0.__dask_keys__() for k in (k if isinstance(k, list) else [k])]
        y_keys = [k for k in target.__dask_keys__() for k in (k if isinstance(k, list) else [k])]
        futures = {f.key: f for f in futures_of(X0) + futures_of(target)}
        holders = self.client.who_has([futures[k] for k in x_keys])
        by_worker = {}
        for xk, yk in zip(x_keys, y_keys):
            where = sorted(holders[xk])[0]
            xs, ys = by_worker.setdefault(where, ([], []))
            xs.append(futures[xk])
            ys.append(futures[yk])
        return [(w, xs, ys) for w, (xs, ys) in sorted(by_worker.items())]

    def _create(self, i, where):
        """Start shard ``i``'s actor on worker ``where`` (NumPy data scattered there first)."""
        _, X, Y = self.data[i]
        if Y is None:                                  # NumPy data: X holds the shard's rows
            X, Y = self.client.scatter([self.X0[X], self.target[X]], workers=[where])
        self.keys[i] = f"bregman-shard-{uuid.uuid4().hex}-{i}"      # where its round's task finds it
        return self.client.submit(ShardTrainer, self.network.copy(), X, Y, self.solver, self.seed + i,
                                  self.n_threads.get(where, 1), self.aux_storage, self.aux_dir,
                                  self.product_blocks, self.keys[i], actor=True, workers=[where],
                                  allow_other_workers=False, pure=False)

    def _replace(self, i, epoch, error):
        """Shard ``i``'s worker was lost: re-create the shard on the live worker with the fewest shards."""
        self.client.wait_for_workers(1, timeout=REPLACEMENT_TIMEOUT)      # a nanny may be restarting it
        workers = self._workers()
        self.n_threads.update({w: self.solver.n_threads or t for w, t in workers.items()
                               if w not in self.n_threads})
        load = {w: 0 for w in workers}
        for (where, _, _) in self.data:
            if where in load:
                load[where] += 1
        where = min(sorted(load), key=load.get)
        _, X, Y = self.data[i]
        self.data[i] = (where, X, Y)
        future = self._create(i, where)
        self.actors[i] = future.result()
        self.events.append({"epoch": epoch + 1, "round": self.round_index, "shard": i, "moved_to": where,
                            "error": f"{type(error).__name__}: {error}"})

    def n_batches(self):
        return list(self.batch_counts)

    def run_round(self, theta, epoch, first, stop, restart_each_batch, previous=None, return_previous=False):
        """One round on every shard; returns (results of the shards that finished it, lost shards).

        ``previous``: the averaged theta^{k-1} that gives the shards their velocity (None: none,
        or their own with a single shard); ``return_previous``: the shards send theirs back."""
        self.round_index += 1
        # theta goes once to each worker holding shards; all shards start before the driver waits
        alive = self._workers()
        where = sorted({w for w, _, _ in self.data if w in alive}) or sorted(alive)
        try:
            theta_future = self.client.scatter(theta, workers=where, broadcast=True, hash=False)
        except Exception:           # a worker died since the check above: anywhere alive will do
            theta_future = self.client.scatter(theta, broadcast=True, hash=False)
        keep_velocity = len(self.data) == 1          # one shard: theta is its own, nothing averaged in
        if previous is not None:
            previous = self.client.scatter(previous, workers=where, broadcast=True, hash=False)
        calls = [self.client.submit(_shard_round, key, theta_future, epoch, first, stop, restart_each_batch,
                                    keep_velocity, previous, return_previous, workers=[w],
                                    allow_other_workers=True, pure=False)
                 for key, (w, _, _) in zip(self.keys, self.data)]
        results, lost = [], 0
        for i, call in enumerate(calls):
            try:
                results.append(call.result())
            except Exception as error:      # a lost worker, else the shard's own error (re-raised)
                if not self.lost(i, error):
                    raise
                lost += 1
                self._replace(i, epoch, error)
        if results:
            self.step_factor = min(r["step_factor"] for r in results)
            self.recoveries = sum(r["recoveries"] for r in results)
        return results, lost

    def energy(self, theta):
        """The full-data lifted energy per layer at ``theta`` (mean over all shards' samples)."""
        return sum(np.asarray(call.result()) for call in [a.energy(theta) for a in self.actors]) / self.n_samples

    def code_sparsity(self, layer):
        counts = [call.result() for call in [a.code_zeros(layer) for a in self.actors]]
        return sum(z for z, _ in counts) / max(1, sum(n for _, n in counts))

    def close(self):
        for a in self.actors:
            if a is not None:
                try:
                    a.close().result()
                except Exception:           # a worker already gone: nothing left to clean
                    pass
