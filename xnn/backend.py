"""Backend selection and placement: which array library and device xnn computes on, and
where an array lives.

With namespace.py, the only module of xnn that knows numpy, cupy, torch or jax. Everything else
takes its namespace from its inputs (``array_namespace(x)``) or from :func:`get_backend`, and
asks a :class:`Backend` placement questions (``is_host``, ``is_gpu``, ``holds(x)``).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import numbers
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator

import numpy as _np  # the host side: seeded generator, conversion, checkpoints

from .namespace import (HOST_XP, IMPORT_LOCK, array_namespace, detached, device_of, dtype_name,
                        is_array, library, requires_grad)
from .extras import install_hint

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
    "set_backend",
    "use_backend",
    "asarray",
    "to_numpy",
    "backend_of",
    "array_namespace",
    "get_default_dtype",
    "set_default_dtype",
    "use_default_dtype",
    "resolve_dtype",
    "BACKEND_NAMES",
]

FLOAT_DTYPES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that cannot run here (library missing or no device)."""


@dataclass(frozen=True)
class Backend:
    """An array library and a device: ``name``, ``xp`` (array-api-compat namespace), ``device``."""

    name: str
    xp: Any = field(repr=False)
    device: Any

    def __str__(self) -> str:
        return f"{self.name}:{device_label(self.device)}"

    def __hash__(self) -> int:  # cupy.cuda.Device compares but does not hash
        return hash(str(self))

    @property
    def is_host(self) -> bool:
        """Whether its arrays live in host memory that NumPy views and fills in place, with no
        copy (NumPy; torch on the CPU): MPI and shared memory read them directly."""
        return _library(self.name).host(self.device)

    @property
    def is_gpu(self) -> bool:
        """Whether it computes on a CUDA GPU (CuPy; torch on 'cuda')."""
        return _library(self.name).gpu(self.device)

    @property
    def compiler(self) -> Compiler | None:
        """What compiles a whole training step or epoch into one call (jax.jit and lax.scan on
        jax); None for a library that runs op by op (xnn.compiled says so in one line)."""
        make = _library(self.name).compiler
        return None if make is None else make()

    def holds(self, x: Any) -> bool:
        """Whether ``x`` is an array of this library on this device."""
        return (is_array(x) and array_namespace(x) is self.xp
                and _same_device(device_of(x), self.device))


def _same_device(a: Any, b: Any) -> bool:
    # by name: torch's, cupy's and the strict library's devices compare only with their own kind
    return a is b or str(a) == str(b)


def device_label(device: Any) -> str:
    """What set_backend takes back for a device: 'cpu', 'cuda:0', 'device1', or the GPU
    index '0' for cupy (whose Device prints as '<CUDA Device 0>')."""
    return _library(library(device)).label(device)


# --- loading each library ------------------------------------------------------------------------

def _load_numpy(device: Any) -> Backend:
    if device not in (None, "cpu"):
        raise ValueError(f"numpy runs on device 'cpu' only, got {device!r}")
    return _HOST


_HOST = Backend("numpy", HOST_XP, "cpu")


def _load_array_api_strict(device: Any) -> Backend:
    xps = _import("array_api_strict", install_hint("strict"))
    if not isinstance(device, xps.Device):
        names = ("CPU_DEVICE", "device1", "device2")
        if device not in (None, "cpu", *names):
            raise ValueError(f"array_api_strict has devices {names}, got {device!r}")
        device = xps.Device("CPU_DEVICE" if device in (None, "cpu") else device)
    return Backend("array_api_strict", xps, device)


def _load_torch(device: Any) -> Backend:
    torch = _import("torch", install_hint("torch"))
    dev = _torch_device(torch, device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {str(dev)!r} was asked for but torch sees no CUDA GPU "
                f"(torch {torch.__version__}); use device='cpu' or install a CUDA build of torch")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"torch device {str(dev)!r} does not exist: torch sees {count} "
                             f"CUDA GPU(s), so N in 'cuda:N' must lie in [0, {count})")
    return Backend("torch", array_namespace(torch.empty(0)), dev)


