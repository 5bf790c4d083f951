"""The Dask side of the back end: the client a fit runs on, and how a lost worker is recognised."""
import logging
from contextlib import contextmanager

from .._threads import usable_cores


#: What the message of an error tells a user without Dask
INSTALL_HINT = 'the Dask back end needs dask.distributed: pip install "bregman_solvers[distributed]"'


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:           # the optional extra is not installed
        raise ImportError(INSTALL_HINT) from exc
    return distributed


class ShardLost(RuntimeError):
    """A shard's actor is not where its round was sent: its worker was lost."""


def lost_worker_error(error):
    """Whether ``error`` is one of Dask's typed failures of a lost worker: every worker that tried
    the task died (``KilledWorker``), the connection closed under the call (``CommClosedError``),
    or the round ran on a worker without the shard (:class:`ShardLost`). Dask reports an actor's
    lost worker as a plain ``RuntimeError``: the driver then asks the scheduler whether the
    shard's worker is still there (``_Shards.lost``), and never reads an error's message."""
    distributed = _import_distributed()
    from distributed.comm import CommClosedError

    return isinstance(error, (ShardLost, CommClosedError, distributed.KilledWorker))


def _is_dask_array(a):
    return type(a).__module__.split(".")[0] == "dask" and hasattr(a, "chunks")


#: Seconds a new LocalCluster may take until all its workers have registered.
WORKER_START_TIMEOUT = 120


@contextmanager
def dask_client(client=None, scheduler=None, n_workers=None, threads_per_worker=None, dashboard=False):
    """The Dask client a fit runs on.

    ``client`` as given; else a client of the scheduler at ``scheduler`` (an address such
    as ``"tcp://host:8786"``), closed afterwards; else a new :class:`distributed.LocalCluster`
    of ``n_workers`` processes (default: the usable cores) with ``threads_per_worker``
    threads each (default: the cores divided among the workers, at least one), bound to
    127.0.0.1, its dashboard off unless ``dashboard`` (then on a free port:
    ``client.dashboard_link``); closed afterwards.
    """
    distributed = _import_distributed()
    if client is not None:
        yield client
        return
    if scheduler is not None:
        try:
            own = distributed.Client(scheduler)
        except (OSError, TimeoutError) as exc:     # Dask's connect timeout (distributed.comm.timeouts.connect)
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {exc} (is it running, and "
                                  f"is the address right?)") from None
        with own:
            yield own
        return
    cores = usable_cores()
    n = cores if n_workers is None else n_workers
    threads = max(1, cores // n) if threads_per_worker is None else threads_per_worker
    # without the dashboard the scheduler still serves its health routes over HTTP: on a free port
    web = {} if dashboard else {"scheduler_kwargs": {"dashboard": False, "dashboard_address": "127.0.0.1:0"}}
    with distributed.LocalCluster(n_workers=n, threads_per_worker=threads, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                                  **web) as cluster, distributed.Client(cluster) as own:
        # on a busy machine a spawned worker can register after the cluster has started: wait for all
        own.wait_for_workers(n, timeout=WORKER_START_TIMEOUT)
        from ._signals import IgnoreInterrupts

        own.register_plugin(IgnoreInterrupts())        # Ctrl-C is the driver's to handle (see _signals)
        yield own
