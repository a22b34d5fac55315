"""The fully connected layer."""

from __future__ import annotations

import functools
import math
from typing import Any

from .. import random
from .._checks import expect, flag, float_dtype, integer
from .init import Initializer, check_initializer, uniform_fan_in
from .module import Backprop, Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """y = x @ weight + bias; x: (batch, in_features) -> (batch, out_features).

    Parameters
    ----------
    in_features, out_features:
        Widths of the input and the output.
    bias:
        Whether to learn an additive bias.
    init:
        Initializer of ``weight`` (shape ``(in_features, out_features)``). The default,
        U(-1/sqrt(in_features), 1/sqrt(in_features)) for weight and bias alike, is
        torch.nn.Linear's, so models ported from PyTorch start from the same distribution.
    bias_init:
        Initializer of ``bias``; None draws it as torch.nn.Linear does.
    dtype:
        "float32" or "float64"; None takes xnn's default dtype.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 init: Initializer = uniform_fan_in, bias_init: Initializer | None = None,
                 dtype: Any = None) -> None:
        self.in_features = integer(self, "in_features", in_features, low=1)
        self.out_features = integer(self, "out_features", out_features, low=1)
        dtype = float_dtype(self, dtype)
        init = check_initializer(self, "init", init)
        self.weight = Parameter(init((in_features, out_features), dtype=dtype))
        bias = flag(self, "bias", bias)
        if bias_init is None:  # torch.nn.Linear's: the weight's U(-b, b), b = 1/sqrt(in_features)
            bound = 1.0 / math.sqrt(in_features)
            bias_init = functools.partial(random.uniform, low=-bound, high=bound)
        bias_init = check_initializer(self, "bias_init", bias_init)
        self.bias = Parameter(bias_init((out_features,), dtype=dtype)) if bias else None

    takes_input_grad = True

    def forward(self, x: Any, *, input_grad: bool = True) -> tuple[Any, Backprop]:
        """``input_grad=False``: the caller will not use dL/dx (``x`` is the data), so backprop
        skips ``dy @ weight.T`` (a third of the layer's backward work) and returns None."""
        weight, bias = self.weight, self.bias
        w = weight.value
        xp = expect(self, x, like=w, ndim=2, features=self.in_features)
        y = xp.matmul(x, w)
        if bias is not None:
            y += bias.value  # in place: y was just made here and nothing else holds it

        def backprop(dy: Any) -> Any:
            # dL/dW = x^T dy, a contraction over the batch rows: XLA compiles x.T @ dy of one
            # output column into a slow column reduction, this into a GEMM
            weight.accumulate(xp.tensordot(x, dy, axes=([0], [0])))
            if bias is not None:
                bias.accumulate(xp.sum(dy, axis=0))    # dL/db = sum of dy over the batch
            return xp.matmul(dy, w.T) if input_grad else None  # dL/dx = dy W^T

        return y, backprop

    def arguments(self) -> dict[str, Any]:
        return {**super().arguments(), "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
