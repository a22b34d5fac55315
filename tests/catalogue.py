"""The public layers, losses and optimizers, discovered from xnn's namespaces and constructed from
their signatures, so a class added to ``xnn.nn``, ``xnn.losses`` or ``xnn.optim`` (its file and
its public name) is covered by every test built on this catalogue without being listed.

A required constructor argument takes its value from ``ARGUMENTS``, by parameter name; a new
name there is the one thing a new kind of argument needs. A layer fitted from data (one with
``adapt``, as Keras's preprocessing layers have) is adapted on a sample, so its statistics are
neither the identity nor missing.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

import xnn
from xnn import losses, nn, optim

# required constructor arguments by parameter name: width -> value
ARGUMENTS: dict[str, Callable[[int], Any]] = {
    "in_features": lambda w: w,
    "out_features": lambda w: w,
    "num_features": lambda w: w,
    "normalized_shape": lambda w: w,
    "module": lambda w: nn.Sequential(nn.Linear(w, w), nn.Tanh()),
    "layers": lambda w: [nn.Linear(w, w), nn.ReLU()],
    "lr": lambda w: 0.01,
}


def public_classes(namespace: Any, base: type) -> dict[str, type]:
    """The public names of ``namespace`` that are strict subclasses of ``base``."""
    found = {name: getattr(namespace, name) for name in namespace.__all__}
    return {name: cls for name, cls in found.items()
            if isinstance(cls, type) and issubclass(cls, base) and cls is not base}


def construct(cls: type, width: int = 8, **given: Any) -> Any:
    """``cls`` built with ``given``, required arguments from ARGUMENTS, the rest defaults."""
    positional, keywords = [], {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in given:
            value = given[name]
        elif p.default is not p.empty or p.kind is p.VAR_KEYWORD:
            continue
        elif name in ARGUMENTS:
            value = ARGUMENTS[name](width)
        else:
            raise KeyError(f"tests/catalogue.py: add a value for the constructor argument "
                           f"{name!r} of {cls.__name__} to ARGUMENTS")
        if p.kind is p.VAR_POSITIONAL:
            positional.extend(value)
        else:
            keywords[name] = value
    made = cls(*positional, **keywords)
    if callable(getattr(made, "adapt", None)):
        made.adapt(xnn.asarray(np.random.default_rng(2).normal(3.0, 2.0, (16, width))))
    return made


def layers(width: int = 8) -> dict[str, Callable[[], nn.Module]]:
    """Every public layer class of xnn.nn: name -> a maker of one, ``width`` features in and out
    of a (batch, width) input."""
    return {name: (lambda cls=cls: construct(cls, width))
            for name, cls in public_classes(nn, nn.Module).items()}


def loss_classes() -> dict[str, type]:
    return public_classes(losses, losses.Loss)


def optimizer_classes() -> dict[str, type]:
    return public_classes(optim, optim.Optimizer)


# what a loss's target may be, tried in this order: (name, last layer of the model)
TARGETS = [("labels", nn.LogSoftmax), ("values", nn.Identity), ("binary", nn.Sigmoid)]


def probe_targets(rows: int = 4, width: int = 4) -> dict[str, Any]:
    """A target of each kind of TARGETS for a (rows, width) prediction, on the active backend."""
    rng = np.random.default_rng(0)
    return {"labels": xnn.asarray(np.arange(rows) % width),
            "values": xnn.asarray(rng.standard_normal((rows, width))),
            "binary": xnn.asarray((rng.random((rows, width)) < 0.5).astype(float))}


def target_of(loss: Any) -> tuple[str, type]:
    """(the first kind of target ``loss`` takes, the last layer that gives it a prediction)."""
    pred = xnn.asarray(np.random.default_rng(1).standard_normal((4, 4)))
    for kind, last in TARGETS:
        try:
            loss(last()(pred), probe_targets()[kind])
        except (TypeError, ValueError):
            continue
        return kind, last
    raise AssertionError(f"{type(loss).__name__} takes none of the targets {TARGETS}")
