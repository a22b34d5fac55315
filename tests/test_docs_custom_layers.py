"""docs/custom-layers.md runs on every backend, and the gradient checks in it pass."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import xnn
from xnn.testing import GradcheckError, gradcheck

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "custom-layers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _run_doc() -> dict:
    namespace: dict = {"__name__": "custom_layers_doc"}
    for i, block in enumerate(BLOCKS):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_doc_has_code_that_calls_gradcheck():
    assert len(BLOCKS) >= 3
    assert any("assert gradcheck(" in block for block in BLOCKS)


def test_the_doc_code_runs_and_its_gradient_checks_pass(backend, capsys):
    ns = _run_doc()  # the doc's own asserts: gradcheck passes, the broken layer fails
    assert "PReLU(4)" in capsys.readouterr().out  # the model printed at the end
    model = ns["model"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                        "3.weight", "3.bias"]
    for p in model.parameters():
        assert xnn.backend.array_namespace(p.value) is backend.xp


def test_the_doc_prelu_passes_gradcheck_and_matches_its_formula(backend, float64):
    ns = _run_doc()
    layer = ns["PReLU"](3)
    layer.weight.value = xnn.asarray([0.1, -0.5, 2.0])
    host = np.array([[-1.0, -2.0, 3.0], [2.0, 1.5, -0.5]])
    x = xnn.asarray(host)
    assert gradcheck(layer, x)
    np.testing.assert_allclose(xnn.to_numpy(layer(x)),
                               np.where(host > 0, host, [0.1, -0.5, 2.0] * host))
    with pytest.raises(ValueError, match=r"^PReLU: expected 3 input features, got 4 \(input shape "
                                         r"\(2, 4\)\)$"):
        layer(xnn.asarray(np.ones((2, 4))))
    with pytest.raises(TypeError, match=r"^PReLU: expected a float\d\d input like the parameters"):
        layer(xnn.asarray(np.ones((2, 3)), dtype="float32" if "64" in str(x.dtype) else "float64"))


def test_the_doc_broken_layer_is_caught_with_a_report(backend, float64):
    ns = _run_doc()
    with pytest.raises(GradcheckError, match=r"ForgetfulLeakyReLU: backprop disagrees .* at "
                                             r"input\[\d, \d\]"):
        gradcheck(ns["ForgetfulLeakyReLU"](), ns["x"])


def test_the_doc_noise_layer_is_seeded_and_off_in_eval_mode(backend, float64):
    ns = _run_doc()
    noise, x = ns["GaussianNoise"](0.5), ns["x"]
    xnn.seed(3)
    a = xnn.to_numpy(noise(x))
    xnn.seed(3)
    np.testing.assert_array_equal(xnn.to_numpy(noise(x)), a)
    assert not np.allclose(a, xnn.to_numpy(x))
    np.testing.assert_array_equal(xnn.to_numpy(noise.eval()(x)), xnn.to_numpy(x))


def test_the_doc_prelu_round_trips_through_a_checkpoint_and_exports(backend, capsys):
    pytest.importorskip("onnxruntime", reason="the test extra installs onnxruntime")
    ns = _run_doc()
    net, loaded = ns["net"], ns["loaded"]
    assert type(loaded[1]) is ns["PReLU"] and loaded[1].num_features == 4
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(loaded.state_dict()[name]),
                                      xnn.to_numpy(value))
    printed = capsys.readouterr().out
    assert "cannot describe Scaled.fn" in printed and "ONNX Runtime agrees" in printed
    assert not hasattr(ns["PReLU"], "to_onnx")  # traced from its forward, no exporter code
