"""The benchmark harness runs, and its three implementations compute the same training (no timing).

The --backend cupy path runs here on CPU stand-ins: xnn on torch:cpu or array_api_strict,
torch on "cpu" (or "meta" to see where tensors go), a module named "cupy" that is NumPy, and
events that read the wall clock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import xnn

torch = pytest.importorskip("torch")
RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
sys.path.insert(0, str(RUN.parent))

import run as bench  # noqa: E402
import workloads as W  # noqa: E402

NO_CUPY = "cupy" not in xnn.available_backends()


def _tiny() -> dict[str, W.Workload]:
    suite = W.workloads(quick=True)
    return {
        "xor": replace(suite["xor"], epochs=30),
        "polynomial": replace(suite["polynomial"], epochs=10),
        "arithmetic": replace(suite["arithmetic"], epochs=1),   # 110 shuffled batches
        "mlp-large": replace(suite["mlp-large"], sizes=(784, 32, 32, 10),
                             data=W._mlp_data(256 * 3)),
    }


@pytest.mark.parametrize("name", ["xor", "polynomial", "arithmetic", "mlp-large"])
def test_three_implementations_train_to_the_same_loss(name):
    w, X, y, weights = W.load(_tiny()[name])
    orders = W.batch_orders(w)
    losses = {}
    for label, cls in {**W.IMPLEMENTATIONS, **W.EXTRAS}.items():
        trainer = cls(w, X, y, weights, orders)
        trainer.reset()
        losses[label] = trainer.run()
        trainer.reset()  # a second run from the same start repeats the first exactly
        assert trainer.run() == losses[label], label
    reference = losses["numpy"]
    for label, value in losses.items():
        if label == "xnn.fit":  # its own shuffle order; the same schedule otherwise
            assert np.isfinite(value)
            continue
        assert value == pytest.approx(reference, rel=1e-4), (label, losses)


@pytest.mark.parametrize("name", ["xor", "polynomial", "arithmetic", "mlp-large"])
def test_jax_rows_train_to_the_numpy_loss(name):
    """--jax: xnn on jax (eager and compiled) and the hand-written jax.jit loop train the
    same network; the compiled row repeats itself from the same start."""
    pytest.importorskip("jax")
    import jax_workloads as JW  # noqa: PLC0415

    w, X, y, weights = W.load(_tiny()[name])
    orders = W.batch_orders(w)
    numpy = W.NumpyTrainer(w, X, y, weights, orders)
    numpy.reset()
    reference = numpy.run()
    for label, make in JW.ROWS.items():
        trainer = make(w, X, y, weights, orders)
        trainer.reset()
        value = trainer.run()
        trainer.reset()
        assert trainer.run() == value, label
        if label == "xnn on jax, compiled" and w.steps_per_epoch() > 1:
            assert np.isfinite(value)  # fit logs the epoch's mean loss, in its own order
            continue
        assert value == pytest.approx(reference, rel=1e-3), (label, value, reference)
    lines = bench._jax_lines([{"workload": name, "seconds": {
        "xnn": 1.0, "xnn on jax": 2.0, "xnn on jax, compiled": 0.4, "jax.jit": 0.5}}])
    assert "2.50x" in lines[-1] and "0.80 (<= 1.1: ok)" in lines[-1]


def test_flops_count_leaves_out_the_first_layers_input_gradient():
    w = replace(W.workloads()["mlp-large"], n=256)
    forward = 2 * 256 * (784 * 1024 + 1024 * 1024 + 1024 * 10)
    assert w.flops_per_step() == 3 * forward - 2 * 256 * 784 * 1024


def test_report_renders_a_table_with_targets():
    w = _tiny()["xor"]
    row = bench.bench_workload(w, repeats=1, extras=False)
    results = {"command": "python benchmarks/run.py --test", "repeats": 1,
               "machine": {**bench.machine(1), "loadavg_end": 0.0}, "workloads": [row]}
    text = bench.report(results)
    assert "| xor" in text and "xnn/numpy" in text and "(<= 1.3:" in text


def test_memory_minimum_counts_parameters_three_times_plus_activations():
    w = replace(W.workloads()["mlp-large"], n=256)
    params = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert bench.memory_minimum(w)["total"] == 4 * (3 * params + 256 * (1024 + 1024 + 10))


# --- the --backend cupy path, on CPU stand-ins ---------------------------------------------------

@pytest.mark.skipif(not NO_CUPY, reason="cupy runs here")
def test_backend_cupy_without_a_gpu_exits_with_one_line_naming_cupy():
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--backend", "cupy", "--quick"])
    message = exit_.value.code
    assert isinstance(message, str) and "cupy" in message  # not argparse's status 2
    done = subprocess.run([sys.executable, str(RUN), "--backend", "cupy", "--quick"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1] == message


def _fake_cupy() -> types.ModuleType:
    """A module named "cupy" that is NumPy: the hand-written row as it is built on a GPU."""
    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)
    return fake


@pytest.mark.parametrize("name", ["xor", "polynomial", "arithmetic", "mlp-large"])
def test_device_rows_train_to_the_numpy_loss(name):
    w, X, y, weights = W.load(_tiny()[name])
    orders = W.batch_orders(w)
    reference = W.NumpyTrainer(w, X, y, weights, orders)
    reference.reset()
    expected = reference.run()
    rows = W.device_implementations("torch", _fake_cupy(), "cpu", extras=True)
    assert list(rows) == ["xnn", "cupy", "torch", "xnn, input_grad=True", "xnn.fit"]
    for label, make in rows.items():
        trainer = make(w, X, y, weights, orders)
        trainer.reset()
        loss = trainer.run()
        if label.startswith("xnn"):  # data and weights on the backend asked for
            held = [trainer.X, trainer.y, *(p.value for p in trainer.model.parameters())]
            assert all(torch.is_tensor(a) for a in held), label
        if label == "xnn.fit":  # its own shuffle order; the same schedule otherwise
            assert np.isfinite(loss)
            continue
        assert loss == pytest.approx(expected, rel=1e-4), label


def test_torch_rows_put_the_data_and_the_model_on_the_device():
    w, X, y, weights = W.load(_tiny()["arithmetic"])
    trainer = W.TorchTrainer(w, X, y, weights, W.batch_orders(w), device="meta")
    trainer.reset()
    devices = {t.device.type for t in [trainer.X, trainer.y, *trainer.orders,
                                       *trainer.model.parameters()]}
    assert devices == {"meta"}


def test_hand_written_network_calls_numpy_only_through_its_array_module():
    source = W.inspect.getsource(W.NumpyTrainer)
    assert re.findall(r"\bnp\.(?!ndarray\b)\w+", source) == []  # np.exp would not run on cupy


@pytest.mark.parametrize("name", ["xor", "polynomial", "arithmetic", "mlp-large"])
def test_device_xnn_row_reads_back_only_its_final_loss_and_copies_nothing_in(name, monkeypatch):
    """On a GPU every read-back is a sync and every host array a copy: inside its steps a run
    may read only its final loss. array_api_strict stands in for the device. Shuffling's
    take_rows may check an epoch's indices (once per epoch, not per step); the per-step label
    check of CrossEntropyLoss would read at every step, which is why the device rows skip it."""
    xps = pytest.importorskip("array_api_strict")
    Array = type(xps.asarray(0))
    w, X, y, weights = W.load(_tiny()[name])
    orders = W.batch_orders(w)
    events: list[tuple[str, bool]] = []   # (what, whether take_rows made it)

    def recording(kind, original, when=lambda *args: True):
        def wrapper(*args, **kwargs):
            if when(*args):
                shuffling = any(f.name == "take_rows" for f in traceback.extract_stack())
                events.append((kind, shuffling))
            return original(*args, **kwargs)
        return wrapper

    def run_and_record(trainer) -> list[tuple[str, bool]]:
        trainer.reset()
        events.clear()
        with monkeypatch.context() as m:
            for read in ("__bool__", "__int__", "__float__", "__index__", "__complex__",
                         "__array__", "__dlpack__", "to_device"):
                m.setattr(Array, read, recording(read, getattr(Array, read)))
            m.setattr(xps, "asarray", recording("asarray from the host", xps.asarray,
                                                lambda obj, *_: not isinstance(obj, Array)))
            trainer.run()
        return list(events)

    make = W.device_implementations("array_api_strict", np, None)["xnn"]
    seen = run_and_record(make(w, X, y, weights, orders))
    assert [kind for kind, shuffling in seen if not shuffling] == ["__float__"], seen
    by_shuffle = [kind for kind, shuffling in seen if shuffling]
    assert not by_shuffle or (w.shuffle and len(by_shuffle) < w.steps()), seen
    if w.loss == "cross_entropy":
        checked = W.XnnTrainer(w, X, y, weights, orders, backend="array_api_strict")
        assert len(run_and_record(checked)) > w.steps()


class CountingEvent(bench.WallEvent):
    records = 0

    def record(self) -> None:
        CountingEvent.records += 1
        super().record()


def _gpu_shaped_target() -> bench.Target:
    """The cupy target's shape (rows "xnn", "cupy", "torch", its machine info) on the CPU."""
    timer = bench.event_timer(CountingEvent, lambda: None, bench.WallEvent.elapsed_ms)
    info = {"gpu": "NVIDIA H200", "gpu_memory_gib": 139.8, "cupy": "14.2.0",
            "cuda_runtime": "13.0", "cuda_driver": "13.0", "torch_cuda": "13.0",
            "timing": "CUDA events around each run", "memory": "CuPy's memory pool"}
    return bench.Target("cupy", "torch", _fake_cupy(), "cpu", timer, timer,
                        bench._traced_peak_bytes, bench._traced_peak_bytes, info)


