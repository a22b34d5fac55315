"""Learning-rate schedules: each sets ``optimizer.lr`` once per step(), with PyTorch's values.

Call ``schedule.step()`` after ``optimizer.step()``, once per epoch (or per batch, if the
schedule's lengths count batches). Construction already sets the lr of step 0. Like torch's
schedulers these are chainable: each new lr is computed from the optimizer's current one (the
recursive forms of ``torch.optim.lr_scheduler``), so a schedule and ReduceLROnPlateau, or a
manual change of ``opt.lr``, compose as they do in torch. ``base_lr`` is the optimizer's lr when
its first schedule was attached (torch's ``initial_lr``).

To resume, build the optimizer and its schedule as before, then load the optimizer's state dict
and the schedule's (in that order after construction, since construction sets the lr of step 0,
as in torch).

All values are Python floats; nothing here touches an array, except ReduceLROnPlateau.step,
which reads its metric (once per epoch).
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import integer, number
from .optimizers import Optimizer

__all__ = ["Schedule", "EpochSchedule", "StepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearWarmup", "ReduceLROnPlateau"]


class Schedule:
    """Base class of every schedule: the optimizer, an epoch counter ``last_epoch`` (0 after
    construction), the lr last set, and checkpoints of the schedule's own settings.

    Subclasses give ``step()``: :class:`EpochSchedule`'s take no argument, ReduceLROnPlateau's
    takes the metric, which ``needs_metric`` tells a training loop (xnn.fit) to pass.
    """

    needs_metric = False

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an xnn.optim optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.last_epoch = 0
        self.last_lr = [optimizer.lr]

    def get_last_lr(self) -> list[float]:
        """The lr this schedule last set, as a one-item list (one parameter group), like torch."""
        return list(self.last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the schedule's settings and counters (not the optimizer)."""
        state = {k: v for k, v in vars(self).items() if k != "optimizer"}
        state["last_lr"] = list(self.last_lr)
        return {"schedule": type(self).__name__, **state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned; the optimizer's lr comes from its own state dict."""
        name = type(self).__name__
        if state.get("schedule") != name:
            raise ValueError(f"{name}.load_state_dict: the state is of a "
                             f"{state.get('schedule')!r} schedule, not {name!r}")
        own = self.state_dict()
        if set(state) != set(own):
            raise ValueError(f"{name}.load_state_dict: keys {sorted(state)}, "
                             f"expected {sorted(own)}")
        for key, value in state.items():
            if key not in ("schedule", "after"):  # LinearWarmup loads its after schedule itself
                setattr(self, key, list(value) if key == "last_lr" else value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.optimizer.lr!r})"


class EpochSchedule(Schedule):
    """Base class of the schedules whose lr is a formula of the epoch count.

    Construction leaves the lr of epoch 0 as the optimizer has it (as torch does; LinearWarmup
    sets its own) and each step() sets the next one, ``_next_lr(lr, epoch)``, from the lr
    before (torch's recursive form, which composes with other schedules and manual changes).
    ``base_lr`` is the optimizer's lr when its first schedule was attached; ``_start_lr()`` is
    the lr of epoch 0 from ``base_lr`` alone (torch's closed form at 0), where a schedule takes
    over from a warmup.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer)
        if optimizer.initial_lr is None:
            optimizer.initial_lr = optimizer.lr
        self.base_lr = optimizer.initial_lr

    def _start_lr(self) -> float:
        return self.base_lr

    def _next_lr(self, lr: float, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimizer's lr (which the optimizer checks: an lr it
        refuses, say a NaN, raises ValueError and the schedule stays where it was)."""
        epoch = self.last_epoch + 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr, epoch)
        self.last_epoch = epoch
        self.last_lr = [self.optimizer.lr]


class StepLR(EpochSchedule):
    """lr = base_lr * gamma ** (epoch // step_size): divide by 1/gamma every step_size epochs.

    Parameters
    ----------
    optimizer: the optimizer whose ``lr`` is set.
    step_size: epochs between two decays, a positive int.
    gamma: factor of each decay, >= 0 and finite (0.1).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = integer(self, "step_size", step_size, low=1)
        self.gamma = number(self, "gamma", gamma, low=0, high=math.inf, high_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr: float, epoch: int) -> float:
        return lr * self.gamma if epoch % self.step_size == 0 else lr


class ExponentialLR(EpochSchedule):
    """lr = base_lr * gamma ** epoch.

    Parameters
    ----------
    optimizer: the optimizer whose ``lr`` is set.
    gamma: factor applied every epoch, >= 0 and finite.
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = number(self, "gamma", gamma, low=0, high=math.inf, high_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr: float, epoch: int) -> float:
        return lr * self.gamma


class CosineAnnealingLR(EpochSchedule):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2, without restarts.

    Past T_max the cosine goes on: the lr climbs back to base_lr at 2 T_max, as in torch.

    Parameters
    ----------
    optimizer: the optimizer whose ``lr`` is set.
    T_max: epochs from base_lr down to eta_min, a positive int.
    eta_min: the lowest lr, >= 0 and finite (0).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = integer(self, "T_max", T_max, low=1)
        self.eta_min = number(self, "eta_min", eta_min, low=0, high=math.inf, high_open=True)
        super().__init__(optimizer)

    def _next_lr(self, lr: float, e: int) -> float:
        T, eta_min = self.T_max, self.eta_min
        if (e - 1 - T) % (2 * T) == 0:
            # leaving the minimum: the ratio below would divide by 1 + cos(pi) = 0
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min)

    def _start_lr(self) -> float:
        # torch's closed form at epoch 0, which is not always base_lr to the last bit
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(0.0)) / 2


