"""Optimizers, simplest first. Each keeps its state in parameter order and is driven by step().

Every optimizer follows the single-tensor (non-foreach, non-fused) path of ``torch.optim`` step
for step, with PyTorch's hyperparameter names and defaults, so a trajectory can be checked
against torch's. One parameter group: ``opt.lr`` is the learning rate, and it is the attribute
that :mod:`xnn.optim.schedules` sets.

Updates are written in place (``p.value -= ...``, ``buf *= momentum``) so ``Parameter.value``
and the state arrays stay the same objects from step to step. Each in-place write targets the
attribute or list slot, never a local name: on a library without in-place operators Python
turns ``slot -= x`` into ``slot = slot - x``, so the same line is also the functional update.
The one array that may refuse the write is a parameter the user made read-only (a NumPy
memory map of a checkpoint); it is replaced once by a fresh, writeable array.

``step()`` reads no value back from the device (no float() of an array), so it never makes the
host wait for a GPU.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, Iterable

from ..backend import (array_namespace, asarray, backend_of, compute_namespace, dtype_name,
                       is_array)
from ..nn.module import Parameter
from ._checks import check_grads, nonnegative, parameter_list, real

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


class Optimizer:
    """Base class: the parameters, their per-parameter state (lists in parameter order), step().

    Subclasses name their hyperparameters in ``hyperparameters``, map each state_dict entry to
    the attribute holding its per-parameter list in ``state_lists``, and write the update of one
    parameter in ``_update(i, p, grad)``.
    """

    hyperparameters: tuple[str, ...] = ("lr",)
    state_lists: dict[str, str] = {}  # state_dict key -> attribute holding one entry per parameter

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        name = type(self).__name__
        self.params = parameter_list(self, params)
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} appears twice in params; "
                                 f"it would be updated twice per step")
            seen.add(id(p))
        self.lr = nonnegative(self, "lr", lr)
        self.initial_lr: float | None = None  # set by the first schedule (torch's "initial_lr")
        self.steps = 0  # step() calls so far
        for attr in self.state_lists.values():
            setattr(self, attr, [None] * len(self.params))

    def _check(self) -> None:
        """Raise ValueError for a hyperparameter outside its range (torch's checks), TypeError
        for one that is not a number; numbers are kept as Python ints and floats (a NumPy scalar
        would fail, or make NumPy arrays, on another library's arrays)."""
        self.lr = nonnegative(self, "lr", self.lr)

    # --- the update ------------------------------------------------------------------------------

    def step(self) -> None:
        """Update every parameter that has a gradient; those whose grad is None are skipped.

        Every grad is checked before any parameter changes: a grad of another library, device,
        dtype or shape raises TypeError or ValueError and leaves the step undone.
        """
        params = self.params
        check_grads(self, params)
        for i, p in enumerate(params):
            if p.grad is not None:
                self._update(i, p, p.grad)
        self.steps += 1

    def _update(self, i: int, p: Parameter, grad: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update(i, p, grad)")

    def zero_grad(self) -> None:
        """Forget the gradients, so the next backprop starts from zero."""
        for p in self.params:
            p.grad = None

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data to resume from: hyperparameters, the step count, per-parameter state.

        ``state`` maps a name ("exp_avg", "step", ...) to a list in parameter order whose items
        are arrays of the parameters' backend (None where a parameter has had no gradient yet)
        or, for "step", ints. The arrays are the optimizer's own, not copies, as in torch:
        convert them (a checkpoint does) before training on if the dict is kept in memory.
        """
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": {k: getattr(self, k) for k in (*self.hyperparameters, "initial_lr")},
            "steps": self.steps,
            "state": {key: list(getattr(self, attr)) for key, attr in self.state_lists.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned, so training continues exactly where it stopped.

        State arrays may come from any backend or be NumPy arrays; each is copied onto its
        parameter's backend and device in the parameter's dtype. Everything is checked before
        anything is changed: a state that is refused (TypeError, ValueError) leaves the
        optimizer as it was.
        """
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected the dict that state_dict() returns, "
                            f"got {type(state).__name__}")
        missing = [k for k in ("optimizer", "hyperparameters", "steps", "state") if k not in state]
        if missing:
            raise ValueError(f"{where}: the state lacks {', '.join(map(repr, missing))} "
                             f"(it has {sorted(map(str, state))})")
        if state["optimizer"] != name:
            raise ValueError(f"{where}: the state is of a {state['optimizer']!r} optimizer, "
                             f"not {name!r}")
        hyper, entries = state["hyperparameters"], state["state"]
        for key, value in (("hyperparameters", hyper), ("state", entries)):
            if not isinstance(value, Mapping):
                raise TypeError(f"{where}: {key!r} must be a dict, got {type(value).__name__}")
        wanted = {*self.hyperparameters, "initial_lr"}
        if set(hyper) != wanted:
            raise ValueError(f"{where}: hyperparameters {sorted(map(str, hyper))}, "
                             f"expected {sorted(wanted)}")
        if set(entries) != set(self.state_lists):
            raise ValueError(f"{where}: state entries {sorted(map(str, entries))}, "
                             f"expected {sorted(self.state_lists)}")
        steps = _count(where, "steps", state["steps"])
        initial_lr = hyper["initial_lr"]
        if initial_lr is not None:
            initial_lr = nonnegative(where, "initial_lr", initial_lr)
        loaded = {}
        for key, attr in self.state_lists.items():
            items = entries[key]
            if not isinstance(items, (list, tuple)):
                raise TypeError(f"{where}: {key!r} must be a list with an entry per parameter, "
                                f"got {type(items).__name__}")
            if len(items) != len(self.params):
                raise ValueError(f"{where}: {key!r} holds {len(items)} entries "
                                 f"but the optimizer has {len(self.params)} parameters")
            loaded[attr] = [_load_entry(where, key, i, p, item)
                            for i, (p, item) in enumerate(zip(self.params, items))]
        before = {k: getattr(self, k) for k in wanted}
        for k, v in hyper.items():
            setattr(self, k, v)
        self.initial_lr = initial_lr
        try:
            self._check()  # Adam's also turns betas back into a tuple if a checkpoint listed it
        except (ValueError, TypeError):
            for k, v in before.items():
                setattr(self, k, v)
            raise
        # nothing below can fail
        for attr, items in loaded.items():
            setattr(self, attr, items)
        self.steps = steps

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"


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
    state_lists = {"momentum_buffer": "momentum_buffers"}

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self._check()

    def _check(self) -> None:
        super()._check()
        self.momentum = nonnegative(self, "momentum", self.momentum)
        self.dampening = real(self, "dampening", self.dampening)
        self.weight_decay = nonnegative(self, "weight_decay", self.weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum!r}, dampening={self.dampening!r}")

    def _update(self, i: int, p: Parameter, grad: Any) -> None:
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * p.value  # a new array: p.grad is never written
        if self.momentum != 0:
            bufs = self.momentum_buffers
            if bufs[i] is None:
                # a copy, not the gradient itself: the buffer is scaled in place next step
                bufs[i] = array_namespace(grad).asarray(grad, copy=True)
            else:
                bufs[i] *= self.momentum
                bufs[i] += grad if self.dampening == 0 else (1 - self.dampening) * grad
            grad = grad + self.momentum * bufs[i] if self.nesterov else bufs[i]
        _subtract(p, self.lr * grad)


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
    state_lists = {"step": "param_steps", "sum": "sums"}

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, lr)
        self.lr_decay, self.weight_decay = lr_decay, weight_decay
        self.initial_accumulator_value, self.eps = initial_accumulator_value, eps
        self._check()

    def _check(self) -> None:
        super()._check()
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            setattr(self, name, nonnegative(self, name, getattr(self, name)))
        # torch refuses a start its parameters' dtype cannot hold (1e300 in float32) when it
        # fills the sums; so does this, before the first step, on every backend
        for i, p in enumerate(self.params):
            _check_fill(self, "initial_accumulator_value", self.initial_accumulator_value, i, p)

    def _update(self, i: int, p: Parameter, grad: Any) -> None:
        xp = compute_namespace(p.value)
        if self.sums[i] is None:
            self.sums[i] = xp.full_like(p.value, self.initial_accumulator_value)
            self.param_steps[i] = 0
        self.param_steps[i] += 1
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * p.value
        clr = self.lr / (1 + (self.param_steps[i] - 1) * self.lr_decay)
        self.sums[i] += grad * grad
        std = xp.sqrt(self.sums[i])
        std += self.eps
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
    state_lists = {"square_avg": "square_avgs", "grad_avg": "grad_avgs",
                   "momentum_buffer": "momentum_buffers"}

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered
        self._check()

    def _check(self) -> None:
        super()._check()
        for name in ("eps", "momentum", "weight_decay", "alpha"):
            setattr(self, name, nonnegative(self, name, getattr(self, name)))

    def _update(self, i: int, p: Parameter, grad: Any) -> None:
        xp = compute_namespace(p.value)
        if self.square_avgs[i] is None:
            self.square_avgs[i] = xp.zeros_like(p.value)
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * p.value
        sq = self.square_avgs
        sq[i] *= self.alpha
        sq[i] += (1 - self.alpha) * grad * grad
        if self.centered:
            ga = self.grad_avgs
            if ga[i] is None:
                ga[i] = xp.zeros_like(p.value)
            ga[i] += (1 - self.alpha) * (grad - ga[i])  # torch's lerp, not alpha ga + (1-alpha) g
            avg = xp.sqrt(sq[i] - ga[i] * ga[i])
        else:
            avg = xp.sqrt(sq[i])
        avg += self.eps
        if self.momentum > 0:
            bufs = self.momentum_buffers
            if bufs[i] is None:
                bufs[i] = xp.zeros_like(p.value)
            bufs[i] *= self.momentum
            bufs[i] += grad / avg
            _subtract(p, self.lr * bufs[i])
        else:
            _subtract(p, self.lr * grad / avg)


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
    state_lists = {"step": "param_steps", "exp_avg": "exp_avgs", "exp_avg_sq": "exp_avg_sqs",
                   "max_exp_avg_sq": "max_exp_avg_sqs"}
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay, self.amsgrad = betas, eps, weight_decay, amsgrad
        self._check()

    def _check(self) -> None:
        super()._check()
        self.eps = nonnegative(self, "eps", self.eps)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair of floats, "
                             f"got {self.betas!r}")
        betas = tuple(real(self, f"betas[{k}]", beta) for k, beta in enumerate(self.betas))
        for k, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{type(self).__name__}: betas[{k}] must be in [0, 1), "
                                 f"got {beta!r}")
        self.betas = betas
        self.weight_decay = nonnegative(self, "weight_decay", self.weight_decay)

    def _update(self, i: int, p: Parameter, grad: Any) -> None:
        xp = compute_namespace(p.value)
        m, v = self.exp_avgs, self.exp_avg_sqs
        if m[i] is None:
            m[i], v[i], self.param_steps[i] = xp.zeros_like(p.value), xp.zeros_like(p.value), 0
            if self.amsgrad:
                self.max_exp_avg_sqs[i] = xp.zeros_like(p.value)
        self.param_steps[i] += 1
        t, (beta1, beta2) = self.param_steps[i], self.betas
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                # AdamW (Loshchilov & Hutter): shrink the weights, outside m and v
                _scale(p, 1 - self.lr * self.weight_decay)
            else:
                # Adam: the L2 penalty's gradient, so it is rescaled by v like the loss's
                grad = grad + self.weight_decay * p.value
        m[i] += (1 - beta1) * (grad - m[i])  # torch's lerp form of beta1 m + (1 - beta1) g
        v[i] *= beta2
        v[i] += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1 ** t)
        if self.amsgrad:
            self.max_exp_avg_sqs[i] = xp.maximum(self.max_exp_avg_sqs[i], v[i])
            second = self.max_exp_avg_sqs[i]
        else:
            second = v[i]
        denom = xp.sqrt(second)
        denom /= (1 - beta2 ** t) ** 0.5
        denom += self.eps
        _subtract(p, step_size * m[i] / denom)


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

