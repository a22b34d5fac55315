"""ONNX export: ``xnn.onnx.export(model, path)`` writes the model in evaluation mode as an ONNX
graph that ONNX Runtime (CPU, GPU, mobile, browsers) serves without xnn or Python.

The graph is built with ``onnx.helper`` by walking the module tree: each layer's method
``to_onnx(graph, x) -> y`` adds the nodes computing its evaluation-mode forward from the value
named ``x`` (with the :class:`Graph` builder) and returns the name of its output.
``register(cls)`` gives a class without that method (a third party's) an exporter
``fn(graph, layer, x) -> y``, which takes precedence (see docs/custom-layers.md). ``onnx`` is imported only when ``export`` runs
(the ``onnx`` extra, see ``xnn.extras.install_hint``); this module imports without it.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
from typing import Any, Callable, Sequence

import numpy as np  # initializers are host arrays

from ._checks import integer
from .backend import dtype_name, get_default_dtype, to_numpy
from .extras import install_hint
from .io import _path, write_atomically
from .data import NotFittedError
from .nn import linear, normalization, shape, standardize
from .nn.module import Module, Parameter

__all__ = ["export", "register", "Graph", "ExportError", "MIN_OPSET", "newest_runtime_opset"]

MIN_OPSET = 17  # LayerNormalization
Exporter = Callable[["Graph", Any, str], str]
EXPORTERS: dict[type, Exporter] = {}


class ExportError(ValueError):
    """A model that cannot be written as ONNX (a layer without an exporter, mixed dtypes)."""


def register(cls: type) -> Callable[[Exporter], Exporter]:
    """Decorator: ``@register(MyLayer)`` over ``fn(graph, layer, x) -> y`` makes ``export``
    write ``MyLayer`` with ``fn``, which adds nodes to ``graph`` (see :class:`Graph`) computing
    the layer's evaluation-mode output from the value named ``x`` and returns its name."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"xnn.onnx.register: expected a Module subclass, got {cls!r}")

    def add(fn: Exporter) -> Exporter:
        if not callable(fn):
            raise TypeError(f"xnn.onnx.register({cls.__name__}): expected a function, got "
                            f"{type(fn).__name__}")
        EXPORTERS[cls] = fn
        return fn

    return add


def _onnx() -> Any:
    try:
        import onnx  # noqa: PLC0415 - optional: only export needs it
    except ImportError as err:
        raise ImportError(f"xnn.onnx.export needs the onnx package: "
                          f"{install_hint('onnx')}") from err
    return onnx


