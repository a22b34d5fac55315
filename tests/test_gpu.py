"""GPU-only behaviour: a training step on CuPy never waits for the device.

Skipped with a reason where CuPy or a GPU is missing; XNN_REQUIRE_GPU=1 turns that into a failure.
CuPy's detector (cupyx.allow_synchronize) sees only syncs through ndarray.get(); the CPU guard
in test_sync_guard.py sees every read-back, and these tests run the same cases on the GPU.
Behaviour every backend shares (dropout masks, take_rows bounds, lists of scalars) is tested
on cupy too, through the backend fixture of the other test files.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import xnn
from xnn import losses, nn, optim

from conftest import load_or_skip
from training_steps import CLIPPING, LAYERS, LOSSES, OPTIMIZERS, Data, mlp, step

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy_backend():
    b = load_or_skip("cupy")
    with xnn.use_backend(b):
        yield b


@contextlib.contextmanager
def no_sync():
    """Any device-to-host wait inside raises cupyx.DeviceSynchronized."""
    cupyx = pytest.importorskip("cupyx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # allow_synchronize is deprecated in CuPy 14, still works
        with cupyx.allow_synchronize(False):
            yield


def _no_sync_after_warm_up(train_step) -> None:
    train_step()  # kernel compiles and first-call caches
    with no_sync():
        train_step()


@pytest.mark.parametrize("case", [c for c in LOSSES if LOSSES[c][3] == 0])
def test_a_step_of_each_loss_on_cupy_does_not_synchronize(cupy_backend, case):
    make_loss, target, last, _ = LOSSES[case]
    d = Data.make()
    _no_sync_after_warm_up(step(nn.Sequential(nn.Linear(8, 4), last()), make_loss(d), d.X,
                                getattr(d, target)))


@pytest.mark.parametrize("case", OPTIMIZERS)
def test_a_step_of_each_optimizer_on_cupy_does_not_synchronize(cupy_backend, case):
    d = Data.make()
    _no_sync_after_warm_up(step(mlp(), losses.MSELoss(), d.X, d.values, OPTIMIZERS[case]))


@pytest.mark.parametrize("case", CLIPPING)
def test_gradient_clipping_on_cupy_does_not_synchronize(cupy_backend, case):
    d = Data.make()
    _no_sync_after_warm_up(step(mlp(), losses.MSELoss(), d.X, d.values, optim.Adam,
                                after_backprop=CLIPPING[case]))


@pytest.mark.parametrize("case", LAYERS)
def test_a_step_through_each_layer_on_cupy_does_not_synchronize(cupy_backend, case):
    d = Data.make()
    model = nn.Sequential(nn.Linear(8, 8), LAYERS[case](), nn.Linear(8, 4))
    _no_sync_after_warm_up(step(model, losses.MSELoss(), d.X, d.values))


def test_the_cupy_backend_prints_as_its_device_index_and_round_trips(cupy_backend):
    assert str(cupy_backend) == f"cupy:{cupy_backend.device.id}"
    assert xnn.set_backend(str(cupy_backend)) == cupy_backend
    assert hash(cupy_backend) == hash(xnn.set_backend("cupy", "cuda"))


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_training_step_on_cupy_does_not_synchronize(cupy_backend, optimizer):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.LayerNorm(32), nn.Linear(32, 32),
                          nn.Tanh(), nn.Linear(32, 4))
    opt = getattr(xnn.optim, optimizer)(model.parameters(), lr=1e-3)
    X = xnn.asarray(np.random.default_rng(0).standard_normal((64, 8)), dtype="float32")
    labels = xnn.asarray(np.arange(64) % 4)
    loss_fn = xnn.losses.CrossEntropyLoss(validate=False)  # fit checks labels once, up front
    values = []
    with no_sync():
        for _ in range(3):
            pred, backprop = model.forward(X)
            value, dpred = loss_fn(pred, labels)
            backprop(dpred)
            xnn.optim.clip_grad_norm(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            values.append(value)
    curve = xnn.to_numpy(cupy_backend.xp.stack(values))
    assert curve[-1] < curve[0]


def test_fit_on_cupy_matches_numpy_in_float64(cupy_backend, float64):
    def run():
        xnn.seed(0)
        X, y = xnn.datasets.arithmetic(512, seed=1)
        model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
        h = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                    optimizer=xnn.optim.Adam(model.parameters(), lr=1e-3), epochs=3,
                    batch_size=64, progress=False)
        return h["loss"]

    gpu = run()
    with xnn.use_backend("numpy"):
        cpu = run()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-10)
