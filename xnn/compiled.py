"""Compiled training: the steps of xnn/loop.py traced once and run as one call (``jax.jit``).

A step reads and writes Python objects (``Parameter.value`` and ``grad``, the layers' buffers,
the optimizer's state dicts); a compiler wants a pure function of arrays. ``_Slots`` turns the
one into the other: it puts traced arrays into those objects, runs the code the eager step
runs (the layers' forward and backprop, the loss, the optimizer's ``_update``), reads what
that code wrote and puts the real arrays back. Nothing the layers, losses and optimizers
compute is written a second time; the compiled call's outputs become the objects' new values.

``fit(jit_compile=True)`` compiles whole epochs (``lax.scan`` over the batches, the row order
and the slicing inside) and runs of epochs where nothing needs the host between them; with a
callback's ``before_step``, compiled steps instead (the gradient, the callbacks, the update).
:func:`train_step` is the step of a hand-written loop.

Dropout's keys are drawn on the host in the order eager steps draw them and passed in, so a
compiled step drops what the eager step drops. Integer optimizer state (Adam's "step") counts
updates: it goes in as a number and comes back one higher per step, without a read.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import traceback
import types
from collections import OrderedDict
from typing import Any, Callable

import numpy as np  # the host side: dropout keys and row orders, drawn where eager draws them

from . import random
from ._checks import ArgumentTypeError, expect, flag, is_labels
from .backend import (Backend, Compiler, array_namespace, asarray, backend_of, is_array,
                      to_numpy)
from .namespace import WRAPPERS
from .nn.module import Module, Parameter, accepts_input_grad, model_backend

__all__ = ["train_step", "TrainStep", "NotCompilableError"]


class NotCompilableError(ValueError):
    """A compiled step was asked for where it cannot run (a backend without a compiler,
    distributed training, an optimizer xnn cannot trace)."""


def compiler_of(backend: Backend, owner: str) -> Compiler:
    """The backend's compiler, or NotCompilableError saying in one line that it has none."""
    compiler = backend.compiler
    if compiler is None:
        raise NotCompilableError(
            f"{owner}: jit_compile=True needs a backend with a compiler (jax); {backend.name} "
            f"runs op by op: pass jit_compile=False (or 'auto', which compiles only where it "
            f"can)")
    return compiler


def wants_compile(owner: str, jit_compile: Any, backend: Backend) -> bool:
    """jit_compile as a bool: True, False, or "auto" (compile where the backend can)."""
    if jit_compile == "auto" and isinstance(jit_compile, str):
        return backend.compiler is not None
    if isinstance(jit_compile, str):  # flag() would say True or False, leaving "auto" out
        raise ArgumentTypeError(f"{owner}: jit_compile must be True, False or 'auto', got str "
                                f"{jit_compile!r}")
    if flag(owner, "jit_compile", jit_compile):
        compiler_of(backend, owner)
        return True
    return False


# --- the objects a step reads and writes, as a tree of arrays -------------------------------------

class _Slots:
    """The parameters' values (and grads), the modules' buffers and the optimizer's state of
    one model and optimizer: ``read()`` gathers them into a tree, ``write(tree)`` puts a tree
    back (traced arrays while a step is traced, the compiled call's outputs after it)."""

    def __init__(self, model: Module, optimizer: Any) -> None:
        own = model.parameters()
        ids = {id(p) for p in own}
        self.params: list[Parameter] = own + [p for p in optimizer.params if id(p) not in ids]
        self.buffers = [(m, name) for m in model.modules() for name, _ in m.named_buffers()]
        self.optimizer = optimizer

    def read(self, grads: bool = False) -> dict[str, Any]:
        opt = self.optimizer
        return {"values": [p.value for p in self.params],
                "buffers": [dict(m.named_buffers())[name] for m, name in self.buffers],
                "state": [dict(opt.state[p]) for p in opt.params],
                "grads": [p.grad for p in self.params] if grads else None}

    def write(self, tree: dict[str, Any]) -> None:
        opt = self.optimizer
        for p, value in zip(self.params, tree["values"]):
            p.value = value
        for (m, name), value in zip(self.buffers, tree["buffers"]):
            m.load_buffer(name, value)
        for p, state in zip(opt.params, tree["state"]):
            opt.state[p] = dict(state)
        grads = tree["grads"]
        for i, p in enumerate(self.params):
            p.grad = None if grads is None else grads[i]


