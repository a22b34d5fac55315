"""``fit``: the training loop of the tutorials, with batching, validation, metrics and callbacks.

The loop never pulls a device value to the host inside an epoch (unless a callback asks to look
at each step): losses and metrics are summed on the device and read once per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from . import random
from ._checks import integer
from .backend import (Backend, array_namespace, asarray, backend_of, dtype_name,
                      host_generator, is_array, to_numpy)
from .callbacks import Callback
from .data import check_same_length, check_seed
from .metrics import get_metric
from .nn.module import Module, accepts_input_grad
from .progress import ProgressBar

__all__ = ["fit", "evaluate", "History", "TrainingRun"]


@dataclass
class History:
    """Per-epoch logs: ``history["loss"]``, ``history["val_loss"]`` and one list per metric."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    stop_reason: str | None = None

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


@dataclass
class TrainingRun:
    """What callbacks see and steer: the model, optimizer, history and where training is."""

    model: Module
    optimizer: Any
    history: History
    epoch: int = 0
    batch: int = 0
    stop_training: bool = False

    def stop(self, reason: str) -> None:
        """Ask fit to stop after this step or epoch, recording why."""
        self.stop_training = True
        self.history.stop_reason = reason


def _model_backend(model: Module, owner: str = "fit") -> tuple[Backend, Any]:
    if not isinstance(model, Module):
        raise TypeError(f"{owner}: model must be an xnn.nn.Module, got {type(model).__name__}")
    params = model.parameters()
    if not params:
        raise ValueError(f"{owner}: {type(model).__name__} has no parameters to train")
    value = params[0].value
    return backend_of(value), value.dtype


def _prepare(owner: str, name: str, data: Any, backend: Backend, float_dtype: Any,
             labels_ok: bool) -> Any:
    """``data`` on the model's backend in the model's float dtype; with ``labels_ok``, 1-D
    integer targets stay integer class labels. Arrays already right are not copied; data that
    cannot become numbers (None, ragged lists, text) is a TypeError naming ``owner``."""
    try:
        arr = data if is_array(data) else asarray(data, backend=backend)
        keep = labels_ok and arr.ndim == 1 and dtype_name(arr.dtype).startswith(("int", "uint"))
        target = dtype_name(arr.dtype) if keep else dtype_name(float_dtype)
        if (array_namespace(arr) is backend.xp
                and str(backend_of(arr).device) == str(backend.device)
                and dtype_name(arr.dtype) == target):
            return arr
        return asarray(arr, dtype=target, backend=backend)
    except TypeError as err:  # asarray's refusal, which names asarray, not the caller
        raise TypeError(f"{owner}: {name} cannot be used as data: {err}") from err


def _check_finite(name: str, arr: Any) -> None:
    """Refuse NaN/Inf before training starts, naming the first bad row."""
    xp = array_namespace(arr)
    if not xp.isdtype(arr.dtype, "real floating"):
        return
    bad = ~xp.isfinite(xp.reshape(arr, (arr.shape[0], -1)))
    bad_rows = xp.any(bad, axis=1)
    if bool(xp.any(bad_rows)):
        rows = to_numpy(bad_rows).nonzero()[0]
        raise ValueError(f"fit: {name} contains NaN or Inf in {len(rows)} row(s), first at row "
                         f"{int(rows[0])}; clean or drop those rows before training")


def _split_validation(X: Any, y: Any, split: float) -> tuple[Any, Any, Any, Any]:
    """The last ``split`` fraction of rows (before any shuffling) for validation, as Keras does."""
    if not (isinstance(split, float) and 0 < split < 1):
        raise ValueError(f"fit: validation_split must be a fraction in (0, 1), got {split!r}")
    n = X.shape[0]
    n_val = int(math.ceil(split * n))
    if n_val >= n:
        raise ValueError(f"fit: validation_split={split} leaves no training rows out of {n}")
    cut = n - n_val
    return X[:cut, ...], y[:cut, ...], X[cut:, ...], y[cut:, ...]


