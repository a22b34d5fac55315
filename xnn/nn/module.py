"""Module, Parameter and Sequential: the containers every layer is built from.

A module's ``forward(x)`` returns its output and a ``backprop`` closure over what it saw;
``backprop(dy)`` adds each parameter's gradient into ``Parameter.grad`` and returns dL/dx
(or None, for a forward called with ``input_grad=False``: the data needs no gradient).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable, Iterator

from .._checks import flag, is_kind
from ..backend import (Backend, array_namespace, asarray, backend_of, dtype_name, get_backend,
                       is_array, resolve_backend, resolve_dtype, to_numpy)

__all__ = ["Parameter", "Module", "Sequential", "Backprop", "accepts_input_grad"]

Backprop = Callable[[Any], Any]


class Parameter:
    """A trainable array (``value``) and the gradient of the loss with respect to it (``grad``)."""

    __slots__ = ("value", "grad")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.grad: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> Any:
        return self.value.dtype

    def accumulate(self, grad: Any) -> None:
        """Add ``grad`` into ``self.grad`` (PyTorch semantics: gradients sum until zero_grad)."""
        self.grad = grad if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={dtype_name(self.dtype)})"


# Keras' model methods, which xnn keeps as functions taking the model
_KERAS_METHODS = {
    "fit": "use xnn.fit(model, X, y, loss=..., optimizer=..., epochs=...)",
    "predict": "use xnn.predict(model, X)",
    "evaluate": "use xnn.evaluate(model, X, y, loss=...)",
    "compile": "xnn has no compile step: pass loss= and optimizer= to xnn.fit(model, X, y, ...) "
               "(jit_compile=True there compiles the training, on jax)",
    "save": "use xnn.save(path, model)",
}

# every Module subclass by "module.QualName": checkpoints rebuild architectures from these only
# (xnn.architecture describes a model from its live attributes)
MODULE_CLASSES: dict[str, type] = {}


class Module:
    """Base class of layers and models: parameters are attributes, children are attributes."""

    training: bool = True
    # whether forward takes the keyword input_grad (see accepts_input_grad)
    takes_input_grad: bool = False
    batch_dependent: bool = False
    """Whether a row's evaluation-mode output depends on the other rows of its batch (BatchNorm1d
    without running statistics): ``xnn.predict`` then refuses a batch_size that splits the rows."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODULE_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls
        if "forward" in vars(cls) and "takes_input_grad" not in vars(cls):
            cls.takes_input_grad = False  # a new forward takes the keyword if its class says so

    def forward(self, x: Any) -> tuple[Any, Backprop]:
        """Return the output and a closure mapping dL/d(output) to dL/d(input).

        A layer may also take a keyword-only ``input_grad: bool = True``: called with False, its
        backprop may skip dL/d(input) and return None (see :func:`accepts_input_grad`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def __call__(self, x: Any) -> Any:
        """The output alone, for inference."""
        return self.forward(x)[0]

    def __getattr__(self, name: str) -> Any:
        # runs only when normal lookup fails, so found attributes cost nothing more; a Keras
        # habit (model.predict) gets a pointer to xnn's function, any other name Python's error
        use = _KERAS_METHODS.get(name)
        message = (f"{type(self).__name__!r} object has no attribute {name!r}" if use is None
                   else f"{type(self).__name__} has no {name}() method (Keras models do); "
                        f"{use}")
        raise AttributeError(message, name=name, obj=self)

    # --- structure -------------------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules in the order they were assigned."""
        return ((name, value) for name, value in vars(self).items() if isinstance(value, Module))

    def children(self) -> Iterator[Module]:
        return (child for _, child in self.named_children())

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, depth first."""
        return (module for _, module in self._named_modules())

    def _named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child._named_modules(f"{prefix}{name}.")

    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        return ((name, value) for name, value in vars(self).items() if isinstance(value, Parameter))

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """("0.weight", Parameter) pairs, each shared parameter once, in a stable order."""
        seen: set[int] = set()
        for path, module in self._named_modules(prefix):
            for name, p in module._own_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield path + name, p

    def parameters(self) -> list[Parameter]:
        """Every trainable Parameter, in the order of named_parameters()."""
        return [p for _, p in self.named_parameters()]

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this module as it is now: checkpoints store
        them and load with ``type(self)(**arguments)``, so the constructor's checks run again.

        By default (scikit-learn's ``get_params`` convention) each parameter of ``__init__`` is
        read from the attribute of the same name; one without such an attribute keeps its
        default, except ``dtype``, which is the dtype of the module's own parameters and
        buffers. A layer that keeps an argument under another name or form overrides this
        (``Linear`` keeps ``bias=True`` as a Parameter).
        """
        own = [p.value for _, p in self._own_parameters()] + [v for _, v in self.named_buffers()]
        args = {}
        for name, p in inspect.signature(type(self)).parameters.items():
            if name in vars(self) and p.kind is not p.VAR_KEYWORD:
                args[name] = vars(self)[name]
            elif name == "dtype" and own:
                args[name] = dtype_name(own[0].dtype)
            elif p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{type(self).__name__} keeps no attribute {name!r} for its "
                                f"constructor argument of that name: store it under that name "
                                f"or override arguments(), see docs/custom-layers.md")
        return args

    # --- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Name -> array for every parameter and buffer (the arrays themselves, not copies)."""
        params = {name: p.value for name, p in self.named_parameters()}
        buffers = {prefix + name: value for prefix, module in self._named_modules()
                   for name, value in module.named_buffers()}
        return params | buffers

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        """Non-trainable state of this module alone (running statistics); none by default."""
        return iter(())

    def load_buffer(self, name: str, value: Any) -> None:
        """Set one buffer from a state dict; modules with buffers override this."""
        raise KeyError(name)

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` (any backend) into this module's parameters and buffers.

        Values are arrays of any backend or array-likes (nested lists, numbers); shapes must
        match; values are cast to each entry's dtype and moved to its device. Every entry is
        checked and converted before any is assigned, so a failure leaves the module unchanged.
        With ``strict``, missing and unexpected keys raise KeyError.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: expected a mapping of names to arrays, as state_dict() "
                            f"returns, got {type(state).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if flag(where, "strict", strict) and (missing or unexpected):
            raise KeyError(f"{where}: missing keys {missing}, unexpected keys {unexpected}")
        loaded = {name: _converted(where, name, state[name], current)
                  for name, current in own.items() if name in state}
        params = dict(self.named_parameters())
        modules = dict(self._named_modules())
        for name, value in loaded.items():
            if name in params:
                params[name].value = value
            else:
                prefix, _, leaf = name.rpartition(".")
                modules[prefix + "." if prefix else ""].load_buffer(leaf, value)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Switch this module and all below it to training (or, with False, evaluation) mode."""
        mode = flag(self, "mode", mode)  # as torch, which refuses anything but a bool
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (dropout off, batch norm uses running statistics)."""
        return self.train(False)

    def to(self, backend: str | Backend | None = None, device: Any = None, *,
           dtype: Any = None) -> Module:
        """Move (and optionally cast) every parameter and buffer to ``backend``; returns self."""
        if dtype is not None and dtype_name(dtype) not in ("float32", "float64"):
            raise ValueError(f"{type(self).__name__}.to: dtype must be a float dtype "
                             f"(float32 or float64), got {dtype_name(dtype)}")
        target = resolve_backend(backend, device)
        for p in self.parameters():
            p.value = asarray(p.value, dtype=dtype or dtype_name(p.value.dtype), backend=target)
            p.grad = None
        for module in self.modules():
            for name, value in list(module.named_buffers()):  # a list: load_buffer replaces them
                kind = dtype_name(value.dtype)
                cast = dtype if dtype is not None and kind.startswith("float") else kind
                module.load_buffer(name, asarray(value, dtype=cast, backend=target))
        return self

    # --- display ---------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        rows = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return "\n".join([f"{type(self).__name__}(", *rows, ")"])


def model_backend(model: Module, owner: str, trains: bool = True) -> tuple[Backend, Any]:
    """The backend and dtype of ``model``'s parameters; a model without any is refused where it
    ``trains``, else runs on the active backend in the default dtype."""
    if not isinstance(model, Module):
        raise TypeError(f"{owner}: model must be an xnn.nn.Module, got {type(model).__name__}")
    params = model.parameters()
    if params:
        return backend_of(params[0].value), params[0].value.dtype
    if trains:
        raise ValueError(f"{owner}: {type(model).__name__} has no parameters to train")
    backend = get_backend()
    return backend, resolve_dtype(backend.xp)


def accepts_input_grad(module: Module) -> bool:
    """Whether ``module.forward`` takes the keyword ``input_grad``: its class says so with
    ``takes_input_grad = True`` (Linear and Sequential do; a subclass that overrides forward
    says it again), and no forward was set on the instance itself.

    A layer whose forward accepts ``input_grad=False`` may skip computing dL/dx in its backprop
    and return None there; the caller promises not to use it. Other layers are never passed the
    keyword, so they work unchanged.
    """
    return module.takes_input_grad and "forward" not in vars(module)


def arguments_repr(module: Module) -> str:
    """"name=value, ..." of the module's constructor arguments (:meth:`Module.arguments`): in a
    class body, ``extra_repr = arguments_repr``."""
    return ", ".join(f"{name}={value!r}" for name, value in module.arguments().items())


def _converted(where: str, name: str, value: Any, current: Any) -> Any:
    """``value`` as an array of ``current``'s shape, dtype, backend and device, or a TypeError
    or ValueError naming the entry. Nothing is assigned here."""
    if not is_array(value):
        try:
            value = to_numpy(value)  # nested lists and numbers, each with its own dtype
        except (TypeError, ValueError) as err:  # ragged lists, text, None
            raise TypeError(f"{where}: {name!r} must be an array or (nested lists of) numbers, "
                            f"got {type(value).__name__}") from err
    # booleans, integers and real floats: cast to the entry's dtype below
    if not is_kind(array_namespace(value), value.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{where}: {name!r} must hold numbers, got a {type(value).__name__} "
                        f"of dtype {dtype_name(value.dtype)}")
    if tuple(value.shape) != tuple(current.shape):
        raise ValueError(f"{where}: {name!r} has shape {tuple(current.shape)}, the state dict "
                         f"gives {tuple(value.shape)}")
    try:
        return asarray(value, dtype=current.dtype, backend=backend_of(current))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {name!r} cannot become a {dtype_name(current.dtype)} "
                         f"array: {err}") from err


class Sequential(Module):
    """Layers applied in order; backprop runs their closures in reverse."""

    takes_input_grad = True

    def __init__(self, *layers: Module) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def forward(self, x: Any, *, input_grad: bool = True) -> tuple[Any, Backprop]:
        """Run the layers in order. ``input_grad=False``: nobody needs dL/dx (``x`` is the data);
        the first layer is told so if its forward takes ``input_grad`` (Linear's does), and
        backprop returns None."""
        backprops = []
        for layer in self.layers:
            if backprops or input_grad or not accepts_input_grad(layer):
                x, step = layer.forward(x)
            else:  # the first layer, told that nobody needs dL/dx
                x, step = layer.forward(x, input_grad=False)
            backprops.append(step)
        backprops.reverse()

        def backprop(dy: Any) -> Any:
            for step in backprops:
                dy = step(dy)
            return dy if input_grad else None

        return x, backprop

    def append(self, layer: Module) -> Sequential:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(layer).__name__}")
        self.layers.append(layer)
        return self

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)
