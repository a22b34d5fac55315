"""Rows read from storage a batch at a time: fit, evaluate and predict on data that is not in
memory (docs/streaming.md).

The rule: X and y stream when either is an :class:`Stream`, a ``np.memmap``, or an object
that is not an array of a supported library but has ``shape``, ``dtype`` and ``__getitem__``
(a zarr array, an h5py dataset); pandas objects and everything else are loaded whole, as
before. Each is then a :class:`Source`: its rows are gathered on the host in the order the
epoch draws (the permutation fit uses in memory, so the same batches and, with the same seed,
the same weights bit for bit), checked as they pass, and moved to the device by a background
thread a few batches ahead of the step, several batches a read (:class:`_Reader`). A step
reads only its own rows: under ``fit(distributed=True)``, each rank its share of each batch.
A memmap's rows are read from its file (pread, submitted together: xnn/rowread.py), which
maps none of its pages into the process.

Data without row indexing come as a :class:`BatchDataset` (batches by index): a
:class:`BatchRows` Source whose rows are its batches, stepped through one at a time.
"""

from __future__ import annotations

import copy
import mmap
import os
import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from . import rowread
from ._checks import all_finite, nonfinite_rows
from .backend import Backend, array_namespace, asarray, dtype_name, is_array, to_numpy, upload
from .namespace import HOST_XP

__all__ = ["Stream", "BatchDataset"]

# groups of batches read ahead of the step: the host holds at most PREFETCH + 2 of them (those
# waiting, the one being read, the step's), each of at most GROUP_ROWS rows (or one batch)
PREFETCH = 2
GROUP_ROWS = 8192
# rows per read of evaluate, of validation and of predict without batch_size: 4 MiB of input
# (the layers' outputs for them take as much again per 50 features of width)
PASS_BYTES = 2 ** 22


