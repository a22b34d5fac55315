"""Losses for real-valued targets."""

from __future__ import annotations

import math
from typing import Any

from .base import Loss

__all__ = ["MSELoss"]


class MSELoss(Loss):
    """Mean squared error, (pred - target)^2 averaged (or summed) over every element; L2 loss."""

    def __call__(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = self._namespace(pred, target)
        diff = pred - target
        return self._reduce(xp, diff * diff, 2 * diff, math.prod(diff.shape))  # d/dp (p-t)^2 = 2(p-t)
