"""One fixture runs every test on every backend; XNN_TEST_BACKENDS=numpy,cupy picks some.

Backends whose library is missing are skipped with the reason; with XNN_REQUIRE_GPU=1 a GPU
backend that cannot run fails instead, so a GPU run cannot pass by skipping.

jax runs only where XNN_TEST_BACKENDS names it (``XNN_TEST_BACKENDS=jax``, or a list with it):
it came in while the suite was not yet green on it, and the default run must stay green. The
whole suite is green on jax now; emptying NAMED_ONLY adds it to the default run (which then
takes several minutes longer).
"""

from __future__ import annotations

import os

# scikit-learn's array API mode (its estimator checks over torch and array_api_strict, used by
# tests/test_sklearn.py) needs this before scipy or scikit-learn is first imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402

import xnn  # noqa: E402
from xnn.backend import BackendUnavailableError  # noqa: E402

# (id, backend name, device); array_api_strict's "device1" makes a forgotten device= fail on CPU
try:  # small arrays: one thread is faster, and CI's two cores are shared with other work
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

ALL_BACKENDS = [
    ("numpy", "numpy", None),
    ("array_api_strict", "array_api_strict", None),
    ("array_api_strict-device1", "array_api_strict", "device1"),
    ("torch", "torch", "cpu"),
    ("cupy", "cupy", None),
    ("jax", "jax", None),
]
GPU_BACKENDS = {"cupy"}
NAMED_ONLY = {"jax"}  # in the run only where XNN_TEST_BACKENDS names them (see the docstring)
IMMUTABLE = {"jax"}  # arrays never written in place: updates rebind the slot to a new array


def _wanted() -> set[str]:
    """The names XNN_TEST_BACKENDS lists (ids or library names, any case); empty: all."""
    wanted = os.environ.get("XNN_TEST_BACKENDS", "")
    return {w.strip().lower() for w in wanted.split(",") if w.strip()}


def _selected() -> list[tuple[str, str, object]]:
    names = _wanted()
    return [b for b in ALL_BACKENDS
            if b[0] in names or b[1] in names or not names and b[1] not in NAMED_ONLY]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse unknown names in XNN_TEST_BACKENDS, and XNN_REQUIRE_GPU=1 without a GPU backend
    among the selected ones: either would let a GPU run pass without running on the GPU."""
    setting = f"XNN_TEST_BACKENDS={os.environ.get('XNN_TEST_BACKENDS', '')!r}"
    known = {ident for ident, _, _ in ALL_BACKENDS} | {name for _, name, _ in ALL_BACKENDS}
    unknown = sorted(_wanted() - known)
    if unknown:
        raise pytest.UsageError(f"{setting} names unknown backend(s) {', '.join(unknown)}; "
                                f"expected some of {', '.join(sorted(known))}")
    if os.environ.get("XNN_REQUIRE_GPU") == "1" and not any(
            name in GPU_BACKENDS for _, name, _ in _selected()):
        raise pytest.UsageError(f"XNN_REQUIRE_GPU=1 but {setting} selects no GPU backend "
                                f"({', '.join(sorted(GPU_BACKENDS))}); add cupy or unset "
                                f"XNN_REQUIRE_GPU")


def _params() -> list:
    return [pytest.param((name, device), id=ident,
                         marks=[pytest.mark.gpu] if name in GPU_BACKENDS else [])
            for ident, name, device in _selected()]


def load_or_skip(name: str, device: object = None) -> xnn.Backend:
    """Load a backend, or skip (fail under XNN_REQUIRE_GPU=1 for GPU backends) saying why."""
    try:
        with xnn.use_backend(name, device) as b:
            return b
    except BackendUnavailableError as err:
        if name in GPU_BACKENDS and os.environ.get("XNN_REQUIRE_GPU") == "1":
            pytest.fail(f"XNN_REQUIRE_GPU=1 but {name} cannot run: {err}")
        pytest.skip(f"{name} unavailable: {err}")


@pytest.fixture(params=_params())
def backend(request: pytest.FixtureRequest):
    """The backend under test, active for the whole test."""
    name, device = request.param
    b = load_or_skip(name, device)
    with xnn.use_backend(b):
        yield b


@pytest.fixture
def xp(backend: xnn.Backend):
    """The array namespace of the backend under test."""
    return backend.xp


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests may change the process-wide backend and dtype; put both back afterwards."""
    backend, dtype = xnn.get_backend(), xnn.get_default_dtype()
    yield
    xnn.set_backend(backend)
    xnn.set_default_dtype(dtype)


@pytest.fixture
def float64():
    """Make float64 the default dtype for one test (gradient checks, parity at 1e-10)."""
    xnn.set_default_dtype("float64")
    yield "float64"