def _torch_device(torch: Any, device: Any) -> Any:
    """The torch.device of ``device``: None (the CPU), 'cpu', 'cuda', 'cuda:N', an int N (GPU N,
    as cupy counts) or a torch.device of those. Another type is a TypeError; another value a
    ValueError naming the choices (torch.device() itself raises RuntimeError)."""
    expected = "expected 'cpu', 'cuda', 'cuda:N' or a GPU index N"
    if device is None:
        return torch.device("cpu")
    if isinstance(device, bool) or not isinstance(device, (str, numbers.Integral, torch.device)):
        raise TypeError(f"torch device must be a str, int or torch.device ({expected}), "
                        f"got {type(device).__name__}")
    if isinstance(device, numbers.Integral):
        if device < 0:
            raise ValueError(f"torch has no device {device!r}: {expected} with N >= 0")
        device = f"cuda:{int(device)}"  # torch.device(int) means 'the current accelerator'
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):  # torch's message lists device types xnn cannot use
        raise ValueError(f"torch has no device {device!r}; {expected}") from None
    if dev.type not in ("cpu", "cuda") or (dev.type == "cpu" and dev.index not in (None, 0)):
        raise ValueError(f"xnn runs torch on 'cpu' or 'cuda' devices, got {str(dev)!r}; "
                         f"{expected}")
    return torch.device("cpu") if dev.type == "cpu" else dev  # 'cpu:0' is where tensors say 'cpu'


_CUPY_FIX = f'{install_hint("cuda12")}; for CUDA 13, the extra cuda13 instead'
# device index -> None once a kernel and a matmul have run there: loading cupy again (every
# use_backend) must not launch kernels
_CUPY_PROBED: dict[int, None] = {}


def _load_cupy(device: Any) -> Backend:
    cupy = _import("cupy", _CUPY_FIX)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        current = cupy.cuda.runtime.getDevice()
    except Exception as err:  # import works without a driver; the first CUDA call fails
        raise BackendUnavailableError(
            f"cupy is installed but cannot reach a CUDA GPU ({type(err).__name__}: {err}); "
            f"check the NVIDIA driver and CUDA_VISIBLE_DEVICES, or use set_backend('numpy')"
        ) from err
    if count == 0:
        raise BackendUnavailableError(
            "cupy is installed but no CUDA GPU is visible (getDeviceCount() == 0); "
            "check CUDA_VISIBLE_DEVICES, or use set_backend('numpy')")
    index = _cupy_index(device, current)
    if not 0 <= index < count:
        raise ValueError(f"cupy device {index} does not exist: {count} GPU(s) visible, so the "
                         f"index must lie in [0, {count})")
    if index != current:
        # CuPy allocates every result on the current device; arrays on another one would be
        # split between two GPUs (the current device is per thread in CUDA)
        raise ValueError(f"xnn runs cupy on the current CUDA device only, which is {current}, "
                         f"but device {index} was asked for; make it current first with "
                         f"cupy.cuda.Device({index}).use(), or expose only that GPU with "
                         f"CUDA_VISIBLE_DEVICES={index}")
    if index not in _CUPY_PROBED:
        _probe_cupy(cupy)
        _CUPY_PROBED[index] = None
    return Backend("cupy", array_namespace(cupy.empty(0)), cupy.cuda.Device(index))


def _cupy_index(device: Any, current: int) -> int:
    """The GPU index of ``device``: None, 'cuda' or 'gpu' (the current device), N, 'N',
    'cuda:N', or a cupy.cuda.Device. Another type is a TypeError; another value a ValueError."""
    expected = "expected None, 'cuda', 'cuda:N', a GPU index N or a cupy.cuda.Device"
    if device is None:
        return current
    if hasattr(device, "id") and not isinstance(device, (str, numbers.Integral)):
        device = device.id  # a cupy.cuda.Device
    if isinstance(device, bool) or not isinstance(device, (str, numbers.Integral)):
        raise TypeError(f"cupy device must be a str, int or cupy.cuda.Device ({expected}), "
                        f"got {type(device).__name__}")
    if isinstance(device, str):  # stripped and lower-cased by _load, its one caller's caller
        if device in ("cuda", "gpu"):
            return current
        text = device.split(":", 1)[1] if device.startswith(("cuda:", "gpu:")) else device
        if not text.isdigit():
            raise ValueError(f"cupy has no device {device!r}; {expected}")
        device = int(text)
    return int(device)


