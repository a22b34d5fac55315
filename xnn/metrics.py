"""Metrics computed on the backend: each returns a 0-d array, so nothing syncs with the host."""

from __future__ import annotations

from typing import Any, Callable

from .backend import array_namespace

__all__ = ["accuracy", "binary_accuracy", "mse", "mae", "r2_score", "confusion_matrix",
           "get_metric", "Metric"]

Metric = Callable[[Any, Any], Any]


def _same_shape(name: str, pred: Any, target: Any) -> None:
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match prediction "
                         f"shape {tuple(pred.shape)}")


def accuracy(pred: Any, target: Any) -> Any:
    """Fraction of rows whose highest score is the true class.

    pred: (batch, classes) scores, logits or probabilities; target: (batch,) integer labels
    or (batch, classes) one-hot / probabilities.
    """
    xp = array_namespace(pred, target)
    if pred.ndim != 2:
        raise ValueError(f"accuracy: expected scores of shape (batch, classes), got shape "
                         f"{tuple(pred.shape)}")
    labels = xp.argmax(target, axis=1) if target.ndim == 2 else target
    if tuple(labels.shape) != (pred.shape[0],):
        raise ValueError(f"accuracy: expected labels of shape ({pred.shape[0]},) or one-hot of "
                         f"shape {tuple(pred.shape)}, got shape {tuple(target.shape)}")
    hits = xp.argmax(pred, axis=1) == xp.astype(labels, xp.int64)
    return xp.mean(xp.astype(hits, pred.dtype))


def binary_accuracy(pred: Any, target: Any, threshold: float = 0.5) -> Any:
    """Fraction of entries where (pred > threshold) equals the 0/1 target (Keras' rule)."""
    xp = array_namespace(pred, target)
    _same_shape("binary_accuracy", pred, target)
    hits = (pred > threshold) == (target > 0.5)
    return xp.mean(xp.astype(hits, pred.dtype))


def mse(pred: Any, target: Any) -> Any:
    """Mean squared error over every element."""
    xp = array_namespace(pred, target)
    _same_shape("mse", pred, target)
    diff = pred - target
    return xp.mean(diff * diff)


def mae(pred: Any, target: Any) -> Any:
    """Mean absolute error over every element."""
    xp = array_namespace(pred, target)
    _same_shape("mae", pred, target)
    return xp.mean(xp.abs(pred - target))


def r2_score(pred: Any, target: Any) -> Any:
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's default).

    1 - sum((t - p)^2) / sum((t - mean t)^2) per output column; a constant column scores 1 when
    predicted exactly and 0 otherwise, as scikit-learn scores it.
    """
    xp = array_namespace(pred, target)
    _same_shape("r2_score", pred, target)
    t = xp.reshape(target, (target.shape[0], -1))
    p = xp.reshape(pred, (pred.shape[0], -1))
    residual = xp.sum((t - p) ** 2, axis=0)
    total = xp.sum((t - xp.mean(t, axis=0)) ** 2, axis=0)
    safe = xp.where(total > 0, total, 1)
    score = xp.where(total > 0, 1 - residual / safe, xp.astype(residual == 0, p.dtype))
    return xp.mean(score)


def confusion_matrix(pred: Any, target: Any, num_classes: int) -> Any:
    """(classes, classes) counts: row = true class, column = predicted class.

    pred: (batch, classes) scores or (batch,) predicted labels; target: (batch,) labels.
    """
    xp = array_namespace(pred, target)
    predicted = xp.argmax(pred, axis=1) if pred.ndim == 2 else pred
    classes = xp.arange(num_classes, device=target.device)
    true_hot = xp.astype(xp.astype(target, xp.int64)[:, None] == classes, xp.int64)
    pred_hot = xp.astype(xp.astype(predicted, xp.int64)[:, None] == classes, xp.int64)
    return true_hot.T @ pred_hot


_BY_NAME: dict[str, Metric] = {f.__name__: f for f in (accuracy, binary_accuracy, mse, mae, r2_score)}
_BY_NAME.update({"acc": accuracy, "r2": r2_score})


def get_metric(metric: str | Metric) -> tuple[str, Metric]:
    """A metric and its name from a callable or one of the names above."""
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    if metric in _BY_NAME:
        return metric, _BY_NAME[metric]
    raise ValueError(f"unknown metric {metric!r}; expected a callable or one of {sorted(_BY_NAME)}")