def _overrides_before_step(cb: Callback) -> bool:
    return "before_step" in vars(cb) or type(cb).before_step is not Callback.before_step


def _check_like_training(X: Any, y: Any, X_val: Any, y_val: Any) -> None:
    """Refuse validation data whose rows differ from the training rows in shape, or whose
    targets are labels where the training targets are values (or the reverse): the loss would
    refuse it only after the first epoch had trained the model."""
    def kind(a: Any) -> str:
        return "labels" if dtype_name(a.dtype).startswith(("int", "uint")) else "values"

    for name, train, val in (("X", X, X_val), ("y", y, y_val)):
        if tuple(val.shape[1:]) != tuple(train.shape[1:]) or kind(val) != kind(train):
            raise ValueError(f"fit: validation_data's {name}_val has rows of shape "
                             f"{tuple(val.shape[1:])} of {kind(val)} ({dtype_name(val.dtype)}), "
                             f"but the training {name} has rows of shape "
                             f"{tuple(train.shape[1:])} of {kind(train)} "
                             f"({dtype_name(train.dtype)})")


def _check_loss(owner: str, loss: Any) -> None:
    if not callable(loss):
        raise TypeError(f"{owner}: loss must be callable as loss(pred, target), got "
                        f"{type(loss).__name__}")


def _mean_value(xp: Any, value: Any) -> Any:
    return value if value.ndim == 0 else xp.mean(value)


