"""A model's architecture as JSON, read from the live module tree, and the model rebuilt from it.

``describe`` walks the modules as they are now: each module's class, its constructor arguments
(``Module.arguments()``: numbers, strings, lists, child modules), its training mode, and which
stored tensor each of its parameters and buffers is. A module or parameter reached twice is
described once and referenced, so ``build`` shares it again. Settings changed after
construction (``Dropout.p``, a layer appended to a Sequential) are described as they are.

``build`` calls each class's constructor with the stored arguments, so the constructor's checks
are the only checks: a value it refuses is refused with its message. Classes are those already
defined in the process (never imported by name). Constructors run inside
:func:`xnn.random.placeholders`, so they draw nothing and allocate nothing however wide a file
says a layer is; each stored tensor must then have the shape and dtype of the one the
constructor made, and takes its place.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from . import random
from ._checks import flag
from .backend import Backend, asarray, dtype_name, get_backend, use_backend
from .nn.module import MODULE_CLASSES, Module, Parameter

__all__ = ["describe", "build", "ArchitectureError"]

_SCALARS = (type(None), bool, int, float, str)


class ArchitectureError(ValueError):
    """A module tree that cannot be described, or a description that does not build."""


def class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(model: Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """(description, tensors): JSON-ready architecture of ``model`` as it is now, and every
    parameter and buffer it refers to by its state_dict name (the arrays themselves).

    Raises ArchitectureError for what :func:`build` would refuse (an argument the constructor
    refuses, a setting that no longer fits a weight's shape)."""
    describer = _Describer(model)
    try:
        root = describer.module(model, "model")
    except RecursionError as err:
        raise ArchitectureError("cannot describe a model that contains itself (or is nested "
                                "deeper than Python's recursion limit)") from err
    description, tensors = {"modules": describer.modules, "root": root}, describer.tensors
    rebuilt, _ = _build(description, tensors, None)  # what load would refuse, save refuses
    for live, made in zip(describer.live, rebuilt):
        for name, value in vars(live).items():
            again = vars(made).get(name, _MISSING)
            if again is _MISSING or (isinstance(value, _SCALARS) and not _same(value, again)):
                raise ArchitectureError(
                    f"cannot describe {type(live).__name__}.{name}: its constructor, called with "
                    f"the arguments that arguments() gives, makes "
                    f"{'no such attribute' if again is _MISSING else repr(again)}, not "
                    f"{value!r}; make it a constructor argument (see docs/custom-layers.md)")
    return description, tensors


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


class _Describer:
    def __init__(self, model: Module) -> None:
        self.param_names = {id(p): name for name, p in model.named_parameters()}
        self.paths: dict[int, str] = {}
        for prefix, module in model._named_modules():
            self.paths.setdefault(id(module), prefix)
        self.index: dict[int, int] = {}
        self.modules: list[dict[str, Any]] = []
        self.live: list[Module] = []  # the module each entry of self.modules describes
        self.tensors: dict[str, Any] = {}
        self.visiting: set[int] = set()

    def module(self, module: Module, where: str) -> int:
        key = id(module)
        if key in self.index:
            return self.index[key]
        if key in self.visiting:
            raise ArchitectureError(f"cannot describe {where}: the model contains itself")
        cls = type(module)
        if class_name(cls) not in MODULE_CLASSES or not hasattr(module, "__dict__"):
            raise ArchitectureError(f"cannot describe {where}: a {cls.__name__} is not an "
                                    f"xnn Module subclass with attributes")
        self.visiting.add(key)
        try:
            arguments = module.arguments()
        except TypeError as err:
            raise ArchitectureError(f"cannot describe {where}: {err}") from err
        arguments = {k: self.value(v, f"{cls.__name__}.{k}") for k, v in arguments.items()}
        parameters = {}
        for name, p in module._own_parameters():
            parameters[name] = self.param_names.get(id(p))
            if parameters[name] is None:
                raise ArchitectureError(
                    f"cannot describe {cls.__name__}.{name}: a Parameter that "
                    f"named_parameters() does not list (a module that keeps children in a "
                    f"container overrides named_children(), as Sequential does)")
            self.tensors[parameters[name]] = p.value
        buffers = {}
        for name, value in module.named_buffers():
            if key not in self.paths:
                raise ArchitectureError(f"cannot describe {where}: its {cls.__name__} has "
                                        f"buffers but is not listed by named_children()")
            buffers[name] = self.paths[key] + name
            self.tensors[buffers[name]] = value
        self.visiting.discard(key)
        self.modules.append({"class": class_name(cls), "arguments": arguments,
                             "training": module.training, "parameters": parameters,
                             "buffers": buffers})
        self.live.append(module)
        self.index[key] = len(self.modules) - 1  # children come first: references point back
        return self.index[key]

    def value(self, value: Any, where: str) -> Any:
        if isinstance(value, _SCALARS):
            if isinstance(value, float) and not math.isfinite(value):
                return {"float": repr(value)}  # JSON has no inf or nan
            return value
        if isinstance(value, Module):
            return {"module": self.module(value, where)}
        if type(value) in (list, tuple):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {kind: [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict and all(isinstance(k, str) for k in value):
            return {"dict": {k: self.value(v, f"{where}[{k!r}]") for k, v in value.items()}}
        raise ArchitectureError(
            f"cannot describe {where}, a {type(value).__name__}: a checkpoint holds a module's "
            f"constructor arguments as numbers, strings, lists and child modules, and its "
            f"parameters and buffers (named_buffers()); see docs/custom-layers.md, 'Saving a "
            f"custom layer'")


# --- building ------------------------------------------------------------------------------------

def build(description: Any, tensors: dict[str, Any], backend: Backend | None = None) -> Module:
    """The model ``description`` describes, its parameters and buffers made from ``tensors``
    (host arrays by state_dict name) on ``backend`` (default: the active one)."""
    target = backend if backend is not None else get_backend()
    with use_backend(target):  # what a constructor makes besides its weights lands there too
        built, root = _build(description, tensors, target)
    return built[root]


def _build(description: Any, tensors: dict[str, Any],
           target: Backend | None) -> tuple[list[Module], int]:
    """(every module built, in the description's order; the root's index). ``target`` None:
    ``tensors`` are a live model's arrays, used as they are (what save checks)."""
    builder = _Builder(tensors, target)
    try:
        modules, root = description["modules"], description["root"]
        if not isinstance(modules, list) or type(root) is not int or not 0 <= root < len(modules):
            raise ArchitectureError(f"the architecture's root {root!r} is not one of its "
                                    f"{len(modules)} modules")
        with random.placeholders():
            for i, entry in enumerate(modules):
                builder.module(i, entry)
    except ArchitectureError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ArchitectureError(f"unreadable architecture ({type(err).__name__}: {err})") from err
    model = builder.built[root]
    unused = sorted(set(tensors) - builder.used)
    if unused:
        raise ArchitectureError(f"stored tensors {unused} belong to no module")
    try:
        named = dict(model.named_parameters())
    except Exception as err:  # noqa: BLE001 - a custom module's named_children on file data
        raise ArchitectureError(f"the model built cannot list its parameters "
                                f"({type(err).__name__}: {err})") from err
    names = {n for n, p in named.items() if p is builder.params.get(n)}  # none a constructor's
    if names != set(named) or names != set(builder.params):
        raise ArchitectureError(f"the architecture names parameters {sorted(builder.params)} "
                                f"but the model it builds has {sorted(named)}, not all of them "
                                f"the stored ones")
    return builder.built, root


def _construct(cls: type, arguments: dict[str, Any]) -> Module:
    """``cls(**arguments)``, passing by position what the signature takes only so."""
    positional, keywords = [], dict(arguments)
    params = list(inspect.signature(cls).parameters.values())
    star = next((i for i, p in enumerate(params) if p.kind is p.VAR_POSITIONAL), None)
    for p in params[:star] if star is not None else params:
        if p.name in keywords and (star is not None or p.kind is p.POSITIONAL_ONLY):
            positional.append(keywords.pop(p.name))
    if star is not None:
        positional.extend(keywords.pop(params[star].name, ()))
    return cls(*positional, **keywords)


class _Builder:
    def __init__(self, tensors: dict[str, Any], target: Backend | None) -> None:
        self.tensors = tensors
        self.target = target  # None: use the tensors as they are
        self.built: list[Module] = []
        self.params: dict[str, Parameter] = {}
        self.used: set[str] = set()

    def module(self, i: int, entry: dict[str, Any]) -> None:
        name = entry["class"]
        cls = MODULE_CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ArchitectureError(f"unknown layer class {name!r}: import the module that "
                                    f"defines it before loading (xnn never imports code named "
                                    f"in a file)")
        arguments = {k: self.value(v, i) for k, v in entry["arguments"].items()}
        try:
            module = _construct(cls, arguments)
            module.training = flag(cls.__name__, "training", entry["training"])
        except Exception as err:  # noqa: BLE001 - a constructor's own refusal of file data
            raise ArchitectureError(f"{cls.__name__} is inconsistent: {err}") from err
        made = dict(module._own_parameters())
        if set(made) != set(entry["parameters"]):
            raise ArchitectureError(f"{cls.__name__} is inconsistent: its constructor makes "
                                    f"parameters {sorted(made)}, the file has "
                                    f"{sorted(entry['parameters'])}")
        for attr, key in entry["parameters"].items():
            value = self.array(cls, attr, key, made[attr].value)
            if key not in self.params:
                self.params[key] = Parameter(value)
            setattr(module, attr, self.params[key])
        made = dict(module.named_buffers())
        if set(made) != set(entry["buffers"]):
            raise ArchitectureError(f"{cls.__name__} is inconsistent: it has buffers "
                                    f"{sorted(made)}, the file has {sorted(entry['buffers'])}")
        for attr, key in entry["buffers"].items():
            module.load_buffer(attr, self.array(cls, attr, key, made[attr]))
        self.built.append(module)

    def value(self, value: Any, i: int) -> Any:
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, list):
            raise ArchitectureError(f"untagged list {value!r} in the architecture")
        ((kind, inner),) = value.items()
        if kind == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if kind == "module":
            if type(inner) is not int or not 0 <= inner < i:
                raise ArchitectureError(f"module {i} refers to module {inner!r}: only modules "
                                        f"described before it can be its children")
            return self.built[inner]
        if kind in ("list", "tuple"):
            items = [self.value(v, i) for v in inner]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            return {k: self.value(v, i) for k, v in inner.items()}
        raise ArchitectureError(f"unreadable architecture entry {value!r}")

    def array(self, cls: type, attr: str, key: str, made: Any) -> Any:
        """The stored tensor ``key`` in place of ``made``, the constructor's: same shape and
        dtype, on the target backend."""
        if not isinstance(key, str) or key not in self.tensors:
            raise ArchitectureError(f"the file lacks the tensor {key!r}")
        stored = self.tensors[key]
        if tuple(stored.shape) != tuple(made.shape):
            raise ArchitectureError(f"{cls.__name__} is inconsistent: {attr} has shape "
                                    f"{tuple(stored.shape)}, its settings need "
                                    f"{tuple(made.shape)}")
        kind = dtype_name(stored.dtype)
        if kind != dtype_name(made.dtype):
            raise ArchitectureError(f"{cls.__name__} is inconsistent: {key!r} is stored as "
                                    f"{kind}, its settings need {dtype_name(made.dtype)}")
        self.used.add(key)
        return stored if self.target is None else asarray(stored, dtype=kind, backend=self.target)
