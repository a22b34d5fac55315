"""Callbacks that watch and steer ``xnn.fit``: early stopping, NaN guard, custom hooks.

Every hook receives the ``TrainingRun`` (model, optimizer, history, epoch); a callback stops
training with ``run.stop(reason)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

from .backend import array_namespace, asarray, backend_of

__all__ = ["Callback", "EarlyStopping", "TerminateOnNaN", "LambdaCallback"]


class Callback:
    """Base class: override the hooks you need; each does nothing by default."""

    def on_train_begin(self, run: Any) -> None: ...

    def on_epoch_begin(self, run: Any) -> None: ...

    def before_step(self, run: Any, loss: Any) -> bool:
        """Called after backprop, before the optimizer step; return False to skip the step.

        Only callbacks that override this are called, since looking at a device value syncs.
        """
        return True

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None: ...

    def on_train_end(self, run: Any) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    mode "auto" maximises metrics named like accuracy or r2 and minimises everything else. With
    ``restore_best``, the weights of the best epoch are put back when training ends.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best: bool = False, mode: str = "auto") -> None:
        if patience < 0 or min_delta < 0:
            raise ValueError(f"EarlyStopping: patience and min_delta must be >= 0, got "
                             f"{patience!r} and {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        maximise = mode == "max" or (mode == "auto" and ("acc" in monitor or "r2" in monitor))
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best, self.sign = restore_best, -1.0 if maximise else 1.0
        self.best, self.best_epoch, self.wait, self.best_state = math.inf, -1, 0, None

    def on_train_begin(self, run: Any) -> None:
        self.best, self.best_epoch, self.wait, self.best_state = math.inf, -1, 0, None

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not logged; "
                             f"available: {sorted(logs)}")
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, run.epoch, 0
            if self.restore_best:
                self.best_state = {k: asarray(v, backend=backend_of(v))
                                   for k, v in run.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait > self.patience:
                run.stop(f"EarlyStopping: {self.monitor} did not improve for "
                         f"{self.wait} epochs (best {self.sign * self.best:.6g} at epoch "
                         f"{self.best_epoch})")

    def on_train_end(self, run: Any) -> None:
        if self.restore_best and self.best_state is not None:
            run.model.load_state_dict(self.best_state)


class TerminateOnNaN(Callback):
    """Stop before a step whose loss or gradients are NaN or infinite.

    The bad step is not taken, so the parameters stay as they were before it. Checking costs
    one host sync per step.
    """

    def before_step(self, run: Any, loss: Any) -> bool:
        grads = [p.grad for p in run.model.parameters() if p.grad is not None]
        xp = array_namespace(loss)
        finite = xp.all(xp.isfinite(loss))
        for g in grads:
            finite = finite & xp.all(xp.isfinite(g))
        if bool(finite):
            return True
        reason = (f"TerminateOnNaN: loss or gradients became NaN/Inf at epoch {run.epoch}, "
                  f"batch {run.batch}; that step was not taken, parameters are those before it")
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
        run.stop(reason)
        return False


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda run, logs: ...)``."""

    def __init__(self, on_train_begin: Callable | None = None,
                 on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None,
                 on_train_end: Callable | None = None, before_step: Callable | None = None) -> None:
        hooks = {"on_train_begin": on_train_begin, "on_epoch_begin": on_epoch_begin,
                 "on_epoch_end": on_epoch_end, "on_train_end": on_train_end,
                 "before_step": before_step}
        for name, fn in hooks.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got "
                                    f"{type(fn).__name__}")
                setattr(self, name, fn)
        if before_step is not None:
            self.before_step = lambda run, loss: before_step(run, loss) is not False
