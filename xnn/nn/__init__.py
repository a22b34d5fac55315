"""Layers and containers."""

from . import init
from .activations import ReLU, Sigmoid, Tanh
from .linear import Linear
from .module import Module, Parameter, Sequential

__all__ = ["init", "Module", "Parameter", "Sequential", "Linear", "Sigmoid", "Tanh", "ReLU"]
