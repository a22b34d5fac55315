"""Pictures of training: loss curves, decision surfaces, fits and confusion matrices.

Needs matplotlib (``pip install "xnn[plot]"``). Figures are drawn off-screen with the Agg
canvas, so plotting works on servers and never touches pyplot's global state.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .backend import to_numpy
from .extras import install_hint

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
               log_scale: bool = True) -> str:
    """Loss (and val_loss) per epoch on the left, any metrics on the right; returns the path."""
    logs = history.history
    metrics = [k for k in logs if not k.endswith("loss")]
    fig, axes = _figure(2 if metrics else 1)
    epochs = [e + 1 for e in history.epoch]
    for key in ("loss", "val_loss"):
        if key in logs:
            axes[0].plot(epochs, logs[key], label=key)
    if log_scale and all(v > 0 for v in logs.get("loss", [1.0])):
        axes[0].set_yscale("log")
    axes[0].set(xlabel="epoch", ylabel="loss", title=title)
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    for key in metrics:
        axes[1].plot(epochs, logs[key], label=key)
    if metrics:
        axes[1].set(xlabel="epoch", title="metrics")
        axes[1].legend()
        axes[1].grid(alpha=0.3)
    return _save(fig, path)


def decision_surface(model: Any, X: Any, y: Any, path: str | os.PathLike, *,
                     title: str = "decision surface", resolution: int = 200,
                     padding: float = 0.25) -> str:
    """The model's output over a grid of its two inputs, with the training points on top."""
    from .backend import asarray, backend_of, host_backend  # noqa: PLC0415

    hx = host_backend().xp
    pts, labels = to_numpy(X), to_numpy(y).reshape(-1)
    lo, hi = pts.min(axis=0) - padding, pts.max(axis=0) + padding
    gx = hx.linspace(float(lo[0]), float(hi[0]), resolution)
    gy = hx.linspace(float(lo[1]), float(hi[1]), resolution)
    mx, my = hx.meshgrid(gx, gy)
    grid = hx.stack([hx.reshape(mx, (-1,)), hx.reshape(my, (-1,))], axis=1)
    params = model.parameters()
    backend = backend_of(params[0].value)
    out = to_numpy(model(asarray(grid, dtype=params[0].value.dtype, backend=backend)))
    fig, (ax,) = _figure(size=(5.0, 4.5))
    image = ax.contourf(mx, my, hx.reshape(out[:, 0], mx.shape), levels=20, cmap="RdBu_r")
    fig.colorbar(image, ax=ax, label="output")
    ax.scatter(pts[:, 0], pts[:, 1], c=labels, cmap="RdBu_r", edgecolors="k", s=80)
    ax.set(xlabel="x1", ylabel="x2", title=title)
    return _save(fig, path)


def fit_curve(x: Any, y: Any, path: str | os.PathLike, *, curves: dict[str, tuple[Any, Any]],
              title: str = "fit") -> str:
    """Data points (x, y) and labelled curves {"label": (x, y)}, sorted by x."""
    fig, (ax,) = _figure()
    ax.scatter(to_numpy(x).reshape(-1), to_numpy(y).reshape(-1), s=6, alpha=0.4, label="data")
    for label, (cx, cy) in curves.items():
        cx, cy = to_numpy(cx).reshape(-1), to_numpy(cy).reshape(-1)
        order = cx.argsort()
        ax.plot(cx[order], cy[order], linewidth=2, label=label)
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(matrix: Any, path: str | os.PathLike, *,
                     class_names: Sequence[str] | None = None, title: str = "confusion matrix") -> str:
    """A (classes, classes) count matrix, true classes down and predictions across."""
    counts = to_numpy(matrix)
    fig, (ax,) = _figure(size=(5.5, 5.0))
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(counts))]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)
