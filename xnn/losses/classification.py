"""Losses for classes: binary (BCELoss on probabilities, BCEWithLogitsLoss on logits) and
multi-class (CrossEntropyLoss on logits, NLLLoss on log-probabilities).

Multi-class scores have shape (batch, classes); labels are integers in [0, classes) of shape
(batch,). Every loss keeps its value and gradient together and computes what they share once.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from .._checks import (HOST_XP, check_labels, expect, flag, int_range, integer, is_labels,
                       number, read_numbers)
from ..backend import dtype_name
from ..namespace import device_of
from ..nn.activations import log_softmax, sigmoid
from .base import Loss, check_weight

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "log_softmax"]


# --- binary ----------------------------------------------------------------------------------

# torch's floor under the BCE gradient's denominator is the float32 1e-12f, even in float64
_TORCH_BCE_EPSILON = 9.999999960041972e-13


class BCELoss(Loss):
    """Binary cross-entropy of probabilities: -w [t log p + (1 - t) log(1 - p)] per element.

    ``pred`` holds probabilities in [0, 1] (a sigmoid's output), ``target`` values in [0, 1].
    Prefer BCEWithLogitsLoss on the logits: it is exact where the sigmoid saturates.

    Parameters
    ----------
    weight: optional float array broadcasting to the prediction; rescales each element's loss.
    reduction: "mean", "sum" or "none".
    validate: refuse predictions outside [0, 1] (logits passed by mistake) with a ValueError, as
        torch does. It reads their min and max back from the device: one sync per call on a
        GPU. Pass False in a hand-written GPU loop whose predictions cannot leave [0, 1] (a
        Sigmoid's output).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", *,
                 validate: bool = True) -> None:
        super().__init__(reduction)
        self.weight = check_weight(self, "weight", weight)
        self.validate = flag(self, "validate", validate)

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target, weight=self.weight)
        if self.validate and math.prod(pred.shape):
            lo, hi = (float(v) for v in read_numbers(xp, [xp.min(pred), xp.max(pred)]))
            if not (lo >= 0 and hi <= 1):  # NaN fails too, as in torch
                raise ValueError(f"BCELoss: expected probabilities in [0, 1] (a sigmoid's "
                                 f"output), got values in [{lo:.6g}, {hi:.6g}]; for logits use "
                                 f"BCEWithLogitsLoss")
        # torch clamps each log at -100, so p = 0 or 1 gives a finite loss. The max() with the
        # smallest subnormal first changes no p > 0 but keeps log(0) from warning on numpy.
        info = xp.finfo(pred.dtype)
        tiny = info.smallest_normal * info.eps
        # (maximum rather than xp.clip, which syncs on CuPy: compat clips with a boolean mask)
        log_p = xp.maximum(xp.log(xp.maximum(pred, tiny)), -100.0)
        log_1mp = xp.maximum(xp.log(xp.maximum(1 - pred, tiny)), -100.0)
        value = -(target * log_p + (1 - target) * log_1mp)
        # d/dp = -t/p + (1-t)/(1-p) = (p - t) / (p (1 - p)); torch floors the denominator at
        # 1e-12 (so it is not the clamped log's derivative at p = 0 or 1), and so do we
        grad = (pred - target) / xp.maximum(pred * (1 - pred), _TORCH_BCE_EPSILON)
        if self.weight is not None:
            value, grad = value * self.weight, grad * self.weight
        return self._summed(xp, value, grad, per_row)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of logits z = log(p / (1 - p)), stable for any z:
    -w [pos_weight t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))] per element.

    Parameters
    ----------
    weight: optional float array broadcasting to the prediction; rescales each element's loss.
    reduction: "mean", "sum" or "none".
    pos_weight: optional float array broadcasting to the prediction (one per output column,
        usually): the weight of the positive (t = 1) term, > 1 to favour recall.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = check_weight(self, "weight", weight)
        self.pos_weight = check_weight(self, "pos_weight", pos_weight)

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp = self._namespace(pred, target, weight=self.weight, pos_weight=self.pos_weight)
        z, t = pred, target
        pos_weight = 1.0 if self.pos_weight is None else self.pos_weight
        log_weight = 1 + (pos_weight - 1) * t          # weight of the -log sigmoid(z) term
        # -log sigmoid(z) = log(1 + e^-z) = log1p(e^-|z|) + max(-z, 0): exp never overflows;
        # -log(1 - sigmoid(z)) = z - log sigmoid(z), hence the (1 - t) z term
        softplus_neg = xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(-z, 0)
        value = (1 - t) * z + log_weight * softplus_neg
        # d/dz = (1 - t) - log_weight sigmoid(-z) = log_weight sigmoid(z) - pos_weight t;
        # without pos_weight that is sigmoid(z) - t
        grad = log_weight * sigmoid(xp, z) - pos_weight * t
        if self.weight is not None:
            value, grad = value * self.weight, grad * self.weight
        return self._summed(xp, value, grad, per_row)


