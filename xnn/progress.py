"""A one-line progress bar for training, drawn on a terminal only, at epoch ends, at most ten
times a second (and at the last epoch)."""

from __future__ import annotations

import sys
import time
from typing import IO


class ProgressBar:
    """``epoch 12/100 [=====>     ] loss 0.1234  val_loss 0.2345  3.2 epochs/s`` on one line."""

    def __init__(self, total: int, enabled: bool = True, stream: IO[str] | None = None,
                 width: int = 24, interval: float = 0.1) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.width, self.interval = total, width, interval
        self.start = self.next_draw = time.perf_counter()
        self.drawn = 0  # the last epoch drawn

    def due(self, epoch: int) -> bool:
        """Whether to redraw after ``epoch`` (1-based): the last epoch, or ``interval`` seconds
        after the last redraw. Always False when disabled."""
        return self.enabled and epoch != self.drawn and (
            epoch == self.total or time.perf_counter() >= self.next_draw)

    def update(self, epoch: int, logs: dict[str, float]) -> None:
        """Redraw after ``epoch`` (1-based) finished with these logs."""
        if not self.enabled:
            return
        now = time.perf_counter()
        done = int(self.width * epoch / self.total)
        bar = "=" * done + (">" if done < self.width else "") + " " * (self.width - done - 1)
        rate = epoch / max(now - self.start, 1e-9)
        values = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        self.stream.write(f"\repoch {epoch}/{self.total} [{bar[:self.width]}] {values}  "
                          f"{rate:.3g} epochs/s")
        self.stream.flush()
        self.drawn, self.next_draw = epoch, now + self.interval

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
