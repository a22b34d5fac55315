"""A layer is one file and its public name: the test catalogues find a new activation registered
in xnn.nn without being listed, and a layer written outside xnn, with a validated constructor
argument, trains, saves, loads (through its constructor's check) and runs in parity without
registering anything."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import numpy as np
import pytest

import xnn
import xnn.parity
from xnn import losses, nn, optim
from xnn.io import CheckpointError

import catalogue

SOFTSIGN = textwrap.dedent('''
    """y = x / (1 + |x|): a new activation, one file, as a contributor adds it to xnn.nn."""
    import xnn
    from xnn.nn.module import Module


    class Softsign(Module):
        """y = x / (1 + |x|), elementwise."""

        def forward(self, x):
            xp = xnn.expect(self, x)
            d = 1 + xp.abs(x)
            return x / d, lambda dy: dy / (d * d)   # dy/dx = 1 / (1 + |x|)^2
''')


@pytest.fixture
def softsign(tmp_path, monkeypatch):
    """Softsign, defined in a module of its own and made a public name of xnn.nn."""
    (tmp_path / "softsign_layer.py").write_text(SOFTSIGN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = importlib.import_module("softsign_layer").Softsign
    monkeypatch.setattr(nn, "Softsign", cls, raising=False)
    monkeypatch.setattr(nn, "__all__", [*nn.__all__, "Softsign"])
    yield cls
    sys.modules.pop("softsign_layer", None)


def _catalogues():
    """Each test module's layer catalogue, as its parametrization reads it."""
    import test_hardening_fuzz
    import test_io
    import test_layers
    import training_steps

    found = {"sync guard": training_steps.layer_cases(),
             "gradcheck": {c.name: (lambda c=c: c.make(4)) for c in test_layers.gradcheck_cases()},
             "fuzz": {k: make for k, (make, _) in test_hardening_fuzz.layer_cases().items()},
             "checkpoints": test_io.checkpoint_cases()}
    try:
        import test_onnx
    except pytest.skip.Exception:  # without onnx or onnxruntime its tests skip too
        return found
    return {**found, "onnx": test_onnx.layer_cases()}


def test_a_new_activation_is_in_every_layer_catalogue(softsign):
    for name, cases in _catalogues().items():
        assert isinstance(cases.get("Softsign", lambda: None)(), softsign), name
    import test_sync_guard

    test_sync_guard.test_every_public_loss_optimizer_clipping_and_layer_has_a_case(
        catalogue.public_classes(nn, nn.Module), _catalogues()["sync guard"])


def test_without_its_public_name_no_catalogue_has_it(softsign, monkeypatch):
    monkeypatch.setattr(nn, "__all__", [n for n in nn.__all__ if n != "Softsign"])
    assert all("Softsign" not in cases for cases in _catalogues().values())


def test_a_new_activation_passes_the_checks_its_catalogues_run(softsign, tmp_path, monkeypatch):
    import test_hardening_fuzz
    import test_io

    import test_layers

    xnn.seed(0)
    test_io.assert_round_trips(softsign(), tmp_path / "m.safetensors")
    (case,) = [c for c in test_layers.gradcheck_cases() if c.name == "Softsign"]
    with xnn.use_default_dtype("float64"):
        test_layers.test_layer_backprop_matches_finite_differences(xnn.get_backend(), None, case)
    monkeypatch.setitem(test_hardening_fuzz.LAYERS, "Softsign",
                        test_hardening_fuzz.layer_cases()["Softsign"])
    test_hardening_fuzz.test_layer_forward_and_backprop_work_or_refuse_clearly(
        xnn.get_backend(), "Softsign")  # hypothesis draws the inputs
    xps = pytest.importorskip("array_api_strict")
    import test_sync_guard

    with xnn.use_backend("array_api_strict", "device1"):
        assert test_sync_guard.layer_step_events(softsign) == []
    del xps
    test_onnx = pytest.importorskip("test_onnx")
    model = test_onnx.NESTINGS["in Sequential"](softsign())
    test_onnx.assert_exports(model, tmp_path / "m.onnx", (test_onnx.WIDTH,), "float32")


def test_the_onnx_catalogue_refuses_a_new_activation_ndonnx_cannot_trace(softsign, tmp_path):
    test_onnx = pytest.importorskip("test_onnx")

    class Bare(softsign):
        def forward(self, x):  # a decision on a value: no graph can hold it
            y, backprop = super().forward(x)
            return (y if float(xnn.expect(self, x).max(x)) > 0 else -y), backprop

    model = test_onnx.NESTINGS["in Sequential"](Bare())
    with pytest.raises(xnn.onnx.ExportError, match="Bare.forward cannot be traced"):
        test_onnx.assert_exports(model, tmp_path / "m.onnx", (test_onnx.WIDTH,), "float32")


# --- a layer written outside xnn, with a validated constructor argument -----------------------

