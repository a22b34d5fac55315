"""ONNX export: ``xnn.onnx.export(model, path)`` writes the model in evaluation mode as an ONNX
graph that ONNX Runtime (CPU, GPU, mobile, browsers) serves without xnn or Python.

The graph is built with ``onnx.helper`` by walking the module tree: each layer class has an
exporter, ``fn(graph, module, x) -> y``, that adds the nodes computing the layer's eval forward
from the value named ``x`` and returns the name of its output. ``register`` adds one for a
custom layer (see docs/custom-layers.md). ``onnx`` is imported only when ``export`` runs
(the ``onnx`` extra, see ``xnn.extras.install_hint``); this module imports without it.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable, Sequence

import numpy as np  # initializers are host arrays

from .backend import dtype_name, get_default_dtype, to_numpy
from .extras import install_hint
from .io import _path, write_atomically
from .nn import activations, dropout, linear, normalization, residual, shape
from .nn.module import Module, Parameter, Sequential

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
        self._names: set[str] = set()
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

    def reserve(self, *names: str) -> None:
        """Keep ``names`` (the graph's input and output) from being given to other values."""
        self._names.update(names)

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

    def buffer(self, module: Module, name: str, hint: str) -> str:
        return self.array(to_numpy(getattr(module, name)), hint)

    def module(self, module: Module, x: str) -> str:
        """Add the nodes of ``module``'s exporter; the output's shape defaults to the input's."""
        fn = EXPORTERS.get(type(module))
        if fn is None:
            raise ExportError(
                f"xnn.onnx.export: no ONNX exporter for {type(module).__name__} "
                f"({type(module).__module__}); add one with @xnn.onnx.register("
                f"{type(module).__name__}), see docs/custom-layers.md")
        y = fn(self, module, x)
        if not isinstance(y, str) or (y not in self._names and not any(
                y in node.output for node in self.nodes)):
            raise ExportError(f"xnn.onnx.export: the exporter of {type(module).__name__} "
                              f"returned {y!r}; it must return the name of a value of the graph "
                              f"(what graph.node(...) returns, or its input {x!r})")
        if y not in self.shapes:
            self.shapes[y] = self.shapes.get(x)
        return y

    def reduce_mean(self, x: str, axis: int) -> str:
        """Mean over one axis, keeping it (ReduceMean's axes moved to an input in opset 18)."""
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.array([axis], dtype="int64")], keepdims=1)
        return self.node("ReduceMean", [x], axes=[axis], keepdims=1)


# --- the exporters of the built-in layers ----------------------------------------------------------

def _elementwise(op: str, **attributes: Any) -> Exporter:
    return lambda g, m, x: g.node(op, [x], **attributes)


def _linear(g: Graph, m: linear.Linear, x: str) -> str:
    inputs = [x, g.parameter(m.weight)] + ([g.parameter(m.bias)] if m.bias is not None else [])
    y = g.node("Gemm", inputs)  # x @ weight + bias: weight is (in, out), so no transB
    shape_in = g.shapes.get(x)
    g.shapes[y] = (shape_in[0], m.out_features) if shape_in else None
    return y


def _where_positive(g: Graph, x: str, negative: str) -> str:
    """x where x > 0, else ``negative``, as xnn's layers write it."""
    return g.node("Where", [g.node("Greater", [x, g.constant(0.0)]), x, negative])


def _leaky_relu(g: Graph, m: activations.LeakyReLU, x: str) -> str:
    if g.dtype == "float32":  # ONNX Runtime has LeakyRelu in float32 only
        return g.node("LeakyRelu", [x], alpha=float(m.negative_slope))
    return _where_positive(g, x, g.node("Mul", [g.constant(m.negative_slope), x]))


def _elu(g: Graph, m: activations.ELU, x: str) -> str:
    if g.dtype == "float32":
        return g.node("Elu", [x], alpha=float(m.alpha))
    # alpha * expm1(min(x, 0)); ONNX has no expm1, so exp - 1 (exact enough away from 0, and
    # near 0 both forms are below the tolerance of the comparison)
    e = g.node("Sub", [g.node("Exp", [g.node("Min", [x, g.constant(0.0)])]), g.constant(1.0)])
    return _where_positive(g, x, g.node("Mul", [g.constant(m.alpha), e]))


def _log1p(g: Graph, u: str) -> str:
    """log(1 + u) accurate for small u (ONNX has no Log1p): log(w) u / (w - 1) with w = 1 + u,
    which cancels the rounding of w (Goldberg's trick); u itself where w rounds to 1."""
    w = g.node("Add", [g.constant(1.0), u])
    wm1 = g.node("Sub", [w, g.constant(1.0)])
    is_one = g.node("Equal", [wm1, g.constant(0.0)])
    safe = g.node("Where", [is_one, g.constant(1.0), wm1])
    ratio = g.node("Div", [g.node("Mul", [g.node("Log", [w]), u]), safe])
    return g.node("Where", [is_one, u, ratio])


