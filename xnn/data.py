"""Splitting, scaling, batching and encoding data on the backend where it lives.

Every function here takes arrays of a supported library (NumPy, array_api_strict, torch,
CuPy) and returns arrays of the same library and device; Python lists and other array-likes
are refused with a TypeError naming the function: convert them once with ``xnn.asarray``,
which decides the backend and the dtype (``fit``/``evaluate`` do that conversion themselves).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from . import random
from ._checks import check_labels, expect, flag, integer, is_labels, read_numbers
from .backend import asarray, backend_of, dtype_name, resolve_dtype, to_numpy
from .random import host_generator

# check_same_length, check_seed and take_rows are fit's and the splitters' own tools, not API
__all__ = ["train_test_split", "StandardScaler", "NotFittedError", "batches", "one_hot"]


def check_same_length(owner: str, X: Any, y: Any) -> int:
    """The number of rows, after checking X and y are arrays with the same number of them."""
    expect(owner, X, dtype=None, what="X")
    expect(owner, y, dtype=None, what="y")
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{owner}: X and y need a leading sample axis, got shapes "
                         f"{tuple(X.shape)} and {tuple(y.shape)}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{owner}: X and y have different lengths: X has {X.shape[0]} rows "
                         f"(shape {tuple(X.shape)}), y has {y.shape[0]} (shape {tuple(y.shape)})")
    return X.shape[0]


def check_seed(owner: str, seed: Any) -> int | None:
    """``seed`` as an int (or None), after checking it is None or a non-negative integer."""
    return None if seed is None else integer(owner, "seed", seed, low=0)


def permutations(n: int, seed: int | None) -> Callable[[int], Any]:
    """A row order per epoch (a host permutation of n rows) from ``seed``'s own generator, or
    from xnn's seeded generator when ``seed`` is None."""
    draw = random.permutation if seed is None else host_generator(seed).permutation
    return lambda epoch: draw(n)


def _permutation(owner: str, n: int, seed: Any) -> Any:
    """One host permutation of n rows, after checking ``seed`` (see permutations)."""
    return permutations(n, check_seed(owner, seed))(0)


def take_rows(x: Any, rows: Any) -> Any:
    """x[rows] along the first axis, for host (NumPy, list) or device integer indices.

    Indices count from the end when negative, as in NumPy; one outside [-n, n) is an
    IndexError on every backend (CuPy's take would wrap it silently). Host indices are checked
    on the host; device indices cost one transfer of their min and max.
    """
    xp = expect("take_rows", x, dtype=None, what="array")
    on_device = type(rows) is type(x)
    index = rows if on_device else to_numpy(rows)
    if index.ndim != 1:
        raise ValueError(f"take_rows: expected 1-D row indices, got shape {tuple(index.shape)}")
    if (on_device or index.shape[0]) and not dtype_name(index.dtype).startswith(("int", "uint")):
        raise TypeError(f"take_rows: expected integer row indices, got dtype "
                        f"{dtype_name(index.dtype)}")
    n, lo, hi = x.shape[0], 0, -1
    if index.shape[0]:
        bounds = (read_numbers(xp, [xp.min(index), xp.max(index)]) if on_device
                  else (index.min(), index.max()))  # host indices: NumPy's
        lo, hi = (int(v) for v in bounds)
    if lo < -n or hi >= n:
        raise IndexError(f"take_rows: row indices must lie in [-{n}, {n}) for {n} rows, got "
                         f"values in [{lo}, {hi}]")
    if not on_device:
        index = asarray(index, dtype="int64", backend=backend_of(x))
    if lo < 0:
        index = xp.where(index < 0, index + n, index)
    return xp.take(x, index, axis=0)


