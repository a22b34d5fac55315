"""Checks shared by the optimizers, clipping and schedules: numbers and gradients.

Hyperparameters become Python numbers when they are accepted: a NumPy scalar (np.float32(0.1))
times an array of another library is refused by that library (array_api_strict) or makes a
NumPy result, and JSON, which checkpoints write, has no NumPy scalars.

A gradient must be an array of its parameter's library, device, dtype and shape: anything
else would broadcast or promote silently, or fail inside the library. The usual case passes
on four comparisons a parameter and reads nothing back from the device; only a mismatch takes
the slow path that says what came and what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, Sequence

from .._checks import check_one_place, describe, owner_name
from ..backend import dtype_name, is_array
from ..nn.module import Parameter


def parameter_list(owner: Any, params: Iterable[Parameter] | Parameter) -> list[Parameter]:
    """``params`` (one Parameter or an iterable of them) as a list; TypeError naming ``owner``
    for anything else, with the usual cause (a model passed instead of its parameters)."""
    name = owner_name(owner)
    if isinstance(params, Parameter):
        return [params]
    try:
        items = list(iter(params))
    except TypeError:
        raise TypeError(f"{name}: params must be an iterable of Parameters, got "
                        f"{type(params).__name__} (pass model.parameters())") from None
    for i, p in enumerate(items):
        if not isinstance(p, Parameter):
            raise TypeError(f"{name}: item {i} of params is a {type(p).__name__}, "
                            f"not a Parameter (pass model.parameters())")
    return items


def real(owner: Any, name: str, value: Any) -> int | float:
    """``value`` as a Python int or float; TypeError if it is not a real number (bools neither)."""
    if type(value) is float or type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner_name(owner)}: {name} must be a real number, "
                        f"got {type(value).__name__} {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def nonnegative(owner: Any, name: str, value: Any) -> int | float:
    """real(), and ValueError unless it is >= 0 (NaN is refused, inf passes)."""
    value = real(owner, name, value)
    if not value >= 0:
        raise ValueError(f"{owner_name(owner)}: {name} must be >= 0, got {value!r}")
    return value


def check_grads(owner: Any, params: Sequence[Any]) -> None:
    """Raise unless every grad that is not None can update its parameter, before any update.

    A grad passes when it is an array of the parameter's library and device with its dtype and
    shape (a NumPy scalar for a 0-d NumPy parameter, or a subclass such as torch's Parameter,
    passes the slow path). TypeError names a non-array, another library or another dtype;
    ValueError another device or shape; each names the owner and the parameter's index.
    """
    for p in params:
        grad, value = p.grad, p.value
        if grad is not None and not (type(grad) is type(value) and grad.dtype == value.dtype
                                     and grad.shape == value.shape
                                     and grad.device == value.device):
            for i, q in enumerate(params):
                if q.grad is not None:
                    check_grad(owner, i, q.value, q.grad)
            return


def check_grad(owner: Any, i: int, value: Any, grad: Any) -> None:
    """The slow, descriptive check of one grad against its parameter ``value`` (see check_grads)."""
    name = owner_name(owner)
    if not is_array(value):
        raise TypeError(f"{name}: parameter {i} holds a {type(value).__name__}, not an array")
    if not is_array(grad):
        raise TypeError(f"{name}: the grad of parameter {i} is a {type(grad).__name__}, not an "
                        f"array; expected {describe(value)} like the parameter")
    check_one_place(owner, [(f"parameter {i}", value), (f"grad of parameter {i}", grad)],
                    "move the grad with xnn.asarray() or the model with model.to()")
    if tuple(grad.shape) != tuple(value.shape):
        raise ValueError(f"{name}: parameter {i} has shape {tuple(value.shape)} but its grad "
                         f"has shape {tuple(grad.shape)}")
    if grad.dtype != value.dtype:
        raise TypeError(f"{name}: parameter {i} is {dtype_name(value.dtype)} but its grad is "
                        f"{dtype_name(grad.dtype)}")