def test_gpu_path_times_every_run_with_events_and_its_report_renders():
    target = _gpu_shaped_target()
    tiny = _tiny()
    CountingEvent.records = 0
    disturbed = bench.disturbed_runs
    rows = [bench.bench_workload(tiny[n], repeats=2, extras=True, target=target)
            for n in ("xor", "mlp-large")]
    assert CountingEvent.records == 2 * 2 * 5 * 2  # two events, two repeats, 5 rows, 2 workloads
    assert bench.disturbed_runs == disturbed          # the CPU's re-measuring stays off
    assert rows[0]["targets"] is None and set(rows[0]) >= {"xnn/cupy", "xnn/torch"}
    points = {"xnn": 2e-3, "cupy": 1e-3, "torch": 4e-3}
    results = {
        "command": "python benchmarks/run.py --backend cupy --test", "backend": "cupy",
        "implementations": list(target.implementations(extras=False)), "repeats": 2,
        "machine": {**bench.machine(1, target), "loadavg_end": 0.0}, "workloads": rows,
        "matmul_peak": {"step_gemms": 40_000.0, "square_2048": 50_000.0},
        "memory": bench.bench_device_memory(tiny["mlp-large"], target),
        "scaling": {"batch": {"network": "784-1024-1024-10", "points": {1: points, 4: points}},
                    "width": {"network": "w-w-w-10, batch 64", "points": {16: points}}},
    }
    text = bench.report(results)
    assert "machine: GPU NVIDIA H200, 140 GiB; cupy 14.2.0, CUDA runtime 13.0" in text
    head = next(line for line in text.splitlines() if line.startswith("| workload"))
    assert [c.strip() for c in head.strip("| ").split("|")][:7] == [
        "workload", "steps", "xnn", "cupy", "torch", "xnn/cupy", "xnn/torch"]
    assert "cupy.matmul float32 peak" in text and "peak device memory" in text
    assert "| 1          | 2.000 | 1.000 | 4.000 | 2.00     | 0.50      |" in text
    assert "ok" not in text and "MISS" not in text and "RSS" not in text  # no CPU targets
    assert set(results["memory"]["implementations"]) == {"xnn", "cupy", "torch"}


