"""Checkpoints: ``xnn.save`` and ``xnn.load``, portable across backends and safe to open.

A checkpoint is a safetensors file: one tensor per parameter and buffer, named by the model's
``state_dict`` keys, and the optimizer's state under ``optimizer/``; the header's metadata holds
the format version, xnn's version, the architecture read from the live module tree
(:mod:`xnn.architecture`), the optimizer's class and hyperparameters, the random generator's
state and the user's ``extra``, each as JSON; arrays in ``extra`` are tensors named
``extra/<i>``, put back at the JSON paths that ``extra_tensors`` lists. Any safetensors reader
(NumPy, PyTorch, JAX, Rust) reads the tensors. Nothing is ever unpickled, and layer classes are
looked up among those already defined, never imported by name. Saving writes a temporary file
beside the target and renames it over the target, so a crash mid-save leaves the previous
checkpoint whole. Files written by xnn 0.1 (``.npz``) still load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np  # checkpoints are read and written on the host

from . import _io_v01, random
from ._version import __version__
from ._checks import flag
from .architecture import ArchitectureError, build, describe
from .backend import Backend, _load, get_backend, to_numpy
from .namespace import is_array
from .nn.module import Module
from .optim.optimizers import Optimizer
from .random import host_generator

__all__ = ["save", "load", "Checkpoint", "CheckpointError", "FORMAT", "VERSION"]

FORMAT, VERSION = "xnn-checkpoint", 3
OPTIMIZER_PREFIX = "optimizer/"
EXTRA_PREFIX = "extra/"
# safetensors dtype -> bytes per element; the ones NumPy reads
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


class CheckpointError(ValueError):
    """A file that is not a readable xnn checkpoint, or a model that cannot be described."""


def _path(owner: str, path: Any) -> str:
    """``path`` (str, bytes or os.PathLike, as open() takes) as a str; TypeError otherwise."""
    try:
        path = os.fsdecode(path)
    except TypeError:
        raise TypeError(f"{owner}: path must be a str, bytes or os.PathLike, got "
                        f"{type(path).__name__}") from None
    if not path or "\0" in path:
        raise ValueError(f"{owner}: path must be a file name, got {path!r}")
    return path


def _json_scalar(value: Any) -> Any:
    """A NumPy scalar (np.float32(0.5), a metric read back) as the Python number it holds."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# --- saving --------------------------------------------------------------------------------------

