"""The benchmark harness runs, and its three implementations compute the same training (no timing)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import run as bench  # noqa: E402
import workloads as W  # noqa: E402


def _tiny() -> dict[str, W.Workload]:
    suite = W.workloads(quick=True)
    return {
        "xor": replace(suite["xor"], epochs=30),
        "polynomial": replace(suite["polynomial"], epochs=10),
        "arithmetic": replace(suite["arithmetic"], epochs=1),   # 110 shuffled batches
        "mlp-large": replace(suite["mlp-large"], sizes=(784, 32, 32, 10),
                             data=W._mlp_data(256 * 3)),
    }


@pytest.mark.parametrize("name", ["xor", "polynomial", "arithmetic", "mlp-large"])
def test_three_implementations_train_to_the_same_loss(name):
    w, X, y, weights = W.load(_tiny()[name])
    orders = W.batch_orders(w)
    losses = {}
    for label, cls in {**W.IMPLEMENTATIONS, **W.EXTRAS}.items():
        trainer = cls(w, X, y, weights, orders)
        trainer.reset()
        losses[label] = trainer.run()
        trainer.reset()  # a second run from the same start repeats the first exactly
        assert trainer.run() == losses[label], label
    reference = losses["numpy"]
    for label, value in losses.items():
        if label == "xnn.fit":  # its own shuffle order; the same schedule otherwise
            assert np.isfinite(value)
            continue
        assert value == pytest.approx(reference, rel=1e-4), (label, losses)


def test_flops_count_leaves_out_the_first_layers_input_gradient():
    w = replace(W.workloads()["mlp-large"], n=256)
    forward = 2 * 256 * (784 * 1024 + 1024 * 1024 + 1024 * 10)
    assert w.flops_per_step() == 3 * forward - 2 * 256 * 784 * 1024


def test_report_renders_a_table_with_targets():
    w = _tiny()["xor"]
    row = bench.bench_workload(w, repeats=1, extras=False)
    results = {"command": "python benchmarks/run.py --test", "repeats": 1,
               "machine": {**bench.machine(1), "loadavg_end": 0.0}, "workloads": [row]}
    text = bench.report(results)
    assert "| xor" in text and "xnn/numpy" in text and "(<= 1.3:" in text


def test_memory_minimum_counts_parameters_three_times_plus_activations():
    w = replace(W.workloads()["mlp-large"], n=256)
    params = 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert bench.memory_minimum(w)["total"] == 4 * (3 * params + 256 * (1024 + 1024 + 10))
