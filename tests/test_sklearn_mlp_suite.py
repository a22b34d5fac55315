"""scikit-learn's own MLP tests, run against xnn.sklearn's estimators (issue 29).

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is read (never copied
into this repository), its one import of the estimators is swapped for xnn.sklearn's, and its
tests are executed into this module, where pytest collects them. ``global_random_seed`` gives
42, scikit-learn's conftest default. Four tests reach into scikit-learn's private internals
and are skipped, saying so; every other test passes.
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
    """Skip the tests of private internals."""
    if request.node.originalname in PRIVATE:
        pytest.skip("uses scikit-learn's private internals, not its public behaviour")
