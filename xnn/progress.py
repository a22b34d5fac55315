"""fit's progress display: a ``tqdm.auto`` bar on a terminal or in a notebook (a widget there),
a bounded number of lines otherwise (a CI log, a file), drawn at epoch ends only."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from ._checks import env_int


def line_budget() -> int:
    """The most lines a fit prints where output is not a terminal: XNN_PROGRESS_LINES, else 20
    (a value other than an int of at least 1 is a ValueError naming the variable)."""
    return env_int("XNN_PROGRESS_LINES", 20, low=1)


class ProgressBar:
    """Training progress over ``total`` epochs, with the latest logs as the bar's postfix.

    On a terminal or in a notebook, a tqdm bar redrawn in place at most every ``interval``
    seconds (and at the last epoch): reading the logs is a device sync, so fit reads them only
    when the bar is due. The logs come before the bar, which shrinks to leave them room (no
    rate or time left: a terminal's width goes to the logs); when the bar closes, the last
    epoch's logs are written in full on a line of their own. Anywhere else, at most about 20
    lines per fit (XNN_PROGRESS_LINES in the environment changes it), evenly spaced over the
    epochs and always the last: ``epoch 3/300: loss 0.1234, val_loss 0.2345 (1.2 s)``.
    """

    def __init__(self, total: int, enabled: bool = True, stream: IO[str] | None = None,
                 interval: float = 0.1) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total, self.interval = total, interval
        self.every = max(1, -(-total // line_budget()))  # epochs between lines (a ceiling)
        self.last: dict[str, float] = {}
        self.start = self.next_draw = time.perf_counter()
        self.drawn = 0  # the last epoch drawn (1-based)
        self.bar: Any = None
        self.lines = False
        self.enabled = bool(enabled) and self.stream is not None  # pythonw and co.: no stderr
        if not self.enabled:
            return
        from tqdm.auto import tqdm  # noqa: PLC0415 - only when a bar is shown

        notebook = any(cls.__module__.startswith("tqdm.notebook") for cls in tqdm.__mro__)
        terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = not (notebook or terminal)  # a CI log or a file: a line now and then
        if notebook or terminal:
            # follow the window's width; a terminal that reports no size (some pseudo-terminals
            # say 0 x 0, where tqdm would draw nothing) gets 80 x 24; a widget sizes itself
            sized = notebook or _sized(self.stream)
            self.bar = tqdm(total=total, desc="epoch", unit="epoch", file=self.stream,
                            dynamic_ncols=not notebook and sized,
                            ncols=None if sized else 80, nrows=None if sized else 24,
                            mininterval=0, leave=True,
                            bar_format="{n_fmt}/{total_fmt}{postfix} |{bar}|")

    def due(self, epoch: int) -> bool:
        """Whether to draw after ``epoch`` (1-based): the last epoch always; as lines, every
        ``every``-th epoch; for the bar, ``interval`` seconds after the last redraw. Always False
        when disabled."""
        return self.enabled and epoch != self.drawn and (epoch == self.total or (
            epoch % self.every == 0 if self.lines else time.perf_counter() >= self.next_draw))

    def update(self, epoch: int, logs: dict[str, float]) -> None:
        """Draw after ``epoch`` (1-based) finished with these logs."""
        if not self.enabled:
            return
        self.last = logs
        if self.lines:
            self._line(epoch, logs)
        else:
            self.bar.set_postfix_str(" ".join(f"{k}={v:.4g}" for k, v in logs.items()),
                                     refresh=False)
            self.bar.update(epoch - self.bar.n)
        self.drawn, self.next_draw = epoch, time.perf_counter() + self.interval

    def _line(self, epoch: int, logs: dict[str, float]) -> None:
        values = ", ".join(f"{k} {v:.4g}" for k, v in logs.items())
        elapsed = f"{time.perf_counter() - self.start:.1f} s"
        self.stream.write(f"epoch {epoch}/{self.total}: {values} ({elapsed})\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (or widget), then write the last logs drawn in full on a line of
        their own (a narrow terminal may have cut them off; a notebook keeps them in its output);
        nothing more for lines."""
        if self.bar is not None:
            self.bar.close()
            if self.last:
                self._line(self.drawn, self.last)
            self.bar = None


def _sized(stream: IO[str]) -> bool:
    """Whether the terminal ``stream`` writes to reports its size."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor, or not a terminal's
        return False
    return size.columns > 0 and size.lines > 0