def _probe_cupy(cupy: Any) -> None:
    """Run an elementwise kernel (compiled by NVRTC) and a matmul (cuBLAS) once, so a missing
    CUDA library is a BackendUnavailableError here, not a raw error in the first layer."""
    try:
        x = cupy.arange(4, dtype=cupy.float32) * 2
        value = float((x[None, :] @ x[:, None]).get()[0, 0])
    except Exception as err:  # DynamicLibNotFoundError, ImportError, CUDARuntimeError, ...
        raise BackendUnavailableError(
            f"cupy sees a GPU but cannot compute on it ({type(err).__name__}: {err}); the "
            f"CUDA libraries it loads at first use (NVRTC, cuBLAS) are missing: {_CUPY_FIX} "
            f"installs them through cupy's [ctk] extra, or install the CUDA toolkit"
        ) from err
    if value != 56.0:  # 0 + 4 + 16 + 36
        raise BackendUnavailableError(f"cupy computed a wrong result on the GPU ({value} "
                                      f"instead of 56.0 for a test matmul)")


def _cupy_upload(host: Any, device: Any) -> Any:
    """A host batch on the GPU through page-locked (pinned) memory, copied on a stream of its
    own: a copy from pinned memory runs at the bus's speed and overlaps the kernels that the
    training thread queues meanwhile; from another thread, ``device`` is made current here
    (CUDA's current device is per thread)."""
    cupy = _import("cupy", _CUPY_FIX)
    with device:
        pinned = _import("cupyx", _CUPY_FIX).empty_pinned(host.shape, host.dtype)
        pinned[...] = host
        out = cupy.empty(host.shape, host.dtype)
        stream = cupy.cuda.Stream(non_blocking=True)
        out.set(pinned, stream=stream)
        stream.synchronize()  # the batch is whole before the training thread sees it
    return out


def _load_jax(device: Any) -> Backend:
    jax = _import("jax", install_hint("jax"))
    # float64 is one of xnn's two dtypes (and labels are int64): without x64 mode JAX makes
    # float32 and int32 arrays of those requests, with only a warning. Process-wide, as JAX has it.
    jax.config.update("jax_enable_x64", True)
    dev = _jax_device(jax, device)
    return Backend("jax", array_namespace(jax.numpy.zeros(0, device=dev)), dev)


def _jax_device(jax: Any, device: Any) -> Any:
    """The jax Device of ``device``: None or 'cpu' (the CPU), 'gpu' or 'cuda' (GPU 0), 'gpu:N'
    or 'cuda:N', or a jax Device. Another type is a TypeError; another value a ValueError."""
    expected = "expected 'cpu', 'gpu', 'gpu:N' or a jax Device"
    if isinstance(device, jax.Device):
        return device
    if device in (None, "cpu", "cpu:0"):
        return jax.devices("cpu")[0]
    if not isinstance(device, str):
        raise TypeError(f"jax device must be a str or jax Device ({expected}), "
                        f"got {type(device).__name__}")
    kind, _, index = device.partition(":")
    if kind not in ("gpu", "cuda") or not (index or "0").isdigit():
        raise ValueError(f"jax has no device {device!r}; {expected}")
    try:
        gpus = jax.devices("gpu")
    except RuntimeError as err:  # no GPU platform: "Unknown backend: 'gpu' requested, ..."
        raise BackendUnavailableError(
            f"jax device {device!r} was asked for but jax sees no GPU (jax {jax.__version__}); "
            f"use device='cpu' or install jax with CUDA: pip install \"jax[cuda12]\"") from err
    if int(index or 0) >= len(gpus):
        raise ValueError(f"jax device {device!r} does not exist: jax sees {len(gpus)} GPU(s), "
                         f"so N in 'gpu:N' must lie in [0, {len(gpus)})")
    return gpus[int(index or 0)]


