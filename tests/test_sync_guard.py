"""No training step reads a device array back to the host or copies host data to the device.

One step of every loss, optimizer, clipping function and layer runs on array_api_strict's
"device1" while a recorder notes, with the xnn file:line that made it, every read-back
(bool/int/float/index/complex/str, __array__, __dlpack__, to_device to the CPU, boolean-mask
indexing, and the namespace functions that read back on CuPy) and every host->device copy.
On a GPU each read-back is a device sync, which CuPy's own detector (cupyx.allow_synchronize)
sees only where it goes through ndarray.get(); this guard sees them all, on the CPU, and needs
no GPU. ``fit`` may read only at epoch ends.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import xnn
from xnn import losses, nn, optim
from xnn._checks import check_labels
from xnn.callbacks import Callback

import catalogue
from training_steps import CLIPPING, LAYERS, LOSSES, OPTIMIZERS, Data, mlp, step

xps = pytest.importorskip("array_api_strict")

CPU = xps.Device("CPU_DEVICE")
Array = type(xps.asarray(0))  # the class is not public
PACKAGE = pathlib.Path(xnn.__file__).resolve().parent
READS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__array__",
         "__dlpack__", "__repr__", "__str__", "__format__")
# array-api-compat's clip and sign on CuPy index with a boolean mask; the others have a shape
# that depends on the data. Each reads a count back to the host, though not on array_api_strict.
READS_ON_CUPY = ("clip", "sign", "nonzero", "unique_all", "unique_counts", "unique_inverse",
                 "unique_values")
COPIES = ("asarray from the host", "from_dlpack")


def _on_device(x: Any) -> bool:
    return isinstance(x, Array) and x.device != CPU  # on the CPU it is host data already


def _has_mask(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, Array) and k.dtype == xps.bool for k in keys)


# (owner, attribute, kind of event, whether a call is one)
WATCHED = [
    *((Array, name, name, lambda x, *a, **k: _on_device(x)) for name in READS),
    (Array, "to_device", "to_device(CPU)",
     lambda x, device, *a, **k: device == CPU and _on_device(x)),
    (Array, "__getitem__", "boolean-mask getitem",
     lambda x, key, *a: _on_device(x) and _has_mask(key)),
    (Array, "__setitem__", "boolean-mask setitem",
     lambda x, key, *a: _on_device(x) and _has_mask(key)),
    (xps, "asarray", "asarray from the host", lambda obj, *a, **k: not isinstance(obj, Array)),
    (xps, "from_dlpack", "from_dlpack", lambda *a, **k: True),
    *((xps, name, f"xp.{name} (reads back on CuPy)", lambda *a, **k: True)
      for name in READS_ON_CUPY),
]


@dataclass(frozen=True)
class Event:
    kind: str
    site: str         # the innermost xnn frame, "xnn/losses/regression.py:32"
    caller: str       # the xnn frame that called it ("" if none)
    when: Any = None  # what the recorder's clock said

    def __str__(self) -> str:
        return f"{self.kind} at {self.site}" + (f" (from {self.caller})" if self.caller else "")


def _xnn_frames(frame: Any) -> list[str]:
    """The two innermost frames of code under xnn/, as "xnn/file.py:line"."""
    inside, found = str(PACKAGE) + os.sep, []
    while frame is not None and len(found) < 2:
        path = frame.f_code.co_filename
        if path.startswith(inside):
            found.append(f"xnn/{pathlib.Path(path[len(inside):]).as_posix()}:{frame.f_lineno}")
        frame = frame.f_back
    return found


class HostTraffic:
    """While active, records each read-back and host->device copy that code under xnn/ makes
    on array_api_strict arrays; calls from elsewhere, and array_api_strict's calls to itself,
    are not events. ``clock()`` tags each event with when it happened."""

    def __init__(self, clock: Callable[[], Any] = lambda: None) -> None:
        self.events: list[Event] = []
        self._clock = clock
        self._inside = False  # in a watched call: array_api_strict calling itself

    def __enter__(self) -> HostTraffic:
        self._patch = pytest.MonkeyPatch()
        for owner, name, kind, counts in WATCHED:
            self._patch.setattr(owner, name, self._watch(getattr(owner, name), kind, counts))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._patch.undo()

    def _watch(self, original: Callable, kind: str, counts: Callable) -> Callable:
        @functools.wraps(original)
        def watched(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return original(*args, **kwargs)
            self._inside = True
            try:
                frames = _xnn_frames(sys._getframe(1)) if counts(*args, **kwargs) else []
                if frames:
                    self.events.append(Event(kind, frames[0], "".join(frames[1:]),
                                             self._clock()))
                return original(*args, **kwargs)
            finally:
                self._inside = False
        return watched


def _report(events: list[Event], allowed: int = 0, where: str = "in one step") -> str:
    return (f"{len(events)} host transfer(s) {where}, {allowed} allowed (on a GPU each "
            f"read-back is a device sync):\n  " + "\n  ".join(map(str, events)))


def _recorded(train_step: Callable[[], Any]) -> list[Event]:
    """The events of one call of ``train_step``, after a warm-up call (first calls fill caches)."""
    train_step()
    with HostTraffic() as traffic:
        train_step()
    return traffic.events


@pytest.fixture
def device1():
    with xnn.use_backend("array_api_strict", "device1"):
        xnn.seed(0)
        yield


@pytest.mark.parametrize("public, cases", [
    pytest.param(catalogue.loss_classes(), LOSSES, id="losses"),
    pytest.param(catalogue.optimizer_classes(), OPTIMIZERS, id="optimizers"),
    pytest.param({n for n in optim.__all__ if n.startswith("clip_")}, CLIPPING, id="clipping"),
    pytest.param(catalogue.public_classes(nn, nn.Module), LAYERS, id="layers"),
])
def test_every_public_loss_optimizer_clipping_and_layer_has_a_case(public, cases):
    missing = set(public) - {case.split("-")[0] for case in cases}
    assert not missing, f"add a sync guard case for each of {sorted(missing)}"


@pytest.mark.parametrize("case", LOSSES)
def test_a_step_of_each_loss_reads_nothing_back(device1, case):
    make_loss, target, last, allowed = LOSSES[case]
    d = Data.make()
    model = nn.Sequential(nn.Linear(8, 4), last())
    events = _recorded(step(model, make_loss(d), d.X, getattr(d, target)))
    assert len(events) <= allowed, _report(events, allowed)


@pytest.mark.parametrize("case", OPTIMIZERS)
def test_a_step_of_each_optimizer_reads_nothing_back(device1, case):
    d = Data.make()
    events = _recorded(step(mlp(), losses.MSELoss(), d.X, d.values, OPTIMIZERS[case]))
    assert not events, _report(events)


@pytest.mark.parametrize("case", CLIPPING)
def test_gradient_clipping_reads_nothing_back(device1, case):
    d = Data.make()
    events = _recorded(step(mlp(), losses.MSELoss(), d.X, d.values, optim.Adam,
                             after_backprop=CLIPPING[case]))
    assert not events, _report(events)


def layer_step_events(make: Callable[[], nn.Module]) -> list[Event]:
    """The events of a training step through ``make()`` between Linear(8, 8) and Linear(8, 4)."""
    d = Data.make()
    model = nn.Sequential(nn.Linear(8, 8), make(), nn.Linear(8, 4))
    return _recorded(step(model, losses.MSELoss(), d.X, d.values))  # in training mode


@pytest.mark.parametrize("case", LAYERS)
def test_a_step_through_each_layer_reads_nothing_back(device1, case):
    events = layer_step_events(LAYERS[case])
    assert not events, _report(events)


# --- fit: reads at epoch ends only ------------------------------------------------------------

class EpochClock(Callback):
    """When an event happens: None outside an epoch, else the optimizer steps taken in it."""

    def __init__(self) -> None:
        self.optimizer, self.first = None, None

    def on_epoch_begin(self, run: Any) -> None:
        self.optimizer, self.first = run.optimizer, run.optimizer.steps

    def on_epoch_end(self, run: Any, logs: dict) -> None:
        self.first = None

    def __call__(self) -> int | None:
        return None if self.first is None else self.optimizer.steps - self.first


def _between_steps(event: Event, steps_per_epoch: int) -> bool:
    """Whether the event falls inside an epoch before its last step, where nothing may happen
    but the copy of the epoch's shuffled order before its first step."""
    if event.when is None or event.when == steps_per_epoch:
        return False  # before training (the one-off checks) or at the epoch's end
    return not (event.when == 0 and event.kind in COPIES)


