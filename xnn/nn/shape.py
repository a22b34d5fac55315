"""Flatten: reshape the per-sample axes into one, e.g. images into feature vectors."""

from __future__ import annotations

import math
from typing import Any

from .._checks import expect, integer
from .module import Backprop, Module, arguments_repr

__all__ = ["Flatten"]


class Flatten(Module):
    """Merge axes start_dim..end_dim into one; with the defaults (batch, ...) -> (batch, prod).

    Parameters
    ----------
    start_dim, end_dim:
        First and last axis merged (negative counts from the end), as in torch.nn.Flatten.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = integer(self, "start_dim", start_dim)
        self.end_dim = integer(self, "end_dim", end_dim)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        shape = tuple(x.shape)
        _, merged = self._merge(shape)
        return xp.reshape(x, merged), lambda dy: xp.reshape(dy, shape)  # dx: dy, unmerged

    def _merge(self, shape: tuple) -> tuple[int, tuple]:
        """The first merged axis, and ``shape`` with axes start_dim..end_dim merged into one.
        An unknown axis (None: the batch axis in xnn.onnx.export's trace) makes its axis -1,
        reshape's "what is left"; one at most, as export knows every other axis."""
        start = self.start_dim + len(shape) if self.start_dim < 0 else self.start_dim
        end = self.end_dim + len(shape) if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < len(shape):
            raise ValueError(f"Flatten: cannot merge axes {self.start_dim}..{self.end_dim} of an "
                             f"input of shape {shape}; expected at least {max(start, end) + 1} "
                             f"axes, e.g. (batch, features)")
        merged = shape[start:end + 1]
        size = None if None in merged else math.prod(merged)
        out = shape[:start] + (size,) + shape[end + 1:]
        return start, tuple(-1 if d is None else d for d in out)

    extra_repr = arguments_repr
