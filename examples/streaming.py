"""Training on a file larger than a memory budget: fit reads a np.memmap a batch at a time.

    python examples/streaming.py --backend numpy --out out/streaming
    python examples/streaming.py --rows 4000000 --budget-mb 64    # 763 MiB of data

Writes --rows rows of 50 float32 features and one target (y = tanh(x w) + noise) to raw files
in a temporary folder, a chunk at a time, then opens them as np.memmap and hands those to
xnn.fit, with the last 10% of the rows as validation data (validation_split) and a shuffled
row order: fit reads each batch's rows in a background thread, a few batches ahead, and never
holds the data whole. The run reports how much the process's own memory (its anonymous
resident memory, sampled every few milliseconds) grew at most during fit, against --budget-mb,
and the data's size beside it; a first, short fit of the same array shapes warms the backend
up before that (JAX's kernels, compiled at first use, are the library's, not the data's). fit reads the memmaps' rows from their files (pread), so none
of their pages are mapped into the process either: its peak RSS does not grow with the file.
"""

from __future__ import annotations

import math
import pathlib
import tempfile
import threading
from typing import Any

import numpy as np

import xnn

from _common import out_dir, parse_args, positive_int

FEATURES = 50
CHUNK = 1 << 16  # rows written at a time
BATCH = 256


def write(folder: pathlib.Path, rows: int, seed: int) -> tuple[np.memmap, np.memmap]:
    """X (rows x FEATURES) and y (rows x 1), float32, written as raw files chunk by chunk
    (writing through a memmap would map every page of the file into this process)."""
    g = np.random.default_rng(seed)
    w = g.normal(size=(FEATURES, 1)) / np.sqrt(FEATURES)
    with open(folder / "X.f32", "wb") as fx, open(folder / "y.f32", "wb") as fy:
        for start in range(0, rows, CHUNK):
            x = g.normal(size=(min(CHUNK, rows - start), FEATURES)).astype(np.float32)
            y = np.tanh(x @ w) + 0.1 * g.normal(size=(x.shape[0], 1))
            fx.write(x.tobytes())
            fy.write(y.astype(np.float32).tobytes())
    return (np.memmap(folder / "X.f32", dtype=np.float32, mode="r", shape=(rows, FEATURES)),
            np.memmap(folder / "y.f32", dtype=np.float32, mode="r", shape=(rows, 1)))


def own_memory_mib() -> float:
    """This process's anonymous resident memory now (RssAnon of /proc/self/status, Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1024


class PeakMemory:
    """The most own_memory_mib() reached while the block runs, sampled every 5 ms."""

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = own_memory_mib()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, own_memory_mib())

    def __exit__(self, *error: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, own_memory_mib())


def main(argv: list[str] | None = None) -> dict[str, float]:
    def extra(parser):
        parser.add_argument("--rows", type=positive_int, default=1_000_000,
                            help="rows of the data set (default 1,000,000: 195 MiB)")
        parser.add_argument("--budget-mb", type=positive_int, default=64,
                            help="what fit may add to the peak resident memory, MiB "
                                 "(default 64)")

    args = parse_args(__doc__, epochs=2, lr=1e-3, argv=argv, extra=extra)
    out = out_dir(args, "streaming")
    with tempfile.TemporaryDirectory(prefix="xnn-streaming-") as folder:
        X, y = write(pathlib.Path(folder), args.rows, args.seed)
        data_mib = (X.nbytes + y.nbytes) / 2 ** 20
        def train(X: np.memmap, y: np.memmap, epochs: int, progress: bool,
                  **validation: Any) -> xnn.History:
            model = xnn.nn.Sequential(xnn.nn.Linear(FEATURES, 64), xnn.nn.ReLU(),
                                      xnn.nn.Linear(64, 64), xnn.nn.ReLU(),
                                      xnn.nn.Linear(64, 1))
            return xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                           optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                           epochs=epochs, batch_size=BATCH, seed=args.seed,
                           metrics=["r2_score"], progress=progress,
                           distributed=args.distributed, **validation)

        # the backend's own start-up is not the data's: JAX compiles a kernel for each
        # operation and array shape at first use (70-250 MiB here). So first a fit of the same
        # shapes: a full batch and the last one, and the same validation rows
        cut = args.rows - math.ceil(0.1 * args.rows)  # where validation_split=0.1 cuts
        warm = min(cut, BATCH + cut % BATCH)
        train(X[:warm], y[:warm], 1, False, validation_data=(X[cut:], y[cut:]))
        with PeakMemory() as memory:
            history = train(X, y, args.epochs, not args.no_progress, validation_split=0.1)
        growth = memory.peak - memory.start
        del X, y  # the memmaps, before their files go
    print(f"backend {xnn.get_backend()}: {args.rows:,} rows ({data_mib:.0f} MiB of data), "
          f"validation R^2 {history['val_r2_score'][-1]:.3f}")
    print(f"own memory grew by at most {growth:.0f} MiB during fit, budget {args.budget_mb} MiB: "
          f"{'within' if growth <= args.budget_mb else 'OVER'} budget")
    xnn.plot.loss_curve(history, out / "loss.png", title="streamed from a memmap")
    print(f"plots written to {out}/")
    return {"val_r2": history["val_r2_score"][-1], "rss_growth_mib": growth,
            "budget_mib": float(args.budget_mb), "data_mib": data_mib}


if __name__ == "__main__":
    main()
