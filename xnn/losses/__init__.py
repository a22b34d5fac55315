"""Losses: each returns its value and the gradient with respect to the prediction."""

from .base import Loss
from .regression import MSELoss

__all__ = ["Loss", "MSELoss"]
