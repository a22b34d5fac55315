"""Flatten: reshape the per-sample axes into one, e.g. images into feature vectors."""

from __future__ import annotations

import math
from typing import Any

from .._checks import expect, integer
from .module import Backprop, Module

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
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < x.ndim:
            raise ValueError(f"Flatten: cannot merge axes {self.start_dim}..{self.end_dim} of an "
                             f"input of shape {shape}; expected at least {max(start, end) + 1} "
                             f"axes, e.g. (batch, features)")
        merged = shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
        return xp.reshape(x, merged), lambda dy: xp.reshape(dy, shape)  # dx: dy, unmerged

    def to_onnx(self, g: Any, x: str) -> str:
        """The ONNX nodes of the evaluation-mode forward (see xnn.onnx.Graph)."""
        shape_in = g.shapes.get(x)
        if shape_in is None:
            g.fail("Flatten needs its input's shape; pass input_shape")
        ndim = len(shape_in)
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < ndim:
            g.fail(f"Flatten cannot merge axes {self.start_dim}..{self.end_dim} of an input "
                   f"of shape {shape_in}")
        if None in shape_in[end + 1:]:
            g.fail(f"Flatten of shape {shape_in} needs the axes after the merged ones known; "
                   f"pass input_shape")
        merged = shape_in[start:end + 1]
        size = None if None in merged else math.prod(merged)
        out_shape = shape_in[:start] + (size,) + shape_in[end + 1:]
        # Reshape's 0 copies the input's axis of the same index, -1 takes what is left
        target = [0 if d is None else d for d in out_shape[:start]]
        target += [-1 if size is None else size] + list(out_shape[start + 1:])
        y = g.node("Reshape", [x, g.array(target, dtype="int64")])
        g.shapes[y] = out_shape
        return y

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
