"""Weight initializers: each draws the distribution it names; one seed, one array everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xnn
from xnn import nn
from xnn.nn import init

FAN_IN, FAN_OUT = 300, 500  # unequal, so a formula using the wrong fan is caught
SHAPE = (FAN_IN, FAN_OUT)

# name -> (initializer, "uniform" bound a of U(-a, a) or "normal" std, expected value)
DISTRIBUTIONS = {
    "uniform_fan_in": (init.uniform_fan_in, "uniform", 1 / math.sqrt(FAN_IN)),
    "glorot_uniform": (init.glorot_uniform, "uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "he_uniform": (init.he_uniform, "uniform", math.sqrt(6 / FAN_IN)),
    "glorot_normal": (init.glorot_normal, "normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "he_normal": (init.he_normal, "normal", math.sqrt(2 / FAN_IN)),
    "lecun_normal": (init.lecun_normal, "normal", math.sqrt(1 / FAN_IN)),
    "normal(0.01)": (init.normal(0.01), "normal", 0.01),
}
RANDOM_INITS = list(DISTRIBUTIONS)


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_initializer_draws_the_distribution_it_names(name):
    xnn.seed(0)
    make, kind, scale = DISTRIBUTIONS[name]
    w = xnn.to_numpy(make(SHAPE, dtype="float64"))
    assert w.shape == SHAPE
    assert abs(w.mean()) < 0.01 * scale
    if kind == "uniform":
        assert np.abs(w).max() <= scale           # bounded by a ...
        assert np.abs(w).max() > 0.999 * scale    # ... and filling the whole range
        np.testing.assert_allclose(w.std(), scale / math.sqrt(3), rtol=0.01)
    else:
        np.testing.assert_allclose(w.std(), scale, rtol=0.01)
        assert np.abs(w).max() > 4 * scale        # Gaussian tails: not a uniform of that std


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_initializer_is_bit_identical_for_one_seed_on_every_backend(backend, name):
    make = DISTRIBUTIONS[name][0]
    xnn.seed(21)
    here = make((7, 5))
    with xnn.use_backend("numpy"):
        xnn.seed(21)
        reference = xnn.to_numpy(make((7, 5)))
    assert xnn.backend.array_namespace(here) is backend.xp
    assert xnn.backend.dtype_name(here.dtype) == "float32"  # xnn's default dtype
    np.testing.assert_array_equal(xnn.to_numpy(here), reference)


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_initializer_honours_dtype_and_seed(backend, name):
    make = DISTRIBUTIONS[name][0]
    xnn.seed(1)
    a = make((4, 3), dtype="float64")
    xnn.seed(2)
    b = make((4, 3), dtype="float64")
    assert xnn.backend.dtype_name(a.dtype) == "float64"
    assert not np.array_equal(xnn.to_numpy(a), xnn.to_numpy(b))


@pytest.mark.parametrize("make, value", [(init.zeros, 0.0), (init.ones, 1.0)])
def test_constant_initializers_fill_on_the_active_backend(backend, make, value):
    w = make((3, 2), dtype="float64")
    assert xnn.backend.array_namespace(w) is backend.xp
    assert str(xnn.backend.backend_of(w).device) == str(backend.device)
    np.testing.assert_array_equal(xnn.to_numpy(w), np.full((3, 2), value))


def test_normal_takes_a_mean():
    xnn.seed(0)
    w = xnn.to_numpy(init.normal(0.5, mean=3.0)((200, 200), dtype="float64"))
    np.testing.assert_allclose([w.mean(), w.std()], [3.0, 0.5], rtol=0.01)


def test_normal_used_without_calling_it_says_how_to_use_it():
    with pytest.raises(TypeError, match=r"pass init=normal\(0.01\), not init=normal"):
        nn.Linear(3, 2, init=init.normal)


def test_normal_rejects_a_negative_std_and_non_numbers():
    with pytest.raises(ValueError, match=r"normal: std must be a number in \[0.0, inf\), got -1"):
        init.normal(-1)
    with pytest.raises(TypeError, match=r"normal: mean must be a real number, got str"):
        init.normal(0.1, mean="0")


def test_normal_initializers_compare_and_print_by_their_settings():
    assert init.normal(0.1) == init.normal(0.1, 0.0) != init.normal(0.2)
    assert repr(init.normal(0.5, 1.0)) == "Normal(std=0.5, mean=1.0)"


def test_linear_default_init_is_torchs_uniform_fan_in(backend):
    xnn.seed(3)
    layer = nn.Linear(6, 4)
    xnn.seed(3)
    expected = init.uniform_fan_in((6, 4))
    np.testing.assert_array_equal(xnn.to_numpy(layer.weight.value), xnn.to_numpy(expected))


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_linear_uses_the_initializer_it_is_given(backend, name):
    make = DISTRIBUTIONS[name][0]
    xnn.seed(9)
    layer = nn.Linear(6, 4, init=make, bias_init=init.zeros)
    xnn.seed(9)
    np.testing.assert_array_equal(xnn.to_numpy(layer.weight.value), xnn.to_numpy(make((6, 4))))
    np.testing.assert_array_equal(xnn.to_numpy(layer.bias.value), np.zeros(4))
