"""Checkpoints: ``xnn.save`` and ``xnn.load``, portable across backends and safe to open.

A checkpoint is an uncompressed NumPy ``.npz`` archive: one array per parameter, buffer and
optimizer-state entry, plus ``__xnn__``, UTF-8 JSON with the format version, the architecture
(each module's class and constructor arguments), the optimizer's class and hyperparameters,
the random generator's state and the user's ``extra``. Nothing is ever unpickled: archives
are read with ``allow_pickle=False`` and classes are looked up among those already defined,
never imported by name. Saving writes a temporary file beside the target and renames it over
the target, so a crash mid-save leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np  # checkpoints are NumPy archives on the host

from . import random
from .backend import (Backend, _load, asarray, dtype_name, get_backend, host_backend,
                      to_numpy)
from .random import host_generator
from .nn import init as _init
from .nn.module import MODULE_CLASSES, Module
from .optim.optimizers import Optimizer

__all__ = ["save", "load", "Checkpoint", "CheckpointError", "describe", "build",
           "FORMAT", "VERSION"]

FORMAT, VERSION = "xnn-checkpoint", 1
META = "__xnn__"


def write_arrays(file: Any, arrays: dict[str, Any]) -> None:
    """Write host arrays to an open binary file as an uncompressed .npz archive (no pickles)."""
    for name, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"cannot save {name!r}: object arrays would need pickle")
    np.savez(file, **arrays)


def read_arrays(path: str) -> dict[str, Any]:
    """Every array of a .npz archive, loaded eagerly with pickles refused."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


class CheckpointError(ValueError):
    """A file that is not a readable xnn checkpoint, or a model that cannot be described."""


# --- architecture as JSON ------------------------------------------------------------------------

