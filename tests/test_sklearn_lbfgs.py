"""solver="lbfgs" in xnn.sklearn: scipy's L-BFGS-B on NumPy (scikit-learn's iterates), and its
Array API port (xnn/optim/_lbfgs.py) on the other backends, which keeps the parameters on the
device and reaches scikit-learn's loss."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.optimize  # noqa: E402 - installed with scikit-learn
import sklearn  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import xnn  # noqa: E402
from xnn.backend import backend_of  # noqa: E402
from xnn.optim._lbfgs import lbfgs  # noqa: E402
from xnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Standardized iris (labels) or diabetes (targets in units of their spread)."""
    X, y = load_iris(return_X_y=True) if name == "iris" else load_diabetes(return_X_y=True)
    if name == "diabetes":
        y = (y - y.mean()) / y.std()
    return StandardScaler().fit_transform(X), y


def _pair(name: str) -> tuple[type, type]:
    if name == "iris":
        return MLPClassifier, neural_network.MLPClassifier
    return MLPRegressor, neural_network.MLPRegressor


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# --- NumPy: scipy's L-BFGS-B over xnn's objective, scikit-learn's iterates ----------------------

@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("name", ["iris", "diabetes"])
def test_lbfgs_on_numpy_takes_scikit_learns_iterates(name, activation):
    # the same draws, the same objective (to rounding) and scipy's L-BFGS-B: the same weights.
    # 20 iterations: over long runs the objective's rounding (1e-16) grows as any two BLAS
    # builds' would, so later iterates agree to ~1e-9 only (docs/sklearn.md)
    X, y = _data(name)
    ours, theirs = _pair(name)
    settings = dict(solver="lbfgs", hidden_layer_sizes=(8,), activation=activation,
                    max_iter=20, random_state=0)
    with xnn.use_backend("numpy"):
        a = _fit(ours(**settings), X, y)
    b = _fit(theirs(**settings), X, y)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-12)
    for mine, sk in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, sk, rtol=0, atol=1e-12)


# --- every backend: the L-BFGS reaches scikit-learn's loss -----------------------------------

LOSS_SETTINGS = [("iris", dict(hidden_layer_sizes=(10,), alpha=1e-4)),
                 ("iris", dict(hidden_layer_sizes=(10,), alpha=1.0, activation="tanh")),
                 ("diabetes", dict(hidden_layer_sizes=(10,), alpha=1e-2, max_iter=50))]


@pytest.mark.parametrize("name, settings", LOSS_SETTINGS,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in s.items())}"
                              for n, s in LOSS_SETTINGS])
def test_lbfgs_reaches_scikit_learns_loss(backend, name, settings):
    X, y = _data(name)
    ours, theirs = _pair(name)
    settings = dict(solver="lbfgs", random_state=0, **settings)
    a = _fit(ours(**settings, dtype="float64"), X, y)
    b = _fit(theirs(**settings), X, y)
    assert str(backend_of(a.model_.parameters()[0].value)) == str(backend)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-6)
    assert abs(a.n_iter_ - b.n_iter_) <= max(2, b.n_iter_ // 20)
    assert a.score(X, y) == pytest.approx(b.score(X, y), abs=1e-6)


def test_lbfgs_keeps_scikit_learns_attributes_and_warnings(backend):
    # max_iter counts iterations and max_fun evaluations, each with scikit-learn's warning;
    # no loss curve, no best loss, t_ stays 0; warm starts begin from the fitted weights
    X, y = _data("iris")
    for limits, reached in [(dict(max_iter=5), "ITERATIONS"), (dict(max_fun=7), "F,G EVAL")]:
        settings = dict(solver="lbfgs", hidden_layer_sizes=(6,), random_state=0, **limits)
        with pytest.warns(ConvergenceWarning) as ours_warned:
            a = MLPClassifier(**settings).fit(X, y)
        with pytest.warns(ConvergenceWarning) as theirs_warned:
            b = neural_network.MLPClassifier(**settings).fit(X, y)
        assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
        assert reached in str(ours_warned[0].message)
        assert a.n_iter_ == b.n_iter_
        for name in ("loss_curve_", "best_loss_", "validation_scores_", "_optimizer"):
            assert hasattr(a, name) == hasattr(b, name) == False  # noqa: E712
        assert a.t_ == b.t_ == 0
    warm = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(6,), random_state=0,
                         warm_start=True, max_iter=5)
    first = _fit(warm, X, y).loss_
    assert _fit(warm, X, y).loss_ < first


