"""``fit``: the checks made before anything changes, then the epoch loop of xnn/loop.py (the
loop of docs/training.md, with batching, validation, metrics and callbacks).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterable, Sequence

from ._checks import (ArgumentTypeError, all_finite, flag, integer, is_labels, nonfinite_rows,
                      number)
from .backend import Backend, array_namespace, dtype_name
from .callbacks import HOOKS, Callback
from .compiled import NotCompilableError, wants_compile
from .data import as_data, check_same_length, check_seed, permutations
from .loop import (History, Steps, TrainingRun, evaluate_logs, log_keys, mode, on_device,
                   to_host, train)
from .metrics import get_metric
from .nn.module import Module, model_backend
from .nn.normalization import BatchNorm1d
from .stream import (BatchDataset, BatchRows, Source, batch_sources, non_finite, source,
                     streams)

__all__ = ["fit", "evaluate", "History", "TrainingRun"]


def fit(model: Module, X: Any, y: Any, *, loss: Callable, optimizer: Any, epochs: int,
        batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
        validation_data: tuple[Any, Any] | None = None, validation_split: float | None = None,
        metrics: Sequence[str | Callable] | None = (), callbacks: Iterable[Any] | None = (),
        scheduler: Any = None, progress: bool = True, distributed: bool = False,
        jit_compile: bool | str = False) -> History:
    """Train ``model`` on (X, y) for ``epochs`` passes; returns the per-epoch History.

    X and y are moved once to the model's backend (floats cast to its dtype; 1-D integer
    targets stay labels, as int64; complex data is refused). When either is not in memory (a
    ``np.memmap``, a zarr array, an h5py dataset, an ``xnn.data.Stream``), both are read a
    batch at a time instead, a few batches ahead of the step, in the same row order: the same
    weights as in memory (docs/streaming.md). ``batch_size=None`` trains full batch, as
    the tutorials do. Rows are shuffled each epoch from ``seed``'s own generator, or from xnn's
    seeded generator when ``seed`` is None. ``validation_split`` holds out the last rows, as
    Keras does. Training loss and metrics are batch-size-weighted means over the steps taken
    in the epoch (as Keras reports them), NaN for an epoch whose steps a callback all skipped;
    validation loss and metrics are computed on the whole validation set in evaluation mode.
    ``scheduler.step()`` runs after each epoch (``ReduceLROnPlateau.step`` gets val_loss, or
    loss without validation data).

    Everything is checked before anything changes: arguments, the data (types, lengths,
    complex, NaN/Inf; rows that stream are checked for NaN/Inf and labels as they are read,
    before the step that would use them), validation data like the training data, a forward
    pass of the first batch in evaluation mode through the loss and every metric, class
    labels against the model's output width, batches BatchNorm1d could not train on (a last
    batch of one row; like torch's, it needs two), and each callback's ``set_params``
    (EarlyStopping's and ModelCheckpoint's monitor and file-name template against the keys fit
    will log). A refused call leaves the model, optimizer and xnn's generator as they were. An
    error during training (or Ctrl-C) leaves the model as trained up to the failing step, with
    its gradients cleared.

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

    Parameters
    ----------
    model : xnn.nn.Module
        The network, trained in place. Its parameters' backend, device and dtype are where
        training runs.
    X : array_like
        The inputs, one row per sample: an array of any backend, a NumPy array, nested lists
        or a pandas DataFrame; ``(N, features)`` for a model that starts with a Linear. Or
        rows read a batch at a time: a ``np.memmap``, anything with ``shape``, ``dtype`` and
        row indexing that is no array of a supported library (zarr, h5py), or an
        ``xnn.data.Stream``. Or an ``xnn.data.BatchDataset`` (batches ``(x, y)`` by index,
        one step each; y=None and batch_size=None).
    y : array_like or None
        The targets, ``N`` rows: ``(N, outputs)`` floats for regression (one output is
        ``(N, 1)``), or ``(N,)`` integer class labels for CrossEntropyLoss and NLLLoss; in
        memory or read a batch at a time, as X. None when X is a BatchDataset.
    loss : callable
        ``loss(pred, target) -> (value, grad)``: an ``xnn.losses`` loss such as
        ``MSELoss()`` or ``CrossEntropyLoss()``, or a custom one (docs/custom-layers.md).
    optimizer : xnn.optim.Optimizer
        The optimizer over ``model.parameters()`` (anything with ``step()``).
    epochs : int
        Passes over the training rows, at least 1.
    batch_size : int or None, default None
        Rows per step; the last batch of an epoch holds what is left. None trains full batch,
        one step per epoch.
    shuffle : bool or "batch", default True
        Reorder the rows at each epoch (no effect when training full batch). ``"batch"``
        (Keras' option for HDF5 data) reorders whole batches of consecutive rows, a short last
        batch staying last: each batch is one sequential read of storage, but its rows are
        the same every epoch, so store the rows shuffled once (docs/streaming.md).
    seed : int or None, default None
        Seed of the shuffling's own generator, for an order that does not depend on other
        draws; None draws from xnn's generator (``xnn.seed``).
    validation_data : tuple (X_val, y_val), BatchDataset or None, default None
        Rows scored after each epoch in evaluation mode, logged as ``val_loss`` and
        ``val_<metric>``; in memory or read a batch at a time, as X.
    validation_split : float or None, default None
        Hold out this fraction (between 0 and 1) of the last rows as validation data, as Keras
        does (of the last batches, for a BatchDataset). Not together with
        ``validation_data``.
    metrics : list of str or callable, default ()
        Logged at each epoch under their names: names that ``xnn.metrics.get_metric`` takes
        (``"accuracy"``, ``"mae"``, ``"r2_score"``, ...), or functions ``metric(pred, target)``
        returning a 0-d array.
    callbacks : list of xnn.callbacks.Callback, default ()
        Called at the start and end of training and of each epoch and before each step:
        ``EarlyStopping``, ``ModelCheckpoint``, ``TerminateOnNaN``, ``LambdaCallback`` or a
        subclass of ``Callback``.
    scheduler : xnn.optim.schedules.Schedule or None, default None
        A learning-rate schedule, stepped after each epoch.
    progress : bool, default True
        Show the epochs' progress and logs on standard error.
    distributed : bool, default False
        Train data-parallel over the ranks of an MPI job (see above).
    jit_compile : bool or "auto", default False
        Compile the training (docs/backends.md): on a backend with a compiler (jax), each
        epoch, or run of epochs where nothing needs the host between them (no callbacks,
        schedule or validation data), is one compiled call; with a callback's
        ``before_step``, each step's gradient and update are. The weights equal the eager
        run's (float64: to rounding), dropout's masks and the shuffling included. True
        refuses a backend without a compiler (``xnn.compiled.NotCompilableError``); "auto"
        compiles where it can and runs eagerly elsewhere.

    Returns
    -------
    History
        ``history["loss"]``, ``history["val_loss"]`` and one list per metric, a float per
        epoch run; ``history.epoch`` numbers the epochs and ``history.stop_reason`` says why a
        callback stopped training early (None when all ``epochs`` ran).

    Raises
    ------
    TypeError, ValueError
        A refused argument or data set, before anything changes; the message names the
        argument and the fix.

    Examples
    --------
    >>> import xnn
    >>> from xnn import losses, nn, optim
    >>> xnn.seed(0)
    >>> X, y = xnn.datasets.circles(200)
    >>> model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    >>> history = xnn.fit(model, X, y, loss=losses.BCEWithLogitsLoss(),
    ...                   optimizer=optim.Adam(model.parameters(), lr=0.05), epochs=50,
    ...                   batch_size=32, metrics=["binary_accuracy"], validation_split=0.2,
    ...                   progress=False)
    >>> sorted(history.history)
    ['binary_accuracy', 'loss', 'val_binary_accuracy', 'val_loss']
    >>> len(history["loss"]), history["val_binary_accuracy"][-1] > 0.9
    (50, True)
    """
    backend, dtype = model_backend(model, "fit")
    epochs = integer("fit", "epochs", epochs, low=1)
    if batch_size is not None:
        batch_size = integer("fit", "batch_size", batch_size, low=1)
    seed = check_seed("fit", seed)
    if isinstance(shuffle, str) and shuffle != "batch":  # flag()'s refusal, and the third way
        raise ArgumentTypeError(f"fit: shuffle must be True or False, got str {shuffle!r}; or "
                                f"'batch', to shuffle whole batches of consecutive rows")
    shuffle = shuffle if shuffle == "batch" else flag("fit", "shuffle", shuffle)
    progress = flag("fit", "progress", progress)
    distributed = flag("fit", "distributed", distributed)
    jit_compile = wants_compile("fit", jit_compile, backend)
    if jit_compile and distributed:
        raise NotCompilableError("fit: jit_compile=True does not run distributed (each step "
                                 "sums the ranks' gradients on the host): pass one of them")
    _check_loss("fit", loss)
    _check_steps("optimizer", optimizer)
    _check_updates_model(model, optimizer)
    if scheduler is not None:
        _check_steps("scheduler", scheduler)
    metrics = _get_metrics("fit", metrics)
    X, y, validation = _prepare_data(backend, dtype, X, y, validation_data, validation_split)
    callbacks = _check_callbacks(callbacks or (), {
        "epochs": epochs, "metrics": log_keys(metrics, validation is not None)})
    n = X.shape[0]
    if isinstance(X, BatchRows):  # its batches are the steps, one "row" each
        if batch_size is not None:
            raise ValueError("fit: a BatchDataset X makes its own batches; batch_size does not "
                             "apply to it (pass batch_size=None)")
        size = 1
    else:
        size = n if batch_size is None else min(batch_size, n)
        _check_batch_rows(model, n, size)
    first = [d.rows(0, size) if isinstance(d, Source) else d[:size, ...] for d in (X, y)]
    loss = _check_first_batch(model, loss, metrics, *first,
                              [y] if validation is None else [y, validation[1]])

    # reordering a single full batch changes nothing but rounding
    order = (permutations(n, seed, size if shuffle == "batch" else None)
             if shuffle and size < n else None)
    if distributed:
        from .distributed import fit_steps, rank  # noqa: PLC0415 - MPI glue, used only here

        steps: Steps = fit_steps(model, loss, optimizer, n, size, order, seed is not None, {
            "training rows": n, "batch size": size, "epochs": epochs, "seed": seed,
            "shuffle": shuffle, "metrics": [name for name, _ in metrics],
            "scheduler": type(scheduler).__name__,
            "validation rows": 0 if validation is None else validation[0].shape[0]},
            [X, y, *(validation or ())], bool(callbacks))
        progress = progress and rank() == 0
    else:
        steps = Steps(loss, n, size, order)
    return train(model, optimizer, steps.reads(X), steps.reads(y), steps, epochs=epochs,
                 metrics=metrics, callbacks=callbacks, scheduler=scheduler,
                 validation=validation, progress=progress, jit_compile=jit_compile)


def evaluate(model: Module, X: Any, y: Any, *, loss: Callable,
             metrics: Sequence[str | Callable] | None = ()) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y) in evaluation mode, as floats.

    X and y are converted and checked as ``fit`` converts them, and the model's own
    train/eval mode is put back after the call. X and y that ``fit`` would read a batch at a
    time are read so here too (4 MiB of X at a time); the outputs and targets are joined
    to score them at once, so every metric is exact.

    Parameters
    ----------
    model : xnn.nn.Module
        The network to score.
    X : array_like
        The inputs, as ``fit`` takes them (a BatchDataset too).
    y : array_like or None
        The targets, as ``fit`` takes them (None with a BatchDataset).
    loss : callable
        ``loss(pred, target) -> (value, grad)``, as in ``fit``.
    metrics : list of str or callable, default ()
        As in ``fit``.

    Returns
    -------
    dict of str to float
        ``"loss"`` and each metric's name, over all rows at once.

    Examples
    --------
    >>> import xnn
    >>> from xnn import losses, nn
    >>> xnn.seed(0)
    >>> model = nn.Sequential(nn.Linear(2, 1))
    >>> X, y = xnn.datasets.xor()
    >>> scores = xnn.evaluate(model, X, y, loss=losses.MSELoss(), metrics=["mae"])
    >>> sorted(scores), type(scores["loss"]).__name__
    (['loss', 'mae'], 'float')
    """
    backend, dtype = model_backend(model, "evaluate")
    _check_loss("evaluate", loss)
    metrics = _get_metrics("evaluate", metrics)
    X, y, _ = _rows("evaluate", "X", "y", X, y, backend, dtype)
    logs = evaluate_logs(model, X, y, loss, metrics, prefix="")
    floats = to_host(backend.xp, dtype, [[v] for v in logs.values()])
    return {name: column[0] for name, column in zip(logs, floats)}


# --- the checks made before anything changes ----------------------------------------------------

def _check_loss(owner: str, loss: Any) -> None:
    _not_a_class(owner, "loss", loss, "()")
    if not callable(loss):
        raise TypeError(f"{owner}: loss must be callable as loss(pred, target), got "
                        f"{type(loss).__name__}")


def _check_steps(name: str, obj: Any) -> None:
    _not_a_class("fit", name, obj, "(model.parameters(), ...)" if name == "optimizer" else
                 "(optimizer, ...)")
    if not callable(getattr(obj, "step", None)):
        raise TypeError(f"fit: {name} must have step(), got {type(obj).__name__}")


def _not_a_class(owner: str, name: str, obj: Any, arguments: str) -> None:
    """Refuse a class where its instance belongs (loss=MSELoss without the brackets): it is
    callable and has a step, and fails later with a message about its own arguments."""
    if isinstance(obj, type):
        raise TypeError(f"{owner}: {name} must be an instance, got the class {obj.__name__}; "
                        f"write {name}={obj.__name__}{arguments}")


def _check_updates_model(model: Module, optimizer: Any) -> None:
    """Refuse an optimizer that holds parameters, none of them the model's (built over another
    model): fit would step it and train nothing. One over some of them (the rest frozen) is
    fine."""
    held = getattr(optimizer, "params", None)
    if not held:
        return
    ours = {id(p) for p in model.parameters()}
    if not any(id(p) in ours for p in held):
        raise ValueError(f"fit: the optimizer ({type(optimizer).__name__}) updates none of the "
                         f"model's parameters (was it built over another model?); pass "
                         f"{type(optimizer).__name__}(model.parameters(), ...)")


def _get_metrics(owner: str, metrics: Any) -> list[tuple[str, Callable]]:
    """(name, function) of each metric of a list of names and callables (None: no metrics)."""
    if isinstance(metrics, str) or callable(metrics):
        raise TypeError(f"{owner}: metrics must be a list of metric names or callables, got "
                        f"{metrics!r}; write metrics=[{metrics!r}]")
    return [get_metric(m) for m in metrics or ()]


def _check_callbacks(callbacks: Iterable[Any], params: dict[str, Any]) -> list:
    """The callbacks as a list, each with every hook of xnn.callbacks.Callback (HOOKS); each
    Callback gets ``params`` (Keras' set_params), where it checks its monitor and file names
    against the keys fit will log."""
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"fit: callbacks must be a list of callbacks, got "
                        f"{type(callbacks).__name__}") from None
    for i, cb in enumerate(callbacks):
        missing = [hook for hook in HOOKS if not callable(getattr(cb, hook, None))]
        if missing:
            raise TypeError(f"fit: callbacks[{i}] ({type(cb).__name__}) lacks "
                            f"{', '.join(missing)}; subclass xnn.callbacks.Callback")
    for cb in callbacks:
        if isinstance(cb, Callback):
            cb.set_params(params)
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
    X, y, n = _rows("fit", "X", "y", X, y, backend, dtype)
    if n == 0:
        raise ValueError(f"fit: X and y have no rows (shapes {tuple(X.shape)} and "
                         f"{tuple(y.shape)}); there is nothing to train on")
    _check_finite(X=X, y=y)
    if validation_split is not None:
        n_val = math.ceil(validation_split * n)  # the last rows, before any shuffling (Keras)
        if n_val >= n:
            raise ValueError(f"fit: validation_split={validation_split} leaves no training rows "
                             f"out of {n}")
        cut = n - n_val
        if isinstance(X, Source):
            return X.part(0, cut), y.part(0, cut), (X.part(cut, n), y.part(cut, n))
        return X[:cut, ...], y[:cut, ...], (X[cut:, ...], y[cut:, ...])
    if validation_data is None:
        return X, y, None
    if isinstance(validation_data, BatchDataset):
        validation_data = (validation_data, None)
    pair = isinstance(validation_data, (tuple, list))
    if not pair or len(validation_data) != 2:
        got = f"{len(validation_data)} items" if pair else type(validation_data).__name__
        raise ValueError(f"fit: validation_data must be a pair (X_val, y_val), got {got}")
    X_val, y_val, _ = _rows("fit", "X_val", "y_val", *validation_data, backend, dtype,
                            pair=" (validation_data)")
    _check_like_training(X, y, X_val, y_val)
    _check_finite(X_val=X_val, y_val=y_val)
    return X, y, (X_val, y_val)