def save(path: str | os.PathLike, model: Module, optimizer: Optimizer | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Write model (architecture and weights), optimizer state, generator state and ``extra``
    (JSON data, arrays of any backend inside it as tensors) to ``path`` as a safetensors file,
    atomically.

    Raises TypeError when ``model`` is not an xnn Module or ``optimizer`` not an xnn Optimizer
    (or None), CheckpointError when a module cannot be described (see docs/custom-layers.md),
    and leaves any file already at ``path`` untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (by convention ``.safetensors``); replaced if it exists.
    model : xnn.nn.Module
        The model, on any backend; its layers' constructor arguments and every parameter
        and buffer are saved.
    optimizer : xnn.optim.Optimizer or None, default None
        An optimizer over ``model``'s parameters, whose hyperparameters and state are saved
        so that training resumes where it stopped.
    extra : dict or None, default None
        Anything else to keep with the model (epoch, class names, ...), as JSON data in
        which arrays of any backend may sit (stored as tensors, never pickled); it comes back
        as ``Checkpoint.extra``, its arrays as NumPy arrays of the same dtype and shape.

    Raises
    ------
    TypeError
        For a model or optimizer of another kind, or ``extra`` that is not JSON data.
    CheckpointError
        For a module that cannot be described.

    Examples
    --------
    >>> import xnn
    >>> from xnn import nn, optim
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    >>> xnn.save("model.safetensors", model, opt, extra={"classes": ["a", "b", "c"]})
    >>> checkpoint = xnn.load("model.safetensors")
    >>> checkpoint.extra, type(checkpoint.optimizer).__name__
    ({'classes': ['a', 'b', 'c']}, 'Adam')
    """

    path = _path("xnn.save", path)
    if not isinstance(model, Module):
        raise TypeError(f"xnn.save: model must be an xnn Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"xnn.save: optimizer must be an xnn Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    try:
        architecture, tensors = describe(model)
    except ArchitectureError as err:
        raise CheckpointError(f"xnn.save: {err}") from err
    arrays = {key: to_numpy(value) for key, value in tensors.items()}
    meta = {"format": FORMAT, "format_version": str(VERSION), "xnn_version": __version__,
            "architecture": architecture, "rng": random.get_state(),
            "saved_on": str(get_backend()), "optimizer": None}
    if optimizer is not None:
        meta["optimizer"] = _optimizer_meta(model, optimizer, arrays)
    try:
        found: list[tuple[list, Any]] = []
        meta["extra"] = _without_arrays(extra, [], found, set())
        if found:  # only then: a file without them stays readable by older xnn
            meta["extra_tensors"] = [where for where, _ in found]
            arrays.update((f"{EXTRA_PREFIX}{i}", a) for i, (_, a) in enumerate(found))
        # the fixed fields are plain strings; every other (extra too, which may be a string
        # itself) is JSON, as load reads them
        header = {k: v if k in _PLAIN_FIELDS else json.dumps(v, allow_nan=True,
                                                              default=_json_scalar)
                  for k, v in meta.items()}
    except TypeError as err:
        raise TypeError(f"xnn.save: extra must be JSON data (dicts, lists, numbers, strings) "
                        f"and arrays of numbers: {err}") from err
    except (ValueError, RecursionError) as err:  # a dict or list that contains itself
        raise ValueError(f"xnn.save: extra must be JSON data without cycles: {err}") from err
    write_atomically(path, lambda f: write_arrays(f, arrays, header), "xnn.save")


def _without_arrays(value: Any, where: list, found: list, seen: set) -> Any:
    """``value`` (the user's extra) with each array replaced by None, and (JSON path, host
    array) of each appended to ``found``; a dict or list met again inside itself is a cycle."""
    if is_array(value) and not isinstance(value, np.generic):  # NumPy scalars are numbers
        host = to_numpy(value)
        if host.dtype.kind not in "biuf":  # what safetensors holds: no objects, text, complex
            raise TypeError(f"the array at {where} has dtype {host.dtype}; safetensors holds "
                            f"bool, integer and float arrays")
        found.append((where, host))
        return None
    if not isinstance(value, (dict, list, tuple)):
        return value  # json.dumps takes it or refuses it
    if id(value) in seen:
        raise ValueError("Circular reference detected")
    seen.add(id(value))
    if isinstance(value, dict):  # the path names each key as JSON writes it (1 -> "1")
        copy: Any = {k: _without_arrays(v, [*where, k if isinstance(k, str) else json.dumps(k)],
                                        found, seen) for k, v in value.items()}
    else:
        copy = [_without_arrays(v, [*where, i], found, seen) for i, v in enumerate(value)]
    seen.discard(id(value))
    return copy


def _optimizer_meta(model: Module, optimizer: Optimizer, arrays: dict[str, Any]) -> dict:
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
        raise ValueError("xnn.save: the optimizer must hold model.parameters(), in that "
                         "order, to be saved with the model")
    state = optimizer.state_dict()
    layout: dict[str, list] = {}
    for key, items in state["state"].items():
        layout[key] = []
        for i, item in enumerate(items):
            if item is None or isinstance(item, (int, float)):
                layout[key].append(item)
            else:
                name = f"{OPTIMIZER_PREFIX}{key}/{i}"
                arrays[name] = to_numpy(item)
                layout[key].append({"tensor": name})
    return {"class": state["optimizer"], "steps": state["steps"],
            "hyperparameters": state["hyperparameters"], "state": layout}


def write_arrays(file: Any, arrays: dict[str, Any], metadata: dict[str, str]) -> None:
    """Write host arrays and string metadata to an open binary file in safetensors format."""
    from safetensors.numpy import save as to_bytes  # noqa: PLC0415 - a dependency, loaded late

    for name, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"cannot save {name!r}: object arrays would need pickle")
    arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    file.write(to_bytes(arrays, metadata={**metadata, DIGEST: _digest(arrays)}))


# the metadata field of the tensors' digest, which read_tensors checks where a file has it
DIGEST = "xnn_digest"


def _digest(arrays: dict[str, Any]) -> str:
    """BLAKE2b of every tensor's name, dtype, shape and bytes, in name order: a file whose
    tensor bytes were damaged (the header still sound) reads as corrupt, not as weights."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name} {a.dtype.str} {a.shape};".encode())
        h.update(a.data)
    return h.hexdigest()


