"""The first network end to end: XOR trains on every backend, and the example runs."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import xor  # noqa: E402


def test_xor_trains_to_within_a_tenth_of_the_truth(backend):
    model, losses = xor.train(epochs=2000, lr=3.0)
    pred = xnn.to_numpy(model(xnn.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")))
    np.testing.assert_allclose(pred[:, 0], [0, 1, 1, 0], atol=0.1)
    assert losses[-1] < losses[0] / 10


def test_xor_loss_curve_is_identical_on_numpy_and_backend(backend):
    _, here = xor.train(epochs=1000)
    with xnn.use_backend("numpy"):
        _, reference = xor.train(epochs=1000)
    np.testing.assert_allclose(here, reference, rtol=1e-4)


def test_xor_example_prints_four_predictions(tmp_path):
    pytest.importorskip("matplotlib", reason="the example plots with matplotlib (xnn[plot])")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "xor.py"), "--backend",
                          "array_api_strict", "--epochs", "2000", "--lr", "3", "--out",
                          str(tmp_path)], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if " xor " in line and "->" in line]
    assert len(lines) == 4
    preds = [float(line.rsplit(" ", 1)[1]) for line in lines]
    np.testing.assert_allclose(preds, [0, 1, 1, 0], atol=0.1)
    assert "array_api_strict" in out
