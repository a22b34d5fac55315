"""Checks shared by the optimizers, clipping and schedules: parameter lists, gradients, ranges.

Numbers are checked with xnn's ``number`` and ``integer``, which return Python numbers: a NumPy
scalar (np.float32(0.1)) times an array of another library is refused by that library
(array_api_strict) or makes a NumPy result, and JSON, which checkpoints write, has no NumPy
scalars.

A gradient must be an array of its parameter's library, device, dtype and shape: anything
else would broadcast or promote silently, or fail inside the library. The usual case passes
on five comparisons a parameter and reads nothing back from the device; only a mismatch takes
the slow path that says what came and what was expected.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .._checks import expect, owner_name
from ..backend import host_backend
from ..namespace import array_namespace, is_array
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


def placements(params: Iterable[Parameter]) -> list[tuple]:
    """(parameter, value, dtype, shape, device) for each parameter: the value's place, which
    check_grads compares each grad with, and which an optimizer's state was made for."""
    # None for a NumPy array's device: there is only the host, so no grad's device is read
    host = host_backend()
    return [(p, p.value, getattr(p.value, "dtype", None), getattr(p.value, "shape", None),
             None if host.holds(p.value) else getattr(p.value, "device", None))
            for p in params]


def check_grads(owner: Any, placed: Sequence[tuple]) -> bool:
    """Raise unless every grad that is not None can update its parameter, before any update;
    return whether every parameter and grad is where ``placed`` recorded.

    ``placed`` is what placements() returned: for an optimizer, when its state was placed (the
    answer is False once ``model.to()`` replaced a value, and the state must follow); for a
    caller without state, just now. A grad passes when it is an array of the parameter's
    library and device with its dtype and shape (a NumPy scalar for a 0-d NumPy parameter, or a
    subclass such as torch's Parameter, passes the slow path). TypeError names a non-array,
    another library or another dtype; ValueError another device or shape; each names the owner
    and the parameter's index. The usual case compares each grad with the recorded place, so it
    reads the value's dtype, shape and device only when they are recorded.
    """
    for p, held, dtype, shape, device in placed:
        grad = p.grad
        if p.value is not held or grad is not None and not (
                type(grad) is type(held) and grad.dtype == dtype and grad.shape == shape
                and (device is None or grad.device == device)):
            for i, (q, *_) in enumerate(placed):
                if q.grad is not None:
                    check_grad(owner, i, q.value, q.grad)
            return False  # the grads can update, but not everything is as recorded
    return True


def check_grad(owner: Any, i: int, value: Any, grad: Any) -> None:
    """The slow, descriptive check of one grad against its parameter ``value`` (see check_grads)."""
    if not is_array(value):
        raise TypeError(f"{owner_name(owner)}: parameter {i} holds a {type(value).__name__}, "
                        f"not an array")
    expect(owner, grad, like=value, shape=tuple(value.shape), what=f"grad of parameter {i}",
           like_what=f"parameter {i}",
           fix="move the grad with xnn.asarray() or the model with model.to()")


def within_range(value: float, x: Any) -> bool:
    """Whether ``|value|`` is at most the largest finite number of ``x``'s float dtype (True when
    ``x`` is not a float array: nothing to compare with)."""
    if abs(value) <= _FLOAT32_MAX:
        return True  # the usual case, decided without the namespace
    try:
        return abs(value) <= float(array_namespace(x).finfo(x.dtype).max)
    except (TypeError, ValueError):
        return True


_FLOAT32_MAX = 3.4028234663852886e38  # the largest float32; smaller values fit every float dtype
