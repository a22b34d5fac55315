"""What every loss shares: the reduction, and the checks on prediction and target."""

from __future__ import annotations

from typing import Any

from .._checks import check_float
from ..backend import array_namespace

REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """A loss: ``loss(pred, target) -> (value, dL/dpred)``; value is 0-d unless reduction="none".

    With reduction="none", value holds one loss per element and the gradient returned is that of
    their sum, so it can be passed straight to backprop.
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred: Any, target: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def _namespace(self, pred: Any, target: Any) -> Any:
        """The common namespace, after checking both are float arrays of the same shape."""
        xp = array_namespace(pred, target)
        check_float(self, xp, pred, "prediction")
        check_float(self, xp, target, "target")
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"{type(self).__name__}: target shape {tuple(target.shape)} does "
                             f"not match prediction shape {tuple(pred.shape)}")
        return xp

    def _reduce(self, xp: Any, elementwise: Any, grad: Any, count: int) -> tuple[Any, Any]:
        """Apply the reduction to per-element losses and to their gradient."""
        if self.reduction == "mean":
            return xp.mean(elementwise), grad / count
        if self.reduction == "sum":
            return xp.sum(elementwise), grad
        return elementwise, grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"
