"""xnn against hand-written NumPy and PyTorch eager on the CPU: one command prints the table.

    python benchmarks/run.py                 # the full suite, memory and scaling (~7 min)
    python benchmarks/run.py --quick         # shorter schedules, fewer repeats (~1 min)
    python benchmarks/run.py --workloads xor,mlp-large --no-scaling
    python benchmarks/run.py --backend cupy --quick   # on a GPU: xnn on CuPy, CuPy, torch CUDA

Each workload is trained by the three implementations in ``workloads.py`` from the same
initial weights; the timed runs are interleaved (the order rotates every repeat) and the table
shows medians over the repeats after a warm-up. Results go to ``--out`` (results.json,
results.md, scaling.png). See docs/performance.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as W  # noqa: E402 - after the path tweak
import xnn  # noqa: E402
from xnn.cli import positive_int  # noqa: E402

# (xnn / numpy at most, xnn / torch at most); the targets
TARGETS = {
    "xor": (1.3, 1.0),
    "polynomial": (1.1, 1.0),
    "arithmetic": (1.1, 1.0),
    "mlp-large": (1.05, 1.1),
}
# xnn on jax, compiled: at least this many times faster than xnn on NumPy, and at most this
# many times the hand-written jax.jit loop's time (issue 26)
JAX_SPEEDUP_TARGETS = {"xor": 2.0, "polynomial": 2.0, "arithmetic": 2.0, "mlp-large": 1.3}
JAX_ANCHOR_TARGET = 1.1
PEAK_FRACTION_TARGET = 0.8
MEMORY_TARGET = 1.3


# --- the machine ---------------------------------------------------------------------------------

def blas_info() -> dict[str, Any]:
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415 - optional
    except ImportError:
        return {"blas": "unknown (pip install threadpoolctl)", "threads": None}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {"blas": f"{pool.get('internal_api')} {pool.get('version')} "
                            f"({pool.get('architecture')} kernels)",
                    "threads": pool.get("num_threads")}
    return {"blas": "none found", "threads": None}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int, target: Target | None = None) -> dict[str, Any]:
    """The host, its BLAS and torch; a GPU target adds its device and libraries."""
    import torch  # noqa: PLC0415

    info = blas_info()
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "numpy_blas": info["blas"], "numpy_blas_threads": info["threads"],
        "torch": torch.__version__, "torch_threads": threads,
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                           "OMP_NUM_THREADS") if k in os.environ},
        "loadavg_start": os.getloadavg()[0],
        **(target.info if target is not None else {}),
    }


# --- timing --------------------------------------------------------------------------------------

def _busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy so far (Linux), else None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return r.ru_utime + r.ru_stime


DISTURBED = 0.1   # share of the machine's CPU time used by others that marks a run as disturbed
RETRIES = 2       # a disturbed run is measured again, at most this many more times
# before each run the main thread spins this long: a BLAS library's worker threads (OpenBLAS:
# 2^28 cycles, ~0.1 s; OpenMP's) keep spinning after the last call of the run before, on the
# cores the next run needs. Measured on mlp-large right after xnn on NumPy: xnn on jax,
# compiled, 308 ms without it against 268 ms with OPENBLAS_THREAD_TIMEOUT=4 (jax.jit: 238,
# 235). Spinning, not sleeping: an idle vCPU wakes up slow and the next run would pay.
SETTLE = 0.25
disturbed_runs = 0


# fresh sets of data and trainers for a scaling point whose step is under a millisecond
SETS = 5


def _settle() -> None:
    """Spin SETTLE seconds: the last run's BLAS threads stop spinning, this vCPU stays awake."""
    end = time.perf_counter() + SETTLE
    while time.perf_counter() < end:
        pass


def timed(trainer: Any) -> tuple[float, float]:
    """Seconds of one whole training from the initial weights, and its final loss.

    The machine may be shared: when other processes used more than DISTURBED of its CPU time
    during the run (read from /proc/stat against this process's own CPU time), the run is
    measured again, up to RETRIES times, and the least disturbed one is kept. This holds even
    for one-threaded runs: a vCPU's neighbour may share its physical core and caches.
    """
    global disturbed_runs
    best = None
    for _ in range(1 + RETRIES):
        trainer.reset()
        gc.collect()
        _settle()
        busy0, own0 = _busy_seconds(), _own_seconds()
        t0 = time.perf_counter()
        loss = trainer.run()
        seconds = time.perf_counter() - t0
        if busy0 is None:
            return seconds, loss
        foreign = (_busy_seconds() - busy0) - (_own_seconds() - own0)
        cores = os.cpu_count() or 1
        share = max(foreign, 0.0) / (seconds * cores)
        if best is None or share < best[0]:
            best = (share, seconds, loss)
        if share <= DISTURBED:
            break
        disturbed_runs += 1
    return best[1], best[2]