_TMP_SUFFIX = ".xnn-tmp"


def _temporary_prefix(base: str) -> str:
    """What the temporaries of the file ``base`` start with: its name where that leaves room
    for the suffixes within a file name's 255 bytes, else a digest of it."""
    raw = os.fsencode(base)
    return f".{base if len(raw) <= 200 else hashlib.sha256(raw).hexdigest()}."


def _remove_stale_temporaries(folder: str, prefix: str) -> None:
    """Delete the temporaries named ``prefix``... in ``folder`` left by saves whose process is
    gone (killed mid-save); a temporary of a process still running (a concurrent save) is left
    alone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        pid = name[len(prefix):-len(_TMP_SUFFIX)].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def write_atomically(path: str, write: Callable[[Any], None], owner: str) -> None:
    """Call ``write`` on a temporary file beside ``path`` and rename it over ``path``, so a
    crash or an error mid-write leaves any file already there whole.

    A symlink's target is written (as open() writes through it); a ``path`` that is a folder
    or whose folder is missing is refused with an error naming ``owner``."""
    if os.path.islink(path):  # latest.xnn -> run3.xnn: run3.xnn is replaced, the link kept
        path = os.path.realpath(path)
    folder, base = os.path.split(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{owner}: {path} is a folder; give a file name in it")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{owner}: the folder {folder} of {path} does not exist")
    prefix = _temporary_prefix(base)
    _remove_stale_temporaries(folder, prefix)
    try:
        mode = os.stat(path).st_mode & 0o7777  # an existing file keeps its mode
    except OSError:
        mode = None  # a new file gets 0o666 less the umask, as open() gives
    tmp = os.path.join(folder, f"{prefix}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- reading -------------------------------------------------------------------------------------

def read_tensors(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, Any]]:
    """(metadata, tensors as NumPy arrays) of a safetensors file, every declared offset, shape
    and dtype checked against the file's size before a byte of tensor data is read."""
    from safetensors import safe_open  # noqa: PLC0415 - a dependency, loaded when used

    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{size} bytes: too short for a safetensors header")
        length = int.from_bytes(head, "little")
        if length > size - 8:
            raise ValueError(f"the header declares {length} bytes, the file has {size - 8}")
        header = _checked_header(f.read(length), size - 8 - length)
    names = [k for k in header if k != "__metadata__"]
    tensors = {}
    if names:
        with safe_open(path, framework="np") as f:  # memory-mapped: one copy per tensor
            tensors = {name: f.get_tensor(name) for name in names}
    metadata = header.get("__metadata__") or {}
    if DIGEST in metadata and metadata[DIGEST] != _digest(tensors):  # files before it: none
        raise ValueError("its tensors' bytes do not match the digest written with them "
                         "(damaged after it was saved)")
    return metadata, tensors


def _checked_header(text: bytes, body: int) -> dict[str, Any]:
    """The parsed header, each tensor's dtype, shape and offsets checked against the ``body``
    bytes of data that follow it."""
    header = json.loads(text.decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError("__metadata__ must map names to strings")
            continue
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise ValueError(f"tensor {name!r} has dtype {dtype!r}")
        if (not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(n) is int for n in offsets)):
            raise ValueError(f"tensor {name!r} has an unreadable shape or offsets")
        start, stop = offsets
        needed = math.prod(shape) * _ITEMSIZE[dtype]  # Python ints: no overflow
        if not 0 <= start <= stop <= body or stop - start != needed:
            raise ValueError(f"tensor {name!r} declares shape {tuple(shape)} of {dtype} "
                             f"({needed} bytes) at {start}..{stop}; the file holds {body} "
                             f"bytes of data")
        spans.append((start, stop))
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise ValueError("tensors overlap")
    return header


