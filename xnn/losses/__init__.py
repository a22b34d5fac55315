"""Losses: each returns its value and the gradient with respect to the prediction."""

from .base import Loss
from .classification import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss
from .regression import HuberLoss, L1Loss, MSELoss, SmoothL1Loss

__all__ = ["Loss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]