def _rosenbrock(x):
    """Rosenbrock's function of x (1-D) and its gradient, on x's namespace."""
    xp = xnn.backend.array_namespace(x)
    a, b = x[:-1], x[1:]
    f = xp.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)
    inner = -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    zero = xp.zeros((1,), dtype=x.dtype, device=x.device)
    return f, xp.concat([inner, zero]) + xp.concat([zero, 200.0 * (b - a * a)])


@pytest.mark.parametrize("limits", [dict(max_iter=15000, max_fun=15000, gtol=1e-5),
                                    dict(max_iter=10, max_fun=15000, gtol=1e-5),
                                    dict(max_iter=15000, max_fun=12, gtol=1e-5),
                                    dict(max_iter=15000, max_fun=15000, gtol=10.0)],
                         ids=["converges", "max_iter", "max_fun", "gtol"])
def test_lbfgs_port_takes_scipys_steps(backend, limits):
    # the same iterations, evaluations, stopping rule and message as scipy's L-BFGS-B
    x0 = np.linspace(-1.2, 1.0, 6)
    theirs = scipy.optimize.minimize(
        lambda x: (float(_rosenbrock(x)[0]), _rosenbrock(x)[1]), x0, jac=True,
        method="L-BFGS-B", options=dict(maxiter=limits["max_iter"],
                                        maxfun=limits["max_fun"], gtol=limits["gtol"]))
    ours = lbfgs(_rosenbrock, xnn.asarray(x0, dtype="float64"), **limits)
    assert (ours.nit, ours.nfev, ours.status, ours.message) == (
        theirs.nit, theirs.nfev, theirs.status, theirs.message)
    assert ours.fun == pytest.approx(theirs.fun, rel=1e-6, abs=1e-12)
    np.testing.assert_allclose(xnn.to_numpy(ours.x), theirs.x, atol=1e-6)
    assert str(backend_of(ours.x)) == str(backend)


def test_lbfgs_port_reads_back_only_its_line_search_scalars():
    # one read-back per evaluation (f, its slope, max |g|) and one per direction (slope, norm),
    # all from read_numbers: the vectors never leave the device
    pytest.importorskip("array_api_strict")
    from test_sync_guard import HostTraffic  # noqa: PLC0415 - the shared recorder

    with xnn.use_backend("array_api_strict", "device1"):
        x0 = xnn.asarray(np.linspace(-1.2, 1.0, 6), dtype="float64")
        with HostTraffic() as traffic:
            result = lbfgs(_rosenbrock, x0, max_iter=40, max_fun=15000, gtol=1e-5)
    callers = {event.caller.rsplit(":", 1)[0] for event in traffic.events}
    assert callers == {"xnn/_checks.py"}, traffic.events  # read_numbers: one transfer each
    # the first evaluation, then each evaluation and each direction (at most one per evaluation)
    assert result.nfev <= len(traffic.events) <= 2 * result.nfev


def test_lbfgs_fit_reads_back_as_many_times_at_any_length():
    # under dispatch on array_api_strict's second device: beyond the L-BFGS's own scalars,
    # the fit reads back the same few things (targets, the finite check) however long it runs
    pytest.importorskip("array_api_strict")
    from test_sync_guard import HostTraffic  # noqa: PLC0415 - the shared recorder

    X, y = _data("iris")
    with xnn.use_backend("array_api_strict", "device1"):
        Xb, yb = xnn.asarray(X, dtype="float64"), xnn.asarray(y)
    others = []
    for max_iter in (2, 8):
        est = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(6,), max_iter=max_iter,
                            random_state=0)
        with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with HostTraffic() as traffic:
                est.fit(Xb, yb)
        assert str(backend_of(est.model_.parameters()[0].value)) == "array_api_strict:device1"
        others.append([e for e in traffic.events if "xnn/_checks.py" not in e.caller])
    assert len(others[0]) == len(others[1]), others[1]


def test_lbfgs_with_sample_weight_is_scikit_learns():
    # the weighted objective of sgd and adam, minimized by scipy: scikit-learn's weights
    X, y = _data("diabetes")
    w = np.random.default_rng(0).uniform(0.2, 2.0, X.shape[0])
    settings = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    with xnn.use_backend("numpy"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPRegressor(**settings).fit(X, y, sample_weight=w)
        b = neural_network.MLPRegressor(**settings).fit(X, y, sample_weight=w)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-12)
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=0, atol=1e-12)
    assert a.n_iter_ == b.n_iter_
