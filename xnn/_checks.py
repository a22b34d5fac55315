"""Input checks shared by layers and losses: cheap, and loud about what was expected and what came."""

from __future__ import annotations

from typing import Any

from .backend import dtype_name


def owner_name(owner: Any) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def check_float(owner: Any, xp: Any, x: Any, what: str = "input") -> None:
    """Raise TypeError unless ``x`` has a real floating dtype."""
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{owner_name(owner)}: expected a floating-point {what} "
                        f"(float32 or float64), got dtype {dtype_name(x.dtype)}")


def check_batch(owner: Any, xp: Any, x: Any, features: int | None = None,
                dtype: Any = None) -> None:
    """Raise unless ``x`` is a (batch, features) array of the float ``dtype`` the layer expects."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{owner_name(owner)}: expected an array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{owner_name(owner)}: expected a 2-D input of shape (batch, "
                         f"{features if features is not None else 'features'}), "
                         f"got shape {tuple(x.shape)}")
    if features is not None and x.shape[1] != features:
        raise ValueError(f"{owner_name(owner)}: expected {features} input features, "
                         f"got {x.shape[1]} (input shape {tuple(x.shape)})")
    check_float(owner, xp, x)
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{owner_name(owner)}: expected a {dtype_name(dtype)} input like its "
                        f"parameters, got {dtype_name(x.dtype)}; cast the data with "
                        f"xnn.asarray(x, dtype={dtype_name(dtype)!r})")


def check_same_kind(owner: Any, x: Any, param: Any) -> None:
    """Raise TypeError when ``x`` is another library's array than the layer's parameters."""
    if type(x) is not type(param):
        raise TypeError(f"{owner_name(owner)}: input is a {type(x).__module__}.{type(x).__name__} "
                        f"but the parameters are {type(param).__module__}.{type(param).__name__}; "
                        f"move the input with xnn.asarray() or the model with model.to()")


def check_positive_int(owner: Any, name: str, value: Any) -> int:
    """Raise ValueError unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner_name(owner)}: {name} must be a positive int, got {value!r}")
    return value
