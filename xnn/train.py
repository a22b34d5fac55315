"""``fit``: the loop of docs/training.md, with batching, validation, metrics and callbacks.

``fit`` checks everything first, then runs the plain loop: ``_run_epoch`` trains on the
batches, ``_epoch_logs`` averages what they logged, and ``_Logbook`` reads the logs to the host.
Nothing is read back inside an epoch (unless a callback's ``before_step`` looks at the loss);
an epoch end reads its logs in one transfer when something looks at them then (callbacks, a
plateau schedule, the progress bar's redraw), and otherwise they wait on the device and are
read together when training ends.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import random
from ._checks import flag, integer, number
from .backend import (Backend, array_namespace, asarray, backend_of, dtype_name, host_backend,
                      is_array, to_numpy)
from .random import host_generator
from .data import check_same_length, check_seed
from .metrics import get_metric
from .nn.module import Module, accepts_input_grad
from .nn.normalization import BatchNorm1d
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


def fit(model: Module, X: Any, y: Any, *, loss: Callable, optimizer: Any, epochs: int,
        batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
        validation_data: tuple[Any, Any] | None = None, validation_split: float | None = None,
        metrics: Sequence[str | Callable] | None = (), callbacks: Iterable[Any] | None = (),
        scheduler: Any = None, progress: bool = True, distributed: bool = False) -> History:
    """Train ``model`` on (X, y) for ``epochs`` passes; returns the per-epoch History.

    X and y are moved once to the model's backend (floats cast to its dtype; 1-D integer
    targets stay labels; complex data is refused). ``batch_size=None`` trains full batch, as
    the tutorials do. Rows are shuffled each epoch from ``seed``'s own generator, or from xnn's
    seeded generator when ``seed`` is None. ``validation_split`` holds out the last rows, as
    Keras does. Training loss and metrics are batch-size-weighted means over the steps taken
    in the epoch (as Keras reports them), NaN for an epoch whose steps a callback all skipped;
    validation loss and metrics are computed on the whole validation set in evaluation mode.
    ``scheduler.step()`` runs after each epoch (``ReduceLROnPlateau.step`` gets val_loss, or
    loss without validation data).

    Everything is checked before anything changes: arguments, the data (types, lengths,
    complex, NaN/Inf), validation data like the training data, a forward pass of the first
    batch in evaluation mode through the loss and every metric, class labels against the
    model's output width, and batches BatchNorm1d could not train on (a last batch of one
    row; like torch's, it needs two). A refused call leaves the model, optimizer and xnn's
    generator as they were. An error during training (or Ctrl-C) leaves the model as trained
    up to the failing step, with its gradients cleared.

    fit trains in training mode and puts back each module's own train/eval mode when it
    returns or fails, as ``evaluate`` does: predict with ``xnn.predict``, or call
    ``model.eval()`` before ``model(x)``, as in PyTorch. The loss is called as given, except
    one that checks its inputs with a host read at every call (``validate=True``: a class
    loss's labels, BCELoss's probabilities): fit checks every label and the first batch's
    predictions up front, and the steps call a copy with ``validate=False``. The user's loss
    is never changed.

    ``distributed=True`` trains data-parallel over the ranks of an MPI job (docs/distributed.md):
    every rank passes the same data and settings, trains on its share of each global batch of
    ``batch_size`` rows, and gets the same weights and History as one process would; only rank
    0 shows progress and writes checkpoints.
    """
    backend, dtype = _model_backend(model, "fit")
    epochs = integer("fit", "epochs", epochs, low=1)
    if batch_size is not None:
        batch_size = integer("fit", "batch_size", batch_size, low=1)
    seed = check_seed("fit", seed)
    shuffle = flag("fit", "shuffle", shuffle)
    progress = flag("fit", "progress", progress)
    distributed = flag("fit", "distributed", distributed)
    _check_loss("fit", loss)
    _check_steps("optimizer", optimizer)
    if scheduler is not None:
        _check_steps("scheduler", scheduler)
    metrics = _get_metrics("fit", metrics)
    callbacks = _check_callbacks(callbacks or ())
    X, y, validation = _prepare_data(backend, dtype, X, y, validation_data, validation_split)
    n = X.shape[0]
    size = n if batch_size is None else min(batch_size, n)
    _check_batch_rows(model, n, size)
    loss = _check_first_batch(model, loss, metrics, X[:size, ...], y[:size, ...],
                              [y] if validation is None else [y, validation[1]])

    xp = backend.xp
    rng = host_generator(seed) if seed is not None else None
    shards = None
    if distributed:
        from ._sharding import Shards  # noqa: PLC0415 - host-side glue, used only here

        shards = Shards(model, loss, [(s, min(s + size, n)) for s in range(0, n, size)],
                        {"training rows": n, "batch size": size, "epochs": epochs,
                         "seed": -1 if seed is None else seed, "shuffle": int(bool(shuffle)),
                         "validation rows": 0 if validation is None else validation[0].shape[0]})
        rng, progress = shards.generator(seed), progress and shards.rank == 0
    shuffle = shuffle and size < n  # reordering a single full batch changes nothing but rounding
    # fit never uses dL/dX: the first layer can skip computing it (a third of its backward)
    forward_kwargs = {"input_grad": False} if accepts_input_grad(model) else {}
    names = ["loss", *(name for name, _ in metrics)]
    batches = [(start, min(start + size, n)) for start in range(0, n, size)]
    history = History()
    run = TrainingRun(model, optimizer, history)
    bar = ProgressBar(epochs, enabled=progress)
    book = _Logbook(xp, dtype, history, bar,
                    watched=bool(callbacks) or getattr(scheduler, "needs_metric", False))
    try:
        with _mode(model, training=True):
            model.zero_grad()  # a step uses the gradient of its own batch only
            for cb in callbacks:
                cb.on_train_begin(run)
            for epoch in range(epochs):
                run.epoch = epoch
                for cb in callbacks:
                    cb.on_epoch_begin(run)
                Xe, ye = _shuffled(backend, X, y, rng) if shuffle else (X, y)
                steps = (shards.run_epoch(run, loss, metrics, Xe, ye, callbacks, forward_kwargs)
                         if shards else
                         _run_epoch(run, loss, metrics, Xe, ye, batches, callbacks, forward_kwargs))
                if steps is None:  # a callback stopped training mid-epoch: no epoch to log
                    break
                logs = (shards.epoch_logs(model, xp, dtype, names, *steps) if shards else
                        _epoch_logs(xp, names, *steps))
                if validation is not None:
                    logs.update(_evaluate(model, *validation, loss, metrics, prefix="val_"))
                logs = book.add(epoch, logs)
                if scheduler is not None:
                    _step_scheduler(scheduler, logs)
                for cb in callbacks:
                    cb.on_epoch_end(run, logs)
                if run.stop_training:
                    break
            book.flush(final=True)
    except BaseException:  # an error or Ctrl-C mid-step: its gradients must not reach the next
        model.zero_grad()
        raise
    finally:
        bar.close()
    for cb in callbacks:
        cb.on_train_end(run)
    return history


def evaluate(model: Module, X: Any, y: Any, *, loss: Callable,
             metrics: Sequence[str | Callable] | None = ()) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y) in evaluation mode, as floats."""
    backend, dtype = _model_backend(model, "evaluate")
    _check_loss("evaluate", loss)
    metrics = _get_metrics("evaluate", metrics)
    X = _prepare("evaluate", "X", X, backend, dtype, labels_ok=False)
    y = _prepare("evaluate", "y", y, backend, dtype, labels_ok=True)
    check_same_length("evaluate", X, y)
    logs = _evaluate(model, X, y, loss, metrics, prefix="")
    floats = _to_host(backend.xp, dtype, [[v] for v in logs.values()])
    return {name: column[0] for name, column in zip(logs, floats)}


