"""Cross-backend parity: train the same seeded model on several backends and measure the drift.

Every backend starts from the same weights (xnn's host generator), sees the same batches in the
same order and the same dropout masks, so any difference comes from the arithmetic alone. The
report gives, per step and per parameter, the largest absolute difference from the reference
backend, the same relative to the parameter's largest magnitude (a normwise relative error,
which stays meaningful where single elements pass through zero), and where it occurred.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import datasets, losses, optim, random, tutorials
from ._checks import integer, is_labels, number
from .data import check_same_length
from .backend import (Backend, array_namespace, asarray, backend_of, resolve_backend, to_numpy,
                      use_backend, use_default_dtype)
from .extras import install_hint
from .nn.module import Module

__all__ = ["compare_backends", "assert_parity", "ParityReport", "ParamDiff", "TOLERANCES",
           "TUTORIALS"]

# Normwise relative tolerance after training, per dtype. float64 differences come from the
# order of floating-point sums inside each library's matmul and reductions (about 1e-16 per op)
# and grow slowly with the steps; float32 ones start near 1e-7 and grow faster.
TOLERANCES = {"float64": 1e-10, "float32": 1e-4}


@dataclass
class ParamDiff:
    """How far one parameter of one backend is from the reference after one step."""

    backend: str
    step: int
    name: str
    max_abs: float
    max_rel: float
    index: tuple[int, ...]
    reference: float
    value: float


@dataclass
class ParityReport:
    """Per-step, per-parameter differences from the reference backend, and every loss curve."""

    reference: str
    backends: list[str]
    dtype: str
    steps: int
    losses: dict[str, list[float]] = field(default_factory=dict)
    diffs: list[ParamDiff] = field(default_factory=list)

    def worst(self, backend: str | None = None, name: str | None = None) -> ParamDiff | None:
        """The entry with the largest relative difference (optionally of one backend/parameter)."""
        rows = [d for d in self.diffs if (backend is None or d.backend == backend)
                and (name is None or d.name == name)]
        return max(rows, key=lambda d: (d.max_rel, d.max_abs)) if rows else None

    @property
    def max_rel(self) -> float:
        return max((d.max_rel for d in self.diffs), default=0.0)

    def loss_rel_diff(self, backend: str) -> float:
        """Largest |loss - reference loss| / |reference loss| over the steps."""
        ref, other = self.losses[self.reference], self.losses[backend]
        return max((abs(a - b) / max(abs(a), 1e-300) for a, b in zip(ref, other)), default=0.0)

    def passed(self, rtol: float | None = None) -> bool:
        """Whether every parameter and loss stayed within ``rtol`` (default: TOLERANCES[dtype])."""
        tol = TOLERANCES[self.dtype] if rtol is None else rtol
        losses_ok = all(self.loss_rel_diff(b) <= tol for b in self.backends if b != self.reference)
        return self.max_rel <= tol and losses_ok

    def table(self, rtol: float | None = None) -> str:
        """The report as a text table: one row per backend and parameter (its worst step)."""
        tol = TOLERANCES[self.dtype] if rtol is None else rtol
        lines = [f"parity over {self.steps} steps in {self.dtype}, reference {self.reference}",
                 f"{'backend':<26} {'parameter':<14} {'max abs diff':>13} {'max rel diff':>13} "
                 f"{'step':>5}  worst element (reference -> value)"]
        names = list(dict.fromkeys(d.name for d in self.diffs))
        for b in self.backends:
            if b == self.reference:
                continue
            for name in names:
                w = self.worst(b, name)
                if w is not None:
                    lines.append(f"{b:<26} {name:<14} {w.max_abs:>13.3e} {w.max_rel:>13.3e} "
                                 f"{w.step:>5}  {list(w.index)} ({w.reference:.10g} -> "
                                 f"{w.value:.10g})")
            ref_loss, loss = self.losses[self.reference][-1], self.losses[b][-1]
            lines.append(f"{b:<26} {'loss':<14} final {loss:.10g} vs {ref_loss:.10g}, "
                         f"max rel diff {self.loss_rel_diff(b):.3e}")
        verdict = "PASS" if self.passed(tol) else "FAIL"
        lines.append(f"worst relative difference {self.max_rel:.3e}; tolerance {tol:g} "
                     f"({self.dtype}): {verdict}")
        return "\n".join(lines)

    __str__ = table


def _train_on(backend_name: str | Backend, build_model: Callable[[], Module], X: Any, y: Any, loss: Any,
              optimizer: Callable, steps: int, dtype: str, batch_size: int | None, seed: int,
              on_step: Callable[[int, list[tuple[str, Any]]], None]) -> list[float]:
    """Train on one backend; calls on_step(step, [(name, host array)]) after every update."""
    # this thread's dtype and generator only (set_default_dtype and seed would change every
    # thread's)
    with use_default_dtype(dtype), random.use_seed(seed), use_backend(backend_name):
        model = build_model()
        opt = optimizer(model.parameters())
        Xb, yb, size = training_arrays(X, y, dtype, batch_size)
        values = []
        for step, (Xe, ye, start, stop) in enumerate(
                shuffled_batches(Xb, yb, size, steps, seed), start=1):
            pred, backprop = model.forward(Xe[start:stop, ...])
            value, dpred = loss(pred, ye[start:stop, ...])
            backprop(dpred)
            opt.step()
            opt.zero_grad()
            values.append(value)
            on_step(step, [(k, to_numpy(p.value)) for k, p in model.named_parameters()])
        return [float(v) for v in to_numpy(backend_of(Xb).xp.stack(values))]


def training_arrays(X: Any, y: Any, dtype: str, batch_size: int | None) -> tuple[Any, Any, int]:
    """X and y as arrays of the active backend in ``dtype`` (1-D integer y of any integer
    dtype stays labels, as int64), and the batch size (None: every row in one batch)."""
    labels = is_labels(array_namespace(y), y)
    size = X.shape[0] if batch_size is None else batch_size
    # labels as int64 whatever integer dtype they came in: torch takes rows of no unsigned
    # dtype but uint8, so uint16 labels would fail on torch alone
    return asarray(X, dtype=dtype), asarray(y, dtype="int64" if labels else dtype), size


def shuffled_batches(X: Any, y: Any, size: int, steps: int,
                     seed: int) -> Iterator[tuple[Any, Any, int, int]]:
    """(X, y in the epoch's order, start, stop) of each of ``steps`` batches of ``size`` rows:
    each epoch a new permutation from ``seed``'s own generator (none for one full batch)."""
    xp, n = backend_of(X).xp, X.shape[0]
    order_rng, step = random.host_generator(seed), 0
    while step < steps:
        order = asarray(order_rng.permutation(n) if size < n else range(n), dtype="int64")
        Xe, ye = xp.take(X, order, axis=0), xp.take(y, order, axis=0)
        for start in range(0, n, size):
            if step == steps:
                return
            yield Xe, ye, start, min(start + size, n)
            step += 1


def compare_backends(build_model: Callable[[], Module], X: Any, y: Any, *, loss: Any,
                     optimizer: Callable, steps: int,
                     backends: Sequence[str | Backend] = ("numpy", "cupy"),
                     dtype: str = "float64",
                     batch_size: int | None = None, seed: int = 0) -> ParityReport:
    """Train ``build_model()`` for ``steps`` updates on each backend and report the drift.

    ``optimizer`` makes the optimizer from the parameters (``lambda ps: Adam(ps, lr=1e-3)``);
    ``X`` and ``y`` may live anywhere (they are copied onto each backend in ``dtype``; 1-D
    integer ``y`` stays labels). Backends are names, optionally with a device
    (``"array_api_strict:device1"``); the first is the reference.
    """
    if isinstance(backends, str) or isinstance(build_model, Module):
        what = ("backends must be a sequence of names, such as ('numpy', 'torch'), got str "
                f"{backends!r}" if isinstance(backends, str) else
                "build_model must be a function that builds a fresh model (lambda: "
                "nn.Sequential(...)), got a model: each backend trains its own")
        raise TypeError(f"compare_backends: {what}")
    if len(backends) < 2:
        raise ValueError(f"compare_backends: need at least two backends, got {list(backends)}")
    labels: list[str] = []
    for b in backends:  # a backend named again (numpy against itself) gets its own rows
        seen = sum(str(b) == label.split(" #")[0] for label in labels)
        labels.append(f"{b} #{seen + 1}" if seen else str(b))
    check_dtype("compare_backends", dtype)
    steps = integer("compare_backends", "steps", steps, low=1)
    seed = integer("compare_backends", "seed", seed, low=0)
    if batch_size is not None:
        batch_size = integer("compare_backends", "batch_size", batch_size, low=1)
    for backend in backends:  # each can run here, before the reference trains
        resolve_backend(backend)
    X, y = to_numpy(X), to_numpy(y)
    check_same_length("compare_backends", X, y)  # fit's check, before the reference trains
    report = ParityReport(labels[0], labels, dtype, steps)
    reference: dict[int, list[tuple[str, Any]]] = {}
    report.losses[labels[0]] = _train_on(backends[0], build_model, X, y, loss, optimizer, steps,
                                           dtype, batch_size, seed, reference.__setitem__)
    for backend, other in zip(backends[1:], labels[1:]):
        def compare(step: int, params: list[tuple[str, Any]], other: str = other) -> None:
            for (name, ref), (_, value) in zip(reference[step], params):
                max_abs, max_rel, index = normwise_difference(value, ref)
                report.diffs.append(ParamDiff(other, step, name, max_abs, max_rel, index,
                                              float(ref[index]), float(value[index])))

        report.losses[other] = _train_on(backend, build_model, X, y, loss, optimizer, steps, dtype,
                                         batch_size, seed, compare)
    return report


def check_dtype(owner: str, dtype: Any) -> None:
    """Raise ValueError unless ``dtype`` is one of TOLERANCES' (a parity run's float dtype)."""
    if dtype not in TOLERANCES:
        raise ValueError(f"{owner}: dtype must be one of {sorted(TOLERANCES)}, got {dtype!r}")


def normwise_difference(value: Any, ref: Any) -> tuple[float, float, tuple[int, ...]]:
    """The largest |value - ref| of two host arrays, the same relative to ref's largest
    magnitude (absolute where ref is all zeros), and the index where it occurs."""
    diff = np.abs(value - ref)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    scale = float(np.max(np.abs(ref)))
    max_abs = float(diff[index])
    return max_abs, max_abs / scale if scale > 0 else max_abs, index


def assert_parity(build_model: Callable[[], Module], X: Any, y: Any, *, rtol: float | None = None,
                  **kwargs: Any) -> ParityReport:
    """compare_backends(...), raising AssertionError with the report beyond ``rtol``."""
    if rtol is not None:
        rtol = number("assert_parity", "rtol", rtol, low=0.0)
    report = compare_backends(build_model, X, y, **kwargs)
    if not report.passed(rtol):
        raise AssertionError("backends disagree beyond tolerance\n" + report.table(rtol))
    return report


# --- the tutorial networks, ready for parity runs ------------------------------------------------

@dataclass
class Tutorial:
    """A network of the tutorials with its data, loss, optimizer and batch size."""

    build: Callable[[], Module]
    data: Callable[[], tuple[Any, Any]]
    loss: Callable[[], Any]
    optimizer: Callable[[list], Any]
    batch_size: int | None = None


def _host(pair: tuple[Any, Any]) -> tuple[Any, Any]:
    return to_numpy(pair[0]), to_numpy(pair[1])


def _arithmetic_data() -> tuple[Any, Any]:
    X, y = _host(datasets.arithmetic(2000, dtype="float64"))
    return (X - X.mean(0)) / X.std(0), (y - y.mean(0)) / y.std(0)


def _digits_data() -> tuple[Any, Any]:
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415 - optional, examples extra
    except ImportError as err:
        raise ImportError(f"the digits network needs scikit-learn: "
                          f"{install_hint('examples')}") from err
    d = load_digits()
    return d.data / 16.0, d.target.astype("int64")


_TUTORIALS = {
    "xor": Tutorial(tutorials.xor,
                    lambda: _host(datasets.xor(dtype="float64")), losses.MSELoss,
                    lambda ps: optim.SGD(ps, lr=2.0)),
    "linear": Tutorial(tutorials.linear,
                       lambda: _host(datasets.linear(n=200, dtype="float64")), losses.MSELoss,
                       lambda ps: optim.SGD(ps, lr=0.5)),
    "polynomial": Tutorial(tutorials.polynomial,
                           lambda: _host(datasets.polynomial(n=1000, dtype="float64")),
                           losses.MSELoss, lambda ps: optim.Adam(ps, lr=0.01)),
    "deep_mlp": Tutorial(tutorials.deep,
                         lambda: _host(datasets.circles(n=1000, dtype="float64")),
                         # a Sigmoid's output cannot leave [0, 1]: no per-step range check
                         lambda: losses.BCELoss(validate=False),
                         lambda ps: optim.Adam(ps, lr=0.01), 64),
    "arithmetic": Tutorial(tutorials.arithmetic,
                           _arithmetic_data, losses.MSELoss,
                           lambda ps: optim.Adam(ps, lr=1e-3), 64),
    "digits": Tutorial(tutorials.digits,
                       # digits' labels are 0-9 by construction: no per-step range check
                       _digits_data, lambda: losses.CrossEntropyLoss(validate=False),
                       lambda ps: optim.Adam(ps, lr=1e-3), 32),
}

TUTORIALS = tuple(_TUTORIALS)  # the names, in the order above


def tutorial(name: str) -> Tutorial:
    """One of TUTORIALS, by name."""
    if name not in _TUTORIALS:
        raise ValueError(f"unknown tutorial network {name!r}; expected one of {', '.join(TUTORIALS)}")
    return _TUTORIALS[name]


def compare_tutorial(name: str, *, backends: Sequence[str | Backend], steps: int = 100,
                     dtype: str = "float64", seed: int = 0) -> ParityReport:
    """compare_backends on one of the tutorial networks."""
    t = tutorial(name)
    X, y = t.data()
    return compare_backends(t.build, X, y, loss=t.loss(), optimizer=t.optimizer, steps=steps,
                            backends=backends, dtype=dtype, batch_size=t.batch_size, seed=seed)
