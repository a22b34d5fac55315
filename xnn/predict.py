"""``predict``: a model's outputs for new data, as Keras' ``Model.predict`` gives them."""

from __future__ import annotations

from typing import Any

from ._checks import integer
from .backend import array_namespace
from .nn.module import Module
from .loop import mode
from .data import as_data
from .train import model_backend

__all__ = ["predict"]


def predict(model: Module, X: Any, *, batch_size: int | None = None) -> Any:
    """The outputs of ``model`` for the rows of ``X``, in evaluation mode, as one array.

    X is converted as ``fit`` converts it: moved to the model's backend and device, floats
    cast to the model's dtype, so float64 NumPy data or nested lists serve as they are.
    ``batch_size=None`` runs all rows at once; an integer runs that many rows at a time (less
    memory for big X) and joins the outputs. Dropout and batch normalization run in
    evaluation mode during the call, and each module's own train/eval mode is put back after.
    The result is an array of the model's backend: ``xnn.to_numpy`` reads it to the host.
    Class labels of a classifier, in one line:
    ``labels = xnn.to_numpy(xnn.predict(model, X)).argmax(axis=1)``.
    """
    # the model's own backend and dtype, as fit uses; an activation alone: the active backend's
    backend, dtype = model_backend(model, "predict", trains=False)
    if batch_size is not None:
        batch_size = integer("predict", "batch_size", batch_size, low=1)
    X = as_data("predict", "X", X, backend, dtype, labels_ok=False)
    if X.ndim == 0:
        raise ValueError("predict: X must have a first axis of rows, got a 0-d array")
    n = X.shape[0]
    with mode(model, training=False):
        if batch_size is None or batch_size >= n:
            return model(X)
        outputs = [model(X[start:min(start + batch_size, n), ...])
                   for start in range(0, n, batch_size)]
    return array_namespace(outputs[0]).concat(outputs, axis=0)