# --- the loop -----------------------------------------------------------------------------------

def _run_epoch(run: TrainingRun, loss: Callable, metrics: list, X: Any, y: Any,
               batches: list[tuple[int, int]], callbacks: list,
               forward_kwargs: dict) -> tuple[list, list[int]] | None:
    """One pass over (X, y) in ``batches`` of rows (start, stop): forward, loss, backprop, step.

    Returns (values, rows) of the steps taken: per step its loss (with its metric values, when
    there are metrics) as the device gave them, and its batch's rows; None when a callback
    stopped training mid-epoch. A callback's ``before_step`` returning False skips that step.
    """
    model, optimizer = run.model, run.optimizer
    values: list = []
    rows: list[int] = []
    whole = len(batches) == 1  # one batch of every row: X and y themselves, not views of them
    for run.batch, (start, stop) in enumerate(batches):
        xb, yb = (X, y) if whole else (X[start:stop, ...], y[start:stop, ...])
        pred, backprop = model.forward(xb, **forward_kwargs)
        value, dpred = loss(pred, yb)
        backprop(dpred)
        if callbacks and not all(cb.before_step(run, value) for cb in callbacks):
            optimizer.zero_grad()  # the step is skipped
            if run.stop_training:
                return None
            continue
        values.append((value, *[fn(pred, yb) for _, fn in metrics]) if metrics else value)
        rows.append(stop - start)
        optimizer.step()
        optimizer.zero_grad()
    return values, rows


