"""Standardize: a model's own feature scaling, fitted from training rows with ``adapt``.

y = (x - mean) / std per feature, as ``xnn.data.StandardScaler`` computes it (its fit is the
one owner of the statistics), kept as buffers so they travel in checkpoints and ONNX files:
a saved or exported model then takes raw features.
"""

from __future__ import annotations

from typing import Any

from .._checks import expect, float_dtype, integer
from ..backend import (array_namespace, asarray, backend_of, dtype_name, get_backend,
                       resolve_dtype, to_numpy)
from ..data import NotFittedError, StandardScaler, _taken
from .module import Backprop, Module

__all__ = ["Standardize"]


class Standardize(Module):
    """y = (x - mean) / std per feature; x: (batch, num_features) -> same shape.

    The statistics come from :meth:`adapt` (Keras's ``Normalization.adapt``) or from ``mean``
    and ``std``; they are buffers, not parameters, so training leaves them as they are. A
    layer without them refuses to run or export until ``adapt`` is called.

    Parameters
    ----------
    num_features:
        Width of the input.
    mean, std:
        The statistics, each a number or an array-like of ``num_features`` numbers (std
        positive); None for both: call ``adapt`` before use.
    dtype:
        "float32" or "float64"; None takes xnn's default dtype.

    Examples
    --------
    >>> import numpy as np, xnn
    >>> norm = xnn.nn.Standardize(2)
    >>> norm.adapt(np.array([[1.0, 10.0], [3.0, 10.0]]))
    Standardize(2)
    >>> xnn.to_numpy(norm(xnn.asarray([[2.0, 12.0]]))).tolist()
    [[0.0, 2.0]]
    """

    def __init__(self, num_features: int, *, mean: Any = None, std: Any = None,
                 dtype: Any = None) -> None:
        self.num_features = integer(self, "num_features", num_features, low=1)
        self.dtype = dtype_name(resolve_dtype(get_backend().xp, float_dtype(self, dtype)))
        self.mean = self.std = None
        if (mean is None) != (std is None):
            raise ValueError("Standardize: give both mean and std, or neither and call "
                             "adapt(X) on the training rows")
        if mean is not None:
            self.mean, self.std = self._statistic("mean", mean), self._statistic("std", std)
            xp = array_namespace(self.std)
            finite = xp.all(xp.isfinite(self.mean)) & xp.all(xp.isfinite(self.std))
            if not bool(finite & xp.all(self.std > 0)):
                raise ValueError("Standardize: mean must be finite and std finite and positive")

    def _statistic(self, name: str, value: Any) -> Any:
        """``value`` as a (num_features,) array of the layer's dtype on the active backend; a
        number is broadcast (without allocating: loading a checkpoint passes one)."""
        try:
            a = asarray(value, dtype=self.dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"Standardize: {name} must be a number or an array-like of numbers: "
                            f"{err}") from err
        if a.ndim == 0:
            return array_namespace(a).broadcast_to(a, (self.num_features,))
        if tuple(a.shape) != (self.num_features,):
            raise ValueError(f"Standardize: {name} must be a number or have shape "
                             f"({self.num_features},), got shape {tuple(a.shape)}")
        return a

    def adapt(self, X: Any) -> Standardize:
        """Set mean and std from the rows of ``X`` (samples, num_features), as
        ``StandardScaler().fit(X)`` computes them: population std, features with zero spread
        left unscaled (std 1). Returns the layer.

        ``X`` is what fit takes (an array of any backend, a list, a pandas DataFrame); the
        statistics are kept in the layer's dtype where they were (on the active backend the
        first time), so call adapt before ``model.to()``. NaN or Inf in X is a ValueError naming the features.
        """
        owner = "Standardize.adapt"
        X = _taken(owner, "X", X, labels_ok=False)  # a list or DataFrame, as fit takes
        xp = expect(owner, X, ndim=2, features=self.num_features, what="X")
        scaler = StandardScaler().fit(X)
        bad = ~(xp.isfinite(scaler.mean) & xp.isfinite(scaler.scale))
        if bool(xp.any(bad)):
            features = to_numpy(bad).nonzero()[0].tolist()
            raise ValueError(f"{owner}: X has NaN or Inf in feature(s) {features}; clean or "
                             f"drop those rows first")
        target = get_backend() if self.mean is None else backend_of(self.mean)
        self.mean = asarray(scaler.mean, dtype=self.dtype, backend=target)
        self.std = asarray(scaler.scale, dtype=self.dtype, backend=target)
        return self

    def named_buffers(self) -> Any:
        return iter(() if self.mean is None else (("mean", self.mean), ("std", self.std)))

    def load_buffer(self, name: str, value: Any) -> None:
        if self.mean is None or name not in ("mean", "std"):
            raise KeyError(name)
        setattr(self, name, value)
        self.dtype = dtype_name(value.dtype)  # model.to(dtype=...) casts the buffers

    def arguments(self) -> dict[str, Any]:
        """A checkpoint rebuilds an adapted layer from mean 0 and std 1, placeholders that its
        stored buffers then replace (as Linear's stored weight replaces its initial one)."""
        adapted = {} if self.mean is None else {"mean": 0.0, "std": 1.0}
        return {"num_features": self.num_features, **adapted, "dtype": self.dtype}

    def _check_adapted(self) -> None:
        if self.mean is None:
            raise NotFittedError("Standardize: no statistics yet; call adapt(X) on the "
                                 "training rows first (or give mean and std)")

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        self._check_adapted()
        expect(self, x, like=self.mean, ndim=2, features=self.num_features,
               like_what="statistics")
        std = self.std
        return (x - self.mean) / std, lambda dy: dy / std  # dL/dx = dy / std

    def extra_repr(self) -> str:
        return f"{self.num_features}" + ("" if self.mean is not None else ", adapted=False")