@dataclass(frozen=True)
class Compiler:
    """A library's tracing compiler, as xnn.compiled uses it: ``jit(fn, donate_argnums)``,
    ``scan(fn, carry, xs, length)`` (fn(carry, x) -> (carry, y) along xs' first axis, of
    ``length`` items: xs may hold None), ``shapes(fn,
    *args)`` (what fn returns, as abstract arrays, without running it), ``avals(tree)`` (a
    hashable description of a tree's structure, shapes and dtypes), ``tree_map(fn,
    *trees)`` (fn over the arrays of nested lists, tuples and dicts) and ``read_back`` (the
    errors its tracing raises where traced code reads an array's value on the host)."""

    jit: Callable
    scan: Callable
    shapes: Callable
    avals: Callable
    tree_map: Callable
    read_back: tuple[type[BaseException], ...] = ()


def _jax_compiler() -> Compiler:
    import jax  # noqa: PLC0415 - loaded already by the backend that asks

    def avals(tree: Any) -> tuple:
        leaves, structure = jax.tree.flatten(tree)
        return structure, tuple(
            (tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False)))
            if hasattr(a, "shape") else (type(a), a) for a in leaves)

    errors = jax.errors  # float(), bool() or int() of a tracer, np.asarray of one
    return Compiler(jit=lambda fn, donate_argnums=(): jax.jit(fn, donate_argnums=donate_argnums),
                    scan=jax.lax.scan, shapes=jax.eval_shape, avals=avals,
                    tree_map=jax.tree.map,
                    read_back=(errors.ConcretizationTypeError, errors.TracerArrayConversionError,
                               errors.TracerIntegerConversionError))


def _jax_default() -> Any:
    import jax  # noqa: PLC0415 - loaded already by the backend that asks
    return jax.devices()[0]


def _jax_label(device: Any) -> str:
    return "cpu" if device.platform == "cpu" else f"gpu:{device.id}"

def _strict_label(device: Any) -> str:
    return str(device).split("'")[1] if "'" in str(device) else str(device)


@dataclass(frozen=True)
class _Library:
    """What xnn knows of one array library beyond the Array API standard (see _LOADERS)."""

    load: Callable[[Any], Backend]
    host: Callable[[Any], bool] = lambda device: False
    gpu: Callable[[Any], bool] = lambda device: False
    label: Callable[[Any], str] = str
    upload: Callable[[Any, Backend], Any] | None = None
    compiler: Callable[[], Compiler] | None = None
    default: Callable[[Any], bool] = lambda device: False


# Adding a backend is adding its entry here, under the top-level module name of its array type:
#   load(device): import the library with _import (which explains a missing one), check
#       ``device`` (None is its default; ValueError naming the choices, BackendUnavailableError
#       where it cannot run) and return Backend(name, array_namespace(an array of it), device);
#   host(device): whether its arrays there are host memory that NumPy views and fills in place
#       (Backend.is_host: MPI and shared memory use them directly; else they are staged);
#   gpu(device): whether that is a CUDA GPU (Backend.is_gpu: float32 by default there);
#   label(device): the device as set_backend takes it back, when str(device) is not that;
#   upload(host, backend): a fresh NumPy array of its final dtype on the device, where the
#       library has a faster way than asarray's copy (upload() below; called from any thread);
#   compiler(): its tracing compiler (Backend.compiler), where it has one;
#   default(device): whether arrays made without a device land there, and naming it costs;
# and a branch in to_numpy where NumPy's from_dlpack cannot copy its arrays to the host.
# Everything else xnn does with arrays is the Array API standard, through array_namespace.
_LOADERS = {
    "numpy": _Library(_load_numpy, host=lambda device: True, upload=lambda host, b: host),
    # its arrays are not NumPy's to share: the strict library refuses such interop by design
    "array_api_strict": _Library(_load_array_api_strict, label=_strict_label),
    "torch": _Library(_load_torch, host=lambda device: device.type == "cpu",
                      gpu=lambda device: device.type == "cuda"),
    "cupy": _Library(_load_cupy, gpu=lambda device: True, label=lambda device: str(device.id),
                     upload=lambda host, b: _cupy_upload(host, b.device)),
    # immutable arrays that NumPy may view but never fill: staged, not shared
    "jax": _Library(_load_jax, gpu=lambda device: device.platform == "gpu", label=_jax_label,
                    compiler=_jax_compiler, default=lambda device: device == _jax_default()),
}
BACKEND_NAMES = tuple(_LOADERS)
_UNKNOWN = _Library(lambda device: None)  # an Array API library without an entry


