"""Module, Parameter, Sequential and Linear: structure, state, seeding and backprop."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xnn
from xnn import nn


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_state_dict_names_follow_pytorch(backend):
    model = _model()
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in model.named_parameters()] == list(model.state_dict())
    assert model.state_dict()["0.weight"].shape == (3, 4)


def test_same_seed_gives_bit_identical_weights_on_every_backend(backend):
    xnn.seed(123)
    here = {k: xnn.to_numpy(v) for k, v in _model().state_dict().items()}
    with xnn.use_backend("numpy"):
        xnn.seed(123)
        reference = {k: xnn.to_numpy(v) for k, v in _model().state_dict().items()}
    for name in reference:
        assert here[name].dtype == reference[name].dtype == np.float32
        np.testing.assert_array_equal(here[name], reference[name], err_msg=name)


def test_different_seeds_give_different_weights():
    xnn.seed(1)
    a = xnn.to_numpy(_model().state_dict()["0.weight"])
    xnn.seed(2)
    b = xnn.to_numpy(_model().state_dict()["0.weight"])
    assert not np.array_equal(a, b)


def test_linear_default_init_is_bounded_like_pytorch(backend):
    xnn.seed(0)
    layer = nn.Linear(400, 300)
    w, b = xnn.to_numpy(layer.weight.value), xnn.to_numpy(layer.bias.value)
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # uniform over the whole range, not a narrower one


def test_call_returns_forward_output(backend):
    xnn.seed(0)
    model = _model()
    x = xnn.asarray(np.arange(12.0).reshape(4, 3) / 10, dtype="float32")
    np.testing.assert_array_equal(xnn.to_numpy(model(x)), xnn.to_numpy(model.forward(x)[0]))


def test_load_state_dict_copies_values_across_backends(backend):
    xnn.seed(5)
    with xnn.use_backend("numpy"):
        source = _model()
    target = _model()
    target.load_state_dict(source.state_dict())
    for (name, p), q in zip(target.named_parameters(), source.parameters()):
        assert xnn.backend.array_namespace(p.value) is backend.xp, name
        np.testing.assert_array_equal(xnn.to_numpy(p.value), xnn.to_numpy(q.value))


def test_load_state_dict_rejects_missing_and_wrong_shapes():
    model = _model()
    state = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    before = xnn.to_numpy(model.state_dict()["0.weight"])
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    bad = dict(state, **{"0.weight": np.zeros((4, 3)), "0.bias": np.ones(4)})
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 4\).*\(4, 3\)"):
        model.load_state_dict(bad)
    # nothing was half-loaded: the good '0.bias' entry was not applied either
    np.testing.assert_array_equal(xnn.to_numpy(model.state_dict()["0.weight"]), before)
    assert not np.array_equal(xnn.to_numpy(model.state_dict()["0.bias"]), np.ones(4))


def test_train_and_eval_switch_every_module():
    model = _model()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_linear_backprop_matches_finite_differences(backend, float64):
    xnn.seed(0)
    layer = nn.Linear(3, 2)
    x = xnn.asarray(np.random.default_rng(1).standard_normal((5, 3)))
    dy = xnn.asarray(np.random.default_rng(2).standard_normal((5, 2)))
    y, backprop = layer.forward(x)
    dx = xnn.to_numpy(backprop(dy))
    w = xnn.to_numpy(layer.weight.value)
    x_host, dy_host, eps = xnn.to_numpy(x), xnn.to_numpy(dy), 1e-6

    def objective(x_value, w_value):
        return float(np.sum((x_value @ w_value + xnn.to_numpy(layer.bias.value)) * dy_host))

    numeric_dx = np.zeros_like(x_host)
    for idx in np.ndindex(*x_host.shape):
        e = np.zeros_like(x_host)
        e[idx] = eps
        numeric_dx[idx] = (objective(x_host + e, w) - objective(x_host - e, w)) / (2 * eps)
    numeric_dw = np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[idx] = eps
        numeric_dw[idx] = (objective(x_host, w + e) - objective(x_host, w - e)) / (2 * eps)
    np.testing.assert_allclose(dx, numeric_dx, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(xnn.to_numpy(layer.weight.grad), numeric_dw, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(xnn.to_numpy(layer.bias.grad), dy_host.sum(axis=0), rtol=1e-12)


def test_gradients_accumulate_until_zero_grad(backend):
    layer = nn.Linear(2, 1)
    x = xnn.asarray([[1.0, 2.0]])
    for _ in range(2):
        _, backprop = layer.forward(x)
        backprop(xnn.asarray([[1.0]]))
    np.testing.assert_allclose(xnn.to_numpy(layer.weight.grad), [[2.0], [4.0]])
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_linear_rejects_wrong_width(backend):
    with pytest.raises(ValueError, match=r"Linear: expected 3 input features, got 5"):
        nn.Linear(3, 2)(xnn.asarray(np.ones((4, 5)), dtype="float32"))


def test_linear_rejects_rank_one_batch(backend):
    with pytest.raises(ValueError, match=r"Linear: expected a 2-D input of shape \(batch, 3\), "
                                         r"got shape \(3,\)"):
        nn.Linear(3, 2)(xnn.asarray([1.0, 2.0, 3.0]))


def test_linear_rejects_integer_input(backend):
    with pytest.raises(TypeError, match="Linear: expected a floating-point input.*got dtype int64"):
        nn.Linear(2, 1)(xnn.asarray([[1, 2]]))


def test_linear_rejects_input_of_another_float_dtype(backend):
    layer = nn.Linear(2, 1, dtype="float32")
    with pytest.raises(TypeError, match="Linear: expected a float32 input like the parameters, "
                                        "got float64"):
        layer(xnn.asarray([[1.0, 2.0]], dtype="float64"))


def test_linear_rejects_array_from_another_backend(backend):
    layer = nn.Linear(2, 1)
    with xnn.use_backend("array_api_strict" if backend.name == "numpy" else "numpy"):
        other = xnn.asarray([[1.0, 2.0]])
    with pytest.raises(TypeError, match="Linear: the parameters are .* but the input is"):
        layer(other)


def test_linear_rejects_bad_sizes():
    with pytest.raises(ValueError, match="in_features must be a positive int, got 0"):
        nn.Linear(0, 3)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="item 1 is a function"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)


def test_model_to_moves_parameters(backend):
    xnn.seed(3)
    with xnn.use_backend("numpy"):
        model = _model()
    before = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    model.to(backend)
    for name, value in model.state_dict().items():
        assert xnn.backend.array_namespace(value) is backend.xp
        np.testing.assert_array_equal(xnn.to_numpy(value), before[name])


def test_linear_rejects_input_from_another_device():
    with xnn.use_backend("array_api_strict"):
        layer = nn.Linear(2, 1)
    with xnn.use_backend("array_api_strict", "device1"):
        other = xnn.asarray([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"Linear: the parameters are an array_api_strict Array on "
                                         r"device CPU_DEVICE but the input is an array_api_strict "
                                         r"Array on device device1"):
        layer(other)


@pytest.mark.parametrize("method, pointer", [
    ("predict", "use xnn.predict(model, X)"),
    ("fit", "use xnn.fit(model, X, y, loss=..., optimizer=..., epochs=...)"),
    ("evaluate", "use xnn.evaluate(model, X, y, loss=...)"),
    ("compile", "xnn has no compile step: pass loss= and optimizer= to xnn.fit"),
    ("save", "use xnn.save(path, model)"),
])
def test_keras_model_methods_raise_an_attribute_error_pointing_to_xnn_functions(method, pointer):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with pytest.raises(AttributeError, match=rf"^Sequential has no {method}\(\) method \(Keras "
                                             rf"models do\); {re.escape(pointer)}"):
        getattr(model, method)
    assert not hasattr(model, method)


def test_module_attribute_misses_keep_python_semantics():
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(AttributeError, match=r"^'Sequential' object has no attribute 'weigth'$"):
        model.weigth
    assert getattr(model[0], "missing", 7) == 7 and hasattr(model[0], "weight")

    class WithPredict(nn.Linear):
        def predict(self, x):
            return self(x)

    layer = WithPredict(2, 1)                    # a method of a subclass is found as usual
    assert tuple(layer.predict(xnn.asarray(np.ones((4, 2), dtype="float32"))).shape) == (4, 1)