# --- multi-class -----------------------------------------------------------------------------

class _ClassLoss(Loss):
    """What CrossEntropyLoss and NLLLoss share: class weights, ignore_index, integer labels
    (its constructor is NLLLoss's)."""

    _scores = "scores"  # what the prediction is called in messages

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 *, validate: bool = True) -> None:
        super().__init__(reduction)
        self.weight = check_weight(self, "weight", weight)
        self.ignore_index = integer(self, "ignore_index", ignore_index)
        self.validate = flag(self, "validate", validate)

    def _check_scores(self, scores: Any, target: Any) -> tuple[Any, int, int]:
        """(namespace, batch, classes) after checking the scores are a 2-D float array and the
        target an array in the same place (the class weights: _class_weight)."""
        xp = expect(self, scores, what=self._scores)
        expect(self, target, like=scores, dtype=None, what="target", like_what="prediction")
        shape = scores.shape
        if len(shape) != 2:
            raise ValueError(f"{type(self).__name__}: expected {self._scores} of shape "
                             f"(batch, classes), got shape {tuple(shape)}")
        return xp, shape[0], shape[1]

    def _class_weight(self, xp: Any, scores: Any) -> Any:
        """The (classes,) class weights: the given ones (checked), or ones."""
        classes = scores.shape[1]
        if self.weight is None:
            return xp.ones((classes,), dtype=scores.dtype, device=device_of(scores))
        if tuple(self.weight.shape) != (classes,):
            raise ValueError(f"{type(self).__name__}: expected a weight of shape ({classes},), "
                             f"one per class, got shape {tuple(self.weight.shape)}")
        expect(self, self.weight, like=scores, what="weight", like_what="prediction")
        return self.weight

    def _one_hot(self, xp: Any, labels: Any, classes: int, checked: bool = False) -> Any:
        """(batch, classes) mask, True at each sample's label, all False on ignored samples.

        The gradient needs the label's column set, a scatter the standard lacks; this mask
        (built with == and arange only) serves the value and the gradient alike. ``checked``:
        the caller has validated the labels already.
        """
        if self.validate and not checked:  # reads min and max back: a device sync on a GPU
            self._check_labels(xp, labels, classes)
        # uint8 labels, 300 classes: an arange in uint8 would wrap at 256 (every integer dtype
        # holds 0..127)
        if classes > 128 and classes - 1 > int_range(xp, labels.dtype)[1]:
            labels = xp.astype(labels, xp.int64)
        hot = labels[:, None] == _class_range(xp, classes, labels.dtype, device_of(labels))
        if 0 <= self.ignore_index < classes:  # an ignored label that is also a class column
            hot = hot & ~(labels == self.ignore_index)[:, None]
        return hot  # any other ignore_index (-100) matches no column: its rows are all False

    def _check_labels(self, xp: Any, labels: Any, classes: int) -> bool:
        """check_labels with this loss's ignore_index (None where no label of the dtype can
        equal it: -100 for uint8); True when every label is a class and none is ignored."""
        lo, hi = int_range(xp, labels.dtype)
        ignore = self.ignore_index if lo <= self.ignore_index <= hi else None
        return (check_labels(self, xp, labels, classes, ignore)
                and not 0 <= self.ignore_index < classes)

    def check_targets(self, labels: Any, classes: int) -> bool:
        """Raise ValueError unless every label that is not ignored lies in [0, classes): the
        check ``validate`` makes on each call, for ``fit`` to make once over all the labels
        before training (two reductions and one transfer, nothing of size batch x classes).
        Returns whether every label is a class (none ignored)."""
        xp = expect(self, labels, dtype=None, what="labels")
        return is_labels(xp, labels) and self._check_labels(xp, labels, classes)


