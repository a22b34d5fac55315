"""nn.Standardize: statistics fitted by adapt as StandardScaler fits them, kept as buffers that
training leaves alone, carried by checkpoints onto any backend, refused clearly before adapt."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn
from xnn.data import NotFittedError, StandardScaler

import catalogue
from conftest import load_or_skip


def _raw(rows: int = 40, seed: int = 0) -> np.ndarray:
    """Tabular-looking features: offsets and spreads far from 0 and 1, one constant feature."""
    X = np.random.default_rng(seed).normal([10.0, -3.0, 500.0], [2.0, 0.1, 80.0], (rows, 3))
    X[:, 1] = 7.0  # zero spread: left unscaled
    return X


def test_adapt_fits_the_statistics_standard_scaler_fits(backend, float64):
    X = xnn.asarray(_raw())
    layer = nn.Standardize(3).adapt(X)
    scaler = StandardScaler().fit(X)
    np.testing.assert_array_equal(xnn.to_numpy(layer.mean), xnn.to_numpy(scaler.mean))
    np.testing.assert_array_equal(xnn.to_numpy(layer.std), xnn.to_numpy(scaler.scale))
    assert xnn.to_numpy(layer.std)[1] == 1.0  # the constant feature is centred, not divided
    np.testing.assert_array_equal(xnn.to_numpy(layer(X)), xnn.to_numpy(scaler.transform(X)))
    assert xnn.backend.array_namespace(layer.mean) is backend.xp


def test_forward_standardizes_and_backprop_divides_by_std(backend, float64):
    layer = nn.Standardize(3, mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 0.5])
    y, backprop = layer.forward(xnn.asarray([[3.0, 2.0, 4.0]]))
    np.testing.assert_array_equal(xnn.to_numpy(y), [[1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(xnn.to_numpy(backprop(xnn.asarray([[1.0, 1.0, 1.0]]))),
                                  [[0.5, 0.25, 2.0]])
    assert layer.parameters() == [] and list(layer.state_dict()) == ["mean", "std"]


def test_a_layer_never_adapted_refuses_to_run_and_to_export_saying_to_call_adapt(backend,
                                                                                  tmp_path):
    model = nn.Sequential(nn.Standardize(3), nn.Linear(3, 1))
    assert "Standardize(3, adapted=False)" in repr(model)
    with pytest.raises(NotFittedError, match=r"Standardize: .*call adapt\(X\)"):
        model(xnn.asarray(_raw(), dtype="float32"))
    with pytest.raises(NotFittedError, match=r"call adapt\(X\)"):
        xnn.predict(model, _raw())
    pytest.importorskip("onnx", reason="ONNX export needs onnx (the test extra has it)")
    with pytest.raises(xnn.onnx.ExportError, match=r"xnn.onnx.export: Standardize: .*adapt\(X\)"):
        xnn.onnx.export(model, tmp_path / "m.onnx")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's, on inf - inf
def test_adapt_refuses_bad_data_naming_what_is_wrong(backend):
    layer = nn.Standardize(3)
    X = xnn.asarray(_raw())
    with pytest.raises(ValueError, match=r"Standardize.adapt: expected 3 X features, got 4"):
        layer.adapt(xnn.asarray(np.ones((5, 4))))
    with pytest.raises(ValueError, match=r"Standardize.adapt: expected a 2-D X"):
        layer.adapt(xnn.asarray(np.ones(3)))
    with pytest.raises(TypeError, match=r"Standardize.adapt: expected a floating-point X"):
        layer.adapt(xnn.asarray(np.ones((5, 3), dtype=np.int64)))
    with pytest.raises(TypeError, match=r"Standardize.adapt: X cannot be used as data"):
        layer.adapt([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"non-empty"):
        layer.adapt(xnn.asarray(np.ones((0, 3))))
    bad = _raw()
    bad[4, 2], bad[7, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"Standardize.adapt: X has NaN or Inf in feature\(s\) "
                                         r"\[0, 2\]"):
        layer.adapt(xnn.asarray(bad))
    assert layer.mean is None  # a refused adapt leaves the layer as it was
    layer.adapt(X)
    with pytest.raises(ValueError, match="expected 3 X features"):
        layer.adapt(xnn.asarray(np.ones((5, 2))))
    assert layer(xnn.asarray(_raw(), dtype=layer.dtype)).shape == (40, 3)


def test_adapt_takes_data_of_any_backend_and_keeps_the_statistics_where_they_are(backend):
    layer = nn.Standardize(3).adapt(_raw())  # NumPy data: statistics on the active backend
    assert xnn.backend.array_namespace(layer.mean) is backend.xp
    assert xnn.backend.dtype_name(layer.mean.dtype) == xnn.get_default_dtype()
    with xnn.use_backend("numpy"):
        layer.adapt(_raw(seed=1))  # adapting again: they stay where they are
    assert xnn.backend.array_namespace(layer.std) is backend.xp
    scaler = StandardScaler().fit(_raw(seed=1))
    np.testing.assert_allclose(xnn.to_numpy(layer.mean), scaler.mean, rtol=1e-6)


def test_adapt_takes_lists_and_dataframes_as_fit_does(backend):
    pandas = pytest.importorskip("pandas", reason="DataFrames need pandas")
    raw = _raw()
    want = xnn.to_numpy(nn.Standardize(3).adapt(xnn.asarray(raw)).std)
    for data in (raw.tolist(), pandas.DataFrame(raw, columns=["a", "b", "c"])):
        layer = nn.Standardize(3).adapt(data)
        assert xnn.backend.array_namespace(layer.std) is backend.xp
        np.testing.assert_allclose(xnn.to_numpy(layer.std), want, rtol=1e-6)


def test_training_leaves_the_statistics_alone(backend):
    X, y = _raw(64), np.random.default_rng(3).normal(size=(64, 1))
    xnn.seed(0)
    model = nn.Sequential(nn.Standardize(3).adapt(X), nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    before = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.Adam(
        model.parameters(), lr=0.05, weight_decay=0.1), epochs=3, batch_size=16, progress=False)
    after = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    for name in ("0.mean", "0.std"):
        np.testing.assert_array_equal(after[name], before[name])
    assert not np.array_equal(after["1.weight"], before["1.weight"])


@pytest.mark.parametrize("target", ["numpy", "array_api_strict", "torch"])
def test_checkpoints_carry_the_statistics_onto_another_backend(backend, tmp_path, target):
    load_to = load_or_skip(target)
    X = _raw()
    xnn.seed(0)
    model = nn.Sequential(nn.Standardize(3).adapt(X), nn.Linear(3, 2))
    xnn.save(tmp_path / "m.xnn", model)
    loaded = xnn.load(tmp_path / "m.xnn", backend=load_to).model
    assert repr(loaded) == repr(model)
    assert xnn.backend.array_namespace(loaded[0].mean) is load_to.xp
    np.testing.assert_array_equal(xnn.to_numpy(loaded[0].std), xnn.to_numpy(model[0].std))
    with xnn.use_backend(load_to):
        np.testing.assert_allclose(xnn.to_numpy(xnn.predict(loaded, X)),
                                   xnn.to_numpy(xnn.predict(model, X)), rtol=1e-6,
                                   atol=1e-7)  # float32 sums in another order, near zero


def test_a_layer_saved_before_adapt_loads_still_waiting_for_adapt(backend, tmp_path):
    xnn.save(tmp_path / "m.xnn", nn.Sequential(nn.Standardize(3, dtype="float64")))
    layer = xnn.load(tmp_path / "m.xnn").model[0]
    assert layer.mean is None and layer.dtype == "float64"
    with pytest.raises(NotFittedError):
        layer(xnn.asarray(_raw()))
    assert xnn.backend.dtype_name(layer.adapt(_raw()).mean.dtype) == "float64"


def test_model_to_casts_and_moves_the_statistics_and_the_file_follows(backend, tmp_path):
    model = nn.Sequential(nn.Standardize(3).adapt(_raw()), nn.Linear(3, 1))
    with xnn.use_backend("numpy"):
        model.to("numpy", dtype="float64")
        xnn.save(tmp_path / "m.xnn", model)
        loaded = xnn.load(tmp_path / "m.xnn").model[0]
    assert type(loaded.mean) is np.ndarray and loaded.mean.dtype == np.float64
    assert loaded.dtype == "float64"


def test_the_constructor_refuses_statistics_it_cannot_use(backend):
    with pytest.raises(ValueError, match="give both mean and std"):
        nn.Standardize(3, mean=0.0)
    with pytest.raises(ValueError, match=r"std finite and positive"):
        nn.Standardize(3, mean=0.0, std=[1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"mean must be finite"):
        nn.Standardize(3, mean=[0.0, float("nan"), 1.0], std=1.0)
    with pytest.raises(ValueError, match=r"mean must be a number or have shape \(3,\), got "
                                         r"shape \(2,\)"):
        nn.Standardize(3, mean=[0.0, 1.0], std=1.0)
    with pytest.raises(TypeError, match="std must be a number or an array-like of numbers"):
        nn.Standardize(3, mean=0.0, std="wide")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'.*got 'int32'"):
        nn.Standardize(3, dtype="int32")
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        nn.Standardize(0)
    layer = nn.Standardize(3, mean=2.0, std=4.0)  # numbers apply to every feature
    np.testing.assert_array_equal(xnn.to_numpy(layer(xnn.asarray(np.full((1, 3), 6.0),
                                                                  dtype=layer.dtype))),
                                  [[1.0, 1.0, 1.0]])


def test_the_catalogue_adapts_layers_fitted_from_data():
    layer = catalogue.construct(nn.Standardize, 5)
    assert layer.mean is not None and not np.allclose(xnn.to_numpy(layer.mean), 0.0)
