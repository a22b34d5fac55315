"""The epoch loop that ``fit``, ``fit(distributed=True)`` and the scikit-learn estimators run.

``train`` drives the epochs (callbacks, validation, schedules, the progress bar); ``Steps`` says
what differs between them: each step's rows and the epoch's row order, the loss's value and
gradient, what happens between backprop and the optimizer step, and how the steps' values
become the epoch's logs. Plain training is ``Steps`` itself; distributed.py and sklearn.py
subclass it.

Nothing is read back inside an epoch (unless a callback's ``before_step`` looks at the loss);
an epoch end reads its logs in one transfer when something looks at them then (callbacks, a
plateau schedule, the progress bar's redraw), and otherwise they wait on the device and are
read together when training ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ._checks import read_numbers
from .backend import array_namespace, backend_of, is_array
from .nn.module import Module, accepts_input_grad
from .progress import ProgressBar
from .stream import Source, epoch_batches, outputs

__all__ = ["History", "TrainingRun", "Steps", "train", "evaluate_logs", "log_keys", "mode",
           "to_host"]


def log_keys(metrics: list, validation: bool) -> list[str]:
    """The keys of every epoch's logs: the loss and each metric under its name, and with
    validation data their val_ twins (what fit hands callbacks before training)."""
    names = ["loss", *(name for name, _ in metrics)]
    return names + [f"val_{name}" for name in names] if validation else names


@dataclass
class History(Mapping):
    """Per-epoch logs: ``history["loss"]``, ``history["val_loss"]`` and one list per metric;
    a read-only mapping of them (``dict(history)``, ``history.keys()``, ``for key in
    history``), as ``history.history`` is (Keras' name)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    stop_reason: str | None = None

    def __getitem__(self, key: str) -> list[float]:
        try:
            return self.history[key]
        except KeyError:
            held = ", ".join(map(repr, self.history)) or "nothing: no epoch ended"
            raise KeyError(f"History has no {key!r}; it holds {held}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def __len__(self) -> int:
        return len(self.history)


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


class Steps:
    """Plain training's steps: batches of ``size`` rows of ``n`` in order, each step's loss as
    ``loss`` gives it; ``order``: the row order of each epoch (a host integer array), or None
    to keep the rows in place. The hooks below are what other training changes."""

    def __init__(self, loss: Callable, n: int, size: int,
                 order: Callable[[int], Any] | None = None) -> None:
        self.loss = loss
        self.order = order
        # (start, stop, rows of the whole batch) of each step; a share of a batch elsewhere
        self.steps = [(s, min(s + size, n), min(s + size, n) - s) for s in range(0, n, size)]
        self.loss_of: Callable = loss  # (pred, target) -> (value, dL/dpred), on the hot path
        self.after_backward: Callable | None = None  # (run, value) -> the step's logged value
        self.votes = False  # whether every step asks agree, callbacks or not

    def optimizer(self, optimizer: Any) -> Any:
        """What steps: the optimizer."""
        return optimizer

    def reads(self, data: Any) -> Any:
        """What this process reads of ``data`` (fit's X or y): all of it."""
        return data

    def train_end(self, run: TrainingRun, callbacks: list) -> None:
        """The callbacks' on_train_end, once training is over."""
        for cb in callbacks:
            cb.on_train_end(run)

    def agree(self, run: TrainingRun, take: bool) -> bool:
        """Whether to go on, once the callbacks have said ``take``: at each step, whether it
        is taken; at each epoch end (``take``: no stop asked), whether training goes on."""
        return take

    def failed(self, error: BaseException) -> None:
        """What happens when an error (or Ctrl-C, sys.exit) leaves the loop, before it
        propagates."""

    def epoch_logs(self, model: Module, xp: Any, dtype: Any, names: list[str], values: Any,
                   rows: list[int], columns: list, score_rows: list[int]) -> dict[str, Any]:
        """The epoch's training logs, still on the device: each quantity's batch-size-weighted
        mean over the steps taken (NaN when a callback skipped them all). ``values``: the
        steps' losses and ``rows`` their batches' sizes; ``columns``: each metric's values
        over the steps (each as ``mean`` takes them)."""
        if not rows:
            return dict.fromkeys(names, math.nan)
        logs = {"loss": mean(xp, values, rows)}
        for name, column in zip(names[1:], columns):
            logs[name] = mean(xp, column, score_rows)
        return logs


def train(model: Module, optimizer: Any, X: Any, y: Any, steps: Steps, *, epochs: int,
          metrics: list, callbacks: list, scheduler: Any = None,
          validation: tuple[Any, Any] | None = None, progress: bool = False,
          jit_compile: bool = False) -> History:
    """Train for ``epochs`` over (X, y) as ``steps`` says; returns the History.
    ``jit_compile``: run compiled epochs, or compiled steps where a callback's before_step
    sees each step or the rows are read from storage (xnn/compiled.py, xnn/stream.py)."""
    backend = backend_of(model.parameters()[0].value)  # where X and y are, or are read to
    dtype = model.parameters()[0].value.dtype
    # fit never uses dL/dX: the first layer can skip computing it (a third of its backward)
    forward_kwargs = {"input_grad": False} if accepts_input_grad(model) else {}
    names = log_keys(metrics, validation=False)
    plateau = getattr(scheduler, "needs_metric", False)  # a schedule stepped with the loss
    history = History()
    run = TrainingRun(model, optimizer, history)
    bar = ProgressBar(epochs, enabled=progress)
    book = _Logbook(backend.xp, dtype, history, bar, watched=bool(callbacks) or plateau)
    epochs_at_once = compiled_steps = None
    if jit_compile:
        from . import compiled  # noqa: PLC0415 - only where asked for
        compiler = compiled.compiler_of(backend, "fit")
        # a compiled epoch takes X and y whole: rows read a batch at a time step by step
        if isinstance(X, Source) or any(getattr(cb, "sees_steps", True) for cb in callbacks):
            compiled_steps = compiled.CompiledSteps(model, optimizer, steps.loss_of, metrics,
                                                    compiler)
        else:
            epochs_at_once = compiled.CompiledEpochs(model, optimizer, steps, metrics, names,
                                                     X, y, compiler)
    # epochs run together where nothing needs the host between them: logs a bar redraws
    # at most every ``together`` epochs
    alone = bool(callbacks) or scheduler is not None or validation is not None
    together = 1 if alone else _epochs_together(epochs, X.shape[0], len(steps.steps), progress)
    ahead: list[dict[str, float]] = []  # logs of epochs a compiled call trained already
    run_epoch = _epoch_runner(run, steps, metrics, callbacks, forward_kwargs, compiled_steps)
    try:
        with mode(model, training=True):
            model.zero_grad()  # a step uses the gradient of its own batch only
            for cb in callbacks:
                cb.on_train_begin(run)
            for epoch in range(epochs):
                run.epoch = epoch
                for cb in callbacks:
                    cb.on_epoch_begin(run)
                if epochs_at_once is not None:
                    if not ahead:
                        ahead = epochs_at_once.run(epoch, min(together, epochs - epoch))
                    logs = ahead.pop(0)
                else:
                    order = None if steps.order is None else steps.order(epoch)
                    with epoch_batches(X, y, order, steps.steps, backend) as batch:
                        done = run_epoch(batch)
                    order = None  # gone before the next epoch draws its own (4 bytes a row)
                    if done is None:  # a callback stopped training mid-epoch: no epoch to log
                        break
                    logs = steps.epoch_logs(model, backend.xp, dtype, names, *done)
                if validation is not None:
                    logs.update(evaluate_logs(model, *validation, steps.loss, metrics,
                                              prefix="val_"))
                logs = book.add(epoch, logs)
                if plateau:  # the validation loss, or the training loss without validation
                    scheduler.step(logs.get("val_loss", logs["loss"]))
                elif scheduler is not None:
                    scheduler.step()
                for cb in callbacks:
                    cb.on_epoch_end(run, logs)
                if not steps.agree(run, not run.stop_training):
                    break
            book.flush(final=True)
    except BaseException as error:  # an error or Ctrl-C mid-step: its gradients must not
        model.zero_grad()            # reach the next step
        steps.failed(error)
        raise
    finally:
        bar.close()
    steps.train_end(run, callbacks)
    return history


def _epochs_together(epochs: int, n: int, batches: int, progress: bool) -> int:
    """How many epochs one compiled call runs: all of them (a hundredth with a progress bar,
    so it moves), as far as their row orders and keys stay small (2^22 entries)."""
    most = max(1, 2**22 // max(n, batches))
    return max(1, min(epochs if not progress else -(-epochs // 100), most))


def _epoch_runner(run: TrainingRun, steps: Steps, metrics: list, callbacks: list,
                  forward_kwargs: dict,
                  compiled: Any = None) -> Callable[[Callable], tuple | None]:
    """One pass over the batches that ``batch(start, stop)`` gives (xnn/stream.py): forward,
    loss, backprop, the hook, the callbacks, the step; what stays the same from epoch to epoch
    is looked up once, here.

    The pass returns (values, rows, columns, score_rows) of the steps taken (columns: each
    metric's values over them); None when a callback stopped training mid-epoch. A
    callback's ``before_step`` returning False skips that step. ``compiled``
    (xnn.compiled.CompiledSteps): its gradient and update run each step's two halves as
    compiled calls.
    """
    model, optimizer = run.model, run.optimizer
    stepper = steps.optimizer(optimizer)
    loss_of, after_backward, batches = steps.loss_of, steps.after_backward, steps.steps
    votes = bool(callbacks) or steps.votes  # whether each step asks steps.agree

    def run_epoch(batch: Callable[[int, int], tuple[Any, Any]]
                  ) -> tuple[list, list, list, list] | None:
        values: list = []
        rows: list[int] = []
        scores: list = []
        score_rows: list[int] = []
        for run.batch, (start, stop, size) in enumerate(batches):
            value = None
            if stop > start:  # a rank's share of a batch of fewer rows than ranks can be empty
                xb, yb = batch(start, stop)
                if compiled is None:
                    pred, backprop = model.forward(xb, **forward_kwargs)
                    value, dpred = loss_of(pred, yb)
                    backprop(dpred)
                else:
                    value, step_scores = compiled.gradient(xb, yb)
            if after_backward is not None:
                value = after_backward(run, value)
            if votes and not steps.agree(run, all(cb.before_step(run, value)
                                                  for cb in callbacks)):
                optimizer.zero_grad()  # the step is skipped
                if run.stop_training:
                    return None
                continue
            values.append(value)
            rows.append(size)
            if metrics and stop > start:
                scores.append([fn(pred, yb) for _, fn in metrics] if compiled is None
                              else step_scores)
                score_rows.append(stop - start)
            if compiled is None:
                stepper.step()
            else:
                compiled.update()
            optimizer.zero_grad()
            if run.stop_training and run.batch < len(batches) - 1:
                return None  # asked in before_step of a step it took: stop after that step
        return values, rows, [list(column) for column in zip(*scores)], score_rows
    return run_epoch


STACK_CHUNK = 256


def mean(xp: Any, values: Any, rows: list[int]) -> Any:
    """sum(v_i rows_i) / sum(rows_i) of per-step values: a list of 0-d device arrays (a loss
    with reduction "none" is averaged first) or of numbers (a metric returning floats), on the
    host; or one device array of them, a step an entry (a compiled epoch's)."""
    if isinstance(values, list):
        if len(values) == 1:  # one step: its value, whatever it is
            value = values[0]
            return value if getattr(value, "ndim", 0) == 0 else xp.mean(value)
        if not all(on_device(xp, v) for v in values):
            return math.fsum(float(v) * r for v, r in zip(values, rows)) / sum(rows)
        values = [v if v.ndim == 0 else xp.mean(v) for v in values]
        # stacked STACK_CHUNK at a time: the same array, but an eager JAX stack compiles a
        # program of one input per value, anew for each count (3,516 steps: ~100 MiB)
        values = (xp.stack(values) if len(values) <= STACK_CHUNK else xp.concat(
            [xp.stack(values[i:i + STACK_CHUNK]) for i in range(0, len(values), STACK_CHUNK)]))
    if rows[-1] == rows[0]:  # every batch full
        return xp.mean(values)
    # only the epoch's last batch can be short
    return (xp.sum(values[:-1]) * rows[0] + values[-1] * rows[-1]) / sum(rows)


def evaluate_logs(model: Module, X: Any, y: Any, loss: Callable, metrics: list,
                  prefix: str) -> dict[str, Any]:
    """Loss and metrics on (X, y) in eval mode, as the device gives them."""
    with mode(model, training=False):
        # rows read from storage: the outputs (and targets) whole, the inputs never
        pred, y = outputs(model, (X, y)) if isinstance(X, Source) else (model(X), y)
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
        self.waiting.append((epoch, logs))
        if self.every_epoch or self.bar.due(epoch + 1) or len(self.waiting) == self.most_waiting:
            return self.flush()
        return None

    def flush(self, final: bool = False) -> dict[str, float] | None:
        """Read whatever waits (one transfer) into the History; redraw the bar when it is due
        or training ends. Returns the last epoch's logs."""
        history = self.history
        if self.waiting:
            # every epoch logs the same names: the loss, each metric, their val_ twins
            columns = {name: [logs[name] for _, logs in self.waiting]
                       for name in self.waiting[0][1]}
            floats = to_host(self.xp, self.dtype, list(columns.values()))
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


def to_host(xp: Any, dtype: Any, columns: list[list]) -> list[list[float]]:
    """Columns of values (arrays of ``xp``, or numbers) as floats: every array of every column
    read in one transfer."""
    one_of_each = {type(v): v for column in columns for v in column}
    arrays = {kind for kind, v in one_of_each.items() if on_device(xp, v)}
    device = [v if v.dtype == dtype else xp.astype(v, dtype)
              for column in columns for v in column if type(v) in arrays]
    read = iter(read_numbers(xp, device) if device else ())
    return [[float(next(read) if type(v) in arrays else v) for v in column] for column in columns]


def on_device(xp: Any, value: Any) -> bool:
    """Whether ``value`` is an array of namespace ``xp`` (not a number, nor a host array when
    the model lives elsewhere)."""
    return is_array(value) and array_namespace(value) is xp


@contextmanager
def mode(model: Module, training: bool) -> Iterator[None]:
    """Every module of ``model`` in training (or eval) mode for the block; each module's own
    mode is put back after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, was in modes:
            module.training = was