def _library(name: str) -> _Library:
    return _LOADERS.get(name, _UNKNOWN)


def _import(module: str, fix: str) -> Any:
    try:
        with IMPORT_LOCK:  # see IMPORT_LOCK: other threads' type tests wait for the import
            return importlib.import_module(module)
    except ImportError as err:
        raise BackendUnavailableError(
            f"backend {module!r} needs the package {module!r}, which is not installed: {fix}"
        ) from err
    except Exception as err:  # installed but broken: CUDA libraries a GPU package cannot load
        raise BackendUnavailableError(
            f"backend {module!r}: the package {module!r} is installed but fails to import "
            f"({type(err).__name__}: {err}); reinstall it: {fix}") from err


def _load(name: str, device: Any = None) -> Backend:
    if isinstance(name, Backend):
        return name if device is None else _load(name.name, device)
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, got {type(name).__name__}")
    key = name.strip()
    if ":" in key and device is None:  # "torch:cuda", "array_api_strict:device1", "cupy:0"
        key, device = key.split(":", 1)
    key = key.lower().replace("-", "_")
    if key != "array_api_strict" and isinstance(device, str):  # only its names have capitals
        device = device.strip().lower()
    if key not in _LOADERS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")
    return _LOADERS[key].load(device)


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine now."""
    return [name for name in BACKEND_NAMES if unavailable_reason(name) is None]


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine now (its library is not installed, no
    GPU is visible, ...), or None where it can."""
    try:
        _load(name)
    except (BackendUnavailableError, ValueError) as err:
        return str(err)
    return None


# --- the active backend --------------------------------------------------------------------------

_lock = threading.Lock()
_default: Backend | None = None
_override: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("xnn_backend", default=None)


# XNN_BACKEND is read when xnn is imported; the backend it names is loaded at first use, so an
# unavailable one is reported where it is needed rather than breaking the import.
_ENV_BACKEND = os.environ.get("XNN_BACKEND", "").strip()


def _initial() -> Backend:
    """The backend XNN_BACKEND named at import, else numpy."""
    global _default
    with _lock:
        if _default is None:
            try:  # numpy always loads: only a backend XNN_BACKEND named can fail here
                _default = _load(_ENV_BACKEND or "numpy")
            except (BackendUnavailableError, ValueError) as err:
                # one line, without the chain: the fix is in the message
                raise type(err)(f"XNN_BACKEND={_ENV_BACKEND!r}: {err}; or use "
                                f"XNN_BACKEND=numpy") from None
        return _default


def get_backend() -> Backend:
    """The backend in force here: the innermost use_backend(), else the one set_backend() chose."""
    return _override.get() or _default or _initial()


def set_backend(name: str | Backend, device: Any = None) -> Backend:
    """Make ``name`` (on ``device``) the process-wide backend; returns it."""
    global _default
    backend = _load(name, device)
    with _lock:
        _default = backend
    return backend


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar, value: Any) -> Iterator[Any]:
    """Set ``var`` to ``value`` inside a ``with`` block only (yielding ``value``): local to the
    thread or async task that enters it, and restored on the way out."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


def use_backend(name: str | Backend, device: Any = None) -> ContextManager[Backend]:
    """Use ``name`` inside a ``with`` block only; local to the thread or async task that
    enters it."""
    return scoped(_override, _load(name, device))


# --- dtypes --------------------------------------------------------------------------------------

_default_dtype = "float32"
_dtype_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("xnn_dtype",
                                                                            default=None)


def get_default_dtype() -> str:
    """Name of the float dtype that new parameters and data get when none is given: the
    innermost use_default_dtype(), else the one set_default_dtype() chose."""
    return _dtype_override.get() or _default_dtype


def _float_dtype(dtype: Any) -> str:
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"default dtype must be one of {FLOAT_DTYPES}, got {dtype!r}")
    return dtype


def set_default_dtype(dtype: str) -> None:
    """Set the float dtype ("float32" or "float64") of new parameters and data, process-wide."""
    global _default_dtype
    _default_dtype = _float_dtype(dtype)


def use_default_dtype(dtype: str) -> ContextManager[str]:
    """Make ``dtype`` the default inside a ``with`` block only; local to the thread or async task
    that enters it, as use_backend is."""
    return scoped(_dtype_override, _float_dtype(dtype))


def resolve_dtype(xp: Any, dtype: Any = None) -> Any:
    """The namespace's dtype object for a name ("float32"), a dtype object, or None (the default)."""
    if dtype is None:
        dtype = get_default_dtype()
    if isinstance(dtype, str):
        try:
            return getattr(xp, dtype)
        except AttributeError:
            raise ValueError(f"unknown dtype {dtype!r}") from None
    return dtype