# --- where the rows run: the CPU or a GPU ---------------------------------------------------------

def event_timer(event: Callable, synchronize: Callable, elapsed_ms: Callable) -> Callable:
    """A timer ``fn -> (seconds, fn())`` that reads two CUDA events recorded around ``fn()``.

    The device is idle when the first is recorded (``synchronize``: what ``reset()`` queued is
    not part of the run), so the time between the two is the whole run as its user waits for
    it, the host's launch overhead included. A training run ends in ``float(loss)``, which
    waits for the device; the second event's ``synchronize`` covers any ``fn`` that does not.
    """
    def time_it(fn: Callable) -> tuple[float, Any]:
        start, end = event(), event()
        synchronize()
        start.record()
        result = fn()
        end.record()
        end.synchronize()
        return elapsed_ms(start, end) / 1e3, result
    return time_it


class WallEvent:
    """A CUDA event's stand-in on the CPU (--gpu-standin): record() reads the wall clock."""

    def record(self) -> None:
        self.at = time.perf_counter()

    def synchronize(self) -> None:
        pass

    @staticmethod
    def elapsed_ms(start: WallEvent, end: WallEvent) -> float:
        return (end.at - start.at) * 1e3


@dataclass(frozen=True)
class Target:
    """Where the rows run, and how they are timed and their memory measured.

    The CPU (no ``timer``): xnn on numpy, the hand-written NumPy network and torch on the CPU,
    wall-clock seconds with disturbed runs measured again (``timed``), peak RSS in a subprocess.
    A GPU: xnn on ``xnn_backend``, the hand-written network on the array module ``hand``, torch
    on ``torch_device`` (None: no torch row). ``timer`` times the xnn and hand-written rows and
    ``torch_timer`` the torch row (each library's CUDA events); ``meter`` and ``torch_meter``
    give the bytes of device memory a function needed at its peak.
    """

    backend: str                              # what --backend named
    xnn_backend: str = "numpy"
    hand: Any = np
    torch_device: str | None = "cpu"
    timer: Callable | None = None
    torch_timer: Callable | None = None
    meter: Callable | None = None
    torch_meter: Callable | None = None
    info: dict[str, Any] = field(default_factory=dict)   # added to machine()
    more: dict[str, Callable] = field(default_factory=dict)  # rows after the extras (--jax)

    @property
    def on_device(self) -> bool:
        return self.timer is not None

    def implementations(self, extras: bool) -> dict[str, Callable]:
        """Row name -> trainer maker, the three implementations first."""
        if not self.on_device:
            return dict(W.IMPLEMENTATIONS, **(W.EXTRAS if extras else {}), **self.more)
        return dict(W.device_implementations(self.xnn_backend, self.hand, self.torch_device,
                                             extras), **self.more)

    def time(self, name: str, trainer: Any) -> tuple[float, float]:
        """Seconds of one whole training from the initial weights, and its final loss."""
        if not self.on_device:
            return timed(trainer)
        trainer.reset()
        gc.collect()
        return (self.torch_timer if name == "torch" else self.timer)(trainer.run)

    def peak_bytes(self, name: str, fn: Callable) -> int:
        return (self.torch_meter if name == "torch" else self.meter)(fn)


