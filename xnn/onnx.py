"""ONNX export: ``xnn.onnx.export(model, path)`` writes the model in evaluation mode as an ONNX
graph that ONNX Runtime (CPU, GPU, mobile, browsers) serves without xnn or Python.

The export is a trace: the model's own evaluation-mode ``forward`` runs on ndonnx arrays, an
Array API library whose operations build an ONNX graph instead of computing. The input is a
symbolic array (the batch axis named "batch"), the parameters and buffers are symbolic arrays
that become the graph's initializers, named as in ``state_dict``. A layer written against the
Array API (``xnn.expect`` or ``array_namespace`` and standard functions) therefore exports with
no exporter code. ``onnx`` and ``ndonnx`` are imported only when ``export`` runs (the ``onnx``
extra, see ``xnn.extras.install_hint``); this module imports without them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import numbers
import os
import warnings
from typing import Any, Callable, Sequence

import numpy as np  # initializers are host arrays

from ._checks import integer
from .backend import dtype_name, get_default_dtype, is_array, to_numpy
from .extras import install_hint
from .io import _path, write_atomically
from .data import NotFittedError
from .nn import linear, normalization, shape, standardize
from .nn.module import Module

__all__ = ["export", "register", "ExportError", "MIN_OPSET", "newest_runtime_opset"]

MIN_OPSET = 21  # the opset ndonnx writes; onnx's converter cannot take every graph lower


class ExportError(ValueError):
    """A model that cannot be written as ONNX (a forward ndonnx cannot trace, mixed dtypes)."""


def register(cls: type) -> Callable[[Callable], Callable]:
    """Deprecated: ``export`` traces each layer's own forward, so an exporter is not needed
    and is ignored; ``@register(MyLayer)`` warns and returns the function unchanged."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"xnn.onnx.register: expected a Module subclass, got {cls!r}")
    warnings.warn(f"xnn.onnx.register({cls.__name__}) is deprecated and ignored: "
                  f"xnn.onnx.export traces the layer's own forward through ndonnx, see "
                  f"docs/custom-layers.md", DeprecationWarning, stacklevel=2)
    return lambda fn: fn


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"xnn.onnx.export needs the {name} package: "
                          f"{install_hint('onnx')}") from err


def _onnx() -> Any:
    return _import("onnx")


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


def _check_fits(model: Module, shape: tuple, dtype: Any) -> tuple:
    """Run a batch of ``shape`` through the model in eval mode (two rows where the batch is
    dynamic: BatchNorm1d without running statistics needs two), so an input_shape the model
    cannot take is refused with its layer's own message, not traced into a graph that fails
    in ONNX Runtime; return the output's shape."""
    from .predict import predict  # noqa: PLC0415 - predict imports the training helpers

    rows = 2 if shape[0] is None else min(shape[0], 2)  # a fixed batch of 10**9 is fine too
    try:
        out = predict(model, np.zeros((rows, *shape[1:]), dtype=dtype))
    except NotFittedError as err:  # a layer fitted from data, not yet: its own message
        raise ExportError(f"xnn.onnx.export: {err}") from err
    except MemoryError as err:
        raise ValueError(f"xnn.onnx.export: input_shape {tuple(shape)} is too big to run "
                         f"through the model ({err})") from err
    except (ValueError, TypeError) as err:
        raise ValueError(f"xnn.onnx.export: the model cannot take an input of shape "
                         f"{tuple(shape)}: {err}") from err
    if not is_array(out):
        raise ExportError(f"xnn.onnx.export: {type(model).__name__} returned a "
                          f"{type(out).__name__}, not an array")
    return tuple(out.shape)


