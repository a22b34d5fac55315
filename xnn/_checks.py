"""Input checks shared by layers and losses: cheap, and loud about what was expected and what came."""

from __future__ import annotations

from typing import Any

from .backend import array_namespace, dtype_name, is_array


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
    """Raise TypeError when ``x`` is another library's array than the layer's parameters, and
    ValueError when it is on another device."""
    if type(x) is not type(param):
        raise TypeError(f"{owner_name(owner)}: input is a {type(x).__module__}.{type(x).__name__} "
                        f"but the parameters are {type(param).__module__}.{type(param).__name__}; "
                        f"move the input with xnn.asarray() or the model with model.to()")
    if x.device != param.device:
        raise ValueError(f"{owner_name(owner)}: input is on device {x.device} but the parameters "
                         f"are on {param.device}; move the input with xnn.asarray() or the model "
                         f"with model.to()")


def check_positive_int(owner: Any, name: str, value: Any) -> int:
    """Raise ValueError unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner_name(owner)}: {name} must be a positive int, got {value!r}")
    return value


def float_input(owner: Any, x: Any) -> Any:
    """The namespace of ``x`` after checking that it is a floating-point array of any rank."""
    if not is_array(x):
        raise TypeError(f"{owner_name(owner)}: expected an array, got {type(x).__name__}")
    xp = array_namespace(x)
    check_float(owner, xp, x)
    return xp


def check_axis(owner: Any, x: Any, axis: int) -> None:
    """Raise ValueError unless ``axis`` names an axis of ``x``."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{owner_name(owner)}: axis {axis} is out of range for an input of "
                         f"shape {tuple(x.shape)}")


def check_number(owner: Any, name: str, value: Any, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False) -> float:
    """Raise ValueError unless ``value`` is a real number in [low, high]; (low, ...] if low_open."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = ("" if low is None and high is None else
                  f" in {'(' if low_open or low is None else '['}{'-inf' if low is None else low}"
                  f", {'inf)' if high is None else f'{high}]'}")
        raise ValueError(f"{owner_name(owner)}: {name} must be a number{bounds}, got {value!r}")
    return float(value)


def check_labels(owner: Any, xp: Any, labels: Any, classes: int,
                 ignore: Any = None) -> None:
    """Raise ValueError unless every label lies in [0, classes); ``ignore``: a boolean mask of
    labels to leave out (ignore_index). Reads the min and max back to the host: a device sync."""
    if labels.shape[0] == 0:
        return
    info = xp.iinfo(labels.dtype)
    if ignore is None:
        lo, hi = int(xp.min(labels)), int(xp.max(labels))
    else:  # ignored labels become the neutral element of min and of max
        lo = int(xp.min(xp.where(ignore, info.max, labels)))
        hi = int(xp.max(xp.where(ignore, info.min, labels)))
    if lo <= hi and (lo < 0 or hi >= classes):
        raise ValueError(f"{owner_name(owner)}: labels must lie in [0, {classes}), "
                         f"got values in [{lo}, {hi}]")