CPU = Target("numpy")


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{v % 1000 // 10}"   # CUDA encodes 12.4 as 12040


def cupy_target() -> Target:
    """xnn on CuPy, the hand-written network on CuPy, torch on CUDA (no torch row, with a
    warning, when torch sees no GPU). xnn.BackendUnavailableError when CuPy cannot run here."""
    with xnn.use_backend("cupy"):  # the error says what is missing: cupy, the driver, a GPU
        pass
    import cupy  # noqa: PLC0415
    import torch  # noqa: PLC0415

    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    name = props["name"]
    info = {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "gpu_memory_gib": props["totalGlobalMem"] / 2**30, "cupy": cupy.__version__,
            "cuda_runtime": _cuda_version(runtime.runtimeGetVersion()),
            "cuda_driver": _cuda_version(runtime.driverGetVersion()),
            "torch_cuda": torch.version.cuda,
            "timing": "CUDA events around each run (CuPy's for the xnn and cupy rows, torch's "
                      "for torch)",
            "memory": "cupy rows: bytes CuPy's memory pool took from the device; torch: "
                      "torch.cuda.max_memory_allocated"}
    cupy_timer = event_timer(cupy.cuda.Event, runtime.deviceSynchronize,
                             cupy.cuda.get_elapsed_time)
    if not torch.cuda.is_available():
        print(f"warning: torch {torch.__version__} sees no CUDA GPU: the table has no torch row",
              file=sys.stderr)
        return Target("cupy", "cupy", cupy, None, cupy_timer, None, _cupy_peak_bytes, None, info)
    torch_timer = event_timer(lambda: torch.cuda.Event(enable_timing=True),
                              torch.cuda.synchronize, lambda a, b: a.elapsed_time(b))
    return Target("cupy", "cupy", cupy, "cuda", cupy_timer, torch_timer,
                  _cupy_peak_bytes, _torch_cuda_peak_bytes, info)


def standin_target() -> Target:
    """The --backend cupy code path run on the CPU, to check it without a GPU: xnn on torch:cpu,
    the hand-written network on NumPy, torch on the CPU, the wall clock in place of CUDA
    events and tracemalloc in place of device memory. Its numbers mean nothing."""
    timer = event_timer(WallEvent, lambda: None, WallEvent.elapsed_ms)
    info = {"gpu": "none (CPU stand-in: xnn on torch:cpu, numpy, torch on cpu)",
            "timing": "wall-clock stand-ins for CUDA events",
            "memory": "tracemalloc stand-in (host memory that Python allocators trace)"}
    return Target("cupy (CPU stand-in)", "torch", np, "cpu", timer, timer,
                  _traced_peak_bytes, _traced_peak_bytes, info)


def bench_workload(w: W.Workload, repeats: int, extras: bool,
                   target: Target = CPU) -> dict[str, Any]:
    w, X, y, weights = W.load(w)
    orders = W.batch_orders(w)
    trainers = {name: make(w, X, y, weights, orders)
                for name, make in target.implementations(extras).items()}
    for t in trainers.values():  # warm-up: caches, BLAS buffers, first-call paths, GPU kernels
        t.reset()
        t.run(max_steps=min(w.steps(), 200))
    names = list(trainers)
    times: dict[str, list[float]] = {n: [] for n in names}
    losses: dict[str, float] = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            seconds, losses[name] = target.time(name, trainers[name])
            times[name].append(seconds)
    med = {n: statistics.median(v) for n, v in times.items()}
    steps = w.steps()
    row = {
        "workload": w.name, "network": "-".join(map(str, w.sizes)), "steps": steps,
        "batch": w.batch_size or w.n, "optimizer": w.optimizer,
        "seconds": med, "all_seconds": times, "us_per_step": {n: 1e6 * s / steps for n, s in med.items()},
        "final_loss": losses,
        **{f"xnn/{ref}": med["xnn"] / med[ref] for ref in _references(target)},
        "targets": None if target.on_device else TARGETS.get(w.name),  # CPU targets only
    }
    if w.name == "mlp-large":
        flops = w.flops_per_step() * steps
        row["samples_per_s"] = {n: w.n * w.epochs / s for n, s in med.items()}
        row["gflops"] = {n: flops / s / 1e9 for n, s in med.items()}
    return row


def _references(target: Target) -> list[str]:
    """The rows xnn is compared with: the hand-written one, then torch where it runs."""
    return [target.hand.__name__] + (["torch"] if target.torch_device is not None else [])


def _wall(fn: Callable) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def matmul_peak(w: W.Workload, repeats: int, xp: Any = np,
                timer: Callable = _wall) -> dict[str, float]:
    """GFLOP/s of ``xp.matmul`` (float32: numpy's, or cupy's timed by CUDA events) on the GEMMs
    of one mlp-large step, back to back, and on a 2048^3 product, medians over ``repeats``."""
    g = np.random.default_rng(0)
    b, sizes = w.batch_size, w.sizes
    pairs = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = xp.asarray(g.standard_normal((b, n_in), dtype=np.float32))
        wt = xp.asarray(g.standard_normal((n_in, n_out), dtype=np.float32))
        dy = xp.asarray(g.standard_normal((b, n_out), dtype=np.float32))
        pairs += [(x, wt), (x.T, dy)]                 # forward, weight gradient
        if i > 0:
            pairs.append((dy, wt.T))                  # input gradient
    flops = sum(2.0 * a.shape[0] * a.shape[1] * c.shape[1] for a, c in pairs)

    def step_gemms() -> None:
        for a, c in pairs:
            a @ c

    def five(fn: Callable) -> None:
        for _ in range(5):
            fn()

    A = xp.asarray(g.standard_normal((2048, 2048), dtype=np.float32))
    result = {}
    for name, fn, f in (("step_gemms", step_gemms, flops),
                        ("square_2048", lambda: A @ A, 2.0 * 2048 ** 3)):
        fn()
        runs = [timer(lambda: five(fn))[0] / 5 for _ in range(repeats)]
        result[name] = f / statistics.median(runs) / 1e9
    return result


# --- peak memory (one subprocess per implementation) ---------------------------------------------

def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) * 1024
    return out