def _epoch_logs(xp: Any, names: list[str], values: list, rows: list[int]) -> dict[str, Any]:
    """The epoch's training logs, still on the device: each quantity's batch-size-weighted
    mean over the steps taken (NaN when a callback skipped them all)."""
    if not values:
        return dict.fromkeys(names, math.nan)
    if len(names) == 1:
        return {"loss": _mean(xp, values, rows)}
    return {name: _mean(xp, list(column), rows) for name, column in zip(names, zip(*values))}


def _mean(xp: Any, values: list, rows: list[int]) -> Any:
    """sum(v_i rows_i) / sum(rows_i) of per-step values: 0-d device arrays (a loss with
    reduction "none" is averaged first), or numbers (a metric returning floats), on the host."""
    if len(values) == 1:  # one step: its value, whatever it is
        value = values[0]
        return value if getattr(value, "ndim", 0) == 0 else xp.mean(value)
    if not all(_on_device(xp, v) for v in values):
        return math.fsum(float(v) * r for v, r in zip(values, rows)) / sum(rows)
    values = [v if v.ndim == 0 else xp.mean(v) for v in values]
    if rows[-1] == rows[0]:  # every batch full
        return xp.mean(xp.stack(values))
    # only the epoch's last batch can be short
    return (xp.sum(xp.stack(values[:-1])) * rows[0] + values[-1] * rows[-1]) / sum(rows)


def _evaluate(model: Module, X: Any, y: Any, loss: Callable, metrics: list,
              prefix: str) -> dict[str, Any]:
    """Loss and metrics on (X, y) in eval mode, as the device gives them."""
    with _mode(model, training=False):
        pred = model(X)
        value = loss(pred, y)[0]
        logs = {f"{prefix}loss": value if value.ndim == 0 else array_namespace(value).mean(value)}
        for name, fn in metrics:
            logs[f"{prefix}{name}"] = fn(pred, y)
    return logs


class _Logbook:
    """The epochs' logs on their way to the History and the progress bar.

    An epoch's logs are read to the host at its end when something looks at them then
    (``watched``: callbacks or a plateau schedule) or the bar is due to redraw; otherwise they
    wait on the device and are read with the next ones: one transfer per read, none inside an
    epoch, and at most ``most_waiting`` epochs waiting (each holds small device arrays).
    """

    most_waiting = 1024

    def __init__(self, xp: Any, dtype: Any, history: History, bar: ProgressBar,
                 watched: bool) -> None:
        self.xp, self.dtype, self.history, self.bar = xp, dtype, history, bar
        self.waiting: list[tuple[int, dict[str, Any]]] = []  # (epoch, logs) not yet read
        self.every_epoch = watched  # read at each epoch's end, else when the bar is due

    def add(self, epoch: int, logs: dict[str, Any]) -> dict[str, float] | None:
        """Record an epoch's logs; returns them as floats when they are read now, else None."""
        waiting = self.waiting
        waiting.append((epoch, logs))
        if self.every_epoch or self.bar.due(epoch + 1) or len(waiting) == self.most_waiting:
            return self.flush()
        return None

    def flush(self, final: bool = False) -> dict[str, float] | None:
        """Read whatever waits (one transfer) into the History; redraw the bar when it is due
        or training ends. Returns the last epoch's logs."""
        history = self.history
        if self.waiting:
            columns: dict[str, list] = {}
            for _, logs in self.waiting:
                for name, value in logs.items():
                    columns.setdefault(name, []).append(value)
            floats = _to_host(self.xp, self.dtype, list(columns.values()))
            for name, column in zip(columns, floats):
                history.history.setdefault(name, []).extend(column)
            history.epoch.extend(epoch for epoch, _ in self.waiting)
            self.waiting = []
        if not history.epoch:
            return None
        last = {name: column[-1] for name, column in history.history.items()}
        epoch = history.epoch[-1] + 1
        if (final and epoch != self.bar.drawn) or self.bar.due(epoch):
            self.bar.update(epoch, last)
        return last