def _pure(slots: _Slots, fn: Callable, grads_in: bool = False) -> Callable:
    """``fn(*args)`` as a pure function ``(tree, lr, *args) -> (tree, fn's result)``: while fn
    runs, the objects hold ``tree`` (its grads too where ``grads_in``) and the optimizer's
    learning rate is ``lr``; after it, they hold what they held before."""
    opt = slots.optimizer

    def pure(tree: dict[str, Any], lr: Any, *args: Any) -> tuple[dict[str, Any], Any]:
        saved, saved_lr = slots.read(grads=True), opt._lr
        slots.write(tree if grads_in else {**tree, "grads": None})
        opt._lr = lr
        try:
            result = fn(*args)
            return slots.read(grads=True), result
        finally:
            slots.write(saved)
            opt._lr = saved_lr
    return pure


class _Keys:
    """Dropout's keys inside a traced step: the next of ``keys`` at each mask; past their end
    (or with none), a constant, counting how many the step asks for."""

    def __init__(self, keys: Any) -> None:
        self.keys, self.used = keys, 0

    def __call__(self) -> Any:
        i, self.used = self.used, self.used + 1
        return self.keys[i] if self.keys is not None and i < self.keys.shape[0] else 0


def _draw_keys(count: int, steps: int) -> np.ndarray:
    """(steps, count) keys from the host generator, in the order eager steps draw them."""
    return np.array([[random.draw_key() for _ in range(count)] for _ in range(steps)],
                    dtype=np.int64).reshape(steps, count)


def _step_keys(count: int, like: Any) -> Any:
    """One step's dropout keys on ``like``'s device; None for a step without dropout (no
    copy to the device at each step)."""
    if not count:
        return None
    return asarray(_draw_keys(count, 1)[0], dtype="int64", backend=backend_of(like))


# --- one step --------------------------------------------------------------------------------------

