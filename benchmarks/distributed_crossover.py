"""When data-parallel training pays off: fit(distributed=True) on 2 MPI ranks against one
process, over the width of the network.

    python benchmarks/distributed_crossover.py                 # widths 16 to 1024, ~2 min
    python benchmarks/distributed_crossover.py --widths 64,512 --repeats 1

A 64-W-W-10 ReLU network, float32, softmax cross-entropy, SGD with momentum, batch 256,
16,384 rows (64 steps an epoch), one BLAS thread per process. Each configuration runs
``xnn.fit`` for 3 epochs (the first is not timed: it checks the data and warms up); the table
gives the median seconds per epoch over interleaved repeats and the speed-up of 2 ranks over 1.
Below the crossover, each step's fixed cost (the gradient reduce, the ranks' vote, Python) is
larger than the half of the arithmetic a second rank takes away.
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

ROOT = Path(__file__).resolve().parent.parent
ROWS, FEATURES, CLASSES, BATCH = 16_384, 64, 10, 256
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker(width: int, distributed: bool) -> None:
    """Time fit's epochs 2 and 3 (epoch 1 warms up) and print rank 0's seconds per epoch."""
    import xnn  # noqa: PLC0415
    from xnn import nn  # noqa: PLC0415

    g = np.random.default_rng(0)
    X = g.standard_normal((ROWS, FEATURES), dtype=np.float32)
    y = g.integers(0, CLASSES, ROWS)
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, width, dtype="float32"), nn.ReLU(),
                          nn.Linear(width, width, dtype="float32"), nn.ReLU(),
                          nn.Linear(width, CLASSES, dtype="float32"))
    opt = xnn.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    ends: list[float] = []
    stamp = xnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(
        time.perf_counter()))
    xnn.fit(model, X, y, loss=xnn.losses.CrossEntropyLoss(), optimizer=opt, epochs=3,
            batch_size=BATCH, seed=0, callbacks=[stamp], progress=False, distributed=distributed)
    if not distributed or xnn.distributed.rank() == 0:
        print(json.dumps((ends[-1] - ends[0]) / 2))


def run(width: int, ranks: int) -> float:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--worker", str(width)]
    if ranks > 1:
        from xnn.rank_parity import mpiexec  # noqa: PLC0415

        cmd = [mpiexec(), "-n", str(ranks)] + cmd + ["--distributed"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"width {width} on {ranks} rank(s) failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="16,64,128,256,512,1024")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        worker(args.worker, args.distributed)
        return
    widths = [int(w) for w in args.widths.split(",")]
    times: dict[tuple[int, int], list[float]] = {(w, r): [] for w in widths for r in (1, 2)}
    for repeat in range(args.repeats):
        for w in widths:
            for r in ((1, 2) if repeat % 2 == 0 else (2, 1)):
                times[w, r].append(run(w, r))
    print(f"{FEATURES}-W-W-{CLASSES} ReLU, float32, batch {BATCH}, {ROWS} rows, fit epochs, "
          f"median of {args.repeats} (os.cpu_count() = {os.cpu_count()})")
    print(f"{'W':>6} {'1 process s/epoch':>18} {'2 ranks s/epoch':>16} {'speed-up':>9}")
    for w in widths:
        one, two = statistics.median(times[w, 1]), statistics.median(times[w, 2])
        print(f"{w:>6} {one:>18.3f} {two:>16.3f} {one / two:>8.2f}x")


if __name__ == "__main__":
    main()
