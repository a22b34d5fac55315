"""Optimizers, simplest first. Each keeps its state in parameter order and is driven by step()."""

from __future__ import annotations

from typing import Any, Iterable

from ..nn.module import Parameter

__all__ = ["Optimizer", "SGD"]


class Optimizer:
    """Base class: holds the parameters and their per-parameter state."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: item {i} of params is a "
                                f"{type(p).__name__}, not a Parameter (pass model.parameters())")
        if not lr >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr!r}")
        self.lr = lr

    def step(self) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Forget the gradients, so the next backprop starts from zero."""
        for p in self.params:
            p.grad = None


class SGD(Optimizer):
    """Plain stochastic gradient descent: p <- p - lr * grad."""

    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.value = p.value - self.lr * p.grad