class LinearWarmup(EpochSchedule):
    """lr rises linearly from start_factor * base_lr to base_lr over warmup_steps, then ``after``.

    The values are those of torch's ``LinearLR(start_factor, total_iters=warmup_steps)``, and
    with ``after`` those of ``SequentialLR([LinearLR(...), after], milestones=[warmup_steps])``:
    at epoch warmup_steps the ``after`` schedule starts from its own epoch 0 (lr = base_lr), and
    every later step() of this schedule steps it. Without ``after`` the lr stays at base_lr.

    Parameters
    ----------
    optimizer: the optimizer whose ``lr`` is set.
    warmup_steps: epochs (or batches) of the warmup, a positive int.
    start_factor: the lr at epoch 0 is start_factor * base_lr; in (0, 1] (torch's 1/3).
    after: a schedule of the same optimizer that takes over after the warmup (not
        ReduceLROnPlateau, whose step needs a metric: step that one yourself).
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 1.0 / 3,
                 after: EpochSchedule | None = None) -> None:
        self.warmup_steps = integer(self, "warmup_steps", warmup_steps, low=1)
        self.start_factor = number(self, "start_factor", start_factor, low=0, low_open=True,
                                   high=1)
        if after is not None:
            if not isinstance(after, EpochSchedule):
                raise ValueError(f"LinearWarmup: after must be a schedule stepped without a "
                                 f"metric (StepLR, ExponentialLR, CosineAnnealingLR, ...), got "
                                 f"{type(after).__name__}; step ReduceLROnPlateau yourself")
            if after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after must schedule the same optimizer")
        self.after = after
        super().__init__(optimizer)
        optimizer.lr = self._start_lr()  # the other schedules leave the lr of epoch 0 as it is
        self.last_lr = [optimizer.lr]

    def _start_lr(self) -> float:
        return self.base_lr * self.start_factor

    def _next_lr(self, lr: float, e: int) -> float:
        W, s = self.warmup_steps, self.start_factor
        if self.after is not None and e > W:  # ``after`` schedules from here on
            self.after.step()
            return self.optimizer.lr
        if self.after is not None and e == W:
            # the hand-over: ``after`` restarts at its epoch 0, from base_lr (torch's SequentialLR)
            self.after.last_epoch = 0
            self.after.last_lr = [self.after._start_lr()]
            return self.after._start_lr()
        if e > W:
            return lr
        # lr_e / lr_(e-1) = (s + (1 - s) e / W) / (s + (1 - s)(e - 1) / W), as torch multiplies
        return lr * (1.0 + (1.0 - s) / (W * s + (e - 1) * (1.0 - s)))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        after = state.get("after")
        if (after is None) != (self.after is None):
            raise ValueError("LinearWarmup.load_state_dict: the state was saved "
                             f"{'without' if after is None else 'with'} an after schedule, "
                             f"this one has {'none' if self.after is None else 'one'}")
        super().load_state_dict(state)
        if after is not None:
            self.after.load_state_dict(after)


class ReduceLROnPlateau(Schedule):
    """Multiply the lr by ``factor`` once a metric has not improved for ``patience`` epochs.

    ``step(metric)`` once per epoch with, say, the validation loss. It reads the metric on the
    host (``float(metric)``), which waits for the device; an epoch end is the place for that.

    Parameters
    ----------
    optimizer: the optimizer whose ``lr`` is set.
    mode: "min" (the metric should fall) or "max" (it should rise).
    factor: new_lr = lr * factor; in [0, 1) (0.1).
    patience: epochs without improvement that are tolerated before a reduction (10): PyTorch's
        meaning, so patience=2 reduces at the 3rd bad epoch in a row (EarlyStopping's patience
        is Keras', which stops at the 2nd).
    threshold: how much better than the best a metric must be to count (1e-4).
    threshold_mode: "rel" (best * (1 -/+ threshold)) or "abs" (best -/+ threshold).
    cooldown: epochs after a reduction during which bad epochs are not counted (0).
    min_lr: the lr is never reduced below this (0).
    eps: reductions smaller than this are skipped (1e-8).
    """

    needs_metric = True  # xnn.fit passes it val_loss (or loss) at each epoch end

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0, eps: float = 1e-8) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = number(self, "factor", factor, low=0, high=1, high_open=True)
        self.patience = integer(self, "patience", patience, low=0)
        self.threshold = number(self, "threshold", threshold, low=0)
        self.cooldown = integer(self, "cooldown", cooldown, low=0)
        self.min_lr = number(self, "min_lr", min_lr, low=0)
        self.eps = number(self, "eps", eps, low=0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(optimizer)  # torch's plateau schedule sets no initial_lr and no lr

    def step(self, metric: Any) -> None:
        """Record one epoch's metric (a number or a 0-d array) and reduce the lr if it stalled."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self.last_lr = [self.optimizer.lr]

    def _is_better(self, current: float) -> bool:
        # the threshold moves the bar past the best: down in "min" mode, up in "max" mode
        # (1 + -t and best + -t are 1 - t and best - t to the last bit, torch's arithmetic)
        minimize = self.mode == "min"
        shift = -self.threshold if minimize else self.threshold
        bar = self.best * (1 + shift) if self.threshold_mode == "rel" else self.best + shift
        return current < bar if minimize else current > bar
