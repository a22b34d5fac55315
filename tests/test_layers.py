"""Every layer of xnn.nn: values, modes, state, stability, bad input, and gradient checks."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import xnn
from xnn import nn
from xnn.testing import gradcheck

import catalogue


def _host(shape, seed=1, scale=1.0):
    """Standard normal numbers kept 0.05 away from 0, where ReLU-like layers have a kink."""
    n = np.random.default_rng(seed).standard_normal(shape) * scale
    return n + 0.05 * np.sign(n)


def _x(shape, seed=1, dtype="float64", scale=1.0):
    return xnn.asarray(_host(shape, seed, scale), dtype=dtype)


def _trained_batchnorm(width: int, **kwargs) -> nn.BatchNorm1d:
    """A BatchNorm1d in eval mode whose running statistics are no longer the initial 0 and 1."""
    layer = nn.BatchNorm1d(width, **kwargs)
    for seed in range(3):
        layer(_x((6, width), seed=seed + 10, scale=2.0) + 1.0)
    return layer.eval()


# --- the catalogue every gradient check runs over ------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[int], nn.Module]  # width -> layer, built on the active backend
    min_batch: int = 1                # batch statistics need two samples
    trailing: tuple[int, ...] = ()    # extra input axes after (batch, width)
    examples: int = 15                # hypothesis examples (a few for the slow, big ones)
    atol: float = 1e-8                # gradcheck's absolute tolerance

    def __repr__(self) -> str:
        return self.name


SETTINGS = [
    Case("Identity", lambda w: nn.Identity()),
    Case("ReLU", lambda w: nn.ReLU()),
    Case("LeakyReLU", lambda w: nn.LeakyReLU(0.2)),
    Case("ELU", lambda w: nn.ELU(alpha=0.7)),
    Case("Sigmoid", lambda w: nn.Sigmoid()),
    Case("Tanh", lambda w: nn.Tanh()),
    Case("GELU", lambda w: nn.GELU()),
    Case("Softplus", lambda w: nn.Softplus()),
    Case("Softplus(beta=2, threshold=1)", lambda w: nn.Softplus(beta=2.0, threshold=1.0)),
    Case("SiLU", lambda w: nn.SiLU()),
    Case("Softmax", lambda w: nn.Softmax()),
    Case("Softmax(axis=0)", lambda w: nn.Softmax(axis=0)),
    Case("LogSoftmax", lambda w: nn.LogSoftmax()),
    Case("LogSoftmax(axis=1) on rank 3", lambda w: nn.LogSoftmax(axis=1), trailing=(2,)),
    Case("Dropout", lambda w: nn.Dropout(0.4)),
    Case("Linear", lambda w: nn.Linear(w, 3)),
    Case("BatchNorm1d", lambda w: nn.BatchNorm1d(w), min_batch=2),
    Case("BatchNorm1d(momentum=None)", lambda w: nn.BatchNorm1d(w, momentum=None), min_batch=2),
    Case("BatchNorm1d(affine=False)", lambda w: nn.BatchNorm1d(w, affine=False), min_batch=2),
    Case("BatchNorm1d in eval mode", _trained_batchnorm),
    Case("LayerNorm", lambda w: nn.LayerNorm(w)),
    Case("LayerNorm(elementwise_affine=False)",
         lambda w: nn.LayerNorm(w, elementwise_affine=False)),
    Case("Flatten", lambda w: nn.Flatten(), trailing=(3,)),
    Case("Residual", lambda w: nn.Residual(nn.Sequential(nn.Linear(w, w), nn.Tanh()))),
    Case("Sequential", lambda w: nn.Sequential(
        nn.Linear(w, 4), nn.BatchNorm1d(4), nn.GELU(), nn.Dropout(0.3),
        nn.Residual(nn.Sequential(nn.LayerNorm(4), nn.SiLU())), nn.Linear(4, 3), nn.LogSoftmax()),
        # the first bias feeds BatchNorm, which removes it: its true gradient is 0 and the
        # central difference there is round-off, up to ~1e-16 |L| / eps (seen: 1.04e-8)
        min_batch=2, examples=3, atol=1e-7),
]


def gradcheck_cases() -> list[Case]:
    """The cases above, then each public layer class of xnn.nn they do not name, with its
    defaults (tests/catalogue.py) and batches of at least 2 (batch statistics need two)."""
    named = {case.name for case in SETTINGS}
    return SETTINGS + [Case(name, lambda w, cls=cls: catalogue.construct(cls, w), min_batch=2)
                       for name, cls in catalogue.public_classes(nn, nn.Module).items()
                       if name not in named]


CASES = gradcheck_cases()


def _rand_layer(case: Case, width: int) -> nn.Module:
    """Build the case, then move its parameters off their initial values (ones, zeros)."""
    layer = case.make(width)
    rng = np.random.default_rng(7)
    for p in layer.parameters():
        p.value = xnn.asarray(xnn.to_numpy(p.value) + 0.3 * rng.standard_normal(p.shape),
                              dtype="float64")
    return layer


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_backprop_matches_finite_differences(backend, float64, case):
    xnn.seed(0)
    layer = _rand_layer(case, 5)
    assert gradcheck(layer, _x((4, 5) + case.trailing), atol=case.atol)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_layer_backprop_matches_finite_differences_for_batch_of_one_and_odd_widths(
        backend, float64, case):
    @settings(max_examples=case.examples, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batch=st.integers(case.min_batch, 4), width=st.integers(1, 5),
           seed=st.integers(0, 2**16))
    @example(batch=case.min_batch, width=1, seed=0)  # batch of one where the layer allows it
    @example(batch=case.min_batch, width=3, seed=1)
    @example(batch=3, width=5, seed=2)
    @example(batch=3, width=1, seed=328)  # Sequential: round-off 1.04e-8 at a zero gradient
    def check(batch, width, seed):
        xnn.seed(seed)
        layer = _rand_layer(case, width)
        assert gradcheck(layer, _x((batch, width) + case.trailing, seed=seed), atol=case.atol)

    check()


# --- activations: values, stability --------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


REFERENCES = {  # name -> (layer, numpy formula in float64)
    "Identity": (nn.Identity, lambda x: x),
    "ReLU": (nn.ReLU, lambda x: np.maximum(x, 0)),
    "LeakyReLU": (nn.LeakyReLU, lambda x: np.where(x > 0, x, 0.01 * x)),
    "ELU": (nn.ELU, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    "Sigmoid": (nn.Sigmoid, _sigmoid),
    "Tanh": (nn.Tanh, np.tanh),
    "GELU": (nn.GELU, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                        * (x + 0.044715 * x**3)))),
    "Softplus": (nn.Softplus, lambda x: np.where(x > 20, x, np.log1p(np.exp(x)))),
    "SiLU": (nn.SiLU, lambda x: x * _sigmoid(x)),
    "Softmax": (nn.Softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "LogSoftmax": (nn.LogSoftmax, lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
}
ACTIVATIONS = list(REFERENCES)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_match_their_formula(backend, name):
    layer, formula = REFERENCES[name]
    host = np.linspace(-6, 6, 24).reshape(4, 6)
    y = xnn.to_numpy(layer()(xnn.asarray(host, dtype="float64")))
    np.testing.assert_allclose(y, formula(host), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_keeps_shape_and_dtype_of_any_rank(backend, name):
    for shape in [(7,), (2, 3), (2, 3, 4)]:
        x = _x(shape, dtype="float32")
        y, backprop = REFERENCES[name][0]().forward(x)
        dx = backprop(xnn.asarray(np.ones(shape), dtype="float32"))
        assert tuple(y.shape) == tuple(dx.shape) == shape
        assert y.dtype == dx.dtype == x.dtype


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_is_finite_and_warning_free_at_plus_minus_1000_in_float32(backend, name):
    x = xnn.asarray([[-1000.0, -30.0, 0.5, 30.0, 1000.0]], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning would fail here
        y, backprop = REFERENCES[name][0]().forward(x)
        dx = backprop(xnn.asarray(np.ones((1, 5)), dtype="float32"))
    assert np.isfinite(xnn.to_numpy(y)).all() and np.isfinite(xnn.to_numpy(dx)).all()


def test_sigmoid_softplus_logsoftmax_give_the_exact_limits_at_1000_in_float32(backend):
    x = xnn.asarray([[-1000.0, 1000.0]], dtype="float32")
    np.testing.assert_array_equal(xnn.to_numpy(nn.Sigmoid()(x)), [[0.0, 1.0]])
    np.testing.assert_array_equal(xnn.to_numpy(nn.Softplus()(x)), [[0.0, 1000.0]])
    np.testing.assert_array_equal(xnn.to_numpy(nn.LogSoftmax()(x)), [[-2000.0, 0.0]])
    y, backprop = nn.LogSoftmax().forward(x)
    # d/dx sum(log_softmax * [1, 0]): the gradient of the -2000 entry is 1 - softmax = 1
    np.testing.assert_array_equal(xnn.to_numpy(backprop(xnn.asarray([[1.0, 0.0]]))),
                                  [[1.0, -1.0]])


def test_softmax_rows_sum_to_one_along_the_chosen_axis(backend):
    x = _x((3, 4), scale=5.0)
    np.testing.assert_allclose(xnn.to_numpy(nn.Softmax()(x)).sum(axis=1), np.ones(3), rtol=1e-12)
    np.testing.assert_allclose(xnn.to_numpy(nn.Softmax(axis=0)(x)).sum(axis=0), np.ones(4),
                               rtol=1e-12)


def test_leaky_relu_and_elu_use_their_parameters(backend):
    x = xnn.asarray([[-2.0, 3.0]], dtype="float64")
    np.testing.assert_allclose(xnn.to_numpy(nn.LeakyReLU(0.5)(x)), [[-1.0, 3.0]])
    np.testing.assert_allclose(xnn.to_numpy(nn.ELU(alpha=2.0)(x)), [[2 * math.expm1(-2), 3.0]])


def test_softplus_is_linear_above_its_threshold(backend):
    x = xnn.asarray([[2.0, 2.6]], dtype="float64")
    y = xnn.to_numpy(nn.Softplus(beta=2.0, threshold=5.0)(x))
    np.testing.assert_allclose(y, [[math.log1p(math.exp(4.0)) / 2, 2.6]], rtol=1e-14)


# --- dropout -------------------------------------------------------------------------------------

def test_dropout_is_the_identity_in_eval_mode(backend):
    x = _x((5, 6), dtype="float32")
    layer = nn.Dropout(0.5).eval()
    y, backprop = layer.forward(x)
    np.testing.assert_array_equal(xnn.to_numpy(y), xnn.to_numpy(x))
    np.testing.assert_array_equal(xnn.to_numpy(backprop(x)), xnn.to_numpy(x))


def test_dropout_zeros_a_fraction_p_and_scales_the_rest(backend):
    xnn.seed(0)
    x = xnn.asarray(np.ones((200, 100)), dtype="float32")
    y, backprop = nn.Dropout(0.3).forward(x)
    y = xnn.to_numpy(y)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    # the gradient goes through the same mask, with the same scale
    np.testing.assert_array_equal(xnn.to_numpy(backprop(x)), y)


def test_dropout_masks_repeat_with_the_seed_on_every_backend(backend):
    x_host = _host((6, 7))
    xnn.seed(11)
    here = xnn.to_numpy(nn.Dropout(0.5)(xnn.asarray(x_host, dtype="float32")))
    with xnn.use_backend("numpy"):
        xnn.seed(11)
        reference = xnn.to_numpy(nn.Dropout(0.5)(xnn.asarray(x_host, dtype="float32")))
    np.testing.assert_array_equal(here, reference)
    assert (here == 0).any() and (here != 0).any()


def test_dropout_draws_a_new_mask_each_forward(backend):
    xnn.seed(0)
    layer, x = nn.Dropout(0.5), xnn.asarray(np.ones((8, 8)), dtype="float32")
    assert not np.array_equal(xnn.to_numpy(layer(x)), xnn.to_numpy(layer(x)))


def test_dropout_with_p_0_keeps_and_p_1_drops_everything(backend):
    x = _x((3, 4), dtype="float32")
    np.testing.assert_array_equal(xnn.to_numpy(nn.Dropout(0.0)(x)), xnn.to_numpy(x))
    y, backprop = nn.Dropout(1.0).forward(x)
    assert (xnn.to_numpy(y) == 0).all() and (xnn.to_numpy(backprop(x)) == 0).all()


# --- batch norm ----------------------------------------------------------------------------------

def test_batchnorm_training_output_has_zero_mean_unit_variance_per_feature(backend, float64):
    x = _x((16, 3), scale=4.0) + 2.0
    y = xnn.to_numpy(nn.BatchNorm1d(3)(x))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-4)  # eps = 1e-5 shrinks it a little


def test_batchnorm_running_stats_use_momentum_and_the_unbiased_variance(backend, float64):
    host = _host((5, 3), scale=3.0) + 1.0
    layer = nn.BatchNorm1d(3, momentum=0.25)
    layer(xnn.asarray(host))
    np.testing.assert_allclose(xnn.to_numpy(layer.running_mean), 0.25 * host.mean(0), rtol=1e-12)
    np.testing.assert_allclose(xnn.to_numpy(layer.running_var),
                               0.75 + 0.25 * host.var(0, ddof=1), rtol=1e-12)
    assert int(xnn.to_numpy(layer.num_batches_tracked)) == 1


def test_batchnorm_with_momentum_none_averages_all_batches_equally(backend, float64):
    hosts = [_host((4, 2), seed=s) for s in range(3)]
    layer = nn.BatchNorm1d(2, momentum=None)
    for h in hosts:
        layer(xnn.asarray(h))
    np.testing.assert_allclose(xnn.to_numpy(layer.running_mean),
                               np.mean([h.mean(0) for h in hosts], axis=0), rtol=1e-12)
    np.testing.assert_allclose(xnn.to_numpy(layer.running_var),
                               np.mean([h.var(0, ddof=1) for h in hosts], axis=0), rtol=1e-12)
    assert int(xnn.to_numpy(layer.num_batches_tracked)) == 3
    # a 0-d array of the backend, as every buffer is (NumPy would make the count a scalar)
    count = layer.state_dict()["num_batches_tracked"]
    assert xnn.backend.is_array(count) and count.ndim == 0
    assert xnn.backend.backend_of(count).name == backend.name


def test_batchnorm_eval_mode_uses_running_stats_and_leaves_them_alone(backend, float64):
    layer = _trained_batchnorm(3)
    mean, var = xnn.to_numpy(layer.running_mean), xnn.to_numpy(layer.running_var)
    host = _host((2, 3), seed=99)
    y = xnn.to_numpy(layer(xnn.asarray(host)))
    np.testing.assert_allclose(y, (host - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(xnn.to_numpy(layer.running_mean), mean)
    assert int(xnn.to_numpy(layer.num_batches_tracked)) == 3


def test_batchnorm_without_running_stats_has_no_buffers_and_normalises_by_the_batch(backend,
                                                                                    float64):
    layer = nn.BatchNorm1d(3, track_running_stats=False).eval()
    assert list(layer.state_dict()) == ["weight", "bias"]
    y = xnn.to_numpy(layer(_x((8, 3), scale=3.0)))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)


def test_batchnorm_rejects_a_batch_of_one_when_it_needs_batch_statistics(backend):
    x = _x((1, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"BatchNorm1d: batch statistics need more than 1 sample "
                                         r"per feature, got input shape \(1, 3\)"):
        nn.BatchNorm1d(3)(x)
    assert tuple(nn.BatchNorm1d(3).eval()(x).shape) == (1, 3)  # running statistics: fine


def test_batchnorm_state_dict_names_follow_pytorch_and_round_trip(backend):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias",
                                       "1.running_mean", "1.running_var",
                                       "1.num_batches_tracked"}
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    model(_x((6, 3), dtype="float32"))
    saved = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    fresh.load_state_dict(saved)
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(value), saved[name], err_msg=name)
    assert xnn.to_numpy(fresh.state_dict()["1.num_batches_tracked"]).dtype == np.int64


def test_model_to_moves_and_casts_batchnorm_buffers(backend):
    with xnn.use_backend("numpy"):
        model = nn.Sequential(nn.BatchNorm1d(2))
        model(xnn.asarray(_host((4, 2)), dtype="float32"))
    before = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    model.to(backend, dtype="float64")
    layer = model[0]
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        value = getattr(layer, name)
        assert xnn.backend.array_namespace(value) is backend.xp, name
        np.testing.assert_allclose(xnn.to_numpy(value), before[f"0.{name}"], rtol=1e-7)
    assert xnn.backend.dtype_name(layer.running_mean.dtype) == "float64"
    assert xnn.backend.dtype_name(layer.num_batches_tracked.dtype) == "int64"
    layer(xnn.asarray(_host((4, 2)), dtype="float64"))  # runs where it was moved


# --- layer norm, flatten, residual, sequential ---------------------------------------------------

def test_layernorm_normalises_each_sample_then_scales_and_shifts(backend, float64):
    layer = nn.LayerNorm(5)
    layer.weight.value = xnn.asarray([1.0, 2.0, 3.0, 4.0, 5.0])
    layer.bias.value = xnn.asarray([0.5] * 5)
    host = _host((3, 5), scale=3.0)
    y = xnn.to_numpy(layer(xnn.asarray(host)))
    x_hat = (host - host.mean(1, keepdims=True)) / np.sqrt(host.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, x_hat * [1, 2, 3, 4, 5] + 0.5, rtol=1e-12)


def test_normalization_gradients_accumulate_until_zero_grad(backend, float64):
    for layer in (nn.BatchNorm1d(3), nn.LayerNorm(3)):
        x, dy = _x((4, 3)), _x((4, 3), seed=2)
        _, backprop = layer.forward(x)
        backprop(dy)
        once = xnn.to_numpy(layer.weight.grad)
        _, backprop = layer.forward(x)
        backprop(dy)
        np.testing.assert_allclose(xnn.to_numpy(layer.weight.grad), 2 * once, rtol=1e-12)


def test_flatten_merges_all_but_the_batch_axis_and_backprop_restores_the_shape(backend):
    x = xnn.asarray(np.arange(24.0).reshape(2, 3, 4), dtype="float32")
    y, backprop = nn.Flatten().forward(x)
    np.testing.assert_array_equal(xnn.to_numpy(y), np.arange(24.0).reshape(2, 12))
    np.testing.assert_array_equal(xnn.to_numpy(backprop(y)), xnn.to_numpy(x))
    assert tuple(nn.Flatten(0, 1)(x).shape) == (6, 4)
    assert tuple(nn.Flatten()(xnn.asarray(np.ones((5, 2)), dtype="float32")).shape) == (5, 2)


def test_residual_adds_its_input_to_the_branch_output(backend, float64):
    xnn.seed(0)
    branch = nn.Linear(3, 3)
    x = _x((2, 3))
    np.testing.assert_allclose(xnn.to_numpy(nn.Residual(branch)(x)),
                               xnn.to_numpy(x) + xnn.to_numpy(branch(x)), rtol=1e-14)
    assert list(nn.Residual(branch).state_dict()) == ["module.weight", "module.bias"]


def test_train_and_eval_reach_layers_inside_residual_and_sequential(backend):
    model = nn.Sequential(nn.Linear(4, 4), nn.Residual(nn.Sequential(nn.Dropout(0.5),
                                                                     nn.BatchNorm1d(4))))
    model.eval()
    assert not any(m.training for m in model.modules())
    x = _x((3, 4), dtype="float32")
    np.testing.assert_array_equal(xnn.to_numpy(model(x)), xnn.to_numpy(model(x)))
    model.train()
    assert all(m.training for m in model.modules())
    assert not np.array_equal(xnn.to_numpy(model(x)), xnn.to_numpy(model(x)))


def test_same_seed_gives_the_same_model_output_on_every_backend(backend, float64):
    def run():
        xnn.seed(4)
        model = nn.Sequential(nn.Linear(3, 6), nn.GELU(), nn.Dropout(0.5), nn.BatchNorm1d(6),
                              nn.Linear(6, 2), nn.Softmax())
        return xnn.to_numpy(model(xnn.asarray(_host((5, 3)), dtype="float64")))

    here = run()
    with xnn.use_backend("numpy"):
        reference = run()
    np.testing.assert_allclose(here, reference, rtol=1e-12)


# --- bad input and bad arguments -----------------------------------------------------------------

ALL_LAYER_TYPES = ACTIVATIONS + ["Dropout", "Flatten"]


def _make(name):
    return {"Dropout": nn.Dropout, "Flatten": nn.Flatten}.get(name) or REFERENCES[name][0]


@pytest.mark.parametrize("name", ALL_LAYER_TYPES)
def test_shape_free_layers_reject_integer_input_naming_the_layer_and_dtype(backend, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a floating-point input \(float32 or "
                                        rf"float64\), got dtype int64$"):
        _make(name)()(xnn.asarray([[1, 2]]))


@pytest.mark.parametrize("name", ALL_LAYER_TYPES)
def test_shape_free_layers_reject_non_arrays_naming_the_layer(name):
    with pytest.raises(TypeError, match=rf"^{name}: expected the input to be an array, got list; "
                                        r"make one with xnn.asarray\(\)$"):
        _make(name)()([[1.0, 2.0]])


NORMS = {"BatchNorm1d": nn.BatchNorm1d, "LayerNorm": nn.LayerNorm}


@pytest.mark.parametrize("name", NORMS)
def test_normalization_rejects_wrong_width(backend, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected 3 input features, got 5 "
                                         rf"\(input shape \(4, 5\)\)$"):
        NORMS[name](3)(xnn.asarray(np.ones((4, 5)), dtype="float32"))


@pytest.mark.parametrize("name", NORMS)
def test_normalization_rejects_rank_one_batch(backend, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected a 2-D input of shape \(batch, 3\), "
                                         rf"got shape \(3,\)$"):
        NORMS[name](3)(xnn.asarray([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("name", NORMS)
def test_normalization_rejects_integer_input(backend, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a floating-point input \(float32 or "
                                        rf"float64\), got dtype int64$"):
        NORMS[name](2)(xnn.asarray([[1, 2], [3, 4]]))


@pytest.mark.parametrize("name", NORMS)
def test_normalization_rejects_input_of_another_float_dtype(backend, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a float32 input like the parameters, "
                                        rf"got float64"):
        NORMS[name](2, dtype="float32")(xnn.asarray([[1.0, 2.0], [3.0, 4.0]], dtype="float64"))


@pytest.mark.parametrize("name", NORMS)
def test_normalization_rejects_array_from_another_backend(backend, name):
    layer = NORMS[name](2)
    with xnn.use_backend("array_api_strict" if backend.name == "numpy" else "numpy"):
        other = xnn.asarray([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=rf"^{name}: the parameters are .* but the input is"):
        layer(other)


def test_flatten_rejects_rank_one_batch(backend):
    with pytest.raises(ValueError, match=r"^Flatten: cannot merge axes 1..-1 of an input of shape "
                                         r"\(3,\); expected at least 2 axes"):
        nn.Flatten()(xnn.asarray([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("layer", [nn.Softmax, nn.LogSoftmax])
def test_softmax_rejects_an_axis_the_input_does_not_have(backend, layer):
    with pytest.raises(ValueError, match=rf"^{layer.__name__}: axis 2 is out of range for an "
                                         rf"input of shape \(4, 3\)$"):
        layer(axis=2)(xnn.asarray(np.ones((4, 3)), dtype="float32"))


def test_residual_rejects_a_branch_that_changes_the_shape(backend):
    with pytest.raises(ValueError, match=r"^Residual: the wrapped Linear maps shape \(2, 3\) to "
                                         r"\(2, 4\); a residual branch must keep"):
        nn.Residual(nn.Linear(3, 4))(xnn.asarray(np.ones((2, 3)), dtype="float32"))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Dropout(1.5), r"Dropout: p must be a number in \[0.0, 1.0\], got 1.5"),
    (lambda: nn.Dropout(-0.1), r"Dropout: p must be a number in \[0.0, 1.0\], got -0.1"),
    (lambda: nn.LeakyReLU("0.1"), r"LeakyReLU: negative_slope must be a real number, got str '0.1'"),
    (lambda: nn.ELU(alpha=float("nan")), r"ELU: alpha must be a number, got nan"),
    (lambda: nn.Softplus(beta=0), r"Softplus: beta must be nonzero, got 0"),
    (lambda: nn.GELU(approximate="none"), r"GELU: only approximate='tanh' is available"),
    (lambda: nn.BatchNorm1d(0), r"BatchNorm1d: num_features must be a positive int, got 0"),
    (lambda: nn.BatchNorm1d(3, eps=0), r"BatchNorm1d: eps must be a number in \(0.0, inf\), got 0"),
    (lambda: nn.BatchNorm1d(3, momentum=2), r"BatchNorm1d: momentum must be a number in \[0.0, "),
    (lambda: nn.LayerNorm((2, 3)), r"LayerNorm: normalises the last axis only, so "
                                   r"normalized_shape must be an int or a 1-tuple, got \(2, 3\)"),
    (lambda: nn.LayerNorm(-1), r"LayerNorm: normalized_shape must be a positive int, got -1"),
])
def test_layer_constructors_reject_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Softmax(axis=1.0), r"Softmax: axis must be an int, got 1.0"),
    (lambda: nn.Flatten(start_dim="1"), r"Flatten: start_dim must be an int, got '1'"),
    (lambda: nn.Residual(nn.ReLU), r"Residual: expected a Module, got type"),
])
def test_layer_constructors_reject_arguments_of_the_wrong_type(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_layer_reprs_show_their_settings():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(nn.Softmax(axis=0)) == "Softmax(axis=0)"
    assert repr(nn.BatchNorm1d(4)).startswith("BatchNorm1d(4, eps=1e-05, momentum=0.1")
    assert "(module): Linear(" in repr(nn.Residual(nn.Linear(2, 2)))


@pytest.mark.parametrize("kwargs, message", [
    ({"init": "he_normal"}, r"Linear: init must be callable as init\(shape, dtype=...\), got "
                            r"str 'he_normal'; write init=xnn.nn.init.he_normal$"),
    ({"bias_init": 3}, r"Linear: bias_init must be callable .*got int 3 \(an xnn.nn.init "
                       r"function"),
], ids=["keras-name", "number"])
def test_linear_names_the_initializer_to_pass_for_one_it_cannot_call(backend, kwargs, message):
    with pytest.raises(TypeError, match=message):
        nn.Linear(3, 3, **kwargs)
