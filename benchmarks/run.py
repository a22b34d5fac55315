"""xnn against hand-written NumPy and PyTorch eager on the CPU: one command prints the table.

    python benchmarks/run.py                 # the full suite, memory and scaling (~7 min)
    python benchmarks/run.py --quick         # shorter schedules, fewer repeats (~1 min)
    python benchmarks/run.py --workloads xor,mlp-large --no-scaling

Each workload is trained by the three implementations in ``workloads.py`` from the same
initial weights; the timed runs are interleaved (the order rotates every repeat) and the table
shows medians over the repeats after a warm-up. Results go to ``--out`` (results.json,
results.md, scaling.png). See docs/performance.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as W  # noqa: E402 - after the path tweak

# (xnn / numpy at most, xnn / torch at most); the targets
TARGETS = {
    "xor": (1.3, 1.0),
    "polynomial": (1.1, 1.0),
    "arithmetic": (1.1, 1.0),
    "mlp-large": (1.05, 1.1),
}
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


def machine(threads: int) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    info = blas_info()
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "numpy_blas": info["blas"], "numpy_blas_threads": info["threads"],
        "torch": torch.__version__, "torch_threads": threads,
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                           "OMP_NUM_THREADS") if k in os.environ},
        "loadavg_start": os.getloadavg()[0],
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
disturbed_runs = 0


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
        gc.collect()  # no sleep between runs: an idle vCPU wakes up slow and the next run pays
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


def bench_workload(w: W.Workload, repeats: int, extras: bool) -> dict[str, Any]:
    w, X, y, weights = W.load(w)
    orders = W.batch_orders(w)
    impls = dict(W.IMPLEMENTATIONS, **(W.EXTRAS if extras else {}))
    trainers = {name: cls(w, X, y, weights, orders) for name, cls in impls.items()}
    for t in trainers.values():  # warm-up: caches, BLAS buffers, first-call paths
        t.reset()
        t.run(max_steps=min(w.steps(), 200))
    names = list(trainers)
    times: dict[str, list[float]] = {n: [] for n in names}
    losses: dict[str, float] = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            seconds, losses[name] = timed(trainers[name])
            times[name].append(seconds)
    med = {n: statistics.median(v) for n, v in times.items()}
    steps = w.steps()
    row = {
        "workload": w.name, "network": "-".join(map(str, w.sizes)), "steps": steps,
        "batch": w.batch_size or w.n, "optimizer": w.optimizer,
        "seconds": med, "all_seconds": times, "us_per_step": {n: 1e6 * s / steps for n, s in med.items()},
        "final_loss": losses,
        "xnn/numpy": med["xnn"] / med["numpy"], "xnn/torch": med["xnn"] / med["torch"],
        "targets": TARGETS.get(w.name),
    }
    if w.name == "mlp-large":
        flops = w.flops_per_step() * steps
        row["samples_per_s"] = {n: w.n * w.epochs / s for n, s in med.items()}
        row["gflops"] = {n: flops / s / 1e9 for n, s in med.items()}
    return row


def matmul_peak(w: W.Workload, repeats: int) -> dict[str, float]:
    """GFLOP/s of numpy.matmul (float32) on the GEMMs of one mlp-large step, back to back, and
    on a 2048^3 product, medians over ``repeats``."""
    g = np.random.default_rng(0)
    b, sizes = w.batch_size, w.sizes
    pairs = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = g.standard_normal((b, n_in), dtype=np.float32)
        wt = g.standard_normal((n_in, n_out), dtype=np.float32)
        dy = g.standard_normal((b, n_out), dtype=np.float32)
        pairs += [(x, wt), (x.T, dy)]                 # forward, weight gradient
        if i > 0:
            pairs.append((dy, wt.T))                  # input gradient
    flops = sum(2.0 * a.shape[0] * a.shape[1] * c.shape[1] for a, c in pairs)

    def step_gemms() -> None:
        for a, c in pairs:
            a @ c

    A = g.standard_normal((2048, 2048), dtype=np.float32)
    result = {}
    for name, fn, f in (("step_gemms", step_gemms, flops),
                        ("square_2048", lambda: A @ A, 2.0 * 2048 ** 3)):
        fn()
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(5):
                fn()
            runs.append((time.perf_counter() - t0) / 5)
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


# --- scaling -------------------------------------------------------------------------------------

BATCHES = (1, 4, 16, 64, 256, 1024, 4096)
WIDTHS = (16, 64, 256, 1024, 4096)


def _step_time(sizes: tuple[int, ...], batch: int, repeats: int) -> dict[str, float]:
    """Seconds per step of each implementation on a ReLU MLP with cross-entropy and SGD with
    momentum: the fastest of ``repeats`` interleaved runs of enough steps to last ~0.1 s (a
    sweep of shapes, so the estimate least moved by a shared machine)."""
    mults = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    # seconds, roughly: the GEMMs at ~30 GFLOP/s, the update streaming the parameters, overhead
    estimate = 6 * batch * mults / 3e10 + mults * 2e-9 + 1e-4
    steps = int(min(max(0.1 / estimate, 3), 200))
    w = W.Workload("scaling", sizes, "relu", "none", "cross_entropy", "sgd_momentum", 1e-3,
                   epochs=1, batch_size=batch, shuffle=False,
                   data=W._mlp_data(batch * steps, sizes[0], sizes[-1]))
    w, X, y, weights = W.load(w)
    orders = W.batch_orders(w)
    trainers = {n: cls(w, X, y, weights, orders) for n, cls in W.IMPLEMENTATIONS.items()}
    for t in trainers.values():
        t.reset()
        t.run(max_steps=2)
    names = list(trainers)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % 3:] + names[:r % 3]:
            times[name].append(timed(trainers[name])[0] / steps)
    return {n: min(v) for n, v in times.items()}


def bench_scaling(quick: bool, repeats: int) -> dict[str, Any]:
    batches = BATCHES[::2] if quick else BATCHES
    widths = WIDTHS[::2] if quick else WIDTHS
    by_batch = {b: _step_time((784, 1024, 1024, 10), b, repeats) for b in batches}
    by_width = {d: _step_time((d, d, d, 10), 64, repeats) for d in widths}
    return {"batch": {"network": "784-1024-1024-10", "points": by_batch},
            "width": {"network": "w-w-w-10, batch 64", "points": by_width}}


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
    styles = {"xnn": ("C0", "o"), "numpy": ("C2", "s"), "torch": ("C3", "^")}
    for col, (key, xlabel) in enumerate((("batch", "batch size"), ("width", "width w"))):
        points = scaling[key]["points"]
        sizes = sorted(points)
        top, bottom = axes[0][col], axes[1][col]
        for impl, (color, marker) in styles.items():
            top.loglog(sizes, [points[s][impl] * 1e3 for s in sizes], marker=marker,
                       color=color, label=impl, base=2)
        for other, ls in (("numpy", "-"), ("torch", "--")):
            bottom.semilogx(sizes, [points[s]["xnn"] / points[s][other] for s in sizes],
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


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"xnn benchmarks ({results['command']})",
             f"machine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']} with {m['numpy_blas']}, "
             f"{m['numpy_blas_threads']} BLAS threads; torch {m['torch']}, "
             f"{m['torch_threads']} threads; Python {m['python']}",
             f"medians of {results['repeats']} interleaved runs after a warm-up; "
             f"load average {m['loadavg_start']:.2f} at start, {m['loadavg_end']:.2f} at end; "
             f"{results.get('disturbed_runs', 0)} runs disturbed by other processes re-measured",
             ""]
    rows = results["workloads"]
    if rows:
        extras = [n for n in rows[0]["seconds"] if n not in W.IMPLEMENTATIONS]
        head = ["workload", "steps", "xnn", "numpy", "torch", "xnn/numpy", "xnn/torch"]
        head += extras
        table = [head, ["---"] * len(head)]
        for r in rows:
            s, (tn, tt) = r["seconds"], r["targets"]
            ok_n = "ok" if r["xnn/numpy"] <= tn else "MISS"
            ok_t = ("ok" if (r["xnn/torch"] < tt if r["workload"] != "mlp-large"
                             else r["xnn/torch"] <= tt) else "MISS")
            cells = [r["workload"], str(r["steps"]),
                     _fmt_time(s["xnn"]), _fmt_time(s["numpy"]), _fmt_time(s["torch"]),
                     f"{r['xnn/numpy']:.3f} (<= {tn}: {ok_n})",
                     f"{r['xnn/torch']:.3f} ({'<=' if r['workload'] == 'mlp-large' else '<'} "
                     f"{tt}: {ok_t})"]
            cells += [f"{_fmt_time(s[e])} ({s[e] / s['xnn']:.2f}x xnn)" for e in extras]
            table.append(cells)
        lines += _markdown(table)
        lines.append("")
        lines.append("final loss (same math, float32): " + "; ".join(
            f"{r['workload']}: " + ", ".join(f"{n} {v:.5g}" for n, v in r["final_loss"].items()
                                             if n in W.IMPLEMENTATIONS) for r in rows))
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
                                           if n == "xnn" else ""),
                          f"{big['gflops'][n] / peak['square_2048']:.1%}"])
        lines += _markdown(table)
        lines.append(f"numpy.matmul float32 peak: {peak['step_gemms']:.1f} GFLOP/s on one step's "
                     f"GEMMs back to back, {peak['square_2048']:.1f} GFLOP/s on 2048^3")
    mem = results.get("memory")
    if mem:
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
                         f"{results['repeats']} runs:")
            table = [[label, "xnn", "numpy", "torch", "xnn/numpy", "xnn/torch"], ["---"] * 6]
            for s in sorted(pts, key=int):
                p = pts[s]
                table.append([str(s), f"{p['xnn'] * 1e3:.3f}", f"{p['numpy'] * 1e3:.3f}",
                              f"{p['torch'] * 1e3:.3f}", f"{p['xnn'] / p['numpy']:.2f}",
                              f"{p['xnn'] / p['torch']:.2f}"])
            lines += _markdown(table)
            ends = {impl: overhead_bound_until({int(k): v for k, v in pts.items()}, impl)
                    for impl in W.IMPLEMENTATIONS}
            lines.append("overhead-bound (step time < 2x the smallest size's) up to: "
                         + ", ".join(f"{i} {label} {e}" for i, e in ends.items()))
    return "\n".join(lines)


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
    p.add_argument("--repeats", type=int, default=None, help="timed runs per implementation")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and the BLAS (default: numpy's BLAS default)")
    p.add_argument("--no-extras", action="store_true", help="skip the extra xnn rows")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the results")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

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
    results: dict[str, Any] = {"command": command.strip(), "repeats": repeats,
                               "machine": machine(threads), "workloads": []}
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the run; other processes share the CPU "
              f"and the timings will be noisy", file=sys.stderr)
    for name in chosen:
        print(f"... {name}", file=sys.stderr, flush=True)
        results["workloads"].append(bench_workload(suite[name], repeats, not args.no_extras))
    if "mlp-large" in chosen:
        print("... matmul peak", file=sys.stderr, flush=True)
        results["matmul_peak"] = matmul_peak(W.load(suite["mlp-large"])[0], repeats)
        if not args.no_memory:
            print("... memory", file=sys.stderr, flush=True)
            results["memory"] = bench_memory(args.quick, threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_scaling:
        print("... scaling", file=sys.stderr, flush=True)
        results["scaling"] = bench_scaling(args.quick, repeats)
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
