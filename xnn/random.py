"""The seeded host generator behind every random number xnn draws.

Initial weights are drawn in float64 on the host, cast on the host to the target dtype and only
then moved to the device, so one seed gives bit-identical arrays on every backend. Per-step
randomness (dropout masks) never crosses to the device: the host generator draws a 64-bit key
per call and the device hashes (key, element index) into bits with integer Array API
operations, which are exact, so those masks are bit-identical on every backend too.
"""

from __future__ import annotations

import contextvars
import math
from typing import Any, Callable, ContextManager

import numpy as np  # the host generator

from ._checks import integer, number
from .backend import Backend, from_host, get_backend, resolve_backend, resolve_dtype, scoped

__all__ = ["seed", "use_seed", "get_state", "set_state", "normal", "uniform", "bernoulli",
           "permutation"]


def host_generator(seed: int | None) -> Any:
    """A NumPy PCG64 generator: the single source of xnn's random numbers on every backend."""
    return np.random.default_rng(seed)


_generator = host_generator(None)
_local: contextvars.ContextVar[Any] = contextvars.ContextVar("xnn_generator", default=None)


def _current() -> Any:
    """The generator draws come from: the innermost use_seed()'s, else the process-wide one."""
    return _local.get() or _generator


def seed(value: int) -> None:
    """Seed xnn's host generator: same seed, same weights, masks and shuffles on every backend.
    Inside use_seed() it reseeds that block's generator only."""
    global _generator
    fresh = host_generator(integer("seed", "seed", value, low=0))
    if _local.get() is not None:
        _local.set(fresh)
    else:
        _generator = fresh


def use_seed(value: int) -> ContextManager[Any]:
    """Draw from a generator seeded with ``value`` inside a ``with`` block only; local to the
    thread or async task that enters it (as use_backend is), so other threads' draws and the
    process-wide generator's state are left alone."""
    return scoped(_local, host_generator(integer("use_seed", "seed", value, low=0)))


def get_state() -> dict:
    """The generator's state as plain data (JSON-serialisable), for checkpoints."""
    return _current().bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state from :func:`get_state`."""
    _current().bit_generator.state = state


_placeholders: contextvars.ContextVar[bool] = contextvars.ContextVar("xnn_placeholders",
                                                                  default=False)


def placeholders() -> ContextManager[bool]:
    """Inside a ``with`` block, ``normal``, ``uniform`` and ``filled`` (the zeros/ones
    initializers) return placeholder arrays instead of drawing or allocating: loading a
    checkpoint runs the layers' constructors this way, and the stored tensors replace what
    they made."""
    return scoped(_placeholders, True)


def filled(shape: tuple[int, ...], value: int, dtype: Any = None,
           backend: Backend | None = None) -> Any:
    """``value`` everywhere, made on the backend (None: the active one); inside
    :func:`placeholders`, one zero broadcast to ``shape`` (no memory, of any size)."""
    b = resolve_backend(backend)
    dtype = resolve_dtype(b.xp, dtype)
    if _placeholders.get():
        return b.xp.broadcast_to(b.xp.zeros((), dtype=dtype, device=b.device), tuple(shape))
    return b.xp.full(shape, value, dtype=dtype, device=b.device)


def normal(shape: tuple[int, ...], std: float = 1.0, mean: float = 0.0, *, dtype: Any = None,
           backend: Backend | None = None) -> Any:
    """Samples of N(mean, std^2) on the active backend."""
    std = number("normal", "std", std, low=0.0)
    mean = number("normal", "mean", mean)
    return _drawn(lambda g: mean + std * g.standard_normal(shape), shape, dtype, backend)


def uniform(shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, *, dtype: Any = None,
            backend: Backend | None = None) -> Any:
    """Samples of U[low, high) on the active backend."""
    low = number("uniform", "low", low)
    high = number("uniform", "high", high, low=low)
    return _drawn(lambda g: g.uniform(low, high, shape), shape, dtype, backend)


def _drawn(draw: Callable[[Any], Any], shape: tuple[int, ...], dtype: Any,
           backend: Backend | None) -> Any:
    """``draw(generator)``, cast and moved onto the backend; a placeholder inside placeholders()."""
    if _placeholders.get():
        return filled(shape, 0, dtype, backend)
    return from_host(draw(_current()), dtype, backend)


def bernoulli(shape: tuple[int, ...], p: float, *, dtype: Any = None,
              backend: Backend | None = None) -> Any:
    """0/1 samples that are 1 with probability ``p``, as floats on the active backend.

    Made on the device from one key drawn on the host: no host-to-device copy of the samples.
    """
    if not 0 <= p <= 1:  # a comparison, not number(): this runs at every dropout step
        raise ValueError(f"bernoulli: p must be a number in [0, 1], got {p!r}")
    b = backend if backend is not None else get_backend()  # per step (dropout): no call
    xp = b.xp
    traced = _traced_keys.get()
    key = draw_key() if traced is None else traced()
    # bits is uniform on [0, 2^32), so P(bits < p 2^32) = p up to 2^-32 (p = 0 and 1 are exact)
    keep = random_bits(xp, shape, key, b.device) < round(p * 2**32)
    return xp.astype(keep, resolve_dtype(xp, dtype))


def draw_key() -> int:
    """One key of :func:`bernoulli`'s masks, drawn from the host generator."""
    return int(_current().integers(0, 2**63))  # k1 < 2^31: any 63 bits serve


