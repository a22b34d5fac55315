"""Input checks shared by layers and losses: cheap, and loud about what was expected and what came."""

from __future__ import annotations

import numbers
from typing import Any

from .backend import backend_of, compute_namespace, dtype_name, host_backend, is_array, to_numpy


def owner_name(owner: Any) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


# NumPy's arrays all live on the CPU: an identity test of the namespace spares them a device
# comparison (two property reads) on every loss call
_HOST_XP = compute_namespace(host_backend().xp.empty(0))


def not_an_array(owner: Any, x: Any, what: str = "input") -> TypeError:
    """The error for a ``what`` that is not an array (a list, None, a number)."""
    return TypeError(f"{owner_name(owner)}: expected the {what} to be an array, got "
                     f"{type(x).__name__}; make one with xnn.asarray()")


def input_namespace(owner: Any, x: Any) -> Any:
    """compute_namespace(x), or a TypeError naming ``owner`` when ``x`` is not an array (the
    namespace lookup's own error would speak of mixing backends)."""
    try:
        return compute_namespace(x)
    except TypeError:
        pass
    raise not_an_array(owner, x)


# (namespace, dtype) -> whether it is a real floating dtype: xp.isdtype costs ~1 us on NumPy,
# more than the arithmetic of a small layer, and every layer asks it on every call
_REAL_FLOATING: dict[tuple[Any, Any], bool] = {}


def is_real_floating(xp: Any, dtype: Any) -> bool:
    """xp.isdtype(dtype, "real floating"), remembered per namespace and dtype."""
    try:
        return _REAL_FLOATING[xp, dtype]
    except KeyError:
        answer = _REAL_FLOATING[xp, dtype] = bool(xp.isdtype(dtype, "real floating"))
        return answer
    except TypeError:  # an unhashable dtype object: ask every time
        return bool(xp.isdtype(dtype, "real floating"))


def check_float(owner: Any, xp: Any, x: Any, what: str = "input") -> None:
    """Raise TypeError unless ``x`` has a real floating dtype."""
    if not is_real_floating(xp, x.dtype):
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
    if dtype is not None and x.dtype == dtype and is_real_floating(xp, dtype):
        return  # the layer's own float dtype: the usual case, decided by two lookups
    check_float(owner, xp, x)
    if dtype is not None:
        raise TypeError(f"{owner_name(owner)}: expected a {dtype_name(dtype)} input like its "
                        f"parameters, got {dtype_name(x.dtype)}; cast the data with "
                        f"xnn.asarray(x, dtype={dtype_name(dtype)!r})")


def check_same_kind(owner: Any, x: Any, param: Any) -> None:
    """Raise TypeError when ``x`` is another library's array than the layer's parameters, and
    ValueError when it is on another device."""
    if type(x) is not type(param):
        if not is_array(x):
            raise not_an_array(owner, x)
        raise TypeError(f"{owner_name(owner)}: input is a {type(x).__module__}.{type(x).__name__} "
                        f"but the parameters are {type(param).__module__}.{type(param).__name__}; "
                        f"move the input with xnn.asarray() or the model with model.to()")
    if x.device != param.device:
        raise ValueError(f"{owner_name(owner)}: input is on device {x.device} but the parameters "
                         f"are on {param.device}; move the input with xnn.asarray() or the model "
                         f"with model.to()")


def check_layer_input(owner: Any, xp: Any, x: Any, param: Any, features: int) -> None:
    """check_same_kind and check_batch together: an input of the parameter's library, device
    and float dtype, of shape (batch, features), passes on a few comparisons; anything else
    takes the two checks above, which raise their own errors."""
    if (type(x) is type(param) and x.dtype == param.dtype and x.ndim == 2
            and x.shape[1] == features and x.device == param.device
            and is_real_floating(xp, param.dtype)):
        return
    check_same_kind(owner, x, param)
    check_batch(owner, xp, x, features, param.dtype)


def loss_namespace(owner: Any, pred: Any, target: Any, weight: Any = None,
                   pos_weight: Any = None) -> Any:
    """The namespace of a loss's prediction, target and weights (None where absent), after
    checking they are arrays of one library on one device: a few comparisons when they are;
    otherwise a TypeError (not an array, two libraries) or ValueError (two devices) naming the
    loss, what came and where."""
    try:
        xp = compute_namespace(pred, target)
    except TypeError:  # a non-array, or two libraries: said precisely below
        xp = None
    if (xp is not None and _one_place(xp, pred, target)
            and (weight is None or _one_place(xp, pred, weight))
            and (pos_weight is None or _one_place(xp, pred, pos_weight))):
        return xp
    named = [("prediction", pred), ("target", target)]
    if weight is not None:
        named.append(("weight", weight))
    if pos_weight is not None:
        named.append(("pos_weight", pos_weight))
    check_one_place(owner, named)
    return compute_namespace(pred, target)  # same library and device, different array types


def _one_place(xp: Any, a: Any, b: Any) -> bool:
    return type(a) is type(b) and (xp is _HOST_XP or a.device == b.device)


