"""Optimizers, simplest first. Each keeps a state dict per parameter and is driven by step().

Every optimizer follows the single-tensor (non-foreach, non-fused) path of ``torch.optim`` step
for step, with PyTorch's hyperparameter names and defaults, so a trajectory can be checked
against torch's. One parameter group: ``opt.lr`` is the learning rate, and it is the attribute
that :mod:`xnn.optim.schedules` sets.

``opt.state[p]`` is parameter p's state, as in torch: a dict under torch's names ("step",
"momentum_buffer", "sum", "square_avg", "grad_avg", "exp_avg", "exp_avg_sq",
"max_exp_avg_sq"), empty until the parameter's first update; ``opt.state`` lists the
parameters in order.

Hyperparameters are plain attributes (``opt.betas``, ``opt.momentum``), checked by the
constructor and kept as Python numbers and bools: a NumPy scalar times another library's array
fails or makes a NumPy array, JSON has no NumPy scalars, and Python's int-float mixes cost twice
as much, on every parameter at every step. ``load_state_dict`` checks a saved state by calling
the constructor. ``lr`` is a property whose setter checks it, since schedules and people set it
mid-training; other hyperparameters set by hand are taken as they are, as in torch.

Updates are written in place (``p.value -= ...``, ``state["exp_avg_sq"] *= beta2``) so
``Parameter.value`` and the state arrays stay the same objects from step to step. Each in-place
write targets the attribute or dict slot, never a local name: on a library without in-place
operators Python turns ``slot -= x`` into ``slot = slot - x``, so the same line is also the
functional update. The one array that may refuse the write is a parameter the user made
read-only (a NumPy memory map of a checkpoint); it is replaced once by a fresh, writeable array.

``step()`` reads no value back from the device (no float() of an array), so it never makes the
host wait for a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Iterable

from .._checks import flag, integer, number
from ..backend import asarray, backend_of
from ..namespace import array_namespace, dtype_name, is_array
from ..nn.module import Parameter
from ._checks import check_grads, parameter_list, placements, within_range

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


class Optimizer:
    """Base class: the parameters, a state dict per parameter (``state[p]``), step().

    A subclass's constructor takes ``params`` and the keyword arguments it names in
    ``hyperparameters``, passes ``lr`` on to this one, checks the others (``number``,
    ``integer``, ``flag``) and keeps each as the attribute of that name; load_state_dict checks
    a saved state by calling that constructor. It names the state entries a parameter may hold in
    ``state_keys`` (torch's names) and those its first update makes in ``made_together``, and
    writes the update in ``_update(params, states)``: a loop over the parameters (skipping those
    whose grad is None) and their state dicts, with the hyperparameters read once into local
    names, as torch's single-tensor functions do.
    """

    # slots let a wrapper (DistributedOptimizer) have no __dict__, so that setting one of the
    # wrapped optimizer's hyperparameters on it raises instead of being lost; subclasses that
    # declare no slots have a __dict__ for their hyperparameters
    __slots__ = ("params", "_lr", "initial_lr", "steps", "state", "_placed")
    hyperparameters: tuple[str, ...] = ("lr",)  # the constructor's, saved by state_dict()
    state_keys: tuple[str, ...] = ()  # a parameter's state entries, in state_dict() order
    made_together: tuple[str, ...] = ()  # the entries a parameter's first update makes at once

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        name = type(self).__name__
        params = parameter_list(self, params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        first: dict[int, int] = {}  # id -> the index where the parameter first appears
        for i, p in enumerate(params):
            if first.setdefault(id(p), i) != i:
                raise ValueError(f"{name}: parameter {i} appears twice in params; "
                                 f"it would be updated twice per step")
        self.params = params
        self.lr = lr
        self.initial_lr: float | None = None  # the lr the first schedule found (torch's name)
        self.steps = 0  # step() calls so far
        self.state: dict[Parameter, dict[str, Any]] = {p: {} for p in params}
        self._placed = placements(params)  # where the state lies: beside these values

    @property
    def lr(self) -> float:
        """The learning rate: a Python float >= 0, checked when set (ValueError, TypeError)."""
        return self._lr  # _update reads self._lr: a property's getter is a Python call per step

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = number(self, "lr", value, low=0)

    # --- the update ------------------------------------------------------------------------------

    def step(self) -> None:
        """Update every parameter that has a gradient; those whose grad is None are skipped.

        Every grad is checked before any parameter changes: a grad of another library, device,
        dtype or shape raises TypeError or ValueError and leaves the step undone. State made
        for values that have since been replaced (``model.to()`` moves them to another backend,
        device or dtype) is moved beside the new ones first.
        """
        self._follow_values()
        self._update(self.params, self.state)
        self.steps += 1

    def _follow_values(self) -> None:
        """Check the grads; where values were replaced since the state was placed, record
        them when they lie where the old ones lay (an update that rebinds: every one on jax,
        whose arrays are immutable; a read-only array's first), else move the state beside
        them (``model.to()``: copied where it differs, checked as load_state_dict would)."""
        if not check_grads(self, self._placed):
            now = placements(self.params)
            if all(type(a[1]) is type(b[1]) and a[2:] == b[2:]
                   for a, b in zip(self._placed, now)):
                self._placed = now
            else:
                self._load(f"{type(self).__name__}.step", self.state_dict(), copy=False)

    def _update(self, params: list[Parameter], states: dict[Parameter, dict[str, Any]]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update(params, states)")

    def zero_grad(self) -> None:
        """Forget the gradients, so the next backprop starts from zero."""
        for p in self.params:
            p.grad = None

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data to resume from: hyperparameters, the step count, per-parameter state.

        ``state`` maps each of ``state_keys`` to a list in parameter order whose items are
        arrays of the parameters' backend (None where a parameter has no such entry) or, for
        "step", ints. The arrays are the optimizer's own, not copies, as in torch: convert them
        (a checkpoint does) before training on if the dict is kept in memory.
        """
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": {k: getattr(self, k)
                                for k in (*self.hyperparameters, "initial_lr")},
            "steps": self.steps,
            "state": {key: [self.state[p].get(key) for p in self.params]
                      for key in self.state_keys},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what state_dict() returned, so training continues exactly where it stopped.

        State arrays may come from any backend or be NumPy arrays; each is copied onto its
        parameter's backend and device in the parameter's dtype. The whole state is checked
        before anything is assigned: a state that is refused (TypeError, ValueError) leaves the
        optimizer as it was, and one that is accepted cannot make a later step() fail half-way.
        """
        self._load(f"{type(self).__name__}.load_state_dict", state, copy=True)

    def _load(self, where: str, state: Mapping[str, Any], copy: bool) -> None:
        """load_state_dict, naming ``where`` in its messages; ``copy``: copy the state arrays
        even where they are beside their parameters already."""
        _check_layout(where, self, state)
        # the hyperparameters as the constructor keeps them, checked by calling it (a fill
        # value may not fit a new dtype)
        hyper = state["hyperparameters"]
        twin = type(self)(self.params, **{k: hyper[k] for k in self.hyperparameters})
        checked = {k: getattr(twin, k) for k in self.hyperparameters}
        initial_lr = hyper["initial_lr"]
        checked["initial_lr"] = (None if initial_lr is None
                                 else number(self, "initial_lr", initial_lr, low=0))
        steps = integer(where, "steps", state["steps"], low=0)
        per_parameter = {p: _parameter_state(where, self, i, p, state["state"], copy)
                         for i, p in enumerate(self.params)}
        for name, value in checked.items():  # nothing from here on can fail
            setattr(self, name, value)
        self.steps, self.state, self._placed = steps, per_parameter, placements(self.params)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"


def _check_layout(where: str, opt: Optimizer, state: Any) -> None:
    """Raise unless ``state`` is laid out as ``opt.state_dict()`` returns it: its keys, the
    optimizer's name, the hyperparameters' and entries' names, a list per entry with an item
    per parameter. TypeError for a wrong type, ValueError for a wrong name or length."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{where}: expected the dict that state_dict() returns, "
                        f"got {type(state).__name__}")
    missing = [k for k in ("optimizer", "hyperparameters", "steps", "state") if k not in state]
    if missing:
        raise ValueError(f"{where}: the state lacks {', '.join(map(repr, missing))} "
                         f"(it has {sorted(map(str, state))})")
    name = type(opt).__name__
    if state["optimizer"] != name:
        raise ValueError(f"{where}: the state is of a {state['optimizer']!r} optimizer, "
                         f"not {name!r}")
    for key, wanted in (("hyperparameters", {*opt.hyperparameters, "initial_lr"}),
                        ("state", set(opt.state_keys))):
        if not isinstance(state[key], Mapping):
            raise TypeError(f"{where}: {key!r} must be a dict, got {type(state[key]).__name__}")
        if set(state[key]) != wanted:
            raise ValueError(f"{where}: {key!r} names {sorted(map(str, state[key]))}, "
                             f"expected {sorted(wanted)}")
    for key, items in state["state"].items():
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"{where}: {key!r} must be a list with an entry per parameter, "
                            f"got {type(items).__name__}")
        if len(items) != len(opt.params):
            raise ValueError(f"{where}: {key!r} holds {len(items)} entries "
                             f"but the optimizer has {len(opt.params)} parameters")


