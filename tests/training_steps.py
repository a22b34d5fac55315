"""One training step of each loss, optimizer, clipping function and layer, as tables of cases
that the sync guard (test_sync_guard.py, on array_api_strict) and the GPU tests (test_gpu.py,
on CuPy) both run. Every public layer, loss and optimizer class is a case with its defaults
(discovered by tests/catalogue.py); the hand-written cases add settings that take other code
paths."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import xnn
from xnn import losses, nn, optim

import catalogue


@dataclass
class Data:
    """A batch on the active device, each kind of target, and a weight per column."""

    X: Any
    values: Any
    binary: Any
    labels: Any
    probabilities: Any
    weight: Any

    @classmethod
    def make(cls, rows: int = 64) -> Data:
        rng = np.random.default_rng(0)
        p = rng.random((rows, 4))
        floats = [rng.standard_normal((rows, 8)), rng.standard_normal((rows, 4)),
                  (p < 0.5).astype(float), p / p.sum(axis=1, keepdims=True)]
        X, values, binary, probabilities = (xnn.asarray(a, dtype=xnn.get_default_dtype())
                                            for a in floats)
        return cls(X, values, binary, xnn.asarray(np.arange(rows) % 4), probabilities,
                   xnn.asarray([0.5, 1.0, 1.5, 2.0]))


def step(model: nn.Module, loss: Any, X: Any, target: Any, optimizer: Callable = optim.SGD,
          after_backprop: Callable = lambda params: None) -> Callable[[], None]:
    """One hand-written training step, as the tutorials write it."""
    opt = optimizer(model.parameters())

    def step() -> None:
        pred, backprop = model.forward(X)
        backprop(loss(pred, target)[1])
        after_backprop(model.parameters())
        opt.step()
        opt.zero_grad()
    return step


def loss_cases() -> dict[str, tuple[Callable[[Data], Any], str, type, int]]:
    """id -> (loss of the data, target, last layer, reads allowed per call: one for the label
    check of a loss that validates); a public loss class with its defaults is the case of its
    name, its target the first kind it takes (catalogue.target_of)."""
    cases = {}
    for name, cls in catalogue.loss_classes().items():
        target, last = catalogue.target_of(cls())
        cases[name] = (lambda d, cls=cls: cls(), target, last,
                       int(bool(getattr(cls(), "validate", False))))
    return {**cases, **LOSS_SETTINGS}


LOSS_SETTINGS = {
    "SmoothL1Loss-beta0": (lambda d: losses.SmoothL1Loss(beta=0.0), "values", nn.Identity, 0),
    "BCELoss-no-validate": (lambda d: losses.BCELoss(validate=False), "binary", nn.Sigmoid, 0),
    "BCELoss-weight-no-validate": (
        lambda d: losses.BCELoss(weight=d.weight, validate=False), "binary", nn.Sigmoid, 0),
    "BCEWithLogitsLoss-binary": (lambda d: losses.BCEWithLogitsLoss(), "binary", nn.Identity, 0),
    "BCEWithLogitsLoss-weight-pos_weight": (
        lambda d: losses.BCEWithLogitsLoss(weight=d.weight, pos_weight=d.weight), "binary",
        nn.Identity, 0),
    "CrossEntropyLoss-logits": (lambda d: losses.CrossEntropyLoss(), "labels", nn.Identity, 1),
    "CrossEntropyLoss-labels-no-validate": (
        lambda d: losses.CrossEntropyLoss(validate=False), "labels", nn.Identity, 0),
    "CrossEntropyLoss-probabilities": (
        lambda d: losses.CrossEntropyLoss(), "probabilities", nn.Identity, 0),
    "CrossEntropyLoss-label_smoothing": (
        lambda d: losses.CrossEntropyLoss(label_smoothing=0.1), "labels", nn.Identity, 1),
    "CrossEntropyLoss-weight": (
        lambda d: losses.CrossEntropyLoss(weight=d.weight), "labels", nn.Identity, 1),
    "CrossEntropyLoss-ignore_index": (
        lambda d: losses.CrossEntropyLoss(ignore_index=0), "labels", nn.Identity, 1),
    "NLLLoss-weight-ignore_index": (
        lambda d: losses.NLLLoss(weight=d.weight, ignore_index=0), "labels", nn.LogSoftmax, 1),
    "NLLLoss-no-validate": (lambda d: losses.NLLLoss(validate=False), "labels", nn.LogSoftmax, 0),
}


def optimizer_cases() -> dict[str, Callable[[list], optim.Optimizer]]:
    """id -> optimizer of the parameters: each public optimizer class with its defaults, and
    settings that take other code paths."""
    cases = {name: (lambda p, cls=cls: catalogue.construct(cls, params=p))
             for name, cls in catalogue.optimizer_classes().items()}
    return {**cases, **OPTIMIZER_SETTINGS}


OPTIMIZER_SETTINGS = {
    "SGD-momentum": lambda p: optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.1),
    "SGD-nesterov": lambda p: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    "SGD-weight_decay": lambda p: optim.SGD(p, lr=0.01, weight_decay=0.01),
    "Adagrad-lr_decay-weight_decay": lambda p: optim.Adagrad(p, lr_decay=0.01, weight_decay=0.01),
    "RMSprop-centered": lambda p: optim.RMSprop(p, centered=True),
    "RMSprop-momentum-weight_decay": lambda p: optim.RMSprop(p, momentum=0.9, weight_decay=0.01),
    "Adam-amsgrad-weight_decay": lambda p: optim.Adam(p, amsgrad=True, weight_decay=0.01),
    "AdamW-amsgrad": lambda p: optim.AdamW(p, amsgrad=True),
}

CLIPPING = {
    "clip_grad_norm": lambda p: optim.clip_grad_norm(p, 0.1),
    "clip_grad_norm-inf": lambda p: optim.clip_grad_norm(p, 0.1, norm_type=math.inf),
    "clip_grad_value": lambda p: optim.clip_grad_value(p, 0.01),
}

def layer_cases() -> dict[str, Callable[[], nn.Module]]:
    """Each public layer class, 8 features in and out: each runs between Linear(8, 8) and
    Linear(8, 4), so its input gradient is used."""
    return catalogue.layers(8)


LOSSES, OPTIMIZERS, LAYERS = loss_cases(), optimizer_cases(), layer_cases()


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
