"""Tools that prove xnn's numbers: the gradient checker and cross-backend parity.

``gradcheck`` compares a module's (or a loss's) hand-written backprop with float64 central
differences, for every input element and every parameter element. ``compare_backends`` and
``assert_parity`` (from ``xnn.parity``) train one seeded model on several backends and report
how far they drift.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

from . import random
from ._checks import flag
from .backend import asarray, backend_of, dtype_name, to_numpy
from .losses.base import Loss
from .nn.module import Module
from .parity import TOLERANCES, ParamDiff, ParityReport, assert_parity, compare_backends

__all__ = ["gradcheck", "GradcheckError", "compare_backends", "assert_parity", "ParityReport",
           "ParamDiff", "TOLERANCES"]


class GradcheckError(AssertionError):
    """Backprop disagrees with finite differences; the message names the worst entry."""


def gradcheck(target: Module | Loss | Callable, *inputs: Any, eps: float = 1e-6,
              rtol: float = 1e-5, atol: float = 1e-8, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check backprop against float64 central differences; True when every entry agrees.

    For a Module, ``inputs`` is the input array; the check is of L = sum(forward(x) * g) with a
    fixed random g, over the input and every parameter. For a Loss, ``inputs`` is
    ``(pred, target)`` and the check is of the loss value (summed when reduction="none") over
    ``pred``. The random state is restored before every forward, so dropout masks repeat.
    """
    raise_exception = flag("gradcheck", "raise_exception", raise_exception)
    for i, x in enumerate(inputs):
        if dtype_name(x.dtype).startswith("float") and dtype_name(x.dtype) != "float64":
            raise TypeError(f"gradcheck needs float64 inputs for accurate differences; input {i} "
                            f"is {dtype_name(x.dtype)}")
    state = random.get_state()
    if isinstance(target, Module):
        objective, analytic = _module_check(target, inputs, seed, state)
        params = list(target.named_parameters())
    else:
        objective, analytic = _loss_check(target, inputs, state)
        params = []

    # (excess, name, index, analytic, numeric) of the worst entry, the first of equals;
    # excess = |a - n| - (atol + rtol |n|), > 0 fails
    worst = (-1.0, "", (), 0.0, 0.0)
    arrays = [("input", inputs[0], None)] + [(name, p.value, p) for name, p in params]
    for (name, value, param), grad in zip(arrays, analytic):
        host = to_numpy(value)
        grad = to_numpy(grad) if grad is not None else host * 0
        backend = backend_of(value)
        for index in itertools.product(*map(range, host.shape)):
            original = host[index]
            values = []
            for sign in (1, -1):
                host[index] = original + sign * eps
                moved = asarray(host, dtype="float64", backend=backend)
                if param is not None:
                    param.value = moved
                values.append(objective(moved if param is None else inputs[0], *inputs[1:]))
            host[index] = original
            if param is not None:
                param.value = value
            numeric = (values[0] - values[1]) / (2 * eps)
            a = float(grad[index])
            excess = abs(a - numeric) - (atol + rtol * abs(numeric))
            worst = max(worst, (excess, name, index, a, numeric), key=lambda w: w[0])
    random.set_state(state)
    excess, name, index, a, numeric = worst
    if excess <= 0:
        return True
    if not raise_exception:
        return False
    label = type(target).__name__ if isinstance(target, (Module, Loss)) else repr(target)
    raise GradcheckError(
        f"{label}: backprop disagrees with central differences (eps={eps}) at "
        f"{name}{list(index)}: analytic {a:.10g}, numeric {numeric:.10g}, |difference| "
        f"{abs(a - numeric):.3g} > atol {atol} + rtol {rtol} * |numeric|")


def _module_check(module: Module, inputs: tuple, seed: int, state: dict):
    """Objective sum(forward(x) * g) and the analytic gradients (input first, then parameters)."""
    random.set_state(state)
    y, backprop = module.forward(inputs[0])
    g_host = random.host_generator(seed).standard_normal(tuple(y.shape))
    g = asarray(g_host, dtype=y.dtype, backend=backend_of(y))
    module.zero_grad()
    dx = backprop(g)
    grads = [dx] + [p.grad for p in module.parameters()]
    module.zero_grad()

    def objective(x_value: Any) -> float:
        random.set_state(state)
        out, _ = module.forward(x_value)
        return float((to_numpy(out) * g_host).sum())

    return objective, grads


def _loss_check(loss: Any, inputs: tuple, state: dict):
    """Objective: the loss value (summed), and its analytic gradient with respect to pred."""
    random.set_state(state)
    _, dpred = loss(*inputs)

    def objective(pred: Any, *rest: Any) -> float:
        random.set_state(state)
        value, _ = loss(pred, *rest)
        return float(to_numpy(value).sum())

    return objective, [dpred]