def _parameter_state(where: str, opt: Optimizer, i: int, p: Parameter,
                     entries: Mapping[str, list], copy: bool) -> dict[str, Any]:
    """Parameter i's state dict from the entries of a state dict, beside ``p``: copies, or
    (``copy`` False) the same arrays where they are there already."""
    own = {}
    for key in opt.state_keys:
        item = entries[key][i]
        if item is not None:
            own[key] = (integer(where, f"{key!r}[{i}]", item, low=0) if key == "step"
                        else _like(where, key, i, p.value, item, copy))
    absent = [key for key in opt.made_together if key not in own]
    if own and absent:  # e.g. moments without their step count: the next update needs both
        raise ValueError(f"{where}: parameter {i} has {', '.join(map(repr, own))} but "
                         f"no {', '.join(map(repr, absent))}; an updated parameter has "
                         f"all of {', '.join(map(repr, opt.made_together))}")
    return own


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (heavy ball or Nesterov).

    p <- p - lr * g, where g is the gradient plus ``weight_decay * p`` and, with momentum,
    buf <- momentum * buf + (1 - dampening) * g replaces g by buf (or by g + momentum * buf
    with Nesterov). The first step sets buf = g, as torch does.

    Parameters
    ----------
    params: the parameters to update, usually ``model.parameters()``.
    lr: learning rate (torch's default, 1e-3).
    momentum: momentum factor, >= 0.
    dampening: damping of the gradient's share in the momentum buffer.
    weight_decay: L2 penalty, >= 0 (added to the gradient).
    nesterov: Nesterov momentum; needs momentum > 0 and dampening == 0.
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    state_keys = ("momentum_buffer",)

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = number(self, "momentum", momentum, low=0)
        self.dampening = number(self, "dampening", dampening)
        self.weight_decay = number(self, "weight_decay", weight_decay, low=0)
        self.nesterov = flag(self, "nesterov", nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum!r}, dampening={self.dampening!r}")

    def _update(self, params: list[Parameter], states: dict[Parameter, dict[str, Any]]) -> None:
        lr, momentum, dampening = self._lr, self.momentum, self.dampening
        weight_decay, nesterov = self.weight_decay, self.nesterov
        for p in params:
            grad = p.grad
            if grad is None:
                continue
            if weight_decay:
                grad = grad + weight_decay * p.value  # a new array: p.grad is never written
            if momentum:
                state = states[p]
                if state.get("momentum_buffer") is None:  # the first update, or momentum set since
                    # a copy, not the gradient itself: the buffer is scaled in place next step
                    state["momentum_buffer"] = array_namespace(grad).asarray(grad, copy=True)
                else:  # written to the slot, not a local name: on jax that is the update itself
                    state["momentum_buffer"] *= momentum
                    state["momentum_buffer"] += grad if not dampening else (1.0 - dampening) * grad
                buf = state["momentum_buffer"]
                grad = grad + momentum * buf if nesterov else buf
            try:  # _subtract, written out: this loop is the whole step of a small network
                p.value -= lr * grad
            except ValueError:  # a read-only NumPy array
                p.value = p.value - lr * grad


class Adagrad(Optimizer):
    """Adagrad: each coordinate's step is divided by the root of its summed squared gradients.

    sum <- sum + g^2, p <- p - clr * g / (sqrt(sum) + eps), with clr = lr / (1 + (t - 1) lr_decay)
    at the parameter's t-th step.

    Parameters
    ----------
    params: the parameters to update.
    lr: learning rate (1e-2).
    lr_decay: decay of the learning rate with the step count, >= 0.
    weight_decay: L2 penalty, >= 0 (added to the gradient).
    initial_accumulator_value: starting value of the sums, >= 0.
    eps: added to the root for stability, >= 0 (1e-10).
    """

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    state_keys = made_together = ("step", "sum")

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, lr)
        self.lr_decay = number(self, "lr_decay", lr_decay, low=0)
        self.weight_decay = number(self, "weight_decay", weight_decay, low=0)
        self.initial_accumulator_value = number(self, "initial_accumulator_value",
                                                initial_accumulator_value, low=0)
        self.eps = number(self, "eps", eps, low=0)
        # torch refuses a start its parameters' dtype cannot hold (1e300 in float32) when it
        # fills the sums (NumPy makes it inf); so does this, before the first step, everywhere
        start = self.initial_accumulator_value
        for i, p in enumerate(self.params):
            if start < math.inf and not within_range(start, p.value):
                raise ValueError(f"Adagrad: initial_accumulator_value={start!r} overflows "
                                 f"parameter {i}'s {dtype_name(p.value.dtype)}")

    def _update(self, params: list[Parameter], states: dict[Parameter, dict[str, Any]]) -> None:
        lr, lr_decay, weight_decay, eps = self._lr, self.lr_decay, self.weight_decay, self.eps
        for p in params:
            grad = p.grad
            if grad is None:
                continue
            state = states[p]
            xp = array_namespace(p.value)
            if not state:
                state["step"] = 0
                state["sum"] = xp.full_like(p.value, self.initial_accumulator_value)
            state["step"] += 1
            if weight_decay:
                grad = grad + weight_decay * p.value
            clr = lr / (1.0 + (state["step"] - 1) * lr_decay)
            state["sum"] += grad * grad
            std = xp.sqrt(state["sum"])
            std += eps
            _subtract(p, clr * grad / std)


