"""Solvers of the lifted Bregman training problem (one module per method family)."""
from ._base import FitResult, LiftedSolver
from .admm import ADMM
from .block_coordinate import BlockCoordinateDescent
from .proximal_gradient import ProximalGradient

__all__ = ["ADMM", "BlockCoordinateDescent", "FitResult", "LiftedSolver", "ProximalGradient"]
