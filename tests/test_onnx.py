"""ONNX export: every layer kind and every example network, alone and nested, in float32 and
float64, passes onnx's full check, and ONNX Runtime's output on batches of 1 and 17 equals
xnn's evaluation-mode forward (float32 to 1e-5, float64 to 1e-12, relative to the output's
largest entry)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xnn
import xnn.onnx
from xnn import nn

import catalogue

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (the test extra has it)")
ort = pytest.importorskip("onnxruntime", reason="the test extra installs onnxruntime")
pytest.importorskip("ndonnx", reason="export traces through ndonnx (Python 3.11 or newer)")

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
WIDTH = 6


def _trained_batchnorm(*args, **kwargs) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(WIDTH, *args, **kwargs)
    for _ in range(3):  # move the running statistics away from 0 and 1
        bn(xnn.random.normal((16, WIDTH)) * 3 + 1)
    if bn.affine:
        bn.weight.value = xnn.random.normal((WIDTH,))
        bn.bias.value = xnn.random.normal((WIDTH,))
    return bn


def _layer_norm(**kwargs) -> nn.LayerNorm:
    ln = nn.LayerNorm(WIDTH, **kwargs)
    if ln.weight is not None:
        ln.weight.value = xnn.random.normal((WIDTH,))
    if ln.bias is not None:
        ln.bias.value = xnn.random.normal((WIDTH,))
    return ln


def layer_cases() -> dict:
    """name -> maker: every public layer class (WIDTH features in and out), and settings that
    take other code paths (trained statistics, parameters away from their initial values)."""
    return {**catalogue.layers(WIDTH), **{
        "Linear without bias": lambda: nn.Linear(WIDTH, WIDTH, bias=False),
        "LeakyReLU(0.2)": lambda: nn.LeakyReLU(0.2),
        "ELU(0.7)": lambda: nn.ELU(0.7),
        "Softplus(beta=2, threshold=3)": lambda: nn.Softplus(beta=2.0, threshold=3.0),
        "Dropout(0.4)": lambda: nn.Dropout(0.4),
        "BatchNorm1d trained": _trained_batchnorm,
        "BatchNorm1d without affine": lambda: _trained_batchnorm(affine=False),
        "LayerNorm with weights": _layer_norm,
        "LayerNorm without bias": lambda: _layer_norm(bias=False),
        "LayerNorm without affine": lambda: _layer_norm(elementwise_affine=False),
    }}


LAYERS = layer_cases()
NESTINGS = {
    "alone": lambda layer: layer,
    "in Sequential": lambda layer: nn.Sequential(nn.Linear(WIDTH, WIDTH), layer,
                                                 nn.Linear(WIDTH, 3)),
    "in Residual": lambda layer: nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Residual(layer)),
}


def _runtime_output(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def assert_exports(model, path, in_shape, dtype, batches=(1, 17), input_shape=None,
                   opset=None):
    """Export ``model``, check the file fully, and compare ONNX Runtime with xnn."""
    model.eval()
    xnn.onnx.export(model, path, input_shape=input_shape, opset=opset)
    proto = onnx.load(path)
    if opset is not None:
        assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in batches:
        x = np.random.default_rng(batch).normal(size=(batch, *in_shape)).astype(dtype) * 2
        expected = xnn.to_numpy(model(xnn.asarray(x, dtype=dtype)))
        got = _runtime_output(path, x)
        assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
        scale = max(float(np.max(np.abs(expected))), np.finfo(dtype).tiny)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype] * scale,
                                   err_msg=f"batch {batch}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nesting", list(NESTINGS))
@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_layer_kind_exports_and_runs_as_in_xnn(tmp_path, kind, nesting, dtype):
    if kind == "Flatten" and nesting == "alone":
        pytest.skip("covered by the Flatten tests below, which give input_shape")
    with xnn.use_default_dtype(dtype):
        xnn.seed(0)
        model = NESTINGS[nesting](LAYERS[kind]())
        shape = (WIDTH,)
        assert_exports(model, tmp_path / "m.onnx", shape, dtype,
                       input_shape=(None, WIDTH) if nesting == "alone" else None)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", [k for k in LAYERS if k != "Flatten"])
def test_every_layer_kind_exports_at_the_oldest_opset_too(tmp_path, kind, dtype):
    with xnn.use_default_dtype(dtype):
        xnn.seed(0)
        model = NESTINGS["in Sequential"](LAYERS[kind]())
        assert_exports(model, tmp_path / "m.onnx", (WIDTH,), dtype, opset=xnn.onnx.MIN_OPSET)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_without_running_statistics_exports_batch_statistics(tmp_path, dtype):
    with xnn.use_default_dtype(dtype):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(WIDTH, WIDTH),
                              _trained_batchnorm(track_running_stats=False))
        # like xnn's (and torch's), it needs two rows: batch statistics of one row are undefined
        assert_exports(model, tmp_path / "m.onnx", (WIDTH,), dtype, batches=(2, 17))


@pytest.mark.parametrize("start, end, shape", [(1, -1, (2, 3, 4)), (1, 2, (2, 3, 4)),
                                               (2, 3, (2, 3, 4)), (0, 1, (3, 4))])
def test_flatten_exports_any_axes_given_the_input_shape(tmp_path, start, end, shape):
    xnn.seed(0)
    model = nn.Sequential(nn.Flatten(start, end), nn.Tanh())
    assert_exports(model, tmp_path / "m.onnx", shape, "float32", input_shape=(None, *shape))


def test_a_leading_flatten_needs_the_input_shape(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(xnn.onnx.ExportError, match="pass input_shape"):
        xnn.onnx.export(model, tmp_path / "m.onnx")
    xnn.seed(0)
    assert_exports(model, tmp_path / "m.onnx", (8, 8), "float32", input_shape=(None, 8, 8))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", xnn.tutorials.__all__)
def test_every_example_network_exports_and_runs_as_in_xnn(tmp_path, name, dtype):
    with xnn.use_default_dtype(dtype):
        xnn.seed(0)
        model = getattr(xnn.tutorials, name)()
        in_features = next(m for m in model.modules() if isinstance(m, nn.Linear)).in_features
        assert_exports(model, tmp_path / f"{name}.onnx", (in_features,), dtype)


def test_a_trained_network_on_any_backend_exports(backend, tmp_path):
    xnn.seed(0)
    X, y = xnn.datasets.arithmetic(200, seed=1)
    model = xnn.tutorials.arithmetic()
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.Adam(
        model.parameters(), lr=1e-2), epochs=2, batch_size=32, progress=False)
    assert_exports(model, tmp_path / "m.onnx", (2,), xnn.get_default_dtype())


def test_a_model_carrying_its_scaling_takes_raw_features_in_onnx_runtime(backend, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal([50.0, -2.0, 3000.0, 0.5], [10.0, 0.3, 900.0, 0.0], (120, 4))  # raw scales
    y = (X[:, :1] - 50.0) / 10.0 + (X[:, 2:3] - 3000.0) / 900.0
    xnn.seed(0)
    model = nn.Sequential(nn.Standardize(4).adapt(X), nn.Linear(4, 16), nn.Tanh(),
                          nn.Linear(16, 1))
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.Adam(
        model.parameters(), lr=1e-2), epochs=5, batch_size=32, progress=False)
    xnn.save(tmp_path / "m.xnn", model)
    loaded = xnn.load(tmp_path / "m.xnn").model
    xnn.onnx.export(loaded, tmp_path / "m.onnx")  # the input width from Standardize
    raw = X[:17].astype(xnn.get_default_dtype())
    expected = xnn.to_numpy(xnn.predict(model, raw))
    np.testing.assert_allclose(_runtime_output(tmp_path / "m.onnx", raw), expected,
                               rtol=0, atol=TOLERANCE[xnn.get_default_dtype()] * 10)


def test_a_bare_standardize_exports_with_the_width_it_was_given(tmp_path):
    layer = nn.Standardize(3, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 8.0])
    xnn.onnx.export(layer, tmp_path / "m.onnx")
    got = _runtime_output(tmp_path / "m.onnx", np.array([[3.0, 6.0, 11.0]], np.float32))
    np.testing.assert_array_equal(got, [[1.0, 1.0, 1.0]])


def test_tied_weights_are_stored_once_and_named_as_in_the_state_dict(tmp_path):
    xnn.seed(0)
    a, b = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
    b.weight = a.weight
    model = nn.Sequential(a, nn.Tanh(), b, nn.Tanh(), a)
    assert_exports(model, tmp_path / "m.onnx", (WIDTH,), "float32")
    names = sorted(t.name for t in onnx.load(tmp_path / "m.onnx").graph.initializer)
    assert names == ["0.bias", "0.weight", "2.bias"]


def test_default_opset_is_the_newest_onnxruntime_runs(tmp_path):
    xnn.onnx.export(nn.Linear(2, 2), tmp_path / "m.onnx")
    opset = onnx.load(tmp_path / "m.onnx").opset_import[0].version
    assert opset == xnn.onnx.newest_runtime_opset() >= xnn.onnx.MIN_OPSET
    if opset < onnx.defs.onnx_opset_version():  # the next one is refused by this onnxruntime
        with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own error types
            ort.InferenceSession(xnn.onnx._probe_model(onnx, opset + 1))
    xnn.onnx.export(nn.Sequential(nn.Linear(2, 2), nn.GELU(), nn.LayerNorm(2)),
                    tmp_path / "old.onnx", opset=xnn.onnx.MIN_OPSET)
    assert onnx.load(tmp_path / "old.onnx").opset_import[0].version == xnn.onnx.MIN_OPSET
    assert_exports(nn.Sequential(nn.Linear(2, 2), nn.GELU()), tmp_path / "m.onnx", (2,),
                   "float32")


class Swish(nn.Module):
    """A user's layer with a parameter, not registered anywhere: y = x sigmoid(beta x)."""

    def __init__(self, features: int, dtype=None):
        self.beta = nn.Parameter(xnn.random.uniform((features,), low=0.5, high=2.0, dtype=dtype))

    def forward(self, x):
        xp = xnn.expect(self, x, like=self.beta.value)
        s = 1 / (1 + xp.exp(-self.beta.value * x))

        def backprop(dy):
            self.beta.accumulate(xp.sum(dy * x * x * s * (1 - s), axis=0))
            return dy * (s + self.beta.value * x * s * (1 - s))

        return x * s, backprop


