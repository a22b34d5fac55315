"""What every loss shares: the reduction, the checks on prediction and target, and the repr."""

from __future__ import annotations

import inspect
import math
from typing import Any

from .._checks import expect, owner_name
from ..namespace import array_namespace, dtype_name, is_array

REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """A loss: ``loss(pred, target) -> (value, dL/dpred)``; value is 0-d unless reduction="none".

    With reduction="none", value holds one loss per element (per sample for the class losses)
    and the gradient returned is that of their sum, so it can be passed straight to backprop.
    A subclass writes its maths once, in ``_terms``; ``__call__`` and ``parts`` reduce it.
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred: Any, target: Any) -> tuple[Any, Any]:
        values, count, grad, scale = self._terms(pred, target, self.reduction == "none")
        if self.reduction != "mean":
            return values, grad if scale == 1 else grad * scale
        if isinstance(count, int):
            # sum / n is xp.mean's own arithmetic (NumPy's mean sums, then divides), without
            # the mean wrapper's Python bookkeeping, which costs more than a small loss itself
            if scale == 1 or count == 0:
                grad /= count  # grad is the loss's own new array
            else:
                grad = grad * (scale / count)
            return values / count, grad
        # a weighted mean over nothing (every label ignored) is 0/0 = nan, as in torch, but its
        # gradient is 0 there (grad is all zeros), not nan
        if scale != 1:
            grad = grad * scale
        return values / count, grad / array_namespace(grad).where(count > 0, count, 1)

    def parts(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        """(total, count, grad): the sum of the per-row terms, what the reduction divides it by,
        and the gradient of the total with respect to ``pred``.

        ``count`` is the mean's divisor for reduction="mean" (the number of elements, or the
        summed class weights of the labels kept), 1 for "sum", and the number of per-row values
        for "none" (fit reports their mean; the gradient is that of their sum, as ``__call__``
        gives it). ``__call__`` is built on the same terms; data-parallel training sums each
        rank's total, count and gradient and divides by the global count.
        """
        per_row = self.reduction == "none"
        values, count, grad, scale = self._terms(pred, target, per_row)
        if per_row:
            count, values = math.prod(values.shape), array_namespace(values).sum(values)
        elif self.reduction == "sum":
            count = 1
        return values, count, grad if scale == 1 else grad * scale

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        """(values, count, grad, scale): the per-row terms (``per_row``) or their sum, the
        mean's divisor (an int, or a 0-d array for a weighted mean), and the gradient of
        their sum divided by ``scale``, a constant factor left for the reduction to fold into
        its divisor, so the gradient takes one pass, not two."""
        raise NotImplementedError

    def _summed(self, xp: Any, elementwise: Any, grad: Any, per_row: bool,
                scale: float = 1) -> tuple[Any, Any, Any, float]:
        """_terms of per-element terms, whose mean divides by their number."""
        return (elementwise if per_row else xp.sum(elementwise), math.prod(elementwise.shape),
                grad, scale)

    def _namespace(self, pred: Any, target: Any, **weights: Any) -> Any:
        """The common namespace, after checking pred and target are float arrays alike in shape
        and dtype, and each of ``weights`` (None where absent) a float array in the same place
        that broadcasts to the prediction's shape without growing it."""
        xp = expect(self, pred, what="prediction")
        expect(self, target, like=pred, dtype=None, what="target", like_what="prediction")
        if pred.shape != target.shape:
            one_column = pred.ndim == 2 and pred.shape[1] == 1 and target.shape == pred.shape[:1]
            hint = "; a 1-D target needs one column: y.reshape(-1, 1)" if one_column else ""
            raise ValueError(f"{type(self).__name__}: expected a target of shape "
                             f"{tuple(pred.shape)} like the prediction, got shape "
                             f"{tuple(target.shape)}{hint}")
        if target.dtype != pred.dtype:  # the prediction is a float: expect names what is wrong
            expect(self, target, like=pred, what="target", like_what="prediction")
        for name, weight in weights.items():
            if weight is None:
                continue
            expect(self, weight, like=pred, what=name, like_what="prediction")
            wshape, shape = tuple(weight.shape), tuple(pred.shape)
            if len(wshape) > len(shape) or any(
                    w not in (1, s) for w, s in zip(reversed(wshape), reversed(shape))):
                raise ValueError(f"{type(self).__name__}: {name} of shape {wshape} does not "
                                 f"broadcast to the prediction's shape {shape}")
        return xp

    def __repr__(self) -> str:
        # the constructor's arguments that differ from their defaults, then the reduction
        shown = []
        for name, param in inspect.signature(type(self)).parameters.items():
            value = _show(getattr(self, name, param.default))
            if name != "reduction" and value != repr(param.default):
                shown.append(f"{name}={value}")
        return f"{type(self).__name__}({', '.join([*shown, f'reduction={self.reduction!r}'])})"


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