@dataclass
class Checkpoint:
    """What :func:`load` returns: the rebuilt model, its optimizer (or None) and ``extra``."""

    model: Module
    optimizer: Optimizer | None
    extra: Any
    meta: dict[str, Any] = field(repr=False, default_factory=dict)


def _read(path: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(meta, host tensors, whether the file is a 0.1 npz)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK"):  # a zip: 0.1's npz
            meta, arrays = _io_v01.read(path)
            return meta, arrays, True
        header, tensors = read_tensors(path)
    except FileNotFoundError:
        raise
    except _io_v01.LegacyError as err:
        raise CheckpointError(f"xnn.load: {path} {err}") from err
    except Exception as err:  # noqa: BLE001 - every byte of the file is untrusted: a damaged zip
        # header alone gives NotImplementedError or RuntimeError besides OSError/ValueError
        raise CheckpointError(f"xnn.load: {path} is not a readable xnn checkpoint "
                              f"({type(err).__name__}: {err})") from err
    if header.get("format") != FORMAT:
        raise CheckpointError(f"xnn.load: {path} is not an xnn checkpoint (its metadata has "
                              f"format {header.get('format')!r})")
    if header.get("format_version") != str(VERSION):
        raise CheckpointError(f"xnn.load: {path} has format version "
                              f"{header.get('format_version')!r}; this xnn reads version "
                              f"{VERSION} (and 0.1's npz)")
    meta: dict[str, Any] = {}
    for key, text in header.items():
        try:
            meta[key] = text if key in _PLAIN_FIELDS else json.loads(text)
        except (ValueError, RecursionError) as err:
            raise CheckpointError(f"xnn.load: {path} has corrupt metadata {key!r}: "
                                  f"{err}") from err
    return meta, tensors, False


# metadata fields stored as plain strings; the others are JSON
_PLAIN_FIELDS = ("format", "format_version", "xnn_version", "saved_on", DIGEST)


def load(path: str | os.PathLike, backend: str | Backend | None = None, *,
         restore_rng: bool = True) -> Checkpoint:
    """Rebuild a saved model (and optimizer) on ``backend`` (default: the active one).

    With ``restore_rng`` the global generator continues from where it was at save time, so
    shuffles (``fit(seed=None)``) and dropout masks continue as in an uninterrupted run.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``xnn.save`` (or by xnn 0.1's ``.npz`` format).
    backend : str or Backend or None, default None
        Where to rebuild the model: a backend name (``"torch:cuda"``), a ``Backend``, or
        None for the active backend. A checkpoint saved on one backend loads on any other.
    restore_rng : bool, default True
        Set xnn's global generator to its state at save time.

    Returns
    -------
    Checkpoint
        ``model`` (each module in the train/eval mode it was saved in), ``optimizer`` (None
        if none was saved) and ``extra``.

    Raises
    ------
    CheckpointError
        For a file that is not a readable xnn checkpoint, names an unknown layer class
        (import the module that defines it first) or holds inconsistent shapes.
    OSError
        For a file that cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> import xnn
    >>> from xnn import nn
    >>> model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    >>> xnn.save("model.safetensors", model)
    >>> restored = xnn.load("model.safetensors", backend="numpy").model
    >>> X = np.ones((3, 2))
    >>> bool(np.allclose(xnn.to_numpy(xnn.predict(restored, X)),
    ...                  xnn.to_numpy(xnn.predict(model, X)), atol=1e-6))
    True
    """
    path = _path("xnn.load", path)
    restore_rng = flag("xnn.load", "restore_rng", restore_rng)
    meta, arrays, v01 = _read(path)
    extra = _with_arrays(path, meta, arrays)
    target = get_backend() if backend is None else _load(backend)
    if restore_rng:
        _check_rng(path, meta)
    if v01:
        model = _build_v01(path, meta, arrays, target)
        optimizer_tensors = {k: v for k, v in arrays.items() if k.startswith("optim/")}
    else:
        model_tensors = {k: v for k, v in arrays.items() if not k.startswith(OPTIMIZER_PREFIX)}
        optimizer_tensors = {k: v for k, v in arrays.items() if k.startswith(OPTIMIZER_PREFIX)}
        try:
            model = build(meta.get("architecture"), model_tensors, target)
        except ArchitectureError as err:
            raise CheckpointError(f"xnn.load: {path}: {err}") from err
    optimizer = (_rebuild_optimizer(path, model, meta, optimizer_tensors)
                 if meta.get("optimizer") else None)
    if restore_rng:
        random.set_state(meta["rng"])  # checked by _check_rng: cannot fail half-way
    return Checkpoint(model, optimizer, extra, meta)


def _with_arrays(path: str, meta: dict, arrays: dict) -> Any:
    """The saved extra with its tensors (taken out of ``arrays``) back in place, as NumPy
    arrays; a path that does not lead to a null placeholder or a tensor missing or left over
    is a CheckpointError."""
    tensors = {k: arrays.pop(k) for k in list(arrays) if k.startswith(EXTRA_PREFIX)}
    box = [meta.get("extra")]  # a path [] is extra itself
    try:
        paths = meta.get("extra_tensors", [])
        if not isinstance(paths, list) or not all(isinstance(p, list) for p in paths):
            raise ValueError(f"expected a list of JSON paths, got {paths!r:.80}")
        names = [f"{EXTRA_PREFIX}{i}" for i in range(len(paths))]
        if sorted(names) != sorted(tensors):
            raise ValueError(f"it lists {len(names)} tensors, the file has {sorted(tensors)}")
        for name, (*keys, last) in zip(names, ([0, *p] for p in paths)):
            node = box
            for key in keys:
                node = node[key]
            if type(last) not in (str, int) or node[last] is not None:
                raise ValueError(f"{name}'s place {last!r} holds no placeholder")
            node[last] = tensors[name]
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise CheckpointError(f"xnn.load: {path} has unusable metadata 'extra_tensors' "
                              f"({type(err).__name__}: {err})") from err
    return box[0]


def _check_rng(path: str, meta: dict) -> None:
    """Refuse a generator state that set_state would reject, before anything is changed."""
    try:
        host_generator(None).bit_generator.state = meta["rng"]  # a scratch generator
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"xnn.load: {path} has an unusable generator state "
                              f"({type(err).__name__}: {err})") from err


