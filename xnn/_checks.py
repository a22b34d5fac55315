"""The one way into xnn's maths: ``expect`` checks an array argument and returns its namespace;
``number`` and ``integer`` check scalar arguments. Each raises with the owner's name, what was
expected and what came; the message is built only when a check fails.
"""

from __future__ import annotations

import functools
import numbers
import os
from typing import Any

from .backend import FLOAT_DTYPES, backend_of, device_label, quiet_float_errors, to_numpy
from .namespace import (_NAMESPACES, HOST_XP, TRACKS_GRAD, array_namespace, dtype_name, is_array,
                        requires_grad)

__all__ = ["expect", "number", "integer", "flag", "ArgumentTypeError", "check_labels"]


def owner_name(owner: Any) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


# HOST_XP: NumPy's arrays all live on the CPU, so an identity test of the namespace spares them
# a device comparison (two property reads) on every call
FLOAT, INTEGRAL = "float", "integral"


def _article(word: str) -> str:
    """"an" before a vowel ("an input"), else "a"."""
    return "an" if word[:1] in "aeiou" else "a"


@functools.cache
def is_kind(xp: Any, dtype: Any, kind: str) -> bool:
    """xp.isdtype(dtype, kind), remembered: it costs ~1 us on NumPy, more than the arithmetic of
    a small layer (keyed by namespace too: one library's dtypes must not meet another's)."""
    return xp.isdtype(dtype, kind)


def expect(owner: Any, x: Any, *, like: Any = None, ndim: int | None = None,
           features: int | None = None, shape: tuple[int, ...] | None = None,
           dtype: Any = FLOAT, what: str = "input", like_what: str = "parameters",
           fix: str | None = None) -> Any:
    """The namespace of ``x``, after checking it is the array ``owner`` takes.

    owner: what the messages name first: a layer or loss (``self``, named by its class) or a
        function's name.
    like: an array ``x`` must share library and device with (the layer's parameter, the loss's
        prediction), and its dtype too where ``dtype`` is "float".
    ndim, features: the number of axes and the length of the last one (None: any).
    shape: the whole shape (None: any).
    dtype: "float" (real floating, float32 or float64), "integral", None (any), or a dtype.
    what, like_what: what the messages call ``x`` and ``like``.
    fix: what the message of an array in the wrong place advises (None: move it with
        xnn.asarray()).

    Raises TypeError for a non-array, an array of another library, a wrong dtype or a torch
    tensor that requires grad, and ValueError for another device or a wrong shape. The usual
    case costs a dict lookup and a few comparisons.
    """
    xp = _NAMESPACES.get(type(x)) or _namespace_of(owner, x, what)  # a namespace is truthy
    if like is not None and (type(x) is not type(like)
                             or (xp is not HOST_XP and _device(x) != _device(like))):
        _check_place(owner, xp, x, like, what, like_what, fix)
    if shape is not None or ndim is not None or features is not None:
        got = x.shape  # read once: an array's attributes cost more than the comparisons
        if shape is not None and tuple(got) != tuple(shape):
            wanted = (f"the {like_what} has shape {tuple(shape)} but the {what} has"
                      if like is not None else
                      f"expected {_article(what)} {what} of shape {tuple(shape)}, got")
            raise ValueError(f"{owner_name(owner)}: {wanted} shape {tuple(got)}")
        if ndim is not None and len(got) != ndim:
            shape = f" of shape (batch, {features or 'features'})" if ndim == 2 else ""
            raise ValueError(f"{owner_name(owner)}: expected a {ndim}-D {what}{shape}, got "
                             f"shape {tuple(got)}")
        # None: an axis a tracing library (ndonnx, in xnn.onnx.export) does not know
        if features is not None and (not got or got[-1] not in (features, None)):
            raise ValueError(f"{owner_name(owner)}: expected {features} {what} features, got "
                             f"{got[-1] if got else 'none'} ({what} shape {tuple(got)})")
    if dtype is FLOAT or dtype == FLOAT:
        if like is not None:
            if x.dtype != like.dtype:
                _check_same_dtype(owner, xp, x, like, what, like_what)
        elif not is_kind(xp, x.dtype, "real floating"):
            _check_float(owner, xp, x, what)
    elif dtype is not None:
        _check_dtype(owner, xp, x, dtype, what)
    if TRACKS_GRAD and type(x) in TRACKS_GRAD and requires_grad(x):
        raise TypeError(f"{owner_name(owner)}: the {what} is a torch tensor that requires grad; "
                        f"xnn computes its own gradients, and autograd would keep a graph of "
                        f"every step alive: pass it detached ({what}.detach())")
    return xp


def _device(x: Any) -> Any:
    """x.device; None for a tracer inside a compiled step (jax's have no device attribute)."""
    return getattr(x, "device", None)


def _namespace_of(owner: Any, x: Any, what: str) -> Any:
    """array_namespace(x), or a TypeError naming ``owner`` when ``x`` is not an array."""
    if not is_array(x):
        raise TypeError(f"{owner_name(owner)}: expected the {what} to be an array, got "
                        f"{type(x).__name__}; make one with xnn.asarray()")
    return array_namespace(x)


