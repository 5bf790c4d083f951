"""bregman_solvers: lifted Bregman training of neural networks (Wang and Benning).

The package is layered (see ``docs/``): Cython kernels (:mod:`bregman_solvers.kernels`),
proximal activations (:mod:`bregman_solvers.activations`), and on top of them the
lifted network and its solvers.
"""
import os

# Thread policy (see docs/install.rst, "Threads"). The solvers alternate BLAS products
# (OpenBLAS's own pthreads) with OpenMP passes over samples. With libgomp's default
# spin-waiting, the idle OpenMP threads keep the cores busy while BLAS runs and an
# iteration of a 784-wide network on a batch of 100 ran 5x slower on 2 cores
# (OpenBLAS issue 3187, scikit-learn issues 17334 and 28883). Passive waiting removes
# that. It must be set before libgomp is loaded, i.e. before our kernels are
# imported; an explicit OMP_WAIT_POLICY of the user's is respected.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import activations, kernels  # noqa: E402
from ._config import get_config, show_config  # noqa: E402
from .activations import Activation, get_activation  # noqa: E402
from .network import EnergyTerms, LiftedNetwork, LiftedState  # noqa: E402
from . import datasets, regularisers, schedules  # noqa: E402
from .persistence import Checkpoint, load, save  # noqa: E402
from .solvers import (  # noqa: E402
    ADMM,
    BlockCoordinateDescent,
    FitResult,
    GradientDescentBP,
    ImplicitSGD,
    ImplicitSGDBP,
    ModelAveraging,
    ProximalGradient,
    SGDBP,
    StochasticProximalGradient,
)

try:
    from importlib.metadata import version as _version

    __version__ = _version("bregman_solvers")
except Exception:  # pragma: no cover - running from an uninstalled checkout
    __version__ = "0.0.0+unknown"

__all__ = [
    "ADMM",
    "Activation",
    "Checkpoint",
    "datasets",
    "load",
    "save",
    "BlockCoordinateDescent",
    "EnergyTerms",
    "FitResult",
    "GradientDescentBP",
    "ImplicitSGDBP",
    "SGDBP",
    "ImplicitSGD",
    "ModelAveraging",
    "StochasticProximalGradient",
    "regularisers",
    "schedules",
    "LiftedNetwork",
    "LiftedState",
    "ProximalGradient",
    "activations",
    "get_activation",
    "get_config",
    "kernels",
    "show_config",
]
