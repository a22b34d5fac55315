"""The tutorials' data sets, generated from a seed on the host and moved to the active backend.

Each returns ``(X, y)`` with samples along the first axis, in xnn's default float dtype unless
``dtype`` is given; the same seed gives the same numbers on every backend.
"""

from __future__ import annotations

from typing import Any, Sequence

from ._checks import integer, number
from .backend import from_host, host_backend
from .random import host_generator

__all__ = ["xor", "linear", "polynomial", "polyval", "arithmetic", "circles",
           "POLYNOMIAL_COEFFICIENTS"]


def xor(dtype: Any = None) -> tuple[Any, Any]:
    """The four XOR points: X (4, 2) of 0/1 inputs, y (4, 1) = a xor b."""
    X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    return from_host(X, dtype), from_host([[0], [1], [1], [0]], dtype)


def linear(m: float = 2.0, b: float = 1.0, n: int = 100, noise: float = 0.1, *,
           seed: int = 0, dtype: Any = None) -> tuple[Any, Any]:
    """n points of y = m x + b + N(0, noise^2), x ~ U[-1, 1): X (n, 1), y (n, 1)."""
    integer("linear", "n", n, low=1)
    g = host_generator(seed)
    x = g.uniform(-1.0, 1.0, (n, 1))
    return from_host(x, dtype), from_host(m * x + b + noise * g.standard_normal((n, 1)), dtype)


def _roots_to_coefficients(roots: Sequence[float], scale: float) -> list[float]:
    """Coefficients (lowest degree first) of scale * prod(x - r)."""
    coefficients = [scale]
    for r in roots:
        shifted = [0.0] + coefficients           # x * p(x)
        coefficients = [s - r * c for s, c in zip(shifted, coefficients + [0.0])]
    return coefficients


# 5 (x+1.8)(x+1.2)(x+0.4)(x-0.3)(x-1.1)(x-1.9): a 6th-order curve with five turns on [-2, 2]
POLYNOMIAL_COEFFICIENTS = tuple(_roots_to_coefficients((-1.8, -1.2, -0.4, 0.3, 1.1, 1.9), 5.0))


def polyval(coefficients: Sequence[float], x: Any) -> Any:
    """sum_k coefficients[k] x^k (lowest degree first), by Horner's rule; works on any array."""
    y = x * 0 + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        y = y * x + c
    return y


def polynomial(coefficients: Sequence[float] | None = None, order: int = 6, n: int = 1000,
               noise: float = 1.0, *, seed: int = 0, dtype: Any = None) -> tuple[Any, Any]:
    """n noisy points of a polynomial on x ~ U[-2, 2): X (n, 1), y (n, 1).

    Without ``coefficients`` (lowest degree first), the curve has ``order`` real roots in
    [-1.9, 1.9]: the default 6th order uses POLYNOMIAL_COEFFICIENTS, other orders draw their
    roots from ``seed``. Noise is Gaussian with standard deviation ``noise`` (1.0 as in the
    tutorial).
    """
    integer("polynomial", "n", n, low=1)
    g = host_generator(seed)
    if coefficients is None:
        integer("polynomial", "order", order, low=1)
        roots = sorted(g.uniform(-1.9, 1.9, order)) if order != 6 else None
        coefficients = POLYNOMIAL_COEFFICIENTS if roots is None else _roots_to_coefficients(roots, 5.0)
    x = g.uniform(-2.0, 2.0, (n, 1))
    y = polyval(list(coefficients), x) + noise * g.standard_normal((n, 1))
    return from_host(x, dtype), from_host(y, dtype)


def arithmetic(n: int = 10_000, low: float = -10.0, high: float = 10.0, *, seed: int = 0,
               dtype: Any = None) -> tuple[Any, Any]:
    """n pairs (a, b) ~ U[low, high)^2 and their (a + b, a - b, |a - b|): X (n, 2), y (n, 3)."""
    integer("arithmetic", "n", n, low=1)
    g = host_generator(seed)
    X = g.uniform(low, high, (n, 2))
    a, b = X[:, :1], X[:, 1:]
    y = host_backend().xp.concat([a + b, a - b, abs(a - b)], axis=1)  # exact in float64 on the host
    return from_host(X, dtype), from_host(y, dtype)


def circles(n: int = 1000, noise: float = 0.1, factor: float = 0.5, *, seed: int = 0,
            dtype: Any = None) -> tuple[Any, Any]:
    """Two noisy concentric circles (scikit-learn's make_circles): X (n, 2), y (n, 1) with 1
    for the inner circle of radius ``factor`` and 0 for the outer one of radius 1."""
    integer("circles", "n", n, low=1)
    number("circles", "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
    hx = host_backend().xp
    g = host_generator(seed)
    inner = g.random((n, 1)) < 0.5
    angle = g.uniform(0.0, 2 * 3.141592653589793, (n, 1))
    radius = hx.where(inner, factor, 1.0)
    X = hx.concat([radius * hx.cos(angle), radius * hx.sin(angle)], axis=1)
    X = X + noise * g.standard_normal((n, 2))
    return from_host(X, dtype), from_host(inner, dtype)