def _softplus(g: Graph, m: activations.Softplus, x: str) -> str:
    z = g.node("Mul", [g.constant(m.beta), x])
    u = g.node("Exp", [g.node("Neg", [g.node("Abs", [z])])])  # e^-|z| <= 1
    soft = g.node("Div", [g.node("Add", [g.node("Max", [z, g.constant(0.0)]), _log1p(g, u)]),
                          g.constant(m.beta)])
    return g.node("Where", [g.node("Greater", [z, g.constant(m.threshold)]), x, soft])


def _silu(g: Graph, m: Module, x: str) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


def _gelu(g: Graph, m: activations.GELU, x: str) -> str:
    if g.opset >= 20 and g.dtype == "float32":  # ONNX Runtime's float64 Gelu is off by 1e-9
        return g.node("Gelu", [x], approximate="tanh")
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = g.node("Mul", [g.node("Mul", [x, x]), x])
    inner = g.node("Add", [x, g.node("Mul", [g.constant(0.044715), cube])])
    t = g.node("Tanh", [g.node("Mul", [g.constant(math.sqrt(2 / math.pi)), inner])])
    half_x = g.node("Mul", [g.constant(0.5), x])
    return g.node("Mul", [half_x, g.node("Add", [g.constant(1.0), t])])


def _normalize(g: Graph, x: str, mean: str, var: str, eps: float, weight: str | None,
               bias: str | None) -> str:
    """(x - mean) / sqrt(var + eps) * weight + bias, in xnn's order of operations."""
    inv_std = g.node("Div", [g.constant(1.0),
                             g.node("Sqrt", [g.node("Add", [var, g.constant(eps)])])])
    y = g.node("Mul", [g.node("Sub", [x, mean]), inv_std])
    if weight is not None:
        y = g.node("Mul", [y, weight])
    if bias is not None:
        y = g.node("Add", [y, bias])
    return y


def _batch_norm(g: Graph, m: normalization.BatchNorm1d, x: str) -> str:
    weight = g.parameter(m.weight) if m.affine else None
    bias = g.parameter(m.bias) if m.affine else None
    if m.track_running_stats:  # evaluation mode: the running statistics
        mean, var = g.buffer(m, "running_mean", "running_mean"), g.buffer(m, "running_var",
                                                                          "running_var")
        if g.dtype == "float64":  # xnn's order of operations: equal to 1e-16, not 1e-13
            return _normalize(g, x, mean, var, m.eps, weight, bias)
        if weight is None:
            weight, bias = g.array(np.ones(m.num_features)), g.array(np.zeros(m.num_features))
        return g.node("BatchNormalization", [x, weight, bias, mean, var], epsilon=float(m.eps))
    mean = g.reduce_mean(x, 0)  # no running statistics: eval also uses the batch's (biased)
    centered = g.node("Sub", [x, mean])
    var = g.reduce_mean(g.node("Mul", [centered, centered]), 0)
    return _normalize(g, x, mean, var, m.eps, weight, bias)


def _layer_norm(g: Graph, m: normalization.LayerNorm, x: str) -> str:
    n = m.normalized_shape[0]
    if g.dtype == "float64":  # ONNX Runtime's LayerNormalization agrees to 1e-13 only
        mean = g.reduce_mean(x, -1)
        centered = g.node("Sub", [x, mean])
        var = g.reduce_mean(g.node("Mul", [centered, centered]), -1)
        weight = g.parameter(m.weight) if m.weight is not None else None
        bias = g.parameter(m.bias) if m.bias is not None else None
        return _normalize(g, x, mean, var, m.eps, weight, bias)
    scale = g.parameter(m.weight) if m.weight is not None else g.array(np.ones(n))
    inputs = [x, scale] + ([g.parameter(m.bias)] if m.bias is not None else [])
    return g.node("LayerNormalization", inputs, axis=-1, epsilon=float(m.eps))


def _flatten(g: Graph, m: shape.Flatten, x: str) -> str:
    shape_in = g.shapes.get(x)
    if shape_in is None:
        raise ExportError("xnn.onnx.export: Flatten needs its input's shape; pass input_shape")
    ndim = len(shape_in)
    start = m.start_dim + ndim if m.start_dim < 0 else m.start_dim
    end = m.end_dim + ndim if m.end_dim < 0 else m.end_dim
    if not 0 <= start <= end < ndim:
        raise ExportError(f"xnn.onnx.export: Flatten cannot merge axes {m.start_dim}.."
                          f"{m.end_dim} of an input of shape {shape_in}")
    merged = shape_in[start:end + 1]
    size = None if None in merged else math.prod(merged)
    out_shape = shape_in[:start] + (size,) + shape_in[end + 1:]
    if None in shape_in[end + 1:]:
        raise ExportError(f"xnn.onnx.export: Flatten of shape {shape_in} needs the axes after "
                          f"the merged ones known; pass input_shape")
    # Reshape's 0 copies the input's axis of the same index, -1 takes what is left
    target = [0 if d is None else d for d in out_shape[:start]]
    target += [-1 if size is None else size] + list(out_shape[start + 1:])
    y = g.node("Reshape", [x, g.array(target, dtype="int64")])
    g.shapes[y] = out_shape
    return y