def _rows(owner: str, x_name: str, y_name: str, X: Any, y: Any, backend: Backend,
          dtype: Any, pair: str = "") -> tuple[Any, Any, int]:
    """X, y and their number of rows: on the model's backend (as_data), or, when either
    streams (xnn/stream.py), Sources read a batch at a time and checked as they pass (fit's
    NaN/Inf check; its label check once it knows the model's width). ``pair``: what the
    length check's message adds to ``owner``."""
    if isinstance(X, BatchDataset):
        if y is not None:
            raise ValueError(f"{owner}: a BatchDataset X gives the targets with its batches; "
                             f"pass {y_name}=None")
        X, y = batch_sources(owner, (x_name, y_name), X, backend, dtype, owner == "fit")
    elif streams(X, y):
        checked = owner == "fit"
        X = source(owner, x_name, X, backend, dtype, labels_ok=False, checked=checked)
        y = source(owner, y_name, y, backend, dtype, labels_ok=True, checked=checked)
    else:
        X = as_data(owner, x_name, X, backend, dtype, labels_ok=False)
        y = as_data(owner, y_name, y, backend, dtype, labels_ok=True)
    return X, y, check_same_length(owner + pair, X, y)


def _check_finite(**named: Any) -> None:
    """Refuse NaN/Inf in each named array before training starts, naming the first bad row
    (rows that stream are checked as they are read)."""
    for name, arr in named.items():
        if isinstance(arr, Source):
            continue
        xp = array_namespace(arr)
        if not xp.isdtype(arr.dtype, "real floating"):
            continue
        if all_finite(xp, [arr]):
            continue
        rows = nonfinite_rows(xp, arr)
        if len(rows):  # else a sum overflowed
            first = int(rows[0])
            raise ValueError(non_finite("fit", name, len(rows), first, arr.dtype,
                                        bool(xp.any(xp.isinf(arr[first, ...])))))


