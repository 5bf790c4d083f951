"""bregman_solvers: lifted Bregman training of neural networks (Wang and Benning).

The package is layered (see ``docs/``): Cython kernels (:mod:`bregman_solvers.kernels`),
proximal activations (:mod:`bregman_solvers.activations`), and on top of them the
lifted network and its solvers.
"""
import os


# the OpenMP wait policy must be in the environment before the kernels load libgomp
from ._runtime import OPENMP_LOADED_BEFORE  # noqa: E402,F401


def _kernels_missing(error):
    """The ImportError for compiled kernels that are not there, saying why and what to do."""
    here = os.path.dirname(os.path.abspath(__file__))
    source_checkout = os.path.exists(os.path.join(os.path.dirname(here), "setup.py"))
    advice = ("This is a source checkout: Python imports the package from this folder (the current "
              "directory comes first on sys.path), not the installed one. Run Python from another "
              "directory, or build the kernels here with `python -m pip install -e .`"
              if source_checkout else
              "Reinstall the package (`python -m pip install bregman_solvers`) with a C compiler available")
    return ImportError(f"bregman_solvers' compiled kernels are not built in {here} ({error}). {advice}.")


try:
    from ._kernels import _activations, _lifted, _openmp, _steps  # noqa: E402,F401
except ImportError as _error:
    raise _kernels_missing(_error) from None

from . import activations, kernels  # noqa: E402
from ._config import get_config, show_config  # noqa: E402
from .activations import Activation, get_activation  # noqa: E402
from .network import EnergyTerms, LiftedNetwork, LiftedState  # noqa: E402
from . import operators  # noqa: E402
from .operators import Dense, Operator  # noqa: E402
from .convolution import AvgPooled, Conv2d  # noqa: E402
from .residual import Residual  # noqa: E402
from . import architectures  # noqa: E402
from . import datasets, exceptions, regularisers, schedules  # noqa: E402
from .exceptions import DivergenceError, DivergenceWarning  # noqa: E402
from .persistence import Checkpoint, load, save  # noqa: E402
from .distributed import DistributedImplicitSGD  # noqa: E402  (Dask itself is imported by fit)
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



def __getattr__(name):
    # made on first use: it derives from scikit-learn's, which `import bregman_solvers` does not import
    if name == "ConvergenceWarning":
        return exceptions.ConvergenceWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    from importlib.metadata import version as _version

    __version__ = _version("bregman_solvers")
except Exception:  # pragma: no cover - running from an uninstalled checkout
    __version__ = "0.0.0+unknown"

__all__ = [
    "ADMM",
    "architectures",
    "AvgPooled",
    "Conv2d",
    "Residual",
    "Dense",
    "Operator",
    "operators",
    "Activation",
    "Checkpoint",
    "datasets",
    "load",
    "save",
    "BlockCoordinateDescent",
    "ConvergenceWarning",
    "DivergenceError",
    "DivergenceWarning",
    "DistributedImplicitSGD",
    "EnergyTerms",
    "exceptions",
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
