"""Optimizers (simplest first), gradient clipping and learning-rate schedules."""

from . import schedules
from .clip import clip_grad_norm, clip_grad_value
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "clip_grad_norm",
           "clip_grad_value", "schedules"]
