"""Saving and loading a network with its solver state (``.npz``, no pickle).

A checkpoint holds the network's configuration and parameters and, optionally, the
auxiliary variables of all samples, the epoch reached, the subgradient
variables of a Bregman-iteration regulariser and the momentum's previous parameters:
everything a stochastic solver needs to resume. Because the batches of an epoch depend
only on the seed and the epoch number, ``fit(..., state=ckpt.state, initial_epoch=ckpt.epoch,
bregman_state=ckpt.bregman_state, previous_parameters=ckpt.previous_parameters)``
continues exactly like the uninterrupted fit.
"""
import json
import os
import tempfile
import zlib

import numpy as np

from ._validation import check_parameter_vector
from .network import LiftedNetwork, LiftedState
from .operators import Dense
from .regularisers import BregmanState

__all__ = ["Checkpoint", "save", "load"]

_FORMAT = "bregman_solvers.checkpoint/1"


class Checkpoint:
    """What :func:`load` returns: ``network``, ``state`` (or None), ``epoch``, ``bregman_state`` (or None),
    ``previous_parameters`` (or None: implicit SGD's theta^{k-1}, the momentum's velocity), ``position``
    (or None: where a fit stopped inside epoch ``epoch``, see :meth:`ImplicitSGD.fit`)."""

    def __init__(self, network, state=None, epoch=0, bregman_state=None, previous_parameters=None,
                 position=None):
        self.network = network
        self.state = state
        self.epoch = int(epoch)
        self.bregman_state = bregman_state
        self.previous_parameters = previous_parameters
        self.position = position

    def __repr__(self):
        return f"Checkpoint({self.network!r}, state={'yes' if self.state else 'no'}, epoch={self.epoch})"