def memory_child(impl: str, quick: bool, threads: int) -> dict[str, Any]:
    """Run inside a fresh interpreter: peak RSS of mlp-large training above the baseline (the
    interpreter with the libraries imported and the data made in the library's arrays), and
    for the numpy-based implementations the tracemalloc peak of the training alone (model,
    optimizer, four steps)."""
    import tracemalloc  # noqa: PLC0415

    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    w, X, y, weights = W.load(W.workloads(quick)["mlp-large"])
    orders = W.batch_orders(w)
    # the BLAS libraries' own work buffers belong to the baseline: touch them with GEMMs of the
    # workload's sizes (forward and weight-gradient shapes) before measuring
    a, b = np.ones((w.batch_size, 1024), np.float32), np.ones((1024, 1024), np.float32)
    a @ b, a.T @ a
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta @ tb, ta.T @ ta
    del a, b, ta, tb
    trainer = {**W.IMPLEMENTATIONS, **W.EXTRAS}[impl](w, X, y, weights, orders)  # data only
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")   # reset VmHWM to the current RSS
    baseline = _status()["VmRSS"]
    tracemalloc.start()
    trainer.reset()                                 # the model and the optimizer
    trainer.run(max_steps=4)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _status()["VmHWM"]
    return {"impl": impl, "baseline_rss": baseline, "peak_rss": peak,
            "rss_delta": peak - baseline, "traced_peak": traced if impl != "torch" else None}


def memory_minimum(w: W.Workload) -> dict[str, float]:
    """Bytes that training cannot do without: parameters, gradients, the momentum buffers, and
    the activations one batch's backward needs (each hidden layer's output and the logits)."""
    params = sum(i * o + o for i, o in zip(w.sizes[:-1], w.sizes[1:]))
    activations = w.batch_size * sum(w.sizes[1:])
    return {"parameters": 4.0 * params, "gradients": 4.0 * params, "optimizer": 4.0 * params,
            "activations": 4.0 * activations, "total": 4.0 * (3 * params + activations)}


