"""The average of the shards' parameters formed on the workers: only the average reaches the driver.

After a round every shard's result (its parameters ``theta``, and with an averaged velocity its
``previous``) stays on the worker that computed it. Each becomes a weighted partial sum there
(:func:`_leaf`, a :class:`~bregman_solvers.solvers._averages.ParameterAverage` in float64), the
partial sums are added in pairs up a fixed binary tree (:func:`pairwise`: shard 0 + 1, 2 + 3, ...,
then those pairs in pairs), each addition a Dask task placed by the scheduler where one of its two
inputs lives, so one partial sum travels worker to worker per addition, and the root's mean is the
one vector the driver fetches. The driver's bytes per round are therefore one copy of theta in and
one out (:class:`Traffic`), whatever the number of shards, where gathering every shard's parameters
at the driver and broadcasting the average back cost ``2 x shards`` copies.

The tree is fixed by the shards' order, so a fit stays reproducible for a seed and a number of
workers; with up to three shards the additions are those of the sequential sum in shard order
(bit for bit the driver-side average they replace).
"""
import numpy as np

from ..solvers._averages import ParameterAverage, pairwise

__all__ = ["pairwise", "average_on_workers", "Traffic"]


def _leaf(result, key, weight):
    """On the shard's worker: its ``result[key]`` (a parameter vector) as a weighted partial sum."""
    vector = result[key]
    return ParameterAverage(vector.size).add(vector, weight)


def _added(a, b):
    """Two partial sums added (a new object: task results are never modified in place)."""
    return ParameterAverage.merged(a, b)


def _mean(partial, dtype):
    """The root's weighted mean, in the network's dtype."""
    return partial.mean().astype(dtype, copy=False)


def _summary(result):
    """On the shard's worker: what the driver reads of a round, without its parameter vectors."""
    out = {k: v for k, v in result.items() if k not in ("theta", "previous")}
    out["has_previous"] = result.get("previous") is not None
    return out


def average_on_workers(client, results, weights, key, dtype):
    """A future of the weighted mean of ``result[key]`` over the round's result futures
    ``results`` (weights > 0, in shard order), formed on the workers; and the number of partial
    sums the tree moves between tasks (one per addition, one into the mean)."""
    leaves = [client.submit(_leaf, r, key, w, pure=False) for r, w in zip(results, weights)]
    root = pairwise(leaves, lambda a, b: client.submit(_added, a, b, pure=False))
    # partial sums moved: one into each of the len(leaves) - 1 additions, and the root into the mean
    return client.submit(_mean, root, np.dtype(dtype), pure=False), len(leaves)


def summary(client, result):
    """A future of a round result's :func:`_summary` (computed where the result lives)."""
    return client.submit(_summary, result, pure=False)


class Traffic:
    """The bytes of one round: what the driver sends and fetches (counted as it does so), and a
    bound on what the workers send each other (each partial sum of the tree at most once, and
    theta from the worker it was scattered to to each other worker holding shards)."""

    def __init__(self):
        self.driver = 0
        self.workers = 0

    def sent(self, array):
        self.driver += int(np.asarray(array).nbytes)

    def fetched(self, array):
        self.driver += int(np.asarray(array).nbytes)
        return array

    def tree(self, moves, size):
        self.workers += int(moves) * int(size) * np.dtype(np.float64).itemsize

    def spread(self, array, n_workers):
        self.workers += max(0, int(n_workers) - 1) * int(np.asarray(array).nbytes)
