"""Pictures of training: loss curves, decision surfaces, fits and confusion matrices.

Needs matplotlib: the extra ``plot`` (``pip install "xnn-mlp[plot]"``). Figures are drawn off-screen with the Agg
canvas, so plotting works on servers and never touches pyplot's global state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Sequence

from ._checks import flag
from .backend import host_backend, to_numpy
from .extras import install_hint
from .loop import History
from .predict import predict

__all__ = ["loss_curve", "decision_surface", "fit_curve", "confusion_matrix"]


def _figure(ncols: int = 1, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, list]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(f'plotting needs matplotlib: {install_hint("plot")}') from err
    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _save(fig: Any, path: str | os.PathLike) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return os.fspath(path)


def loss_curve(history: Any, path: str | os.PathLike, *, title: str = "training",
               log_scale: bool = True, metric_label: str | None = None) -> str:
    """Loss (and val_loss) per epoch on the left, any metrics on the right; returns the path.

    Epochs count from 1. Each quantity has its colour, solid for training and dashed for
    validation. A metric named like r2 is drawn as 1 - R², where a good fit's progress shows
    (R² itself sits flat just below 1); when every metric is an error (1 - R², or a name with
    mse, mae or err), the metrics panel has a log scale, as the loss has with ``log_scale``.
    ``metric_label`` labels the metrics' axis (default: the metric's name, or "metric").
    ``history`` is fit's History, or a mapping of per-epoch lists (``{"loss": [...]}``).
    """
    log_scale = flag("loss_curve", "log_scale", log_scale)
    logs = history.history if isinstance(history, History) else history
    if not isinstance(logs, Mapping):
        raise TypeError(f"loss_curve: history must be fit's History or a mapping of lists "
                        f"({{'loss': [...]}}), got {type(history).__name__}")
    metrics = [k for k in logs if not k.endswith("loss")]
    fig, axes = _figure(2 if metrics else 1)
    # a mapping's lists are the epochs from the first
    epochs = ([e + 1 for e in history.epoch] if isinstance(history, History)
              else list(range(1, 1 + len(next(iter(logs.values()), [])))))
    bases = list(dict.fromkeys(k.removeprefix("val_") for k in logs))  # one colour each

    def draw(ax: Any, key: str, values: list[float], label: str) -> None:
        colour = f"C{bases.index(key.removeprefix('val_')) % 10}"
        ax.plot(epochs, values, "--" if key.startswith("val_") else "-", color=colour,
                label=label)

    for key in ("loss", "val_loss"):
        if key in logs:
            draw(axes[0], key, logs[key], key)
    _label_panel(axes[0], log_scale, logs.get("loss", []), "loss", title)
    if not metrics:
        return _save(fig, path)
    plotted = []
    for key in metrics:
        r2_like = "r2" in key
        values = [1.0 - v for v in logs[key]] if r2_like else logs[key]
        plotted += values
        draw(axes[1], key, values, f"1 - {key}" if r2_like else key)
    if metric_label is None:
        if all("r2" in k for k in metrics):
            metric_label = "1 - R² (lower is better)"
        else:
            names = list(dict.fromkeys(k.removeprefix("val_") for k in metrics))
            metric_label = names[0] if len(names) == 1 else "metric"
    errors = all("r2" in k or any(w in k for w in ("mse", "mae", "err")) for k in metrics)
    _label_panel(axes[1], errors, plotted, metric_label, "metrics")
    return _save(fig, path)


def _label_panel(ax: Any, log: bool, values: list[float], ylabel: str, title: str) -> None:
    """Axis labels, title, legend, grid and whole-epoch ticks of a panel over epochs; a log
    scale (said in the label) when ``log`` and every one of ``values`` is positive."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - _figure has imported matplotlib

    log = log and all(v > 0 for v in values)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel=ylabel + (" (log scale)" if log else ""), title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()


