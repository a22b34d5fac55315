"""Gradient clipping: rescale every gradient together by their joint norm, or clamp each entry."""

from __future__ import annotations

import numbers
from typing import Any, Iterable

from ..backend import array_namespace, get_backend, resolve_dtype
from ..nn.module import Parameter

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
    """
    params = _parameters("clip_grad_norm", params)
    _check_limit("clip_grad_norm", "max_norm", max_norm)
    if not (isinstance(norm_type, numbers.Real) and norm_type > 0):
        raise ValueError(f"clip_grad_norm: norm_type must be a positive number or inf, "
                         f"got {norm_type!r}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        b = get_backend()
        return b.xp.zeros((), dtype=resolve_dtype(b.xp), device=b.device)
    xp = array_namespace(*grads)
    # the norm of the per-gradient norms, as torch computes it
    norms = xp.stack([xp.linalg.vector_norm(g, ord=norm_type) for g in grads])
    total = xp.asarray(xp.linalg.vector_norm(norms, ord=norm_type))  # NumPy gives a scalar
    coef = xp.clip(max_norm / (total + 1e-6), max=1.0)
    for p in params:
        if p.grad is not None:
            p.grad = p.grad * coef
    return total


def clip_grad_value(params: Iterable[Parameter] | Parameter, limit: float) -> None:
    """Clamp every gradient entry to [-limit, limit] (torch's clip_grad_value_); None is skipped."""
    params = _parameters("clip_grad_value", params)
    _check_limit("clip_grad_value", "limit", limit)
    for p in params:
        if p.grad is not None:
            p.grad = array_namespace(p.grad).clip(p.grad, min=-limit, max=limit)


def _parameters(owner: str, params: Iterable[Parameter] | Parameter) -> list[Parameter]:
    params = [params] if isinstance(params, Parameter) else list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: item {i} of params is a {type(p).__name__}, "
                            f"not a Parameter (pass model.parameters())")
    return params


def _check_limit(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")