class Mish(nn.Module):
    """A user's activation: y = x tanh(softplus(x)), softplus as log(1 + e^x) kept stable."""

    def forward(self, x):
        xp = xnn.expect(self, x)
        t = xp.tanh(xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x))))
        sig = 1 / (1 + xp.exp(-x))
        return x * t, lambda dy: dy * (t + x * (1 - t * t) * sig)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_custom_array_api_layer_exports_with_no_registration(tmp_path, dtype):
    with xnn.use_default_dtype(dtype):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(WIDTH, WIDTH), Swish(WIDTH), nn.Linear(WIDTH, WIDTH),
                              Mish(), nn.Residual(Swish(WIDTH)), nn.Linear(WIDTH, 3))
        assert_exports(model, tmp_path / "m.onnx", (WIDTH,), dtype)
    names = {t.name for t in onnx.load(tmp_path / "m.onnx").graph.initializer}
    assert {"1.beta", "4.module.beta"} <= names  # the user's parameters, named as saved


def test_a_subclass_with_a_new_forward_exports_its_own_computation(tmp_path):
    class Doubled(nn.Linear):
        def forward(self, x):
            y, backprop = super().forward(x)
            return 2 * y, lambda dy: backprop(2 * dy)

    xnn.seed(0)
    assert_exports(nn.Sequential(Doubled(WIDTH, WIDTH)), tmp_path / "m.onnx", (WIDTH,),
                   "float32")


