"""Splitting, scaling, batching and one-hot encoding on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import data

X_HOST = np.arange(40.0).reshape(20, 2)
Y_HOST = np.arange(20)


def test_train_test_split_partitions_rows_and_keeps_pairs(backend):
    X, y = xnn.asarray(X_HOST, dtype="float64"), xnn.asarray(Y_HOST)
    X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_size=0.3, seed=1)
    assert (X_tr.shape, X_te.shape) == ((14, 2), (6, 2))
    labels = np.concatenate([xnn.to_numpy(y_tr), xnn.to_numpy(y_te)])
    assert sorted(labels) == list(range(20))                   # every row exactly once
    np.testing.assert_array_equal(xnn.to_numpy(X_te)[:, 0], 2 * xnn.to_numpy(y_te))  # rows stay paired
    assert not np.array_equal(labels, np.arange(20))            # shuffled


def test_train_test_split_is_the_same_on_every_backend(backend):
    here = data.train_test_split(xnn.asarray(X_HOST), xnn.asarray(Y_HOST), 0.3, seed=4)[3]
    with xnn.use_backend("numpy"):
        ref = data.train_test_split(xnn.asarray(X_HOST), xnn.asarray(Y_HOST), 0.3, seed=4)[3]
    np.testing.assert_array_equal(xnn.to_numpy(here), xnn.to_numpy(ref))


def test_train_test_split_rejects_bad_sizes_and_lengths(backend):
    X, y = xnn.asarray(X_HOST), xnn.asarray(Y_HOST)
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        data.train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="X has 20 rows .* y has 19"):
        data.train_test_split(X, y[:19])


def test_standard_scaler_matches_scikit_learn_and_inverts(backend):
    rng = np.random.default_rng(0)
    host = rng.standard_normal((50, 3)) * [1.0, 10.0, 0.0] + [5.0, -2.0, 7.0]  # a constant column
    X = xnn.asarray(host, dtype="float64")
    scaler = data.StandardScaler().fit(X)
    Z = xnn.to_numpy(scaler.transform(X))
    expected = (host - host.mean(0)) / np.where(host.std(0) > 0, host.std(0), 1.0)
    np.testing.assert_allclose(Z, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xnn.to_numpy(scaler.inverse_transform(scaler.transform(X))), host,
                               rtol=1e-12)


def test_standard_scaler_refuses_use_before_fit_and_wrong_width(backend):
    scaler = data.StandardScaler()
    with pytest.raises(data.NotFittedError, match="call fit"):  # a ValueError, as in sklearn
        scaler.transform(xnn.asarray(X_HOST))
    scaler.fit(xnn.asarray(X_HOST))
    with pytest.raises(ValueError, match=r"fit on 2 features, got shape \(20, 3\)"):
        scaler.transform(xnn.asarray(np.ones((20, 3))))


def test_batches_cover_every_row_once_with_a_short_last_batch(backend):
    X, y = xnn.asarray(X_HOST), xnn.asarray(Y_HOST)
    parts = list(data.batches(X, y, 6, seed=0))
    assert [b[0].shape[0] for b in parts] == [6, 6, 6, 2]
    seen = np.concatenate([xnn.to_numpy(yb) for _, yb in parts])
    assert sorted(seen) == list(range(20))
    unshuffled = np.concatenate([xnn.to_numpy(yb) for _, yb in data.batches(X, y, 6, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, np.arange(20))


def test_batches_rejects_zero_batch_size(backend):
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        next(data.batches(xnn.asarray(X_HOST), xnn.asarray(Y_HOST), 0))


def test_one_hot_puts_a_one_at_each_label(backend):
    out = xnn.to_numpy(data.one_hot(xnn.asarray([2, 0, 1]), 3))
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1]])
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="1-D integer labels"):
        data.one_hot(xnn.asarray([[1.0]]), 3)


def test_standard_scaler_not_fitted_error_is_a_value_error():
    assert issubclass(data.NotFittedError, ValueError)  # as scikit-learn's NotFittedError


def test_data_functions_take_lists_as_fit_does_and_refuse_text_naming_themselves(backend):
    X_tr, X_te, y_tr, y_te = data.train_test_split([[1.0], [2.0], [3.0]], [0, 1, 1],
                                                   test_size=1, shuffle=False)
    assert xnn.backend.backend_of(X_tr).name == backend.name
    np.testing.assert_array_equal(xnn.to_numpy(X_te), [[3.0]])
    assert xnn.to_numpy(y_tr).tolist() == [0, 1]                # integer labels stay labels
    with pytest.raises(TypeError, match=r"train_test_split: X cannot be used as data"):
        data.train_test_split([["a"], ["b"]], xnn.asarray(np.ones(2)))


def test_data_helpers_take_pandas_dataframes_and_series_as_fit_does(backend):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_HOST, columns=["a", "b"])
    labels = pd.Series(Y_HOST % 3)
    X_tr, X_te, y_tr, y_te = data.train_test_split(frame, labels, test_size=0.25, seed=3)
    ref = data.train_test_split(xnn.asarray(X_HOST), xnn.asarray(Y_HOST % 3), 0.25, seed=3)
    for got, want in zip((X_tr, X_te, y_tr, y_te), ref):
        assert xnn.backend.backend_of(got).name == backend.name
        np.testing.assert_array_equal(xnn.to_numpy(got), xnn.to_numpy(want))
    scaler = data.StandardScaler().fit(frame)
    expected = (X_HOST - X_HOST.mean(0)) / X_HOST.std(0)
    np.testing.assert_allclose(xnn.to_numpy(scaler.transform(frame)), expected, rtol=1e-6)
    np.testing.assert_allclose(xnn.to_numpy(scaler.inverse_transform(pd.DataFrame(expected))),
                               X_HOST, rtol=1e-5, atol=1e-5)
    rows = [xnn.to_numpy(yb) for _, yb in data.batches(frame, labels, 8, shuffle=False)]
    np.testing.assert_array_equal(np.concatenate(rows), Y_HOST % 3)
    np.testing.assert_array_equal(xnn.to_numpy(data.one_hot(labels, 3)),
                                  np.eye(3)[Y_HOST % 3])


@pytest.mark.parametrize("method", ["fit", "transform", "inverse_transform"])
def test_standard_scaler_refuses_a_1d_target_with_the_reshape_hint(backend, method):
    scaler = data.StandardScaler()
    if method != "fit":
        scaler.fit(xnn.asarray(X_HOST[:, :1]))
    with pytest.raises(ValueError, match=rf"StandardScaler.{method}: expected a 2-D \(samples, "
                                         r"features\) X, got shape \(20,\); .*1-D target.*"
                                         r"y.reshape\(-1, 1\)"):
        getattr(scaler, method)(xnn.asarray(X_HOST[:, 0]))


def test_take_rows_counts_negative_indices_from_the_end_on_every_backend(backend):
    x = xnn.asarray(np.arange(10.0).reshape(5, 2))
    for rows in ([4, -1, 0], np.array([4, -1, 0]), xnn.asarray([4, -1, 0])):
        np.testing.assert_array_equal(xnn.to_numpy(data.take_rows(x, rows)),
                                      [[8.0, 9.0], [8.0, 9.0], [0.0, 1.0]])
    assert tuple(data.take_rows(x, []).shape) == (0, 2)


@pytest.mark.parametrize("rows", [[5], [-6], [0, 7]])
@pytest.mark.parametrize("where", ["host", "device"])
def test_take_rows_refuses_indices_out_of_range_on_every_backend(backend, rows, where):
    x = xnn.asarray(np.arange(10.0).reshape(5, 2))
    index = xnn.asarray(rows) if where == "device" else rows
    with pytest.raises(IndexError, match=r"row indices must lie in \[-5, 5\) for 5 rows, got "
                                         rf"values in \[{min(rows)}, {max(rows)}\]"):
        data.take_rows(x, index)


def test_take_rows_refuses_float_indices(backend):
    x = xnn.asarray(np.arange(10.0).reshape(5, 2))
    with pytest.raises(TypeError, match="expected integer row indices, got dtype float"):
        data.take_rows(x, xnn.asarray([0.0, 1.0]))
