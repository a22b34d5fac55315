"""Which Array API namespace an array belongs to, and the names of dtypes: the lookups every layer,
loss and check makes on every call, so each is answered from a cache after its first time.

With backend.py, the only module that calls array-api-compat or knows a library's quirks.
"""

from __future__ import annotations

import threading
from typing import Any

import array_api_compat
import numpy as _np  # NumPy's namespace gets fast reductions (see _numpy_fast)

__all__ = ["array_namespace", "device_of", "is_array", "library", "dtype_name", "requires_grad",
           "detached", "HOST_XP", "IMPORT_LOCK"]

# Held while a backend's library is imported, and around array-api-compat's type tests: those
# look each library up in sys.modules, where a torch that another thread is still importing
# has no Tensor yet (an AttributeError in that thread's unrelated work)
IMPORT_LOCK = threading.RLock()
# the types is_array has answered True for: no lock, no compat call the next time
_ARRAY_TYPES: set[type] = set()


# array type -> namespace, filled by array_namespace. array_api_compat's lookup costs ~1.3 us
# (a chain of isinstance tests); layers ask for the namespace on every call, so an array type
# seen once is answered by one dict lookup from then on.
_NAMESPACES: dict[type, Any] = {}
# array types whose arrays may carry an autograd graph (torch.Tensor), filled by array_namespace
TRACKS_GRAD: set[type] = set()


def array_namespace(*arrays: Any) -> Any:
    """The Array API namespace of the arrays, with a clear error when they come from two libraries.

    NumPy's arrays get HOST_XP: array-api-compat's NumPy namespace with sum, max, min, astype
    and matmul made faster (see _numpy_fast; the same results). Everything on it is standard.
    """
    kind = type(arrays[0]) if len(arrays) == 1 else _one_type(arrays)
    xp = _NAMESPACES.get(kind)  # None (several types) is no key
    if xp is not None:
        return xp
    try:
        with IMPORT_LOCK:
            xp = array_api_compat.array_namespace(*arrays)
    except TypeError as err:
        kinds = ", ".join(sorted({_describe(a) for a in arrays}))
        raise TypeError(f"arrays from different backends cannot be mixed (got {kinds}); "
                        f"move them with xnn.asarray() first") from err
    if xp is _COMPAT_NUMPY:
        xp = HOST_XP
    if kind is not None and is_array(arrays[0]):
        _NAMESPACES[kind] = xp
        if library(arrays[0]) == "torch":
            TRACKS_GRAD.add(kind)
    return xp


def _one_type(arrays: tuple) -> type | None:
    """The type of every item of ``arrays`` when they share one, else None."""
    kinds = set(map(type, arrays))
    return kinds.pop() if len(kinds) == 1 else None


