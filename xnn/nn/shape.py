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

    def to_onnx(self, g: Any, x: str) -> str:
        """The ONNX nodes of the evaluation-mode forward (see xnn.onnx.Graph)."""
        shape_in = g.shapes.get(x)
        if shape_in is None:
            g.fail("Flatten needs its input's shape; pass input_shape")
        start, out_shape = self._merge(shape_in)
        if None in out_shape[start + 1:]:
            g.fail(f"Flatten of shape {shape_in} needs the axes after the merged ones known; "
                   f"pass input_shape")
        # Reshape's 0 copies the input's axis of the same index, -1 takes what is left (only
        # the merged axis may be unknown from the start on)
        target = [(0 if i < start else -1) if d is None else d for i, d in enumerate(out_shape)]
        y = g.node("Reshape", [x, g.array(target, dtype="int64")])
        g.shapes[y] = out_shape
        return y

    def _merge(self, shape: tuple) -> tuple[int, tuple]:
        """The first merged axis, and ``shape`` with axes start_dim..end_dim merged into one,
        whose size is None (unknown, as the batch axis of an export) when one of theirs is."""
        start = self.start_dim + len(shape) if self.start_dim < 0 else self.start_dim
        end = self.end_dim + len(shape) if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < len(shape):
            raise ValueError(f"Flatten: cannot merge axes {self.start_dim}..{self.end_dim} of an "
                             f"input of shape {shape}; expected at least {max(start, end) + 1} "
                             f"axes, e.g. (batch, features)")
        merged = shape[start:end + 1]
        size = None if None in merged else math.prod(merged)
        return start, shape[:start] + (size,) + shape[end + 1:]

    extra_repr = arguments_repr
