"""``predict``: a model's outputs for new data, as Keras' ``Model.predict`` gives them."""

from __future__ import annotations

from typing import Any

from ._checks import integer
from .backend import array_namespace
from .nn.module import Module, model_backend
from .loop import mode
from .data import as_data
from .stream import BatchDataset, Source, batch_sources, outputs, source, streams

__all__ = ["predict"]


def predict(model: Module, X: Any, *, batch_size: int | None = None) -> Any:
    """The outputs of ``model`` for the rows of ``X``, in evaluation mode, as one array.

    X is converted as ``fit`` converts it: moved to the model's backend and device, floats
    cast to the model's dtype, so float64 NumPy data or nested lists serve as they are.
    ``batch_size=None`` runs all rows at once; an integer runs that many rows at a time (less
    memory for big X) and joins the outputs, except where a layer's output depends on the rest
    of its batch (``batch_dependent``: BatchNorm1d without running statistics), which is a
    ValueError naming the layer rather than outputs that change with batch_size. X that
    ``fit`` would read a batch at a time (a ``np.memmap``, zarr, h5py, ``xnn.data.Stream``)
    is read ``batch_size`` rows at a time (None: 4 MiB of X), a few batches ahead of the
    forward passes; only the outputs are whole. Dropout and
    batch normalization run in evaluation mode during the call, and each module's own
    train/eval mode is put back after.
    The result is an array of the model's backend: ``xnn.to_numpy`` reads it to the host.
    Class labels of a classifier, in one line:
    ``labels = xnn.to_numpy(xnn.predict(model, X)).argmax(axis=1)``.

    Parameters
    ----------
    model : xnn.nn.Module
        The network (or a single layer without parameters, run on the active backend).
    X : array_like
        The inputs, one row per sample, as ``fit`` takes them (in memory or read a batch at
        a time; an ``xnn.data.BatchDataset`` is read a batch of its own at a time).
    batch_size : int or None, default None
        Rows per forward pass; None runs all rows at once.

    Returns
    -------
    array
        The outputs, one row per row of X: ``(N, outputs)`` for an MLP, logits where the
        model ends with its last Linear.

    Raises
    ------
    TypeError, ValueError
        For a model that is not an ``xnn.nn.Module``, a bad ``batch_size`` or data that
        ``fit`` would refuse.

    Examples
    --------
    >>> import numpy as np
    >>> import xnn
    >>> from xnn import nn
    >>> xnn.seed(0)
    >>> model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> out = xnn.predict(model, np.ones((5, 3)), batch_size=2)
    >>> tuple(out.shape), str(xnn.to_numpy(out).dtype)
    ((5, 2), 'float32')
    >>> bool(np.allclose(xnn.to_numpy(out), xnn.to_numpy(xnn.predict(model, np.ones((5, 3))))))
    True
    """
    # the model's own backend and dtype, as fit uses; an activation alone: the active backend's
    backend, dtype = model_backend(model, "predict", trains=False)
    if batch_size is not None:
        batch_size = integer("predict", "batch_size", batch_size, low=1)
    if isinstance(X, BatchDataset):  # one batch of it at a time
        if batch_size is not None:
            raise ValueError("predict: a BatchDataset X makes its own batches; pass "
                             "batch_size=None")
        X, = batch_sources("predict", ("X",), X, backend, dtype, checked=False)
    elif streams(X):  # read a batch at a time (xnn/stream.py): batch_size, or 4 MiB of rows
        X = source("predict", "X", X, backend, dtype, labels_ok=False, checked=False)
        batch_size = batch_size or X.pass_rows()
    else:
        X = as_data("predict", "X", X, backend, dtype, labels_ok=False)
    if X.ndim == 0:
        raise ValueError("predict: X must have a first axis of rows, got a 0-d array")
    n = X.shape[0]
    if batch_size is not None and batch_size < n:
        _check_rows_independent(model, batch_size, n)
    with mode(model, training=False):
        if isinstance(X, Source):
            return outputs(model, (X,), batch_size)[0]
        if batch_size is None or batch_size >= n:
            return model(X)
        parts = [model(X[start:min(start + batch_size, n), ...])
                 for start in range(0, n, batch_size)]
    return array_namespace(parts[0]).concat(parts, axis=0)


def _check_rows_independent(model: Module, batch_size: int, n: int) -> None:
    """Refuse batches of a model whose outputs for a row depend on the rows batched with it."""
    for name, layer in model._named_modules():
        if layer.batch_dependent:
            where = f" (layer {name[:-1]!r})" if name else ""
            raise ValueError(f"predict: batch_size={batch_size} splits the {n} rows, but "
                             f"{layer!r}{where} computes its evaluation-mode output from the "
                             f"whole batch, so the outputs would change with batch_size; pass "
                             f"batch_size=None to run all rows at once")