def save(path, network, state=None, epoch=0, bregman_state=None, previous_parameters=None, position=None):
    """Write ``network`` (and the solver state) to ``path`` (an ``.npz`` file; ``.npz`` is added to a
    path without it, as NumPy does).

    The write is atomic: the checkpoint goes to a temporary file beside ``path``, is flushed to
    disk, and replaces ``path`` in one ``os.replace``, so a process killed during a save leaves the
    previous checkpoint intact (and at worst a stray temporary file). ``position``: where a fit
    stopped inside epoch ``epoch`` (an interrupted result's ``position``), None at an epoch's end.
    """
    if not isinstance(network, LiftedNetwork):
        raise TypeError(f"network must be a LiftedNetwork, got {type(network).__name__}")
    config = {
        "format": _FORMAT,
        "widths": network.widths,
        # the operators, when any layer is not dense (their configs: a network of dense layers
        # is described by its widths, as before operators existed)
        "layers": None if all(type(op) is Dense for op in network.layers) else _layer_configs(network),
        "activations": [[a.name, a.params] for a in network.activations],
        # during a fit with a penalty continuation: the weights it began with (it grows them by epoch)
        "lambdas": list(getattr(network, "_lambdas_of_fit", network.lambdas)),
        "dtype": network.dtype.name,
        "penalty": network.penalty,
        "n_threads": network.n_threads,
        "epoch": int(epoch),
        "has_state": state is not None,
        "has_bregman_state": bregman_state is not None,
        "has_previous_parameters": previous_parameters is not None,
        "position": _position_config(position, network.n_layers),
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
    if previous_parameters is not None:
        arrays["theta_previous"] = check_parameter_vector(network, previous_parameters, "previous_parameters")
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


def _position_config(position, n_layers):
    """``position`` as JSON (its steps as lists; floats round-trip exactly through ``json``)."""
    if position is None:
        return None
    from .solvers._stop import check_position

    checked = check_position(position, None, n_layers)
    steps = checked["steps"]
    if steps is not None:
        steps = [steps[0].tolist(), steps[1].tolist(), steps[2]]
    return {"batch": checked["batch"], "energies": checked["energies"], "steps": steps}


def _layer_configs(network):
    configs = []
    for l, op in enumerate(network.layers, start=1):
        try:
            configs.append(op.get_config())
        except NotImplementedError as exc:
            raise ValueError(f"layer {l}: {exc}") from None
    return configs


def load(path):
    """Read a checkpoint written by :func:`save`; returns a :class:`Checkpoint`.

    Raises ``OSError`` when the file cannot be read, and ``ValueError`` naming what is wrong when it
    is not a complete checkpoint of this format: not an ``.npz``, a configuration that does not
    describe a network, missing or unexpected arrays, arrays of the wrong shape or dtype, or
    non-finite parameters.
    """
    import zipfile

    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a bregman_solvers checkpoint (not a readable .npz: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not a bregman_solvers checkpoint (a single array, not an .npz)")
    with data:
        try:
            return _checkpoint(path, data)
        except (KeyError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise ValueError(f"{path} is a damaged checkpoint: {exc}") from None


def _checkpoint(path, data):
    if "config" not in data:
        raise ValueError(f"{path} is not a bregman_solvers checkpoint (no config)")
    try:
        config = json.loads(str(data["config"]))
    except ValueError as exc:
        raise ValueError(f"{path}: the checkpoint's config is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != _FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format "
                         f"{config.get('format') if isinstance(config, dict) else config!r}")
    from ._validation import check_widths
    from .activations import get_activation
    from .operators import dense_layers, operator_from_config

    try:
        widths = check_widths(config["widths"])
        layers = None if config.get("layers") is None else [operator_from_config(c) for c in config["layers"]]
        if layers is None:
            layers = dense_layers(widths)
        L = len(layers)
        has_state, has_bregman = bool(config["has_state"]), bool(config["has_bregman_state"])
        has_previous = bool(config.get("has_previous_parameters", False))   # absent before the momentum
        epoch = config["epoch"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint's config does not describe a network ({exc!r})") from None
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"{path}: the checkpoint's epoch must be an integer >= 0, got {epoch!r}")
    expected = {"config", *(f"W{l}" for l in range(L)), *(f"b{l}" for l in range(L))}
    expected |= {f"X{h}" for h in range(L - 1)} if has_state else set()
    expected |= {f"v{l}" for l in range(L)} if has_bregman else set()
    expected |= {"theta_previous"} if has_previous else set()
    found = set(data.files)
    if found != expected:
        raise ValueError(f"{path}: the checkpoint's arrays do not match its network "
                         f"(missing {sorted(expected - found)}, unexpected {sorted(found - expected)})")
    # the arrays' shapes before the network is made: a config cannot make it allocate more than the file holds
    for l, op in enumerate(layers):
        for name, shape in ((f"W{l}", tuple(op.weight_shape)), (f"b{l}", tuple(op.bias_shape))):
            if data[name].shape != shape:
                raise ValueError(f"{path}: {name} must have shape {shape} (the config's layers), "
                                 f"got {data[name].shape}")
    try:
        acts = [get_activation(name, **params) for name, params in config["activations"]]
        net = LiftedNetwork(layers, acts, config["lambdas"], dtype=config["dtype"], penalty=config["penalty"],
                            n_threads=config["n_threads"])
        if net.widths != widths:
            raise ValueError(f"the layers' widths {net.widths} differ from the config's {widths}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint's config does not describe a network ({exc!r})") from None
    net.set_parameters([data[f"W{l}"] for l in range(L)], [data[f"b{l}"] for l in range(L)])
    state = None
    if has_state:
        state = LiftedState([data[f"X{h}"].copy() for h in range(L - 1)])
        if any(h.ndim != 2 for h in state.hidden):
            raise ValueError(f"{path}: the auxiliary variables X0.. must be 2-D arrays")
        net.check_state(state, state.n_samples)
    breg = None
    if has_bregman:
        breg = BregmanState([data[f"v{l}"].copy() for l in range(L)])
        for l, (v, w) in enumerate(zip(breg.v, net.weights)):
            if v.shape != w.shape:
                raise ValueError(f"{path}: v{l} must have the shape of W{l} {w.shape}, got {v.shape}")
    previous = None
    if has_previous:
        try:
            previous = check_parameter_vector(net, data["theta_previous"], "previous_parameters")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: theta_previous: {exc}") from None
    position = config.get("position")          # absent before stops at a batch boundary
    if position is not None:
        from .solvers._stop import check_position

        try:
            position = check_position(position, None, L)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return Checkpoint(net, state, epoch, breg, previous, position)
