"""xnn.sklearn's estimators: scikit-learn's MLP semantics, its tools, and array API dispatch.

scikit-learn's own estimator checks are in tests/test_sklearn_checks.py.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402 - installed with scikit-learn
import sklearn  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits,  # noqa: E402
                              make_classification, make_multilabel_classification,
                              make_regression)
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import (GridSearchCV, cross_val_score,  # noqa: E402
                                     train_test_split)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import xnn  # noqa: E402
from xnn.backend import backend_of, dtype_name  # noqa: E402
from xnn.extras import install_hint  # noqa: E402
from xnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SMALL = dict(hidden_layer_sizes=(7, 5), random_state=0)


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "multilabel":
        return make_multilabel_classification(n_samples=120, n_features=6, n_classes=3,
                                              random_state=0)
    if kind == "regression":
        X, y = make_regression(n_samples=120, n_features=6, n_targets=2, random_state=0)
        return X, y / 100
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return X, (y > 0).astype(int) if kind == "binary" else y


def _pair(kind: str) -> tuple[type, type]:
    if kind == "regression":
        return MLPRegressor, neural_network.MLPRegressor
    return MLPClassifier, neural_network.MLPClassifier


# --- the same numbers as scikit-learn's MLP ------------------------------------------------------

# xnn's training is scikit-learn's step for step: same Glorot draws from random_state, same
# shuffled batches, same loss with its L2 term, same stopping rule, schedules and early stopping
SGD_SETTINGS = [
    dict(solver="sgd", max_iter=20, batch_size=50),
    dict(solver="sgd", shuffle=False, max_iter=20, batch_size=50, nesterovs_momentum=False,
         alpha=0.1),
    dict(solver="sgd", max_iter=30, learning_rate="invscaling", learning_rate_init=0.1),
    dict(solver="sgd", max_iter=60, momentum=0, learning_rate="adaptive", n_iter_no_change=2,
         tol=1e-2),
    # momentum across a changed rate: the buffer is rescaled as scikit-learn's velocity holds it
    dict(solver="sgd", max_iter=80, learning_rate="adaptive", n_iter_no_change=2, tol=1e-2,
         nesterovs_momentum=False),
    dict(solver="sgd", max_iter=60, early_stopping=True, n_iter_no_change=3),
]
KINDS = ["binary", "multiclass", "multilabel", "regression"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=lambda s: "-".join(
    f"{k}={v}" for k, v in s.items() if k != "solver"))
def test_sgd_training_is_scikit_learns_step_for_step(kind, settings):
    X, y = _data(kind)
    ours, theirs = _pair(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(**SMALL, **settings).fit(X, y)
        b = theirs(**SMALL, **settings).fit(X, y)
    assert (a.n_iter_, a.t_, a.n_layers_, a.n_outputs_, a.out_activation_) == (
        b.n_iter_, b.t_, b.n_layers_, b.n_outputs_, b.out_activation_)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12, atol=1e-14)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-12)
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert mine.shape == sk.shape
        np.testing.assert_allclose(mine, sk, rtol=1e-10, atol=1e-12)
    if settings.get("early_stopping"):
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, atol=1e-12)
        assert a.best_validation_score_ == pytest.approx(b.best_validation_score_, abs=1e-12)
        assert a.best_loss_ is None and b.best_loss_ is None
    else:
        assert a.best_loss_ == pytest.approx(b.best_loss_, rel=1e-12)
        assert a.validation_scores_ is None and a.best_validation_score_ is None
    method = "predict" if kind == "regression" else "predict_proba"
    np.testing.assert_allclose(getattr(a, method)(X), getattr(b, method)(X), atol=1e-10)
    if kind != "regression":
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("kind, lr", [("multiclass", 1e6), ("regression", 1e6),
                                      ("regression", 1e150)])
def test_diverging_early_stopping_scores_and_restores_as_scikit_learn(kind, lr):
    # a classifier's score stays a number however its probabilities overflow (scikit-learn
    # scores its labels); a regressor's is NaN once a prediction is not finite, and with every
    # score NaN the initial weights are the best ones and come back
    X, y = _data(kind)
    ours, theirs = _pair(kind)
    settings = dict(solver="sgd", shuffle=False, early_stopping=True, n_iter_no_change=2,
                    max_iter=10, learning_rate_init=lr)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(**SMALL, **settings).fit(X, y)
        b = theirs(**SMALL, **settings).fit(X, y)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9)
    assert a.n_iter_ == b.n_iter_
    if lr == 1e150:
        assert all(np.isnan(a.validation_scores_)) and a.best_validation_score_ == -np.inf
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=1e-9)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_warm_start_and_partial_fit_continue_as_scikit_learns(kind):
    X, y = _data(kind)
    ours, theirs = _pair(kind)
    settings = dict(solver="sgd", max_iter=5, batch_size=40, warm_start=True)
    extra = {"classes": np.unique(y)} if kind != "regression" else {}
    a, b = ours(**SMALL, **settings), theirs(**SMALL, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (a, b):
            est.fit(X, y).fit(X, y)          # a second fit goes on from the first
            est.partial_fit(X[:60], y[:60], **extra)  # and one more epoch on half the rows
    assert len(a.loss_curve_) == 11 and (a.n_iter_, a.t_) == (b.n_iter_, b.t_)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=1e-10, atol=1e-12)


def test_poisson_loss_is_scikit_learns_half_deviance_step_for_step():
    X, y = _data("regression")
    y = np.exp(y[:, 0])  # positive counts-like targets
    settings = dict(loss="poisson", solver="sgd", shuffle=False, max_iter=15, batch_size=40,
                    learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPRegressor(**SMALL, **settings).fit(X, y)
        b = neural_network.MLPRegressor(**SMALL, **settings).fit(X, y)
    assert a.out_activation_ == b.out_activation_ == "exp"
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


def test_poisson_loss_sums_the_outputs_deviance_as_scikit_learn():
    # scikit-learn averages the squared error over several outputs but sums Poisson's
    X, y = _data("regression")
    y = np.exp(y)
    settings = dict(loss="poisson", solver="sgd", max_iter=10, batch_size=40,
                    learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPRegressor(**SMALL, **settings).fit(X, y)
        b = neural_network.MLPRegressor(**SMALL, **settings).fit(X, y)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


@pytest.mark.parametrize("y, message", [
    ([0, 1, -1, 2], "Some value(s) of y are negative which is not allowed for Poisson"),
    ([0, 0, 0, 0], "Sum of y is not positive which is necessary for Poisson regression."),
])
def test_poisson_refuses_targets_it_cannot_fit(y, message):
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=re.escape(message)):
        MLPRegressor(loss="poisson").fit(X, np.array(y, dtype=float))
    # a partial_fit batch of zero counts is an update like any other
    MLPRegressor(loss="poisson", **SMALL).partial_fit(X, np.zeros(4))


# scikit-learn divides each batch's loss, its L2 term and their gradients by the batch's summed
# weights, and weights the early-stopping score; the same split takes the weights along
WEIGHTED_SETTINGS = [
    dict(solver="sgd", max_iter=15, batch_size=50, alpha=0.1),
    dict(solver="adam", max_iter=15, batch_size=40, shuffle=False, learning_rate_init=0.01),
    dict(solver="sgd", max_iter=40, early_stopping=True, n_iter_no_change=3),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("settings", WEIGHTED_SETTINGS, ids=lambda s: "-".join(
    f"{k}={v}" for k, v in s.items()))
def test_sample_weight_training_is_scikit_learns_step_for_step(kind, settings):
    X, y = _data(kind)
    w = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0])
    ours, theirs = _pair(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(**SMALL, **settings).fit(X, y, sample_weight=w)
        b = theirs(**SMALL, **settings).fit(X, y, sample_weight=w)
        plain = ours(**SMALL, **settings).fit(X, y)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12, atol=1e-14)
    assert not np.allclose(a.loss_curve_, plain.loss_curve_, rtol=1e-6)  # the weights count
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=1e-10, atol=1e-12)
    if settings.get("early_stopping"):
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, atol=1e-12)
    assert a.score(X, y, sample_weight=w) == pytest.approx(b.score(X, y, sample_weight=w),
                                                           abs=1e-12)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_partial_fit_with_sample_weight_is_scikit_learns(kind):
    X, y = _data(kind)
    w = np.random.default_rng(1).uniform(0.1, 3.0, X.shape[0])
    ours, theirs = _pair(kind)
    extra = {"classes": np.unique(y)} if kind != "regression" else {}
    a, b = ours(**SMALL, batch_size=40), theirs(**SMALL, batch_size=40)
    for est in (a, b):
        est.partial_fit(X[:70], y[:70], sample_weight=w[:70], **extra)
        est.partial_fit(X[70:], y[70:], w[70:])  # positional, third, as scikit-learn's
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=1e-10, atol=1e-12)


def test_sample_weight_of_the_wrong_length_is_scikit_learns_error():
    X, y = _data("binary")
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(5,\), expected \(120,\)"):
        MLPClassifier(**SMALL).fit(X, y, sample_weight=np.ones(5))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_adam_training_is_scikit_learns_step_for_step(kind, activation):
    # torch's Adam adds epsilon after the bias correction, scikit-learn's before it; the
    # estimator hands torch's form epsilon / sqrt(1 - beta2^t), which is scikit-learn's step
    X, y = _data(kind)
    ours, theirs = _pair(kind)
    settings = dict(solver="adam", max_iter=30, batch_size=50, activation=activation,
                    learning_rate_init=0.01, epsilon=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(**SMALL, **settings).fit(X, y)
        b = theirs(**SMALL, **settings).fit(X, y)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=1e-9, atol=1e-12)


def test_loss_includes_the_l2_term_as_scikit_learn_divides_it():
    X, y = _data("regression")
    one = dict(solver="sgd", max_iter=1, batch_size=120, shuffle=False, learning_rate_init=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPRegressor(**SMALL, **one, alpha=0.0).fit(X, y)
        penalized = MLPRegressor(**SMALL, **one, alpha=3.0).fit(X, y)
    squares = sum(float(np.sum(w * w)) for w in penalized.coefs_)
    # one full batch at (almost) the initial weights: loss = data loss + 0.5 alpha ||W||^2 / n
    assert penalized.loss_ - plain.loss_ == pytest.approx(0.5 * 3.0 * squares / 120, rel=1e-6)


# --- the estimator's contract ------------------------------------------------------------------

def test_reaching_max_iter_warns_as_scikit_learn_does():
    X, y = _data("binary")
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(**SMALL, max_iter=3).fit(X, y)


def test_partial_fit_needs_classes_first_and_counts_samples_without_warning():
    X, y = _data("multiclass")
    clf = MLPClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.partial_fit(X[:60], y[:60], classes=np.unique(y))
        clf.partial_fit(X[60:], y[60:])
    assert clf.t_ == 120 and clf.n_iter_ == 1 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y + 7)


def test_partial_fit_refuses_early_stopping():
    X, y = _data("regression")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(**SMALL, early_stopping=True).partial_fit(X, y)


def test_partial_fit_is_offered_only_for_the_stochastic_solvers():
    # scikit-learn's rule (_check_solver); its MLPRegressor passes the method itself, uncalled,
    # to available_if, so it shows partial_fit for lbfgs too: xnn follows the rule for both
    for ours in (MLPClassifier, MLPRegressor):
        for solver in ("sgd", "adam", "lbfgs"):
            assert hasattr(ours(solver=solver), "partial_fit") == (solver != "lbfgs")
    assert not hasattr(neural_network.MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as err:
        MLPRegressor(solver="lbfgs").partial_fit  # noqa: B018 - the look-up is the test
    assert str(err.value.__cause__) == ("partial_fit is only available for stochastic "
                                        "optimizers. lbfgs is not stochastic.")


@pytest.mark.parametrize("labels", [[False, True], [3, 9], ["no", "yes"]],
                         ids=["bool", "int", "str"])
def test_early_stopping_split_error_names_the_classes_as_scikit_learn(labels):
    X = [[1, 2], [2, 3], [3, 4], [4, 5]]
    y = np.array(labels)[[0, 0, 0, 1]]
    messages = []
    for est in (MLPClassifier(early_stopping=True),
                neural_network.MLPClassifier(early_stopping=True)):
        with pytest.raises(ValueError, match="The least populated classes") as err:
            est.fit(X, y)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "['True']" in messages[0]


@pytest.mark.parametrize("dtype", [bool, np.int32, np.int64, str, object])
def test_classes_keep_the_labels_dtype_as_scikit_learn(dtype):
    X, y = _data("binary")
    labels = np.array([False, True], dtype=bool).astype(dtype)[y] if dtype is not str and \
        dtype is not object else np.array(["no", "yes"], dtype=dtype)[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**SMALL, max_iter=3).fit(X, labels)
        b = neural_network.MLPClassifier(**SMALL, max_iter=3).fit(X, labels)
    assert a.classes_.dtype == b.classes_.dtype and list(a.classes_) == list(b.classes_)
    assert a.predict(X).dtype == b.predict(X).dtype
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_unfitted_estimator_raises_not_fitted():
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 3)))


def test_unknown_labels_at_predict_are_scikit_learns_value_error():
    X, y = _data("multiclass")
    clf = MLPClassifier(**SMALL, max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the "
                                             "same classes"):
            clf.fit(X, np.where(y == 2, 5, y))


def test_multilabel_predicts_an_indicator_matrix_like_scikit_learn():
    X, y = _data("multilabel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=30).fit(X, y)
    pred = clf.predict(X)
    assert pred.shape == y.shape and set(np.unique(pred)) <= {0, 1}
    assert clf.predict_proba(X).shape == y.shape and clf.out_activation_ == "logistic"


def test_string_labels_come_back_as_strings():
    X, y = _data("multiclass")
    labels = np.array(["cat", "dog", "emu"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=50, learning_rate_init=0.05).fit(X, labels)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= set(labels) and clf.score(X, labels) > 0.6


def test_float32_input_trains_in_float32_and_dtype_overrides():
    X, y = _data("regression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = MLPRegressor(**SMALL, max_iter=2).fit(X.astype(np.float32), y)
        double = MLPRegressor(**SMALL, max_iter=2, dtype="float64").fit(X.astype(np.float32), y)
    assert dtype_name(single.model_.parameters()[0].value.dtype) == "float32"
    # predictions in the dtype NumPy gives X @ coefs_, as scikit-learn's
    assert single.coefs_[0].dtype == np.float32 and single.predict(X).dtype == np.float64
    assert single.predict(X.astype(np.float32)).dtype == np.float32
    assert double.predict(X.astype(np.float32)).dtype == np.float64
    assert dtype_name(double.model_.parameters()[0].value.dtype) == "float64"


def test_dataframe_feature_names_are_kept_and_checked():
    import pandas as pd  # noqa: PLC0415 - in the test extra
    X, y = _data("binary")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=2).fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(X)


def test_model_is_an_xnn_sequential_that_save_and_load_keep(tmp_path):
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=5).fit(X, y)
    assert isinstance(clf.model_, xnn.nn.Sequential)
    xnn.save(tmp_path / "mlp.xnn", clf.model_)
    loaded = xnn.load(tmp_path / "mlp.xnn").model
    logits = xnn.to_numpy(loaded(xnn.asarray(X, dtype="float64")))
    np.testing.assert_allclose(xnn.to_numpy(xnn.nn.Softmax()(xnn.asarray(logits))),
                               clf.predict_proba(X), atol=1e-12)


def test_verbose_prints_scikit_learns_progress_lines(capsys):
    X, y = _data("regression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPRegressor(**SMALL, max_iter=2, verbose=True, early_stopping=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and lines[1].startswith("Validation score")
    assert len(lines) == 4


def test_without_scikit_learn_the_module_says_how_to_install_it():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import xnn.sklearn\nexcept ImportError as err:\n    print(err)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert install_hint("sklearn") in out.stdout
    assert 'pip install -e ".[sklearn]"' in out.stdout


def test_importing_xnn_does_not_import_scikit_learn():
    code = "import sys, xnn; print('sklearn' in sys.modules or 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- scikit-learn's tools ----------------------------------------------------------------------

def test_pipeline_grid_search_and_cross_validation_work():
    X, y = _data("multiclass")
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**SMALL, max_iter=40,
                                                         learning_rate_init=0.02))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1],
                                     "mlpclassifier__hidden_layer_sizes": [(5,), (9,)]}, cv=3)
        search.fit(X, y)
    assert scores.shape == (3,) and scores.mean() > 0.6
    assert set(search.best_params_) == {"mlpclassifier__alpha",
                                        "mlpclassifier__hidden_layer_sizes"}
    assert search.best_score_ == pytest.approx(max(search.cv_results_["mean_test_score"]))


# run in a fresh interpreter: once a test puts benchmarks/ on sys.path, its distributed.py
# shadows the `distributed` package that dask.distributed imports
DASK_SEARCH = """
import json, warnings
import joblib
from dask.distributed import Client, LocalCluster, get_task_stream
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from xnn.sklearn import MLPClassifier