def evaluate(model: Module, X: Any, y: Any, *, loss: Callable,
             metrics: Sequence[str | Callable] = ()) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y) in evaluation mode, as floats."""
    backend, dtype = _model_backend(model, "evaluate")
    _check_loss("evaluate", loss)
    metric_fns = [get_metric(m) for m in metrics]
    X = _prepare("evaluate", "X", X, backend, dtype, labels_ok=False)
    y = _prepare("evaluate", "y", y, backend, dtype, labels_ok=True)
    check_same_length("evaluate", X, y)
    logs = _evaluate(model, X, y, loss, metric_fns, prefix="")
    return dict(zip(logs, (float(v) for v in to_numpy(backend.xp.stack(list(logs.values()))))))


def _evaluate(model: Module, X: Any, y: Any, loss: Callable, metrics: list, prefix: str) -> dict:
    """Device values of loss and metrics on (X, y) in eval mode; the mode is restored after."""
    xp = array_namespace(X)
    was_training = model.training
    model.eval()
    try:
        pred = model(X)
        logs = {f"{prefix}loss": _mean_value(xp, loss(pred, y)[0])}
        for name, fn in metrics:
            logs[f"{prefix}{name}"] = fn(pred, y)
    finally:
        model.train(was_training)
    return logs


def fit(model: Module, X: Any, y: Any, *, loss: Callable, optimizer: Any, epochs: int,
        batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
        validation_data: tuple[Any, Any] | None = None, validation_split: float | None = None,
        metrics: Sequence[str | Callable] = (), callbacks: Iterable[Callback] = (),
        scheduler: Any = None, progress: bool = True) -> History:
    """Train ``model`` on (X, y) for ``epochs`` passes; returns the per-epoch History.

    X and y are moved once to the model's backend (floats cast to its dtype; 1-D integer
    targets stay labels). ``batch_size=None`` trains full batch, as the tutorials do. Rows are
    shuffled each epoch from ``seed``'s own generator, or from xnn's seeded generator when
    ``seed`` is None. Training metrics are batch-size-weighted means over the epoch's batches
    (as Keras reports them); validation loss and metrics are computed on the whole validation
    set in evaluation mode. ``scheduler.step()`` runs after each epoch
    (``ReduceLROnPlateau.step`` gets val_loss, or loss without validation data).

    A call that fails before its first optimizer step leaves the model as it was: arguments
    and data (types, lengths, NaN/Inf, class label ranges) are checked before training, and
    what the first step can change before a loss or metric refuses its targets (BatchNorm's
    running statistics, gradients, the training mode, xnn's random generator) is put back.
    An error after that leaves the model as trained up to the failing step.
    """
    integer("fit", "epochs", epochs, low=1)
    if batch_size is not None:
        integer("fit", "batch_size", batch_size, low=1)
    seed = check_seed("fit", seed)
    _check_loss("fit", loss)
    if not hasattr(optimizer, "step"):
        raise TypeError(f"fit: optimizer must have step(), got {type(optimizer).__name__}")
    if validation_data is not None and validation_split is not None:
        raise ValueError("fit: give validation_data or validation_split, not both")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"fit: scheduler must have step(), got {type(scheduler).__name__}")
    backend, dtype = _model_backend(model)
    xp = backend.xp
    X = _prepare("fit", "X", X, backend, dtype, labels_ok=False)
    y = _prepare("fit", "y", y, backend, dtype, labels_ok=True)
    n = check_same_length("fit", X, y)
    if n == 0:
        raise ValueError(f"fit: X and y have no rows (shapes {tuple(X.shape)} and "
                         f"{tuple(y.shape)}); there is nothing to train on")
    _check_finite("X", X)
    _check_finite("y", y)
    X_val = y_val = None
    if validation_split is not None:
        X, y, X_val, y_val = _split_validation(X, y, validation_split)
        n = X.shape[0]
    elif validation_data is not None:
        pair = isinstance(validation_data, (tuple, list))
        if not pair or len(validation_data) != 2:
            got = f"{len(validation_data)} items" if pair else type(validation_data).__name__
            raise ValueError(f"fit: validation_data must be a pair (X_val, y_val), got {got}")
        X_val = _prepare("fit", "X_val", validation_data[0], backend, dtype, labels_ok=False)
        y_val = _prepare("fit", "y_val", validation_data[1], backend, dtype, labels_ok=True)
        check_same_length("fit (validation_data)", X_val, y_val)
        _check_like_training(X, y, X_val, y_val)
        _check_finite("X_val", X_val)
        _check_finite("y_val", y_val)
    metric_fns = [get_metric(m) for m in metrics]
    callbacks = list(callbacks)
    guards = [cb for cb in callbacks if _overrides_before_step(cb)]
    size = n if batch_size is None else min(batch_size, n)
    shuffle = shuffle and size < n  # reordering a single full batch changes nothing but rounding
    order_rng = host_generator(seed) if seed is not None else None

    checked_labels = _check_labels_once(model, loss, [(X, y), (X_val, y_val)])
    # fit never uses dL/dX: the first layer can skip computing it (a third of its backward)
    forward_kwargs = {"input_grad": False} if accepts_input_grad(model) else {}

    history = History()
    run = TrainingRun(model, optimizer, history)
    bar = ProgressBar(epochs, enabled=progress)
    before = _snapshot(model)
    stepped = False  # whether an optimizer step has run: until then a failure is undone
    try:
        model.train()
        for cb in callbacks:
            cb.on_train_begin(run)
        for epoch in range(epochs):
            run.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(run)
            Xe, ye = X, y
            if shuffle:
                order = order_rng.permutation(n) if order_rng is not None else random.permutation(n)
                # a permutation needs no bounds check (take_rows' would read back each epoch)
                index = asarray(order, dtype="int64", backend=backend)
                Xe, ye = xp.take(X, index, axis=0), xp.take(y, index, axis=0)
            sums: list[Any] = []
            incomplete = False
            for run.batch, start in enumerate(range(0, n, size)):
                stop = min(start + size, n)
                xb, yb = Xe[start:stop, ...], ye[start:stop, ...]
                pred, backprop = model.forward(xb, **forward_kwargs)
                value, dpred = loss(pred, yb)
                backprop(dpred)
                if guards and not all(cb.before_step(run, value) for cb in guards):
                    optimizer.zero_grad()  # the step is skipped
                    if run.stop_training:
                        incomplete = True
                        break
                    continue
                # metrics before the step, so a metric that refuses the targets changes nothing
                batch_values = [_mean_value(xp, value)] + [fn(pred, yb) for _, fn in metric_fns]
                optimizer.step()
                optimizer.zero_grad()
                stepped = True
                weight = (stop - start) / n
                sums = [v * weight for v in batch_values] if not sums else \
                    [s + v * weight for s, v in zip(sums, batch_values)]
            if incomplete:  # stopped mid-epoch: the epoch's sums are partial, so log nothing
                break
            names = ["loss"] + [name for name, _ in metric_fns]
            device_logs = dict(zip(names, sums))
            if X_val is not None:
                device_logs.update(_evaluate(model, X_val, y_val, loss, metric_fns, "val_"))
            host = to_numpy(xp.stack([xp.astype(v, dtype) for v in device_logs.values()]))
            logs = {k: float(v) for k, v in zip(device_logs, host)}  # the epoch's one sync
            history.append(epoch, logs)
            bar.update(epoch + 1, logs)
            if scheduler is not None:
                _step_scheduler(scheduler, logs)
            for cb in callbacks:
                cb.on_epoch_end(run, logs)
            if run.stop_training:
                break
    except BaseException:
        if not stepped:
            _restore(model, before)
        raise
    finally:
        bar.close()
        if checked_labels:
            loss.validate = True
    for cb in callbacks:
        cb.on_train_end(run)
    return history


def _snapshot(model: Module) -> tuple:
    """What fit changes before its first optimizer step: copies of the buffers (a forward pass
    in training mode moves BatchNorm's running statistics), the gradients, each module's mode
    and xnn's random generator (shuffles, dropout masks). Once per call: a device copy of each
    buffer, no host sync."""
    modules = list(model.modules())
    buffers = [(m, name, array_namespace(v).asarray(v, copy=True))
               for m in modules for name, v in m.named_buffers()]
    grads = [(p, p.grad) for p in model.parameters()]  # backprop rebinds grads: references do
    modes = [(m, m.training) for m in modules]
    return buffers, grads, modes, random.get_state()


def _restore(model: Module, snapshot: tuple) -> None:
    """Put back what _snapshot saved."""
    buffers, grads, modes, state = snapshot
    for module, name, value in buffers:
        module.load_buffer(name, value)
    for p, grad in grads:
        p.grad = grad
    for module, training in modes:
        module.training = training
    random.set_state(state)


def _check_labels_once(model: Module, loss: Any, pairs: list[tuple[Any, Any]]) -> bool:
    """Let a label-checking loss check all labels up front, then stop it checking every step.

    Class losses read their labels' range back to the host (a GPU sync) on each call; checking
    every label once before training keeps the steps free of syncs. Returns whether the loss's
    ``validate`` was switched off (fit switches it back on when done).
    """
    if getattr(loss, "validate", None) is not True:
        return False
    pairs = [(X, y) for X, y in pairs if X is not None and y.ndim == 1
             and not dtype_name(y.dtype).startswith("float")]
    if not pairs:
        return False
    was_training = model.training
    model.eval()
    try:
        classes = model(pairs[0][0][:1, ...]).shape[-1]
    finally:
        model.train(was_training)
    for X, y in pairs:
        if callable(getattr(loss, "check_targets", None)):  # xnn's class losses
            loss.check_targets(y, classes)
            continue
        xp = array_namespace(y)  # another label loss: it checks when it is called
        scores = xp.zeros((y.shape[0], classes), dtype=X.dtype, device=X.device)
        loss(scores, y)  # raises ValueError naming the loss for a label outside [0, classes)
    loss.validate = False
    return True


def _step_scheduler(scheduler: Any, logs: dict[str, float]) -> None:
    """Schedules step once per epoch; plateau schedules are handed the monitored loss."""
    if getattr(scheduler, "needs_metric", False):
        scheduler.step(logs.get("val_loss", logs["loss"]))
    else:
        scheduler.step()
