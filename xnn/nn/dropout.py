"""Inverted dropout: zero inputs at random while training, and scale the rest to keep the mean."""

from __future__ import annotations

from typing import Any

from .. import random
from .._checks import number, expect
from ..backend import backend_of
from .module import Backprop, Module, arguments_repr

__all__ = ["Dropout"]


class Dropout(Module):
    """y = x * mask / (1 - p) in training, with mask ~ Bernoulli(1 - p); y = x in eval mode.

    Any shape. Masks come from xnn's seeded generator (``xnn.seed``), so one seed drops the
    same entries on every backend.

    Parameters
    ----------
    p:
        Probability of zeroing each entry, in [0, 1]; 0.5 as in torch.nn.Dropout.
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = number(self, "p", p, low=0.0, high=1.0)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        expect(self, x)
        if not self.training or self.p == 0:
            return x, lambda dy: dy
        keep = random.bernoulli(tuple(x.shape), 1 - self.p, dtype=x.dtype,
                                backend=backend_of(x))
        # p == 1 drops everything (as PyTorch does) instead of dividing 0 by 0
        mask = keep * (1 / (1 - self.p)) if self.p < 1 else keep
        return x * mask, lambda dy: dy * mask     # dy/dx = mask / (1 - p)


    extra_repr = arguments_repr