def _numpy_fast(base: Any) -> Any:
    """array_api_compat.numpy with sum, max, min and astype without their Python wrappers,
    matmul of one inner dimension as the broadcast multiply it is, and tensordot of two
    matrices over their rows as the matmul it is.

    np.sum(x) is np.add.reduce(x) behind ~1.6 us of argument handling (np.max, np.min alike), and
    array_api_compat's astype is a device check before x.astype: on the arrays of a small
    network that is more than the arithmetic. The replacements make the direct call for plain
    ndarrays in the default case only, so results are identical, and pass the rest on.
    """
    import types  # noqa: PLC0415 - needed once

    fast = types.ModuleType("xnn.namespace.numpy", _numpy_fast.__doc__)
    skip = ("__name__", "__doc__", "__file__", "__spec__", "__loader__", "__package__")
    fast.__dict__.update({k: v for k, v in vars(base).items() if k not in skip})
    add_reduce, ndarray = _np.add.reduce, _np.ndarray

    # for an ndarray, np.sum is add.reduce with axis=None by default (small integers and bools
    # summed in the platform integer, as add.reduce does), np.max maximum.reduce, np.min
    # minimum.reduce: the same results, whatever the dtype
    def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
        if type(x) is ndarray:
            return add_reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)
        return base.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)

    def extremum(ufunc_reduce: Any, standard: Any) -> Any:
        """max or min: ``ufunc_reduce`` for a plain ndarray, else the ``standard`` function."""

        def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
            if type(x) is ndarray:
                return ufunc_reduce(x, axis=axis, keepdims=keepdims)
            return standard(x, axis=axis, keepdims=keepdims)

        return reduce

    def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        if device is None and type(x) is ndarray:
            return x.astype(dtype, copy=copy)
        return base.astype(x, dtype, copy=copy, device=device)

    np_matmul = _np.matmul

    def matmul(a: Any, b: Any, /) -> Any:
        # with one column in a (a Linear layer of one input feature, or the dL/dx of one of
        # one output) a @ b is an outer product: a broadcast multiply gives the same bits (one
        # product per entry, nothing summed) three times faster than a BLAS GEMM; b must have
        # one row, or the multiply would broadcast where matmul refuses the shapes
        if a.shape[-1] == 1 and a.ndim == 2 and b.ndim == 2 and b.shape[0] == 1:
            return a * b
        return np_matmul(a, b)

    def tensordot(a: Any, b: Any, /, *, axes: Any = 2) -> Any:
        # the sum over the rows of two matrices (a Linear layer's dL/dW = x^T dy) is the
        # matmul of a's transposed view: np.tensordot's own result, without its ~5 us of
        # transposes and reshapes around the same GEMM
        if (type(a) is ndarray and type(b) is ndarray and a.ndim == 2 == b.ndim
                and axes == ([0], [0])):
            return matmul(a.T, b)
        return base.tensordot(a, b, axes=axes)

    fast.max = extremum(_np.maximum.reduce, base.max)
    fast.min = extremum(_np.minimum.reduce, base.min)
    fast.sum, fast.astype, fast.matmul, fast.tensordot = sum, astype, matmul, tensordot
    return fast


# array-api-compat's NumPy namespace, and the one xnn uses in its place: host_backend().xp,
# array_namespace of every NumPy array
_COMPAT_NUMPY = array_api_compat.array_namespace(_np.empty(0))
HOST_XP = _numpy_fast(_COMPAT_NUMPY)
# the packages between xnn's code and an array library's: their frames are neither's
WRAPPERS = (array_api_compat.__name__,)


def _describe(a: Any) -> str:
    if not is_array(a):
        return type(a).__name__
    return f"{library(a)} array on {device_of(a)}"


def is_array(obj: Any) -> bool:
    """Whether ``obj`` is an array of any supported library."""
    kind = type(obj)
    if kind in _ARRAY_TYPES:
        return True
    with IMPORT_LOCK:
        answer = array_api_compat.is_array_api_obj(obj)
    if answer:
        _ARRAY_TYPES.add(kind)
    return answer


def library(x: Any) -> str:
    """The top-level module of an array's (or a device's) type ("numpy", "torch", "cupy",
    "array_api_strict", "jax"), read from the type alone: asking array-api-compat would look the
    library up in sys.modules, where another thread may be half-way through importing it."""
    name = type(x).__module__.partition(".")[0]
    return "jax" if name == "jaxlib" else name  # jax's arrays and devices are jaxlib's types


def dtype_name(dtype: Any) -> str:
    """The standard name of a dtype object of any backend ("float32")."""
    try:
        return _np.dtype(dtype).name  # numpy and cupy dtypes, and their scalar types
    except TypeError:
        return str(dtype).rsplit(".", 1)[-1]  # "torch.float32", "array_api_strict.float32"


def device_of(x: Any) -> Any:
    """The device of an array (array-api-compat's answer, which NumPy 1 arrays need)."""
    return array_api_compat.device(x)


def requires_grad(x: Any) -> bool:
    """Whether ``x`` is a tensor that autograd records (torch's requires_grad)."""
    return getattr(x, "requires_grad", False) is True


def detached(x: Any) -> Any:
    """``x`` without an autograd graph (a torch tensor that requires grad, detached: the same
    data); anything else as it is."""
    return x.detach() if requires_grad(x) else x