class _ScriptedTarget:
    """A CPU-shaped target whose runs take scripted seconds: ``seconds[name]`` in turn."""

    def __init__(self, seconds: dict[str, list[float]]) -> None:
        self.seconds = {name: iter(values) for name, values in seconds.items()}

    def implementations(self, extras: bool) -> dict:
        return {name: W.IMPLEMENTATIONS[name] for name in ("xnn", "numpy")}

    def time(self, name: str, trainer) -> tuple[float, float]:
        return next(self.seconds[name]), 0.0


def test_a_scaling_ratio_is_the_median_of_rounds_not_the_fastest_of_each_side():
    # a small step (under 1 ms) is measured on SETS fresh sets of 3 rounds; one round caught
    # the hand-written side in a fast moment (0.5), which the fastest-of-each ratio would report
    rounds = 3 * bench.SETS
    target = _ScriptedTarget({"xnn": [1.2] * rounds,
                              "numpy": [0.5] + [1.0] * (rounds - 1)})
    best, ratios = bench._step_time((4, 4, 4, 2), 8, 3, target)
    steps = 200  # the step count a tiny network gets (the most)
    assert best == pytest.approx({"xnn": 1.2 / steps, "numpy": 0.5 / steps})
    assert ratios == pytest.approx({"xnn/numpy": 1.2})
    assert next(target.seconds["xnn"], None) is None  # every set's every round ran
    part = {"points": {16: best}, "ratios": {16: ratios}}
    assert bench._ratio(part, 16, "numpy") == pytest.approx(1.2)
    assert bench._ratio({"points": {16: best}}, 16, "numpy") == pytest.approx(2.4)  # old results


@pytest.mark.parametrize("args", [["--repeats", "-2"], ["--repeats", "0"], ["--threads", "0"],
                                  ["--threads", "-1"]])
def test_run_refuses_a_count_below_one_as_a_usage_error(capsys, args):
    with pytest.raises(SystemExit) as stop:
        bench.main(args)
    assert stop.value.code == 2
    assert f"argument {args[0]}: expected an int of at least 1, got '{args[1]}'" in \
        capsys.readouterr().err
