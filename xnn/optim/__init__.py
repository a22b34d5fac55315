"""Optimizers."""

from .optimizers import SGD, Optimizer

__all__ = ["Optimizer", "SGD"]
