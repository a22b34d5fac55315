"""GPU-only behaviour: a training step on CuPy never waits for the device.

Skipped with a reason where CuPy or a GPU is missing; XNN_REQUIRE_GPU=1 turns that into a failure.
"""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn

from conftest import load_or_skip

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy_backend():
    b = load_or_skip("cupy")
    with xnn.use_backend(b):
        yield b


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_training_step_on_cupy_does_not_synchronize(cupy_backend, optimizer):
    cupyx = pytest.importorskip("cupyx")
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.LayerNorm(32), nn.Linear(32, 32),
                          nn.Tanh(), nn.Linear(32, 4))
    opt = getattr(xnn.optim, optimizer)(model.parameters(), lr=1e-3)
    X = xnn.asarray(np.random.default_rng(0).standard_normal((64, 8)), dtype="float32")
    labels = xnn.asarray(np.arange(64) % 4)
    loss_fn = xnn.losses.CrossEntropyLoss(validate=False)  # fit checks labels once, up front
    values = []
    with cupyx.allow_synchronize(False):  # any device->host wait raises DeviceSynchronized
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
