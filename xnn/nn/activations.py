"""Activation functions, each its own layer, with the semantics of the PyTorch class of the name.

Every activation takes a float array of any rank. The derivative is written beside each
backprop, which reuses the saved output where the math allows. Sigmoid, Softplus and
LogSoftmax are written so that inputs of +/-1000 do not overflow, even in float32.
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import check_axis, expect, integer, number
from .module import Backprop, Module, arguments_repr

__all__ = ["Identity", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "GELU", "Softplus", "SiLU",
           "Softmax", "LogSoftmax"]


def sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + e^-x) without overflow: for x < 0 it is computed as e^x / (1 + e^x)."""
    # e^min(x, 0) is 1 for x >= 0 and e^x = e^-|x| below, so one quotient serves both signs
    # with every exponent <= 0 (no where(), which costs more than an exp on small arrays)
    return xp.exp(xp.minimum(x, 0)) / (1 + xp.exp(-xp.abs(x)))


class Identity(Module):
    """y = x: a placeholder where a layer is expected (e.g. "no activation")."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        expect(self, x)
        return x, lambda dy: dy


class ReLU(Module):
    """y = max(x, 0), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        y = xp.maximum(x, 0)
        # dy/dx = 1 where x > 0, else 0 (PyTorch's choice at x == 0); y > 0 exactly where
        # x > 0, so the closure keeps y (which the next layer keeps anyway), not x. A multiply
        # by the 0/1 mask, not where(): NumPy's where() branches per element, over 10x slower
        # on a mask as random as an activation's

        def backprop(dy: Any) -> Any:
            grad = xp.astype(y > 0, dy.dtype)
            grad *= dy  # in place: the mask is a new array
            return grad

        return y, backprop


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope * x, elementwise.

    Parameters
    ----------
    negative_slope:
        Slope for negative inputs; 0.01 as in torch.nn.LeakyReLU.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = number(self, "negative_slope", negative_slope)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        a = self.negative_slope
        y = xp.where(x > 0, x, a * x)
        # dy/dx = 1 where x > 0, else negative_slope (PyTorch's choice at x == 0)
        return y, lambda dy: xp.where(x > 0, dy, a * dy)

    extra_repr = arguments_repr


class ELU(Module):
    """y = x where x > 0, else alpha * (e^x - 1), elementwise.

    Parameters
    ----------
    alpha:
        The value approached as x -> -inf is -alpha; 1.0 as in torch.nn.ELU.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = number(self, "alpha", alpha)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        a = self.alpha
        # expm1 of min(x, 0): the branch where() discards would overflow for large positive x
        y = xp.where(x > 0, x, a * xp.expm1(xp.minimum(x, 0)))
        # dy/dx = 1 where x > 0, else alpha e^x = y + alpha
        return y, lambda dy: xp.where(x > 0, dy, dy * (y + a))

    extra_repr = arguments_repr


class Sigmoid(Module):
    """y = 1 / (1 + e^-x), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        y = sigmoid(expect(self, x), x)
        return y, lambda dy: dy * y * (1 - y)   # dy/dx = y (1 - y)


class Tanh(Module):
    """y = tanh(x), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        y = expect(self, x).tanh(x)
        return y, lambda dy: dy * (1 - y * y)    # dy/dx = 1 - tanh^2


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class GELU(Module):
    """y = x Phi(x) in the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    This is torch.nn.GELU(approximate="tanh"). PyTorch's default, approximate="none", needs
    erf, which the Array API standard does not have; the two differ by less than 5e-4.
    """

    def __init__(self, approximate: str = "tanh") -> None:
        if approximate != "tanh":
            raise ValueError(f"GELU: only approximate='tanh' is available (the Array API "
                             f"standard has no erf for the exact form), got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
        y = 0.5 * x * (1 + t)

        def backprop(dy: Any) -> Any:
            # dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
            inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)

        return y, backprop

    extra_repr = arguments_repr


class Softplus(Module):
    """y = log(1 + e^(beta x)) / beta, and y = x where beta x > threshold (torch.nn.Softplus).

    Parameters
    ----------
    beta:
        Sharpness; larger values approach ReLU. Any nonzero number.
    threshold:
        Above ``beta * x > threshold`` the layer is linear, as PyTorch's is.
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = number(self, "beta", beta)
        if self.beta == 0:
            raise ValueError(f"Softplus: beta must be nonzero, got {beta!r}")
        self.threshold = number(self, "threshold", threshold)

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        z = self.beta * x
        # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): the exponent is never positive
        soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / self.beta
        linear = z > self.threshold
        y = xp.where(linear, x, soft)
        # dy/dx = sigmoid(beta x) = 1 - e^(-beta y) (from y itself), and 1 on the linear part
        return y, lambda dy: xp.where(linear, dy, -dy * xp.expm1(-self.beta * y))

    extra_repr = arguments_repr


class SiLU(Module):
    """y = x sigmoid(x) (also called swish), elementwise."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        s = sigmoid(xp, x)
        # dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
        return x * s, lambda dy: dy * s * (1 + x * (1 - s))

def log_softmax(xp: Any, x: Any, axis: int) -> Any:
    """x - log(sum(e^x)) along ``axis``; shifting by the max keeps every exponent <= 0."""
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    shifted -= xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))  # in place: made here
    return shifted


def _empty_axis(xp: Any, x: Any) -> tuple[Any, Backprop]:
    """(Log)softmax over a zero-length axis: nothing to normalise, so an empty output of the
    input's shape, as PyTorch gives (the max that the stable form subtracts has no identity)."""
    return xp.zeros_like(x), lambda dy: xp.zeros_like(x)


class _AlongAxis(Module):
    """The constructor and repr of Softmax and LogSoftmax: one ``axis``, an int."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = integer(self, "axis", axis)

    extra_repr = arguments_repr


class Softmax(_AlongAxis):
    """y = e^x / sum(e^x) along ``axis`` (default -1, the features of a (batch, features) input)."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        check_axis(self, x, self.axis)
        if x.shape[self.axis] == 0:
            return _empty_axis(xp, x)
        # subtracting the max leaves y unchanged and keeps every exponent <= 0
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
        y = e / xp.sum(e, axis=self.axis, keepdims=True)
        # dy_i/dx_j = y_i (delta_ij - y_j), so dx = y (dy - sum(dy y))
        return y, lambda dy: y * (dy - xp.sum(dy * y, axis=self.axis, keepdims=True))


class LogSoftmax(_AlongAxis):
    """y = x - log(sum(e^x)) along ``axis`` (default -1), without overflow for any input."""

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        xp = expect(self, x)
        check_axis(self, x, self.axis)
        if x.shape[self.axis] == 0:
            return _empty_axis(xp, x)
        y = log_softmax(xp, x, self.axis)
        # dy_i/dx_j = delta_ij - softmax_j, and softmax = e^y, so dx = dy - e^y sum(dy)
        return y, lambda dy: dy - xp.exp(y) * xp.sum(dy, axis=self.axis, keepdims=True)
