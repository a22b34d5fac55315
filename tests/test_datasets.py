"""The tutorials' data sets: right shapes, right relations, identical on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import datasets


def test_xor_is_the_truth_table(backend):
    X, y = datasets.xor()
    np.testing.assert_array_equal(xnn.to_numpy(y)[:, 0],
                                  np.logical_xor(*xnn.to_numpy(X).T.astype(bool)))


def test_arithmetic_targets_are_sum_difference_and_distance(backend):
    X, y = datasets.arithmetic(10_000, seed=3, dtype="float64")
    a, b = xnn.to_numpy(X).T
    assert X.shape == (10_000, 2) and y.shape == (10_000, 3)
    np.testing.assert_array_equal(xnn.to_numpy(y), np.stack([a + b, a - b, np.abs(a - b)], 1))


def test_linear_data_follow_the_line_within_the_noise(backend):
    X, y = datasets.linear(m=3.0, b=-1.0, n=2000, noise=0.1, dtype="float64")
    x, t = xnn.to_numpy(X)[:, 0], xnn.to_numpy(y)[:, 0]
    m, b = np.polyfit(x, t, 1)
    assert m == pytest.approx(3.0, abs=0.02) and b == pytest.approx(-1.0, abs=0.02)
    assert np.std(t - (3 * x - 1)) == pytest.approx(0.1, rel=0.1)


def test_polynomial_has_sixth_order_truth_and_unit_noise(backend):
    X, y = datasets.polynomial(n=5000, dtype="float64")
    x, t = xnn.to_numpy(X)[:, 0], xnn.to_numpy(y)[:, 0]
    truth = np.polynomial.polynomial.polyval(x, datasets.POLYNOMIAL_COEFFICIENTS)
    assert len(datasets.POLYNOMIAL_COEFFICIENTS) == 7
    assert np.std(t - truth) == pytest.approx(1.0, rel=0.05)
    np.testing.assert_allclose(xnn.to_numpy(datasets.polyval(datasets.POLYNOMIAL_COEFFICIENTS,
                                                              X))[:, 0], truth, rtol=1e-12)


def test_same_seed_gives_identical_data_on_every_backend(backend):
    here = xnn.to_numpy(datasets.polynomial(n=100, seed=7)[1])
    with xnn.use_backend("numpy"):
        ref = xnn.to_numpy(datasets.polynomial(n=100, seed=7)[1])
    np.testing.assert_array_equal(here, ref)
    assert not np.array_equal(here, xnn.to_numpy(datasets.polynomial(n=100, seed=8)[1]))


def test_datasets_reject_non_positive_sizes():
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        datasets.arithmetic(0)
