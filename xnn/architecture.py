"""A model's architecture as JSON, read from the live module tree, and the model rebuilt from it.

``describe`` walks the modules as they are now: each module's class, its attributes (numbers,
strings, lists, child modules, parameters by their ``state_dict`` name) and its buffers. A
module or parameter reached twice is described once and referenced, so ``build`` shares it
again. Settings changed after construction (``Dropout.p``, a layer appended to a Sequential)
are described as they are. ``build`` never runs a constructor: it makes each module with
``object.__new__`` of a class already defined in the process (never imported by name), sets
the described attributes and takes every parameter and buffer from the stored tensors, so a
file cannot make it allocate more than the tensors it holds. Built-in layers are then checked
as their constructors check them (widths against weight shapes, ranges of rates).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ._checks import integer, number
from .backend import Backend, asarray, dtype_name, get_backend, is_array
from .nn import activations, dropout, linear, normalization, residual, shape
from .nn.module import MODULE_CLASSES, Module, Parameter, Sequential

__all__ = ["describe", "build", "ArchitectureError"]

_SCALARS = (type(None), bool, int, float, str)
# what Module's class says for every instance; a file may set training, nothing else of these
_CLASS_SETTINGS = {name for name in vars(Module) if not name.startswith("__")} - {"training"}


class ArchitectureError(ValueError):
    """A module tree that cannot be described, or a description that does not build."""


def class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(model: Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """(description, tensors): JSON-ready architecture of ``model`` as it is now, and every
    parameter and buffer it refers to by its state_dict name (the arrays themselves)."""
    try:
        return _Describer(model).run()
    except RecursionError as err:
        raise ArchitectureError("cannot describe a model that contains itself (or is nested "
                                "deeper than Python's recursion limit)") from err


class _Describer:
    def __init__(self, model: Module) -> None:
        self.param_names = {id(p): name for name, p in model.named_parameters()}
        self.paths: dict[int, str] = {}
        for prefix, module in model._named_modules():
            self.paths.setdefault(id(module), prefix)
        self.model = model
        self.index: dict[int, int] = {}
        self.modules: list[dict[str, Any]] = []
        self.tensors: dict[str, Any] = {}
        self.visiting: set[int] = set()

    def run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        root = self.module(self.model, "model")
        return {"modules": self.modules, "root": root}, self.tensors

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
        _check(module)  # what load would refuse, save refuses
        self.visiting.add(key)
        buffers = {id(v): name for name, v in module.named_buffers()}
        attributes = {}
        for name, value in vars(module).items():
            if id(value) in buffers and is_array(value):
                continue  # stored as a tensor, set back through load_buffer
            attributes[name] = self.value(value, f"{cls.__name__}.{name}")
        stored = {}
        if buffers:
            if key not in self.paths:
                raise ArchitectureError(f"cannot describe {where}: its {cls.__name__} has "
                                        f"buffers but is not listed by named_children()")
            for name, value in module.named_buffers():
                tensor = self.paths[key] + name
                self.tensors[tensor] = value
                stored[name] = tensor
        self.visiting.discard(key)
        self.modules.append({"class": class_name(cls), "attributes": attributes,
                             "buffers": stored})
        self.index[key] = len(self.modules) - 1  # children come first: references point back
        return self.index[key]

    def value(self, value: Any, where: str) -> Any:
        if isinstance(value, _SCALARS):
            if isinstance(value, float) and not math.isfinite(value):
                return {"float": repr(value)}  # JSON has no inf or nan
            return value
        if isinstance(value, Module):
            return {"module": self.module(value, where)}
        if isinstance(value, Parameter):
            name = self.param_names.get(id(value))
            if name is None:
                raise ArchitectureError(f"cannot describe {where}: a Parameter that "
                                        f"named_parameters() does not list (a module that keeps "
                                        f"children in a container overrides named_children(), "
                                        f"as Sequential does)")
            self.tensors[name] = value.value
            return {"parameter": name}
        if isinstance(value, (list, tuple)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            if type(value) not in (list, tuple):
                raise ArchitectureError(f"cannot describe {where}: a {type(value).__name__}")
            return {kind: [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict and all(isinstance(k, str) for k in value):
            return {"dict": {k: self.value(v, f"{where}[{k!r}]") for k, v in value.items()}}
        raise ArchitectureError(
            f"cannot describe {where}, a {type(value).__name__}: a checkpoint holds a module's "
            f"numbers, strings, lists, child modules, parameters and buffers (named_buffers()); "
            f"see docs/custom-layers.md, 'Saving and exporting a custom layer'")


# --- building ------------------------------------------------------------------------------------

def build(description: Any, tensors: dict[str, Any], backend: Backend | None = None) -> Module:
    """The model ``description`` describes, its parameters and buffers made from ``tensors``
    (host arrays by state_dict name) on ``backend`` (default: the active one)."""
    target = backend if backend is not None else get_backend()
    builder = _Builder(tensors, target)
    try:
        modules, root = description["modules"], description["root"]
        if not isinstance(modules, list) or type(root) is not int or not 0 <= root < len(modules):
            raise ArchitectureError(f"the architecture's root {root!r} is not one of its "
                                    f"{len(modules)} modules")
        for i, entry in enumerate(modules):
            builder.module(i, entry)
    except ArchitectureError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise ArchitectureError(f"unreadable architecture ({type(err).__name__}: {err})") from err
    for module in builder.built:
        _check(module)
    model = builder.built[root]
    unused = sorted(set(tensors) - builder.used)
    if unused:
        raise ArchitectureError(f"stored tensors {unused} belong to no module")
    try:
        names = {n for n, _ in model.named_parameters()}
    except Exception as err:  # noqa: BLE001 - a custom module's named_children on file data
        raise ArchitectureError(f"the model built cannot list its parameters "
                                f"({type(err).__name__}: {err})") from err
    if names != builder.parameter_names:
        raise ArchitectureError(f"the architecture names parameters "
                                f"{sorted(builder.parameter_names)} but the model it builds has "
                                f"{sorted(names)}")
    return model


def _check(module: Module) -> None:
    """What the constructor of a built-in layer would have checked, on its current attributes."""
    if type(getattr(module, "training", True)) is not bool:
        raise ArchitectureError(f"{type(module).__name__}.training must be a boolean")
    rule = _RULES.get(type(module))
    if rule is not None:
        try:
            rule(module)
        except (TypeError, ValueError, AttributeError) as err:
            raise ArchitectureError(f"{type(module).__name__} is inconsistent: {err}") from err


class _Builder:
    def __init__(self, tensors: dict[str, Any], target: Backend) -> None:
        self.tensors = tensors
        self.target = target
        self.built: list[Module] = []
        self.params: dict[str, Parameter] = {}
        self.parameter_names: set[str] = set()
        self.used: set[str] = set()

    def module(self, i: int, entry: dict[str, Any]) -> None:
        name = entry["class"]
        cls = MODULE_CLASSES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ArchitectureError(f"unknown layer class {name!r}: import the module that "
                                    f"defines it before loading (xnn never imports code named "
                                    f"in a file)")
        module = object.__new__(cls)
        for attr, value in entry["attributes"].items():
            if (not isinstance(attr, str) or not attr.isidentifier() or attr.startswith("__")
                    or callable(getattr(cls, attr, None)) or attr in _CLASS_SETTINGS):
                raise ArchitectureError(f"{cls.__name__} cannot have an attribute {attr!r}")
            setattr(module, attr, self.value(value, i))
        for buffer, key in entry["buffers"].items():
            try:
                module.load_buffer(buffer, self.array(key, buffer=True))
            except KeyError as err:
                raise ArchitectureError(f"{cls.__name__} has no buffer {buffer!r}") from err
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
        if kind == "parameter":
            if inner not in self.params:
                self.params[inner] = Parameter(self.array(inner, buffer=False))
                self.parameter_names.add(inner)
            return self.params[inner]
        if kind in ("list", "tuple"):
            items = [self.value(v, i) for v in inner]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            return {k: self.value(v, i) for k, v in inner.items()}
        raise ArchitectureError(f"unreadable architecture entry {value!r}")

    def array(self, key: str, *, buffer: bool) -> Any:
        if not isinstance(key, str) or key not in self.tensors:
            raise ArchitectureError(f"the file lacks the tensor {key!r}")
        host = self.tensors[key]
        kind = dtype_name(host.dtype)
        if not buffer and kind not in ("float32", "float64"):
            raise ArchitectureError(f"parameter {key!r} is stored as {kind}; parameters are "
                                    f"float32 or float64")
        self.used.add(key)
        return asarray(host, dtype=kind, backend=self.target)


# --- what the built-in layers' constructors check -------------------------------------------------

def _shape(module: Module, name: str, expected: tuple[int, ...], like: Any = None) -> None:
    value = getattr(module, name)
    array = value.value if isinstance(value, Parameter) else value
    if tuple(array.shape) != expected:
        raise ValueError(f"{name} has shape {tuple(array.shape)}, its settings need {expected}")
    if like is not None and dtype_name(array.dtype) != dtype_name(like.dtype):
        raise ValueError(f"{name} is {dtype_name(array.dtype)}, the weight "
                         f"{dtype_name(like.dtype)}")


def _optional_parameter(module: Module, name: str, expected: tuple[int, ...], like: Any) -> None:
    value = getattr(module, name)
    if value is not None:
        if not isinstance(value, Parameter):
            raise TypeError(f"{name} must be a Parameter or None")
        _shape(module, name, expected, like)


def _check_linear(m: linear.Linear) -> None:
    n_in = integer(m, "in_features", m.in_features, low=1)
    n_out = integer(m, "out_features", m.out_features, low=1)
    if not isinstance(m.weight, Parameter):
        raise TypeError("weight must be a Parameter")
    _shape(m, "weight", (n_in, n_out))
    _optional_parameter(m, "bias", (n_out,), m.weight.value)


def _check_batchnorm(m: normalization.BatchNorm1d) -> None:
    n = integer(m, "num_features", m.num_features, low=1)
    number(m, "eps", m.eps, low=0.0, low_open=True)
    if m.momentum is not None:
        number(m, "momentum", m.momentum, low=0.0, high=1.0)
    if type(m.affine) is not bool or type(m.track_running_stats) is not bool:
        raise TypeError("affine and track_running_stats must be booleans")
    like = None
    for name in ("weight", "bias"):
        if m.affine:
            _shape(m, name, (n,), like)
            like = getattr(m, name).value
        elif getattr(m, name) is not None:
            raise ValueError(f"{name} must be None without affine")
    if m.track_running_stats:
        for name in ("running_mean", "running_var"):
            if not is_array(getattr(m, name, None)):
                raise ValueError(f"{name} is missing")
            _shape(m, name, (n,), like)
            like = like if like is not None else m.running_mean
        _shape(m, "num_batches_tracked", ())


def _check_layernorm(m: normalization.LayerNorm) -> None:
    if type(m.normalized_shape) is not tuple or len(m.normalized_shape) != 1:
        raise ValueError(f"normalized_shape must be a 1-tuple, got {m.normalized_shape!r}")
    n = integer(m, "normalized_shape", m.normalized_shape[0], low=1)
    number(m, "eps", m.eps, low=0.0, low_open=True)
    _optional_parameter(m, "weight", (n,), None)
    like = m.weight.value if m.weight is not None else None
    _optional_parameter(m, "bias", (n,), like)
    if m.bias is not None and (m.weight is None or not m.elementwise_affine):
        raise ValueError("bias without elementwise_affine")


def _check_sequential(m: Sequential) -> None:
    if type(m.layers) is not list or not all(isinstance(x, Module) for x in m.layers):
        raise TypeError("layers must be a list of Modules")


def _check_softplus(m: activations.Softplus) -> None:
    if number(m, "beta", m.beta) == 0:
        raise ValueError("beta must be nonzero")
    number(m, "threshold", m.threshold)


def _check_gelu(m: activations.GELU) -> None:
    if m.approximate != "tanh":
        raise ValueError(f"approximate must be 'tanh', got {m.approximate!r}")


def _check_flatten(m: shape.Flatten) -> None:
    integer(m, "start_dim", m.start_dim)
    integer(m, "end_dim", m.end_dim)


def _check_residual(m: residual.Residual) -> None:
    if not isinstance(m.module, Module):
        raise TypeError("module must be a Module")


_RULES: dict[type, Callable[[Any], None]] = {
    linear.Linear: _check_linear,
    normalization.BatchNorm1d: _check_batchnorm,
    normalization.LayerNorm: _check_layernorm,
    Sequential: _check_sequential,
    residual.Residual: _check_residual,
    shape.Flatten: _check_flatten,
    dropout.Dropout: lambda m: number(m, "p", m.p, low=0.0, high=1.0),
    activations.LeakyReLU: lambda m: number(m, "negative_slope", m.negative_slope),
    activations.ELU: lambda m: number(m, "alpha", m.alpha),
    activations.Softplus: _check_softplus,
    activations.GELU: _check_gelu,
    activations.Softmax: lambda m: integer(m, "axis", m.axis),
    activations.LogSoftmax: lambda m: integer(m, "axis", m.axis),
}
