"""The hot paths made cheap for performance behave exactly as the slow ones did: the skipped
input gradient (input_grad=False), the cached namespace and dtype checks, the fused bias add,
and the activations' cheaper formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xnn
from xnn import nn
from xnn.backend import array_namespace
from xnn.nn.module import accepts_input_grad


def _data(rows: int = 5, features: int = 3, seed: int = 0):
    g = np.random.default_rng(seed)
    return xnn.asarray(g.standard_normal((rows, features)), dtype="float32")


def _grads(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: xnn.to_numpy(p.grad) for name, p in model.named_parameters()}


class Scale(nn.Module):
    """A user's layer written the documented way: forward(self, x), no input_grad keyword."""

    def __init__(self) -> None:
        self.weight = nn.Parameter(xnn.asarray([2.0, 3.0, 4.0], dtype="float32"))

    def forward(self, x):
        xp = array_namespace(x)
        w = self.weight.value

        def backprop(dy):
            self.weight.accumulate(xp.sum(dy * x, axis=0))
            return dy * w

        return x * w, backprop


@pytest.mark.parametrize("first", ["linear", "custom"])
def test_input_grad_false_gives_the_same_parameter_gradients_and_no_input_gradient(backend,
                                                                                   first):
    xnn.seed(0)
    head = nn.Linear(3, 3) if first == "linear" else Scale()
    model = nn.Sequential(head, nn.Tanh(), nn.Linear(3, 2))
    x = _data()
    dy = xnn.asarray(np.ones((5, 2)), dtype="float32")
    y_full, backprop = model.forward(x)
    dx = backprop(dy)
    assert tuple(dx.shape) == (5, 3)
    full = _grads(model)
    model.zero_grad()
    y_skip, backprop = model.forward(x, input_grad=False)
    assert backprop(dy) is None
    np.testing.assert_array_equal(xnn.to_numpy(y_skip), xnn.to_numpy(y_full))
    skipped = _grads(model)
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name], err_msg=name)


def test_linear_alone_skips_the_input_gradient(backend):
    xnn.seed(1)
    layer = nn.Linear(3, 2)
    _, backprop = layer.forward(_data(), input_grad=False)
    assert backprop(xnn.asarray(np.ones((5, 2)), dtype="float32")) is None
    assert layer.weight.grad is not None and layer.bias.grad is not None


def test_which_forwards_take_input_grad():
    class Plain(nn.Linear):
        def forward(self, x):  # overrides without the keyword: never passed it
            return super().forward(x)

    assert accepts_input_grad(nn.Linear(2, 2))
    assert accepts_input_grad(nn.Sequential())
    assert not accepts_input_grad(nn.ReLU())
    assert not accepts_input_grad(Scale())
    assert not accepts_input_grad(Plain(2, 2))
    model = nn.Sequential(Plain(3, 2))
    _, backprop = model.forward(_data(), input_grad=False)
    assert backprop(xnn.asarray(np.ones((5, 2)), dtype="float32")) is None


def test_nested_sequential_passes_input_grad_down(backend):
    xnn.seed(2)
    inner = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    model = nn.Sequential(inner, nn.Linear(4, 1))
    calls = []
    forward = nn.Linear.forward

    def spy(self, x, *, input_grad=True):
        calls.append(input_grad)
        return forward(self, x, input_grad=input_grad)

    nn.Linear.forward = spy
    try:
        model.forward(_data(), input_grad=False)
    finally:
        nn.Linear.forward = forward
    assert calls == [False, True]


def test_linear_output_is_x_at_w_plus_b_and_leaves_the_parameters_alone(backend):
    xnn.seed(3)
    layer = nn.Linear(3, 2)
    before = {k: xnn.to_numpy(v) for k, v in layer.state_dict().items()}
    x = _data()
    y = layer(x)
    ref = xnn.to_numpy(x) @ before["weight"] + before["bias"]
    np.testing.assert_allclose(xnn.to_numpy(y), ref, rtol=1e-6, atol=1e-6)
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(v), before[k])


