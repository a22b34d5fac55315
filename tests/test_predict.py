"""xnn.predict: outputs in evaluation mode, data converted as fit converts it, batched, one
array on the model's backend, the model's own modes put back."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn


def _dropout_model() -> nn.Sequential:
    xnn.seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))


def _rows(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3))  # float64, as users' data often is


def test_predict_runs_dropout_in_eval_mode_and_puts_the_training_mode_back(backend):
    model = _dropout_model()
    X = _rows()
    first, second = xnn.predict(model, X), xnn.predict(model, X)
    np.testing.assert_array_equal(xnn.to_numpy(first), xnn.to_numpy(second))
    assert all(m.training for m in model.modules())
    model.eval()
    np.testing.assert_array_equal(xnn.to_numpy(first),
                                  xnn.to_numpy(model(xnn.asarray(X, dtype="float32"))))


def test_predict_puts_back_each_modules_own_mode(backend):
    model = _dropout_model()
    model[2].eval()  # a mixed model: only the dropout layer in eval mode
    modes = [m.training for m in model.modules()]
    xnn.predict(model, _rows())
    assert [m.training for m in model.modules()] == modes
    with pytest.raises(ValueError, match="expected 3 input features, got 4"):
        xnn.predict(model, np.ones((2, 4)))
    assert [m.training for m in model.modules()] == modes  # also after a refused call


def test_predict_converts_float64_numpy_data_as_fit_does(backend):
    model = _dropout_model().eval()
    X = _rows()
    with pytest.raises(TypeError, match="float32"):  # the model itself takes its own dtype only
        model(xnn.asarray(X))
    out = xnn.predict(model, X)
    assert xnn.backend.backend_of(out).name == backend.name
    assert out.dtype == model[0].weight.value.dtype and tuple(out.shape) == (10, 2)
    from_lists = xnn.predict(model, X.tolist())
    np.testing.assert_array_equal(xnn.to_numpy(out), xnn.to_numpy(from_lists))


def test_predict_returns_arrays_of_the_models_backend_not_the_active_one(backend):
    model = _dropout_model()
    with xnn.use_backend("numpy"):
        out = xnn.predict(model, _rows())
    assert xnn.backend.backend_of(out).name == backend.name


def test_predict_in_batches_joins_the_same_outputs(backend):
    model = _dropout_model()
    X = _rows(10)
    whole = xnn.to_numpy(xnn.predict(model, X))
    for batch_size in (1, 3, 10, 64):
        batched = xnn.predict(model, X, batch_size=batch_size)
        assert tuple(batched.shape) == (10, 2)
        np.testing.assert_allclose(xnn.to_numpy(batched), whole, rtol=1e-5, atol=1e-6)


def test_predict_uses_batch_norms_running_statistics(backend):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    X = _rows(32)
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
            optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), epochs=5, batch_size=8,
            progress=False)
    # in eval mode a row's output does not depend on the rows batched with it
    one_by_one = xnn.to_numpy(xnn.predict(model, X, batch_size=1))
    np.testing.assert_allclose(one_by_one, xnn.to_numpy(xnn.predict(model, X)),
                               rtol=1e-5, atol=1e-6)


def test_predict_refuses_batches_that_would_change_a_batch_statistics_models_outputs(backend):
    xnn.seed(0)
    inner = nn.Sequential(nn.BatchNorm1d(8, track_running_stats=False))
    model = nn.Sequential(nn.Linear(3, 8), inner)
    X = _rows(10)
    assert model[1][0].batch_dependent and not nn.BatchNorm1d(8).batch_dependent
    whole = xnn.to_numpy(xnn.predict(model, X))
    # eval mode normalises with the batch's own statistics, as in PyTorch
    np.testing.assert_allclose(whole.mean(axis=0), 0.0, atol=1e-5)
    for batch_size in (None, 10, 64):  # all rows in one batch: the same outputs
        np.testing.assert_array_equal(xnn.to_numpy(xnn.predict(model, X, batch_size=batch_size)),
                                      whole)
    with pytest.raises(ValueError, match=r"predict: batch_size=4 splits the 10 rows, but "
                                         r"BatchNorm1d\(8, .*track_running_stats=False\) "
                                         r"\(layer '1.0'\) computes its evaluation-mode output "
                                         r"from the whole batch.*batch_size=None"):
        xnn.predict(model, X, batch_size=4)


def test_predict_gives_labels_and_probabilities_of_a_classifier(backend):
    model = _dropout_model()
    logits = xnn.predict(model, _rows())
    xp = xnn.get_backend().xp
    labels = xnn.to_numpy(xp.argmax(logits, axis=1))
    probabilities = xnn.to_numpy(nn.Softmax()(logits))
    np.testing.assert_array_equal(probabilities.argmax(axis=1), labels)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_predict_runs_a_model_without_parameters_on_the_active_backend(backend):
    out = xnn.predict(nn.Sequential(nn.ReLU()), [[1.0, -1.0]])
    assert xnn.backend.backend_of(out).name == backend.name
    np.testing.assert_array_equal(xnn.to_numpy(out), [[1.0, 0.0]])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"model": "model"}, TypeError, r"predict: model must be an xnn.nn.Module, got str"),
    ({"X": 3.0}, ValueError, r"predict: X must have a first axis of rows, got a 0-d array"),
    ({"X": [["a", "b", "c"]]}, TypeError, r"predict: X cannot be used as data"),
    ({"X": [[1j, 0, 0]]}, TypeError, r"predict: X has the complex dtype"),
    ({"batch_size": 0}, ValueError, r"predict: batch_size must be a positive int, got 0"),
    ({"batch_size": 2.5}, TypeError, r"predict: batch_size must be"),
    ({"batch_size": True}, TypeError, r"predict: batch_size must be"),
])
def test_predict_refuses_bad_arguments_naming_them(kwargs, error, message):
    args = {"model": _dropout_model(), "X": _rows(), **kwargs}
    with pytest.raises(error, match=message):
        xnn.predict(args.pop("model"), args.pop("X"), **args)
