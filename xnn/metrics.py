"""Metrics computed on the backend: each returns a 0-d array, so nothing syncs with the host.

Predictions are floating-point arrays; pred and target must come from one library and device
(TypeError / ValueError naming the metric otherwise). Regression and binary targets of an
integer or bool dtype are cast to the prediction's dtype, as scikit-learn accepts them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ._checks import FLOAT, check_labels, expect, integer
from .namespace import device_of, dtype_name

__all__ = ["accuracy", "binary_accuracy", "mse", "mae", "r2_score", "confusion_matrix",
           "get_metric", "Metric"]

Metric = Callable[[Any, Any], Any]


def _namespace(name: str, pred: Any, target: Any, dtype: Any = FLOAT) -> Any:
    """The namespace of a prediction (of ``dtype``, as expect takes it) and a target of its
    library and device."""
    xp = expect(name, pred, dtype=dtype, what="prediction")
    expect(name, target, like=pred, dtype=None, what="target", like_what="prediction")
    return xp


def _real_pair(name: str, pred: Any, target: Any) -> tuple[Any, Any]:
    """The namespace and the target of a float prediction and a target of its library, device
    and shape; an integer or bool target (0/1 labels) comes in pred's dtype."""
    xp = _namespace(name, pred, target)
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match prediction "
                         f"shape {tuple(pred.shape)}")
    if xp.isdtype(target.dtype, "real floating"):
        return xp, target
    if xp.isdtype(target.dtype, ("integral", "bool")):
        return xp, xp.astype(target, pred.dtype)
    raise TypeError(f"{name}: expected a real-valued target, got dtype {dtype_name(target.dtype)}")


def accuracy(pred: Any, target: Any) -> Any:
    """Fraction of rows whose highest score is the true class.

    pred: (batch, classes) scores, logits or probabilities; target: (batch,) integer labels
    or (batch, classes) one-hot / probabilities.
    """
    xp = _namespace("accuracy", pred, target)
    if pred.ndim != 2 or pred.shape[1] == 0:
        raise ValueError(f"accuracy: expected scores of shape (batch, classes) with at least "
                         f"one class, got shape {tuple(pred.shape)}")
    if tuple(target.shape) not in ((pred.shape[0],), tuple(pred.shape)):
        raise ValueError(f"accuracy: expected labels of shape ({pred.shape[0]},) or one-hot of "
                         f"shape {tuple(pred.shape)}, got shape {tuple(target.shape)}")
    if target.ndim == 1 and not xp.isdtype(target.dtype, "integral"):
        raise TypeError(f"accuracy: expected integer labels, got dtype "
                        f"{dtype_name(target.dtype)}")
    if target.ndim == 2 and not xp.isdtype(target.dtype, ("integral", "real floating")):
        raise TypeError(f"accuracy: expected one-hot targets of a number dtype, got dtype "
                        f"{dtype_name(target.dtype)}")
    labels = xp.argmax(target, axis=1) if target.ndim == 2 else target
    hits = xp.argmax(pred, axis=1) == xp.astype(labels, xp.int64)
    return xp.mean(xp.astype(hits, pred.dtype))


def binary_accuracy(pred: Any, target: Any, threshold: float = 0.5) -> Any:
    """Fraction of entries where (pred > threshold) equals the 0/1 target (Keras' rule)."""
    xp, target = _real_pair("binary_accuracy", pred, target)
    hits = (pred > threshold) == (target > 0.5)
    return xp.mean(xp.astype(hits, pred.dtype))


def mse(pred: Any, target: Any) -> Any:
    """Mean squared error over every element."""
    xp, target = _real_pair("mse", pred, target)
    diff = pred - target
    return xp.mean(diff * diff)


def mae(pred: Any, target: Any) -> Any:
    """Mean absolute error over every element."""
    xp, target = _real_pair("mae", pred, target)
    return xp.mean(xp.abs(pred - target))


