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


def _check_kernels_built():
    """The compiled kernels are there (found, not loaded: loading them waits for first use)."""
    from importlib.util import find_spec

    for name in ("_activations", "_lifted", "_openmp", "_steps"):
        try:
            found = find_spec(f"{__name__}._kernels.{name}") is not None
        except ImportError as error:            # pragma: no cover - a broken _kernels package
            raise _kernels_missing(error) from None
        if not found:
            raise _kernels_missing(f"no module {name}")


_check_kernels_built()

#: What ``bregman_solvers.<name>`` is, imported on first use (PEP 562): ``import bregman_solvers``
#: loads neither NumPy nor SciPy, so the command line installs its Ctrl-C handler within
#: milliseconds of starting (bregman_solvers/_entry.py) and a script pays only for what it uses.
_LAZY = {
    "get_config": "._config", "show_config": "._config",
    "Activation": ".activations", "get_activation": ".activations",
    "EnergyTerms": ".network", "LiftedNetwork": ".network", "LiftedState": ".network",
    "Dense": ".operators", "Operator": ".operators",
    "AvgPooled": ".convolution", "Conv2d": ".convolution",
    "Residual": ".residual",
    "DivergenceError": ".exceptions", "DivergenceWarning": ".exceptions",
    "Checkpoint": ".persistence", "load": ".persistence", "save": ".persistence",
    "DistributedImplicitSGD": ".distributed",
    **{name: ".solvers" for name in ("ADMM", "BlockCoordinateDescent", "FitResult", "GradientDescentBP",
                                     "ImplicitSGD", "ImplicitSGDBP", "ModelAveraging", "ProximalGradient", "SGDBP",
                                     "Safeguard", "StochasticProximalGradient")},
}
_SUBMODULES = ("activations", "architectures", "datasets", "distributed", "estimators", "exceptions", "interop",
               "kernels", "operators", "persistence", "regularisers", "schedules", "solvers")


def _is_submodule(name):
    from importlib.util import find_spec

    try:
        return find_spec(f"{__name__}.{name}") is not None
    except (ImportError, ValueError):
        return False


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES or (not name.startswith("__") and _is_submodule(name)):
        # any submodule, private ones too (``bregman_solvers._threads`` in a monkeypatch path, a pickle)
        value = importlib.import_module(f".{name}", __name__)
    elif name == "__version__":
        value = _version()
    elif name == "ConvergenceWarning":
        # made on first use: it derives from scikit-learn's
        return importlib.import_module(".exceptions", __name__).ConvergenceWarning
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value                     # the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES) | {"ConvergenceWarning"})



def _version():
    """The installed distribution's version (read on first use: scanning the installed
    distributions takes tens of milliseconds)."""
    try:
        from importlib.metadata import version

        return version("bregman_solvers")
    except Exception:  # pragma: no cover - running from an uninstalled checkout
        return "0.0.0+unknown"

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
    "Safeguard",
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