@functools.lru_cache(maxsize=64)
def _cached_range(xp: Any, classes: int, dtype: Any, device: Any) -> Any:
    return xp.arange(classes, dtype=dtype, device=device)


def _class_range(xp: Any, classes: int, dtype: Any, device: Any) -> Any:
    """arange(classes): the one-hot mask's columns, made once per (namespace, classes, dtype,
    device) (an arange costs more than the comparison it feeds in a small loss); not inside a
    compiled step (device None), whose arrays must not outlive its trace."""
    if device is None:
        return xp.arange(classes, dtype=dtype)
    try:
        return _cached_range(xp, classes, dtype, device)
    except TypeError:  # an unhashable device or dtype object
        return xp.arange(classes, dtype=dtype, device=device)


class CrossEntropyLoss(_ClassLoss):
    """Cross-entropy of softmax(logits) against integer labels or class probabilities.

    ``pred``: logits of shape (batch, classes). ``target``: integer labels of shape (batch,)
    or probabilities of shape (batch, classes) (of the logits' dtype). Per sample,
    loss = -sum_c q_c log softmax(z)_c with q the (smoothed, weighted) target distribution.
    The mean divides by the summed weights of the labels that are not ignored (by the batch
    size for probabilities), as in torch.

    Parameters
    ----------
    weight: optional (classes,) float array, a weight per class.
    ignore_index: samples with this label count for nothing (labels only).
    reduction: "mean", "sum" or "none" (one loss per sample).
    label_smoothing: in [0, 1]; mixes the target with the uniform distribution:
        q = (1 - label_smoothing) target + label_smoothing / classes.
    validate: check that labels lie in [0, classes), which reads two numbers back from the
        device; with False, an out-of-range label silently counts as ignored.
    every_label_a_class: the caller has checked that every label it will pass is a class
        (in [0, classes), none ignored; ``check_targets`` says so): integer labels then need
        no check and no bookkeeping of ignored rows, whatever ``validate`` says. fit sets it
        on its copy of the loss once it has checked all the labels.
    """

    _scores = "logits"

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0, *, validate: bool = True,
                 every_label_a_class: bool = False) -> None:
        super().__init__(weight, ignore_index, reduction, validate=validate)
        self.label_smoothing = number(self, "label_smoothing", label_smoothing, low=0.0, high=1.0)
        self.every_label_a_class = flag(self, "every_label_a_class", every_label_a_class)

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp, batch, classes = self._check_scores(pred, target)
        if classes == 0:  # no distribution to take the softmax of (and smoothing / 0 classes)
            raise ValueError(f"CrossEntropyLoss: expected logits with at least one class, got "
                             f"shape {tuple(pred.shape)}")
        smoothing = self.label_smoothing
        labels = is_labels(xp, target) and target.shape[0] == batch
        every_row = False  # whether each row of q sums to 1 (every label a class, unweighted)
        if labels and self.weight is None and smoothing == 0:
            # the usual case: q is the one-hot mask itself and the mean divides by its sum,
            # the number of labels kept (the general branch below gives the same numbers).
            # When every label is a class, sum(q) is the batch size (the float count's bits:
            # knowing it changes no result) and each row of q sums to 1
            q = xp.astype(self._one_hot(xp, target, classes, checked=True), pred.dtype)
            every_row = self.every_label_a_class
            if not every_row and self.validate and xp is not HOST_XP:
                # on a device the read is the cost: the labels' range in one transfer
                every_row = self._check_labels(xp, target, classes)
            count = batch if every_row else xp.sum(q)  # the labels kept
            if not every_row and self.validate and xp is HOST_XP:
                # on the host a read costs nothing and a reduction is the cost: a label in
                # [0, classes) that is not ignored marks one column of its row, so the mask's
                # sum is the batch size exactly when every label is a class; otherwise
                # check_labels says which are not
                every_row = float(count) == batch
                if every_row:
                    count = batch
                else:
                    self._check_labels(xp, target, classes)
        elif labels:
            weight = self._class_weight(xp, pred)
            hot = self._one_hot(xp, target, classes)
            kept = xp.any(hot, axis=1, keepdims=True)  # not ignored
            q = (xp.where(hot, (1 - smoothing) * weight, 0)
                 + xp.where(kept, (smoothing / classes) * weight, 0))
            count = xp.sum(xp.where(hot, weight, 0))  # sum of the kept labels' weights
        else:
            weight = self._class_weight(xp, pred)
            self._check_probabilities(xp, pred, target, batch, classes)
            q = (target * (1 - smoothing) + smoothing / classes) * weight
            count = batch  # the mean is over the batch
        log_p = log_softmax(xp, pred, axis=1)
        # d log p_c / dz_k = [c == k] - p_k, so d/dz_k (-sum_c q_c log p_c) = p_k sum(q) - q_k;
        # an ignored row (all of q 0) has no gradient
        grad = xp.exp(log_p)  # the arithmetic below runs in place on this new array
        if not every_row:
            grad *= xp.sum(q, axis=1, keepdims=True)
        grad -= q
        # the mean and the sum need no per-row sums
        value = -xp.sum(q * log_p, axis=1) if per_row else -xp.sum(q * log_p)
        return value, count, grad, 1

    def _check_probabilities(self, xp: Any, pred: Any, target: Any, batch: int,
                             classes: int) -> None:
        shape = tuple(target.shape)
        if shape == (batch,):
            raise TypeError(f"CrossEntropyLoss: expected integer labels of shape ({batch},), "
                            f"got dtype {dtype_name(target.dtype)}")
        if shape != (batch, classes):
            raise ValueError(f"CrossEntropyLoss: expected integer labels of shape ({batch},) "
                             f"or probabilities of shape ({batch}, {classes}), got shape {shape}")
        if not xp.isdtype(target.dtype, "real floating"):
            raise TypeError(f"CrossEntropyLoss: expected probabilities of shape "
                            f"({batch}, {classes}) to be floating-point, got dtype "
                            f"{dtype_name(target.dtype)}")
        expect(self, target, like=pred, what="target", like_what="prediction")


