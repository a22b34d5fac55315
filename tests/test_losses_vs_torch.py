"""Every loss matches PyTorch's class of the same name: the value and the gradient with respect to
the prediction (torch autograd), in float64 to 1e-10 and in float32 to assert_close's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import xnn
from xnn import losses

torch = pytest.importorskip("torch", reason="the parity tests compare against torch")

BATCH, CLASSES = 6, 3
CLASS_WEIGHT = [0.5, 2.0, 1.25]
POS_WEIGHT = [3.0, 0.5, 1.0]


# --- data, drawn on the host in float64 ------------------------------------------------------

def _regression(rng):
    pred = rng.standard_normal((BATCH, CLASSES))
    target = pred + 1.5 * rng.standard_normal((BATCH, CLASSES))
    target[0, 0] = pred[0, 0]            # the kink of L1 and of the linear pieces
    return pred, target


def _probabilities(rng):
    return rng.uniform(0.02, 0.98, (BATCH, CLASSES)), rng.uniform(0.0, 1.0, (BATCH, CLASSES))


def _saturated_probabilities(rng):
    pred, target = _probabilities(rng)
    pred[0, :] = [0.0, 1.0, 0.0]         # log clamped at -100; gradient denominator floored
    pred[1, :] = [1.0, 1e-30, 1 - 1e-7]
    return pred, target


def _binary_logits(rng):
    z = 4 * rng.standard_normal((BATCH, CLASSES))
    z[0, :] = [40.0, -40.0, 0.0]
    t = rng.uniform(0.0, 1.0, (BATCH, CLASSES))
    t[1, :] = [0.0, 1.0, 1.0]
    return z, t


def _labels(rng):
    labels = rng.integers(0, CLASSES, BATCH)
    labels[2] = -100                     # torch's default ignore_index
    labels[3] = 1                        # so ignore_index=1 has something to ignore
    return 2 * rng.standard_normal((BATCH, CLASSES)), labels


def _labels_with_class_0(rng):
    z, labels = _labels(rng)
    labels = np.abs(labels) % CLASSES   # no -100: every label a class
    labels[4] = 0                        # so ignore_index=0 has something to ignore
    return z, labels


def _log_probabilities_with_class_0(rng):
    z, labels = _labels_with_class_0(rng)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), labels


def _class_probabilities(rng):
    t = np.exp(rng.standard_normal((BATCH, CLASSES)))
    return 2 * rng.standard_normal((BATCH, CLASSES)), t / t.sum(axis=1, keepdims=True)


def _log_probabilities(rng):
    z, labels = _labels(rng)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), labels


@dataclass(frozen=True)
class Case:
    """One loss and its torch twin; each is made from (reduction, weight array maker)."""

    id: str
    ours: Callable[[str, Callable], Any]
    theirs: Callable[[str, Callable], Any]
    data: Callable


nn = torch.nn
CASES = [
    Case("MSELoss", lambda r, w: losses.MSELoss(r),
         lambda r, w: nn.MSELoss(reduction=r), _regression),
    Case("L1Loss", lambda r, w: losses.L1Loss(r),
         lambda r, w: nn.L1Loss(reduction=r), _regression),
    Case("SmoothL1Loss", lambda r, w: losses.SmoothL1Loss(r),
         lambda r, w: nn.SmoothL1Loss(reduction=r), _regression),
    Case("SmoothL1Loss-beta0.5", lambda r, w: losses.SmoothL1Loss(r, beta=0.5),
         lambda r, w: nn.SmoothL1Loss(reduction=r, beta=0.5), _regression),
    Case("SmoothL1Loss-beta0", lambda r, w: losses.SmoothL1Loss(r, beta=0.0),
         lambda r, w: nn.SmoothL1Loss(reduction=r, beta=0.0), _regression),
    Case("HuberLoss", lambda r, w: losses.HuberLoss(r),
         lambda r, w: nn.HuberLoss(reduction=r), _regression),
    Case("HuberLoss-delta0.3", lambda r, w: losses.HuberLoss(r, delta=0.3),
         lambda r, w: nn.HuberLoss(reduction=r, delta=0.3), _regression),
    Case("BCELoss", lambda r, w: losses.BCELoss(reduction=r),
         lambda r, w: nn.BCELoss(reduction=r), _probabilities),
    Case("BCELoss-saturated", lambda r, w: losses.BCELoss(reduction=r),
         lambda r, w: nn.BCELoss(reduction=r), _saturated_probabilities),
    Case("BCELoss-weight", lambda r, w: losses.BCELoss(w(POS_WEIGHT), reduction=r),
         lambda r, w: nn.BCELoss(w(POS_WEIGHT), reduction=r), _probabilities),
    Case("BCEWithLogitsLoss", lambda r, w: losses.BCEWithLogitsLoss(reduction=r),
         lambda r, w: nn.BCEWithLogitsLoss(reduction=r), _binary_logits),
    Case("BCEWithLogitsLoss-pos_weight",
         lambda r, w: losses.BCEWithLogitsLoss(reduction=r, pos_weight=w(POS_WEIGHT)),
         lambda r, w: nn.BCEWithLogitsLoss(reduction=r, pos_weight=w(POS_WEIGHT)),
         _binary_logits),
    Case("BCEWithLogitsLoss-weight-pos_weight",
         lambda r, w: losses.BCEWithLogitsLoss(w([[0.5], [2.0], [1.0], [1.0], [3.0], [0.1]]),
                                               reduction=r, pos_weight=w(POS_WEIGHT)),
         lambda r, w: nn.BCEWithLogitsLoss(w([[0.5], [2.0], [1.0], [1.0], [3.0], [0.1]]),
                                           reduction=r, pos_weight=w(POS_WEIGHT)),
         _binary_logits),
    Case("CrossEntropyLoss-labels", lambda r, w: losses.CrossEntropyLoss(reduction=r),
         lambda r, w: nn.CrossEntropyLoss(reduction=r), _labels),
    Case("CrossEntropyLoss-labels-weight",
         lambda r, w: losses.CrossEntropyLoss(w(CLASS_WEIGHT), reduction=r),
         lambda r, w: nn.CrossEntropyLoss(w(CLASS_WEIGHT), reduction=r), _labels),
    Case("CrossEntropyLoss-labels-smoothing",
         lambda r, w: losses.CrossEntropyLoss(reduction=r, label_smoothing=0.2),
         lambda r, w: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.2), _labels),
    Case("CrossEntropyLoss-labels-weight-smoothing-ignore_index1",
         lambda r, w: losses.CrossEntropyLoss(w(CLASS_WEIGHT), ignore_index=1, reduction=r,
                                              label_smoothing=0.3),
         lambda r, w: nn.CrossEntropyLoss(w(CLASS_WEIGHT), ignore_index=1, reduction=r,
                                          label_smoothing=0.3),
         lambda rng: (lambda z, y: (z, np.abs(y) % CLASSES))(*_labels(rng))),
    Case("CrossEntropyLoss-probabilities",
         lambda r, w: losses.CrossEntropyLoss(reduction=r),
         lambda r, w: nn.CrossEntropyLoss(reduction=r), _class_probabilities),
    Case("CrossEntropyLoss-probabilities-weight-smoothing",
         lambda r, w: losses.CrossEntropyLoss(w(CLASS_WEIGHT), reduction=r, label_smoothing=0.1),
         lambda r, w: nn.CrossEntropyLoss(w(CLASS_WEIGHT), reduction=r, label_smoothing=0.1),
         _class_probabilities),
    Case("NLLLoss", lambda r, w: losses.NLLLoss(reduction=r),
         lambda r, w: nn.NLLLoss(reduction=r), _log_probabilities),
    Case("NLLLoss-weight-ignore_index1",
         lambda r, w: losses.NLLLoss(w(CLASS_WEIGHT), ignore_index=1, reduction=r),
         lambda r, w: nn.NLLLoss(w(CLASS_WEIGHT), ignore_index=1, reduction=r),
         lambda rng: (lambda x, y: (x, np.abs(y) % CLASSES))(*_log_probabilities(rng))),
    # class 0 is a class like any other, and an ignore_index like any other
    Case("CrossEntropyLoss-labels-ignore_index0",
         lambda r, w: losses.CrossEntropyLoss(ignore_index=0, reduction=r),
         lambda r, w: nn.CrossEntropyLoss(ignore_index=0, reduction=r), _labels_with_class_0),
    Case("CrossEntropyLoss-labels-weight-ignore_index0",
         lambda r, w: losses.CrossEntropyLoss(w(CLASS_WEIGHT), ignore_index=0, reduction=r),
         lambda r, w: nn.CrossEntropyLoss(w(CLASS_WEIGHT), ignore_index=0, reduction=r),
         _labels_with_class_0),
    Case("NLLLoss-ignore_index0",
         lambda r, w: losses.NLLLoss(ignore_index=0, reduction=r),
         lambda r, w: nn.NLLLoss(ignore_index=0, reduction=r), _log_probabilities_with_class_0),
    Case("NLLLoss-weight-ignore_index0",
         lambda r, w: losses.NLLLoss(w(CLASS_WEIGHT), ignore_index=0, reduction=r),
         lambda r, w: nn.NLLLoss(w(CLASS_WEIGHT), ignore_index=0, reduction=r),
         _log_probabilities_with_class_0),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_loss_matches_torch_value_and_gradient(backend, case, reduction, dtype):
    pred_host, target_host = case.data(np.random.default_rng(7))

    def ours_array(host, kind=dtype):
        return xnn.asarray(np.asarray(host), dtype=kind)

    def torch_tensor(host, kind=getattr(torch, dtype)):
        return torch.tensor(np.asarray(host), dtype=kind)

    labels = target_host.dtype.kind == "i"
    value, grad = case.ours(reduction, ours_array)(
        ours_array(pred_host), ours_array(target_host, "int64" if labels else dtype))

    pred = torch_tensor(pred_host).requires_grad_()
    target = torch_tensor(target_host, torch.int64 if labels else getattr(torch, dtype))
    expected = case.theirs(reduction, torch_tensor)(pred, target)
    expected.sum().backward()

    tolerance = {"rtol": 1e-10, "atol": 1e-10} if dtype == "float64" else {}
    got_value = torch.from_numpy(np.asarray(xnn.to_numpy(value)))
    torch.testing.assert_close(got_value, expected.detach(), **tolerance, msg=lambda m: (
        f"{case.id} ({reduction}, {dtype}) value differs from torch: {m}"))
    torch.testing.assert_close(torch.from_numpy(xnn.to_numpy(grad)), pred.grad, **tolerance,
                               msg=lambda m: f"{case.id} ({reduction}, {dtype}) gradient "
                                             f"differs from torch: {m}")