def check_one_place(owner: Any, named: list[tuple[str, Any]],
                    fix: str = "move them to one place with xnn.asarray()") -> None:
    """Raise TypeError unless every (what, value) of ``named`` is an array of the first one's
    library, and ValueError unless it is on the first one's device; the message names both
    places and ends with ``fix``."""
    for what, a in named:
        if not is_array(a):
            raise not_an_array(owner, a, what)
    first, a0 = named[0]
    place0 = backend_of(a0)
    for what, a in named[1:]:
        place = backend_of(a)
        if place.name != place0.name or str(place.device) != str(place0.device):
            error = TypeError if place.name != place0.name else ValueError
            raise error(f"{owner_name(owner)}: the {first} is {describe(a0)} but the {what} is "
                        f"{describe(a)}; {fix}")


def describe(a: Any) -> str:
    """"a torch Tensor on device cpu": what a message says of an array's place."""
    place = backend_of(a)
    article = "an" if place.name[0] in "aeiou" else "a"
    return f"{article} {place.name} {type(a).__name__} on device {place.device}"


# (array type, dtype) -> namespace, for the float arrays float_input has already accepted
_FLOAT_INPUTS: dict[tuple[type, Any], Any] = {}


def float_input(owner: Any, x: Any) -> Any:
    """The namespace of ``x`` after checking that it is a floating-point array of any rank."""
    try:
        return _FLOAT_INPUTS[type(x), x.dtype]
    except (KeyError, AttributeError, TypeError):  # new, not an array, or unhashable dtype
        pass
    if not is_array(x):
        raise TypeError(f"{owner_name(owner)}: expected an array, got {type(x).__name__}")
    xp = compute_namespace(x)
    check_float(owner, xp, x)
    try:
        _FLOAT_INPUTS[type(x), x.dtype] = xp
    except TypeError:
        pass
    return xp


def check_axis(owner: Any, x: Any, axis: int) -> None:
    """Raise ValueError unless ``axis`` names an axis of ``x``."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{owner_name(owner)}: axis {axis} is out of range for an input of "
                         f"shape {tuple(x.shape)}")


class ArgumentTypeError(TypeError, ValueError):
    """A scalar argument of the wrong type ("a" for a learning rate).

    A TypeError, as in torch; also a ValueError, which xnn 0.1 raised for some of them, so code
    that catches that keeps working.
    """


def number(owner: Any, name: str, value: Any, *, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float, for a scalar argument.

    TypeError (ArgumentTypeError) unless it is a real number: Python's or NumPy's, not a bool,
    a string or an array. ValueError for NaN, or outside [low, high] ((low, ... with
    ``low_open``, ...high) with ``high_open``); infinities pass where the bounds allow them.
    """
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ArgumentTypeError(f"{owner_name(owner)}: {name} must be a real number, got "
                                f"{type(value).__name__} {value!r}")
    value = float(value)
    ok = value == value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = "" if low is None and high is None else (
            f" in {'(' if low_open or low is None else '['}{'-inf' if low is None else low}, "
            f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}")
        raise ValueError(f"{owner_name(owner)}: {name} must be a number{bounds}, got {value!r}")
    return value


def integer(owner: Any, name: str, value: Any, *, low: int | None = None,
            high: int | None = None) -> int:
    """``value`` as a Python int, for a count, size, index or seed.

    TypeError (ArgumentTypeError) unless it is an integer (Python's or NumPy's, not a bool or
    a float); ValueError outside [low, high].
    """
    if type(value) is not int and (isinstance(value, bool)
                                   or not isinstance(value, numbers.Integral)):
        raise ArgumentTypeError(f"{owner_name(owner)}: {name} must be an int, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if low == 1 and high is None:
            wanted = "a positive int"
        elif high is None:
            wanted = f"an int >= {low}"
        elif low is None:
            wanted = f"an int <= {high}"
        else:
            wanted = f"an int in [{low}, {high}]"
        raise ValueError(f"{owner_name(owner)}: {name} must be {wanted}, got {value!r}")
    return value


_INT_RANGES: dict[tuple[Any, Any], tuple[int, int]] = {}


def int_range(xp: Any, dtype: Any) -> tuple[int, int]:
    """(min, max) of an integer dtype: xp.iinfo's, remembered (iinfo costs microseconds)."""
    try:
        return _INT_RANGES[xp, dtype]
    except KeyError:
        info = xp.iinfo(dtype)
        bounds = _INT_RANGES[xp, dtype] = (int(info.min), int(info.max))
        return bounds
    except TypeError:  # an unhashable dtype object
        info = xp.iinfo(dtype)
        return int(info.min), int(info.max)


def check_labels(owner: Any, xp: Any, labels: Any, classes: int,
                 ignore: Any = None) -> None:
    """Raise ValueError unless every label lies in [0, classes); ``ignore``: a boolean mask of
    labels to leave out (ignore_index). Reads the min and max back to the host in one transfer:
    one device sync."""
    if labels.shape[0] == 0:
        return
    if ignore is not None:  # ignored labels become the neutral element of min and of max
        lo_int, hi_int = int_range(xp, labels.dtype)
        low, high = xp.where(ignore, hi_int, labels), xp.where(ignore, lo_int, labels)
    else:
        low = high = labels
    lo, hi = (int(v) for v in to_numpy(xp.stack([xp.min(low), xp.max(high)])))
    if lo <= hi and (lo < 0 or hi >= classes):  # lo > hi: every label is ignored
        raise ValueError(f"{owner_name(owner)}: labels must lie in [0, {classes}), "
                         f"got values in [{lo}, {hi}]")