class Gain(nn.Module):
    """y = gain * x + shift, one learned shift per feature; gain is a positive number."""

    def __init__(self, features: int, gain: float = 2.0, dtype=None):
        self.features = xnn.integer(self, "features", features, low=1)
        self.gain = xnn.number(self, "gain", gain, low=0.0, low_open=True)
        self.shift = nn.Parameter(nn.init.zeros((features,), dtype))

    def forward(self, x):
        xp = xnn.expect(self, x, like=self.shift.value, ndim=2, features=self.features)

        def backprop(dy):
            self.shift.accumulate(xp.sum(dy, axis=0))   # dL/dshift = sum of dy over the batch
            return dy * self.gain                        # dL/dx = gain dy

        return x * self.gain + self.shift.value, backprop


def _gain_model():
    return nn.Sequential(nn.Linear(3, 4), Gain(4, gain=0.5), nn.Tanh(), nn.Linear(4, 1))


def _regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    return X, X @ np.array([[0.5], [-1.0], [0.25]])


def test_a_layer_written_outside_xnn_trains_saves_and_loads(backend, tmp_path):
    xnn.seed(0)
    model = _gain_model()
    X, y = _regression()
    history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.Adam(
        model.parameters(), lr=0.01), epochs=5, batch_size=16, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert np.abs(xnn.to_numpy(model[1].shift.value)).sum() > 0  # its parameter trained
    xnn.save(tmp_path / "m.safetensors", model)
    loaded = xnn.load(tmp_path / "m.safetensors").model
    assert type(loaded[1]) is Gain and loaded[1].gain == 0.5
    x = xnn.asarray(X[:5], dtype=model[0].weight.dtype)
    np.testing.assert_array_equal(xnn.to_numpy(loaded(x)), xnn.to_numpy(model(x)))


def test_a_crafted_checkpoint_is_refused_by_the_outside_layers_constructor(tmp_path):
    from safetensors.numpy import save_file

    xnn.seed(0)
    xnn.save(tmp_path / "m.safetensors", _gain_model())
    header, tensors = xnn.io.read_tensors(tmp_path / "m.safetensors")
    architecture = json.loads(header["architecture"])
    entry = next(m for m in architecture["modules"] if m["class"].endswith(".Gain"))
    entry["arguments"]["gain"] = -1.0
    header["architecture"] = json.dumps(architecture)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=header)
    with pytest.raises(ValueError) as refused:
        Gain(4, gain=-1.0)
    with pytest.raises(CheckpointError) as err:
        xnn.load(tmp_path / "bad.safetensors")
    assert str(refused.value) in str(err.value) and "bad.safetensors" in str(err.value)


def test_a_layer_written_outside_xnn_runs_in_parity():
    pytest.importorskip("array_api_strict")
    X, y = _regression()
    report = xnn.parity.compare_backends(
        _gain_model, X, y, loss=losses.MSELoss(), optimizer=lambda ps: optim.SGD(ps, lr=0.05),
        steps=5, backends=("numpy", "array_api_strict"), batch_size=16)
    assert report.passed()
    assert {d.name for d in report.diffs} >= {"1.shift"}  # Gain's parameter was compared


# --- losses and optimizers are discovered the same way -----------------------------------------

class HalvedMSELoss(losses.MSELoss):
    """Half the mean squared error: a new loss made public in xnn.losses by the test."""

    def __call__(self, pred, target):
        value, grad = super().__call__(pred, target)
        return value / 2, grad / 2


class PlainSGD(optim.SGD):
    """SGD without its options: a new optimizer made public in xnn.optim by the test."""

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, lr)


def test_a_new_loss_and_optimizer_are_in_every_catalogue(monkeypatch):
    import test_hardening_fuzz
    import training_steps

    for namespace, cls in ((losses, HalvedMSELoss), (optim, PlainSGD)):
        monkeypatch.setattr(namespace, cls.__name__, cls, raising=False)
        monkeypatch.setattr(namespace, "__all__", [*namespace.__all__, cls.__name__])
    make_loss, target, last, reads = training_steps.loss_cases()["HalvedMSELoss"]
    assert isinstance(make_loss(None), HalvedMSELoss) and (target, last, reads) == (
        "values", nn.Identity, 0)
    assert test_hardening_fuzz.loss_cases(classwise=False)["HalvedMSELoss"] is HalvedMSELoss
    assert "HalvedMSELoss" not in test_hardening_fuzz.loss_cases(classwise=True)
    params = nn.Linear(2, 2).parameters()
    assert isinstance(training_steps.optimizer_cases()["PlainSGD"](params), PlainSGD)
    assert catalogue.optimizer_classes()["PlainSGD"] is PlainSGD  # the fuzz test's list


def test_a_layer_fitted_from_data_comes_adapted_from_every_catalogue():
    for name, cases in _catalogues().items():
        layer = cases["Standardize"]()
        assert isinstance(layer, nn.Standardize) and layer.mean is not None, name
        assert not np.allclose(xnn.to_numpy(layer.std), 1.0), name  # a sample's, not identity