def _sequential(g: Graph, m: Sequential, x: str) -> str:
    for layer in m.layers:
        x = g.module(layer, x)
    return x


def _residual(g: Graph, m: residual.Residual, x: str) -> str:
    return g.node("Add", [x, g.module(m.module, x)])


EXPORTERS.update({
    Sequential: _sequential,
    residual.Residual: _residual,
    linear.Linear: _linear,
    activations.Identity: _elementwise("Identity"),
    dropout.Dropout: _elementwise("Identity"),  # evaluation mode: dropout passes x through
    activations.ReLU: _elementwise("Relu"),
    activations.LeakyReLU: _leaky_relu,
    activations.ELU: _elu,
    activations.Sigmoid: _elementwise("Sigmoid"),
    activations.Tanh: _elementwise("Tanh"),
    activations.GELU: _gelu,
    activations.Softplus: _softplus,
    activations.SiLU: _silu,
    activations.Softmax: lambda g, m, x: g.node("Softmax", [x], axis=m.axis),
    activations.LogSoftmax: lambda g, m, x: g.node("LogSoftmax", [x], axis=m.axis),
    normalization.BatchNorm1d: _batch_norm,
    normalization.LayerNorm: _layer_norm,
    shape.Flatten: _flatten,
})


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
        if isinstance(module, normalization.BatchNorm1d):
            return (None, module.num_features)
        if isinstance(module, normalization.LayerNorm):
            return (None, module.normalized_shape[0])
        if isinstance(module, shape.Flatten):
            break
    raise ExportError("xnn.onnx.export: cannot tell the input's shape from the model (no "
                      "leading Linear); pass input_shape, e.g. (None, 8, 8)")


def _is_int(value: Any) -> bool:
    """An int of Python or NumPy (np.int64 from a .shape), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_input_shape(input_shape: Any) -> tuple:
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            d is None or (_is_int(d) and d >= 1) for d in input_shape):
        raise ValueError(f"xnn.onnx.export: input_shape must be a tuple of positive ints and "
                         f"None (the batch axis), e.g. (None, 64); got {input_shape!r}")
    return tuple(None if d is None else int(d) for d in input_shape)


_newest_opset: int | None = None


def newest_runtime_opset() -> int:
    """The newest opset (>= MIN_OPSET) that both the installed onnx and onnxruntime handle;
    MIN_OPSET when onnxruntime is not installed."""
    global _newest_opset
    if _newest_opset is None:
        onnx = _onnx()
        _newest_opset = MIN_OPSET
        try:
            import onnxruntime  # noqa: PLC0415 - optional
        except ImportError:
            return _newest_opset
        for opset in range(onnx.defs.onnx_opset_version(), MIN_OPSET, -1):
            probe = _probe_model(onnx, opset)
            try:
                onnxruntime.InferenceSession(probe, providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001 - this runtime cannot run that opset
                continue
            _newest_opset = opset
            break
    return _newest_opset


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
    except MemoryError as err:
        raise ValueError(f"xnn.onnx.export: input_shape {tuple(shape)} is too big to run "
                         f"through the model ({err})") from err
    except (ValueError, TypeError) as err:
        raise ValueError(f"xnn.onnx.export: the model cannot take an input of shape "
                         f"{tuple(shape)}: {err}") from err


def export(model: Module, path: str | os.PathLike, *, input_shape: Sequence[int | None] |
           None = None, opset: int | None = None) -> None:
    """Write ``model`` in evaluation mode to ``path`` as an ONNX model.

    input_shape: the input's shape, None for the batch axis (dynamic, named "batch");
        default (None, in_features) of the first Linear. A leading Flatten needs it given.
    opset: the ai.onnx opset; default the newest the installed onnxruntime runs (at least 17).

    The graph's input is "input" and its output "output", of the parameters' dtype (float32 or
    float64). Raises ExportError for a layer without an exporter (see :func:`register`).
    """
    if not isinstance(model, Module):
        raise TypeError(f"xnn.onnx.export: model must be an xnn Module, got "
                        f"{type(model).__name__}")
    path = _path("xnn.onnx.export", path)
    onnx = _onnx()
    shape_in = (_default_input_shape(model) if input_shape is None
                else _check_input_shape(input_shape))
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        opset = newest_runtime_opset()
    elif not _is_int(opset) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"xnn.onnx.export: opset must be an int in [{MIN_OPSET}, {newest}], "
                         f"got {opset!r}")
    opset = int(opset)
    dtype = _model_dtype(model)
    _check_fits(model, shape_in, dtype)
    graph = Graph(onnx, dtype, opset, {id(p): name for name, p in model.named_parameters()})
    graph.reserve("input", "output")
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
