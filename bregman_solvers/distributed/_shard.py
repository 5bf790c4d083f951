"""One shard of the samples on one worker: its data, auxiliary variables and network copy (a Dask actor)."""
import shutil
import tempfile
import weakref

import numpy as np

from .._runtime import SETTINGS
from .._threads import fit_threads
from .._validation import check_integer
from ..schedules import BatchScheduler
from ..solvers._epochs import divergence_error
from ..solvers._averages import ParameterAverage
from ..solvers._batches import AlgorithmOneBatches

from ._cluster import ShardLost


#: The shards living in this process, by the key their driver gave them (weak references: a
#: shard the cluster drops is freed). A round's task finds its shard here, without Dask internals.
_SHARDS = weakref.WeakValueDictionary()


def _shard_round(key, *args):
    """A task on the shard's worker: its actor's round, in a task thread.

    The round runs as a task rather than an actor call because Dask runs actor calls in a
    separate executor in which the same round measured slower (docs/scaling.rst); the actor
    still holds the shard between rounds, and registers itself under ``key`` (:data:`_SHARDS`).
    """
    shard = _SHARDS.get(key)
    if shard is None:
        raise ShardLost(f"shard {key} is not on this worker: its worker was lost")
    return shard.run_round(*args)


class ShardTrainer:
    """One shard of the samples, their auxiliary variables and a network copy, on one worker.

    Created as a Dask actor by :class:`DistributedImplicitSGD`; usable directly too (the
    tests run it in-process). The auxiliary variables are initialised by a forward pass from
    the network's parameters and stay here between rounds.

    Parameters
    ----------
    network : LiftedNetwork
        This shard's copy (its parameters are overwritten by each round's theta).
    X, Y : ndarray or list of ndarray
        The shard's inputs and targets (a list: row blocks, concatenated here).
    solver : ImplicitSGD
        The batch steps' hyper-parameters.
    seed : int
        Seed of this shard's batches (epoch ``e``'s permutation depends on ``(seed, e)`` only).
    n_threads : int
        Threads of this shard's passes and products.
    aux_storage : {"memory", "memmap"}
        Where the auxiliary variables live: in memory, or in memory-mapped files under
        ``aux_dir`` (a new temporary folder when None, removed by :meth:`close`).
    product_blocks : int, optional
        The blocks this worker process splits each matrix product into
        (``bregman_solvers._runtime.SETTINGS.product_blocks``, process-wide). The driver sends one
        value to all shards of a fit, so that the rounding of the products, and with it the
        fit, does not depend on which worker runs a shard (a Dask worker starts with
        ``OMP_NUM_THREADS=1``, which would otherwise make it 1: unsplit products on one thread).
    key : str, optional
        Register the shard under this key in its process, where a round's task finds it
        (``_shard_round``); the driver gives each shard a unique one.
    """

    def __init__(self, network, X, Y, solver, seed, n_threads=1, aux_storage="memory", aux_dir=None,
                 product_blocks=None, key=None):
        if product_blocks is not None:
            SETTINGS.product_blocks = check_integer(product_blocks, "product_blocks")
        if isinstance(X, list):
            X, Y = np.concatenate(X), np.concatenate(Y)
        self.network, self.solver, self.n_threads = network, solver, n_threads
        self._folder = None
        with fit_threads(n_threads):
            X, Y = network.check_data(X, Y)
            # own copies: arrays that arrived over the wire live in the message's buffer
            # (read-only, not allocated by NumPy, so without its huge-page advice)
            self.X, self.Y = np.array(X, order="C"), np.array(Y, order="C")
            self.state = self._new_state(aux_storage, aux_dir)
        self.scheduler = BatchScheduler(self.X.shape[0], solver.batch_size, solver.shuffle, solver.drop_last, seed)
        self._epoch, self._steps = None, None
        self.batches = AlgorithmOneBatches(solver, network, self.X, self.Y, self.state, None, self._raise)
        if key is not None:
            _SHARDS[key] = self

    def _new_state(self, aux_storage, aux_dir):
        if aux_storage == "memory":
            return self.network.init_state(self.X)
        self._folder = tempfile.mkdtemp(prefix="bregman-shard-", dir=aux_dir)
        return self.network.init_state(self.X, directory=self._folder)

    def _raise(self, steps, at_start=False):
        raise divergence_error(steps, self._epoch, True, at_start)

    def n_samples(self):
        return self.X.shape[0]

    def n_batches(self):
        """Batches per epoch on this shard."""
        return len(self.scheduler)

    def run_round(self, theta, epoch, first, stop, restart_each_batch=False, keep_velocity=False, previous=None,
                  return_previous=False):
        """Batches ``first:stop`` of this shard's epoch ``epoch`` from the parameters ``theta``.

        The momentum's velocity is ``theta - previous`` when ``previous`` is given (the driver's
        average of the shards' last ``previous``: the velocity of the average), this shard's own
        when ``keep_velocity`` (``theta`` is its own last result: the only shard of the fit),
        and starts afresh otherwise. A shard's own velocity must not be carried over the jump
        to an averaged theta: it belongs to its own trajectory, and so it diverged.

        Returns a dict: ``theta`` (the parameters after the batches, or the mean of every
        batch's parameters with ``restart_each_batch``, where each batch starts from
        ``theta``: eq. 23), ``samples`` and ``batches`` processed, ``energies`` (each batch's
        energy before its steps), the safeguard's ``step_factor`` and ``recoveries``; with
        ``return_previous``, ``previous``: theta^{k-1} of the momentum after the round (None
        without a velocity: momentum 0, or restarted by a recovery).
        """
        with fit_threads(self.n_threads):
            params = self.network.parameter_vector
            if previous is not None:
                self.batches.previous = np.array(previous, dtype=params.dtype)
            elif not keep_velocity:
                self.batches.restart_momentum()
            np.copyto(params, theta)
            if epoch != self._epoch:
                self._epoch, self._steps = epoch, self.batches.epoch_steps(epoch)
            # a new theta arrived: the previous round's batches can no longer be undone
            self.batches.guard.forget()
            batches = self.scheduler.epoch(epoch)[first:stop]
            if not restart_each_batch:
                energies = self.batches.run(batches, self._steps)
                result = params.copy()
            else:
                average, energies = ParameterAverage(params.size), []
                for idx in batches:
                    np.copyto(params, theta)
                    self.batches.restart_momentum()       # eq. 23: every batch from theta itself
                    energies += self.batches.run([idx], self._steps)
                    average.add(params)
                result = average.mean(out=np.empty_like(params)) if batches else np.zeros_like(params)
        out = {"theta": result, "samples": int(sum(len(b) for b in batches)), "batches": len(batches),
               "energies": energies, "step_factor": self.batches.guard.factor,
               "recoveries": self.batches.guard.recoveries}
        if return_previous:
            out["previous"] = None if self.batches.previous is None else self.batches.previous.copy()
        return out

    def energy(self, theta):
        """This shard's lifted energy per layer at ``theta``, summed over its samples."""
        from ..solvers._epochs import batched_energy

        with fit_threads(self.n_threads):
            np.copyto(self.network.parameter_vector, theta)
            return batched_energy(self.network, self.X, self.Y, self.state) * self.X.shape[0]

    def code_zeros(self, layer):
        """(zero entries, entries) of hidden layer ``layer``'s auxiliary variables."""
        code = self.state.hidden[layer - 1]
        return int(np.count_nonzero(code == 0)), int(code.size)

    def close(self):
        """Remove a memory-mapped state's files."""
        if self._folder is not None:
            self.state = None
            self.batches = None
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
