"""Defects found at xnn's boundary, each pinned: data that must be accepted (big-endian, memmap),
data that must be refused (probabilities out of range) or made plain (tensors that require
grad), labels in narrow dtypes, and settings that were accepted but not supported."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import xnn
import xnn.testing
from xnn import losses, nn


# --- torch tensors that require grad -------------------------------------------------------------

@pytest.fixture
def torch_backend():
    torch = pytest.importorskip("torch")
    with xnn.use_backend("torch", "cpu"):
        yield torch


def test_asarray_gives_a_plain_copy_of_a_tensor_that_requires_grad(torch_backend):
    source = torch_backend.ones(3, 2, requires_grad=True)
    copy = xnn.asarray(source)
    assert not copy.requires_grad and copy.grad_fn is None
    with xnn.use_backend("numpy"):
        assert isinstance(xnn.asarray(source), np.ndarray)


def test_loaded_state_that_requires_grad_leaves_parameters_plain(torch_backend):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    state = {k: torch_backend.zeros_like(v, dtype=torch_backend.float32).requires_grad_(True)
             for k, v in model.state_dict().items() if v.is_floating_point()}
    model.load_state_dict(state, strict=False)
    assert not any(v.requires_grad for v in model.state_dict().values())


def test_training_on_data_that_requires_grad_keeps_parameters_plain(torch_backend):
    torch = torch_backend
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = xnn.optim.SGD(model.parameters(), lr=0.1)
    X = xnn.asarray(torch.randn(8, 2, requires_grad=True))  # the way in: a plain copy
    y = xnn.asarray(torch.randn(8, 1, requires_grad=True))
    for _ in range(3):
        pred, backprop = model.forward(X)
        backprop(xnn.losses.MSELoss()(pred, y)[1])
        opt.step()
        opt.zero_grad()
    assert not any(p.value.requires_grad for p in model.parameters())


def test_fit_and_evaluate_take_data_that_requires_grad_and_keep_parameters_plain(torch_backend):
    torch = torch_backend
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    X, y = torch.randn(8, 2, requires_grad=True), torch.randn(8, 1, requires_grad=True)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(), epochs=3, batch_size=4,
                      optimizer=xnn.optim.Adam(model.parameters()), progress=False)
    assert len(history["loss"]) == 3
    assert "loss" in xnn.evaluate(model, X, y, loss=losses.MSELoss())
    assert not any(p.value.requires_grad or p.value.grad_fn for p in model.parameters())


@pytest.mark.parametrize("layer", [lambda: nn.Linear(2, 1), nn.ReLU, lambda: nn.LayerNorm(2)])
def test_layers_refuse_a_tensor_that_requires_grad_saying_how_to_fix_it(torch_backend, layer):
    x = torch_backend.ones(3, 2, requires_grad=True)
    made = layer()
    with pytest.raises(TypeError, match=rf"^{type(made).__name__}: the input is a torch tensor "
                                        r"that requires grad; .*pass it detached"):
        made(x)


def test_losses_refuse_a_target_that_requires_grad(torch_backend):
    pred = xnn.asarray(np.zeros((3, 1)))
    with pytest.raises(TypeError, match=r"^MSELoss: the target is a torch tensor that requires"):
        losses.MSELoss()(pred, torch_backend.zeros(3, 1, requires_grad=True))


# --- valid data that was refused -------------------------------------------------------------------

def _big_endian(shape=(6, 2)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=">f4").reshape(shape) / 10


def test_asarray_of_big_endian_data_is_native_on_every_backend(backend):
    x = xnn.asarray(_big_endian())
    host = xnn.to_numpy(x)
    assert host.dtype == np.float32 and host.dtype.isnative
    np.testing.assert_array_equal(host, _big_endian().astype(np.float32))


def test_layers_and_losses_take_big_endian_numpy_arrays():
    with xnn.use_backend("numpy"):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        native = _big_endian().astype(np.float32)
        np.testing.assert_array_equal(model(_big_endian()), model(native))
        value, _ = losses.MSELoss()(model(native), _big_endian((6, 1)))
        assert value.dtype == np.float32


def _memmap(tmp_path, values: np.ndarray) -> np.memmap:
    m = np.memmap(tmp_path / f"{values.shape}.dat", dtype=values.dtype, mode="w+",
                  shape=values.shape)
    m[:] = values
    return m


def test_fit_trains_on_memmap_and_big_endian_data_as_on_plain_arrays(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 2)).astype(np.float32), rng.standard_normal((32, 1))

    def train(X, y):
        xnn.seed(1)
        model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
        return xnn.fit(model, X, y, loss=losses.MSELoss(), epochs=3, batch_size=8,
                       optimizer=xnn.optim.Adam(model.parameters()), progress=False)["loss"]

    with xnn.use_backend("numpy"):
        plain = train(X, y.astype(np.float32))
        np.testing.assert_array_equal(train(_memmap(tmp_path, X), _memmap(tmp_path, y)), plain)
        np.testing.assert_array_equal(train(X.astype(">f4"), y.astype(">f8")), plain)


def test_layers_take_a_memmap_input(tmp_path):
    with xnn.use_backend("numpy"):
        layer = nn.Linear(2, 1)
        x = np.ones((4, 2), np.float32)
        np.testing.assert_array_equal(layer(_memmap(tmp_path, x)), layer(x))


# --- values that were computed wrong or not refused ------------------------------------------------

@pytest.mark.parametrize("loss", [losses.CrossEntropyLoss, losses.NLLLoss])
def test_class_losses_take_uint8_labels_with_more_than_256_classes(backend, loss):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((6, 300))
    if loss is losses.NLLLoss:
        scores = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    labels = np.array([0, 255, 1, 200, 17, 254], dtype=np.uint8)
    pred = xnn.asarray(scores, dtype="float64")
    narrow = loss()(pred, xnn.asarray(labels))
    wide = loss()(pred, xnn.asarray(labels.astype(np.int64)))
    np.testing.assert_allclose(xnn.to_numpy(narrow[0]), xnn.to_numpy(wide[0]), rtol=1e-14)
    np.testing.assert_allclose(xnn.to_numpy(narrow[1]), xnn.to_numpy(wide[1]), rtol=1e-14)


@pytest.mark.parametrize("bad, shown", [(1.5, r"\[0, 1.5\]"), (-0.25, r"\[-0.25, 1\]"),
                                        (float("nan"), r"\[nan, nan\]")])
def test_bce_refuses_predictions_outside_0_1_as_torch_does(backend, bad, shown):
    pred = xnn.asarray([[0.0], [1.0], [bad]], dtype="float32")
    target = xnn.asarray([[0.0], [1.0], [1.0]], dtype="float32")
    with pytest.raises(ValueError, match=rf"^BCELoss: expected probabilities in \[0, 1\] "
                                         rf"\(a sigmoid's output\), got values in {shown}.*"
                                         rf"BCEWithLogitsLoss$"):
        losses.BCELoss()(pred, target)
    value, _ = losses.BCELoss(validate=False)(pred, target)  # the caller vouches for them


def test_bce_takes_the_ends_of_0_1_and_an_empty_batch(backend):
    value, _ = losses.BCELoss()(xnn.asarray([[0.0, 1.0]]), xnn.asarray([[0.0, 1.0]]))
    assert float(xnn.to_numpy(value)) == 0.0
    losses.BCELoss(reduction="sum")(xnn.asarray(np.zeros((0, 1))), xnn.asarray(np.zeros((0, 1))))


@pytest.mark.parametrize("dtype", ["float16", "int32", "bool", np.int64])
@pytest.mark.parametrize("make", [lambda d: nn.Linear(2, 3, dtype=d),
                                  lambda d: nn.BatchNorm1d(3, dtype=d),
                                  lambda d: nn.LayerNorm(3, dtype=d),
                                  lambda d: nn.Standardize(3, dtype=d)],
                         ids=["Linear", "BatchNorm1d", "LayerNorm", "Standardize"])
def test_layers_with_parameters_refuse_a_dtype_they_cannot_train_in(make, dtype):
    """The constructor's dtype, as Module.to's: float32 or float64 (an int layer cannot learn)."""
    with pytest.raises(ValueError, match=r"^\w+: dtype must be 'float32' or 'float64' \(or None, "
                                         r"xnn's default\), got "):
        make(dtype)
    make("float64")  # the float dtypes are taken


@pytest.mark.parametrize("dtype", ["float16", "int32", "bool"])
def test_module_to_refuses_dtypes_other_than_float32_and_float64(dtype):
    model = nn.Linear(2, 1)
    before = model.weight.value
    with pytest.raises(ValueError, match=rf"Linear.to: dtype must be a float dtype "
                                         rf"\(float32 or float64\), got {dtype}"):
        model.to(dtype=dtype)
    assert model.weight.value is before


# --- threads ---------------------------------------------------------------------------------------

LOAD_TORCH_WHILE_TRAINING = """
import threading, traceback
import numpy as np
import xnn
from xnn import nn

