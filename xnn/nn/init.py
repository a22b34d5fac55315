"""Weight initializers: ``init(shape, dtype=None) -> array`` on the active backend.

All draw from xnn's seeded host generator, so a seed gives identical weights on every backend.
For a weight of shape (in_features, out_features), fan_in = shape[0] and fan_out = shape[-1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .. import random
from .._checks import number

__all__ = ["Initializer", "uniform_fan_in", "glorot_uniform", "glorot_normal", "he_uniform",
           "he_normal", "lecun_normal", "zeros", "ones", "normal", "Normal"]

Initializer = Callable[..., Any]


def check_initializer(owner: Any, name: str, init: Any) -> Initializer:
    """``init`` if it is callable as ``init(shape, dtype=...)``; a TypeError naming the function
    to pass for a Keras-style name ("he_normal") or anything else."""
    if callable(init) and not isinstance(init, type):
        return init
    if isinstance(init, str) and init in __all__ and init not in ("Initializer", "Normal"):
        fix = f"; write {name}=xnn.nn.init.{init}{'(0.01)' if init == 'normal' else ''}"
    else:
        fix = " (an xnn.nn.init function, such as xnn.nn.init.he_normal)"
    raise TypeError(f"{type(owner).__name__}: {name} must be callable as {name}(shape, "
                    f"dtype=...), got {type(init).__name__} {init!r}{fix}")


def _symmetric_uniform(shape: tuple[int, ...], bound: float, dtype: Any) -> Any:
    """U(-bound, bound) samples: the uniform initializers differ only in the bound."""
    return random.uniform(shape, -bound, bound, dtype=dtype)


def uniform_fan_in(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch.nn.Linear's default for weight and bias."""
    return _symmetric_uniform(shape, 1.0 / math.sqrt(shape[0]), dtype)


def glorot_uniform(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010; Keras' default)."""
    return _symmetric_uniform(shape, math.sqrt(6.0 / (shape[0] + shape[-1])), dtype)


def glorot_normal(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """N(0, 2 / (fan_in + fan_out))."""
    return random.normal(shape, math.sqrt(2.0 / (shape[0] + shape[-1])), dtype=dtype)


def he_uniform(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """U(-a, a) with a = sqrt(6 / fan_in), for ReLU networks (He et al. 2015)."""
    return _symmetric_uniform(shape, math.sqrt(6.0 / shape[0]), dtype)


def he_normal(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """N(0, 2 / fan_in), for ReLU networks."""
    return random.normal(shape, math.sqrt(2.0 / shape[0]), dtype=dtype)


def lecun_normal(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """N(0, 1 / fan_in), for SELU/tanh networks."""
    return random.normal(shape, math.sqrt(1.0 / shape[0]), dtype=dtype)


def zeros(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """All zeros (the usual bias initializer)."""
    return random.filled(shape, 0, dtype)


def ones(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """All ones (the usual scale initializer of normalisation layers)."""
    return random.filled(shape, 1, dtype)


@dataclass(frozen=True)
class Normal:
    """The initializer ``normal(std, mean)`` makes: N(mean, std^2) samples of a given shape.
    Its fields are what a checkpoint records of it."""

    std: float
    mean: float = 0.0

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        return random.normal(shape, self.std, self.mean, dtype=dtype)


def normal(std: float = 0.01, mean: float = 0.0, **called_as_init: Any) -> Normal:
    """An initializer drawing N(mean, std^2): ``normal(0.01)`` is the tutorials' randn * 0.01."""
    if isinstance(std, tuple) or called_as_init:  # init=normal instead of init=normal(0.01)
        raise TypeError(f"normal(std) makes an initializer: pass init=normal(0.01), not "
                        f"init=normal (it was called with {std!r}, {called_as_init})")
    return Normal(number("normal", "std", std, low=0.0), number("normal", "mean", mean))
