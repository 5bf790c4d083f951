"""Saving and loading a network with its solver state (``.npz``, no pickle).

A checkpoint holds the network's configuration and parameters and, optionally, the
auxiliary variables of all samples, the epoch reached and the subgradient
variables of a Bregman-iteration regulariser: everything a stochastic solver needs
to resume. Because the batches of an epoch depend only on the seed and the epoch
number, ``fit(..., state=ckpt.state, initial_epoch=ckpt.epoch, bregman_state=ckpt.bregman_state)``
continues exactly like the uninterrupted fit.
"""
import json
import os
import tempfile

import numpy as np

from .network import LiftedNetwork, LiftedState
from .regularisers import BregmanState

__all__ = ["Checkpoint", "save", "load"]

_FORMAT = "bregman_solvers.checkpoint/1"


class Checkpoint:
    """What :func:`load` returns: ``network``, ``state`` (or None), ``epoch``, ``bregman_state`` (or None)."""

    def __init__(self, network, state=None, epoch=0, bregman_state=None):
        self.network = network
        self.state = state
        self.epoch = int(epoch)
        self.bregman_state = bregman_state

    def __repr__(self):
        return f"Checkpoint({self.network!r}, state={'yes' if self.state else 'no'}, epoch={self.epoch})"


def save(path, network, state=None, epoch=0, bregman_state=None):
    """Write ``network`` (and the solver state) to ``path`` (an ``.npz`` file; ``.npz`` is added to a
    path without it, as NumPy does).

    The write is atomic: the checkpoint goes to a temporary file beside ``path``, is flushed to
    disk, and replaces ``path`` in one ``os.replace``, so a process killed during a save leaves the
    previous checkpoint intact (and at worst a stray temporary file).
    """
    if not isinstance(network, LiftedNetwork):
        raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
    config = {
        "format": _FORMAT,
        "widths": network.widths,
        "activations": [[a.name, a.params] for a in network.activations],
        "lambdas": network.lambdas,
        "dtype": network.dtype.name,
        "penalty": network.penalty,
        "n_threads": network.n_threads,
        "epoch": int(epoch),
        "has_state": state is not None,
        "has_bregman_state": bregman_state is not None,
    }
    arrays = {"config": np.array(json.dumps(config))}
    for l, (w, b) in enumerate(zip(network.weights, network.biases)):
        arrays[f"W{l}"], arrays[f"b{l}"] = w, b
    if state is not None:
        network.check_state(state, state.n_samples)
        for h, x in enumerate(state.hidden):
            arrays[f"X{h}"] = x
    if bregman_state is not None:
        for l, v in enumerate(bregman_state.v):
            arrays[f"v{l}"] = v
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def load(path):
    """Read a checkpoint written by :func:`save`; returns a :class:`Checkpoint`."""
    with np.load(path, allow_pickle=False) as data:
        if "config" not in data:
            raise ValueError(f"{path} is not a bregman_solvers checkpoint (no config)")
        config = json.loads(str(data["config"]))
        if config.get("format") != _FORMAT:
            raise ValueError(f"{path}: unsupported checkpoint format {config.get('format')!r}")
        from .activations import get_activation

        acts = [get_activation(name, **params) for name, params in config["activations"]]
        net = LiftedNetwork(config["widths"], acts, config["lambdas"], dtype=config["dtype"],
                            penalty=config["penalty"], n_threads=config["n_threads"])
        L = net.n_layers
        net.set_parameters([data[f"W{l}"] for l in range(L)], [data[f"b{l}"] for l in range(L)])
        state = LiftedState([data[f"X{h}"].copy() for h in range(L - 1)]) if config["has_state"] else None
        breg = BregmanState([data[f"v{l}"].copy() for l in range(L)]) if config["has_bregman_state"] else None
    return Checkpoint(net, state, config["epoch"], breg)
