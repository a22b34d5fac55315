"""Losses for real-valued targets: squared, absolute, and the two that join them (SmoothL1, Huber).

Each takes ``pred`` and ``target`` of the same shape and dtype; d = pred - target below.
"""

from __future__ import annotations

from typing import Any

from .._checks import number
from .base import Loss

__all__ = ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"]


def sign(xp: Any, d: Any) -> Any:
    """-1, 0 or +1 by the sign of d, NaN where d is NaN: xp.sign's values, built from comparisons
    because array-api-compat's sign on CuPy fixes NaN by boolean-mask indexing (a device sync)."""
    s = xp.astype(d > 0, d.dtype) - xp.astype(d < 0, d.dtype)
    return xp.where(xp.isnan(d), d, s)


class MSELoss(Loss):
    """Mean squared error, d^2 averaged (or summed) over every element; L2 loss."""

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target)
        diff = pred - target
        # d/dd d^2 = 2 d; the mean's gradient is d (2 / n), one pass, as torch computes it
        return self._summed(xp, diff * diff, diff, per_row, scale=2)


class L1Loss(Loss):
    """Mean absolute error, |d| averaged (or summed) over every element."""

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target)
        diff = pred - target
        # d|d|/dd = sign(d); at the kink d == 0 sign gives 0, PyTorch's choice
        return self._summed(xp, xp.abs(diff), sign(xp, diff), per_row)


class SmoothL1Loss(Loss):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta: quadratic near 0, L1 beyond.

    Parameters
    ----------
    beta: where the quadratic piece meets the linear one, >= 0; beta = 0 is exactly L1Loss.
    reduction: "mean", "sum" or "none".
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = number(self, "beta", beta, low=0.0)

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target)
        diff = pred - target
        size = xp.abs(diff)
        if self.beta == 0:  # the quadratic piece is empty; writing it out would divide 0 by 0
            return self._summed(xp, size, sign(xp, diff), per_row)
        quadratic = size < self.beta
        value = xp.where(quadratic, 0.5 * diff * diff / self.beta, size - 0.5 * self.beta)
        # d/dd: d / beta inside, sign(d) outside; the two agree (+-1) where they meet
        return self._summed(xp, value, xp.where(quadratic, diff / self.beta, sign(xp, diff)),
                            per_row)


class HuberLoss(Loss):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta): SmoothL1Loss(beta=delta) * delta.

    Parameters
    ----------
    delta: where the quadratic piece meets the linear one, > 0.
    reduction: "mean", "sum" or "none".
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = number(self, "delta", delta, low=0.0, low_open=True)

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target)
        diff = pred - target
        size = xp.abs(diff)
        quadratic = size <= self.delta
        value = xp.where(quadratic, 0.5 * diff * diff, self.delta * (size - 0.5 * self.delta))
        # d/dd: d inside, delta sign(d) outside (the slope is capped at delta)
        return self._summed(xp, value, xp.where(quadratic, diff, self.delta * sign(xp, diff)),
                            per_row)
