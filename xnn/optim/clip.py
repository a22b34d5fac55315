"""Gradient clipping: rescale every gradient together by their joint norm, or clamp each entry."""

from __future__ import annotations

from typing import Any, Iterable

from ..namespace import array_namespace
from ..nn.init import zeros
from ..nn.module import Parameter
from .._checks import check_one_place, number
from ._checks import check_grads, parameter_list, placements, within_range

__all__ = ["clip_grad_norm", "clip_grad_value"]


def clip_grad_norm(params: Iterable[Parameter] | Parameter, max_norm: float,
                   norm_type: float = 2.0) -> Any:
    """Scale the gradients so their joint norm is at most ``max_norm``; return the norm before.

    The joint norm is the ``norm_type``-norm of all gradients seen as one vector (``inf`` for
    the largest entry). Each gradient is multiplied by min(max_norm / (norm + 1e-6), 1), as
    ``torch.nn.utils.clip_grad_norm_`` does, without comparing on the host: nothing waits for
    the device. Parameters whose grad is None are skipped.

    Returns the norm as a 0-d array on the gradients' device; ``float()`` it to log it (that
    waits for the device, so do it at epoch ends). Gradients are replaced by scaled copies,
    never written in place, so arrays that backprop shares with the caller are left alone.

    Raises TypeError or ValueError, before any gradient changes, for a grad that is not an
    array of its parameter's library, device, dtype and shape, or for grads on two devices.
    """
    params = parameter_list("clip_grad_norm", params)
    max_norm = number("clip_grad_norm", "max_norm", max_norm, low=0)
    norm_type = number("clip_grad_norm", "norm_type", norm_type, low=0, low_open=True)  # or inf
    check_grads("clip_grad_norm", placements(params))
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:  # a zero norm on the active backend, in its default dtype
        return zeros(())
    check_one_place("clip_grad_norm", [(f"grad of parameter {i}", p.grad)
                                       for i, p in enumerate(params) if p.grad is not None],
                    "the joint norm needs every grad on one library and device")
    xp = array_namespace(*grads)
    # the norm of the per-gradient norms, as torch computes it
    norms = xp.stack([xp.linalg.vector_norm(g, ord=norm_type) for g in grads])
    total = xp.asarray(xp.linalg.vector_norm(norms, ord=norm_type))  # NumPy gives a scalar
    # minimum, not xp.clip: compat's clip on CuPy indexes with a boolean mask (a device sync)
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for p in params:
        if p.grad is not None:
            # grads of two float dtypes: stack promoted, and the grad keeps its own dtype
            c = coef if coef.dtype == p.grad.dtype else xp.astype(coef, p.grad.dtype)
            p.grad = p.grad * c
    return total


def clip_grad_value(params: Iterable[Parameter] | Parameter, limit: float) -> None:
    """Clamp every gradient entry to [-limit, limit] (torch's clip_grad_value_); None is skipped.

    A limit beyond the largest value of a grad's dtype (1e300 for float32) clamps nothing
    there, as NumPy's clip does (torch refuses to convert it). Raises TypeError or ValueError,
    before any gradient changes, for a grad unlike its parameter (see clip_grad_norm).
    """
    params = parameter_list("clip_grad_value", params)
    limit = number("clip_grad_value", "limit", limit, low=0)
    check_grads("clip_grad_value", placements(params))
    for p in params:
        # beyond the dtype's range every entry, inf included, is already within [-limit, limit]
        if p.grad is not None and within_range(limit, p.grad):
            xp = array_namespace(p.grad)
            p.grad = xp.minimum(xp.maximum(p.grad, -limit), limit)  # not xp.clip: see above