class Graph:
    """The graph an export builds; exporters add nodes with :meth:`node`, parameters with
    :meth:`parameter`, numbers with :meth:`constant` and run children with :meth:`module`."""

    def __init__(self, onnx: Any, dtype: str, opset: int,
                 param_names: dict[int, str] | None = None) -> None:
        self.onnx = onnx
        self.dtype = dtype  # "float32" or "float64": every float tensor of the graph
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.shapes: dict[str, tuple] = {}  # known shapes, None for the batch axis
        self._names = {"input", "output"}  # the graph's own input and output
        self._parameters: dict[int, str] = {}
        self._counts: dict[str, int] = {}
        self.param_names = param_names or {}  # id(Parameter) -> its state_dict name

    def fresh(self, hint: str) -> str:
        """A value name not used yet, from ``hint``."""
        n = self._counts.get(hint, 0)
        name = hint if n == 0 and hint not in self._names else f"{hint}_{n}"
        while name in self._names:
            n += 1
            name = f"{hint}_{n}"
        self._counts[hint] = n + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: Sequence[str], **attributes: Any) -> str:
        """Add an ``op`` node (ONNX operator name) and return the name of its one output."""
        out = self.fresh(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out],
                                                     name=self.fresh(f"{op}_node"),
                                                     **attributes))
        return out

    def array(self, value: Any, name: str | None = None, dtype: str | None = None) -> str:
        """A host array (or number) as an initializer, in the graph's dtype unless ``dtype``."""
        host = np.asarray(value, dtype=dtype or self.dtype)
        out = self.fresh(name or "const")
        self.initializers.append(self.onnx.numpy_helper.from_array(host, out))
        return out

    def constant(self, value: float) -> str:
        """A scalar of the graph's dtype, for arithmetic with a value of the graph."""
        return self.array(value)

    def parameter(self, p: Parameter) -> str:
        """A parameter's value as an initializer, named as in ``state_dict``; a parameter used
        twice (tied weights) is stored once."""
        if id(p) not in self._parameters:
            self._parameters[id(p)] = self.array(to_numpy(p.value),
                                                 self.param_names.get(id(p), "param"))
        return self._parameters[id(p)]

    def buffer(self, module: Module, name: str) -> str:
        """A buffer's value (``module.<name>``) as an initializer."""
        return self.array(to_numpy(getattr(module, name)), name)

    def fail(self, message: str) -> None:
        """Refuse the export with ``message`` (an ExportError)."""
        raise ExportError(f"xnn.onnx.export: {message}")

    def module(self, module: Module, x: str) -> str:
        """Add the nodes of ``module``: its registered exporter, else its ``to_onnx`` method;
        the output's shape defaults to the input's."""
        cls = type(module)
        fn = EXPORTERS.get(cls) or _own_to_onnx(cls)
        if fn is None:
            self.fail(f"no ONNX exporter for {cls.__name__} ({cls.__module__}); give the class "
                      f"a method to_onnx(self, graph, x) or register one with "
                      f"@xnn.onnx.register({cls.__name__}), see docs/custom-layers.md")
        y = fn(self, module, x) if cls in EXPORTERS else fn(module, self, x)
        if not isinstance(y, str) or (y not in self._names and not any(
                y in node.output for node in self.nodes)):
            raise ExportError(f"xnn.onnx.export: the exporter of {type(module).__name__} "
                              f"returned {y!r}; it must return the name of a value of the graph "
                              f"(what graph.node(...) returns, or its input {x!r})")
        self.shapes.setdefault(y, self.shapes.get(x))
        return y

    def reduce_mean(self, x: str, axis: int) -> str:
        """Mean over one axis, keeping it (ReduceMean's axes moved to an input in opset 18)."""
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.array([axis], dtype="int64")], keepdims=1)
        return self.node("ReduceMean", [x], axes=[axis], keepdims=1)

    def moments(self, x: str, axis: int) -> tuple[str, str]:
        """The mean and the biased variance over one axis, kept, as xnn's layers take them."""
        mean = self.reduce_mean(x, axis)
        centered = self.node("Sub", [x, mean])
        return mean, self.reduce_mean(self.node("Mul", [centered, centered]), axis)

    def where_positive(self, x: str, negative: str) -> str:
        """x where x > 0, else ``negative``, as xnn's layers write it."""
        return self.node("Where", [self.node("Greater", [x, self.constant(0.0)]), x, negative])

    def log1p(self, u: str) -> str:
        """log(1 + u) accurate for small u (ONNX has no Log1p): log(w) u / (w - 1) with
        w = 1 + u, which cancels the rounding of w (Goldberg's trick); u where w rounds to 1."""
        w = self.node("Add", [self.constant(1.0), u])
        wm1 = self.node("Sub", [w, self.constant(1.0)])
        is_one = self.node("Equal", [wm1, self.constant(0.0)])
        safe = self.node("Where", [is_one, self.constant(1.0), wm1])
        ratio = self.node("Div", [self.node("Mul", [self.node("Log", [w]), u]), safe])
        return self.node("Where", [is_one, u, ratio])

    def normalize(self, x: str, mean: str, var: str, eps: float, weight: str | None,
                  bias: str | None) -> str:
        """(x - mean) / sqrt(var + eps) * weight + bias, in xnn's order of operations."""
        inv_std = self.node("Div", [self.constant(1.0), self.node(
            "Sqrt", [self.node("Add", [var, self.constant(eps)])])])
        y = self.node("Mul", [self.node("Sub", [x, mean]), inv_std])
        if weight is not None:
            y = self.node("Mul", [y, weight])
        if bias is not None:
            y = self.node("Add", [y, bias])
        return y