def test_cached_namespace_still_refuses_mixed_backends(backend):
    x = xnn.asarray([1.0, 2.0])
    assert array_namespace(x) is backend.xp
    assert array_namespace(x, x) is backend.xp
    with xnn.use_backend("array_api_strict", "device1" if backend.name == "numpy" else None):
        other = xnn.asarray([1.0, 2.0])
    if type(other) is not type(x):
        with pytest.raises(TypeError, match="different backends cannot be mixed"):
            array_namespace(x, other)


def test_checks_still_refuse_integers_after_accepting_floats(backend):
    layer, relu = nn.Linear(2, 2), nn.ReLU()
    good = xnn.asarray([[1.0, 2.0]], dtype="float32")
    layer(good), relu(good)
    ints = xnn.asarray([[1, 2]], dtype="int64")
    with pytest.raises(TypeError, match="expected a floating-point input"):
        layer(ints)
    with pytest.raises(TypeError, match="expected a floating-point input"):
        relu(ints)
    with pytest.raises(TypeError, match="expected a float32 input like the parameters"):
        layer(xnn.asarray([[1.0, 2.0]], dtype="float64"))


def test_sigmoid_matches_the_two_branch_formula_without_warnings(backend):
    values = np.array([-1000, -100, -30, -1, -1e-8, 0, 1e-8, 1, 30, 100, 1000, np.nan])
    for dtype in ("float32", "float64"):
        x = xnn.asarray(values, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = xnn.to_numpy(nn.Sigmoid()(x))
        h = values.astype(dtype)
        z = np.exp(-np.abs(h))
        with np.errstate(invalid="ignore"):
            ref = np.where(h >= 0, 1 / (1 + z), z / (1 + z))
        if backend.name in ("numpy", "array_api_strict"):  # NumPy's exp on both sides
            np.testing.assert_array_equal(y, ref)
        else:  # another library's exp: within an ulp; XLA flushes subnormal results to zero
            tiny = np.finfo(dtype).smallest_normal if backend.name == "jax" else 0
            np.testing.assert_allclose(y, ref, rtol=4 * np.finfo(dtype).eps, atol=tiny)


def test_relu_backprop_passes_dy_exactly_where_x_is_positive(backend):
    x = xnn.asarray([[-2.0, -0.0, 0.0, 1e-30, 3.0]], dtype="float32")
    y, backprop = nn.ReLU().forward(x)
    dx = backprop(xnn.asarray([[5.0, 6.0, 7.0, 8.0, 9.0]], dtype="float32"))
    np.testing.assert_array_equal(xnn.to_numpy(dx), [[0.0, 0.0, 0.0, 8.0, 9.0]])
    np.testing.assert_array_equal(xnn.to_numpy(y), np.float32([[0.0, 0.0, 0.0, 1e-30, 3.0]]))


def test_mean_reduction_equals_the_namespace_mean(backend, xp):
    g = np.random.default_rng(4)
    pred = xnn.asarray(g.standard_normal((37, 3)), dtype="float32")
    target = xnn.asarray(g.standard_normal((37, 3)), dtype="float32")
    value, _ = xnn.losses.MSELoss()(pred, target)
    diff = pred - target
    np.testing.assert_allclose(float(value), float(xp.mean(diff * diff)), rtol=1e-6)


def test_fit_trains_the_same_with_the_skipped_input_gradient(backend):
    def train(skip: bool):
        xnn.seed(5)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        if not skip:  # hide the keyword: fit then calls forward(x) as for any custom model
            plain = model.forward
            model.forward = lambda x: plain(x)
        X, y = xnn.datasets.xor()
        opt = xnn.optim.SGD(model.parameters(), lr=0.5)
        return xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=5,
                       progress=False)["loss"]

    np.testing.assert_array_equal(train(True), train(False))


def test_is_kind_answers_a_repeated_question_from_its_cache(backend):
    from xnn._checks import is_kind  # noqa: PLC0415 - asked by every layer at every call

    xp = backend.xp
    dtype = xnn.asarray(np.ones(2), dtype="float32").dtype
    before = is_kind.cache_info().hits
    assert is_kind(xp, dtype, "real floating") and is_kind(xp, dtype, "real floating")
    assert is_kind.cache_info().hits >= before + 1