class HostRoundTrip(nn.Module):
    """A layer ndonnx cannot trace: its forward decides on a value (a host branch)."""

    def forward(self, x):
        xp = xnn.expect(self, x)
        return (x if bool(xp.all(x > 0)) else -x), lambda dy: dy


def test_a_layer_ndonnx_cannot_trace_is_named_with_what_failed(tmp_path):
    model = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Residual(HostRoundTrip()))
    weight = model[0].weight.value
    with pytest.raises(xnn.onnx.ExportError, match=r"HostRoundTrip\.forward cannot be traced "
                                                   r"to ONNX through ndonnx \(\w+Error: .+\)"):
        xnn.onnx.export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    assert model[0].weight.value is weight and model.training  # the model is as it was


def test_register_is_deprecated_and_ignored(tmp_path):
    with pytest.warns(DeprecationWarning, match=r"register\(Mish\) is deprecated"):
        decorate = xnn.onnx.register(Mish)

    def exporter(graph, layer, x):  # the old hook's signature, never called now
        raise AssertionError("called")

    assert decorate(exporter) is exporter
    xnn.seed(0)
    assert_exports(nn.Sequential(nn.Linear(WIDTH, WIDTH), Mish()), tmp_path / "m.onnx",
                   (WIDTH,), "float32")


