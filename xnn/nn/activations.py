"""Activation functions, each its own layer; backprop reuses the saved output where it can."""

from __future__ import annotations

from typing import Any

from ..backend import array_namespace
from .module import Backprop, Module

__all__ = ["Sigmoid", "Tanh", "ReLU"]


def sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + e^-x) without overflow: for x < 0 it is computed as e^x / (1 + e^x)."""
    z = xp.exp(-xp.abs(x))              # in (0, 1], never overflows
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))


class Sigmoid(Module):
    """y = 1 / (1 + e^-x), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        y = sigmoid(array_namespace(x), x)
        return y, lambda dy: dy * y * (1 - y)   # dy/dx = y (1 - y)


class Tanh(Module):
    """y = tanh(x), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        y = array_namespace(x).tanh(x)
        return y, lambda dy: dy * (1 - y * y)    # dy/dx = 1 - tanh^2

class ReLU(Module):
    """y = max(x, 0), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = array_namespace(x)
        y = xp.maximum(x, 0)
        # dy/dx = 1 where x > 0, else 0 (PyTorch's choice at x == 0)
        return y, lambda dy: xp.where(x > 0, dy, 0)