def bench_memory(quick: bool, threads: int) -> dict[str, Any]:
    w = W.load(W.workloads(quick)["mlp-large"])[0]
    minimum = memory_minimum(w)
    rows = {}
    for impl in W.IMPLEMENTATIONS:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", impl,
               "--threads", str(threads)] + (["--quick"] if quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        rows[impl]["rss_ratio"] = rows[impl]["rss_delta"] / minimum["total"]
        traced = rows[impl]["traced_peak"]
        rows[impl]["traced_ratio"] = None if traced is None else traced / minimum["total"]
    return {"minimum": minimum, "implementations": rows}


# --- peak device memory (in this process: a device allocator's count, not the host's RSS) -------

def _cupy_peak_bytes(fn: Callable) -> int:
    """Bytes CuPy's memory pool took from the device while ``fn()`` ran. The pool keeps what is
    freed and hands it out again, so after freeing its idle blocks first, what it adds is the
    peak of ``fn`` (rounded to 512-byte blocks, plus any blocks too small to reuse)."""
    import cupy  # noqa: PLC0415

    pool = cupy.get_default_memory_pool()
    gc.collect()
    cupy.cuda.runtime.deviceSynchronize()
    pool.free_all_blocks()
    baseline = pool.total_bytes()
    fn()
    cupy.cuda.runtime.deviceSynchronize()
    return pool.total_bytes() - baseline


def _torch_cuda_peak_bytes(fn: Callable) -> int:
    """Peak bytes of live CUDA tensors while ``fn()`` ran, above those alive before it."""
    import torch  # noqa: PLC0415

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - baseline


def _traced_peak_bytes(fn: Callable) -> int:
    """The CPU stand-in of a device meter: tracemalloc's peak while ``fn()`` ran."""
    import tracemalloc  # noqa: PLC0415

    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_device_memory(w: W.Workload, target: Target) -> dict[str, Any]:
    """Peak device memory of training ``w`` (mlp-large) by each implementation: with its data
    already on the device, the model, the optimizer and four steps, as the CPU's counts."""
    w, X, y, weights = W.load(w)
    orders = W.batch_orders(w)
    minimum = memory_minimum(w)
    rows = {}
    for name, make in target.implementations(extras=False).items():
        trainer = make(w, X, y, weights, orders)             # the data: part of the baseline

        def train(trainer: Any = trainer) -> None:
            trainer.reset()                                   # the model and the optimizer
            trainer.run(max_steps=4)

        peak = target.peak_bytes(name, train)
        rows[name] = {"peak": peak, "ratio": peak / minimum["total"]}
        del trainer, train  # free this implementation's device memory before the next
    return {"device": True, "measured": target.info.get("memory", ""), "minimum": minimum,
            "implementations": rows}


# --- scaling -------------------------------------------------------------------------------------

BATCHES = (1, 4, 16, 64, 256, 1024, 4096)
WIDTHS = (16, 64, 256, 1024, 4096)


def _step_time(sizes: tuple[int, ...], batch: int, repeats: int,
               target: Target = CPU) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per step of each implementation on a ReLU MLP with cross-entropy and SGD with
    momentum (the fastest of ``repeats`` interleaved runs of enough steps to last ~0.1 s), and
    xnn's ratio to each other implementation (see below).

    The ratio is taken per round (each implementation once, back to back), and the median of
    the rounds is kept: a fastest-of-N on each side apart can pair a moment when this shared
    machine ran fast for one with a slow one for the other. Where a step is shorter than a
    millisecond the whole measurement is made on ``SETS`` fresh sets of data and trainers:
    there, where the arrays happen to lie in memory moves one set's ratio by up to 10-30%
    (width 16: 1.10 to 1.28, once 1.57, over 30 sets of the same code)."""
    mults = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    # seconds, roughly: the GEMMs at ~30 GFLOP/s, the update streaming the parameters, overhead
    estimate = 6 * batch * mults / 3e10 + mults * 2e-9 + 1e-4
    steps = int(min(max(0.1 / estimate, 3), 200))
    times: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for _ in range(SETS if estimate < 1e-3 else 1):
        w = W.Workload("scaling", sizes, "relu", "none", "cross_entropy", "sgd_momentum", 1e-3,
                       epochs=1, batch_size=batch, shuffle=False,
                       data=W._mlp_data(batch * steps, sizes[0], sizes[-1]))
        w, X, y, weights = W.load(w)
        orders = W.batch_orders(w)
        trainers = {n: make(w, X, y, weights, orders)
                    for n, make in target.implementations(extras=False).items()}
        for t in trainers.values():
            t.reset()
            t.run(max_steps=2)
        names = list(trainers)
        for r in range(repeats):
            took = {name: target.time(name, trainers[name])[0] / steps
                    for name in names[r % len(names):] + names[:r % len(names)]}
            for name, seconds in took.items():
                times.setdefault(name, []).append(seconds)
            for name in names:
                if name != "xnn":
                    ratios.setdefault(f"xnn/{name}", []).append(took["xnn"] / took[name])
        del trainers
    return ({n: min(v) for n, v in times.items()},
            {key: statistics.median(v) for key, v in ratios.items()})


def bench_scaling(quick: bool, repeats: int, target: Target = CPU) -> dict[str, Any]:
    batches = BATCHES[::2] if quick else BATCHES
    widths = WIDTHS[::2] if quick else WIDTHS
    by_batch = {b: _step_time((784, 1024, 1024, 10), b, repeats, target) for b in batches}
    by_width = {d: _step_time((d, d, d, 10), 64, repeats, target) for d in widths}
    return {"batch": {"network": "784-1024-1024-10",
                      "points": {b: best for b, (best, _) in by_batch.items()},
                      "ratios": {b: paired for b, (_, paired) in by_batch.items()}},
            "width": {"network": "w-w-w-10, batch 64",
                      "points": {d: best for d, (best, _) in by_width.items()},
                      "ratios": {d: paired for d, (_, paired) in by_width.items()}}}


def _ratio(scaling_part: dict[str, Any], size: Any, other: str) -> float:
    """xnn's step time over ``other``'s at ``size``: the median of the rounds' ratios (results
    from before they were recorded: the fastest times' ratio)."""
    ratios = scaling_part.get("ratios", {}).get(size)
    if ratios and f"xnn/{other}" in ratios:
        return ratios[f"xnn/{other}"]
    point = scaling_part["points"][size]
    return point["xnn"] / point[other]


def overhead_bound_until(points: dict[int, dict[str, float]], impl: str) -> int | None:
    """The largest size whose step time is still under twice the smallest size's: below it the
    step costs about the same whatever the size (per-call overhead dominates)."""
    sizes = sorted(points)
    floor = points[sizes[0]][impl]
    last = None
    for s in sizes:
        if points[s][impl] < 2 * floor:
            last = s
    return last


def plot_scaling(scaling: dict[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col",
                             gridspec_kw={"height_ratios": [2, 1]})
    names = list(next(iter(scaling["batch"]["points"].values())))  # xnn, hand-written, torch
    styles = dict(zip(names, (("C0", "o"), ("C2", "s"), ("C3", "^"))))
    for col, (key, xlabel) in enumerate((("batch", "batch size"), ("width", "width w"))):
        points = scaling[key]["points"]
        sizes = sorted(points)
        top, bottom = axes[0][col], axes[1][col]
        for impl, (color, marker) in styles.items():
            top.loglog(sizes, [points[s][impl] * 1e3 for s in sizes], marker=marker,
                       color=color, label=impl, base=2)
        for other, ls in zip(names[1:], ("-", "--")):
            bottom.semilogx(sizes, [_ratio(scaling[key], s, other) for s in sizes],
                            ls, marker="o", color=styles[other][0], label=f"xnn / {other}",
                            base=2)
        bottom.axhline(1.0, color="gray", lw=0.8)
        top.set_title(f"step time, {scaling[key]['network']}")
        top.set_ylabel("ms per step")
        bottom.set_ylabel("ratio")
        bottom.set_xlabel(xlabel)
        for ax in (top, bottom):
            ax.set_xticks(sizes, [str(s) for s in sizes])
            ax.minorticks_off()
        top.set_yscale("log", base=10)
        top.grid(True, which="both", alpha=0.3)
        bottom.grid(True, alpha=0.3)
        top.legend()
        bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- report --------------------------------------------------------------------------------------

def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def _ratio_cell(r: dict[str, Any], ref: str) -> str:
    """xnn's time over ``ref``'s, against the issue's target where there is one (the CPU)."""
    ratio = r[f"xnn/{ref}"]
    if not r.get("targets"):
        return f"{ratio:.3f}"
    target = r["targets"][0 if ref == "numpy" else 1]
    strict = ref == "torch" and r["workload"] != "mlp-large"   # xnn must beat torch there
    ok = ratio < target if strict else ratio <= target
    return f"{ratio:.3f} ({'<' if strict else '<='} {target}: {'ok' if ok else 'MISS'})"


def _machine_lines(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    if "gpu" not in m:
        return [f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']} with "
                f"{m['numpy_blas']}, {m['numpy_blas_threads']} BLAS threads; torch {m['torch']}, "
                f"{m['torch_threads']} threads; Python {m['python']}",
                f"medians of {results['repeats']} interleaved runs after a warm-up; "
                f"load average {m['loadavg_start']:.2f} at start, {m['loadavg_end']:.2f} at end; "
                f"{results.get('disturbed_runs', 0)} runs disturbed by other processes re-measured"]
    gpu = f"machine: GPU {m['gpu']}"
    if "gpu_memory_gib" in m:
        gpu += f", {m['gpu_memory_gib']:.0f} GiB"
    if "cupy" in m:
        gpu += f"; cupy {m['cupy']}, CUDA runtime {m['cuda_runtime']}, driver {m['cuda_driver']}"
    gpu += f"; torch {m['torch']}" + (f" (CUDA {m['torch_cuda']})" if m.get("torch_cuda") else "")
    return [gpu + f"; host {m['cpu']}, {m['cores']} cores; Python {m['python']}",
            f"medians of {results['repeats']} interleaved runs after a warm-up, timed by "
            f"{m['timing']}; host load average {m['loadavg_start']:.2f} at start, "
            f"{m['loadavg_end']:.2f} at end"]


def _device_memory_lines(mem: dict[str, Any]) -> list[str]:
    mn = mem["minimum"]
    table = [["implementation", "peak - baseline (the data)", "ratio"], ["---"] * 3]
    for n, r in mem["implementations"].items():
        table.append([n, f"{r['peak'] / 2**20:.1f} MiB", f"{r['ratio']:.2f}"])
    return ["", f"mlp-large peak device memory of training, against the arithmetic minimum "
                f"{mn['total'] / 2**20:.1f} MiB (parameters, gradients, momentum "
                f"{mn['parameters'] / 2**20:.1f} MiB each; activations "
                f"{mn['activations'] / 2**20:.1f} MiB):",
            *_markdown(table), f"measured as: {mem['measured']}"]


def report(results: dict[str, Any]) -> str:
    main = results.get("implementations", list(W.IMPLEMENTATIONS))  # xnn, hand-written, torch
    refs = main[1:]
    lines = [f"xnn benchmarks ({results['command']})", *_machine_lines(results), ""]
    rows = results["workloads"]
    if rows:
        extras = [n for n in rows[0]["seconds"] if n not in main]
        head = ["workload", "steps", *main, *(f"xnn/{ref}" for ref in refs), *extras]
        table = [head, ["---"] * len(head)]
        for r in rows:
            s = r["seconds"]
            cells = [r["workload"], str(r["steps"]), *(_fmt_time(s[n]) for n in main),
                     *(_ratio_cell(r, ref) for ref in refs)]
            cells += [f"{_fmt_time(s[e])} ({s[e] / s['xnn']:.2f}x xnn)" for e in extras]
            table.append(cells)
        lines += _markdown(table)
        lines.append("")
        lines.append("final loss (same math, float32): " + "; ".join(
            f"{r['workload']}: " + ", ".join(f"{n} {v:.5g}" for n, v in r["final_loss"].items()
                                             if n in main) for r in rows))
    lines += _jax_lines(rows)
    big = next((r for r in rows if r["workload"] == "mlp-large"), None)
    if big is not None:
        peak = results["matmul_peak"]
        lines.append("")
        table = [["mlp-large", "samples/s", "GFLOP/s", "of matmul peak (step GEMMs)",
                  "of 2048^3 matmul"], ["---"] * 5]
        for n in big["seconds"]:
            frac = big["gflops"][n] / peak["step_gemms"]
            table.append([n, f"{big['samples_per_s'][n]:,.0f}", f"{big['gflops'][n]:.1f}",
                          f"{frac:.1%}" + (f" (>= 80%: {'ok' if frac >= PEAK_FRACTION_TARGET else 'MISS'})"
                                           if n == "xnn" and big.get("targets") else ""),
                          f"{big['gflops'][n] / peak['square_2048']:.1%}"])
        lines += _markdown(table)
        lines.append(f"{main[1]}.matmul float32 peak: {peak['step_gemms']:.1f} GFLOP/s on one "
                     f"step's GEMMs back to back, {peak['square_2048']:.1f} GFLOP/s on 2048^3")
    mem = results.get("memory")
    if mem and mem.get("device"):
        lines += _device_memory_lines(mem)
    elif mem:
        mn = mem["minimum"]
        lines.append("")
        lines.append(f"mlp-large peak memory of training, against the arithmetic minimum "
                     f"{mn['total'] / 2**20:.1f} MiB (parameters, gradients, momentum "
                     f"{mn['parameters'] / 2**20:.1f} MiB each; activations "
                     f"{mn['activations'] / 2**20:.1f} MiB):")
        table = [["implementation", "baseline RSS", "peak RSS - baseline", "ratio",
                  "tracemalloc peak", "ratio"], ["---"] * 6]
        for n, r in mem["implementations"].items():
            table.append([n, f"{r['baseline_rss'] / 2**20:.1f} MiB",
                          f"{r['rss_delta'] / 2**20:.1f} MiB", f"{r['rss_ratio']:.2f}"
                          + (f" (<= {MEMORY_TARGET}: {'ok' if r['rss_ratio'] <= MEMORY_TARGET else 'MISS'})"
                             if n == "xnn" else ""),
                          "-" if r["traced_peak"] is None else f"{r['traced_peak'] / 2**20:.1f} MiB",
                          "-" if r["traced_ratio"] is None else f"{r['traced_ratio']:.2f}"])
        lines += _markdown(table)
    sc = results.get("scaling")
    if sc:
        for key, label in (("batch", "batch size"), ("width", "width")):
            pts = sc[key]["points"]
            lines.append("")
            lines.append(f"step time by {label} ({sc[key]['network']}), ms, fastest of "
                         f"{results['repeats']} runs; ratios: median over the runs of xnn's "
                         f"time / the other's in the same run:")
            head = [label, *main, *(f"xnn/{ref}" for ref in refs)]
            table = [head, ["---"] * len(head)]
            for s in sorted(pts, key=int):
                p = pts[s]
                table.append([str(s), *(f"{p[n] * 1e3:.3f}" for n in main),
                              *(f"{_ratio(sc[key], s, ref):.2f}" for ref in refs)])
            lines += _markdown(table)
            ends = {impl: overhead_bound_until({int(k): v for k, v in pts.items()}, impl)
                    for impl in main}
            lines.append("overhead-bound (step time < 2x the smallest size's) up to: "
                         + ", ".join(f"{i} {label} {e}" for i, e in ends.items()))
    return "\n".join(lines)


def _jax_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The --jax table: compiled xnn on jax against xnn on NumPy and the hand-written jax.jit
    loop, each against its target."""
    compiled, anchor = "xnn on jax, compiled", "jax.jit"
    rows = [r for r in rows if compiled in r["seconds"] and anchor in r["seconds"]]
    if not rows:
        return []
    table = [["workload", "xnn (numpy)", "xnn on jax", compiled, anchor,
              "speed-up over xnn (numpy)", f"{compiled} / {anchor}"], ["---"] * 7]
    for r in rows:
        s = r["seconds"]
        speedup, ratio = s["xnn"] / s[compiled], s[compiled] / s[anchor]
        want = JAX_SPEEDUP_TARGETS.get(r["workload"])
        table.append([r["workload"], _fmt_time(s["xnn"]), _fmt_time(s["xnn on jax"]),
                      _fmt_time(s[compiled]), _fmt_time(s[anchor]),
                      f"{speedup:.2f}x" + (f" (>= {want}: {'ok' if speedup >= want else 'MISS'})"
                                           if want else ""),
                      f"{ratio:.2f} (<= {JAX_ANCHOR_TARGET}: "
                      f"{'ok' if ratio <= JAX_ANCHOR_TARGET else 'MISS'})"])
    return ["", "jax (--jax), medians of the same interleaved runs:", *_markdown(table)]


def _markdown(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["| " + " | ".join(c.ljust(w) if c != "---" else "-" * w
                              for c, w in zip(r, widths)) + " |" for r in table]


# --- main ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short schedules and 3 repeats (else 9)")
    p.add_argument("--workloads", default="xor,polynomial,arithmetic,mlp-large",
                   help="comma-separated subset of the workloads")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="timed runs per implementation, at least 1")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch and the BLAS, at least 1 (default: numpy's BLAS "
                        "default)")
    p.add_argument("--no-extras", action="store_true", help="skip the extra xnn rows")
    p.add_argument("--jax", action="store_true",
                   help="add xnn on jax (eager and compiled) and a hand-written jax.jit loop")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the results")
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="numpy: the CPU suite; cupy: on a GPU, xnn on CuPy against the "
                        "hand-written network on CuPy and torch on CUDA, timed by CUDA events")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    # the --backend cupy code path on the CPU (xnn on torch:cpu, numpy, torch on cpu, the wall
    # clock for CUDA events), to check it where there is no GPU; its numbers mean nothing
    p.add_argument("--gpu-standin", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    target = CPU
    if args.gpu_standin:
        target = standin_target()
    elif args.backend == "cupy":
        try:
            target = cupy_target()
        except xnn.BackendUnavailableError as err:
            sys.exit(f"run.py --backend cupy: {err}")

    if args.jax:
        import jax_workloads  # noqa: PLC0415 - needs jax

        target = replace(target, more=jax_workloads.ROWS)
    import torch  # noqa: PLC0415

    threads = args.threads or blas_info()["threads"] or os.cpu_count()
    if args.threads:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        threadpool_limits(args.threads, user_api="blas")
    torch.set_num_threads(threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.quick, threads)))
        return {}

    repeats = args.repeats or (3 if args.quick else 9)
    suite = W.workloads(args.quick)
    chosen = [s.strip() for s in args.workloads.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in suite]
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {', '.join(suite)}")
    command = "python benchmarks/run.py" + (" " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])).rstrip()
    results: dict[str, Any] = {"command": command.strip(), "backend": target.backend,
                               "implementations": [n for n in target.implementations(False)
                                                   if n not in target.more],
                               "repeats": repeats, "machine": machine(threads, target),
                               "workloads": []}
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the run; other processes share the CPU "
              f"and the timings will be noisy", file=sys.stderr)
    for name in chosen:
        print(f"... {name}", file=sys.stderr, flush=True)
        results["workloads"].append(bench_workload(suite[name], repeats, not args.no_extras,
                                                   target))
    if "mlp-large" in chosen:
        print("... matmul peak", file=sys.stderr, flush=True)
        results["matmul_peak"] = matmul_peak(W.load(suite["mlp-large"])[0], repeats,
                                             target.hand, target.timer or _wall)
        if not args.no_memory:
            print("... memory", file=sys.stderr, flush=True)
            results["memory"] = (bench_device_memory(suite["mlp-large"], target)
                                 if target.on_device else bench_memory(args.quick, threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_scaling:
        print("... scaling", file=sys.stderr, flush=True)
        results["scaling"] = bench_scaling(args.quick, repeats, target)
        plot_scaling(results["scaling"], out / "scaling.png")
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    results["disturbed_runs"] = disturbed_runs
    text = report(results)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


if __name__ == "__main__":
    main()