@contextlib.contextmanager
def _traced_state(model: Module, ndx: Any) -> Any:
    """The model in evaluation mode with every parameter and buffer an ndonnx argument named
    as in ``state_dict`` (a tied parameter is one); yields name -> (argument, host value).
    Everything is put back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(name, p, p.value) for name, p in model.named_parameters()]
    buffers = [(path + name, module, name, value) for path, module in model._named_modules()
               for name, value in list(module.named_buffers())]
    state = {}
    for name, value in [(n, v) for n, _, v in params] + [(n, v) for n, _, _, v in buffers]:
        host = to_numpy(value)
        kind = getattr(ndx, dtype_name(host.dtype))
        state[name] = (ndx.argument(shape=host.shape, dtype=kind), host)
    model.eval()
    try:
        for name, p, _ in params:
            p.value = state[name][0]
        for name, module, leaf, _ in buffers:
            module.load_buffer(leaf, state[name][0])
        yield state
    finally:
        for _, p, value in params:
            p.value = value
        for _, module, leaf, value in buffers:
            module.load_buffer(leaf, value)
        for m, mode in modes:
            m.training = mode


def _failing_layer(err: BaseException, model: Module) -> str:
    """The class name of the innermost layer whose forward raised ``err``."""
    modules = {id(m) for m in model.modules()}
    name = type(model).__name__
    tb = err.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if id(owner) in modules and tb.tb_frame.f_code.co_name == "forward":
            name = type(owner).__name__
        tb = tb.tb_next
    return name


def _trace(model: Module, shape_in: tuple, dtype: str, shape_out: tuple) -> Any:
    """The ONNX model (opset MIN_OPSET) of the model's evaluation-mode forward, traced on
    ndonnx arrays; its parameters and buffers are the graph's initializers."""
    onnx, ndx = _onnx(), _import("ndonnx")
    x = ndx.argument(shape=tuple("batch" if d is None else d for d in shape_in),
                     dtype=getattr(ndx, dtype))
    with _traced_state(model, ndx) as state:
        try:
            y = model(x)
        except Exception as err:  # noqa: BLE001 - any failure of the trace is the layer's
            layer = _failing_layer(err, model)
            raise ExportError(f"xnn.onnx.export: {layer}.forward cannot be traced to ONNX "
                              f"through ndonnx ({type(err).__name__}: {err}); export needs "
                              f"evaluation-mode code of Array API functions only, see "
                              f"docs/custom-layers.md") from err
    if dtype_name(y.dtype) != dtype:
        raise ExportError(f"xnn.onnx.export: {type(model).__name__} returned a "
                          f"{dtype_name(y.dtype)} array, not {dtype} as its parameters")
    proto = ndx.build({"input": x, **{k: a for k, (a, _) in state.items()}}, {"output": y},
                      drop_unused=True)
    graph = proto.graph
    inits = [onnx.numpy_helper.from_array(host, name) for name, (_, host) in state.items()
             if any(i.name == name for i in graph.input)]
    graph.initializer.extend(inits)
    kept = [i for i in graph.input if i.name not in state]
    del graph.input[:]
    graph.input.extend(kept)
    # the output's axes where ndonnx lost them (its matmul keeps none): the batch axis, named
    # or fixed as the input's, and the others as the check's run gave them
    dims = graph.output[0].type.tensor_type.shape.dim
    for i, (d, ran) in enumerate(zip(y.shape, shape_out)):
        if d is None and i == 0 and shape_in[0] is None:
            dims[i].dim_param = "batch"
        else:
            dims[i].dim_value = d if d is not None else shape_in[0] if i == 0 else ran
    del proto.metadata_props[:]  # ndonnx's schema lists the parameters as inputs
    graph.name = type(model).__name__
    return proto


def _to_opset(onnx: Any, proto: Any, opset: int) -> Any:
    """``proto`` converted to ``opset`` by onnx's version converter."""
    if opset != MIN_OPSET:
        convert = importlib.import_module("onnx.version_converter").convert_version
        proto = convert(proto, opset)
    proto.producer_name = "xnn"
    return proto


def export(model: Module, path: str | os.PathLike, *, input_shape: Sequence[int | None] |
           None = None, opset: int | None = None) -> None:
    """Write ``model`` in evaluation mode to ``path`` as an ONNX model.

    The graph's input is "input" and its output "output", of the parameters' dtype (float32 or
    float64). The graph is traced: the model's own evaluation-mode forward runs on ndonnx
    arrays, so any layer written with Array API functions exports; ExportError names a layer
    whose forward ndonnx cannot trace.

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
        ``MIN_OPSET``, 21).

    Raises
    ------
    ExportError
        For a layer whose forward ndonnx cannot trace, or mixed parameter dtypes.
    ValueError
        For an input shape the model cannot take, or an opset out of range.
    ImportError
        When ``onnx`` or ``ndonnx`` (the ``onnx`` extra) is not installed.

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
    shape_out = _check_fits(model, shape_in, dtype)
    data = _to_opset(onnx, _trace(model, shape_in, dtype, shape_out), opset).SerializeToString()
    write_atomically(path, lambda f: f.write(data), "xnn.onnx.export")