def _own_to_onnx(cls: type) -> Callable | None:
    """``cls.to_onnx`` where it describes ``cls.forward``, that is where the first class of the
    MRO to define either defines to_onnx; else None. A subclass that overrides forward and
    inherits its parent's to_onnx would export the parent's computation."""
    for c in cls.__mro__:
        if "to_onnx" in vars(c) or "forward" in vars(c):
            return cls.to_onnx if "to_onnx" in vars(c) else None
    return None


# --- export ----------------------------------------------------------------------------------------

def _model_dtype(model: Module) -> str:
    kinds = {dtype_name(p.value.dtype) for p in model.parameters()}
    if len(kinds) > 1:
        raise ExportError(f"xnn.onnx.export: the model mixes {sorted(kinds)} parameters; "
                          f"cast it first with model.to(dtype=...)")
    kind = kinds.pop() if kinds else get_default_dtype()
    if kind not in ("float32", "float64"):
        raise ExportError(f"xnn.onnx.export: parameters are {kind}; float32 or float64 export")
    return kind


def _default_input_shape(model: Module) -> tuple:
    for module in model.modules():
        if isinstance(module, linear.Linear):
            return (None, module.in_features)
        if isinstance(module, (normalization.BatchNorm1d, standardize.Standardize)):
            return (None, module.num_features)
        if isinstance(module, normalization.LayerNorm):
            return (None, module.normalized_shape[0])
        if isinstance(module, shape.Flatten):
            break
    raise ExportError("xnn.onnx.export: cannot tell the input's shape from the model (no "
                      "leading Linear); pass input_shape, e.g. (None, 8, 8)")


def _check_input_shape(input_shape: Any) -> tuple:
    # each axis None or an int of Python or NumPy (np.int64 from a .shape; np.bool_ is no
    # Integral), not a bool
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1)
            for d in input_shape):
        raise ValueError(f"xnn.onnx.export: input_shape must be a tuple of positive ints and "
                         f"None (the batch axis), e.g. (None, 64); got {input_shape!r}")
    return tuple(None if d is None else int(d) for d in input_shape)


@functools.cache
def newest_runtime_opset() -> int:
    """The newest opset (>= MIN_OPSET) that both the installed onnx and onnxruntime handle;
    MIN_OPSET when onnxruntime is not installed."""
    onnx = _onnx()
    try:
        import onnxruntime  # noqa: PLC0415 - optional
    except ImportError:
        return MIN_OPSET
    for opset in range(onnx.defs.onnx_opset_version(), MIN_OPSET, -1):
        probe = _probe_model(onnx, opset)
        with contextlib.suppress(Exception):  # any error: this runtime cannot run that opset
            onnxruntime.InferenceSession(probe, providers=["CPUExecutionProvider"])
            return opset
    return MIN_OPSET


def _probe_model(onnx: Any, opset: int) -> bytes:
    h = onnx.helper
    info = [h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in ("x", "y")]
    graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "probe", info[:1], info[1:])
    return _finish(onnx, graph, opset).SerializeToString()


def _finish(onnx: Any, graph: Any, opset: int) -> Any:
    ops = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=ops, producer_name="xnn")
    model.ir_version = onnx.helper.find_min_ir_version_for(ops)
    return model


def _dims(shape: tuple | None) -> list | None:
    """An ONNX shape: the batch axis (None) named "batch"; None when the shape is unknown."""
    return None if shape is None else ["batch" if d is None else d for d in shape]