class _Step:
    """The eager step's code, run on traced arrays: forward, loss, backprop, clipping, the
    metrics on the batch, the optimizer's update; the gradient and the update also alone
    (fit's compiled steps, with the callbacks' before_step between them)."""

    def __init__(self, model: Module, loss_of: Callable, optimizer: Any, metrics: list,
                 clip: Callable | None) -> None:
        if not callable(getattr(optimizer, "_update", None)):
            raise NotCompilableError(
                f"a compiled step updates through an xnn.optim optimizer's _update, and "
                f"{type(optimizer).__name__} has none: train with jit_compile=False")
        self.model, self.loss_of, self.optimizer = model, loss_of, optimizer
        self.metrics, self.clip_grads = metrics, clip
        self.slots = _Slots(model, optimizer)
        self.kwargs = {"input_grad": False} if accepts_input_grad(model) else {}

    def gradient(self, xb: Any, yb: Any, keys: Any = None) -> tuple[Any, list]:
        """Forward, loss and backprop, the grads left in the parameters; (loss, metrics).
        ``keys``: dropout's keys (traced), or None to draw them on the host (eager)."""
        with random.traced_keys(None if keys is None else _Keys(keys)):
            pred, backprop = self.model.forward(xb, **self.kwargs)
        value, dpred = self.loss_of(pred, yb)
        backprop(dpred)
        if self.clip_grads is not None:
            self.clip_grads(self.slots.params)
        return value, [fn(pred, yb) for _, fn in self.metrics]

    def update(self) -> None:
        """The optimizer's update from the grads, which are then forgotten."""
        opt = self.optimizer
        opt._update(opt.params, opt.state)
        for p in self.slots.params:
            p.grad = None

    def whole(self, xb: Any, yb: Any, keys: Any) -> tuple[Any, list]:
        out = self.gradient(xb, yb, keys)
        self.update()
        return out

    def count_keys(self, compiler: Compiler, signature: tuple, xb: Any, yb: Any) -> int:
        """How many dropout keys one step asks for (see ``traced``)."""
        return self.traced(compiler, signature, xb, yb)[0]

    def traced(self, compiler: Compiler, signature: tuple, xb: Any,
               yb: Any) -> tuple[int, int]:
        """(how many dropout keys one step asks for, the output's width), found by tracing
        the forward without running it (once per signature and batch shape)."""
        key = (signature, tuple(xb.shape), tuple(yb.shape))
        if key in _KEY_COUNTS:
            return _KEY_COUNTS[key]
        counter = _Keys(None)
        tree = self.slots.read()

        def counted(xb: Any, yb: Any) -> Any:
            with random.traced_keys(counter):
                return self.model.forward(xb, **self.kwargs)[0]

        _, out = compiler.shapes(_pure(self.slots, counted), tree, self.optimizer._lr, xb, yb)
        _KEY_COUNTS[key] = counter.used, out.shape[-1]
        while len(_KEY_COUNTS) > _KEY_COUNTS_SIZE:  # the oldest go, as the cache's do
            _KEY_COUNTS.popitem(last=False)
        return _KEY_COUNTS[key]

    def settle(self, before: dict[str, Any], after: dict[str, Any], steps: int) -> None:
        """Write a compiled call's outputs into the objects. Integer state (a step count) is
        its count before plus ``steps``, with no read; one the call made (at a first update)
        is read once."""
        for old, new in zip(before["state"], after["state"]):
            for key, value in new.items():
                was = old.get(key)
                if isinstance(was, int):
                    new[key] = was + steps
                elif was is None and getattr(value, "ndim", None) == 0 and "int" in str(
                        value.dtype):
                    new[key] = int(value)
        self.slots.write(after)
        self.optimizer.steps += steps  # its placements follow at the next _follow_values


def _scan(compiler: Compiler, xp: Any, body: Callable, carry: Any, xs: Any,
          length: int) -> tuple:
    """body along xs' first axis (``length`` items), threading carry: the compiler's scan,
    with the first item run on its own when it changes the carry's structure (an optimizer's
    first update makes its state), so the scan's carry keeps one shape."""
    first = compiler.tree_map(lambda a: a[0, ...], xs)  # None items stay None
    if length == 1:  # no loop around one step (a full-batch epoch): XLA fuses it with the rest
        carry, y0 = body(carry, first)
        return carry, compiler.tree_map(lambda a: a[None, ...], y0)
    if compiler.avals(compiler.shapes(body, carry, first)[0]) == compiler.avals(carry):
        return compiler.scan(body, carry, xs, length=length)
    carry, y0 = body(carry, first)
    carry, ys = compiler.scan(body, carry, compiler.tree_map(lambda a: a[1:, ...], xs),
                              length=length - 1)
    return carry, compiler.tree_map(lambda a, b: xp.concat([a[None, ...], b]), y0, ys)


# --- the compiled functions, kept for models alike ------------------------------------------------

_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_SIZE = 16
# dropout keys a step and the output's width, by signature and batch shapes: the last 256 (a
# search's many models)
_KEY_COUNTS: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
_KEY_COUNTS_SIZE = 256


