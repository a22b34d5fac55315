"""Metrics agree with scikit-learn's definitions and stay on the backend."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest

import xnn
from xnn import metrics

RNG = np.random.default_rng(0)
TARGET = RNG.standard_normal((30, 3))
PRED = TARGET + 0.4 * RNG.standard_normal((30, 3))


def _on(a):
    return xnn.asarray(a, dtype="float64")


def test_regression_metrics_match_their_definitions(backend):
    p, t = _on(PRED), _on(TARGET)
    assert xnn.backend.array_namespace(metrics.mse(p, t)) is backend.xp
    np.testing.assert_allclose(float(metrics.mse(p, t)), np.mean((PRED - TARGET) ** 2), rtol=1e-12)
    np.testing.assert_allclose(float(metrics.mae(p, t)), np.mean(np.abs(PRED - TARGET)), rtol=1e-12)
    ss_res = ((TARGET - PRED) ** 2).sum(axis=0)
    ss_tot = ((TARGET - TARGET.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(float(metrics.r2_score(p, t)), np.mean(1 - ss_res / ss_tot),
                               rtol=1e-12)


def test_r2_score_scores_constant_columns_like_scikit_learn(backend):
    t = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 4.0]])
    exact = metrics.r2_score(_on(t), _on(t))
    assert float(exact) == 1.0
    wrong = t.copy()
    wrong[:, 0] = 2.0  # constant column predicted wrongly scores 0, the other column 1
    assert float(metrics.r2_score(_on(wrong), _on(t))) == pytest.approx(0.5)


def test_accuracy_takes_labels_or_one_hot(backend):
    scores = _on([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = xnn.asarray([1, 0, 0, 0])
    assert float(metrics.accuracy(scores, labels)) == 0.75
    one_hot = xnn.data.one_hot(labels, 3, dtype="float64")
    assert float(metrics.accuracy(scores, one_hot)) == 0.75


def test_binary_accuracy_thresholds_at_one_half(backend):
    pred, target = _on([[0.2], [0.7], [0.5], [0.9]]), _on([[0.0], [1.0], [1.0], [0.0]])
    assert float(metrics.binary_accuracy(pred, target)) == 0.5
    assert float(metrics.binary_accuracy(pred, target, threshold=0.4)) == 0.75


def test_metrics_reject_mismatched_shapes(backend):
    with pytest.raises(ValueError, match=r"mse: target shape \(30, 2\) does not match "
                                         r"prediction shape \(30, 3\)"):
        metrics.mse(_on(PRED), _on(TARGET[:, :2]))
    with pytest.raises(ValueError, match=r"accuracy: expected labels of shape \(30,\)"):
        metrics.accuracy(_on(PRED), xnn.asarray(np.zeros(29, dtype=np.int64)))


def test_get_metric_knows_names_and_refuses_unknown_ones():
    assert metrics.get_metric("r2") == ("r2", metrics.r2_score)
    assert metrics.get_metric(metrics.mae) == ("mae", metrics.mae)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.get_metric("f1")


def test_integer_and_bool_targets_are_cast_to_the_prediction_dtype(backend):
    pred = _on([[0.2], [0.7], [0.5], [0.9]])
    host = np.array([[0], [1], [1], [0]])
    ints, bools = xnn.asarray(host), xnn.asarray(host.astype(bool))
    floats = _on([[0.0], [1.0], [1.0], [0.0]])
    for metric in (metrics.mse, metrics.mae, metrics.binary_accuracy, metrics.r2_score):
        expected = float(metric(pred, floats))
        assert float(metric(pred, ints)) == pytest.approx(expected)
        assert float(metric(pred, bools)) == pytest.approx(expected)


def test_confusion_matrix_counts_and_refuses_labels_out_of_range(backend):
    scores = _on([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]])
    labels = xnn.asarray(np.array([0, 1, 1, 2]))
    np.testing.assert_array_equal(xnn.to_numpy(metrics.confusion_matrix(scores, labels, 3)),
                                  [[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"confusion_matrix: labels must lie in \[0, 3\)"):
        metrics.confusion_matrix(scores, xnn.asarray(np.array([0, 1, 3, 2])), 3)


KERAS_AND_SKLEARN_NAMES = {
    "accuracy": "accuracy", "acc": "accuracy", "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy", "binary_accuracy": "binary_accuracy",
    "mse": "mse", "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae",
    "r2_score": "r2_score", "r2": "r2_score",
}


def _accepted_names() -> list[str]:
    """The names an unknown metric's error lists."""
    with pytest.raises(ValueError, match="unknown metric 'f1'; expected a callable or") as err:
        metrics.get_metric("f1")
    return ast.literal_eval(str(err.value).split("one of ", 1)[1])


def _names_in_the_docs_table() -> set[str]:
    """Every `name` in the first column of docs/training.md's metric table."""
    page = (pathlib.Path(__file__).parents[1] / "docs" / "training.md").read_text()
    table = page.split("| metric name", 1)[1].split("\n\n", 1)[0]
    return {name for row in table.splitlines()[2:]
            for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}


def test_metric_names_take_keras_and_scikit_learn_aliases_listed_in_the_docs():
    for name, function in KERAS_AND_SKLEARN_NAMES.items():
        assert metrics.get_metric(name) == (name, getattr(metrics, function))
    assert sorted(KERAS_AND_SKLEARN_NAMES) == _accepted_names()
    assert _names_in_the_docs_table() == set(KERAS_AND_SKLEARN_NAMES)


def test_fit_logs_each_metric_under_the_name_it_was_given_as_keras_does(backend):
    X = xnn.asarray(np.linspace(-1, 1, 40).reshape(20, 2))
    y = X[:, :1] * 2.0
    model = xnn.nn.Linear(2, 1)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                      metrics=["mean_absolute_error", "mae", "mean_squared_error"],
                      validation_data=(X, y), progress=False)
    assert sorted(history.history) == sorted(["loss", "mean_absolute_error", "mae",
                                              "mean_squared_error", "val_loss",
                                              "val_mean_absolute_error", "val_mae",
                                              "val_mean_squared_error"])
    assert history["mean_absolute_error"] == history["mae"]
    np.testing.assert_allclose(history["val_mean_squared_error"], history["val_loss"], rtol=1e-6)
