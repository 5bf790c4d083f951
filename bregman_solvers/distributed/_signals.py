"""The workers of a cluster the library starts leave Ctrl-C to the driver.

A terminal's Ctrl-C sends SIGINT to every process of its foreground group: the driver and the
worker processes of a :class:`distributed.LocalCluster` alike. A worker stopped by it loses its
shard in the middle of a round and prints its traceback; the driver instead stops the fit at the
next round's end (:mod:`bregman_solvers.solvers._stop`). So the library's own local workers
ignore SIGINT (a cluster the user brings is left as it is).
"""
import signal
import threading

from distributed import WorkerPlugin


class IgnoreInterrupts(WorkerPlugin):
    """Worker plugin: SIGINT ignored in the worker process (set from its main thread, where its
    event loop runs)."""

    name = "bregman-solvers-ignore-sigint"

    def setup(self, worker):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
