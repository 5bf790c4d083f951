"""The shards of a data-parallel fit on their workers: creation, placement, rounds and the
re-creation of a shard whose worker was lost (used by :class:`DistributedImplicitSGD`)."""
import time
import uuid

import numpy as np

from .._runtime import SETTINGS
from ._cluster import lost_worker_error
from ._reduce import summary
from ._shard import ShardTrainer, _shard_round

#: Seconds to wait for a live worker to take over a lost worker's shard
REPLACEMENT_TIMEOUT = 120
#: Seconds (one check each) a typed lost-worker error waits for the scheduler to list the worker gone
LOST_WORKER_CHECKS = 10


def shard_rows(n_samples, n_shards, seed, batch_size, min_batches):
    """The rows of each shard, each shard's in their original order (so one shard is exactly the
    single-process fit's data and batches).

    A seeded permutation split into near-equal parts; but where a part would hold fewer than
    ``min_batches`` batches (None: no minimum), each shard is a window of
    ``min(n_samples, min_batches * batch_size)`` consecutive entries of the permutation, the
    ``i``-th starting at ``i * n_samples / n_shards`` and wrapping round: the shards overlap
    (entirely, when the data hold fewer than ``min_batches`` batches) and every sample is in one.
    Why: an averaging round moves theta about as far as one shard's batches do, so shards of a few
    batches each leave an epoch of W shards with about 1 / W of one process's progress
    (docs/scaling.rst, "Small data")."""
    if n_shards == 1:
        return [np.arange(n_samples)]
    order = np.random.default_rng(seed).permutation(n_samples)
    if min_batches is None or n_samples // n_shards >= min_batches * batch_size:
        return [np.sort(p) for p in np.array_split(order, n_shards)]
    size = min(n_samples, min_batches * batch_size)
    return [np.sort(order[(i * n_samples // n_shards + np.arange(size)) % n_samples]) for i in range(n_shards)]


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
            parts = shard_rows(X0.shape[0], n_shards, self.seed, solver.batch_size, solver.min_shard_batches)
            names = sorted(workers)
            # (worker, rows): the rows are sliced at each (re-)creation, so the driver holds no copy
            self.data = [(names[i % len(names)], p, None) for i, p in enumerate(parts)]
            self.X0, self.target = X0, target
        self.keys = [None] * len(self.data)
        futures = [self._create(i, where) for i, (where, _, _) in enumerate(self.data)]
        self.actors = [f.result() for f in futures]
        self.batch_counts = [a.n_batches().result() for a in self.actors]
        # a re-created shard holds the same rows: the counts stay valid for the whole fit
        sizes = [a.n_samples().result() for a in self.actors]
        self.n_samples, self.largest = sum(sizes), max(sizes)

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
            # hash=False: overlapping shards hold equal rows, and equal data under one key on two
            # workers would tie the two shards' inputs together (losing one loses both)
            X, Y = self.client.scatter([self.X0[X], self.target[X]], workers=[where], hash=False)
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

    def run_round(self, theta, epoch, first, stop, restart_each_batch, previous=None, return_previous=False,
                  traffic=None):
        """One round on every shard: ``(result futures, their summaries, lost shards, the shard
        of each result)`` of the shards that finished it. The results stay on their workers (the
        driver averages them there, :func:`~bregman_solvers.distributed._reduce.average_on_workers`);
        the summaries (samples, batches, energies, ...) are fetched.

        ``theta`` (and ``previous``, the averaged theta^{k-1} that gives the shards their velocity;
        None: none, or their own with a single shard) is sent once, to one worker holding shards,
        and the other workers fetch it from there; ``return_previous``: the shards keep theirs in
        their results; ``traffic``: a :class:`~bregman_solvers.distributed._reduce.Traffic` that
        counts what was sent."""
        self.round_index += 1
        alive = self._workers()
        where = sorted({w for w, _, _ in self.data if w in alive}) or sorted(alive)
        theta_future, previous_future = self._send(theta, where), self._send(previous, where)
        if traffic is not None:
            for sent in (theta, previous):
                if sent is not None:
                    traffic.sent(sent)
                    traffic.spread(sent, len(where))
        keep_velocity = len(self.data) == 1          # one shard: theta is its own, nothing averaged in
        args = (epoch, first, stop, restart_each_batch, keep_velocity)

        def submit(i, sent):
            key, (w, _, _) = self.keys[i], self.data[i]
            call = self.client.submit(_shard_round, key, sent[0], *args, sent[1], return_previous,
                                      workers=[w], allow_other_workers=True, pure=False)
            return call, summary(self.client, call), sent

        first_sent = (theta_future, previous_future)
        resent = None
        calls = [submit(i, first_sent) for i in range(len(self.data))]
        results, briefs, lost, owners = [], [], 0, []
        for i, (call, brief, sent) in enumerate(calls):
            try:
                briefs.append(brief.result())
            except Exception as error:      # a lost worker, else the shard's own error (re-raised)
                if self.lost(i, error):
                    lost += 1
                    self._replace(i, epoch, error)
                    continue
                if not self._sent_lost(*sent):
                    raise
                # the worker theta was sent to is gone: the shard never started; send again (once
                # for all the shards that failed so)
                resent = resent or (self._send(theta), self._send(previous))
                call, brief, _ = submit(i, resent)
                briefs.append(brief.result())
            results.append(call)
            owners.append(i)
        if briefs:
            self.step_factor = min(r["step_factor"] for r in briefs)
            self.recoveries = sum(r["recoveries"] for r in briefs)
        return results, briefs, lost, owners

    def replace_lost(self, owners, error, epoch):
        """A reduction over the results of shards ``owners`` failed with ``error``: re-create the shards
        whose worker is gone (their results went with it) and return the positions in ``owners`` whose
        results are still there. ``error`` is re-raised when no worker was lost (the shards' own
        error). A typed lost-worker error gives the scheduler a few seconds to list the worker gone."""
        for _ in range(LOST_WORKER_CHECKS):
            alive = self._workers()
            gone = [k for k, i in enumerate(owners) if self.data[i][0] not in alive]
            if gone or not lost_worker_error(error):
                break
            time.sleep(1.0)
        if not gone:
            raise error
        for k in gone:
            self._replace(owners[k], epoch, error)
        return [k for k in range(len(owners)) if k not in gone]

    def _send(self, array, where=None):
        """``array`` scattered to one worker of ``where`` (any live one when that fails); None stays None."""
        if array is None:
            return None
        try:
            return self.client.scatter(array, workers=where[:1] if where else None, hash=False)
        except Exception:           # a worker died since it was listed: anywhere alive will do
            return self.client.scatter(array, hash=False)

    def _sent_lost(self, *futures):
        """Whether one of the scattered ``futures`` has no live holder (its worker was lost)."""
        futures = [f for f in futures if f is not None]
        if not futures:
            return False
        holders = self.client.who_has(futures)
        alive = self._workers()
        return any(not (set(holders.get(f.key, ())) & set(alive)) for f in futures)

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