def _reads_between_steps(loss: Any, target: str, last: Callable, metrics: list[str],
                        callbacks: list[Callback] = ()) -> list[Event]:
    """The events of fit (3 epochs of 4 steps, shuffled, with validation data) inside an epoch
    before its last step, after a warm-up fit."""
    d, val = Data.make(64), Data.make(16)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4), last())

    def train(epochs: int, callbacks: list[Callback]) -> None:
        xnn.fit(model, d.X, getattr(d, target), loss=loss, optimizer=optim.Adam(model.parameters()),
                epochs=epochs, batch_size=16, validation_data=(val.X, getattr(val, target)),
                metrics=metrics, callbacks=callbacks, progress=False)

    train(1, [])
    clock = EpochClock()
    with HostTraffic(clock) as traffic:
        train(3, [*callbacks, clock])
    assert any(e.when == 4 for e in traffic.events), "the epoch-end read should be seen"
    return [e for e in traffic.events if _between_steps(e, steps_per_epoch=4)]


@pytest.mark.parametrize("loss, target, last, metrics", [
    (losses.BCELoss(), "binary", nn.Sigmoid, ["binary_accuracy", "mse"]),
    (losses.CrossEntropyLoss(), "labels", nn.Identity, ["accuracy"]),
    (losses.MSELoss(), "values", nn.Identity, ["mse", "mae", "r2"]),
], ids=["BCELoss", "CrossEntropyLoss", "MSELoss"])
def test_fit_reads_back_only_at_epoch_ends(device1, loss, target, last, metrics):
    inside = _reads_between_steps(loss, target, last, metrics)
    assert not inside, _report(inside, where="inside an epoch before its last step")