@pytest.mark.parametrize("bad, message", [
    ({"input_shape": (None, 0)}, "input_shape must be"),
    ({"input_shape": "64"}, "input_shape must be"),
    ({"opset": 3}, "opset must be an int"),
    ({"opset": 17.0}, "opset must be an int"),
])
def test_export_refuses_bad_arguments(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        xnn.onnx.export(nn.Linear(2, 2), tmp_path / "m.onnx", **bad)
    with pytest.raises(TypeError, match="model must be an xnn Module"):
        xnn.onnx.export("model", tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="Module subclass"):
        xnn.onnx.register(int)


@pytest.mark.parametrize("shape", [(None, 7), (None, 3, 1), (4, 2)])
def test_an_input_shape_the_model_cannot_take_is_refused_and_nothing_written(tmp_path, shape):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"the model cannot take an input of shape .*Linear: "
                                         r"expected"):
        xnn.onnx.export(model, tmp_path / "m.onnx", input_shape=shape)
    assert not (tmp_path / "m.onnx").exists()
    xnn.onnx.export(model, tmp_path / "m.onnx", input_shape=(5, 3))  # a fixed batch is fine
    assert (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("package", ["onnx", "ndonnx"])
def test_xnn_onnx_imports_without_onnx_and_export_says_how_to_install_it(package, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["{package}"] = None        # as if it were not installed
        import xnn, xnn.onnx
        from xnn import nn
        try:
            xnn.onnx.export(nn.Linear(2, 2), "never.onnx")
        except ImportError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert f"xnn.onnx.export needs the {package} package" in out
    assert xnn.extras.install_hint("onnx") in out


def test_importing_xnn_does_not_import_onnx():
    code = ("import sys, xnn, xnn.onnx; "
            "print(*(m in sys.modules for m in ('onnx', 'onnxruntime', 'ndonnx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False", "False"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xnn", "export-onnx", *map(str, args)],
                          capture_output=True, text=True)


def test_the_command_exports_a_checkpoint_that_onnx_runtime_runs_as_xnn(tmp_path):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.GELU(), nn.Dropout(0.2),
                          nn.Linear(8, 3), nn.LogSoftmax())
    model(xnn.random.normal((16, 4)))  # running statistics move
    xnn.save(tmp_path / "model.safetensors", model)
    done = _cli(tmp_path / "model.safetensors", tmp_path / "model.onnx")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    onnx.checker.check_model(onnx.load(tmp_path / "model.onnx"), full_check=True)
    model.eval()
    x = np.random.default_rng(0).normal(size=(17, 4)).astype(xnn.get_default_dtype())
    np.testing.assert_allclose(_runtime_output(tmp_path / "model.onnx", x),
                               xnn.to_numpy(model(xnn.asarray(x))), rtol=1e-5, atol=1e-6)


def test_the_command_exports_a_01_checkpoint_and_takes_an_input_shape(tmp_path):
    v01 = pathlib.Path(__file__).parent / "data" / "v01_checkpoint.npz"
    done = _cli(v01, tmp_path / "old.onnx", "--input-shape", ",4", "--opset", "21")
    assert done.returncode == 0, done.stderr
    proto = onnx.load(tmp_path / "old.onnx")
    assert proto.opset_import[0].version == 21
    assert [d.dim_value or d.dim_param for d in
            proto.graph.input[0].type.tensor_type.shape.dim] == ["batch", 4]
    expected = np.load(pathlib.Path(__file__).parent / "data" / "v01_predictions.npz")
    got = _runtime_output(tmp_path / "old.onnx", expected["inputs"])
    np.testing.assert_allclose(got, expected["outputs"], rtol=0,
                               atol=1e-12 * np.abs(expected["outputs"]).max())


MY_LAYERS = textwrap.dedent("""
    import xnn
    from xnn import nn


    class Cube(nn.Module):
        def forward(self, x):
            return x * x * x, lambda dy: 3 * x * x * dy
""")


def test_the_command_imports_the_modules_defining_custom_layers(tmp_path, monkeypatch):
    (tmp_path / "my_layers.py").write_text(MY_LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    import my_layers

    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 3), my_layers.Cube())
    xnn.save(tmp_path / "cube.safetensors", model)
    done = _cli(tmp_path / "cube.safetensors", tmp_path / "cube.onnx")
    assert done.returncode == 2 and "unknown layer class 'my_layers.Cube'" in done.stderr
    assert "(here: --import MODULE)" in done.stderr
    done = _cli(tmp_path / "cube.safetensors", tmp_path / "cube.onnx", "--import", "my_layers")
    assert done.returncode == 0, done.stderr
    x = np.random.default_rng(0).normal(size=(17, 3)).astype(xnn.get_default_dtype())
    np.testing.assert_allclose(_runtime_output(tmp_path / "cube.onnx", x),
                               xnn.to_numpy(model(xnn.asarray(x))), rtol=1e-5, atol=1e-6)


def test_the_command_says_in_one_line_what_is_wrong(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    done = _cli(tmp_path / "bad.safetensors", tmp_path / "out.onnx")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "xnn export-onnx: xnn.load:" in done.stderr and "bad.safetensors" in done.stderr
    done = _cli(tmp_path / "missing.safetensors", tmp_path / "out.onnx")
    assert done.returncode == 2 and "missing.safetensors" in done.stderr
    assert not (tmp_path / "out.onnx").exists()
