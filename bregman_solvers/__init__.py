"""bregman_solvers: lifted Bregman training of neural networks (Wang and Benning).

The package is layered (see ``docs/``): Cython kernels (:mod:`bregman_solvers.kernels`),
proximal activations (:mod:`bregman_solvers.activations`), and on top of them the
lifted network and its solvers.
"""
from . import activations, kernels
from ._config import get_config, show_config
from .activations import Activation, get_activation
from .network import EnergyTerms, LiftedNetwork, LiftedState
from .solvers import ADMM, BlockCoordinateDescent, FitResult, ProximalGradient

try:
    from importlib.metadata import version as _version

    __version__ = _version("bregman_solvers")
except Exception:  # pragma: no cover - running from an uninstalled checkout
    __version__ = "0.0.0+unknown"

__all__ = [
    "ADMM",
    "Activation",
    "BlockCoordinateDescent",
    "EnergyTerms",
    "FitResult",
    "LiftedNetwork",
    "LiftedState",
    "ProximalGradient",
    "activations",
    "get_activation",
    "get_config",
    "kernels",
    "show_config",
]