def train_test_split(X: Any, y: Any, test_size: float = 0.25, *, seed: int | None = None,
                     shuffle: bool = True) -> tuple[Any, Any, Any, Any]:
    """(X_train, X_test, y_train, y_test), scikit-learn's order; test_size a fraction or count.

    X and y must be arrays (TypeError otherwise: convert lists with xnn.asarray). A fractional
    test_size is rounded up, as scikit-learn rounds it; a split that would leave either part
    empty raises ValueError, as scikit-learn's does.
    """
    n = check_same_length("train_test_split", X, y)
    if isinstance(test_size, float) and 0 < test_size < 1:
        n_test = int(-(-test_size * n // 1))  # ceil, as scikit-learn rounds the test part up
        if not 0 < n_test < n:
            raise ValueError(f"train_test_split: test_size={test_size!r} of {n} rows gives "
                             f"{n_test} test and {n - n_test} training rows; both parts need "
                             f"at least one")
    elif isinstance(test_size, int) and not isinstance(test_size, bool) and 0 < test_size < n:
        n_test = test_size
    else:
        raise ValueError(f"train_test_split: test_size must be a fraction in (0, 1) or a count "
                         f"in [1, {n - 1}], got {test_size!r}")
    shuffled = flag("train_test_split", "shuffle", shuffle)
    order = _permutation("train_test_split", n, seed) if shuffled else range(n)
    train, test = list(order[: n - n_test]), list(order[n - n_test:])
    return take_rows(X, train), take_rows(X, test), take_rows(y, train), take_rows(y, test)


class NotFittedError(ValueError, AttributeError):
    """A StandardScaler used before fit(); a ValueError and an AttributeError, as
    scikit-learn's NotFittedError is."""


class StandardScaler:
    """z = (x - mean) / std per feature, with mean and std fit on training data only.

    std is the population standard deviation (ddof=0) as in scikit-learn; features with zero
    spread are left unscaled (std taken as 1). Data are (samples, features) floating-point
    arrays; transform and inverse_transform take arrays of the library and device the scaler
    was fit on. Using it before fit raises :class:`NotFittedError` (a ValueError).
    """

    def __init__(self) -> None:
        self.mean: Any = None
        self.scale: Any = None

    def fit(self, X: Any) -> StandardScaler:
        xp = expect("StandardScaler.fit", X, ndim=2, what="X")
        if X.shape[0] == 0:
            raise ValueError(f"StandardScaler.fit: expected a non-empty (samples, features) "
                             f"array, got shape {tuple(X.shape)}")
        self.mean = xp.mean(X, axis=0)
        std = xp.std(X, axis=0)
        self.scale = xp.where(std > 0, std, xp.ones_like(std))
        return self

    def _check_fitted(self, X: Any, what: str) -> None:
        owner = f"StandardScaler.{what}"
        if self.mean is None:
            raise NotFittedError(f"{owner}: call fit() first")
        expect(owner, X, like=self.mean, dtype=None, what="X", like_what="fitted mean")
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"{owner}: fit on {self.mean.shape[0]} features, got "
                             f"shape {tuple(X.shape)}")
        expect(owner, X, what="X")

    def transform(self, X: Any) -> Any:
        self._check_fitted(X, "transform")
        return (X - self.mean) / self.scale

    def fit_transform(self, X: Any) -> Any:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> Any:
        self._check_fitted(Z, "inverse_transform")
        return Z * self.scale + self.mean


def batches(X: Any, y: Any, batch_size: int | None = None, *, shuffle: bool = True,
            seed: int | None = None) -> Iterator[tuple[Any, Any]]:
    """(X_batch, y_batch) pairs covering every row once; the last batch may be smaller.

    The data are permuted once per call (one gather on the device), then sliced. X and y must
    be arrays (TypeError otherwise); 0 rows give no batches.
    """
    n = check_same_length("batches", X, y)
    size = n if batch_size is None else integer("batches", "batch_size", batch_size, low=1)
    shuffled = flag("batches", "shuffle", shuffle)
    order = _permutation("batches", n, seed) if shuffled else None  # seed checked before yielding
    return _slices(X, y, n, size, order)


def _slices(X: Any, y: Any, n: int, size: int, order: Any) -> Iterator[tuple[Any, Any]]:
    if n == 0:
        return
    if order is not None:
        X, y = take_rows(X, order), take_rows(y, order)
    for start in range(0, n, size):
        stop = min(start + size, n)  # the standard leaves out-of-bounds slice stops undefined
        yield X[start:stop, ...], y[start:stop, ...]


def one_hot(labels: Any, num_classes: int, dtype: Any = None) -> Any:
    """(n,) integer labels -> (n, num_classes) rows of zeros with a one at the label.

    Labels outside [0, num_classes) raise ValueError; checking them reads their min and max
    back to the host (one device sync per call).
    """
    xp = expect("one_hot", labels, dtype=None, what="labels")
    integer("one_hot", "num_classes", num_classes, low=1)
    if not is_labels(xp, labels):
        raise ValueError(f"one_hot: expected 1-D integer labels, got shape {tuple(labels.shape)} "
                         f"and dtype {dtype_name(labels.dtype)}")
    check_labels("one_hot", xp, labels, num_classes)
    classes = xp.arange(num_classes, device=labels.device)
    return xp.astype(labels[:, None] == classes, resolve_dtype(xp, dtype))
