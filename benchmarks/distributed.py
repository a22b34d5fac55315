"""Data-parallel speed: xnn over MPI against PyTorch DistributedDataParallel (gloo), side by side.

    python benchmarks/distributed.py                  # 3 interleaved repeats of 20 steps
    python benchmarks/distributed.py --steps 10 --repeats 1

The 784-1024-1024-10 ReLU network, softmax cross-entropy, SGD with momentum, float32, global
batch 256 rows: one process with one BLAS thread against two processes with one thread each
(each trains on 128 rows of every batch and the gradients are summed). Prints samples/s, the
scaling efficiency (2-process throughput / (2 x 1-process throughput)), the time per step and,
for xnn, the time per step spent waiting for the slower rank (a barrier before the reduce)
and in the gradient reduce itself (DistributedOptimizer.reduce_gradients: on one machine the
shared-memory sum, see docs/distributed.md; "Allreduce" runs the same with
XNN_MPI_SHARED_MEMORY=0, so MPI_Allreduce). DDP overlaps its
reduce with the backward pass, so it has no separate reduce time. The four
configurations run in turn, repeats interleaved; the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES = (784, 1024, 1024, 10)
BATCH = 256
LR, MOMENTUM = 1e-2, 0.9
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(0)
    X = g.standard_normal((BATCH * steps, SIZES[0]), dtype=np.float32)
    return X, g.integers(0, SIZES[-1], BATCH * steps).astype(np.int64)


def xnn_worker(steps: int, warmup: int) -> dict:
    """One rank (or the only process) of the xnn run: its share of each batch, reduce, step."""
    import xnn  # noqa: PLC0415
    from xnn import distributed, nn  # noqa: PLC0415

    distributed.init()
    rank, ranks = distributed.rank(), distributed.world_size()
    xnn.seed(0)
    layers = []
    for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [nn.Linear(i, o, dtype="float32")] + ([nn.ReLU()] if k < len(SIZES) - 2 else [])
    model = nn.Sequential(*layers)
    opt = distributed.DistributedOptimizer(xnn.optim.SGD(model.parameters(), lr=LR,
                                                          momentum=MOMENTUM))
    loss = xnn.losses.CrossEntropyLoss(validate=False)
    X, y = data(steps + warmup)
    lo, hi = BATCH * rank // ranks, BATCH * (rank + 1) // ranks
    shares = [(xnn.asarray(X[s + lo:s + hi]), xnn.asarray(y[s + lo:s + hi]))
              for s in range(0, X.shape[0], BATCH)]
    wait_s = reduce_s = 0.0
    for k, (xb, yb) in enumerate(shares):
        if k == warmup:
            distributed.barrier()
            start, wait_s, reduce_s = time.perf_counter(), 0.0, 0.0
        pred, backprop = model.forward(xb, input_grad=False)
        backprop(loss(pred, yb)[1])
        t = time.perf_counter()
        distributed.barrier()  # the wait for the slower rank, timed apart from the reduce
        u = time.perf_counter()
        opt.reduce_gradients()
        wait_s, reduce_s = wait_s + u - t, reduce_s + time.perf_counter() - u
        opt.step()
        opt.zero_grad()
    distributed.barrier()
    total = time.perf_counter() - start
    return {"step_s": total / steps, "wait_s": wait_s / steps, "reduce_s": reduce_s / steps,
            "samples_per_s": BATCH * steps / total}


def torch_worker(steps: int, warmup: int, rank: int, ranks: int) -> dict:
    """One process of the PyTorch run: DistributedDataParallel over gloo when ranks > 1."""
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = []
    for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [torch.nn.Linear(i, o)] + ([torch.nn.ReLU()] if k < len(SIZES) - 2 else [])
    model = torch.nn.Sequential(*layers)
    if ranks > 1:
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss = torch.nn.CrossEntropyLoss()
    X, y = data(steps + warmup)
    lo, hi = BATCH * rank // ranks, BATCH * (rank + 1) // ranks
    shares = [(torch.from_numpy(X[s + lo:s + hi].copy()), torch.from_numpy(y[s + lo:s + hi].copy()))
              for s in range(0, X.shape[0], BATCH)]
    for k, (xb, yb) in enumerate(shares):
        if k == warmup:
            if ranks > 1:
                dist.barrier()
            start = time.perf_counter()
        opt.zero_grad()
        loss(model(xb), yb).backward()
        opt.step()
    if ranks > 1:
        dist.barrier()
    total = time.perf_counter() - start
    if ranks > 1:
        dist.destroy_process_group()
    return {"step_s": total / steps, "wait_s": None, "reduce_s": None,
            "samples_per_s": BATCH * steps / total}


# --- the parent: start each configuration, collect rank 0's line -------------------------------

def _env(extra: dict | None = None) -> dict:
    return {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), **(extra or {})}


def run_xnn(ranks: int, steps: int, warmup: int, shared: bool = True) -> dict:
    from xnn.rank_parity import mpiexec  # noqa: PLC0415

    done = subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker",
                           "xnn", "--steps", str(steps), "--warmup", str(warmup)],
                          capture_output=True, text=True, timeout=600,
                          env=_env(None if shared else {"XNN_MPI_SHARED_MEMORY": "0"}))
    if done.returncode != 0:
        raise RuntimeError(f"xnn on {ranks} ranks failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_torch(ranks: int, steps: int, warmup: int, port: int) -> dict:
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "torch", "--steps",
                               str(steps), "--warmup", str(warmup), "--rank", str(r),
                               "--ranks", str(ranks)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}))
             for r in range(ranks)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise
    if any(p.returncode for p in procs):
        raise RuntimeError("torch failed:\n" + "\n".join(o + e for o, e in outs))
    return json.loads(outs[0][0].strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", choices=["xnn", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker == "xnn":
        result = xnn_worker(args.steps, args.warmup)
        from xnn import distributed  # noqa: PLC0415

        if distributed.rank() == 0:
            print(json.dumps(result))
        return
    if args.worker == "torch":
        result = torch_worker(args.steps, args.warmup, args.rank, args.ranks)
        if args.rank == 0:
            print(json.dumps(result))
        return

    configs = {"xnn 1 rank": lambda: run_xnn(1, args.steps, args.warmup),
               "xnn 2 ranks": lambda: run_xnn(2, args.steps, args.warmup),
               "xnn 2 ranks, Allreduce": lambda: run_xnn(2, args.steps, args.warmup, False),
               "torch 1 process": lambda: run_torch(1, args.steps, args.warmup, 29511),
               "torch DDP 2 processes": lambda: run_torch(2, args.steps, args.warmup, 29512)}
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for repeat in range(args.repeats):
        turn = repeat % len(configs)
        order = list(configs)[turn:] + list(configs)[:turn]  # rotate the order
        for name in order:
            runs[name].append(configs[name]())
    med = {name: {key: (statistics.median(r[key] for r in rs) if rs[0][key] is not None
                        else None) for key in rs[0]} for name, rs in runs.items()}
    least_reduce = {name: min((r["reduce_s"] for r in rs if r["reduce_s"] is not None),
                              default=None) for name, rs in runs.items()}
    spread = {name: (min(r["samples_per_s"] for r in rs), max(r["samples_per_s"] for r in rs))
              for name, rs in runs.items()}
    print(f"784-1024-1024-10 ReLU, float32, global batch {BATCH}, SGD momentum, 1 BLAS thread per "
          f"process; {args.steps} timed steps, median of {args.repeats} interleaved repeats "
          f"(os.cpu_count() = {os.cpu_count()})")
    print(f"{'configuration':<26} {'samples/s':>10} {'(min-max)':>15} {'step ms':>8} "
          f"{'wait ms':>8} {'reduce ms':>10} {'reduce %':>9} {'efficiency':>11} "
          f"{'least reduce ms':>16}")
    for name, m in med.items():
        base = med["xnn 1 rank" if name.startswith("xnn") else "torch 1 process"]["samples_per_s"]
        two = "2 ranks" in name or name.endswith("2 processes")
        efficiency = f"{m['samples_per_s'] / (2 * base):>11.2f}" if two else f"{'':>11}"
        reduce = (f"{1e3 * m['wait_s']:>8.2f} {1e3 * m['reduce_s']:>10.2f} "
                  f"{100 * m['reduce_s'] / m['step_s']:>8.1f}%"
                  if m["reduce_s"] is not None else f"{'n/a':>8} {'n/a':>10} {'':>9}")
        lo, hi = spread[name]
        least = least_reduce[name]
        print(f"{name:<26} {m['samples_per_s']:>10.0f} {f'{lo:.0f}-{hi:.0f}':>15} "
              f"{1e3 * m['step_s']:>8.1f} {reduce} {efficiency} "
              f"{'n/a' if least is None else f'{1e3 * least:.2f}':>16}")
    ratio = med["xnn 2 ranks"]["samples_per_s"] / med["torch DDP 2 processes"]["samples_per_s"]
    print(f"xnn 2 ranks / torch DDP 2 processes: {ratio:.2f}x samples/s (target >= 1.4)")


if __name__ == "__main__":
    main()
