"""xnn: MLPs written once against the Array API, run on NumPy, CuPy, PyTorch and array-api-strict."""

from . import callbacks, data, datasets, losses, metrics, nn, optim, plot, tutorials
from .backend import (Backend, BackendUnavailableError, asarray, available_backends,
                      get_backend, get_default_dtype, set_backend, set_default_dtype, to_numpy,
                      use_backend, use_default_dtype)
from ._checks import ArgumentTypeError, expect, flag, integer, number
from .random import seed
from .train import History, evaluate, fit
from .compiled import train_step
from .io import load, save
from .predict import predict
from . import onnx  # xnn.onnx.export; the onnx package itself loads only when export runs
from . import distributed  # data-parallel over MPI; imports mpi4py only in init()

from ._version import __version__

__all__ = ["Backend", "BackendUnavailableError", "asarray", "available_backends", "get_backend",
           "get_default_dtype", "set_backend", "set_default_dtype", "to_numpy", "use_backend", "use_default_dtype",
           "expect", "number", "integer", "flag", "ArgumentTypeError", "seed", "save", "load", "fit", "evaluate", "predict", "train_step", "History", "callbacks", "data", "datasets", "losses",
           "metrics", "nn", "optim", "plot", "tutorials", "__version__", "distributed"]
