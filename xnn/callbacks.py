"""Callbacks that watch and steer ``xnn.fit``: early stopping, NaN guard, custom hooks.

Every hook receives the ``TrainingRun`` (model, optimizer, history, epoch, batch), and
``on_epoch_end`` also the epoch's logs: ``on_epoch_end(run, logs)``; a callback stops training
with ``run.stop(reason)``. As in Keras, ``run.epoch`` and ``history.epoch`` count from 0 (the
index into the History's lists), and what a person reads counts from 1: messages, the progress
bar, ``ModelCheckpoint``'s ``{epoch}`` and the ``"epoch"`` its checkpoints record (the number
of epochs trained when it was saved).

Before training, fit hands each callback ``set_params({"epochs": ..., "metrics": [...]})``, as
Keras does: ``metrics`` lists every key the epochs' logs will hold, so that a callback can
refuse a ``monitor`` or a file-name template that names anything else before the first epoch.
"""

from __future__ import annotations

import math
import os
import string
import warnings
from typing import Any, Callable

from ._checks import all_finite, expect, flag, integer, number
from .backend import asarray, backend_of

__all__ = ["Callback", "EarlyStopping", "TerminateOnNaN", "LambdaCallback", "ModelCheckpoint"]

# every hook of a callback, in the order fit calls them (fit checks a callback has each)
HOOKS = ("on_train_begin", "on_epoch_begin", "before_step", "on_epoch_end", "on_train_end")


class Callback:
    """Base class: override the hooks you need; each does nothing by default."""

    params: dict[str, Any] = {}
    sees_steps = False
    """Whether before_step looks at each step (a class or instance that defines it): fit's
    compiled training then runs compiled steps instead of whole compiled epochs."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "before_step" in vars(cls):
            cls.sees_steps = True

    def set_params(self, params: dict[str, Any]) -> None:
        """Called by fit before any change: ``params["epochs"]`` and ``params["metrics"]``,
        every key the epochs' logs will hold; raise here to refuse them."""
        self.params = params

    def on_train_begin(self, run: Any) -> None: ...

    def on_epoch_begin(self, run: Any) -> None: ...

    def before_step(self, run: Any, loss: Any) -> bool:
        """Called after backprop, before the optimizer step; return False to skip the step.

        ``loss`` is the batch's loss on the device: looking at it (``float``, ``bool``) waits
        for the device at every step, which fit otherwise never does. In
        ``fit(distributed=True)`` it is the whole batch's loss, the same on every rank.
        """
        return True

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None: ...

    def on_train_end(self, run: Any) -> None: ...


class _Monitor:
    """Tracks the best value of one logged quantity; "auto" maximises accuracy- and r2-like
    names and minimises everything else."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be the name of a logged value such as "
                            f"'val_loss', got {type(monitor).__name__} {monitor!r}")
        if not isinstance(mode, str):
            raise TypeError(f"{owner}: mode must be 'auto', 'min' or 'max', got "
                            f"{type(mode).__name__} {mode!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        maximise = mode == "max" or (mode == "auto" and ("acc" in monitor or "r2" in monitor))
        self.owner, self.monitor, self.min_delta = owner, monitor, min_delta
        self.sign = -1.0 if maximise else 1.0
        self.reset()

    def reset(self) -> None:
        self.best, self.best_epoch = math.inf, -1

    def check(self, logged: list[str]) -> None:
        """Refuse a monitor that is not among the ``logged`` keys, before training."""
        if self.monitor not in logged:
            hint = _VAL_HINT if self.monitor.startswith("val_") else ""
            raise ValueError(f"{self.owner}: monitor {self.monitor!r} will not be logged; fit "
                             f"logs {logged}{hint}")

    def improved(self, epoch: int, logs: dict[str, float]) -> bool:
        """Whether this epoch's value beats the best so far (and record it if so)."""
        if self.monitor not in logs:
            raise ValueError(f"{self.owner}: monitor {self.monitor!r} is not logged; "
                             f"available: {sorted(logs)}")
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch = value, epoch
            return True
        return False

    @property
    def best_value(self) -> float:
        return self.sign * self.best


_VAL_HINT = " (val_ keys need validation_data or validation_split)"


