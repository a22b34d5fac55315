"""A residual (skip) connection around any module of unchanged shape."""

from __future__ import annotations

from typing import Any

from .module import Backprop, Module

__all__ = ["Residual"]


class Residual(Module):
    """y = x + module(x); the wrapped module must keep the input's shape.

    Parameters
    ----------
    module:
        The residual branch, e.g. ``Sequential(Linear(d, d), ReLU(), Linear(d, d))``.
        Its parameters are named ``module.<name>`` in the state dict.
    """

    def __init__(self, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"Residual: expected a Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        branch, branch_backprop = self.module.forward(x)
        # an axis None (unknown until run, in xnn.onnx.export's trace) matches any
        if len(branch.shape) != len(x.shape) or any(
                a != b for a, b in zip(branch.shape, x.shape) if None not in (a, b)):
            raise ValueError(f"Residual: the wrapped {type(self.module).__name__} maps shape "
                             f"{tuple(x.shape)} to {tuple(branch.shape)}; a residual branch "
                             f"must keep the input's shape")
        # dy/dx = I + d module/dx: the gradient flows through the skip and through the branch
        return x + branch, lambda dy: dy + branch_backprop(dy)
