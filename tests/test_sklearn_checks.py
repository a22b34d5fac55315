"""scikit-learn's own estimator checks over xnn.sklearn's estimators, with no expected failures.

The tags declare array API support, so the checks include scikit-learn's array API checks over
numpy, array_api_strict and torch (cupy where a GPU is present); SCIPY_ARRAY_API=1 is set in
tests/conftest.py before scikit-learn is imported.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from xnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# short trainings stop at max_iter and say so, as scikit-learn's MLP does; not a failure here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# a small, fast configuration: few units, few epochs, a large step so they still learn
FAST = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.05)


# solver="lbfgs" (scikit-learn checks its own MLPClassifier's sample weights with it), small and
# short: at the defaults, 100 units for 200 iterations drive some of the multilabel check's
# probabilities to 1.0, which it refuses, for scikit-learn's own MLPClassifier as for this one
LBFGS = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30)


@parametrize_with_checks([MLPClassifier(), MLPRegressor(), MLPClassifier(**FAST),
                          MLPRegressor(**FAST), MLPClassifier(**LBFGS), MLPRegressor(**LBFGS)])
def test_sklearn_check_passes(estimator, check):
    check(estimator)