def _check_like_training(X: Any, y: Any, X_val: Any, y_val: Any) -> None:
    """Refuse validation data whose rows differ from the training rows in shape, or whose
    targets are labels where the training targets are values (or the reverse): the loss would
    refuse it only after the first epoch had trained the model."""
    def kind(a: Any) -> str:
        labels = a.labels if isinstance(a, Source) else is_labels(array_namespace(a), a)
        return "labels" if labels else "values"

    for name, seen, val in (("X", X, X_val), ("y", y, y_val)):
        if tuple(val.shape[1:]) != tuple(seen.shape[1:]) or kind(val) != kind(seen):
            raise ValueError(f"fit: validation_data's {name}_val has rows of shape "
                             f"{tuple(val.shape[1:])} of {kind(val)} ({dtype_name(val.dtype)}), "
                             f"but the training {name} has rows of shape "
                             f"{tuple(seen.shape[1:])} of {kind(seen)} "
                             f"({dtype_name(seen.dtype)})")


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
    the first batch's predictions are checked with the loss as given. When every label is a
    class, the copy of a loss with ``every_label_a_class`` has it set.
    """
    step_loss = loss
    if getattr(loss, "validate", False) is True:
        step_loss = copy.copy(loss)
        step_loss.validate = False
    checks_labels = (is_labels(array_namespace(y), y)
                     and callable(getattr(loss, "check_targets", None)))
    with mode(model, training=False):
        pred = model(X)
    # copies, so that even the state of a loss or metric object (a call count) is left alone;
    # labels are checked below, all of them, once
    copy.copy(step_loss if checks_labels else loss)(pred, y)
    if checks_labels:
        every_label_a_class = [_check_labels(loss, t, pred.shape[-1]) for t in labels]
        if all(every_label_a_class) and hasattr(step_loss, "every_label_a_class"):
            if step_loss is loss:
                step_loss = copy.copy(loss)
            step_loss.every_label_a_class = True  # the steps need no label bookkeeping
    xp = array_namespace(pred)
    for name, fn in metrics:
        value = copy.copy(fn)(pred, y)
        if on_device(xp, value) and value.ndim != 0:
            raise ValueError(f"fit: metric {name!r} must return a number or a 0-d array, got "
                             f"shape {tuple(value.shape)}")
        try:
            float(value)  # a 0-d array of the model's library reads back, once
        except (TypeError, ValueError):
            raise TypeError(f"fit: metric {name!r} must return a number or a 0-d array, "
                            f"got {type(value).__name__}") from None
    return step_loss


def _check_labels(loss: Any, labels: Any, classes: int) -> bool:
    """``loss.check_targets`` on every label now, or, for labels that stream, on each batch
    as it is read; returns whether every label is known to be a class."""
    if not isinstance(labels, Source):
        return loss.check_targets(labels, classes)
    if labels.labels:
        labels.labels_checked = lambda batch: loss.check_targets(batch, classes)
    return False