errors, done = [], threading.Event()

def train():
    with xnn.use_backend("numpy"):
        model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
        while not done.is_set():
            try:
                X = xnn.asarray([[1.0, 2.0]] * 8)  # a list: array-api-compat's type tests run
                xnn.fit(model, X, np.ones((8, 1)), loss=xnn.losses.MSELoss(), epochs=1,
                        optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), progress=False)
                xnn.to_numpy([1.0, 2.0])
            except Exception as err:
                errors.append(traceback.format_exception_only(err)[-1])

worker = threading.Thread(target=train)
worker.start()
xnn.set_backend("torch")  # the first import of torch, in this thread, while the other trains
done.set()
worker.join()
print(len(errors), errors[:1])
"""


def test_loading_torch_in_one_thread_does_not_break_another_threads_work():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", LOAD_TORCH_WHILE_TRAINING], capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr


def test_use_default_dtype_is_local_to_the_thread_that_enters_it():
    seen = []
    with xnn.use_default_dtype("float64"):
        worker = threading.Thread(target=lambda: seen.append(xnn.get_default_dtype()))
        worker.start()
        worker.join()
        assert xnn.get_default_dtype() == "float64"
        assert xnn.backend.dtype_name(xnn.asarray([1.5]).dtype) == "float64"
    assert seen == ["float32"] and xnn.get_default_dtype() == "float32"
    with pytest.raises(ValueError, match="default dtype must be one of"):
        with xnn.use_default_dtype("float16"):
            pass


def test_compare_backends_leaves_other_threads_default_dtype_alone():
    seen, started, finished = set(), threading.Event(), threading.Event()

    def watch():
        started.set()
        while not finished.is_set():
            seen.add(xnn.get_default_dtype())

    def build():
        started.wait(5)
        return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))

    X, y = xnn.datasets.xor(dtype="float64")
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        xnn.testing.compare_backends(build, X, y, loss=losses.MSELoss(), steps=20,
                                     optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.5),
                                     dtype="float64", backends=["numpy", "array_api_strict"])
    finally:
        finished.set()
        watcher.join()
    assert seen == {"float32"}
