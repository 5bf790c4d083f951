"""Solvers of the lifted Bregman training problem (one module per method family)."""
from ._base import FitResult, LiftedSolver
from .admm import ADMM
from .backprop import SGDBP, GradientDescentBP, ImplicitSGDBP
from .block_coordinate import BlockCoordinateDescent
from .proximal_gradient import ProximalGradient
from .stochastic import ImplicitSGD, StochasticProximalGradient
from .averaging import ModelAveraging
from ._batches import BatchProblem
from ._relax import relaxed_energy
from ._safeguard import Safeguard
from ._stop import request_stop

__all__ = ["ADMM", "BatchProblem", "GradientDescentBP", "ImplicitSGDBP", "SGDBP",
           "BlockCoordinateDescent", "FitResult", "ImplicitSGD", "LiftedSolver", "ModelAveraging",
           "ProximalGradient", "Safeguard", "StochasticProximalGradient", "relaxed_energy",
           "request_stop"]