def _signature(*objects: Any) -> tuple:
    """What a trace bakes in of these objects (a model's layers and modes, a loss's and an
    optimizer's settings, metric functions): equal signatures trace to the same computation,
    so a compiled function is reused for a new model alike (a benchmark's, a search's)."""
    def of(obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, str, type)):
            return obj
        if isinstance(obj, (list, tuple)):
            return tuple(of(o) for o in obj)
        if isinstance(obj, Module):  # its buffers are inputs, not settings
            return tuple((type(m), m.training, _settings(m, {n for n, _ in m.named_buffers()}))
                         for m in obj.modules())
        if is_array(obj) or isinstance(obj, Parameter):
            return ("array", id(obj))
        if isinstance(obj, _FUNCTIONS):  # a metric function, a clip lambda: itself
            return obj
        if hasattr(obj, "__dict__"):  # a loss, an optimizer: its class and settings
            return (type(obj), _settings(obj))
        try:
            hash(obj)
            return obj
        except TypeError:
            return ("object", id(obj))
    return tuple(of(o) for o in objects)


_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
              functools.partial)


def _settings(obj: Any, inputs: set[str] = frozenset()) -> tuple:
    """An object's own Python settings (not its modules, parameters or the buffers named in
    ``inputs``, which are inputs or have their own entries; other arrays by identity)."""
    names = getattr(obj, "hyperparameters", None)
    items = ([(k, getattr(obj, k)) for k in names if k != "lr"] if names is not None
             else sorted(vars(obj).items()))
    out = []
    for name, value in items:
        if isinstance(value, (Module, Parameter)) or name == "training" or name in inputs:
            continue
        if is_array(value):
            out.append((name, "array", id(value)))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (Module, Parameter))
                                                      for v in value):
            continue
        else:
            try:
                hash(value)
                out.append((name, value))
            except TypeError:
                out.append((name, "object", id(value)))
    return tuple(out)


class _Compiled:
    """A compiled function and the objects it traces with: each call names the current ones
    (a model, loss and optimizer alike by signature), whose code runs if it is traced again
    (a new shape). Traced code that reads an array's value on the host is a
    NotCompilableError naming it and ``owner``."""

    def __init__(self, make: Callable[[Callable[[], Any]], Callable], compiler: Compiler,
                 owner: str) -> None:
        self.current: Any = None
        self.fn = make(lambda: self.current)
        self.read_back, self.owner = compiler.read_back, owner

    def __call__(self, current: Any, *args: Any) -> Any:
        self.current = current
        try:
            return self.fn(*args)
        except self.read_back as error:  # raised while tracing: nothing ran, nothing donated
            raise NotCompilableError(
                f"{self.owner}: {_reader(error)} reads an array's value back to the host, "
                f"which a compiled step cannot ({type(error).__name__} while tracing); run it "
                f"with jit_compile=False") from error
        finally:
            self.current = None


def _reader(error: BaseException) -> str:
    """'name (file:line)' of the innermost frame of ``error``'s traceback outside the tracing
    library, NumPy and xnn's conversions (to_numpy, a check's read): the code that asked for
    a value."""
    libraries = ("jax", "jaxlib", "numpy", *WRAPPERS)
    helpers = {"backend.py", "namespace.py", "_checks.py"}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = pathlib.PurePath(frame.filename)
        if not (any(library in path.parts for library in libraries)
                or (path.parent.name == "xnn" and path.name in helpers)):
            return f"{frame.name} ({'/'.join(path.parts[-2:])}:{frame.lineno})"
    return "the step"


def _cached(key: tuple, make: Callable[[Callable[[], Any]], Callable], compiler: Compiler,
            owner: str = "fit") -> _Compiled:
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _Compiled(make, compiler, owner)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return found


# --- train_step: the step of a hand-written loop ---------------------------------------------------

