"""Layers and containers."""

from . import init
from .activations import (ELU, GELU, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU,
                          Softmax, Softplus, Tanh)
from .dropout import Dropout
from .linear import Linear
from .module import Module, Parameter, Sequential
from .normalization import BatchNorm1d, LayerNorm
from .residual import Residual
from .shape import Flatten
from .standardize import Standardize

__all__ = ["init", "Module", "Parameter", "Sequential", "Linear",
           "Identity", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "GELU", "Softplus", "SiLU",
           "Softmax", "LogSoftmax", "Dropout", "BatchNorm1d", "LayerNorm", "Flatten", "Residual",
           "Standardize"]
