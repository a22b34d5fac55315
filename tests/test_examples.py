"""Every example runs on every backend with few epochs, reaches its metric and writes its plots."""

from __future__ import annotations

import importlib
import pathlib
import sys

import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

pytest.importorskip("matplotlib", reason="the examples plot with matplotlib (xnn[plot])")

# example, extra arguments, the plots it writes, and what its returned metrics must satisfy
CASES = [
    ("linear_regression", ["--epochs", "150"], ["loss.png", "fit.png"],
     lambda m: abs(m["m"] - 2.0) < 0.05 and abs(m["b"] - 1.0) < 0.05),
    ("xor", ["--epochs", "2000", "--lr", "3"], ["loss.png", "decision_surface.png"],
     lambda m: m["max_error"] < 0.1),
    # the data's variance is about 68; lr 0.03 for 400 epochs was unstable (2.8 to 4.1 with
    # torch's thread count), 0.02 for 600 lands at 1.2-1.3 on every backend
    ("polynomial_regression", ["--epochs", "600", "--lr", "0.02"], ["loss.png", "fit.png"],
     lambda m: m["mse_truth"] < 2.0),
    ("deep_mlp", ["--epochs", "40", "--layer-dims", "2,16,8,1"],
     ["loss.png", "decision_surface.png"], lambda m: m["test_accuracy"] > 0.9),
    ("arithmetic", ["--epochs", "3"], ["loss.png"], lambda m: m["test_r2"] > 0.99),
    ("digits", ["--epochs", "8"], ["loss.png", "confusion_matrix.png"],
     lambda m: m["test_accuracy"] > 0.9),
    ("sklearn_pipeline", ["--epochs", "12", "--lr", "0.01"], ["loss_curves.png"],
     lambda m: m["test_accuracy"] > 0.9),
]


@pytest.mark.parametrize("name, args, plots, check", CASES, ids=[c[0] for c in CASES])
def test_example_reaches_its_metric_and_writes_its_plots(backend, tmp_path, capsys, name, args,
                                                         plots, check):
    if name in ("digits", "sklearn_pipeline"):
        pytest.importorskip("sklearn", reason=f"{name}.py loads scikit-learn's bundled data")
    example = importlib.import_module(name)
    metrics = example.main([*args, "--out", str(tmp_path), "--no-progress"])
    assert check(metrics), metrics
    for plot in plots:
        assert (tmp_path / plot).stat().st_size > 10_000, plot  # a real picture, not an empty file
    printed = capsys.readouterr().out
    assert backend.name in printed and "plots written" in printed


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "0"])
def test_examples_take_cuda_device_names_for_cupy(monkeypatch, device):
    from test_backend import _fake_cupy  # noqa: PLC0415 - a stand-in cupy module
    from _common import parse_args  # noqa: PLC0415 - examples/ is on the path above

    _fake_cupy(monkeypatch)
    parse_args("doc", epochs=1, lr=0.1, argv=["--backend", "cupy", "--device", device])
    assert str(xnn.get_backend()) == "cupy:0"


def test_examples_say_in_one_line_why_a_backend_cannot_run(capsys):
    from _common import parse_args  # noqa: PLC0415 - examples/ is on the path above

    with pytest.raises(SystemExit) as stop:
        parse_args("doc", epochs=1, lr=0.1, argv=["--backend", "torch", "--device", "nope"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: torch has no device 'nope'; expected 'cpu', 'cuda', 'cuda:N' or a GPU index N")