warnings.simplefilter("ignore")
X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(7, 5), random_state=0, max_iter=20,
                                    learning_rate_init=0.02),
                      {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(5,), (9,)]}, cv=3)
serial = clone(search).fit(X, y)
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                  dashboard_address=None) as cluster, Client(cluster) as client, \\
        joblib.parallel_backend("dask"), get_task_stream(client) as tasks:
    search.fit(X, y)
print(json.dumps({"workers": sorted({t["worker"] for t in tasks.data}), "tasks": len(tasks.data),
                  "results": [{k: [str(v) for v in r.cv_results_[k]] for k in
                               ("mean_test_score", "std_test_score", "rank_test_score",
                                "params")} for r in (search, serial)],
                  "best": [str(r.best_params_) for r in (search, serial)],
                  "proba": [r.predict_proba(X).tolist() for r in (search, serial)]}))
"""


def test_grid_search_on_a_dask_cluster_equals_the_serial_search():
    # docs/sklearn.md: joblib's dask backend sends each (parameters, fold) fit to a worker
    # process; same random_state, same folds: the same scores as fitting them one by one
    out = subprocess.run([sys.executable, "-c", DASK_SEARCH], capture_output=True, text=True)
    if re.search(r"ModuleNotFoundError: No module named '(dask|distributed)", out.stderr):
        pytest.skip("the Dask search needs dask and distributed: pip install dask distributed")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # the 12 fits (4 settings, 3 folds) ran as tasks on the cluster's workers
    assert found["tasks"] == 12 and all(w.startswith("tcp://") for w in found["workers"])
    dask, serial = found["results"]
    assert dask == serial and dask["mean_test_score"] != [str(0.0)] * 4
    assert found["best"][0] == found["best"][1]
    assert found["proba"][0] == found["proba"][1]


def test_clone_copies_parameters_and_no_fitted_state():
    X, y = _data("binary")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=2, backend="numpy", dtype="float64").fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and not hasattr(copy, "model_")
    with pytest.raises(ValueError, match="The 'backend' parameter"):  # a name, not a Backend
        MLPClassifier(backend=xnn.get_backend()).fit(X, y)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickled_estimator_predicts_the_same_probabilities(dump, tmp_path):
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=5).fit(X, y)
    if dump == "pickle":
        back = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "clf.joblib")
        back = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, y)  # the optimizer's state came along too
    assert back.t_ == clf.t_ + len(X)


# --- array API dispatch and backends -----------------------------------------------------------

def _is_gpu(backend: xnn.Backend) -> bool:
    return backend.name == "cupy" or (backend.name == "torch" and "cuda" in str(backend.device))


def test_dispatch_partial_fit_takes_classes_in_the_inputs_library(backend):
    X, y = _data("multiclass")
    Xb, yb = xnn.asarray(X, dtype="float64"), xnn.asarray(y)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(**SMALL).partial_fit(Xb, yb, classes=xnn.asarray(np.unique(y)))
        pred = est.predict(Xb)
        score = est.score(Xb, yb)
    assert isinstance(est.classes_, np.ndarray)  # as fit keeps them
    np.testing.assert_array_equal(est.classes_, np.unique(y))
    assert backend_of(pred).name == backend.name
    assert float(score) == pytest.approx(np.mean(xnn.to_numpy(pred) == y), rel=1e-6)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_dispatch_trains_on_the_inputs_library_and_returns_its_arrays(backend, kind):
    X, y = _data(kind)
    ours = MLPClassifier if kind != "regression" else MLPRegressor
    Xb, yb = xnn.asarray(X, dtype="float64"), xnn.asarray(y)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ours(**SMALL, max_iter=5).fit(Xb, yb)
        pred = est.predict(Xb)
        if backend.name == "jax" and kind == "regression":  # scikit-learn's limit, not xnn's
            with pytest.raises(TypeError, match="JAX arrays are immutable"):
                est.score(Xb, yb)  # r2_score writes into an array in place
            score = float(sklearn.metrics.r2_score(y, xnn.to_numpy(pred)))
        else:
            score = est.score(Xb, yb)
        outputs = [pred, est.coefs_[0]]
        if kind != "regression":
            outputs.append(est.predict_proba(Xb))
            outputs.append(est.predict_log_proba(Xb))
    assert str(backend_of(est.model_.parameters()[0].value)) == str(backend)
    want = "float32" if _is_gpu(backend) else "float64"
    assert dtype_name(est.model_.parameters()[0].value.dtype) == want
    for out in outputs:
        assert str(backend_of(out)) == str(backend)
    assert isinstance(score, float)
    # the same numbers as a NumPy fit (same draws, same batches; float64 off the GPU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = ours(**SMALL, max_iter=5).fit(X, y)
    if _is_gpu(backend):  # float32 there: a borderline label may flip
        assert score == pytest.approx(host.score(X, y), abs=0.05)
    else:
        np.testing.assert_allclose(xnn.to_numpy(pred), host.predict(X), atol=1e-7)
        # scikit-learn may average the hits in float32 on some devices: 1e-6, not 1e-9
        assert score == pytest.approx(host.score(X, y), abs=1e-6)


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_dispatch_sample_weight_trains_on_the_backend_as_on_numpy(backend, kind):
    X, y = _data(kind)
    w = np.random.default_rng(2).uniform(0.1, 3.0, X.shape[0])
    ours = MLPClassifier if kind != "regression" else MLPRegressor
    settings = dict(**SMALL, max_iter=6, early_stopping=True, n_iter_no_change=2)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ours(**settings).fit(*(xnn.asarray(a, dtype="float64") for a in (X, y, w)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = ours(**settings).fit(X, y, sample_weight=w)
    assert str(backend_of(est.model_.parameters()[0].value)) == str(backend)
    tol = 1e-4 if _is_gpu(backend) else 1e-9
    np.testing.assert_allclose(est.validation_scores_, host.validation_scores_, atol=tol)
    np.testing.assert_allclose(xnn.to_numpy(est.coefs_[0]), host.coefs_[0], atol=tol)


def test_sample_weight_that_requires_grad_is_detached_in_fit_and_score():
    torch = pytest.importorskip("torch")
    X, y = _data("binary")
    Xt, yt = torch.tensor(X, requires_grad=True), torch.tensor(y)
    w = torch.tensor(np.random.default_rng(3).uniform(0.1, 3.0, X.shape[0]), requires_grad=True)
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns where a tensor that requires grad leaks
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=5).fit(Xt, yt, sample_weight=w)
        score = clf.score(Xt, yt, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = MLPClassifier(**SMALL, max_iter=5).fit(X, y, sample_weight=w.detach().numpy())
    assert score == pytest.approx(host.score(X, y, sample_weight=w.detach().numpy()), abs=1e-9)


def test_dispatch_early_stopping_and_multi_output_stay_on_the_backend(backend):
    X, y = _data("regression")
    Xb, yb = xnn.asarray(X, dtype="float64"), xnn.asarray(y, dtype="float64")
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(**SMALL, max_iter=8, early_stopping=True).fit(Xb, yb)
        pred = reg.predict(Xb)
    assert str(backend_of(pred)) == str(backend) and tuple(pred.shape) == y.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        host = MLPRegressor(**SMALL, max_iter=8, early_stopping=True).fit(X, y)
    # the same validation rows and scores as on NumPy
    tol = 1e-4 if _is_gpu(backend) else 1e-9
    np.testing.assert_allclose(reg.validation_scores_, host.validation_scores_, atol=tol)


def test_without_dispatch_training_runs_on_xnns_active_backend(backend):
    X, y = _data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(**SMALL, max_iter=3).fit(X, y)
    assert str(backend_of(clf.model_.parameters()[0].value)) == str(backend)
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.float64
    assert isinstance(clf.coefs_[0], np.ndarray)


def test_backend_parameter_chooses_where_training_runs(backend):
    X, y = _data("regression")
    with xnn.use_backend("numpy"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(**SMALL, max_iter=3, backend=backend.name,
                           device=None if backend.name == "numpy" else backend.device).fit(X, y)
    assert str(backend_of(reg.model_.parameters()[0].value)) == str(backend)
    assert isinstance(reg.predict(X), np.ndarray)


# --- quality against scikit-learn's MLP ---------------------------------------------------------

def _scaled(load):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.mark.parametrize("load, ours, theirs, settings, floor", [
    (load_digits, MLPClassifier, neural_network.MLPClassifier, dict(max_iter=60), 0.9),
    (load_breast_cancer, MLPClassifier, neural_network.MLPClassifier, dict(max_iter=100), 0.9),
    # a small, noisy regression: early stopping is what keeps an MLP from overfitting it
    (load_diabetes, MLPRegressor, neural_network.MLPRegressor, dict(early_stopping=True), 0.3),
], ids=["digits", "breast_cancer", "diabetes"])
def test_test_score_is_within_0_02_of_scikit_learns_mlp(load, ours, theirs, settings, floor):
    X_train, X_test, y_train, y_test = _scaled(load)
    scores = []
    for cls in (ours, theirs):
        model = cls(random_state=0, **settings)
        if load is load_diabetes:  # the target is scaled too
            model = TransformedTargetRegressor(model, transformer=StandardScaler())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores.append(model.fit(X_train, y_train).score(X_test, y_test))
    assert abs(scores[0] - scores[1]) <= 0.02, scores
    assert scores[0] > floor, scores


# --- host traffic: reads only at epoch ends ------------------------------------------------------

@pytest.mark.parametrize("ours, kind, early", [
    (MLPClassifier, "multiclass", False), (MLPClassifier, "binary", True),
    (MLPRegressor, "regression", True)], ids=["multiclass", "binary-early", "regression-early"])
def test_fit_under_dispatch_reads_back_only_at_epoch_ends(ours, kind, early):
    pytest.importorskip("array_api_strict")
    from test_sync_guard import HostTraffic, _report  # noqa: PLC0415 - the shared recorder

    X, y = _data(kind)
    device1 = xnn.use_backend("array_api_strict", "device1")
    with device1:
        Xb, yb = xnn.asarray(X[:80], dtype="float64"), xnn.asarray(y[:80])
    est = ours(**SMALL, max_iter=3, batch_size=16, early_stopping=early,
               validation_fraction=0.2)
    steps = 4 if early else 5  # per epoch: 64 or 80 training rows in batches of 16

    def clock() -> int | None:  # optimizer steps taken, once training has begun
        opt = est.__dict__.get("_optimizer")
        return None if opt is None else opt.steps

    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with HostTraffic(clock) as traffic:
            est.fit(Xb, yb)
    assert str(backend_of(est.model_.parameters()[0].value)) == "array_api_strict:device1"
    inside = [e for e in traffic.events if e.when is not None and e.when % steps != 0]
    assert not inside, _report(inside, where="inside an epoch")
    at_ends = [e for e in traffic.events if e.when in (steps, 2 * steps)]
    assert at_ends, "the epoch-end reads (loss, validation score) should be seen"


def test_benchmark_script_runs_both_estimators_for_the_same_epochs(capsys):
    pytest.importorskip("threadpoolctl")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import sklearn_compare  # noqa: PLC0415 - benchmarks/ is on the path above

    (row,) = sklearn_compare.main(["--repeats", "1", "--datasets", "diabetes"])
    assert row["epochs"] == 200 and row["xnn_s"] > 0 and row["sklearn_s"] > 0
    # the same draws, batches and steps: the same network, so the same test score
    assert row["xnn_score"] == pytest.approx(row["sklearn_score"], abs=1e-9)
    assert "diabetes" in capsys.readouterr().out
