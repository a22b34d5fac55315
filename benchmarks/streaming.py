"""Training on rows read from disk: xnn's fit in memory and streamed from a memmap, and PyTorch's
DataLoader + training loop over the same memmap, side by side, as the rows grow.

    python benchmarks/streaming.py                          # 10^5, 10^6, 10^7 rows
    python benchmarks/streaming.py --rows 100000 --epochs 1 # the smallest point only

Each point writes (once, kept in --folder) X: rows x 50 float32 features and y: rows x 1, as
memmaps, then runs each configuration in a fresh process with one BLAS thread: its peak RSS
(ru_maxrss: what the process held at most, libraries and mapped file pages included), the
peak of its own memory (RssAnon, sampled every 5 ms: the RSS without a memmap's pages mapped in
by indexing it, which are the system's page cache, shared and reclaimable; xnn's streamed fit
maps none, it reads the rows with pread) and the rows/s of its epochs (the first epoch, which
also warms the page cache, is left out when there are several).
The network is 50-64-64-1 (ReLU), MSE, Adam, batches of 256, shuffled rows, float32:

- ``memory``: fit on X and y read whole into memory first (np.array of the memmaps);
- ``streamed``: fit on the memmaps themselves (xnn/stream.py: a batch at a time, read ahead);
- ``batches`` (not in the default --kinds): fit on an ``xnn.data.BatchDataset`` of the files'
  consecutive chunks of 256 rows, read with ``np.fromfile``, in a shuffled order of chunks;
- ``torch``: a torch Dataset over the same memmaps, DataLoader(batch_size=256, shuffle=True)
  with a batch sampler (one fancy index per batch, as xnn reads) and the same network and
  optimizer in a plain PyTorch loop.

The file of 10^7 rows takes 2 GB of disk; ``df -h`` the folder first. The table prints the
rows/s ratios streamed/memory and streamed/torch, and each RSS against the data's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FEATURES, HIDDEN, BATCH, LR = 50, 64, 256, 1e-3
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CHUNK = 1 << 18  # rows written at a time


def write_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """X (rows x FEATURES float32) and y = a smooth function of X plus noise, as .npy files
    written a chunk at a time (memory stays small whatever the rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    x_path, y_path = folder / f"X-{rows}.npy", folder / f"y-{rows}.npy"
    if x_path.exists() and y_path.exists():
        return x_path, y_path
    X = np.lib.format.open_memmap(x_path.with_suffix(".tmp"), mode="w+", dtype=np.float32,
                                  shape=(rows, FEATURES))
    y = np.lib.format.open_memmap(y_path.with_suffix(".tmp"), mode="w+", dtype=np.float32,
                                  shape=(rows, 1))
    g = np.random.default_rng(0)
    w = g.normal(size=(FEATURES, 1)) / np.sqrt(FEATURES)
    for s in range(0, rows, CHUNK):
        e = min(s + CHUNK, rows)
        X[s:e] = g.normal(size=(e - s, FEATURES))
        y[s:e] = np.tanh(X[s:e] @ w) + 0.1 * g.normal(size=(e - s, 1))
    X.flush()
    y.flush()
    del X, y
    os.replace(x_path.with_suffix(".tmp"), x_path)
    os.replace(y_path.with_suffix(".tmp"), y_path)
    return x_path, y_path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def own_mib() -> float:
    """RssAnon of /proc/self/status: resident memory that is not a file's pages."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1024


class _OwnPeak:
    """The peak of own_mib(), sampled every 5 ms by a thread from its start on."""

    def __init__(self) -> None:
        self.peak, self.done = own_mib(), threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, own_mib())

    def stop(self) -> float:
        self.done.set()
        return max(self.peak, own_mib())


class _Clock:
    """Epoch end times, for rows/s without the first (warm-up) epoch."""

    def __init__(self) -> None:
        self.ends = [time.perf_counter()]

    def tick(self) -> None:
        self.ends.append(time.perf_counter())

    def rows_per_s(self, rows: int) -> float:
        spans = np.diff(self.ends)
        timed = spans[1:] if len(spans) > 1 else spans
        return rows * len(timed) / float(np.sum(timed))


def chunks(x_path: Path, y_path: Path) -> object:
    """The rows as an xnn.data.BatchDataset of BATCH consecutive rows a batch."""
    import xnn  # noqa: PLC0415 - in the child only

    stored = [(path, np.load(path, mmap_mode="r")) for path in (x_path, y_path)]

    class Chunks(xnn.data.BatchDataset):
        def __len__(self) -> int:
            return -(-stored[0][1].shape[0] // BATCH)

        def __getitem__(self, i: int) -> tuple:
            start, stop = i * BATCH, min((i + 1) * BATCH, stored[0][1].shape[0])
            return tuple(np.fromfile(path, a.dtype, (stop - start) * a.shape[1],
                                     offset=a.offset + start * a.strides[0])
                         .reshape(-1, a.shape[1]) for path, a in stored)
    return Chunks()


def run_xnn(x_path: Path, y_path: Path, epochs: int, kind: str) -> dict:
    import xnn  # noqa: PLC0415 - in the child only
    from xnn import nn  # noqa: PLC0415

    X, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
    rows, batch_size = X.shape[0], BATCH
    if kind == "memory":
        X, y = np.array(X), np.array(y)
    elif kind == "batches":
        X, y, batch_size = chunks(x_path, y_path), None, None
    before = peak_rss_mib()
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                          nn.ReLU(), nn.Linear(HIDDEN, 1))
    clock = _Clock()
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=epochs, batch_size=batch_size, seed=0,
            optimizer=xnn.optim.Adam(model.parameters(), lr=LR), progress=False,
            callbacks=[xnn.callbacks.LambdaCallback(on_epoch_end=lambda run, logs: clock.tick())])
    return {"rows_per_s": clock.rows_per_s(rows), "rss_before_mib": before,
            "peak_rss_mib": peak_rss_mib()}


def run_torch(x_path: Path, y_path: Path, epochs: int) -> dict:
    import torch  # noqa: PLC0415 - in the child only
    from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler  # noqa: PLC0415

    torch.set_num_threads(1)
    X, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")

    class Rows(Dataset):
        def __len__(self) -> int:
            return X.shape[0]

        def __getitem__(self, index: list[int]) -> tuple:  # a whole batch: one fancy index
            return torch.from_numpy(X[index]), torch.from_numpy(y[index])

    before = peak_rss_mib()
    torch.manual_seed(0)
    sampler = BatchSampler(RandomSampler(range(X.shape[0])), BATCH, drop_last=False)
    loader = DataLoader(Rows(), sampler=sampler, batch_size=None)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, 1))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    clock = _Clock()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(xb), yb).backward()
            opt.step()
        clock.tick()
    return {"rows_per_s": clock.rows_per_s(X.shape[0]), "rss_before_mib": before,
            "peak_rss_mib": peak_rss_mib()}


def child(args: argparse.Namespace) -> None:
    x_path, y_path = Path(args.x), Path(args.y)
    own = _OwnPeak()
    result = (run_torch(x_path, y_path, args.epochs) if args.child == "torch"
              else run_xnn(x_path, y_path, args.epochs, args.child))
    print(json.dumps({**result, "peak_own_mib": own.stop()}))


def measure(kind: str, x_path: Path, y_path: Path, epochs: int) -> dict:
    env = {**os.environ, **ONE_THREAD,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--x", str(x_path),
                           "--y", str(y_path), "--epochs", str(epochs)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000,10000000",
                        help="comma-separated row counts (default 10^5, 10^6, 10^7)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    parser.add_argument("--folder", default="/tmp/xnn-streaming-bench",
                        help="where the data files are written and kept")
    parser.add_argument("--kinds", default="memory,streamed,torch")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--write", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--x", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--y", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return []
    if args.write:
        write_data(Path(args.folder), args.write)
        return []
    results = []
    print(f"{'rows':>10} {'data MiB':>9} {'kind':>9} {'rows/s':>10} {'RSS before':>11} "
          f"{'peak RSS':>9} {'peak own':>9}")
    for rows in (int(r) for r in args.rows.split(",")):
        # written by a child of its own: a child's ru_maxrss starts at its parent's RSS when it
        # is forked, which writing the data would have raised
        subprocess.run([sys.executable, __file__, "--write", str(rows), "--folder", args.folder],
                       check=True)
        x_path, y_path = write_data(Path(args.folder), rows)
        data_mib = (x_path.stat().st_size + y_path.stat().st_size) / 2 ** 20
        point = {}
        for kind in args.kinds.split(","):
            point[kind] = r = measure(kind, x_path, y_path, args.epochs)
            results.append({"rows": rows, "kind": kind, "data_mib": data_mib, **r})
            print(f"{rows:>10} {data_mib:>9.0f} {kind:>9} {r['rows_per_s']:>10.0f} "
                  f"{r['rss_before_mib']:>10.0f}M {r['peak_rss_mib']:>8.0f}M "
                  f"{r['peak_own_mib']:>8.0f}M")
        if "streamed" in point:
            for other in ("memory", "torch"):
                if other in point:
                    ratio = point["streamed"]["rows_per_s"] / point[other]["rows_per_s"]
                    print(f"{'':>10} streamed / {other} rows/s: {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
