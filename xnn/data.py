"""Splitting, scaling, batching and encoding data on the backend where it lives.

Every function here takes what ``fit`` takes: arrays of a supported library (NumPy,
array_api_strict, torch, CuPy), which come back in the same library and device, and nested
lists or pandas DataFrames and Series, which ``as_data`` (fit's one conversion) puts on the
active backend, as ``fit`` would put them on the model's: floats in the default float dtype,
1-D integer targets kept as class labels.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from . import random
from ._checks import check_labels, expect, flag, integer, is_labels, read_numbers
from .backend import (Backend, array_namespace, asarray, backend_of, dtype_name, get_backend,
                      is_array, requires_grad, resolve_dtype, to_numpy)
from .random import host_generator
from .namespace import device_of
from .stream import BatchDataset, Source, Stream

# check_same_length, check_seed and take_rows are fit's and the splitters' own tools, not API
__all__ = ["train_test_split", "StandardScaler", "NotFittedError", "batches", "one_hot", "Stream",
           "BatchDataset"]


def as_data(owner: str, name: str, data: Any, backend: Backend, float_dtype: Any,
            labels_ok: bool) -> Any:
    """``data`` (an array, nested list, pandas DataFrame or Series) on ``backend`` in
    ``float_dtype``; with ``labels_ok``, 1-D integer targets stay class labels, as int64.

    The one conversion of what fit, evaluate, predict and the helpers here take. Arrays
    already right are not copied (a torch tensor that requires grad is: asarray detaches it);
    data that cannot become real numbers (None, ragged lists, text, complex) is a TypeError
    naming ``owner``.
    """
    def moved(obj: Any, dtype: Any = None) -> Any:
        try:
            return asarray(obj, dtype=dtype, backend=backend)
        except TypeError as err:  # asarray's refusal, which names asarray, not the caller
            # an iterator (a generator of batches) has no rows to index: a BatchDataset has
            hint = ("; for batches a generator or files give, subclass xnn.data.BatchDataset "
                    "(docs/streaming.md)" if isinstance(obj, Iterator) else "")
            raise TypeError(f"{owner}: {name} cannot be used as data: {err}{hint}") from err

    arr = data if is_array(data) else moved(data)
    kind = dtype_name(arr.dtype)
    if kind.startswith("complex"):  # a cast would keep the real part with only a warning
        raise TypeError(f"{owner}: {name} has the complex dtype {kind}; xnn trains on real "
                        f"numbers: pass the real part or the magnitude explicitly")
    # class labels of any integer dtype become int64, which every library indexes with (torch
    # has no uint16/32/64 kernels for the losses' gather)
    keep = labels_ok and is_labels(array_namespace(arr), arr)
    target = "int64" if keep else dtype_name(float_dtype)
    if backend.holds(arr) and kind == target and not requires_grad(arr):
        return arr  # else asarray copies it, detached from autograd
    return moved(arr, target)


def _taken(owner: str, name: str, data: Any, labels_ok: bool, like: Any = None) -> Any:
    """An array as it is; anything else (a list, a DataFrame) through ``as_data``, onto the
    active backend in its default float dtype, or onto ``like``'s backend in its dtype."""
    if is_array(data):
        return data
    backend = get_backend() if like is None else backend_of(like)
    dtype = resolve_dtype(backend.xp) if like is None else like.dtype
    return as_data(owner, name, data, backend, dtype, labels_ok)


def check_same_length(owner: str, X: Any, y: Any) -> int:
    """The number of rows, after checking X and y are arrays with the same number of them."""
    for what, data in (("X", X), ("y", y)):
        if not isinstance(data, Source):  # rows read a batch at a time: checked when made
            expect(owner, data, dtype=None, what=what)
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