def _check_place(owner: Any, xp: Any, x: Any, like: Any, what: str, like_what: str,
                 fix: str | None = None) -> None:
    """Raise TypeError when ``x`` is another library's array than ``like``, ValueError when it
    is on another device. A subclass of the same library's array (np.memmap) passes."""
    if not is_array(like):  # a parameter never is anything else; a loss's prediction may be
        raise TypeError(f"{owner_name(owner)}: expected the {like_what} to be an array, got "
                        f"{type(like).__name__}; make one with xnn.asarray()")
    same_library = array_namespace(like) is xp
    if same_library and backend_of(like).holds(x):
        return
    verb = "are" if like_what.endswith("s") else "is"
    if fix is None:
        fix = ("move the input with xnn.asarray() or the model with model.to()"
               if like_what == "parameters" else "move them to one place with xnn.asarray()")
    error = ValueError if same_library else TypeError
    raise error(f"{owner_name(owner)}: the {like_what} {verb} {describe(like)} but the {what} is "
                f"{describe(x)}; {fix}")


def _check_float(owner: Any, xp: Any, x: Any, what: str) -> None:
    """Raise TypeError unless ``x`` is a real floating array."""
    if not is_kind(xp, x.dtype, "real floating"):
        raise TypeError(f"{owner_name(owner)}: expected a floating-point {what} "
                        f"(float32 or float64), got dtype {dtype_name(x.dtype)}")


def _check_same_dtype(owner: Any, xp: Any, x: Any, like: Any, what: str,
                      like_what: str) -> None:
    """Raise TypeError unless ``x`` is a float array of ``like``'s dtype; another byte order
    of it (NumPy's big-endian float32) passes."""
    _check_float(owner, xp, x, what)
    expected, got = dtype_name(like.dtype), dtype_name(x.dtype)
    if got != expected:
        raise TypeError(f"{owner_name(owner)}: expected a {expected} {what} like the "
                        f"{like_what}, got {got}; cast it with "
                        f"xnn.asarray(..., dtype={expected!r})")


def _check_dtype(owner: Any, xp: Any, x: Any, dtype: Any, what: str) -> None:
    if dtype == INTEGRAL:
        if not is_kind(xp, x.dtype, "integral"):
            raise TypeError(f"{owner_name(owner)}: expected an integer {what}, got dtype "
                            f"{dtype_name(x.dtype)}")
    elif dtype_name(x.dtype) != dtype_name(dtype):
        raise TypeError(f"{owner_name(owner)}: expected {_article(what)} {what} of dtype "
                        f"{dtype_name(dtype)}, got {dtype_name(x.dtype)}")


def check_one_place(owner: Any, named: list[tuple[str, Any]],
                    fix: str = "move them to one place with xnn.asarray()") -> None:
    """Raise TypeError unless every (what, value) of ``named`` is an array of the first one's
    library, and ValueError unless it is on the first one's device; the message names both
    places and ends with ``fix``."""
    first, a0 = named[0]
    xp = _namespace_of(owner, a0, first)
    for what, a in named[1:]:
        if type(a) is not type(a0) or (xp is not HOST_XP and _device(a) != _device(a0)):
            _check_place(owner, _namespace_of(owner, a, what), a, a0, what, first, fix)