def _count(owner: str, name: str, value: Any) -> int:
    """A step count from a state dict: an int >= 0 (a NumPy integer passes, a bool or str not)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} "
                        f"{value!r}") from None
    if value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value}")
    return value


def _check_fill(owner: Optimizer, name: str, value: float, i: int, p: Parameter) -> None:
    """ValueError when a finite ``value`` overflows parameter i's float dtype (torch's full_like
    raises a RuntimeError there, NumPy makes it inf with a warning)."""
    if not _FLOAT32_MAX < abs(value) < float("inf"):
        return  # fits every float dtype: the usual case, decided without the namespace
    try:
        largest = float(array_namespace(p.value).finfo(p.value.dtype).max)
    except (TypeError, ValueError):  # not a float parameter: nothing to compare with
        return
    if abs(value) > largest:
        raise ValueError(f"{type(owner).__name__}: {name}={value!r} overflows parameter {i}'s "
                         f"{dtype_name(p.value.dtype)} (largest {largest:.6g})")


_FLOAT32_MAX = 3.4028234663852886e38  # the largest float32; smaller values fit every float dtype


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


def _load_entry(owner: str, key: str, i: int, p: Parameter, item: Any) -> Any:
    """One per-parameter state entry from a state dict, on the parameter's backend and dtype."""
    if item is None:
        return None
    if key == "step":
        return _count(owner, f"{key!r}[{i}]", item)
    if not (is_array(item) or hasattr(item, "shape")):
        raise TypeError(f"{owner}: {key!r}[{i}] is a {type(item).__name__}, not an array")
    if tuple(item.shape) != tuple(p.value.shape):
        raise ValueError(f"{owner}: {key!r}[{i}] has shape {tuple(item.shape)}, "
                         f"parameter {i} has shape {tuple(p.value.shape)}")
    try:
        return asarray(item, dtype=p.value.dtype, backend=backend_of(p.value))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{owner}: {key!r}[{i}] cannot become a {dtype_name(p.value.dtype)} "
                        f"array like parameter {i}: {err}") from err