# --- moving data ---------------------------------------------------------------------------------

# bool, signed and unsigned integers, floats, complex: the kinds every backend holds
_NUMBER_KINDS = frozenset("biufc")
_KIND_NAMES = {"O": "mixed objects", "U": "text", "S": "bytes", "M": "datetimes",
               "m": "timedeltas", "V": "structured records"}


def _host_numbers(owner: str, obj: Any) -> Any:
    """``obj`` (a NumPy array, list, scalar or array-like) as a NumPy array of numbers; anything
    else (text, dates, Python objects: NumPy holds them, no other backend can) is a TypeError
    naming ``owner`` and what came."""
    if isinstance(obj, (list, tuple)) and obj and all(is_array(a) for a in obj):
        return _stack_on_host(owner, obj)
    try:
        arr = _np.asarray(obj)
    except (TypeError, ValueError) as err:  # NumPy's 'inhomogeneous shape' for ragged lists
        raise TypeError(f"{owner}: cannot make an array from {type(obj).__name__} of mixed or "
                        f"ragged data ({err})") from None
    if arr.dtype.kind in _NUMBER_KINDS:
        return arr
    what = type(obj).__name__
    if isinstance(obj, (list, tuple, _np.ndarray)):
        what += f" of {_KIND_NAMES.get(arr.dtype.kind, 'data that are not numbers')}"
    raise TypeError(f"{owner}: expected numbers (bool, integer, float or complex), got {what} "
                    f"(NumPy dtype {arr.dtype})")


def _stack_on_host(owner: str, arrays: list | tuple) -> Any:
    """A list of arrays (a loss per step, say) as one NumPy array: stacked where they live and
    copied in one transfer (CuPy refuses NumPy's implicit conversion of each), or one by one
    when they come from several libraries or devices."""
    shapes = [tuple(a.shape) for a in arrays]
    if len(set(shapes)) > 1:
        listed = ", ".join(map(str, shapes[:4])) + (", ..." if len(shapes) > 4 else "")
        raise TypeError(f"{owner}: cannot make one array from a {type(arrays).__name__} of "
                        f"arrays of different shapes ({listed})")
    place = backend_of(arrays[0])
    if not all(place.holds(a) for a in arrays):  # several libraries or devices
        return _np.stack([to_numpy(a) for a in arrays])
    return to_numpy(place.xp.stack(list(arrays)))


def quiet_float_errors() -> ContextManager:
    """NumPy's floating-point warnings (array-api-strict's too: it computes with NumPy) off
    for the block, in this thread: for sums taken to see whether values are finite, which
    expect overflow and NaN."""
    return _np.errstate(over="ignore", invalid="ignore")


def to_numpy(x: Any) -> Any:
    """A NumPy copy of ``x`` on the host, from any backend and device; lists and scalars of
    numbers are accepted, anything else (None, dicts, text) is a TypeError."""
    if isinstance(x, (_np.ndarray, _np.generic)):  # numpy reductions give scalars, not 0-d arrays
        return _np.array(x)
    kind = library(x) if is_array(x) else None
    if kind == "cupy":
        return x.get()
    if kind == "torch":
        return x.detach().cpu().numpy().copy()
    if kind == "jax":  # from any device: from_dlpack reads only arrays in host memory
        return _np.array(x)
    if kind == "array_api_strict":
        x = x.to_device(array_namespace(x).Device("CPU_DEVICE"))  # its namespace is the module
    if kind is not None:
        return _np.from_dlpack(x).copy()
    return _np.array(_host_numbers("to_numpy", x))  # an array-like's __array__ may alias it