def decision_surface(model: Any, X: Any, y: Any, path: str | os.PathLike, *,
                     title: str = "decision surface", resolution: int = 200,
                     padding: float = 0.25, threshold: float = 0.5) -> str:
    """A binary classifier's output over a grid of its two inputs, its decision boundary (output
    = ``threshold``), and the points (X, y): a marker per class, misclassified ones ringed.

    The model runs through ``xnn.predict`` (evaluation mode); it must have one output, such as
    a probability from a final Sigmoid. y holds the classes 0 and 1.
    """
    hx = host_backend().xp
    pts, labels = to_numpy(X), to_numpy(y).reshape(-1) >= 0.5
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"decision_surface: X must have 2 input columns, got shape {pts.shape}")
    lo, hi = pts.min(axis=0) - padding, pts.max(axis=0) + padding
    mx, my = hx.meshgrid(*(hx.linspace(float(a), float(b), resolution) for a, b in zip(lo, hi)))
    grid = hx.stack([hx.reshape(mx, (-1,)), hx.reshape(my, (-1,))], axis=1)
    out = to_numpy(predict(model, grid))
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"decision_surface: the model must have one output (a binary "
                         f"classifier's), got outputs of shape {out.shape[1:]}")
    predicted = to_numpy(predict(model, pts))[:, 0] >= threshold
    surface = hx.reshape(out[:, 0], mx.shape)
    fig, (ax,) = _figure(size=(5.5, 5.2))
    image = ax.contourf(mx, my, surface, levels=20, cmap="RdBu_r", alpha=0.8)
    fig.colorbar(image, ax=ax, label="model output")
    if surface.min() < threshold < surface.max():
        ax.contour(mx, my, surface, levels=[threshold], colors="black", linewidths=1.5)
    size = 140 if len(pts) <= 20 else 30
    for cls, marker, face, edge in ((0, "o", "white", "black"), (1, "^", "black", "white")):
        mine = labels == bool(cls)
        ax.scatter(pts[mine, 0], pts[mine, 1], marker=marker, s=size, c=face,
                   edgecolors=edge, linewidths=0.8, label=f"class {cls}", zorder=3)
    wrong = predicted != labels
    ax.scatter(pts[wrong, 0], pts[wrong, 1], marker="o", s=size * 3.5, facecolors="none",
               edgecolors="gold", linewidths=2.0, zorder=4,
               label=f"misclassified ({int(wrong.sum())} of {len(pts)})")
    ax.plot([], [], color="black", linewidth=1.5, label=f"boundary (output {threshold:g})")
    ax.set(xlabel="x1", ylabel="x2", title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    return _save(fig, path)


def fit_curve(x: Any, y: Any, path: str | os.PathLike, *, curves: dict[str, tuple[Any, Any]],
              truth: tuple[Any, Any] | None = None, title: str = "fit") -> str:
    """Data points (x, y), the ``truth`` (x, y) as a dashed black line on top, and labelled
    curves {"label": (x, y)} in distinct colours, each sorted by x."""
    fig, (ax,) = _figure()
    ax.scatter(to_numpy(x).reshape(-1), to_numpy(y).reshape(-1), s=8, alpha=0.35, c="0.45",
               edgecolors="none", label="data", zorder=1)
    colours = ("tab:orange", "tab:blue", "tab:green", "tab:purple")
    lines = [(label, xy, {"color": colours[i % len(colours)], "linewidth": 3.0, "zorder": 2})
             for i, (label, xy) in enumerate(curves.items())]
    if truth is not None:  # drawn last and dashed, so the truth shows where a fit covers it
        lines.append(("truth", truth, {"color": "black", "linewidth": 1.5, "linestyle": "--",
                                       "zorder": 3}))
    for label, (cx, cy), style in lines:
        cx, cy = to_numpy(cx).reshape(-1), to_numpy(cy).reshape(-1)
        order = cx.argsort()
        ax.plot(cx[order], cy[order], label=label, **style)
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(matrix: Any, path: str | os.PathLike, *,
                     class_names: Sequence[str] | None = None, title: str = "confusion matrix") -> str:
    """A (classes, classes) count matrix, true classes down and predictions across."""
    counts = to_numpy(matrix)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(counts))]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or len(names) != len(counts):
        raise ValueError(f"confusion_matrix: expected a square matrix and one class name per "
                         f"row, got shape {tuple(counts.shape)} and {len(names)} names")
    fig, (ax,) = _figure(size=(5.5, 5.0))
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, label="count")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    for i, j in zip(*counts.nonzero()):  # the cells with a count
        ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=8,
                color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)