# --- 0.1 files -----------------------------------------------------------------------------------

def _build_v01(path: str, meta: dict, arrays: dict, target: Backend) -> Module:
    try:
        return _io_v01.build(meta, arrays, target)
    except _io_v01.LegacyError as err:
        raise CheckpointError(f"xnn.load: {path} {err}") from err
    except Exception as err:
        raise CheckpointError(f"xnn.load: cannot rebuild the architecture of {path}: "
                              f"{type(err).__name__}: {err}") from err


# --- the optimizer -------------------------------------------------------------------------------

def _optimizer_classes() -> dict[str, type]:
    found, todo = {}, [Optimizer]
    while todo:
        subclasses = todo.pop().__subclasses__()
        found.update((sub.__name__, sub) for sub in subclasses)
        todo += subclasses
    return found


def _rebuild_optimizer(path: str, model: Module, meta: dict, arrays: dict) -> Optimizer:
    info = meta["optimizer"]
    cls = _optimizer_classes().get(info.get("class")) if isinstance(info, dict) else None
    if cls is None:
        raise CheckpointError(f"xnn.load: {path} names an unknown optimizer "
                              f"{info.get('class') if isinstance(info, dict) else info!r}")
    # everything below reads the file's metadata: a missing key, a tensor named but absent or
    # a hyperparameter the constructor refuses (lr = -1) is a damaged checkpoint
    try:
        state = {}
        for key, items in info["state"].items():
            state[key] = [arrays[item.get("tensor", item.get("array"))]
                          if isinstance(item, dict) else item for item in items]
        hyper = info["hyperparameters"]
        optimizer = cls(model.parameters(), lr=hyper["lr"])
        optimizer.load_state_dict({"optimizer": info["class"], "hyperparameters": hyper,
                                   "steps": info["steps"], "state": state})
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"xnn.load: {path} has unusable optimizer state "
                              f"({type(err).__name__}: {err})") from err
    return optimizer