class TrainStep:
    """``step(x, y)``: one training step of ``model`` on the batch (x, y) (forward, loss,
    backprop, ``clip``, the optimizer's update) as one compiled call; returns the batch's loss,
    a 0-d array left on the device. See :func:`train_step`."""

    def __init__(self, model: Module, loss: Callable, optimizer: Any, clip: Callable | None,
                 compiler: Compiler | None) -> None:
        # a loss that checks its inputs on the host at each call (validate=True) traces without
        # the check: class labels are checked before each call instead, as the loss would
        self.checks: Any = None
        if compiler is not None and getattr(loss, "validate", False) is True:
            if not callable(getattr(loss, "check_targets", None)):
                raise NotCompilableError(
                    f"train_step: {type(loss).__name__}(validate=True) reads its inputs back to "
                    f"the host at every call, which a compiled step cannot; pass validate=False "
                    f"or jit_compile=False")
            self.checks, loss = loss, copy.copy(loss)
            loss.validate = False
        self.step = _Step(model, loss, optimizer, [], clip)
        self.compiler = compiler
        # the layers', loss's and clip's settings, read once; the modes and the optimizer's
        # hyperparameters, which people change between steps, at each step
        self.signature = _signature("train_step", model, loss, clip, type(optimizer))
        self.modules = list(model.modules())

    def __call__(self, x: Any, y: Any) -> Any:
        step, opt = self.step, self.step.optimizer
        like = step.slots.params[0].value
        expect("train_step", x, like=like, what="x", like_what="model's parameters")
        expect("train_step", y, like=like, dtype=None, what="y", like_what="model's parameters")
        if self.compiler is None:  # eager, where the user asked for that
            value, _ = step.gradient(x, y)
            opt.step()
            opt.zero_grad()
            return value
        compiler = self.compiler
        key = (self.signature, _settings(opt), tuple(m.training for m in self.modules))
        count, width = step.traced(compiler, key, x, y)
        if self.checks is not None and is_labels(array_namespace(y), y):
            self.checks.check_targets(y, width)
        opt._follow_values()
        tree = step.slots.read()
        compiled = _cached(key, lambda current: compiler.jit(
            lambda *args: _pure(current().slots, current().whole)(*args), donate_argnums=(0,)),
            compiler, "train_step")
        keys = _step_keys(count, x)
        out, (value, _) = compiled(step, tree, opt._lr, x, y, keys)
        step.settle(tree, out, 1)
        return value


def train_step(model: Module, loss: Callable, optimizer: Any, *, clip: Callable | None = None,
               jit_compile: bool | str = True) -> TrainStep:
    """The training step of a hand-written loop, compiled into one call on a backend with a
    compiler (jax): ``step = xnn.train_step(model, loss, opt)``, then ``step(xb, yb)`` per
    batch, which returns the batch's loss on the device.

    The step runs the model's forward and backprop, the loss, ``clip(params)`` (for example
    ``lambda ps: xnn.optim.clip_grad_norm(ps, 1.0)``) and the optimizer's update, as one
    ``jax.jit`` with the model's and optimizer's arrays donated: the weights equal the eager
    step's (float64: to rounding). Schedules that set ``optimizer.lr`` between steps take effect
    without a new compile; other settings (a layer's, an optimizer's momentum) are traced in,
    and a change compiles anew. A compiled function is kept for models alike (same layers,
    modes and settings), so a second model of the same kind starts without compiling.

    Parameters
    ----------
    model : xnn.nn.Module
        The network, trained in place.
    loss : callable
        ``loss(pred, target) -> (value, grad)``.
    optimizer : xnn.optim.Optimizer
        An xnn optimizer over the model's parameters.
    clip : callable or None, default None
        Called with the parameters between backprop and the update (gradient clipping).
    jit_compile : bool or "auto", default True
        True compiles, and on a backend without a compiler (NumPy, CuPy, torch) raises
        ``NotCompilableError`` saying so; False runs the same step eagerly; "auto" compiles
        where the backend can.

    Returns
    -------
    TrainStep
        ``step(x, y) -> loss``.

    Examples
    --------
    >>> import xnn
    >>> from xnn import losses, nn, optim
    >>> xnn.seed(0)
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> opt = optim.SGD(model.parameters(), lr=0.1)
    >>> step = xnn.train_step(model, losses.MSELoss(), opt, jit_compile="auto")
    >>> X, y = xnn.datasets.xor()
    >>> first = float(step(X, y))
    >>> for _ in range(200):
    ...     last = step(X, y)
    >>> float(last) < first
    True
    """
    backend, _ = model_backend(model, "train_step")
    if clip is not None and not callable(clip):
        raise TypeError(f"train_step: clip must be callable as clip(params), got "
                        f"{type(clip).__name__}")
    on = wants_compile("train_step", jit_compile, backend)
    return TrainStep(model, loss, optimizer, clip, compiler_of(backend, "train_step") if on
                     else None)