def test_the_fit_guard_sees_a_callback_that_reads_every_step(device1):
    inside = _reads_between_steps(losses.MSELoss(), "values", nn.Identity, [],
                                  [xnn.callbacks.TerminateOnNaN()])  # one bool() per step
    assert len(inside) == 12, _report(inside)
    # all_finite's one read of the step's sums, called by the callback
    assert all(e.kind == "__bool__" and e.site.startswith("xnn/_checks.py:")
               and e.caller.startswith("xnn/callbacks.py:") for e in inside), _report(inside)


# --- the recorder itself ----------------------------------------------------------------------

def _as_if_in_xnn(statement: str) -> Callable[[Any], None]:
    """A function of x running ``statement`` whose frame says it is line 2 of xnn/_probe.py."""
    scope = {"xp": xps, "np": np, "CPU": CPU}
    exec(compile(f"def probe(x):\n    {statement}\n", str(PACKAGE / "_probe.py"), "exec"), scope)
    return scope["probe"]


@pytest.mark.parametrize("statement, kind", [
    ("float(xp.sum(x))", "__float__"),
    ("int(xp.max(xp.astype(x, xp.int64)))", "__int__"),
    ("bool(xp.any(x > 0))", "__bool__"),
    ("[0, 1][xp.astype(x[0], xp.int64)]", "__index__"),
    ("np.from_dlpack(x)", "__dlpack__"),
    ("x.to_device(CPU)", "to_device(CPU)"),
    ("f'{x}'", "__format__"),
    ("x[x > 0]", "boolean-mask getitem"),
    ("x[x > 0] = 0.0", "boolean-mask setitem"),
    ("xp.asarray(np.ones(3), device=x.device)", "asarray from the host"),
    ("xp.clip(x, min=0.0)", "xp.clip (reads back on CuPy)"),
    ("xp.sign(x)", "xp.sign (reads back on CuPy)"),
])
def test_the_recorder_names_the_xnn_line_of_each_kind_of_transfer(device1, statement, kind):
    x = xnn.asarray([0.5, -1.0, 2.0])
    probe = _as_if_in_xnn(statement)
    with HostTraffic() as traffic:
        probe(x)
    assert [(e.kind, e.site) for e in traffic.events] == [(kind, "xnn/_probe.py:2")]


def test_the_recorder_catches_a_real_read_back_in_xnn(device1):
    labels = xnn.asarray(np.arange(8) % 4)
    with HostTraffic() as traffic:
        check_labels("test", xps, labels, 4)
    assert traffic.events, "check_labels reads the labels' range: the guard must see it"
    assert all(e.caller.startswith("xnn/_checks.py:") or e.site.startswith("xnn/_checks.py:")
               for e in traffic.events), _report(traffic.events)


def test_the_recorder_ignores_the_host_and_code_outside_xnn(device1):
    x = xnn.asarray([0.5, -1.0, 2.0])
    on_cpu = xps.asarray([1.0, 2.0])
    with HostTraffic() as traffic:
        float(xps.sum(x)), x[x > 0], xps.asarray(np.ones(3))          # not from xnn
        _as_if_in_xnn("float(x[0]); x[x > 0]; np.from_dlpack(x)")(on_cpu)  # host data
    assert traffic.events == []


@pytest.mark.parametrize("labels", [[0, 1, -100, 3], [0, 1, 2, 3]], ids=["some-ignored", "none"])
def test_cross_entropy_checks_its_labels_with_one_read(device1, labels):
    logits = xnn.asarray(np.zeros((4, 4)))
    target = xnn.asarray(np.array(labels))
    loss = losses.CrossEntropyLoss()
    loss(logits, target)  # warm-up
    with HostTraffic() as traffic:
        loss(logits, target)
    transfers = [e for e in traffic.events if e.kind == "to_device(CPU)"]
    assert len(transfers) == 1 and len(traffic.events) <= 2, _report(traffic.events, 1)