class RMSprop(Optimizer):
    """RMSprop: the step is divided by a running root mean square of the gradients.

    sq <- alpha sq + (1 - alpha) g^2; centered also tracks ga <- alpha ga + (1 - alpha) g and
    divides by sqrt(sq - ga^2) instead. With momentum, buf <- momentum buf + g / (root + eps)
    and p <- p - lr buf; without, p <- p - lr g / (root + eps).

    Parameters
    ----------
    params: the parameters to update.
    lr: learning rate (1e-2).
    alpha: smoothing constant of the running averages, >= 0 (0.99).
    eps: added to the root for stability, >= 0 (1e-8).
    weight_decay: L2 penalty, >= 0 (added to the gradient).
    momentum: momentum factor, >= 0.
    centered: divide by the running variance instead of the raw second moment.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    state_keys = ("square_avg", "grad_avg", "momentum_buffer")
    made_together = ("square_avg",)

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False) -> None:
        super().__init__(params, lr)
        self.eps = number(self, "eps", eps, low=0)
        self.momentum = number(self, "momentum", momentum, low=0)
        self.weight_decay = number(self, "weight_decay", weight_decay, low=0)
        self.alpha = number(self, "alpha", alpha, low=0)
        self.centered = flag(self, "centered", centered)

    def _update(self, params: list[Parameter], states: dict[Parameter, dict[str, Any]]) -> None:
        lr, alpha, eps, weight_decay = self._lr, self.alpha, self.eps, self.weight_decay
        momentum, centered = self.momentum, self.centered
        for p in params:
            grad = p.grad
            if grad is None:
                continue
            state = states[p]
            xp = array_namespace(p.value)
            # made at the first update; grad_avg and the buffer also once centered or momentum
            # is switched on later
            if not state:
                state["square_avg"] = xp.zeros_like(p.value)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(p.value)
            if momentum and "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(p.value)
            if weight_decay:
                grad = grad + weight_decay * p.value
            state["square_avg"] *= alpha
            state["square_avg"] += (1.0 - alpha) * grad * grad
            if centered:
                # torch's lerp, not alpha ga + (1 - alpha) g
                state["grad_avg"] += (1.0 - alpha) * (grad - state["grad_avg"])
                ga = state["grad_avg"]
                avg = xp.sqrt(state["square_avg"] - ga * ga)
            else:
                avg = xp.sqrt(state["square_avg"])
            avg += eps
            if momentum:
                state["momentum_buffer"] *= momentum
                state["momentum_buffer"] += grad / avg
                _subtract(p, lr * state["momentum_buffer"])
            else:
                _subtract(p, lr * grad / avg)


class Adam(Optimizer):
    """Adam: steps along bias-corrected running averages of the gradient and its square.

    m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2  (amsgrad: v_max <- max(v_max, v))
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    ``weight_decay`` is Adam's L2 penalty (added to g, so it passes through m and v); AdamW below
    decouples it.

    Parameters
    ----------
    params: the parameters to update.
    lr: learning rate (1e-3).
    betas: decay rates of the two running averages, each in [0, 1) ((0.9, 0.999)).
    eps: added to the denominator for stability, >= 0 (1e-8).
    weight_decay: >= 0; an L2 penalty here, a decoupled shrinkage in AdamW.
    amsgrad: divide by the largest second moment seen so far (Reddi et al., 2018).
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    made_together = ("step", "exp_avg", "exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self.eps = number(self, "eps", eps, low=0)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair of floats, "
                             f"got {betas!r}")
        self.betas = tuple(number(self, f"betas[{k}]", beta, low=0, high=1, high_open=True)
                           for k, beta in enumerate(betas))
        self.weight_decay = number(self, "weight_decay", weight_decay, low=0)
        self.amsgrad = flag(self, "amsgrad", amsgrad)

    def _update(self, params: list[Parameter], states: dict[Parameter, dict[str, Any]]) -> None:
        lr, (beta1, beta2), eps, weight_decay = self._lr, self.betas, self.eps, self.weight_decay
        amsgrad, decoupled = self.amsgrad, self.decoupled_weight_decay
        for p in params:
            grad = p.grad
            if grad is None:
                continue
            state = states[p]
            xp = array_namespace(p.value)
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.value)
                state["exp_avg_sq"] = xp.zeros_like(p.value)
            if amsgrad and "max_exp_avg_sq" not in state:  # also once amsgrad is switched on
                state["max_exp_avg_sq"] = xp.zeros_like(p.value)
            state["step"] += 1
            t = state["step"]
            if weight_decay:
                if decoupled:
                    # AdamW (Loshchilov & Hutter): shrink the weights, outside m and v
                    _scale(p, 1.0 - lr * weight_decay)
                else:
                    # Adam: the L2 penalty's gradient, so it is rescaled by v like the loss's
                    grad = grad + weight_decay * p.value
            # torch's lerp form of beta1 m + (1 - beta1) g
            state["exp_avg"] += (1.0 - beta1) * (grad - state["exp_avg"])
            state["exp_avg_sq"] *= beta2
            state["exp_avg_sq"] += (1.0 - beta2) * grad * grad
            step_size = lr / (1.0 - beta1 ** t)
            second = state["exp_avg_sq"]
            if amsgrad:  # the running max, a new array (no out=)
                second = state["max_exp_avg_sq"] = xp.maximum(state["max_exp_avg_sq"], second)
            denom = xp.sqrt(second)
            denom /= (1.0 - beta2 ** t) ** 0.5
            denom += eps
            _subtract(p, step_size * state["exp_avg"] / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p (1 - lr weight_decay) before the Adam step.

    Same parameters as :class:`Adam`; ``weight_decay`` defaults to 1e-2, as in torch.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# --- helpers -------------------------------------------------------------------------------------

def _subtract(p: Parameter, delta: Any) -> None:
    """p.value -= delta: in place, so p.value stays the same object, where the array allows."""
    try:
        p.value -= delta
    except ValueError:  # a read-only NumPy array; the new array is writeable from now on
        p.value = p.value - delta


def _scale(p: Parameter, factor: float) -> None:
    """p.value *= factor, in place where the array allows (see _subtract)."""
    try:
        p.value *= factor
    except ValueError:
        p.value = p.value * factor


def _like(where: str, key: str, i: int, value: Any, item: Any, copy: bool = False) -> Any:
    """State entry ``item`` of parameter i as an array of the library, device and dtype of the
    parameter's ``value``: ``item`` itself when it is one already (unless ``copy``), else a
    copy. TypeError for a non-array (either) or a non-float one, ValueError for another shape."""
    if (not copy and type(item) is type(value) and item.dtype == value.dtype
            and item.shape == value.shape and item.device == value.device):
        return item
    if not is_array(value):
        raise TypeError(f"{where}: parameter {i} holds a {type(value).__name__}, not an array")
    if not is_array(item):
        raise TypeError(f"{where}: {key!r}[{i}] is a {type(item).__name__}, not an array")
    if tuple(item.shape) != tuple(value.shape):
        raise ValueError(f"{where}: {key!r}[{i}] has shape {tuple(item.shape)}, "
                         f"parameter {i} has shape {tuple(value.shape)}")
    if not dtype_name(item.dtype).startswith("float"):
        raise TypeError(f"{where}: {key!r}[{i}] is {dtype_name(item.dtype)}; optimizer state "
                        f"is floating-point")
    return asarray(item, dtype=value.dtype, backend=backend_of(value))
