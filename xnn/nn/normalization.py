"""Normalisation layers: BatchNorm1d (over the batch) and LayerNorm (over the features).

Both normalise x_hat = (x - mean) / sqrt(var + eps) with the biased variance, then scale by
``weight`` and shift by ``bias``. Their backprop shares one rule, because x_hat depends on x
through the mean and the variance as well as directly.
"""

from __future__ import annotations

from typing import Any, Iterator

from .._checks import expect, flag, float_dtype, integer, number
from .init import ones, zeros
from .module import Backprop, Module, Parameter

__all__ = ["BatchNorm1d", "LayerNorm"]


def _normalized_backprop(xp: Any, g: Any, x_hat: Any, inv_std: Any, axis: int) -> Any:
    """dL/dx for x_hat = (x - mean) inv_std, given g = dL/dx_hat, statistics taken along ``axis``.

    dx = inv_std (g - mean(g) - x_hat mean(g x_hat)); dropping the two mean terms (treating the
    statistics as constants) gives a wrong gradient that still looks plausible.
    """
    mean_g = xp.mean(g, axis=axis, keepdims=True)
    mean_gx = xp.mean(g * x_hat, axis=axis, keepdims=True)
    return inv_std * (g - mean_g - x_hat * mean_gx)


class BatchNorm1d(Module):
    """Normalise each feature over the batch; x: (batch, num_features) -> same shape.

    Training uses the batch's statistics and updates the running ones (the variance unbiased,
    as PyTorch does); eval mode uses the running statistics. Same semantics, parameter and
    buffer names as torch.nn.BatchNorm1d.

    Parameters
    ----------
    num_features:
        Width of the input.
    eps:
        Added to the variance before the square root.
    momentum:
        Weight of the new batch in the running statistics; None averages all batches equally.
    affine:
        Whether to learn ``weight`` (initially ones) and ``bias`` (initially zeros).
    track_running_stats:
        Whether to keep ``running_mean`` and ``running_var``; without them eval mode also
        normalises with the batch's statistics.
    dtype:
        "float32" or "float64"; None takes xnn's default dtype.
    """

    _BUFFERS = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: Any = None) -> None:
        self.num_features = integer(self, "num_features", num_features, low=1)
        self.eps = number(self, "eps", eps, low=0.0, low_open=True)
        self.momentum = (None if momentum is None else
                         number(self, "momentum", momentum, low=0.0, high=1.0))
        self.affine = flag(self, "affine", affine)
        self.track_running_stats = flag(self, "track_running_stats", track_running_stats)
        dtype = float_dtype(self, dtype)
        shape = (num_features,)
        self.weight = Parameter(ones(shape, dtype)) if affine else None
        self.bias = Parameter(zeros(shape, dtype)) if affine else None
        if self.track_running_stats:
            self.running_mean = zeros(shape, dtype)
            self.running_var = ones(shape, dtype)
            self.num_batches_tracked = zeros((), "int64")

    @property
    def batch_dependent(self) -> bool:
        """Whether evaluation mode normalises with the batch's statistics (no running ones),
        so a row's output depends on the rows beside it."""
        return not self.track_running_stats

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        names = self._BUFFERS if self.track_running_stats else ()
        return ((name, getattr(self, name)) for name in names)

    def load_buffer(self, name: str, value: Any) -> None:
        if not self.track_running_stats or name not in self._BUFFERS:
            raise KeyError(name)
        setattr(self, name, value)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        w = self.weight.value if self.affine else None
        like = w if self.affine else self.running_mean if self.track_running_stats else None
        xp = expect(self, x, like=like, ndim=2, features=self.num_features)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            n = x.shape[0]
            if n is not None and n < 2:  # None: unknown until run (xnn.onnx.export's trace)
                raise ValueError(f"BatchNorm1d: batch statistics need more than 1 sample per "
                                 f"feature, got input shape {tuple(x.shape)}; use a larger "
                                 f"batch, or model.eval() to use the running statistics")
            mean, var = xp.mean(x, axis=0), xp.var(x, axis=0)  # biased (1/n), as PyTorch
            if self.training and self.track_running_stats:
                self._update_running_stats(xp, mean, var, n)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / xp.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        y = x_hat * w + self.bias.value if self.affine else x_hat

        def backprop(dy: Any) -> Any:
            g = dy
            if self.affine:
                self.weight.accumulate(xp.sum(dy * x_hat, axis=0))  # dL/dweight = sum dy x_hat
                self.bias.accumulate(xp.sum(dy, axis=0))            # dL/dbias = sum dy
                g = dy * w                                          # dL/dx_hat
            if batch_stats:
                return _normalized_backprop(xp, g, x_hat, inv_std, axis=0)
            return g * inv_std  # running statistics are constants: dx = g / sqrt(var + eps)

        return y, backprop

    def _update_running_stats(self, xp: Any, mean: Any, var: Any, n: int) -> None:
        # asarray: NumPy makes a 0-d array plus a number a scalar, which is no buffer
        self.num_batches_tracked = xp.asarray(self.num_batches_tracked + 1)
        if self.momentum is None:  # cumulative average: the k-th batch has weight 1/k
            f = 1 / xp.astype(self.num_batches_tracked, mean.dtype)
        else:
            f = self.momentum
        self.running_mean = (1 - f) * self.running_mean + f * mean
        self.running_var = (1 - f) * self.running_var + f * (var * (n / (n - 1)))  # unbiased

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Normalise each sample over its features; x: (batch, normalized_shape) -> same shape.

    Same semantics and parameter names as torch.nn.LayerNorm over the last axis.

    Parameters
    ----------
    normalized_shape:
        Width of the input (an int, or a one-element tuple as PyTorch also accepts).
    eps:
        Added to the variance before the square root.
    elementwise_affine:
        Whether to learn ``weight`` (initially ones) and ``bias`` (initially zeros).
    bias:
        Whether to learn ``bias`` when ``elementwise_affine``.
    dtype:
        "float32" or "float64"; None takes xnn's default dtype.
    """

    def __init__(self, normalized_shape: int | tuple[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *,
                 dtype: Any = None) -> None:
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm: normalises the last axis only, so normalized_shape "
                                 f"must be an int or a 1-tuple, got {tuple(normalized_shape)}")
            (normalized_shape,) = normalized_shape
        self.normalized_shape = (integer(self, "normalized_shape", normalized_shape, low=1),)
        self.eps = number(self, "eps", eps, low=0.0, low_open=True)
        self.elementwise_affine = flag(self, "elementwise_affine", elementwise_affine)
        dtype = float_dtype(self, dtype)
        shape = self.normalized_shape
        self.weight = Parameter(ones(shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(zeros(shape, dtype)) if elementwise_affine and bias else None

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        w = self.weight.value if self.weight is not None else None
        xp = expect(self, x, like=w, ndim=2, features=self.normalized_shape[0])
        mean = xp.mean(x, axis=-1, keepdims=True)
        var = xp.var(x, axis=-1, keepdims=True)  # biased, as PyTorch's
        inv_std = 1 / xp.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        y = x_hat if w is None else x_hat * w
        if self.bias is not None:
            y = y + self.bias.value

        def backprop(dy: Any) -> Any:
            g = dy
            if w is not None:
                self.weight.accumulate(xp.sum(dy * x_hat, axis=0))  # dL/dweight = sum dy x_hat
                g = dy * w                                          # dL/dx_hat
            if self.bias is not None:
                self.bias.accumulate(xp.sum(dy, axis=0))            # dL/dbias = sum dy
            return _normalized_backprop(xp, g, x_hat, inv_std, axis=-1)

        return y, backprop

    def arguments(self) -> dict[str, Any]:
        return {**super().arguments(), "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