def r2_score(pred: Any, target: Any) -> Any:
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's default).

    1 - sum((t - p)^2) / sum((t - mean t)^2) per output column; a constant column scores 1 when
    predicted exactly and 0 otherwise, as scikit-learn scores it. Needs at least one sample.
    """
    xp, target = _real_pair("r2_score", pred, target)
    if pred.ndim == 0 or pred.shape[0] == 0:
        raise ValueError(f"r2_score: expected at least one sample along the first axis, got "
                         f"shape {tuple(pred.shape)}")
    columns = (pred.shape[0], math.prod(pred.shape[1:]))  # not -1: ambiguous for 0 columns
    t = xp.reshape(target, columns)
    p = xp.reshape(pred, columns)
    residual = xp.sum((t - p) ** 2, axis=0)
    total = xp.sum((t - xp.mean(t, axis=0)) ** 2, axis=0)
    safe = xp.where(total > 0, total, 1)
    score = xp.where(total > 0, 1 - residual / safe, xp.astype(residual == 0, p.dtype))
    return xp.mean(score)


def confusion_matrix(pred: Any, target: Any, num_classes: int) -> Any:
    """(classes, classes) counts: row = true class, column = predicted class.

    pred: (batch, classes) scores or (batch,) predicted labels; target: (batch,) labels.
    Labels outside [0, num_classes) raise ValueError; checking them reads their min and max
    back to the host (a device sync), so call it at epoch ends, not per step.
    """
    name = "confusion_matrix"
    integer(name, "num_classes", num_classes, low=1)
    xp = _namespace(name, pred, target, dtype=None)
    if target.ndim != 1:
        raise ValueError(f"{name}: expected 1-D labels as the target, got shape "
                         f"{tuple(target.shape)}")
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(f"{name}: expected integer labels as the target, got dtype "
                        f"{dtype_name(target.dtype)}")
    if pred.ndim == 2:
        expect(name, pred, what="score")
        if pred.shape[1] != num_classes:
            raise ValueError(f"{name}: expected scores of shape (batch, {num_classes}), got "
                             f"shape {tuple(pred.shape)}")
    elif pred.ndim != 1:
        raise ValueError(f"{name}: expected (batch, classes) scores or 1-D predicted labels, "
                         f"got shape {tuple(pred.shape)}")
    elif not xp.isdtype(pred.dtype, "integral"):
        raise TypeError(f"{name}: expected integer predicted labels, got dtype "
                        f"{dtype_name(pred.dtype)}")
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"{name}: {pred.shape[0]} predictions but {target.shape[0]} labels")
    check_labels(name, xp, target, num_classes)
    if pred.ndim == 1:
        check_labels(f"{name} (predicted labels)", xp, pred, num_classes)
    predicted = xp.argmax(pred, axis=1) if pred.ndim == 2 else pred
    classes = xp.arange(num_classes, device=device_of(target))
    true_hot = xp.astype(xp.astype(target, xp.int64)[:, None] == classes, xp.int64)
    pred_hot = xp.astype(xp.astype(predicted, xp.int64)[:, None] == classes, xp.int64)
    return true_hot.T @ pred_hot


# every name fit takes, with Keras' and scikit-learn's aliases; fit logs a metric under the name
# it was given, as Keras does
_BY_NAME: dict[str, Metric] = {
    "accuracy": accuracy, "acc": accuracy, "categorical_accuracy": accuracy,
    "sparse_categorical_accuracy": accuracy, "binary_accuracy": binary_accuracy,
    "mse": mse, "mean_squared_error": mse, "mae": mae, "mean_absolute_error": mae,
    "r2_score": r2_score, "r2": r2_score,
}


def get_metric(metric: str | Metric) -> tuple[str, Metric]:
    """A metric and its name from a callable or one of the names above (its name as given)."""
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    if not isinstance(metric, str):
        raise TypeError(f"get_metric: expected a callable or a metric name (one of "
                        f"{sorted(_BY_NAME)}), got {type(metric).__name__}")
    if metric in _BY_NAME:
        return metric, _BY_NAME[metric]
    raise ValueError(f"get_metric: unknown metric {metric!r}; expected a callable or one of "
                     f"{sorted(_BY_NAME)}")
