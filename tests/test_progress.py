"""fit's progress display: a tqdm.auto bar on a terminal or in a notebook, one line per epoch
elsewhere; drawn only when due, so fit reads its logs only then."""

from __future__ import annotations

import io

import tqdm.auto

from xnn.progress import ProgressBar


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Widget:
    """Stands in for tqdm.notebook.tqdm, the class tqdm.auto gives inside Jupyter."""

    __module__ = "tqdm.notebook"
    made: list = []

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.n, self.postfix, self.closed = kwargs, 0, "", False
        _Widget.made.append(self)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


def test_a_notebook_gets_the_widget_even_without_a_terminal(monkeypatch):
    monkeypatch.setattr(tqdm.auto, "tqdm", _Widget)
    stream = io.StringIO()  # a kernel's stderr is no terminal
    bar = ProgressBar(3, stream=stream)
    widget = _Widget.made[-1]
    assert bar.bar is widget and not bar.lines
    assert widget.kwargs["ncols"] is None and widget.kwargs["dynamic_ncols"] is False
    bar.update(2, {"loss": 0.25, "val_loss": 0.5})
    assert widget.n == 2 and widget.postfix == "loss=0.25 val_loss=0.5"
    bar.close()  # then the last logs in full, kept in the cell's output
    assert widget.closed and stream.getvalue().startswith("epoch 2/3: loss 0.25, val_loss 0.5 (")


def test_lines_are_bounded_and_the_bar_drawn_at_most_every_interval(monkeypatch):
    monkeypatch.delenv("XNN_PROGRESS_LINES", raising=False)
    lines = ProgressBar(100, stream=io.StringIO())
    assert lines.lines and [e for e in range(1, 101) if lines.due(e)] == list(range(5, 101, 5))
    monkeypatch.setenv("XNN_PROGRESS_LINES", "3")
    assert [e for e in range(1, 11) if ProgressBar(10, stream=io.StringIO()).due(e)] == [4, 8, 10]
    monkeypatch.setenv("XNN_PROGRESS_LINES", "1000")
    assert all(ProgressBar(7, stream=io.StringIO()).due(e) for e in range(1, 8))
    bar = ProgressBar(100, stream=_TTY(), interval=3600.0)
    bar.update(1, {"loss": 1.0})
    assert not bar.due(2) and not bar.due(99) and bar.due(100)  # the last epoch always
    bar.close()
    off = ProgressBar(100, enabled=False, stream=_TTY())
    assert not any(off.due(e) for e in (1, 100))
    off.update(100, {"loss": 1.0})
    off.close()
    assert off.stream.getvalue() == ""


def test_a_shorter_redraw_leaves_no_characters_of_the_longer_one():
    terminal = _TTY()
    bar = ProgressBar(3, stream=terminal, interval=0.0)
    bar.update(1, {"loss": 123456.0, "a_long_metric_name": 0.5})
    bar.update(2, {"loss": 1.0})
    bar.close()
    first, second = terminal.getvalue().split("\r")[2:4]
    assert len(second) >= len(first.rstrip())  # padded over the longer line
    assert "a_long_metric_name" not in second


def test_a_log_file_gets_a_bounded_number_of_lines_ending_with_the_last_epoch(monkeypatch):
    monkeypatch.delenv("XNN_PROGRESS_LINES", raising=False)
    log = io.StringIO()
    bar = ProgressBar(3000, stream=log)
    for epoch in range(1, 3001):
        if bar.due(epoch):
            bar.update(epoch, {"loss": 1.0 / epoch})
    bar.close()
    written = log.getvalue().splitlines()
    assert len(written) == 20
    assert written[-1].startswith("epoch 3000/3000: loss 0.0003333 (")


def test_a_narrow_terminal_shows_every_metric_and_a_full_last_line(monkeypatch):
    terminal = _TTY()
    bar = ProgressBar(200, stream=terminal, interval=0.0)
    bar.bar.ncols = 80  # an 80-column terminal
    logs = {"loss": 0.0003439, "accuracy": 1.0, "val_loss": 0.0004521, "val_accuracy": 0.9833}
    for epoch in (1, 200):
        bar.update(epoch, logs)
    bar.close()
    drawn = terminal.getvalue().split("\r")[-1].splitlines()
    assert len(drawn[0]) <= 80 and ("loss=0.0003439 accuracy=1 val_loss=0.0004521 "
                                    "val_accuracy=0.9833") in drawn[0]  # the bar's last draw
    assert "epoch/s" not in drawn[0] and "<" not in drawn[0]  # no rate, no time left
    assert drawn[-1].startswith("epoch 200/200: loss 0.0003439, accuracy 1, val_loss "
                                "0.0004521, val_accuracy 0.9833 (")