class Stream:
    """Rows that ``fit``, ``evaluate`` and ``predict`` read a batch at a time, never whole.

    fit streams X and y on its own when either is a ``np.memmap`` or an object that is not an
    array of a supported library but has ``shape``, ``dtype`` and row indexing (a zarr array,
    an h5py dataset); ``Stream(data)`` asks for it explicitly, for an in-memory NumPy array
    too. Only the batches being read ahead and the one training are ever in host memory or on
    the device (docs/streaming.md).

    Parameters
    ----------
    data : array_like
        Rows along the first axis: anything with ``shape``, ``dtype`` (a NumPy dtype) and
        ``data[i:j]`` and ``data[sorted_int_array]`` returning rows NumPy can convert.

    Examples
    --------
    >>> import numpy as np
    >>> import xnn
    >>> X = xnn.data.Stream(np.zeros((1000, 3), np.float32))
    >>> X.shape
    (1000, 3)
    """

    def __init__(self, data: Any) -> None:
        missing = [a for a in ("shape", "dtype", "__getitem__") if not hasattr(data, a)]
        if missing:
            raise TypeError(f"Stream: expected rows with shape, dtype and indexing, got "
                            f"{type(data).__name__} without {', '.join(missing)}")
        self.data = data

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the rows, as the data give it."""
        return tuple(self.data.shape)

    def __repr__(self) -> str:
        return f"Stream({type(self.data).__name__} of shape {self.shape})"


class BatchDataset:
    """Batches that ``fit``, ``evaluate`` and ``predict`` read one at a time by index, as
    Keras' ``PyDataset``: for data without row indexing (parquet files, a generator's chunks).

    Subclass it and define ``__len__`` (the number of batches) and ``__getitem__(i)``: the
    i-th batch as a pair ``(x, y)`` of arrays NumPy can convert (``x`` alone is enough for
    ``predict``). Pass it as X with y=None: fit trains one step per batch, reading the next
    ones in the background and checking each as it passes; ``shuffle=True`` shuffles the
    order of the batches each epoch, ``validation_split`` holds out the last batches, and
    ``validation_data`` may be another BatchDataset (docs/streaming.md).

    Examples
    --------
    >>> import numpy as np
    >>> import xnn
    >>> class Chunks(xnn.data.BatchDataset):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         x = np.full((4, 2), i, np.float32)
    ...         return x, x.sum(axis=1, keepdims=True)
    >>> model = xnn.nn.Linear(2, 1)
    >>> history = xnn.fit(model, Chunks(), None, loss=xnn.losses.MSELoss(), epochs=2,
    ...                   optimizer=xnn.optim.SGD(model.parameters(), lr=0.01), progress=False)
    >>> len(history["loss"])
    2
    """

    def __len__(self) -> int:
        raise NotImplementedError("BatchDataset: define __len__, the number of batches")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError("BatchDataset: define __getitem__(i), the i-th batch (x, y)")


def streams(*data: Any) -> bool:
    """Whether any of ``data`` is read a batch at a time (the rule of the module docstring)."""
    return any(isinstance(d, (Stream, np.memmap))
               or (not is_array(d) and not type(d).__module__.startswith("pandas")
                   and all(hasattr(d, a) for a in ("shape", "dtype", "__getitem__")))
               for d in data)


def non_finite(owner: str, name: str, count: int, first: int | str, dtype: Any,
               infinite: bool) -> str:
    """The message of NaN or Inf found in ``count`` rows of ``name`` (held in ``dtype``), the
    first at row ``first`` (fit's check, in memory and as rows stream; "3 of batch 7" in a
    BatchDataset); ``infinite``: that row holds an Inf."""
    kind = dtype_name(dtype)
    # a float64 value beyond float32's range is Inf once cast: say so where it may be that
    cast = (f" (in {kind}, the model's dtype, a value beyond {float(np.finfo(kind).max):.3g} "
            f"is Inf)" if infinite and np.dtype(kind).itemsize < 8 else "")
    return (f"{owner}: {name} contains NaN or Inf in {count} row(s), first at row {first}; "
            f"clean or drop those rows before training{cast}")


class Source:
    """Rows ``start:stop`` of stored ``data``, read on the host as the model takes them (floats
    in its dtype, 1-D integer targets as int64 labels) and moved to ``backend``.

    ``checked``: refuse NaN/Inf rows as they are read (fit's training and validation data);
    ``labels_checked``: fit's label check (``loss.check_targets``), set once it knows the
    model's output width. Both raise naming the row of ``data``.
    """

    def __init__(self, owner: str, name: str, data: Any, backend: Backend, dtype: np.dtype,
                 labels: bool, checked: bool, start: int = 0, stop: int | None = None) -> None:
        self.owner, self.name, self.data, self.backend = owner, name, data, backend
        self.dtype, self.labels, self.checked = dtype, labels, checked
        self.start, self.stop = start, data.shape[0] if stop is None else stop
        self.labels_checked: Callable[[Any], Any] | None = None
        self.file = _in_file(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.stop - self.start, *self.data.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    def part(self, start: int, stop: int) -> Source:
        """Rows start:stop of these rows (fit's validation_split), read the same way."""
        part = copy.copy(self)
        part.start, part.stop = self.start + start, self.start + stop
        return part

    def rows(self, start: int, stop: int) -> Any:
        """Rows start:stop on the device, read now (fit's first batch)."""
        return upload(self.read(slice(start, stop)), self.backend)

    def read(self, rows: slice | np.ndarray) -> np.ndarray:
        """The rows ``rows`` (a slice, or host row numbers in any order) as a new host array,
        checked."""
        at = (np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows) + self.start
        host = self._stored(at)
        # a file's read is a new array already: cast only; other storage's may be a view
        host = (np.asarray if self.file is not None else np.array)(host, dtype=self.dtype)
        if self.checked and self.dtype.kind == "f" and not all_finite(HOST_XP, [host]):
            bad = nonfinite_rows(HOST_XP, host)
            if bad.shape[0]:
                raise ValueError(non_finite(self.owner, self.name, bad.shape[0],
                                            self._first(at, bad), self.dtype,
                                            bool(np.isinf(host[bad[0]]).any())) + _AS_READ)
        if self.labels_checked is not None:
            self._check_labels(host, at)
        return host

    def pass_rows(self) -> int:
        """Rows per read of a pass over these rows without a batch size: PASS_BYTES of them."""
        per_row = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        return max(1, PASS_BYTES // max(1, per_row))

    def _first(self, at: np.ndarray, found: np.ndarray) -> int | str:
        """The first row, in the stored data's numbering, of rows ``found`` of a read of
        ``at`` (positions in it)."""
        return int(at[found].min())

    def _stored(self, at: np.ndarray) -> np.ndarray:
        """Rows ``at`` of the stored data (row numbers in any order), as they are stored."""
        data = self.data
        if self.file is not None:  # a memmap: read from its file, mapping none of its pages
            return _read_file(*self.file, at, data.dtype, data.shape[1:])
        if isinstance(data, np.ndarray):  # NumPy gathers in any order
            return data[at]
        if not at.shape[0]:
            return data[0:0]
        starts, lengths = _runs(at)
        if starts.shape[0] * 8 <= at.shape[0]:  # runs (no shuffle, shuffle="batch"): a read each
            parts = [data[a:a + n] for a, n in zip(at[starts].tolist(), lengths.tolist())]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        # h5py takes increasing row numbers only: read sorted, put back in order
        ranks = np.argsort(at, kind="stable")
        host = np.empty((at.shape[0], *data.shape[1:]), dtype=data.dtype)
        host[ranks] = data[at[ranks]]
        return host

    def _check_labels(self, labels: np.ndarray, at: np.ndarray) -> None:
        """The loss's label check on a batch; on failure the message names the first bad row
        (found by asking the same check of each row: only when one fails)."""
        try:
            self.labels_checked(labels)
        except ValueError as err:
            first = self._first(at, np.array([k for k, label in enumerate(labels) if _refused(
                self.labels_checked, np.asarray([label], dtype=labels.dtype))]))
            raise ValueError(f"{err}; first at row {first} of {self.name}{_AS_READ}") from None

    def fingerprint(self, h: Any) -> None:
        """Feed ``h`` (a hashlib digest) the rows' shape and dtype, and their values where they
        are a NumPy array (a memmap), read PASS_BYTES at a time (fit(distributed=True)'s check
        that the ranks hold the same data)."""
        h.update(f"{self.shape} {dtype_name(self.dtype)};".encode())
        if isinstance(self.data, np.ndarray):
            step = self.pass_rows()
            for s in range(self.start, self.stop, step):
                h.update(np.ascontiguousarray(self._stored(np.arange(s, min(s + step,
                                                                        self.stop)))).data)


class BatchRows(Source):
    """Part ``part`` (0: x, 1: y) of the batches of a BatchDataset, as a Source whose "rows"
    are the batches: fit steps through them one at a time (a batch size of 1), so its row
    order is the order of the batches, and a read of batch i is ``items[i][part]`` (of it,
    rows ``share(m)`` of its m rows, once ``cut``)."""

    def __init__(self, owner: str, name: str, items: _Items, part: int, backend: Backend,
                 dtype: np.dtype, labels: bool, checked: bool) -> None:
        super().__init__(owner, name, items.first[part], backend, dtype, labels, checked,
                         0, len(items.dataset))
        self.items, self.index = items, part
        self.share: Callable[[int], tuple[int, int]] | None = None

    def cut(self, share: Callable[[int], tuple[int, int]]) -> BatchRows:
        """These batches as one rank of fit(distributed=True) trains on them: rows
        ``share(m)`` (start, stop) of each batch of m rows. The dataset is still asked for
        whole batches: it has no way to give part of one."""
        part = copy.copy(self)
        part.share = share
        return part

    @property
    def first_rows(self) -> int:
        """The rows of the first batch."""
        return self.items.first[self.index].shape[0]

    def pass_rows(self) -> int:
        return 1  # one batch at a time

    def _first(self, at: np.ndarray, found: np.ndarray) -> str:
        return f"{int(found.min()) + self._rows(int(at[0]))[0]} of batch {int(at[0])}"

    def _rows(self, i: int) -> tuple[int, int]:
        """(start, stop) of the rows of batch ``i`` read: all, or the share."""
        m = self.items.get(i)[self.index].shape[0]
        return (0, m) if self.share is None else self.share(m)

    def _stored(self, at: np.ndarray) -> np.ndarray:
        start, stop = self._rows(int(at[0]))
        return self.items.get(int(at[0]))[self.index][start:stop]


class _Items:
    """A BatchDataset's batches as (x, y) host arrays, the last one kept: x and y of a batch
    are two reads of it (by the same thread, one after the other), and the dataset is asked
    once."""

    def __init__(self, owner: str, dataset: BatchDataset, parts: int) -> None:
        self.owner, self.dataset, self.parts = owner, dataset, parts
        if len(dataset) < 1:
            raise ValueError(f"{owner}: the BatchDataset {type(dataset).__name__} has no "
                             f"batches (len {len(dataset)})")
        self.last: tuple[int, tuple[np.ndarray, ...]] | None = None
        self.first = self.get(0)

    def get(self, i: int) -> tuple[np.ndarray, ...]:
        """Batch ``i`` as ``parts`` host arrays."""
        if self.last is None or self.last[0] != i:
            item = self.dataset[i]
            pair = isinstance(item, (tuple, list))
            if self.parts == 2 and not (pair and len(item) == 2):
                got = f"{len(item)} items" if pair else type(item).__name__
                raise TypeError(f"{self.owner}: batch {i} of the BatchDataset "
                                f"{type(self.dataset).__name__} must be a pair (x, y), got {got}")
            parts = tuple(item[:self.parts]) if pair else (item,)
            self.last = (i, tuple(np.asarray(to_numpy(p)) for p in parts))
        return self.last[1]


def _in_file(data: Any) -> tuple[str, int] | None:
    """(path, byte offset of row 0) of a memmap whose rows lie one after another in a file it
    maps shared, which reads of the file see as they are; None for anything else (a memmap of
    mode "c" holds changes of its own: it is read by indexing), and where there is no preadv
    (Windows)."""
    if (not isinstance(data, np.memmap) or data.mode == "c" or not data.flags.c_contiguous
            or not hasattr(os, "preadv")):
        return None
    root = data  # a view's offset is its base's: count from the memmap that owns the mapping
    while isinstance(root.base, np.memmap):
        root = root.base
    if not isinstance(root.base, mmap.mmap) or data.filename is None:
        return None
    return data.filename, root.offset + data.ctypes.data - root.ctypes.data


def _runs(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of consecutive row numbers in ``at``: (position in ``at`` of each one's first
    row, its length). Each is one read: a batch of rows in place, or of shuffle="batch"."""
    starts = np.flatnonzero(np.diff(at, prepend=at[:1] - 2) != 1)
    return starts, np.diff(starts, append=at.shape[0])


def _read_file(path: str, offset: int, at: np.ndarray, dtype: np.dtype,
               shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``at`` of a C-ordered (rows, *shape) array of ``dtype`` stored at ``offset`` in
    the file ``path``, read with pread. Indexing a memmap maps the file's pages into the
    process, which keeps them (its RSS grows to the file's size over a shuffled epoch); a read
    copies the rows and maps nothing. Each run of consecutive rows is one read, submitted
    together (xnn.rowread), or one call a run where the system has no such call. A file
    shorter than its memmap says so (an OSError naming the file and the row)."""
    out = np.empty((at.shape[0], *shape), dtype)
    size = out.strides[0] if at.shape[0] else 0
    starts, lengths = _runs(at)
    sizes, offsets = lengths * size, at[starts].astype(np.int64) * size + offset
    flat = out.reshape(-1).view(np.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = None if starts.shape[0] < 2 else rowread.read(
            fd, out.ctypes.data + starts.astype(np.uint64) * np.uint64(size), offsets, sizes)
        if got is None:  # one run, or no native AIO here: one call a run
            got = np.array([os.preadv(fd, [flat[a * size:(a + n) * size]], p) for a, n, p in
                            zip(starts.tolist(), lengths.tolist(), offsets.tolist())], np.int64)
    finally:
        os.close(fd)
    short = np.flatnonzero(got != sizes)
    if short.shape[0]:
        i = int(short[0])
        first = int(at[starts[i]]) + max(int(got[i]), 0) // max(size, 1)  # the row cut short
        why = (os.strerror(-int(got[i])) if got[i] < 0 else
               f"{int(got[i]) % size if size else 0} of {size} bytes read")
        raise OSError(f"{path}: reading row {first} failed ({why}); the file is shorter than "
                      f"the memmap over it (truncated since it was opened?) or unreadable")
    return out


_AS_READ = " (found as the rows were read, before the step that would use them)"


def _refused(check: Callable[[Any], Any], labels: np.ndarray) -> bool:
    try:
        check(labels)
    except ValueError:
        return True
    return False


def source(owner: str, name: str, data: Any, backend: Backend, float_dtype: Any,
           labels_ok: bool, checked: bool) -> Source:
    """``data`` as rows read a batch at a time onto ``backend``: floats become ``float_dtype``,
    1-D integer targets (with ``labels_ok``) int64 labels, as ``xnn.data.as_data`` converts
    whole arrays. An array of a library's device (a small y beside a memmapped X) is copied to
    the host first; data that are not real numbers are a TypeError naming ``owner``."""
    if isinstance(data, Stream):
        data = data.data
    elif not streams(data):
        data = to_numpy(data)
    return Source(owner, name, data, backend, *_read_as(owner, name, data, float_dtype,
                                                        labels_ok), checked)


def batch_sources(owner: str, names: tuple[str, ...], dataset: BatchDataset, backend: Backend,
                  float_dtype: Any, checked: bool) -> tuple[BatchRows, ...]:
    """The x (and, with two ``names``, y) parts of ``dataset``'s batches as Sources, read as
    ``source`` reads stored rows (their kind: the first batch's)."""
    items = _Items(owner, dataset, len(names))
    return tuple(BatchRows(owner, name, items, k, backend,
                           *_read_as(owner, name, items.first[k], float_dtype, k == 1), checked)
                 for k, name in enumerate(names))


def _read_as(owner: str, name: str, data: Any, float_dtype: Any,
             labels_ok: bool) -> tuple[np.dtype, bool]:
    """The host dtype rows of ``data`` are read in, and whether they are class labels; data
    that are not real numbers are a TypeError naming ``owner``."""
    kind = np.dtype(data.dtype).kind
    if kind not in "biuf":  # complex, text, objects: as as_data refuses them
        what = "complex" if kind == "c" else "non-numeric"
        raise TypeError(f"{owner}: {name} has the {what} dtype {np.dtype(data.dtype)}; xnn "
                        f"trains on real numbers")
    labels = labels_ok and len(data.shape) == 1 and kind in "iu"
    return np.dtype("int64" if labels else dtype_name(float_dtype)), labels


def _groups(batches: list[tuple[int, int]], rows: int) -> Iterator[list[tuple[int, int]]]:
    """``batches`` in runs of consecutive ones of at most ``rows`` rows together (a batch
    larger than that alone)."""
    group: list[tuple[int, int]] = []
    held = 0
    for start, stop in batches:
        if group and held + stop - start > rows:
            yield group
            group, held = [], 0
        group.append((start, stop))
        held += stop - start
    if group:
        yield group


class _Reader:
    """Reads ``batches`` ((start, stop) of the row ``order``, None: rows in place) of
    ``sources`` in a background thread, at most PREFETCH groups ahead of the consumer, checked
    and on the device. A group is a run of batches of at most GROUP_ROWS rows (and a Source's
    pass_rows: BatchRows, one batch) read by one read of each source: a read costs the GIL,
    which the step on the consumer's thread waits for, once a group, not once a batch. An
    error reading or checking a batch is raised by ``next`` when the consumer asks for that
    batch: before the step that would use it, after the steps of the batches before it."""

    def __init__(self, sources: tuple[Source, ...], batches: list[tuple[int, int]],
                 order: Any) -> None:
        self.queue: queue.Queue = queue.Queue(PREFETCH)
        self.closed = threading.Event()
        self.ready: list[Any] = []  # the batches of the group taken from the queue, in reverse
        self.thread = threading.Thread(target=self._read, args=(sources, batches, order),
                                       name="xnn-stream-reader", daemon=True)
        self.thread.start()

    def _read(self, sources: tuple[Source, ...], batches: list[tuple[int, int]],
              order: Any) -> None:
        try:
            rows = min([GROUP_ROWS] + [s.pass_rows() for s in sources])
            for group in _groups(batches, rows):
                if not self._put(_read_group(sources, group, order)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._put([error])

    def _put(self, item: Any) -> bool:
        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> tuple[Any, ...]:
        """The next batch (one array per source), waiting for it if it is not read yet."""
        if not self.ready:
            self.ready = self.queue.get()[::-1]
        item = self.ready.pop()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop reading (an epoch that ends early leaves batches unread) and wait for the
        thread."""
        self.closed.set()
        self.thread.join()


def _read_group(sources: tuple[Source, ...], group: list[tuple[int, int]],
                order: Any) -> list[Any]:
    """The batches ``group`` of ``sources``, each a tuple of arrays on the device, read by one
    read of each source; where that read fails (a bad row), each batch is read alone, so the
    batches before the bad one come whole and the error (last in the list) names its row."""
    rows = [np.arange(start, stop) if order is None else order[start:stop]
            for start, stop in group]
    try:
        hosts = [s.read(rows[0] if len(rows) == 1 else np.concatenate(rows)) for s in sources]
    except Exception:
        if len(group) == 1:
            raise
        read: list[Any] = []
        for at in rows:
            try:
                read.append(tuple(upload(s.read(at), s.backend) for s in sources))
            except Exception as error:  # handed to the consumer, raised there
                return read + [error]
        return read
    if len(rows) == 1:  # whole: a BatchRows "row" is a batch
        return [tuple(upload(host, s.backend) for s, host in zip(sources, hosts))]
    ends = np.cumsum([0] + [at.shape[0] for at in rows]).tolist()
    return [tuple(upload(host[a:b], s.backend) for s, host in zip(sources, hosts))
            for a, b in zip(ends[:-1], ends[1:])]


@contextmanager
def epoch_batches(X: Any, y: Any, order: Any, steps: list[tuple[int, int, int]],
                  backend: Backend) -> Iterator[Callable[[int, int], tuple[Any, Any]]]:
    """``batch(start, stop)``: rows start:stop of the epoch's row ``order`` (None: in place)
    of (X, y), asked for in the order of ``steps`` ((start, stop, rows) of each, as
    xnn.loop.Steps has them; empty ones are not asked for). In memory: slices of X and y
    gathered once in that order; Sources: read ahead from storage."""
    if isinstance(X, Source):
        reader = _Reader((X, y), [(s, e) for s, e, _ in steps if e > s], order)
        try:
            yield lambda start, stop: reader.next()
        finally:
            reader.close()
        return
    if order is not None:  # a permutation needs no bounds check (take_rows' would read back)
        index = asarray(order, dtype="int64", backend=backend)
        X, y = backend.xp.take(X, index, axis=0), backend.xp.take(y, index, axis=0)
    n = X.shape[0]
    yield lambda start, stop: ((X, y) if stop - start == n  # X and y themselves, not views
                               else (X[start:stop, ...], y[start:stop, ...]))


def outputs(model: Any, sources: tuple[Source, ...], size: int | None = None) -> list[Any]:
    """``model``'s outputs for every row of ``sources[0]`` (then the other sources' rows, read
    beside them), ``size`` rows at a time (None: PASS_BYTES of input), each joined into one
    array: the inputs are never whole, the outputs (and targets) are."""
    n = sources[0].shape[0]
    size = size or sources[0].pass_rows()
    batches = [(s, min(s + size, n)) for s in range(0, max(n, 1), size)]  # 0 rows: one empty
    reader = _Reader(sources, batches, None)
    parts: list[list[Any]] = [[] for _ in sources]
    try:
        for _ in batches:
            first, *rest = reader.next()
            for kept, part in zip(parts, (model(first), *rest)):
                kept.append(part)
    finally:
        reader.close()
    return [p[0] if len(p) == 1 else array_namespace(p[0]).concat(p, axis=0) for p in parts]