_traced_keys: contextvars.ContextVar[Callable[[], Any] | None] = contextvars.ContextVar(
    "xnn_traced_keys", default=None)


def traced_keys(next_key: Callable[[], Any]) -> ContextManager[Any]:
    """Inside a ``with`` block, :func:`bernoulli` takes its keys from ``next_key()`` instead of
    the host generator: a compiled step (xnn.compiled) gets its keys as an input, drawn on the
    host in the order eager steps draw them, so its masks are the eager steps' masks."""
    return scoped(_traced_keys, next_key)


def permutation(n: int, generator: Any = None) -> Any:
    """A host (NumPy) permutation of range(n) from ``generator`` (None: xnn's), the one its
    ``permutation(n)`` draws. From 2^20 rows to 2^31 it is held as int32: half the memory of
    int64, for a fit's row order is the one array of a streamed fit that grows with the rows;
    below, as int64, which NumPy shuffles 1.5-2x faster (its fast path is for 8-byte items)."""
    small, large = n < 2 ** 20, n > np.iinfo(np.int32).max
    rows = np.arange(n, dtype=np.int64 if small or large else np.int32)
    (_current() if generator is None else generator).shuffle(rows)  # permutation's own draws
    return rows


_LOW32 = 0xFFFFFFFF


def random_bits(xp: Any, shape: tuple[int, ...], key: int, device: Any) -> Any:
    """int64 array of ``shape`` of hashed bits in [0, 2^32), a pure function of (key, position).

    A counter-based generator, so one key gives the same bits on every backend and device and
    no state lives on the device. With (k0, k1) the 32-bit halves of ``key`` and R rows (all
    axes but the last, flattened), row r gets h_r = mix(mix(r ^ k0) ^ k1) and column c gets
    g_c = mix(mix((R + c) ^ k0) ^ k1), fully mixed; the element at (r, c) is
    scramble(h_r ^ g_c). The xor alone would make every row's bits a fixed xor of row 0's (each
    row's mask a copy or complement of the first), which the multiply in scramble breaks. Only
    that cheap last step runs over the whole array. int64, not uint32: torch has no uint32
    shifts.
    """
    cols = shape[-1] if shape else 1
    rows = math.prod(shape[:-1])
    counters = xp.arange(rows + cols, dtype=xp.int64, device=device)
    hashed = _mix32(_mix32(counters ^ (key & _LOW32)) ^ (key >> 32))
    bits = hashed[:rows, None] ^ hashed[None, rows:]
    bits *= 0x735A2D97  # scramble: the high bits of a product depend on every bit below them
    bits &= _LOW32
    bits ^= bits >> 16  # and the low bits on the high ones
    return xp.reshape(bits, shape)


def _mix32(x: Any) -> Any:
    """lowbias32 (Wellons' hash prospector, 2022 constants): a bijection of [0, 2^32) in which
    each input bit flips each output bit with probability close to 1/2. Overwrites ``x``, a
    temporary of its caller's, in place: a third less time on NumPy than fresh arrays.

    x stays below 2^32 and both multipliers below 2^31, so x * c < 2^63 is exact in int64;
    masking to the low 32 bits is the uint32 multiplication mod 2^32 the hash is defined with.
    """
    x ^= x >> 16
    x *= 0x21F0AAAD
    x &= _LOW32
    x ^= x >> 15
    x *= 0x735A2D97
    x &= _LOW32
    x ^= x >> 15
    return x