class NLLLoss(_ClassLoss):
    """Negative log-likelihood: -weight[y] log_probs[y] per sample, for integer labels y.

    ``pred``: log-probabilities of shape (batch, classes) (a log-softmax's output);
    ``target``: integer labels of shape (batch,). The mean divides by the summed weights of
    the labels that are not ignored, as in torch. CrossEntropyLoss = log_softmax + NLLLoss.

    Parameters
    ----------
    weight: optional (classes,) float array, a weight per class.
    ignore_index: samples with this label count for nothing.
    reduction: "mean", "sum" or "none" (one loss per sample).
    validate: check that labels lie in [0, classes), which reads two numbers back from the
        device; with False, an out-of-range label silently counts as ignored.
    """

    _scores = "log-probabilities"

    def _terms(self, pred: Any, target: Any, per_row: bool) -> tuple[Any, Any, Any, float]:
        xp, batch, classes = self._check_scores(pred, target)
        weight = self._class_weight(xp, pred)
        if tuple(target.shape) != (batch,):
            raise ValueError(f"NLLLoss: expected integer labels of shape ({batch},), "
                             f"got shape {tuple(target.shape)}")
        if not xp.isdtype(target.dtype, "integral"):
            raise TypeError(f"NLLLoss: expected integer labels of shape ({batch},), "
                            f"got dtype {dtype_name(target.dtype)}")
        hot = self._one_hot(xp, target, classes)
        picked = xp.where(hot, weight, 0)  # w_y at the label, 0 elsewhere
        # zero what is off the label before multiplying: a log-probability of -inf there must
        # not make 0 * -inf = nan
        value = -xp.sum(picked * xp.where(hot, pred, 0), axis=1)
        # d/dx_c (-w_y x_y) = -w_y at the label, 0 elsewhere
        return value if per_row else xp.sum(value), xp.sum(picked), -picked, 1