# --- fit's epochs -----------------------------------------------------------------------------------

class CompiledEpochs:
    """fit's epochs as compiled calls (``fit(jit_compile=True)`` without a callback's
    before_step): each call runs ``count`` epochs, every one its row order (``take``), its
    batches (``scan`` over the full ones, then the short last one) and its logs, as
    ``steps.epoch_logs`` computes them, with nothing read back in between."""

    def __init__(self, model: Module, optimizer: Any, steps: Any, metrics: list,
                 names: list[str], X: Any, y: Any, compiler: Compiler) -> None:
        self.step = _Step(model, steps.loss_of, optimizer, metrics, None)
        self.steps, self.names, self.X, self.y, self.compiler = steps, names, X, y, compiler
        self.xp = backend_of(X).xp
        self.signature = _signature("epochs", model, steps.loss_of, metrics, type(optimizer),
                                    steps.steps, steps.order is None)

    def run(self, first: int, count: int) -> list[dict[str, float]]:
        """Train epochs first .. first + count - 1; their logs, read in one transfer."""
        step, opt, steps = self.step, self.step.optimizer, self.steps
        opt._follow_values()
        tree = step.slots.read()
        batches = steps.steps
        start, stop, _ = batches[0]
        count_keys = step.count_keys(self.compiler, self.signature, self.X[start:stop, ...],
                                     self.y[start:stop, ...])
        # drawn as eager epochs draw: each epoch's row order, then its steps' dropout keys,
        # written into one host array each (none drawn: none, and no copy to the device)
        orders = (None if steps.order is None
                  else np.empty((count, self.X.shape[0]), dtype=np.int64))
        keys = np.empty((count, len(batches), count_keys), dtype=np.int64) if count_keys else None
        for i, epoch in enumerate(range(first, first + count)):
            if orders is not None:
                orders[i] = steps.order(epoch)
            if keys is not None:
                keys[i] = _draw_keys(count_keys, len(batches))
        backend = backend_of(self.X)
        index, keys = (None if drawn is None else asarray(drawn, backend=backend)
                       for drawn in (orders, keys))
        key = (self.signature, _settings(opt), count)
        compiler = self.compiler  # not self: a kept function must not keep this fit's data
        compiled = _cached(key, lambda current: compiler.jit(
            lambda tree, lr, X, y, index, keys: current().epochs(tree, lr, X, y, index, keys,
                                                                 count),
            donate_argnums=(0,)), compiler)
        out, logs = compiled(self, tree, opt._lr, self.X, self.y, index, keys)
        step.settle(tree, out, count * len(batches))
        # every log of every epoch in one transfer, each in the model's dtype as eager's
        dtype = step.slots.params[0].value.dtype
        table = to_numpy(self.xp.stack([self.xp.astype(c, dtype) for c in logs]))
        return [dict(zip(self.names, map(float, row))) for row in table.T]

    def epochs(self, tree: dict, lr: Any, X: Any, y: Any, index: Any, keys: Any,
               count: int) -> tuple[dict, tuple]:
        """The traced run of ``count`` epochs: (tree, each log's (count,) values)."""
        xp = self.xp

        def epoch(tree: dict, xs: tuple) -> tuple[dict, tuple]:
            order, k = xs
            Xe = X if order is None else xp.take(X, order, axis=0)
            ye = y if order is None else xp.take(y, order, axis=0)
            return self.epoch(tree, lr, xp, Xe, ye, k)

        return _scan(self.compiler, xp, epoch, tree, (index, keys), count)

    def epoch(self, tree: dict, lr: Any, xp: Any, X: Any, y: Any, keys: Any) -> tuple:
        """One traced epoch over rows already in its order: (tree, its logs in name order)."""
        batches = self.steps.steps
        size = batches[0][2]
        full = sum(1 for b in batches if b[2] == size and b[1] - b[0] == size)
        whole = _pure(self.step.slots, self.step.whole)

        def step(tree: dict, xb: Any, yb: Any, kb: Any) -> tuple[dict, tuple]:
            tree, (value, scores) = whole(tree, lr, xb, yb, kb)
            # a loss of reduction "none": its mean, as the epoch's log takes it
            return tree, (value if value.ndim == 0 else xp.mean(value), tuple(scores))

        cut = full * size
        Xb = xp.reshape(X[:cut, ...], (full, size, *X.shape[1:]))
        yb = xp.reshape(y[:cut, ...], (full, size, *y.shape[1:]))
        # the logs stay stacked, one entry a step: unstacked, they were an operation a step
        # in the traced epoch (10,000 steps: ~5 s more to trace and compile)
        tree, (values, columns) = _scan(self.compiler, xp, lambda t, b: step(t, *b), tree,
                                        (Xb, yb, None if keys is None else keys[:full, ...]),
                                        full)
        for i, (start, stop, _) in enumerate(batches[full:], start=full):
            tree, (value, score) = step(tree, X[start:stop, ...], y[start:stop, ...],
                                        None if keys is None else keys[i, ...])
            values = xp.concat([values, xp.reshape(value, (1,))])
            columns = tuple(xp.concat([c, xp.reshape(s, (1,))]) for c, s in zip(columns, score))
        rows = [b[2] for b in batches]
        dtype = self.step.slots.params[0].value.dtype
        logs = self.steps.epoch_logs(self.step.model, xp, dtype, self.names, values, rows,
                                     list(columns), [b[1] - b[0] for b in batches])
        return tree, tuple(logs[name] for name in self.names)


