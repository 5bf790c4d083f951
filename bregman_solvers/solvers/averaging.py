"""Model averaging (the paper's Section 4.2.2, eq. 23): implicit SGD's batches of an epoch run from
one anchor in parallel, and the epoch's parameters are their average."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._params import POSITIVE_INT
from .._threads import current_threads, worker_threads
from ..schedules import BatchScheduler
from ._base import with_thread_policy
from ._epochs import EpochLoop
from ._averages import OrderedTreeSum
from ._batches import AlgorithmOneBatches
from ._continuation import PenaltyContinuation
from .stochastic import ImplicitSGD

__all__ = ["ModelAveraging"]


class ModelAveraging(ImplicitSGD):
    """Data-parallel model averaging (Section 4.2.2, eq. 23).

    Every batch of an epoch starts from the epoch's initial parameters ``theta^k``,
    so the batches are independent: each takes ``inner_iterations`` proximal-gradient
    steps (with the proximity term to ``theta^k``) on its own auxiliary variables, and
    ``theta^{k+1}`` is the average of the batches' parameters. ``n_jobs`` workers
    (threads; the kernels and BLAS release the GIL) process the batches, each with
    its own copy of the network. The batches' parameters are summed as they finish in a
    fixed binary tree over the batch order (:class:`~bregman_solvers.solvers._averages.OrderedTreeSum`,
    the Dask workers' tree over their shards, :func:`~bregman_solvers.solvers._averages.pairwise`),
    so the result does not depend on ``n_jobs`` and an epoch holds a few partial sums, not a
    copy of the parameters per batch.

    Parameters
    ----------
    n_jobs : int, default 1
        Workers over batches.
    Other parameters as :class:`ImplicitSGD` (without ``safeguard``: a divergence raises, since
    the batches of an epoch run from one anchor in parallel; a batch starts from its stored
    auxiliary variables, ``tau_theta`` defaults to 0.5 and ``penalty_growth`` to 0).

    See Also
    --------
    bregman_solvers.DistributedImplicitSGD : the same averaging over processes and machines on Dask
        (``averaging="batch"``, ``sync_every="epoch"``).
    """

    def __init__(self, batch_size=100, inner_iterations=10, epochs=10, tau="auto", tau_theta=0.5, tau_x="auto",
                 n_jobs=1, splitting="phi", regulariser=None, code_regulariser=None, shuffle=True,
                 drop_last=False, random_state=None, validation_data=None, track_energy=False, code_layer=None,
                 early_stopping=False, patience=5, callback=None, verbose=False, n_threads=None, penalty_growth=0.0):
        super().__init__(batch_size=batch_size, inner_iterations=inner_iterations, epochs=epochs, tau=tau,
                         tau_theta=tau_theta, tau_x=tau_x, splitting=splitting, regulariser=regulariser,
                         code_regulariser=code_regulariser, shuffle=shuffle, drop_last=drop_last,
                         random_state=random_state, validation_data=validation_data, track_energy=track_energy,
                         code_layer=code_layer, early_stopping=early_stopping, patience=patience,
                         callback=callback, verbose=verbose, n_threads=n_threads, aux_start="stored",
                         momentum=0.0, safeguard=False, penalty_growth=penalty_growth)
        self.n_jobs = n_jobs

    _parameter_constraints = {**ImplicitSGD._parameter_constraints, "n_jobs": [POSITIVE_INT]}

    @with_thread_policy
    def fit(self, network, X0, target, state=None, initial_epoch=0, bregman_state=None):
        """Train ``network``; arguments as :meth:`ImplicitSGD.fit`.

        Each worker runs :class:`~bregman_solvers.solvers._batches.AlgorithmOneBatches` (the batch
        loop of :class:`ImplicitSGD` and of the Dask shards) one batch at a time from theta^k; the
        epoch's theta^{k+1} is the mean of the batches' parameters (eq. 23), summed in the fixed
        tree over the batch order.
        """
        self._validate(network)
        n_jobs = self.n_jobs
        from ..regularisers import BregmanIteration

        if isinstance(self.regulariser, BregmanIteration):
            raise ValueError("ModelAveraging does not support BregmanIteration (the subgradient variables "
                             "cannot be averaged consistently); use ImplicitSGD")
        X0, target, state = self._prepare(network, X0, target, state)
        loop = EpochLoop(self, network, X0, target, state, None)
        scheduler = BatchScheduler(X0.shape[0], self.batch_size, self.shuffle, self.drop_last, self.random_state)
        # one batch runner per worker, on its own copy of the network (the state's rows are shared:
        # batches are disjoint, so no two workers write one row)
        runners = [AlgorithmOneBatches(self, network.copy(), X0, target, state, None, loop.raise_divergence)
                   for _ in range(n_jobs)]

        # the workers share the fit's threads (each gets its part, at least one)
        share = max(1, current_threads() // n_jobs)

        def process(runner, batches, steps, start, tree, first, stride):
            """Each batch from theta^k itself (eq. 23): its parameters after the K steps into ``tree``
            (batch ``first + i * stride`` of the epoch), its energy returned."""
            params, energies = runner.network.parameter_vector, []
            for i, idx in enumerate(batches):
                np.copyto(params, start)
                (energy,) = runner.run([idx], steps)
                tree.add(first + i * stride, params)
                energies.append(energy)
            return energies

        # the epoch's penalty weights on the fit's network too (its energy, callbacks), restored at the end
        penalties = PenaltyContinuation(self.penalty_growth, network)

        def run_epoch(epoch, progress):
            start = network.parameter_vector.copy()
            factor = penalties.apply(epoch)
            for runner in runners[1:]:
                runner.begin_epoch(epoch)
            steps = runners[0].epoch_steps(epoch)          # the auto rule reads the data, not theta
            if penalties.active:
                loop.extra["penalty_factor"] = factor
            batches = scheduler.epoch(epoch)
            tree = OrderedTreeSum()
            if n_jobs == 1:
                outputs = [process(runners[0], batches, steps, start, tree, 0, 1)]
            else:
                def in_worker_thread(j):
                    with worker_threads(share):
                        return process(runners[j], batches[j::n_jobs], steps, start, tree, j, n_jobs)

                with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                    outputs = list(pool.map(in_worker_thread, range(n_jobs)))
            tree.total().mean(out=network.parameter_vector)
            progress.update(len(batches))
            energies = np.empty(len(batches))
            for j, out in enumerate(outputs):
                energies[j::n_jobs] = out                  # batch order: the same mean for any n_jobs
            return float(np.mean(energies))

        try:
            return loop.run(run_epoch, len(scheduler), initial_epoch, self.epochs)
        finally:
            penalties.restore()
