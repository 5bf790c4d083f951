"""The package's own exceptions and warnings.

Each derives from the built-in (or scikit-learn) class a caller would already catch,
so ``except FloatingPointError`` or a filter on scikit-learn's ``ConvergenceWarning``
keeps working.
"""
__all__ = ["ConvergenceWarning", "DivergenceError", "DivergenceWarning"]


class DivergenceError(FloatingPointError):
    """The lifted energy (or an iterate) became non-finite: the steps were too large.

    Raised by the solvers after restoring the last finite parameters. Attributes:
    ``steps``, the step sizes in use (a dict), and ``epoch`` (None outside an epoch loop).
    """

    def __init__(self, message, steps=None, epoch=None, at_start=False):
        super().__init__(message)
        self.steps = {} if steps is None else dict(steps)
        self.epoch = epoch
        #: Whether the energy was already non-finite (or past the bound) before the batch's steps
        self.at_start = at_start


class DivergenceWarning(RuntimeWarning):
    """A stochastic fit diverged and recovered: it backed off and halved its steps."""


def _convergence_warning():
    try:  # scikit-learn is optional: its warning class is the one pipelines filter on
        from sklearn.exceptions import ConvergenceWarning as base
    except ImportError:  # pragma: no cover - depends on the environment
        base = UserWarning

    class ConvergenceWarning(base):
        """A solver stopped at its iteration limit before its tolerance was met
        (scikit-learn's ``ConvergenceWarning`` when scikit-learn is installed)."""

    ConvergenceWarning.__module__ = __name__
    ConvergenceWarning.__qualname__ = "ConvergenceWarning"
    return ConvergenceWarning


def __getattr__(name):
    # ConvergenceWarning is made on first use, so that `import bregman_solvers` does not import
    # scikit-learn (1.1 s of a 1.9 s import) for a class that only a fit's end may need
    if name == "ConvergenceWarning":
        globals()[name] = cls = _convergence_warning()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