def describe(a: Any) -> str:
    """"a torch Tensor on device cpu": what a message says of an array's place."""
    place = backend_of(a)
    article = "an" if place.name[0] in "aeiou" else "a"
    return f"{article} {place.name} {type(a).__name__} on device {device_label(place.device)}"


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
    """``value`` as a Python float, for a scalar argument ``name`` of ``owner`` (as in expect).

    TypeError (ArgumentTypeError) unless it is a real number: Python's or NumPy's, not a bool,
    a string or an array. ValueError for NaN, or outside [low, high] ((low, ... with
    ``low_open``, ...high) with ``high_open``); infinities pass where the bounds allow them.
    """
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ArgumentTypeError(f"{owner_name(owner)}: {name} must be a real number, got "
                                f"{type(value).__name__} {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if value != value or too_low or too_high:  # value != value: NaN
        bounds = "" if low is None and high is None else (
            f" in {'(' if low_open or low is None else '['}{'-inf' if low is None else low}, "
            f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}")
        raise ValueError(f"{owner_name(owner)}: {name} must be a number{bounds}, got {value!r}")
    return value


def integer(owner: Any, name: str, value: Any, *, low: int | None = None,
            high: int | None = None) -> int:
    """``value`` as a Python int, for a count, size, index or seed ``name`` of ``owner``.

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


def flag(owner: Any, name: str, value: Any) -> bool:
    """``value`` as a Python bool, for an on/off argument: True or False (NumPy's booleans and
    the ints 1 and 0 too). TypeError (ArgumentTypeError) for anything else, which would
    otherwise be read as truthy ("no", 0.5) or fail later (None)."""
    if value is True or value is False:
        return value
    kind = type(value)
    # numpy.bool (NumPy 1.x names it bool_) is not an Integral
    numpy_bool = kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    if numpy_bool or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise ArgumentTypeError(f"{owner_name(owner)}: {name} must be True or False, got "
                            f"{kind.__name__} {value!r}")


def float_dtype(owner: Any, dtype: Any) -> Any:
    """``dtype`` of a layer's parameters, after checking it is float32 or float64 (a name or a
    dtype object) or None (xnn's default): an integer or float16 layer cannot train."""
    name = dtype if dtype is None or isinstance(dtype, str) else dtype_name(dtype)
    if name is not None and name not in FLOAT_DTYPES:
        raise ValueError(f"{owner_name(owner)}: dtype must be 'float32' or 'float64' (or None, "
                         f"xnn's default), got {dtype!r}")
    return dtype


def env_int(name: str, default: int, *, low: int) -> int:
    """Environment variable ``name`` as an int of at least ``low`` (``default`` where unset or
    blank); another value is a ValueError naming the variable, what came and what it takes."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ValueError(f"{name}={text!r}: expected an int of at least {low} (unset: {default})")
    return value


def env_flag(name: str, default: bool) -> bool:
    """Environment variable ``name`` as on (1) or off (0) (``default`` where unset or blank);
    another value ("false", which reads as on where only 0 is off) is a ValueError."""
    text = os.environ.get(name, "").strip()
    if text not in ("", "0", "1"):
        raise ValueError(f"{name}={text!r}: expected 0 (off) or 1 (on) (unset: "
                         f"{int(default)})")
    return default if not text else text == "1"


@functools.cache
def int_range(xp: Any, dtype: Any) -> tuple[int, int]:
    """(min, max) of an integer dtype: xp.iinfo's, remembered (iinfo costs microseconds)."""
    info = xp.iinfo(dtype)
    return int(info.min), int(info.max)


def read_numbers(xp: Any, values: list[Any]) -> tuple[Any, ...]:
    """0-d device values as host numbers, all in one transfer: one sync on a GPU."""
    if xp is HOST_XP:  # already on the host: no stack and copy (15 us of a small loss)
        return tuple(values)
    return tuple(to_numpy(xp.stack(values)))


def all_finite(xp: Any, arrays: list[Any]) -> bool:
    """Whether every value of ``arrays`` is finite, in one host read: a sum is finite unless a
    value is NaN or Inf (or the sum overflows), and one reduction is 2-25x cheaper than
    ``isfinite`` over every value (torch's most); the values are read only when a sum is not."""
    with quiet_float_errors():  # the overflow and NaN NumPy would warn of are the question
        sums = xp.stack([xp.sum(a) for a in arrays])
    if bool(xp.all(xp.isfinite(sums))):
        return True
    return bool(xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays])))


def nonfinite_rows(xp: Any, x: Any) -> Any:
    """The host row numbers of ``x``'s rows that hold NaN or Inf: what to name once
    ``all_finite`` has said there may be some."""
    return to_numpy(~xp.all(xp.isfinite(xp.reshape(x, (x.shape[0], -1))), axis=1)).nonzero()[0]


def is_labels(xp: Any, x: Any) -> bool:
    """Whether ``x`` holds class labels: a 1-D integer array (fit keeps such targets as they
    are; every other target becomes the model's float dtype)."""
    return x.ndim == 1 and is_kind(xp, x.dtype, "integral")


def check_labels(owner: Any, xp: Any, labels: Any, classes: int,
                 ignore_index: int | None = None) -> bool:
    """Raise ValueError unless every label other than ``ignore_index`` lies in [0, classes).

    Returns whether every label is a class (none out of range, none ignored when ignore_index
    is not a class). Reads the labels' range back in one transfer (one sync on a GPU), with
    the range of the labels that are not ignored beside it when they may differ.
    """
    if labels.shape[0] == 0:
        return False
    kept = []  # on a device, the range of the labels that are not ignored, read beside the rest
    if xp is HOST_XP:  # nothing to transfer: read the range directly
        lo, hi = int(xp.min(labels)), int(xp.max(labels))
    else:
        wanted = [xp.min(labels), xp.max(labels)]
        if ignore_index is not None:  # the range without the ignored ones, in the same transfer
            wanted += _kept_range(xp, labels, ignore_index)
        lo, hi, *kept = (int(v) for v in read_numbers(xp, wanted))
    if 0 <= lo and hi < classes:
        return True
    if ignore_index is not None:  # on the host the second range costs nothing to read
        lo, hi = kept or (int(v) for v in _kept_range(xp, labels, ignore_index))
    if lo <= hi and (lo < 0 or hi >= classes):  # lo > hi: every label is ignored
        raise ValueError(f"{owner_name(owner)}: labels must lie in [0, {classes}), "
                         f"got values in [{lo}, {hi}]")
    return False


def _kept_range(xp: Any, labels: Any, ignore_index: int) -> list[Any]:
    """[min, max] of the labels other than ignore_index: ignored ones become the neutral
    element of min and of max."""
    lo_int, hi_int = int_range(xp, labels.dtype)
    ignored = labels == ignore_index
    return [xp.min(xp.where(ignored, hi_int, labels)), xp.max(xp.where(ignored, lo_int, labels))]