def resolve_backend(backend: Backend | str | None, device: Any = None) -> Backend:
    """The backend a ``backend=`` argument names (on ``device``, as set_backend takes them):
    None is the active one."""
    return get_backend() if backend is None else _load(backend, device)


def asarray(obj: Any, dtype: Any = None, *, backend: Backend | str | None = None) -> Any:
    """A copy of ``obj`` on the active backend and device (never an alias of the caller's buffer).

    ``obj`` is an array of any backend, or a list, scalar or array-like of numbers (bool,
    integer, float or complex); text, dates, None and other objects are a TypeError. Arrays
    from another backend or device are moved explicitly through the host. ``dtype`` is a name
    ("float32") or a dtype of the target namespace; None keeps the data's dtype, with Python
    floats becoming the default float dtype. ``backend`` is a Backend or a name as
    set_backend takes it ("numpy", "torch:cuda"); None is the active one.

    The copy is a plain array of the library: a torch tensor that requires grad comes detached
    (xnn computes its own gradients), NumPy subclasses (np.memmap) come as np.ndarray and
    big-endian data in the machine's byte order.
    """
    b = resolve_backend(backend)
    xp = b.xp
    if is_array(obj) and not isinstance(obj, (_np.ndarray, _np.generic)):
        obj = detached(obj)  # a copy must not extend autograd's graph
        if not b.holds(obj):
            obj = to_numpy(obj)
    else:  # NumPy's arrays too: NumPy also holds text and dates
        host = _host_numbers("asarray", obj)
        if not host.dtype.isnative:  # big-endian data: in the machine's byte order
            host = host.astype(host.dtype.newbyteorder("="))
        if dtype is None and host.dtype == _np.float64 and not is_array(obj):
            dtype = get_default_dtype()  # Python floats follow it, as torch.tensor does
        obj = host
    target = None if dtype is None else resolve_dtype(xp, dtype)
    if isinstance(obj, _np.ndarray) and b.name != "numpy":
        if target is not None:
            # cast on the host: identical bits everywhere (no copy where the dtype is the
            # target's already: the library's asarray below copies)
            obj = obj.astype(dtype_name(target), copy=False)
            target = None
        obj = _np.asarray(obj, order="C")  # ascontiguousarray would make 0-d arrays 1-d
    # a library's default device unnamed where naming it costs (jax: 10x, a sharding check)
    device = None if _library(b.name).default(b.device) else b.device
    return xp.asarray(obj, dtype=target, device=device, copy=True)


def upload(host: Any, backend: Backend) -> Any:
    """A fresh host NumPy array, already of its final dtype, on ``backend``'s device: handed
    over as it is to NumPy, through pinned memory to CuPy, copied by asarray elsewhere. Safe
    from a background thread (fit's prefetching reader, xnn/stream.py)."""
    move = _library(backend.name).upload
    return asarray(host, backend=backend) if move is None else move(host, backend)


def backend_of(x: Any) -> Backend:
    """The backend (library and device) an array lives on."""
    return Backend(library(x), array_namespace(x), device_of(x))


def host_view(x: Any) -> Any:
    """A NumPy array sharing the memory of an array on the host (Backend.is_host): no copy."""
    return x if isinstance(x, _np.ndarray) else _np.from_dlpack(detached(x))


def host_backend() -> Backend:
    """NumPy on the CPU: where data sets and random numbers are made before they move."""
    return _HOST


def from_host(a: Any, dtype: Any, backend: Backend | str | None = None) -> Any:
    """Move a host (NumPy) array onto ``backend`` (None: the active one), cast on the host to
    ``dtype`` (None: the default float dtype) first."""
    return asarray(a, dtype=get_default_dtype() if dtype is None else dtype, backend=backend)