def permutations(n: int, seed: int | None, batch: int | None = None) -> Callable[[int], Any]:
    """A row order per epoch (a host permutation of n rows) from ``seed``'s own generator, or
    from xnn's seeded generator when ``seed`` is None. With ``batch`` (fit's shuffle="batch",
    as Keras has it): the order of the full batches of ``batch`` consecutive rows is drawn;
    the rows of each keep their order, and a short last batch stays last."""
    generator = None if seed is None else host_generator(seed)

    def draw(rows: int) -> Any:
        return random.permutation(rows, generator)
    if batch is None:
        return lambda epoch: draw(n)
    full = n // batch

    def blocks(epoch: int) -> Any:
        first = draw(full) * batch  # a host array: its namespace is NumPy's
        xp = array_namespace(first)
        rows = xp.reshape(first[:, None] + xp.arange(batch), (-1,))
        return xp.concat([rows, xp.arange(full * batch, n)])
    return blocks


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

    X and y are arrays, kept in their library, or what ``fit`` takes (lists, pandas DataFrame
    and Series), converted as the module docstring says. A fractional test_size is rounded
    up, as scikit-learn rounds it; a split that would leave either part empty raises
    ValueError, as scikit-learn's does.
    """
    X = _taken("train_test_split", "X", X, labels_ok=False)
    y = _taken("train_test_split", "y", y, labels_ok=True)
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


def _check_columns(owner: str, X: Any) -> None:
    """Refuse X unless it is (samples, features); a 1-D X gets the reshape that fixes it."""
    if X.ndim == 1:
        raise ValueError(f"{owner}: expected a 2-D (samples, features) X, got shape "
                         f"{tuple(X.shape)}; a single feature or a 1-D target (a regression y) "
                         f"needs one column: y.reshape(-1, 1) (y[:, None] on any backend)")
    if X.ndim != 2:
        raise ValueError(f"{owner}: expected a 2-D (samples, features) X, got shape "
                         f"{tuple(X.shape)}")


class NotFittedError(ValueError, AttributeError):
    """A StandardScaler used before fit(); a ValueError and an AttributeError, as
    scikit-learn's NotFittedError is."""


class StandardScaler:
    """z = (x - mean) / std per feature, with mean and std fit on training data only.

    std is the population standard deviation (ddof=0) as in scikit-learn; features with zero
    spread are left unscaled (std taken as 1). Data are (samples, features): a 1-D target is
    refused with the reshape that makes it one column (``y.reshape(-1, 1)``), as scikit-learn
    refuses it. fit takes floating-point arrays, lists and pandas DataFrames (converted as
    ``fit`` converts them); transform and inverse_transform take arrays of the library, device
    and dtype the scaler was fit on, and convert lists and DataFrames to them. Using it before
    fit raises :class:`NotFittedError` (a ValueError).
    """

    def __init__(self) -> None:
        self.mean: Any = None
        self.scale: Any = None

    def fit(self, X: Any) -> StandardScaler:
        X = _taken("StandardScaler.fit", "X", X, labels_ok=False)
        xp = expect("StandardScaler.fit", X, what="X")
        _check_columns("StandardScaler.fit", X)
        if X.shape[0] == 0:
            raise ValueError(f"StandardScaler.fit: expected a non-empty (samples, features) "
                             f"array, got shape {tuple(X.shape)}")
        self.mean = xp.mean(X, axis=0)
        std = xp.std(X, axis=0)
        self.scale = xp.where(std > 0, std, xp.ones_like(std))
        return self

    def _check_fitted(self, X: Any, what: str) -> Any:
        owner = f"StandardScaler.{what}"
        if self.mean is None:
            raise NotFittedError(f"{owner}: call fit() first")
        X = _taken(owner, "X", X, labels_ok=False, like=self.mean)
        expect(owner, X, like=self.mean, dtype=None, what="X", like_what="fitted mean")
        _check_columns(owner, X)
        if X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"{owner}: fit on {self.mean.shape[0]} features, got "
                             f"shape {tuple(X.shape)}")
        expect(owner, X, what="X")
        return X

    def transform(self, X: Any) -> Any:
        X = self._check_fitted(X, "transform")
        return (X - self.mean) / self.scale

    def fit_transform(self, X: Any) -> Any:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> Any:
        Z = self._check_fitted(Z, "inverse_transform")
        return Z * self.scale + self.mean


def batches(X: Any, y: Any, batch_size: int | None = None, *, shuffle: bool = True,
            seed: int | None = None) -> Iterator[tuple[Any, Any]]:
    """(X_batch, y_batch) pairs covering every row once; the last batch may be smaller.

    The data are permuted once per call (one gather on the device), then sliced. X and y are
    taken as ``train_test_split`` takes them; 0 rows give no batches.
    """
    X, y = _taken("batches", "X", X, labels_ok=False), _taken("batches", "y", y, labels_ok=True)
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
    labels = _taken("one_hot", "labels", labels, labels_ok=True)
    xp = expect("one_hot", labels, dtype=None, what="labels")
    integer("one_hot", "num_classes", num_classes, low=1)
    if not is_labels(xp, labels):
        raise ValueError(f"one_hot: expected 1-D integer labels, got shape {tuple(labels.shape)} "
                         f"and dtype {dtype_name(labels.dtype)}")
    check_labels("one_hot", xp, labels, num_classes)
    classes = xp.arange(num_classes, device=device_of(labels))
    return xp.astype(labels[:, None] == classes, resolve_dtype(xp, dtype))