def _to_host(xp: Any, dtype: Any, columns: list[list]) -> list[list[float]]:
    """Columns of values (arrays of ``xp``, or numbers) as floats: every array of every column
    read in one transfer."""
    one_of_each = {type(v): v for column in columns for v in column}
    arrays = {kind for kind, v in one_of_each.items() if _on_device(xp, v)}
    if xp is host_backend().xp:  # nothing to transfer: float() each (a stack costs more)
        return [[float(v if v.dtype == dtype else xp.astype(v, dtype)) if type(v) in arrays
                 else float(v) for v in column] for column in columns]
    device = [v if v.dtype == dtype else xp.astype(v, dtype)
              for column in columns for v in column if type(v) in arrays]
    read = iter(to_numpy(xp.stack(device)).tolist() if device else ())
    return [[next(read) if type(v) in arrays else float(v) for v in column] for column in columns]


def _on_device(xp: Any, value: Any) -> bool:
    """Whether ``value`` is an array of namespace ``xp`` (not a number, nor a host array when
    the model lives elsewhere)."""
    return is_array(value) and array_namespace(value) is xp


def _shuffled(backend: Backend, X: Any, y: Any, rng: Any) -> tuple[Any, Any]:
    """X and y in a new random row order: from ``rng``, or xnn's generator when it is None."""
    n = X.shape[0]
    order = rng.permutation(n) if rng is not None else random.permutation(n)
    # a permutation needs no bounds check (take_rows' would read back each epoch)
    index = asarray(order, dtype="int64", backend=backend)
    xp = backend.xp
    return xp.take(X, index, axis=0), xp.take(y, index, axis=0)


def _step_scheduler(scheduler: Any, logs: dict[str, float] | None) -> None:
    """Schedules step once per epoch; plateau schedules are handed the monitored loss."""
    if getattr(scheduler, "needs_metric", False):
        scheduler.step(logs.get("val_loss", logs["loss"]))
    else:
        scheduler.step()