def _check_fits(model: Module, shape: tuple, dtype: Any) -> None:
    """Run a batch of ``shape`` through the model in eval mode (two rows where the batch is
    dynamic: BatchNorm1d without running statistics needs two), so an input_shape the model
    cannot take is refused with its layer's own message, not written as a graph that fails
    in ONNX Runtime."""
    from .predict import predict  # noqa: PLC0415 - predict imports the training helpers

    rows = 2 if shape[0] is None else min(shape[0], 2)  # a fixed batch of 10**9 is fine too
    try:
        predict(model, np.zeros((rows, *shape[1:]), dtype=dtype))
    except NotFittedError as err:  # a layer fitted from data, not yet: its own message
        raise ExportError(f"xnn.onnx.export: {err}") from err
    except MemoryError as err:
        raise ValueError(f"xnn.onnx.export: input_shape {tuple(shape)} is too big to run "
                         f"through the model ({err})") from err
    except (ValueError, TypeError) as err:
        raise ValueError(f"xnn.onnx.export: the model cannot take an input of shape "
                         f"{tuple(shape)}: {err}") from err


def export(model: Module, path: str | os.PathLike, *, input_shape: Sequence[int | None] |
           None = None, opset: int | None = None) -> None:
    """Write ``model`` in evaluation mode to ``path`` as an ONNX model.

    The graph's input is "input" and its output "output", of the parameters' dtype (float32 or
    float64). Raises ExportError for a layer without an exporter (see :func:`register`).

    Parameters
    ----------
    model : xnn.nn.Module
        The model, on any backend; exported as ``predict`` runs it (evaluation mode).
    path : str or os.PathLike
        The ``.onnx`` file to write; replaced if it exists.
    input_shape : sequence of int or None, optional
        The input's shape, None for the batch axis (dynamic, named "batch"); default
        ``(None, in_features)`` of the first Linear. A leading Flatten needs it given.
    opset : int or None, optional
        The ai.onnx opset; default the newest the installed onnxruntime runs (at least
        ``MIN_OPSET``, 17).

    Raises
    ------
    ExportError
        For a layer without an exporter.
    ValueError
        For an input shape the model cannot take, or an opset out of range.
    ImportError
        When the ``onnx`` package (the ``onnx`` extra) is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> import xnn
    >>> from xnn import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> xnn.onnx.export(model, "model.onnx")
    >>> session = onnxruntime.InferenceSession("model.onnx")
    >>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    >>> [out] = session.run(["output"], {"input": X})
    >>> bool(np.allclose(out, xnn.to_numpy(xnn.predict(model, X)), atol=1e-5))
    True
    """
    if not isinstance(model, Module):
        raise TypeError(f"xnn.onnx.export: model must be an xnn Module, got "
                        f"{type(model).__name__}")
    path = _path("xnn.onnx.export", path)
    onnx = _onnx()
    shape_in = (_default_input_shape(model) if input_shape is None
                else _check_input_shape(input_shape))
    if opset is None:
        opset = newest_runtime_opset()
    else:
        opset = integer("xnn.onnx.export", "opset", opset, low=MIN_OPSET,
                        high=onnx.defs.onnx_opset_version())
    dtype = _model_dtype(model)
    _check_fits(model, shape_in, dtype)
    graph = Graph(onnx, dtype, opset, {id(p): name for name, p in model.named_parameters()})
    graph.shapes["input"] = shape_in
    y = graph.module(model, "input")
    graph.nodes.append(onnx.helper.make_node("Identity", [y], ["output"], name="output_node"))
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    onnx_graph = onnx.helper.make_graph(
        graph.nodes, type(model).__name__,
        [onnx.helper.make_tensor_value_info("input", elem, _dims(shape_in))],
        [onnx.helper.make_tensor_value_info("output", elem, _dims(graph.shapes.get(y)))],
        graph.initializers)
    data = _finish(onnx, onnx_graph, opset).SerializeToString()
    write_atomically(path, lambda f: f.write(data), "xnn.onnx.export")