class EarlyStopping(Callback):
    """Stop once ``monitor`` has gone ``patience`` epochs without improving by ``min_delta``.

    As in Keras and PyTorch Lightning, ``patience=20`` stops at the 20th epoch in a row without
    improvement (``patience=0``: at the first). mode "auto" maximises metrics named like
    accuracy or r2 and minimises everything else. With ``restore_best`` (Keras'
    ``restore_best_weights``), the weights of the best epoch are put back when training ends.
    fit refuses a ``monitor`` that it will not log before the first epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best: bool = False, mode: str = "auto") -> None:
        self.patience = integer(self, "patience", patience, low=0)
        min_delta = number(self, "min_delta", min_delta, low=0.0)
        self.tracker = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.restore_best = flag(self, "restore_best", restore_best)
        self.wait, self.best_state = 0, None

    def set_params(self, params: dict[str, Any]) -> None:
        self.tracker.check(params["metrics"])
        super().set_params(params)

    def on_train_begin(self, run: Any) -> None:
        self.tracker.reset()
        self.wait, self.best_state = 0, None

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None:
        if self.tracker.improved(run.epoch, logs):
            self.wait = 0
            if self.restore_best:
                self.best_state = {k: asarray(v, backend=backend_of(v))
                                   for k, v in run.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                run.stop(f"EarlyStopping: {self.tracker.monitor} did not improve for "
                         f"{self.wait} epoch{'s' if self.wait != 1 else ''} (best "
                         f"{self.tracker.best_value:.6g} at epoch {self.tracker.best_epoch + 1})")

    def on_train_end(self, run: Any) -> None:
        if self.restore_best and self.best_state is not None:
            run.model.load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Save a checkpoint (model, optimizer, generator) at epoch ends with ``xnn.save``.

    ``path`` may hold ``{epoch}`` (counting from 1, as in Keras) and logged names
    (``"ckpt-{epoch:03d}-{val_loss:.3f}.safetensors"``).
    With ``save_best_only`` a checkpoint is written only when ``monitor`` improves, so ``path``
    always holds the best; otherwise every epoch overwrites it with the last. ``extra`` of each
    checkpoint records the epoch (from 1: the number of epochs trained) and its logs. In an MPI
    job (xnn.distributed) only rank 0 writes. fit refuses, before the first epoch, a ``path``
    naming a key it will not log (``{val_loss}`` without validation data), a positional ``{}``
    or a bad format spec, and with ``save_best_only`` a ``monitor`` it will not log.
    """

    def __init__(self, path: str, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", save_optimizer: bool = True) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}")
        self.path = os.fspath(path)
        self.save_best_only = flag(self, "save_best_only", save_best_only)
        self.save_optimizer = flag(self, "save_optimizer", save_optimizer)
        self.tracker = _Monitor("ModelCheckpoint", monitor, mode)
        self.saved: list[str] = []

    def set_params(self, params: dict[str, Any]) -> None:
        logged = params["metrics"]
        if self.save_best_only:
            self.tracker.check(logged)
        keys = ["epoch", *logged]
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.path) if f is not None]
            unknown = [f for f in fields if f.partition(".")[0].partition("[")[0] not in keys]
            if not unknown:  # a bad format spec ({val_loss:03d} of a float) fails now
                self.path.format(epoch=1, **dict.fromkeys(logged, 0.0))
        except (ValueError, LookupError, AttributeError, TypeError) as err:
            raise ValueError(f"ModelCheckpoint: path {self.path!r} is not a template "
                             f"str.format can fill with {keys}: {err}") from None
        if unknown:
            hint = _VAL_HINT if unknown[0].startswith("val_") else ""
            raise ValueError(f"ModelCheckpoint: path {self.path!r} has the field "
                             f"{{{unknown[0]}}}, which names no logged key; it may name "
                             f"{keys}{hint}")
        super().set_params(params)

    def on_train_begin(self, run: Any) -> None:
        self.tracker.reset()

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None:
        if self.save_best_only and not self.tracker.improved(run.epoch, logs):
            return
        from . import distributed  # noqa: PLC0415 - imports no MPI until init()

        if distributed.is_initialized() and distributed.rank() != 0:
            return  # one writer: rank 0's model is every rank's
        from .io import save  # noqa: PLC0415 - io imports the optimizers, which import nn

        epoch = run.epoch + 1  # Keras' numbering in file names
        path = self.path.format(epoch=epoch, **logs)
        save(path, run.model, run.optimizer if self.save_optimizer else None,
             extra={"epoch": epoch, "logs": logs})
        self.saved.append(path)


class TerminateOnNaN(Callback):
    """Stop before a step whose loss or gradients are NaN or infinite.

    The bad step is not taken, so the parameters stay as they were before it. Checking costs
    one host sync per step.
    """

    def before_step(self, run: Any, loss: Any) -> bool:
        xp = expect("TerminateOnNaN", loss, dtype=None, what="loss")
        arrays = [loss, *(p.grad for p in run.model.parameters() if p.grad is not None)]
        if all_finite(xp, arrays):
            return True
        reason = (f"TerminateOnNaN: loss or gradients became NaN/Inf at epoch "
                  f"{run.epoch + 1}, batch {run.batch + 1}; that step was not taken, parameters "
                  f"are those before it")
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
        run.stop(reason)
        return False


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda run, logs: ...)``."""

    def __init__(self, on_train_begin: Callable | None = None,
                 on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None,
                 on_train_end: Callable | None = None, before_step: Callable | None = None) -> None:
        hooks = (on_train_begin, on_epoch_begin, before_step, on_epoch_end, on_train_end)
        for name, fn in zip(HOOKS, hooks):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got "
                                    f"{type(fn).__name__}")
                setattr(self, name, fn)
        if before_step is not None:
            self.before_step = lambda run, loss: before_step(run, loss) is not False
            self.sees_steps = True
