"""Model averaging (the paper's Section 4.2.2, eq. 23): implicit SGD's batches of an epoch run from
one anchor in parallel, and the epoch's parameters are their average."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._params import POSITIVE_INT
from .._threads import current_threads, worker_threads
from ..schedules import BatchScheduler
from ._base import with_thread_policy
from ._epochs import EpochLoop
from ._batches import AlgorithmOneBatches, ParameterAverage
from .stochastic import ImplicitSGD

__all__ = ["ModelAveraging"]


class ModelAveraging(ImplicitSGD):
    """Data-parallel model averaging (Section 4.2.2, eq. 23).

    Every batch of an epoch starts from the epoch's initial parameters ``theta^k``,
    so the batches are independent: each takes ``inner_iterations`` proximal-gradient
    steps (with the proximity term to ``theta^k``) on its own auxiliary variables, and
    ``theta^{k+1}`` is the average of the batches' parameters. ``n_jobs`` workers
    (threads; the kernels and BLAS release the GIL) process the batches, each with
    its own copy of the network; the average is taken in batch order, so the result
    does not depend on ``n_jobs``.

    Parameters
    ----------
    n_jobs : int, default 1
        Workers over batches.
    Other parameters as :class:`ImplicitSGD` (without ``safeguard``: a divergence raises, since
    the batches of an epoch run from one anchor in parallel; a batch starts from its stored
    auxiliary variables, and ``tau_theta`` defaults to 0.5).

    See Also
    --------
    bregman_solvers.DistributedImplicitSGD : the same averaging over processes and machines on Dask
        (``averaging="batch"``, ``sync_every="epoch"``).
    """

    def __init__(self, batch_size=100, inner_iterations=10, epochs=10, tau=10.0, tau_theta=0.5, tau_x=0.5,
                 n_jobs=1, splitting="phi", regulariser=None, code_regulariser=None, shuffle=True,
                 drop_last=False, random_state=None, validation_data=None, track_energy=False, code_layer=None,
                 early_stopping=False, patience=5, callback=None, verbose=False, n_threads=None):
        super().__init__(batch_size=batch_size, inner_iterations=inner_iterations, epochs=epochs, tau=tau,
                         tau_theta=tau_theta, tau_x=tau_x, splitting=splitting, regulariser=regulariser,
                         code_regulariser=code_regulariser, shuffle=shuffle, drop_last=drop_last,
                         random_state=random_state, validation_data=validation_data, track_energy=track_energy,
                         code_layer=code_layer, early_stopping=early_stopping, patience=patience,
                         callback=callback, verbose=verbose, n_threads=n_threads, aux_start="stored",
                         momentum=0.0, safeguard=False)
        self.n_jobs = n_jobs

    _parameter_constraints = {**ImplicitSGD._parameter_constraints, "n_jobs": [POSITIVE_INT]}

    @with_thread_policy
    def fit(self, network, X0, target, state=None, initial_epoch=0, bregman_state=None):
        """Train ``network``; arguments as :meth:`ImplicitSGD.fit`.

        Each worker runs :class:`~bregman_solvers.solvers._batches.AlgorithmOneBatches` (the batch
        loop of :class:`ImplicitSGD` and of the Dask shards) one batch at a time from theta^k; the
        epoch's theta^{k+1} is the mean of the batches' parameters, in batch order (eq. 23).
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

        def process(runner, batches, steps, start):
            """Each batch from theta^k itself (eq. 23): its parameters after the K steps, and its energy."""
            params, results = runner.network.parameter_vector, []
            for idx in batches:
                np.copyto(params, start)
                (energy,) = runner.run([idx], steps)
                results.append((params.copy(), energy))
            return results

        def run_epoch(epoch, progress):
            start = network.parameter_vector.copy()
            steps = runners[0].epoch_steps(epoch)          # the auto rule reads the data, not theta
            batches = scheduler.epoch(epoch)
            chunks = [batches[j::n_jobs] for j in range(n_jobs)]
            if n_jobs == 1:
                outputs = [process(runners[0], chunks[0], steps, start)]
            else:
                def in_worker_thread(j):
                    with worker_threads(share):
                        return process(runners[j], chunks[j], steps, start)

                with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                    outputs = list(pool.map(in_worker_thread, range(n_jobs)))
            # re-interleave to batch order, then average in that fixed order
            ordered = [None] * len(batches)
            for j, out in enumerate(outputs):
                for k, res in enumerate(out):
                    ordered[j + k * n_jobs] = res
            average = ParameterAverage(network.parameter_vector.size)
            for theta, _ in ordered:
                average.add(theta)
            average.mean(out=network.parameter_vector)
            progress.update(len(batches))
            return float(np.mean([e for _, e in ordered]))

        return loop.run(run_epoch, len(scheduler), initial_epoch, self.epochs)
