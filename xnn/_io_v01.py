"""Reading checkpoints written by xnn 0.1: an uncompressed ``.npz`` with an ``__xnn__`` JSON entry
whose architecture lists each module's class and constructor arguments.

Every byte is untrusted. Before NumPy reads a member, its zip entry must be stored (0.1 never
compressed, so a compressed member is refused instead of inflated) and its .npy header must
declare no more bytes than the member holds, counted in the file on disk (the zip directory's
sizes are the file's word too); constructors make placeholders, not weights.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any

import numpy as np  # 0.1 checkpoints are NumPy archives

from . import random
from .backend import Backend, asarray, dtype_name, use_backend
from .nn import init as _init
from .nn.module import MODULE_CLASSES, Module

META = "__xnn__"
FORMAT, VERSION = "xnn-checkpoint", 1

_INITIALIZERS = {name: getattr(_init, name) for name in _init.__all__
                 if name not in ("Initializer", "normal", "Normal")}


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class LegacyError(ValueError):
    """A 0.1 file that cannot be read; io turns it into a CheckpointError naming the file."""


def read(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, arrays) of a 0.1 checkpoint, after checking every member's declared size."""
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise LegacyError(f"member {info.filename!r} is compressed; xnn 0.1 wrote "
                                  f"stored members only")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version not in _HEADER_READERS:
                    raise LegacyError(f"member {info.filename!r} is .npy version {version}")
                shape, _, dtype = _HEADER_READERS[version](member)
                if dtype.hasobject:
                    raise LegacyError(f"member {info.filename!r} holds objects, which only a "
                                      f"pickle could read: refused")
                # NumPy allocates the declared array before reading a zip member into it
                holds = min(info.file_size, size - info.header_offset)
                needed = math.prod(shape) * dtype.itemsize
                if needed > holds - member.tell():
                    raise LegacyError(f"member {info.filename!r} declares {shape} {dtype} "
                                      f"({needed} bytes) but holds {holds} bytes")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if META not in arrays:
        raise LegacyError(f"has no {META} entry: not an xnn checkpoint")
    try:
        meta = json.loads(bytes(arrays.pop(META)).decode())
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise LegacyError(f"has a corrupt {META} entry: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LegacyError(f"is not an xnn checkpoint (format "
                          f"{meta.get('format') if isinstance(meta, dict) else meta!r})")
    if meta.get("version") != VERSION:
        raise LegacyError(f"has format version {meta.get('version')!r}; this xnn reads "
                          f"0.1's version 1 and safetensors checkpoints")
    return meta, arrays


def build(meta: dict[str, Any], arrays: dict[str, Any], target: Backend) -> Module:
    """The model a 0.1 checkpoint describes, on ``target``, built with its constructors inside
    :func:`xnn.random.placeholders`, so nothing is drawn or allocated before the file's arrays,
    checked against what the constructors made, replace their placeholders."""
    with use_backend(target), random.placeholders():
        model = _decode(meta["architecture"])
    current = model.state_dict()
    keys = meta.get("model_keys", [])
    if list(current) != keys:
        raise LegacyError(f"lists state {keys}, but its architecture has {list(current)}")
    params = dict(model.named_parameters())
    modules = dict(model._named_modules())
    for key in keys:  # a model refused half-filled is never returned
        host = arrays.get(f"model/{key}")
        if host is None:
            raise LegacyError(f"lacks the array for {key!r}")
        if tuple(host.shape) != tuple(current[key].shape):
            raise LegacyError(f"stores {key!r} with shape {tuple(host.shape)}, the architecture "
                              f"needs {tuple(current[key].shape)}")
        stored, needed = dtype_name(host.dtype), dtype_name(current[key].dtype)
        if not _same_family(stored, needed):
            raise LegacyError(f"stores {key!r} as {stored}, the architecture needs {needed}")
        value = asarray(host, dtype=stored, backend=target)
        if key in params:
            params[key].value = value
        else:
            prefix, _, leaf = key.rpartition(".")
            modules[prefix + "." if prefix else ""].load_buffer(leaf, value)
    return model


def _same_family(stored: str, needed: str) -> bool:
    if needed.startswith("float"):
        return stored in ("float32", "float64")
    if needed.startswith(("int", "uint")):
        return stored.startswith(("int", "uint"))
    return stored == needed


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "class" in value:
        name = value.get("class")
        cls = MODULE_CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise LegacyError(f"names an unknown layer class {name!r}: import the module that "
                              f"defines it before loading (xnn never imports code named in a "
                              f"file)")
        args = [_decode(a) for a in value.get("args", [])]
        kwargs = {k: _decode(v) for k, v in value.get("kwargs", {}).items()}
        return cls(*args, **kwargs)
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
    raise LegacyError(f"has an unreadable architecture entry {value!r}")
