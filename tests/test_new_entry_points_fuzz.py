"""The entry points added since 0.1 (predict, save/load, ONNX export and its command, the
scikit-learn estimators, xnn.distributed in a one-process world, fit's progress flag and the
examples' command line) under random and crafted arguments, as a new user would call them.

Each call must either work, with the result a correct call gives, or raise TypeError /
ValueError (CheckpointError for a bad checkpoint file) naming the entry point and what came;
a refused save or export leaves any file already at the path whole. XNN_FUZZ_EXAMPLES sets
the depth, as in tests/test_hardening_fuzz.py.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xnn
from xnn import distributed, nn, optim
from xnn.backend import dtype_name
from xnn.io import CheckpointError

import catalogue
from fuzzing import FUZZ, attempt, fewer

FEW = fewer(2 / 5)  # the slow entry points (fit, checkpoints)

HOST_DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64", "complex64"]
SPECIAL = [0.0, -0.0, 1e30, -1e30, math.nan, math.inf, -math.inf]



@st.composite
def host_data(draw, rows=(0, 5), widths=(0, 5)):
    """A NumPy array of rank 0-3 of any dtype HOST_DTYPES lists, sometimes read-only, with
    NaN, Inf and huge values among moderate ones."""
    rank = draw(st.integers(0, 3))
    shape = tuple(draw(st.integers(*rows if i == 0 else widths)) for i in range(rank))
    dtype = draw(st.sampled_from(HOST_DTYPES))
    size = math.prod(shape)
    values = draw(st.lists(st.one_of(st.floats(-5, 5), st.sampled_from(SPECIAL)),
                           min_size=size, max_size=size))
    with np.errstate(all="ignore"):
        a = np.array(values, dtype="float64").astype(dtype).reshape(shape)
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


def as_kind(a: np.ndarray, kind: str) -> Any:
    """``a`` as the user might hand it over: NumPy, a nested list, a torch tensor (requiring
    grad where it can), or an array of the active backend."""
    if kind == "list":
        return a.tolist()
    if kind == "torch":
        torch = pytest.importorskip("torch")
        t = torch.from_numpy(np.array(a))
        return t.requires_grad_() if t.is_floating_point() and t.numel() else t
    if kind == "backend" and a.dtype.kind != "c" and a.dtype.name != "float16":
        return xnn.asarray(np.ascontiguousarray(a), dtype=a.dtype.name)
    return a


def small_model(width: int, hidden: int, eval_mode: bool) -> nn.Module:
    """Linear(width, hidden), every public layer class of xnn.nn (tests/catalogue.py) at width
    hidden, Linear(hidden, 2)."""
    layers = [make() for make in catalogue.layers(hidden).values()]
    model = nn.Sequential(nn.Linear(width, hidden), *layers, nn.Linear(hidden, 2))
    if eval_mode:
        model.eval()
    return model


# --- predict ---------------------------------------------------------------------------------------

@FUZZ
@given(data=host_data(), kind=st.sampled_from(["numpy", "list", "torch", "backend"]),
       batch_size=st.one_of(st.none(), st.integers(-2, 7), st.sampled_from(
           [np.int64(2), 10**30, 1.5, True, "4"])), eval_mode=st.booleans())
def test_predict_gives_the_eval_outputs_or_names_what_is_wrong(backend, data, kind, batch_size,
                                                               eval_mode):
    xnn.seed(0)
    model = small_model(3, 4, eval_mode)
    modes = [m.training for m in model.modules()]
    ok, out = attempt(lambda: xnn.predict(model, as_kind(data, kind), batch_size=batch_size),
                      ["predict", "Linear", "asarray"])
    assert [m.training for m in model.modules()] == modes  # each module's mode put back
    if not ok:
        return
    assert data.ndim == 2 and data.shape[1] == 3 and data.dtype.kind != "c"
    model.eval()
    dtype = dtype_name(model.layers[0].weight.value.dtype)
    expected = xnn.to_numpy(model(xnn.asarray(np.asarray(data, dtype="float64"), dtype=dtype)))
    got = xnn.to_numpy(out)
    assert got.shape == (data.shape[0], 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# --- save / load -----------------------------------------------------------------------------------

PATH_KINDS = {"str": str, "bytes": os.fsencode, "pathlib": pathlib.Path}


@FEW
@given(width=st.integers(1, 4), hidden=st.integers(1, 4), eval_mode=st.booleans(),
       shared=st.booleans(), kind=st.sampled_from(sorted(PATH_KINDS)),
       extra=st.dictionaries(st.text(max_size=3), st.one_of(
           st.floats(allow_nan=False), st.integers(-10, 10), st.text(max_size=3),
           st.sampled_from([np.float32(0.25), np.int64(3), np.bool_(True)])), max_size=3))
def test_checkpoints_round_trip_any_path_kind_mode_and_extra(backend, tmp_path, width, hidden,
                                                             eval_mode, shared, kind, extra):
    xnn.seed(0)
    model = small_model(width, hidden, eval_mode)
    if shared:
        model.layers.append(model.layers[3])  # the same Tanh twice
    path = PATH_KINDS[kind](str(tmp_path / "model.xnn"))
    xnn.save(path, model, extra=extra)
    loaded = xnn.load(path)
    assert [m.training for m in loaded.model.modules()] == [m.training for m in model.modules()]
    assert (loaded.model.layers[3] is loaded.model.layers[-1]) == shared
    assert loaded.extra == json.loads(json.dumps({k: v.item() if isinstance(v, np.generic)
                                                  else v for k, v in extra.items()}))
    X = np.linspace(-1, 1, 3 * width).reshape(3, width)
    np.testing.assert_array_equal(xnn.to_numpy(xnn.predict(loaded.model, X)),
                                  xnn.to_numpy(xnn.predict(model, X)))


@FEW
@given(cut=st.integers(0, 2000), flips=st.lists(st.tuples(st.integers(0, 2000),
                                                          st.integers(1, 255)), max_size=4))
def test_a_damaged_checkpoint_loads_or_is_a_checkpoint_error_naming_it(tmp_path, cut, flips):
    xnn.seed(0)
    good = tmp_path / "good.xnn"
    model = small_model(3, 4, False)
    xnn.save(good, model, optim.Adam(model.parameters()), extra={"epoch": 3})
    data = bytearray(good.read_bytes()[:cut])
    for at, mask in flips:
        if at < len(data):
            data[at] ^= mask
    bad = tmp_path / "bad.xnn"
    bad.write_bytes(bytes(data))
    ok, err = attempt(lambda: xnn.load(bad), str(bad), allowed=(CheckpointError,))
    assert ok or isinstance(err, CheckpointError)


@pytest.mark.parametrize("kind", ["bytes", "pathlib"])
def test_save_and_load_take_bytes_and_pathlib_paths(backend, tmp_path, kind):
    xnn.seed(0)
    model = small_model(3, 4, True)
    path = PATH_KINDS[kind](str(tmp_path / "model.xnn"))
    xnn.save(path, model)
    X = np.ones((2, 3))
    np.testing.assert_array_equal(xnn.to_numpy(xnn.predict(xnn.load(path).model, X)),
                                  xnn.to_numpy(xnn.predict(model, X)))


@pytest.mark.parametrize("path", [None, 3, 1.5, ["model.xnn"]])
def test_save_and_load_refuse_a_non_path_naming_themselves(tmp_path, path):
    with pytest.raises(TypeError, match=f"xnn.save: path must be .* got {type(path).__name__}"):
        xnn.save(path, nn.Linear(2, 2))
    with pytest.raises(TypeError, match=f"xnn.load: path must be .* got {type(path).__name__}"):
        xnn.load(path)


@pytest.mark.parametrize("name", ["a" * 240, "a" * 255, "\u00e9" * 120])
def test_save_takes_a_file_name_of_up_to_255_bytes_and_leaves_no_temporary(tmp_path, name):
    xnn.save(tmp_path / name, nn.Linear(2, 3))
    assert xnn.load(tmp_path / name).model.out_features == 3
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("path", ["", "a\0b", b""])
def test_save_and_load_refuse_an_empty_path_or_one_with_a_nul_byte(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="xnn.save: path must be a file name"):
        xnn.save(path, nn.Linear(2, 2))
    with pytest.raises(ValueError, match="xnn.load: path must be a file name"):
        xnn.load(path)
    assert os.listdir(tmp_path) == []  # "" was the folder above's temporary and FileNotFound
    assert not [n for n in os.listdir(tmp_path.parent) if n.endswith(".xnn-tmp")]


def test_save_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "run3.xnn", tmp_path / "latest.xnn"
    xnn.save(target, nn.Linear(2, 2))
    link.symlink_to(target)
    xnn.save(link, nn.Linear(2, 5))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert xnn.load(target).model.out_features == 5


def test_save_extra_with_numpy_scalars_round_trips_as_numbers(tmp_path):
    extra = {"val_loss": np.float32(0.25), "epoch": np.int64(7), "best": np.bool_(True)}
    xnn.save(tmp_path / "m.xnn", nn.Linear(2, 2), extra=extra)
    assert xnn.load(tmp_path / "m.xnn").extra == {"val_loss": 0.25, "epoch": 7, "best": True}


def test_save_refuses_extra_that_contains_itself_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.xnn"
    xnn.save(path, nn.Linear(2, 3))
    extra: dict = {}
    extra["self"] = extra
    with pytest.raises(ValueError, match="xnn.save: extra must be JSON data without cycles"):
        xnn.save(path, nn.Linear(2, 2), extra=extra)
    assert xnn.load(path).model.out_features == 3


@pytest.mark.parametrize("flag", ["no", None, 0.0])
def test_load_refuses_a_restore_rng_that_is_not_a_boolean(tmp_path, flag):
    xnn.save(tmp_path / "m.xnn", nn.Linear(2, 2))
    with pytest.raises(TypeError, match="xnn.load: restore_rng must be True or False"):
        xnn.load(tmp_path / "m.xnn", restore_rng=flag)


# --- ONNX export -----------------------------------------------------------------------------------

def _onnx_modules():
    pytest.importorskip("ndonnx", reason="export traces through ndonnx (Python 3.11 or newer)")
    return (pytest.importorskip("onnx", reason="the test extra has onnx"),
            pytest.importorskip("onnxruntime", reason="the test extra has onnxruntime"))


@FEW
@given(shape=st.one_of(st.lists(st.one_of(st.none(), st.integers(-2, 5), st.sampled_from(
    [np.int64(3), np.int32(2), 10**12, True, 2.0, "3"])), max_size=3), st.sampled_from(
    [None, "3", 3, (None, 3)])), opset=st.one_of(st.none(), st.integers(15, 30), st.sampled_from(
        [np.int64(17), True, "18", 18.0])))
def test_onnx_export_writes_a_graph_that_agrees_or_refuses_clearly(backend, tmp_path, shape,
                                                                    opset):
    _, ort = _onnx_modules()
    xnn.seed(0)
    model = small_model(3, 4, True)
    path = tmp_path / "m.onnx"
    path.unlink(missing_ok=True)  # hypothesis runs every example in the same tmp_path
    shape_arg = tuple(shape) if isinstance(shape, list) else shape
    ok, _ = attempt(lambda: xnn.onnx.export(model, path, input_shape=shape_arg, opset=opset),
                    "xnn.onnx.export")
    if not ok:
        assert not path.exists()
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    given_shape = shape_arg if shape_arg is not None else (None, 3)
    rows = 2 if given_shape[0] is None else int(given_shape[0])
    X = np.linspace(-1, 1, rows * 3).reshape(rows, 3).astype("float32")
    (out,) = session.run(None, {"input": X})
    np.testing.assert_allclose(out, xnn.to_numpy(xnn.predict(model, X)), rtol=1e-4, atol=1e-5)


def test_onnx_export_takes_numpy_ints_for_input_shape_and_opset(tmp_path):
    onnx, _ = _onnx_modules()
    X = np.zeros((5, 3))
    xnn.onnx.export(nn.Linear(3, 2), tmp_path / "m.onnx", input_shape=(None, X.shape[1]),
                    opset=np.int64(xnn.onnx.MIN_OPSET))
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim][1:] == [3]
    assert graph.opset_import[0].version == xnn.onnx.MIN_OPSET


def test_onnx_export_of_a_huge_fixed_batch_runs_a_small_one_through_the_model(tmp_path):
    onnx, _ = _onnx_modules()
    xnn.onnx.export(nn.Linear(3, 2), tmp_path / "m.onnx", input_shape=(10**12, 3))
    dims = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [10**12, 3]


@pytest.mark.parametrize("returned", [5, None, "no_such_value"])
def test_onnx_export_refuses_a_forward_that_returns_no_array(tmp_path, returned):
    _onnx_modules()

    class Returns(nn.Module):
        def forward(self, x):
            return returned, lambda dy: dy

    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(xnn.onnx.ExportError, match=f"returned a {type(returned).__name__}, not"):
        xnn.onnx.export(nn.Sequential(nn.Linear(3, 3), Returns()), path)
    assert path.read_bytes() == b"old"


def test_onnx_export_interrupted_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    _onnx_modules()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(xnn.io.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        xnn.onnx.export(nn.Linear(3, 2), path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.onnx"]


@pytest.mark.parametrize("path, error", [(None, TypeError), (7, TypeError),
                                         ("missing/m.onnx", FileNotFoundError),
                                         (".", IsADirectoryError)])
def test_onnx_export_names_itself_for_a_bad_path(tmp_path, monkeypatch, path, error):
    _onnx_modules()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match="xnn.onnx.export"):
        xnn.onnx.export(nn.Linear(3, 2), path)


def test_export_onnx_command_says_in_one_line_what_input_shape_it_expects(tmp_path, capsys):
    from xnn.cli import main  # noqa: PLC0415

    xnn.save(tmp_path / "m.xnn", nn.Linear(3, 2))
    with pytest.raises(SystemExit) as stop:
        main(["export-onnx", str(tmp_path / "m.xnn"), str(tmp_path / "m.onnx"),
              "--input-shape", "x,3"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--input-shape: expected comma-separated ints" in err and "'x,3'" in err
    assert "Traceback" not in err and not (tmp_path / "m.onnx").exists()


# --- scikit-learn estimators -----------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_sklearn_estimators_take_torch_tensors_that_require_grad(estimator):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from xnn import sklearn as xsk  # noqa: PLC0415

    rng = np.random.default_rng(0)
    X = rng.random((20, 3))
    y = (X[:, 0] > 0.5).astype(int) if estimator == "MLPClassifier" else X[:, 0]
    Xt = torch.tensor(X, requires_grad=True)
    yt = torch.tensor(y, requires_grad=y.dtype.kind == "f")
    est = getattr(xsk, estimator)(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 3 epochs
        est.fit(Xt, yt)
        reference = getattr(xsk, estimator)(hidden_layer_sizes=(4,), max_iter=3,
                                            random_state=0).fit(X, y)
        est.partial_fit(Xt, yt, **({"classes": [0, 1]} if estimator == "MLPClassifier" else {}))
    np.testing.assert_array_equal(np.asarray(est.coefs_[0]).shape, (3, 4))
    assert np.asarray(est.predict(Xt)).shape == np.asarray(reference.predict(X)).shape
    assert est.score(Xt, yt) == pytest.approx(est.score(X, y))  # y requiring grad too


@pytest.mark.parametrize("sizes", [(2.5,), ("4",), (4, None), (True,)])
def test_sklearn_estimators_name_hidden_layer_sizes_that_are_not_ints(sizes):
    pytest.importorskip("sklearn")
    from xnn.sklearn import MLPClassifier  # noqa: PLC0415

    X, y = np.random.default_rng(0).random((8, 2)), np.arange(8) % 2
    with pytest.raises(TypeError, match=r"MLPClassifier: hidden_layer_sizes must be ints"):
        MLPClassifier(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)


# --- xnn.distributed in a one-process world ---------------------------------------------------------

@pytest.mark.parametrize("average", ["no", None, 2])
def test_gradient_reduction_refuses_an_average_that_is_not_a_boolean(average):
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="allreduce_gradients: average must be True or False"):
        distributed.allreduce_gradients(model, average=average)
    with pytest.raises(TypeError, match="DistributedOptimizer: average must be True or False"):
        distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), average=average)


@FEW
@given(root=st.one_of(st.integers(-2, 2), st.sampled_from(["0", 0.0, None, np.int64(0)])),
       average=st.sampled_from([True, False, np.bool_(True)]))
def test_one_process_world_collectives_work_or_name_the_call(backend, root, average):
    distributed.init()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    distributed.barrier()
    xnn.seed(0)
    model = nn.Linear(3, 2)
    before = xnn.to_numpy(model.weight.value).copy()
    ok, _ = attempt(lambda: distributed.broadcast_parameters(model, root=root),
                    "broadcast_parameters")
    assert ok == (root == 0 and not isinstance(root, float))
    np.testing.assert_array_equal(xnn.to_numpy(model.weight.value), before)
    loss = xnn.losses.MSELoss()
    dtype = dtype_name(model.weight.value.dtype)
    pred, backprop = model.forward(xnn.asarray(np.ones((4, 3)), dtype=dtype))
    backprop(loss(pred, xnn.asarray(np.zeros((4, 2)), dtype=dtype))[1])
    grad = xnn.to_numpy(model.weight.grad).copy()
    distributed.allreduce_gradients(model, average=average)  # one rank: the grads as they were
    np.testing.assert_allclose(xnn.to_numpy(model.weight.grad), grad)


# --- fit's progress flag and the examples' command line ---------------------------------------------

@pytest.mark.parametrize("name, value", [("progress", "no"), ("progress", None),
                                         ("shuffle", "False"), ("shuffle", 0.0)])
def test_fit_refuses_a_progress_or_shuffle_that_is_not_a_boolean(name, value):
    model = nn.Linear(2, 2)
    before = xnn.to_numpy(model.weight.value).copy()
    X = np.ones((4, 2))
    with pytest.raises(TypeError, match=f"fit: {name} must be True or False, got \\w+ {value!r}"):
        xnn.fit(model, X, X, loss=xnn.losses.MSELoss(), optimizer=optim.SGD(
            model.parameters(), lr=0.1), epochs=1, **{name: value})
    np.testing.assert_array_equal(xnn.to_numpy(model.weight.value), before)


def _on_off_arguments(tmp_path: pathlib.Path) -> dict[str, tuple[Any, str]]:
    """name -> (call taking the on/off value, its owner in the message): every public on/off
    argument outside fit and the constructors the catalogues already cover."""
    X, y = np.ones((6, 2)), np.ones((6, 1))
    model = nn.Linear(2, 1)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=1, progress=False,
                      optimizer=optim.SGD(model.parameters(), lr=0.1))
    return {
        "Linear(bias)": (lambda v: nn.Linear(2, 3, bias=v), "Linear: bias"),
        "Module.train(mode)": (lambda v: model.train(v), "Linear: mode"),
        "load_state_dict(strict)": (lambda v: model.load_state_dict(model.state_dict(), strict=v),
                                    "Linear.load_state_dict: strict"),
        "train_test_split(shuffle)": (lambda v: xnn.data.train_test_split(X, y, shuffle=v),
                                      "train_test_split: shuffle"),
        "batches(shuffle)": (lambda v: xnn.data.batches(X, y, 2, shuffle=v), "batches: shuffle"),
        "loss_curve(log_scale)": (lambda v: xnn.plot.loss_curve(history, tmp_path / "c.png",
                                                               log_scale=v),
                                  "loss_curve: log_scale"),
        "gradcheck(raise_exception)": (lambda v: xnn.testing.gradcheck(
            nn.Tanh(), xnn.asarray(np.ones((2, 2)), dtype="float64"), raise_exception=v),
            "gradcheck: raise_exception"),
    }


@pytest.mark.parametrize("name", ["Linear(bias)", "Module.train(mode)", "load_state_dict(strict)",
                                  "train_test_split(shuffle)", "batches(shuffle)",
                                  "loss_curve(log_scale)", "gradcheck(raise_exception)"])
@pytest.mark.parametrize("value", ["no", None, 0.0])
def test_every_on_off_argument_refuses_what_is_not_a_boolean(tmp_path, name, value):
    """A string such as 'no' is truthy: taken as True it would silently do the opposite."""
    pytest.importorskip("matplotlib")
    import xnn.plot  # noqa: PLC0415, F401 - not imported by import xnn
    import xnn.testing  # noqa: PLC0415, F401
    call, owner = _on_off_arguments(tmp_path)[name]
    with pytest.raises(TypeError, match=f"{owner} must be True or False, got \\w+ {value!r}"):
        call(value)
    call(False)  # a real boolean is taken


def test_flag_takes_numpy_1s_bool_type_too():
    """NumPy 1.x (allowed by pyproject) names its boolean scalar type bool_, NumPy 2 bool."""
    old_bool = type("bool_", (), {"__module__": "numpy", "__bool__": lambda self: False})
    assert xnn.flag("owner", "name", old_bool()) is False
    assert xnn.flag("owner", "name", np.True_) is True


def test_model_checkpoint_writes_to_the_path_an_os_pathlike_names(tmp_path):
    class Where:  # an os.PathLike that is neither a str nor a pathlib path
        def __fspath__(self) -> str:
            return str(tmp_path / "best.safetensors")

    keep = xnn.callbacks.ModelCheckpoint(Where(), monitor="loss")
    model = nn.Linear(2, 1)
    xnn.fit(model, np.ones((4, 2)), np.ones((4, 1)), loss=xnn.losses.MSELoss(), epochs=1,
            optimizer=optim.SGD(model.parameters(), lr=0.1), progress=False, callbacks=[keep])
    assert keep.saved == [str(tmp_path / "best.safetensors")]
    assert (tmp_path / "best.safetensors").exists()


@pytest.mark.parametrize("flag", [np.bool_(True), 1])
def test_fit_takes_numpy_and_int_booleans_for_distributed(flag):
    runs = []
    for distributed_flag in (False, flag):
        xnn.seed(0)
        model = nn.Linear(2, 2)
        X = np.linspace(0, 1, 8).reshape(4, 2)
        history = xnn.fit(model, X, X, loss=xnn.losses.MSELoss(), optimizer=optim.SGD(
            model.parameters(), lr=0.1), epochs=2, progress=False, distributed=distributed_flag)
        runs.append(history.history["loss"])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("value", [True, False, 1, 0, np.bool_(False)])
def test_fit_takes_a_boolean_progress(value, capsys):
    model = nn.Linear(2, 2)
    X = np.ones((4, 2))
    xnn.fit(model, X, X, loss=xnn.losses.MSELoss(), optimizer=optim.SGD(
        model.parameters(), lr=0.1), epochs=2, progress=value)
    assert ("epoch 2/2" in capsys.readouterr().err) == bool(value)


def test_fit_trains_without_a_progress_display_where_there_is_no_stderr(monkeypatch):
    model = nn.Linear(2, 2)
    X = np.ones((4, 2))
    monkeypatch.setattr("sys.stderr", None)  # pythonw, some services
    history = xnn.fit(model, X, X, loss=xnn.losses.MSELoss(), optimizer=optim.SGD(
        model.parameters(), lr=0.1), epochs=2)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--lr", "nan"], "--lr: expected a finite number above 0, got 'nan'"),
    (["--lr", "-1"], "--lr: expected a finite number above 0, got '-1'"),
    (["--lr", "inf"], "--lr: expected a finite number above 0, got 'inf'"),
    (["--seed", "-1"], "--seed: expected an int of at least 0, got -1"),
    (["--out", "FILE"], "--out: FILE is a file; give a folder for the plots"),
    (["--backend", ""], "--backend needs a name: numpy, array_api_strict, torch, cupy (an "
                        "NVIDIA GPU) or jax"),
])
def test_examples_command_line_refuses_bad_values_in_one_line(tmp_path, monkeypatch, capsys,
                                                              argv, message):
    import sys  # noqa: PLC0415

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
    from _common import parse_args  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        parse_args("doc", epochs=1, lr=0.1, argv=argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
