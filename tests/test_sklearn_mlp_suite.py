"""scikit-learn's own MLP tests, run against xnn.sklearn's estimators (issue 29).

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is read (never copied
into this repository), its one import of the estimators is swapped for xnn.sklearn's, and its
tests are executed into this module, where pytest collects them. ``global_random_seed`` gives
42, scikit-learn's conftest default. Four tests reach into scikit-learn's private internals
and are skipped, saying so; those that need solver="lbfgs" are expected to fail until it is built.
"""

from __future__ import annotations

import pathlib

import pytest

sklearn = pytest.importorskip("sklearn")

SOURCE = pathlib.Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

# they call scikit-learn's private methods (_forward_pass, _loss_grad_lbfgs, _optimizer ...)
PRIVATE = {"test_fit", "test_gradient", "test_learning_rate_warmstart",
           "test_adaptive_learning_rate"}
LBFGS_REASON = "lbfgs: issue 29, not built yet"
# tests whose every case uses solver="lbfgs", and parametrized ones whose lbfgs case does
LBFGS = {"test_lbfgs_classification", "test_lbfgs_regression",
         "test_lbfgs_classification_maxfun", "test_lbfgs_regression_maxfun",
         "test_multilabel_classification", "test_multioutput_regression",
         "test_predict_proba_multilabel", "test_sparse_matrices", "test_warm_start",
         "test_mlp_vs_poisson_glm_equivalent"}
LBFGS_CASES = {"test_mlp_warm_start_no_convergence": "lbfgs"}


def _load() -> dict:
    text = SOURCE.read_text()
    assert text.count(IMPORT) == 1, f"{SOURCE} no longer imports the estimators as {IMPORT!r}"
    namespace: dict = {"__name__": __name__}
    exec(compile(text.replace(IMPORT, "from xnn.sklearn import MLPClassifier, MLPRegressor"),
                 str(SOURCE), "exec"), namespace)
    return {name: f for name, f in namespace.items() if name.startswith("test_")}


globals().update(_load())


@pytest.fixture
def global_random_seed() -> int:
    """scikit-learn's conftest default (SKLEARN_TESTS_GLOBAL_RANDOM_SEED unset)."""
    return 42


@pytest.fixture(autouse=True)
def _mark(request: pytest.FixtureRequest) -> None:
    """Skip the tests of private internals; xfail the cases that need solver="lbfgs" (issue
    29), non-strict so they show as XPASS once it is built."""
    name = request.node.originalname
    if name in PRIVATE:
        pytest.skip("uses scikit-learn's private internals, not its public behaviour")
    case = LBFGS_CASES.get(name)
    if name in LBFGS or (case is not None and case in request.node.callspec.id):
        request.applymarker(pytest.mark.xfail(reason=LBFGS_REASON, strict=False))
