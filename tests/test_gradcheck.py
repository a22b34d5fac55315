"""The gradient checker passes correct backprop and catches wrong backprop with a clear report."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn
from xnn.nn.module import Module
from xnn.testing import GradcheckError, gradcheck


def _x(shape=(4, 3), seed=1):
    return xnn.asarray(np.random.default_rng(seed).standard_normal(shape), dtype="float64")


def test_gradcheck_passes_a_correct_network(backend, float64):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid())
    assert gradcheck(model, _x())


def test_gradcheck_passes_a_correct_loss(backend, float64):
    assert gradcheck(xnn.losses.MSELoss(), _x((4, 2), 1), _x((4, 2), 2))


class _WrongTanh(Module):
    def forward(self, x):
        y = xnn.backend.array_namespace(x).tanh(x)
        return y, lambda dy: dy * (1 - y)  # wrong: should be 1 - y^2


def test_gradcheck_reports_the_worst_input_entry(backend, float64):
    with pytest.raises(GradcheckError, match=r"_WrongTanh: backprop disagrees .* at input\[\d, \d\]"):
        gradcheck(_WrongTanh(), _x())


class _ForgetsBias(nn.Linear):
    def forward(self, x):
        y, backprop = super().forward(x)

        def wrong(dy):
            dx = backprop(dy)
            self.bias.grad = self.bias.grad * 2
            return dx

        return y, wrong


def test_gradcheck_checks_every_parameter(backend, float64):
    xnn.seed(0)
    with pytest.raises(GradcheckError, match=r"at bias\[\d\]"):
        gradcheck(_ForgetsBias(3, 2), _x())
    assert gradcheck(_ForgetsBias(3, 2), _x(), raise_exception=False) is False


def test_gradcheck_leaves_parameters_unchanged(backend, float64):
    xnn.seed(0)
    layer = nn.Linear(3, 2)
    before = xnn.to_numpy(layer.weight.value)
    gradcheck(layer, _x())
    np.testing.assert_array_equal(xnn.to_numpy(layer.weight.value), before)
    assert layer.weight.grad is None


def test_gradcheck_refuses_float32(backend):
    with pytest.raises(TypeError, match="float64.*float32"):
        gradcheck(nn.Linear(3, 2), xnn.asarray(np.ones((2, 3)), dtype="float32"))
