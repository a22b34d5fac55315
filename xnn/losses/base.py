"""What every loss shares: the reduction, the checks on prediction and target, and the repr."""

from __future__ import annotations

import math
from typing import Any

from .._checks import expect, owner_name
from ..namespace import dtype_name, is_array

REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """A loss: ``loss(pred, target) -> (value, dL/dpred)``; value is 0-d unless reduction="none".

    With reduction="none", value holds one loss per element (per sample for the class losses)
    and the gradient returned is that of their sum, so it can be passed straight to backprop.
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred: Any, target: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def _namespace(self, pred: Any, target: Any, weight: Any = None,
                   pos_weight: Any = None) -> Any:
        """The common namespace, after checking pred and target are float arrays alike in shape
        and dtype (and the optional weight arrays, None where absent, in the same place)."""
        xp = expect(self, pred, what="prediction")
        expect(self, target, like=pred, dtype=None, what="target", like_what="prediction")
        if pred.shape != target.shape:
            raise ValueError(f"{type(self).__name__}: expected a target of shape "
                             f"{tuple(pred.shape)} like the prediction, got shape "
                             f"{tuple(target.shape)}")
        if target.dtype != pred.dtype:  # the prediction is a float: expect names what is wrong
            expect(self, target, like=pred, what="target", like_what="prediction")
        if weight is not None:
            expect(self, weight, like=pred, what="weight", like_what="prediction")
        if pos_weight is not None:
            expect(self, pos_weight, like=pred, what="pos_weight", like_what="prediction")
        return xp

    def _reduce(self, xp: Any, elementwise: Any, grad: Any, count: Any = None,
                grad_scale: float = 1) -> tuple[Any, Any]:
        """Apply the reduction to per-element losses and to their gradient.

        ``count`` is the divisor of the mean: the number of elements unless given (a 0-d array
        for the weighted mean of the class losses). ``grad_scale``: a constant factor of the
        gradient, folded into the mean's divisor so the gradient takes one pass, not two.
        """
        if self.reduction == "sum":
            return xp.sum(elementwise), grad if grad_scale == 1 else grad * grad_scale
        if self.reduction == "none":
            return elementwise, grad if grad_scale == 1 else grad * grad_scale
        if count is None:
            # sum / n is xp.mean's own arithmetic (NumPy's mean sums, then divides), without
            # the mean wrapper's Python bookkeeping, which costs more than a small loss itself
            n = math.prod(elementwise.shape)
            return xp.sum(elementwise) / n, (grad / n if grad_scale == 1 or n == 0
                                             else grad * (grad_scale / n))
        # a weighted mean over nothing (every label ignored) is 0/0 = nan, as in torch, but its
        # gradient is 0 there (grad is all zeros), not nan
        if grad_scale != 1:
            grad = grad * grad_scale
        return xp.sum(elementwise) / count, grad / xp.where(count > 0, count, 1)

    def _options(self) -> dict[str, Any]:
        """Constructor arguments shown by repr, besides the reduction."""
        return {}

    def __repr__(self) -> str:
        options = {**self._options(), "reduction": self.reduction}
        shown = ", ".join(f"{k}={_show(v)}" for k, v in options.items())
        return f"{type(self).__name__}({shown})"


def _show(value: Any) -> str:
    if is_array(value):
        return f"<{dtype_name(value.dtype)} array of shape {tuple(value.shape)}>"
    return repr(value)


def check_weight(owner: Any, name: str, weight: Any) -> Any:
    """Constructor check: ``weight`` is None or a float array (its shape is checked per call)."""
    if weight is None:
        return None
    if not is_array(weight):
        hint = ""
        if weight in REDUCTIONS:  # BCELoss("sum"): torch's order puts weight first
            hint = f"; pass the reduction by name: {owner_name(owner)}(reduction={weight!r})"
        raise TypeError(f"{owner_name(owner)}: {name} must be an array (xnn.asarray(...)) or "
                        f"None, got {type(weight).__name__}{hint}")
    expect(owner, weight, what=name)
    return weight


def check_broadcasts(owner: Any, name: str, weight: Any, shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``weight`` broadcasts to ``shape`` without growing it."""
    wshape = tuple(weight.shape)
    fits = len(wshape) <= len(shape) and all(
        w in (1, s) for w, s in zip(reversed(wshape), reversed(shape)))
    if not fits:
        raise ValueError(f"{owner_name(owner)}: {name} of shape {wshape} does not broadcast "
                         f"to the prediction's shape {tuple(shape)}")
