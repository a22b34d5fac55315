"""The seed networks of the tutorials xnn grew out of, each defined once: the examples train
them, and ``python -m xnn parity`` compares their training across backends."""

from __future__ import annotations

from typing import Sequence

from . import nn

__all__ = ["xor", "linear", "polynomial", "deep", "arithmetic", "digits"]


def xor() -> nn.Sequential:
    """2-2-1: a sigmoid hidden layer and a sigmoid output, trained with MSE."""
    return nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())


def linear() -> nn.Linear:
    """One neuron, y = m x + b."""
    return nn.Linear(1, 1)


def polynomial(hidden: int = 64) -> nn.Sequential:
    """1-hidden-1 with one tanh hidden layer, for polynomial regression."""
    return nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))


def deep(layer_dims: Sequence[int] = (2, 32, 16, 8, 1)) -> nn.Sequential:
    """The L-layer network of a list of widths: Linear + ReLU (He-initialised) for every hidden
    width, then Linear + Sigmoid for the output."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(layer_dims[:-2], layer_dims[1:-1]):
        layers += [nn.Linear(fan_in, fan_out, init=nn.init.he_uniform), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(layer_dims[-2], layer_dims[-1]), nn.Sigmoid())


def arithmetic() -> nn.Sequential:
    """2-64-64-3 ReLU, learning (a, b) -> (a + b, a - b, |a - b|)."""
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 3))


def digits() -> nn.Sequential:
    """64-128-10 for 8x8 digit images: ReLU, dropout 0.1, and logits for a softmax."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