_INITIALIZERS = {name: getattr(_init, name) for name in _init.__all__
                 if name not in ("Initializer", "normal", "Normal")}


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Module):
        return describe(value)
    if isinstance(value, (list, tuple)):
        return {"tuple" if isinstance(value, tuple) else "list":
                [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    for name, fn in _INITIALIZERS.items():
        if value is fn:
            return {"initializer": name}
    if isinstance(value, _init.Normal):
        return {"initializer": "normal", "std": value.std, "mean": value.mean}
    raise CheckpointError(f"cannot describe {where} = {value!r} in a checkpoint: constructor "
                          f"arguments must be numbers, strings, lists, modules or xnn.nn.init "
                          f"initializers")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "class" in value:
        return build(value)
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if "list" in value:
        return [_decode(v) for v in value["list"]]
    if "initializer" in value:
        name = value["initializer"]
        if name == "normal":
            return _init.normal(value["std"], value["mean"])
        if name in _INITIALIZERS:
            return _INITIALIZERS[name]
    raise CheckpointError(f"unreadable architecture entry {value!r}")


def describe(module: Module) -> dict[str, Any]:
    """JSON-ready description of ``module``: its class and the arguments it was built with."""
    cls = type(module)
    name = f"{cls.__module__}.{cls.__qualname__}"
    args, kwargs = getattr(module, "_init_args", ((), {}))
    return {"class": name,
            "args": [_encode(a, f"{cls.__name__} argument {i}") for i, a in enumerate(args)],
            "kwargs": {k: _encode(v, f"{cls.__name__}({k}=...)") for k, v in kwargs.items()}}


def build(description: dict[str, Any]) -> Module:
    """A new module from :func:`describe`'s output, on the active backend (fresh weights)."""
    name = description.get("class")
    cls = MODULE_CLASSES.get(name)
    if cls is None:
        raise CheckpointError(f"unknown layer class {name!r}: import the module that defines it "
                              f"before loading (xnn never imports code named in a file)")
    args = [_decode(a) for a in description.get("args", [])]
    kwargs = {k: _decode(v) for k, v in description.get("kwargs", {}).items()}
    return cls(*args, **kwargs)


# --- saving --------------------------------------------------------------------------------------

def save(path: str | os.PathLike, model: Module, optimizer: Optimizer | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Write model (architecture and weights), optimizer state, generator state and ``extra``
    (JSON data) to ``path``, atomically.

    Raises TypeError when ``model`` is not an xnn Module or ``optimizer`` not an xnn Optimizer
    (or None), and leaves any file already at ``path`` untouched.
    """
    if not isinstance(model, Module):
        raise TypeError(f"xnn.save: model must be an xnn Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"xnn.save: optimizer must be an xnn Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    arrays: dict[str, Any] = {f"model/{k}": to_numpy(v) for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "architecture": describe(model),
        "model_keys": list(model.state_dict()), "rng": random.get_state(),
        "saved_on": str(get_backend()), "optimizer": None, "extra": extra,
    }
    if optimizer is not None:
        if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
            raise ValueError("xnn.save: the optimizer must hold model.parameters(), in that "
                             "order, to be saved with the model")
        state = optimizer.state_dict()
        layout = {}
        for key, items in state["state"].items():
            layout[key] = []
            for i, item in enumerate(items):
                if item is None or isinstance(item, (int, float)):
                    layout[key].append(item)
                else:
                    arrays[f"optim/{key}/{i}"] = to_numpy(item)
                    layout[key].append({"array": f"optim/{key}/{i}"})
        meta["optimizer"] = {"class": state["optimizer"], "steps": state["steps"],
                             "hyperparameters": state["hyperparameters"], "state": layout}
    try:
        text = json.dumps(meta, allow_nan=True)
    except TypeError as err:
        raise TypeError(f"xnn.save: extra must be JSON data (dicts, lists, numbers, strings): "
                        f"{err}") from err
    arrays[META] = host_backend().xp.asarray(bytearray(text.encode()))
    _atomic_write(os.fspath(path), arrays)


def _atomic_write(path: str, arrays: dict[str, Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write_arrays(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- loading -------------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    """What :func:`load` returns: the rebuilt model, its optimizer (or None) and ``extra``."""

    model: Module
    optimizer: Optimizer | None
    extra: Any
    meta: dict[str, Any] = field(repr=False, default_factory=dict)


def _read(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        arrays = read_arrays(path)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - every byte of the file is untrusted: a damaged zip
        # header alone gives NotImplementedError (version, compression) or RuntimeError
        # (encrypted flag) besides the OSError/ValueError/BadZipFile of a truncated file
        raise CheckpointError(f"xnn.load: {path} is not a readable xnn checkpoint "
                              f"({type(err).__name__}: {err})") from err
    if META not in arrays:
        raise CheckpointError(f"xnn.load: {path} has no {META} entry: not an xnn checkpoint")
    try:
        meta = json.loads(bytes(to_numpy(arrays.pop(META))).decode())
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"xnn.load: {path} has a corrupt {META} entry: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"xnn.load: {path} is not an xnn checkpoint (format "
                              f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"xnn.load: {path} has format version {meta.get('version')!r}; "
                              f"this xnn reads version {VERSION}")
    return meta, arrays


def load(path: str | os.PathLike, backend: str | Backend | None = None, *,
         restore_rng: bool = True) -> Checkpoint:
    """Rebuild a saved model (and optimizer) on ``backend`` (default: the active one).

    With ``restore_rng`` the global generator continues from where it was at save time, so
    shuffles and dropout masks continue as in an uninterrupted run.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    target = get_backend() if backend is None else _load(backend)
    if restore_rng:
        _check_rng(path, meta)
    state = random.get_state()
    try:
        from .backend import use_backend  # noqa: PLC0415

        with use_backend(target):
            model = build(meta["architecture"])
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"xnn.load: cannot rebuild the architecture of {path}: "
                              f"{type(err).__name__}: {err}") from err
    finally:
        random.set_state(state)  # building drew fresh weights; the file's weights replace them
    _fill_model(path, model, meta, arrays, target)
    optimizer = _rebuild_optimizer(path, model, meta, arrays) if meta.get("optimizer") else None
    if restore_rng:
        random.set_state(meta["rng"])  # checked by _check_rng: cannot fail half-way
    return Checkpoint(model, optimizer, meta.get("extra"), meta)


def _check_rng(path: str, meta: dict) -> None:
    """Refuse a generator state that set_state would reject, before anything is changed."""
    try:
        host_generator(None).bit_generator.state = meta["rng"]  # a scratch generator
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"xnn.load: {path} has an unusable generator state "
                              f"({type(err).__name__}: {err})") from err


def _same_family(stored: str, needed: str) -> bool:
    """Whether an array stored as ``stored`` may fill an entry of dtype ``needed``: float32 or
    float64 for a float entry (the saved precision is kept), an integer for an integer one."""
    if needed.startswith("float"):
        return stored in ("float32", "float64")
    if needed.startswith(("int", "uint")):
        return stored.startswith(("int", "uint"))
    return stored == needed


def _fill_model(path: str, model: Module, meta: dict, arrays: dict, target: Backend) -> None:
    current = model.state_dict()
    keys = meta.get("model_keys", [])
    if list(current) != keys:
        raise CheckpointError(f"xnn.load: {path} lists state {keys}, but its architecture has "
                              f"{list(current)}")
    values = {}
    for key in keys:
        host = arrays.get(f"model/{key}")
        if host is None:
            raise CheckpointError(f"xnn.load: {path} lacks the array for {key!r}")
        if tuple(host.shape) != tuple(current[key].shape):
            raise CheckpointError(f"xnn.load: {path} stores {key!r} with shape "
                                  f"{tuple(host.shape)}, the architecture needs "
                                  f"{tuple(current[key].shape)}")
        stored, needed = dtype_name(host.dtype), dtype_name(current[key].dtype)
        if not _same_family(stored, needed):
            raise CheckpointError(f"xnn.load: {path} stores {key!r} as {stored}, the "
                                  f"architecture needs {needed}")
        try:
            values[key] = asarray(host, dtype=stored, backend=target)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"xnn.load: {path} stores {key!r} in a form that cannot be "
                                  f"loaded ({type(err).__name__}: {err})") from err
    params = dict(model.named_parameters())
    modules = dict(model._named_modules())
    for key, value in values.items():
        if key in params:
            params[key].value = value  # keeps the saved dtype, whatever the default now is
        else:
            prefix, _, leaf = key.rpartition(".")
            modules[prefix + "." if prefix else ""].load_buffer(leaf, value)


def _optimizer_classes() -> dict[str, type]:
    found, todo = {}, [Optimizer]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def _rebuild_optimizer(path: str, model: Module, meta: dict, arrays: dict) -> Optimizer:
    info = meta["optimizer"]
    cls = _optimizer_classes().get(info.get("class")) if isinstance(info, dict) else None
    if cls is None:
        raise CheckpointError(f"xnn.load: {path} names an unknown optimizer "
                              f"{info.get('class') if isinstance(info, dict) else info!r}")
    # everything below reads the file's metadata: a missing key, an array named but absent or
    # a hyperparameter the constructor refuses (lr = -1) is a damaged checkpoint
    try:
        state = {}
        for key, items in info["state"].items():
            state[key] = [arrays[item["array"]] if isinstance(item, dict) else item
                          for item in items]
        hyper = info["hyperparameters"]
        optimizer = cls(model.parameters(), lr=hyper["lr"])
        optimizer.load_state_dict({"optimizer": info["class"], "hyperparameters": hyper,
                                   "steps": info["steps"], "state": state})
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"xnn.load: {path} has unusable optimizer state "
                              f"({type(err).__name__}: {err})") from err
    return optimizer