@contextmanager
def _mode(model: Module, training: bool) -> Iterator[None]:
    """Every module of ``model`` in training (or eval) mode for the block; each module's own
    mode is put back after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, was in modes:
            module.training = was


# --- the checks made before anything changes ----------------------------------------------------

def _model_backend(model: Module, owner: str) -> tuple[Backend, Any]:
    if not isinstance(model, Module):
        raise TypeError(f"{owner}: model must be an xnn.nn.Module, got {type(model).__name__}")
    params = model.parameters()
    if not params:
        raise ValueError(f"{owner}: {type(model).__name__} has no parameters to train")
    value = params[0].value
    return backend_of(value), value.dtype


def _check_loss(owner: str, loss: Any) -> None:
    if not callable(loss):
        raise TypeError(f"{owner}: loss must be callable as loss(pred, target), got "
                        f"{type(loss).__name__}")


def _check_steps(name: str, obj: Any) -> None:
    if not callable(getattr(obj, "step", None)):
        raise TypeError(f"fit: {name} must have step(), got {type(obj).__name__}")


def _get_metrics(owner: str, metrics: Any) -> list[tuple[str, Callable]]:
    """(name, function) of each metric of a list of names and callables (None: no metrics)."""
    if isinstance(metrics, str) or callable(metrics):
        raise TypeError(f"{owner}: metrics must be a list of metric names or callables, got "
                        f"{metrics!r}; write metrics=[{metrics!r}]")
    return [get_metric(m) for m in metrics or ()]


_HOOKS = ("on_train_begin", "on_epoch_begin", "before_step", "on_epoch_end", "on_train_end")


def _check_callbacks(callbacks: Iterable[Any]) -> list:
    """The callbacks as a list, each with every hook of xnn.callbacks.Callback."""
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"fit: callbacks must be a list of callbacks, got "
                        f"{type(callbacks).__name__}") from None
    for i, cb in enumerate(callbacks):
        missing = [hook for hook in _HOOKS if not callable(getattr(cb, hook, None))]
        if missing:
            raise TypeError(f"fit: callbacks[{i}] ({type(cb).__name__}) lacks "
                            f"{', '.join(missing)}; subclass xnn.callbacks.Callback")
    return callbacks


def _prepare_data(backend: Backend, dtype: Any, X: Any, y: Any, validation_data: Any,
                  validation_split: Any) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """X, y and the validation pair (or None), on the model's backend and checked: arrays of
    real numbers, as many X rows as y rows, no NaN/Inf, validation rows like training rows."""
    if validation_data is not None and validation_split is not None:
        raise ValueError("fit: give validation_data or validation_split, not both")
    if validation_split is not None:
        validation_split = number("fit", "validation_split", validation_split, low=0.0,
                                  high=1.0, low_open=True, high_open=True)
    X = _prepare("fit", "X", X, backend, dtype, labels_ok=False)
    y = _prepare("fit", "y", y, backend, dtype, labels_ok=True)
    n = check_same_length("fit", X, y)
    if n == 0:
        raise ValueError(f"fit: X and y have no rows (shapes {tuple(X.shape)} and "
                         f"{tuple(y.shape)}); there is nothing to train on")
    _check_finite("X", X)
    _check_finite("y", y)
    if validation_split is not None:
        n_val = math.ceil(validation_split * n)  # the last rows, before any shuffling (Keras)
        if n_val >= n:
            raise ValueError(f"fit: validation_split={validation_split} leaves no training rows "
                             f"out of {n}")
        cut = n - n_val
        return X[:cut, ...], y[:cut, ...], (X[cut:, ...], y[cut:, ...])
    if validation_data is None:
        return X, y, None
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
    return X, y, (X_val, y_val)


def _prepare(owner: str, name: str, data: Any, backend: Backend, float_dtype: Any,
             labels_ok: bool) -> Any:
    """``data`` on the model's backend in the model's float dtype; with ``labels_ok``, 1-D
    integer targets stay integer class labels. Arrays already right are not copied (a torch
    tensor that requires grad is: asarray detaches it); data that
    cannot become real numbers (None, ragged lists, text, complex) is a TypeError naming
    ``owner``."""
    try:
        arr = data if is_array(data) else asarray(data, backend=backend)
    except TypeError as err:  # asarray's refusal, which names asarray, not the caller
        raise TypeError(f"{owner}: {name} cannot be used as data: {err}") from err
    kind = dtype_name(arr.dtype)
    if kind.startswith("complex"):  # a cast would keep the real part with only a warning
        raise TypeError(f"{owner}: {name} has the complex dtype {kind}; xnn trains on real "
                        f"numbers: pass the real part or the magnitude explicitly")
    keep = labels_ok and arr.ndim == 1 and kind.startswith(("int", "uint"))
    target = kind if keep else dtype_name(float_dtype)
    if (array_namespace(arr) is backend.xp and str(backend_of(arr).device) == str(backend.device)
            and kind == target and not getattr(arr, "requires_grad", False)):
        return arr  # else asarray copies it, detached from autograd
    try:
        return asarray(arr, dtype=target, backend=backend)
    except TypeError as err:
        raise TypeError(f"{owner}: {name} cannot be used as data: {err}") from err


def _check_finite(name: str, arr: Any) -> None:
    """Refuse NaN/Inf before training starts, naming the first bad row."""
    xp = array_namespace(arr)
    if not xp.isdtype(arr.dtype, "real floating"):
        return
    bad_rows = xp.any(~xp.isfinite(xp.reshape(arr, (arr.shape[0], -1))), axis=1)
    if bool(xp.any(bad_rows)):
        rows = to_numpy(bad_rows).nonzero()[0]
        raise ValueError(f"fit: {name} contains NaN or Inf in {len(rows)} row(s), first at row "
                         f"{int(rows[0])}; clean or drop those rows before training")


def _is_labels(a: Any) -> bool:
    return dtype_name(a.dtype).startswith(("int", "uint"))


def _check_like_training(X: Any, y: Any, X_val: Any, y_val: Any) -> None:
    """Refuse validation data whose rows differ from the training rows in shape, or whose
    targets are labels where the training targets are values (or the reverse): the loss would
    refuse it only after the first epoch had trained the model."""
    def kind(a: Any) -> str:
        return "labels" if _is_labels(a) else "values"

    for name, train, val in (("X", X, X_val), ("y", y, y_val)):
        if tuple(val.shape[1:]) != tuple(train.shape[1:]) or kind(val) != kind(train):
            raise ValueError(f"fit: validation_data's {name}_val has rows of shape "
                             f"{tuple(val.shape[1:])} of {kind(val)} ({dtype_name(val.dtype)}), "
                             f"but the training {name} has rows of shape "
                             f"{tuple(train.shape[1:])} of {kind(train)} "
                             f"({dtype_name(train.dtype)})")


def _check_batch_rows(model: Module, n: int, size: int) -> None:
    """Refuse a batching that hands BatchNorm1d a batch of one row, which it cannot normalise
    in training (torch's refuses it too): otherwise fit would fail at the end of the first
    epoch, after training on the batches before it."""
    if n % size != 1 and size > 1:
        return
    norms = sorted({type(m).__name__ for m in model.modules() if isinstance(m, BatchNorm1d)})
    if not norms:
        return
    need = f"{' and '.join(norms)} needs more than 1 row per batch in training"
    if n == 1:
        raise ValueError(f"fit: there is 1 training row, and {need}; train on more rows")
    if size == 1:
        raise ValueError(f"fit: batch_size=1 makes batches of 1 row, and {need}; use a "
                         f"batch_size of at least 2")
    below = [b for b in range(size - 1, 1, -1) if n % b != 1][:1]
    above = [b for b in range(size + 1, n + 1) if n % b != 1][:1]  # n itself always serves
    raise ValueError(f"fit: batch_size={size} leaves a last batch of 1 row ({n} training rows = "
                     f"{n // size} x {size} + 1), and {need}; use a batch_size that leaves no "
                     f"row or at least 2 over (such as {' or '.join(map(str, below + above))}), "
                     f"or drop a row")


def _check_first_batch(model: Module, loss: Callable, metrics: list, X: Any, y: Any,
                       labels: list[Any]) -> Callable:
    """Run the first batch through the model (in eval mode, which changes nothing), the loss
    and every metric, and check every class label in ``labels`` against the model's output
    width: what the steps would otherwise refuse after training had begun.

    Returns the loss for the steps: ``loss``, or, for a loss that checks its inputs with a
    host read at every call (``validate=True``: a class loss's label range, BCELoss's
    probability range), a copy with ``validate=False``: its labels are all checked here, and
    the first batch's predictions are checked with the loss as given.
    """
    step_loss = loss
    if getattr(loss, "validate", False) is True:
        step_loss = copy.copy(loss)
        step_loss.validate = False
    checks_labels = (_is_labels(y) and y.ndim == 1
                     and callable(getattr(loss, "check_targets", None)))
    with _mode(model, training=False):
        pred = model(X)
    # copies, so that even the state of a loss or metric object (a call count) is left alone;
    # labels are checked below, all of them, once
    copy.copy(step_loss if checks_labels else loss)(pred, y)
    if checks_labels:
        every_label_a_class = [loss.check_targets(t, pred.shape[-1]) for t in labels]
        if all(every_label_a_class) and hasattr(step_loss, "_every_label_a_class"):
            if step_loss is loss:
                step_loss = copy.copy(loss)
            step_loss._every_label_a_class = True  # the steps need no label bookkeeping
    xp = array_namespace(pred)
    for name, fn in metrics:
        value = copy.copy(fn)(pred, y)
        if _on_device(xp, value) and value.ndim != 0:
            raise ValueError(f"fit: metric {name!r} must return a number or a 0-d array, got "
                             f"shape {tuple(value.shape)}")
        if not _on_device(xp, value):
            try:
                float(value)
            except (TypeError, ValueError):
                raise TypeError(f"fit: metric {name!r} must return a number or a 0-d array, "
                                f"got {type(value).__name__}") from None
    return step_loss
