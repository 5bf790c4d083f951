"""Data-parallel lifted training on Dask: iterative parameter mixing of implicit SGD.

The lifted problem's auxiliary variables belong to their samples, so a worker that owns a
shard of the samples owns their auxiliary variables too and never ships them: only the
parameters theta travel. :class:`DistributedImplicitSGD` keeps one :class:`ShardTrainer` (a
Dask actor) per shard, each holding its samples, their auxiliary variables and a copy of the
network. Every round the driver sends theta to one worker (the others fetch it from there),
each shard runs ``sync_every`` batches of Algorithm 1 on its samples with the library's own
batch steps (:class:`~bregman_solvers.solvers._batches.AlgorithmOneBatches`), and the shards'
parameters, weighted by the samples each processed, are averaged on the workers in a tree of
pairwise sums (``_reduce``): only the average reaches the driver (iterative parameter mixing,
McDonald et al. 2010). With ``averaging="batch"`` every batch starts from the round's theta and
the average is over batches: with ``sync_every="epoch"`` that is eq. 23's model averaging
(:class:`~bregman_solvers.ModelAveraging`) on the cluster.

Without a client, a :class:`distributed.LocalCluster` of worker processes starts for the fit
(bound to localhost, no dashboard unless asked, ``n_workers x threads_per_worker`` at most the
usable cores). Dask is an optional dependency: ``pip install "bregman_solvers[distributed]"``.
"""
from ._cluster import INSTALL_HINT, WORKER_START_TIMEOUT, ShardLost, dask_client
from ._driver import DEFAULT_MIN_SHARD_BATCHES, DEFAULT_SYNC_EVERY, DistributedImplicitSGD
from ._shards import REPLACEMENT_TIMEOUT
from ._shard import ShardTrainer

__all__ = ["DistributedImplicitSGD", "ShardTrainer", "dask_client", "ShardLost", "DEFAULT_SYNC_EVERY",
           "DEFAULT_MIN_SHARD_BATCHES", "REPLACEMENT_TIMEOUT", "WORKER_START_TIMEOUT", "INSTALL_HINT"]
