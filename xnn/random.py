"""The seeded host generator behind every random number xnn draws.

Numbers are drawn in float64 on the host, cast on the host to the target dtype and only then
moved to the device, so one seed gives bit-identical arrays on every backend.
"""

from __future__ import annotations

from typing import Any

from .backend import Backend, from_host, host_generator

__all__ = ["seed", "get_state", "set_state", "normal", "uniform", "bernoulli", "permutation"]

_generator = host_generator(None)


def seed(value: int) -> None:
    """Seed xnn's host generator: same seed, same weights, masks and shuffles on every backend."""
    global _generator
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    _generator = host_generator(value)


def generator() -> Any:
    """The host generator itself (a NumPy Generator), for code that draws host-side numbers."""
    return _generator


def get_state() -> dict:
    """The generator's state as plain data (JSON-serialisable), for checkpoints."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state from :func:`get_state`."""
    _generator.bit_generator.state = state


def normal(shape: tuple[int, ...], std: float = 1.0, mean: float = 0.0, *, dtype: Any = None,
           backend: Backend | None = None) -> Any:
    """Samples of N(mean, std^2) on the active backend."""
    return from_host(mean + std * _generator.standard_normal(shape), dtype, backend)


def uniform(shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, *, dtype: Any = None,
            backend: Backend | None = None) -> Any:
    """Samples of U[low, high) on the active backend."""
    return from_host(_generator.uniform(low, high, shape), dtype, backend)


def bernoulli(shape: tuple[int, ...], p: float, *, dtype: Any = None,
              backend: Backend | None = None) -> Any:
    """0/1 samples that are 1 with probability ``p``, as floats on the active backend."""
    return from_host(_generator.random(shape) < p, dtype, backend)


def permutation(n: int) -> Any:
    """A host (NumPy) permutation of range(n), for shuffling indices."""
    return _generator.permutation(n)