class CompiledSteps:
    """fit's steps as compiled calls where a callback's before_step sees each one: the
    gradient (forward, loss, backprop, the metrics), then, if the callbacks take the step, the
    update, each one call."""

    def __init__(self, model: Module, optimizer: Any, loss_of: Callable, metrics: list,
                 compiler: Compiler) -> None:
        self.step = _Step(model, loss_of, optimizer, metrics, None)
        self.compiler = compiler
        self.signature = _signature("steps", model, loss_of, metrics, type(optimizer))

    def gradient(self, xb: Any, yb: Any) -> tuple[Any, list]:
        """Leaves the grads in the parameters (and the buffers' new values); (loss, metrics)."""
        step, opt = self.step, self.step.optimizer
        tree = step.slots.read()
        count = step.count_keys(self.compiler, self.signature, xb, yb)
        compiler = self.compiler  # not self (see CompiledEpochs.run)
        compiled = _cached((self.signature, "gradient"), lambda current: compiler.jit(
            lambda *args: _pure(current().slots, current().gradient)(*args)), compiler)
        keys = _step_keys(count, xb)
        out, (value, scores) = compiled(step, tree, opt._lr, xb, yb, keys)
        step.settle(tree, out, 0)
        return value, scores

    def update(self) -> None:
        """The optimizer's update from the grads the parameters hold (checked first)."""
        step, opt = self.step, self.step.optimizer
        opt._follow_values()
        tree = step.slots.read()
        grads = [p.grad for p in step.slots.params]  # an argument apart: not donated
        compiler = self.compiler  # not self (see CompiledEpochs.run)

        def make(current: Callable) -> Callable:
            def update(tree: dict, lr: Any, grads: list) -> tuple:
                pure = _pure(current().slots, current().update, grads_in=True)
                return pure({**tree, "grads": grads}, lr)
            return compiler.jit(update, donate_argnums=(0,))

        out, _ = _cached((self.signature, "update", _settings(opt)), make, compiler)(
            step, tree, opt._lr, grads)
        step.settle(tree, out, 1)
