"""Training on rows read from storage a batch at a time (xnn/stream.py): a memmap, a zarr or
h5py-like object or an explicit xnn.data.Stream trains as the same rows in memory would, bit for
bit; only a few batches are read ahead, in a background thread; NaN/Inf rows and bad labels are
refused as they pass, before the step that would use them; shuffle="batch" reads whole batches;
a memmap's rows are read from its file, mapping none of its pages; an xnn.data.BatchDataset
trains one step per batch, as the same batches in memory would."""

from __future__ import annotations

import json
import os
import sys
import threading
import weakref

import numpy as np
import pytest

import xnn
from xnn import callbacks, losses, nn, optim, stream
from xnn.stream import PREFETCH, source

from model_state import assert_state, host_state


class Rows:
    """Rows in 'storage' that only index as h5py does (slices, increasing integer arrays) and
    are no array of any library; each read is logged as (thread name, row numbers)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shape, self.dtype = values, values.shape, values.dtype
        self.reads: list[tuple[str, np.ndarray]] = []

    def __getitem__(self, index):
        if isinstance(index, slice):
            rows = np.arange(*index.indices(self.shape[0]))
        else:
            rows = np.asarray(index)
            if (np.diff(rows) <= 0).any():
                raise TypeError("Indexing elements must be in increasing order")  # h5py's
        self.reads.append((threading.current_thread().name, rows))
        return self.values[index]

    def rows_read(self) -> list[np.ndarray]:
        return [rows for _, rows in self.reads]


def _memmap(tmp_path, values: np.ndarray, name: str) -> np.memmap:
    m = np.memmap(tmp_path / name, dtype=values.dtype, mode="w+", shape=values.shape)
    m[:] = values
    return m


def _data(n: int = 203, classes: int | None = None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    y = (rng.integers(0, classes, n) if classes else
         np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1))
    return X, y


def _fit(X, y, classes: int | None = None, **kwargs):
    """A fresh model trained on (X, y) from seed 0: (History, weights on the host, model)."""
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, classes or 2))
    loss = losses.CrossEntropyLoss() if classes else losses.MSELoss()
    options = {"epochs": 3, "batch_size": 16, "seed": 1, "progress": False, **kwargs}
    history = xnn.fit(model, X, y, loss=loss, optimizer=optim.Adam(model.parameters(), lr=0.01),
                      **options)
    return history, host_state(model), model


def _same(a, b) -> None:
    """Two fits ended with the same weights, bit for bit, and the same History."""
    assert a[0].history == b[0].history
    assert list(a[1]) == list(b[1])
    for name in a[1]:
        np.testing.assert_array_equal(a[1][name], b[1][name], err_msg=name)


# --- 1. streamed data train as the same rows in memory --------------------------------------

@pytest.mark.parametrize("classes", [None, 3])
@pytest.mark.parametrize("storage", ["memmap", "indexed", "Stream"])
def test_a_streamed_fit_equals_the_in_memory_fit_bit_for_bit(backend, tmp_path, storage,
                                                             classes):
    X, y = _data(classes=classes)
    X_val, y_val = X[:40] * 0.5, y[:40]
    stored = {"memmap": lambda a, name: _memmap(tmp_path, a, name),
              "indexed": lambda a, name: Rows(a),
              "Stream": lambda a, name: xnn.data.Stream(a)}[storage]
    memory = _fit(X, y, classes, metrics=["mae" if classes is None else "accuracy"],
                  validation_data=(X_val, y_val))
    streamed = _fit(stored(X, "X"), stored(y, "y"), classes,
                    metrics=["mae" if classes is None else "accuracy"],
                    validation_data=(stored(X_val, "X_val"), stored(y_val, "y_val")))
    _same(streamed, memory)


@pytest.mark.parametrize("group_rows", [16, 40, 2048])
def test_a_streamed_fit_reads_runs_of_whole_batches_in_a_background_thread(backend, monkeypatch,
                                                                           group_rows):
    monkeypatch.setattr(stream, "GROUP_ROWS", group_rows)  # batches a read: 1, 2, all 13
    X, y = _data()
    stored_X, stored_y = Rows(X), Rows(y)
    _fit(stored_X, stored_y, batch_size=16, epochs=2, shuffle=False)  # rows in place
    (first_thread, first), *reads = stored_X.reads
    np.testing.assert_array_equal(first, np.arange(16))  # fit's check of the first batch
    per_read = max(1, group_rows // 16)
    assert len(reads) == 2 * -(-13 // per_read)  # 203 rows: 12 batches of 16 and one of 11
    assert [r.tolist() for _, r in reads[:len(reads) // 2]] == [  # in order, whole batches
        list(range(s, min(s + 16 * per_read, 203))) for s in range(0, 203, 16 * per_read)]
    assert {thread for thread, _ in reads} == {"xnn-stream-reader"}
    assert [r.tolist() for r in stored_y.rows_read()] == [r.tolist() for r in
                                                           stored_X.rows_read()]


@pytest.mark.parametrize("group_rows", [16, 32])
def test_the_reader_stays_a_bounded_number_of_batches_ahead_of_the_steps(backend, monkeypatch,
                                                                         group_rows):
    monkeypatch.setattr(stream, "GROUP_ROWS", group_rows)
    X, y = _data()
    stored = Rows(X)
    ahead = []  # batches read beyond the one each step trains on, seen before the step

    def before_step(run, loss):
        read = sum(rows.shape[0] for _, rows in stored.reads[1:])  # [0]: fit's check
        ahead.append(-(-read // 16) - (run.batch + 1))
        return True

    _fit(stored, y, epochs=1, callbacks=[callbacks.LambdaCallback(before_step=before_step)])
    per_read = group_rows // 16  # the rest of the step's group, PREFETCH queued, one read
    assert len(ahead) == 13 and 0 <= min(ahead)
    assert max(ahead) <= per_read - 1 + (PREFETCH + 1) * per_read


def test_a_bad_row_in_a_read_of_several_batches_stops_fit_before_its_own_batch(backend,
                                                                               tmp_path):
    X, y = _data()
    X[16 * 5 + 3, 0] = np.inf  # batch 5 of a read of batches 0-7 (rows in place)
    steps = []  # the batches whose step began

    def before_step(run, loss):
        steps.append(run.batch)
        return True

    with pytest.raises(ValueError, match=r"fit: X contains NaN or Inf in 1 row\(s\), first at "
                                         r"row 83; .* before the step that would use them"):
        _fit(_memmap(tmp_path, X, "X"), y, shuffle=False, epochs=1,
             callbacks=[callbacks.LambdaCallback(before_step=before_step)])
    assert steps == [0, 1, 2, 3, 4]


def test_evaluate_and_predict_read_streamed_rows_as_the_rows_in_memory(backend, tmp_path):
    X, y = _data(classes=3)
    _, _, model = _fit(X, y, classes=3)
    stored_X, stored_y = _memmap(tmp_path, X, "X"), Rows(y)
    expected = xnn.to_numpy(xnn.predict(model, X, batch_size=50))
    np.testing.assert_array_equal(xnn.to_numpy(xnn.predict(model, stored_X, batch_size=50)),
                                  expected)
    np.testing.assert_allclose(xnn.to_numpy(xnn.predict(model, Rows(X))),
                               xnn.to_numpy(xnn.predict(model, X)), rtol=1e-6, atol=1e-7)
    scores = xnn.evaluate(model, stored_X, stored_y, loss=losses.CrossEntropyLoss(),
                          metrics=["accuracy"])
    assert scores == pytest.approx(xnn.evaluate(model, X, y, loss=losses.CrossEntropyLoss(),
                                                metrics=["accuracy"]), rel=1e-6)


def test_validation_split_of_streamed_rows_holds_out_the_same_last_rows(backend, tmp_path):
    X, y = _data()
    memory = _fit(X, y, validation_split=0.25)
    streamed = _fit(_memmap(tmp_path, X, "X"), y, validation_split=0.25)
    _same(streamed, memory)


@pytest.mark.parametrize("library", ["zarr", "h5py"])
def test_zarr_and_h5py_arrays_train_as_the_rows_in_memory(tmp_path, library):
    pytest.importorskip(library)
    X, y = _data(classes=3)
    if library == "zarr":
        import zarr  # noqa: PLC0415

        def stored(a, name):
            z = zarr.create_array(store=str(tmp_path / name), shape=a.shape, dtype=a.dtype,
                                  chunks=(32, *a.shape[1:]))
            z[:] = a
            return z
    else:
        import h5py  # noqa: PLC0415

        f = h5py.File(tmp_path / "data.h5", "w")

        def stored(a, name):
            return f.create_dataset(name, data=a)
    with xnn.use_backend("numpy"):
        _same(_fit(stored(X, "X"), stored(y, "y"), classes=3), _fit(X, y, classes=3))


# --- 3. what fit checks in memory, it checks as the rows pass -------------------------------

def _stopped_at(step: int):
    """A callback that stops fit before its step ``step`` of the first epoch."""
    def before_step(run, loss):
        if run.epoch == 0 and run.batch == step:
            run.stop("reference")
            return False
        return True
    return callbacks.LambdaCallback(before_step=before_step)


def _bad_row(n: int, size: int, seed: int) -> tuple[int, int]:
    """A row outside the first ``size`` rows (fit checks those first) and the step of the
    first epoch that trains on it, by fit's row order for ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    position = next(i for i in range(size * 3, n) if order[i] >= size)
    return int(order[position]), position // size


@pytest.mark.parametrize("where", ["X", "y"])
def test_nan_in_streamed_rows_is_refused_before_the_step_that_would_use_it(backend, tmp_path,
                                                                           where):
    X, y = _data()
    row, step = _bad_row(X.shape[0], 16, seed=1)
    bad = {"X": X.copy(), "y": y.copy()}
    bad[where][row, 1] = np.nan
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))
    with pytest.raises(ValueError, match=rf"fit: {where} contains NaN or Inf in 1 row\(s\), "
                                         rf"first at row {row}; .* before the step"):
        xnn.fit(model, _memmap(tmp_path, bad["X"], "X"), _memmap(tmp_path, bad["y"], "y"),
                loss=losses.MSELoss(), optimizer=optim.Adam(model.parameters(), lr=0.01),
                epochs=3, batch_size=16, seed=1, progress=False)
    # the steps before it trained; the one that would use the row changed nothing
    _, before, _ = _fit(X, y, callbacks=[_stopped_at(step)])
    xnn.seed(0)
    initial = host_state(nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2)))
    assert step > 0 and any(not np.array_equal(initial[k], v) for k, v in before.items())
    assert_state(model, before)



def test_nan_in_row_9000001_of_ten_million_stored_rows_is_refused_before_its_step(backend,
                                                                                tmp_path):
    rows, size, bad = 10 ** 7, 2 ** 20, 9_000_001  # one float32 feature: a 40 MB file
    np.linspace(-1, 1, rows, dtype=np.float32).tofile(tmp_path / "X.f32")
    X = np.memmap(tmp_path / "X.f32", np.float32, "r+", shape=(rows, 1))
    y = np.array(X) * np.float32(0.5)  # in memory, beside the memmapped X
    X[bad, 0] = np.nan
    models = []

    def fit(*extra):
        xnn.seed(0)
        models.append(nn.Linear(1, 1))
        xnn.fit(models[-1], X, y, loss=losses.MSELoss(), epochs=1, batch_size=size,
                shuffle=False, optimizer=optim.SGD(models[-1].parameters(), lr=0.1),
                progress=False, callbacks=list(extra))
        return host_state(models[-1])

    initial = fit(_stopped_at(0))
    with pytest.raises(ValueError, match=r"fit: X contains NaN or Inf in 1 row\(s\), first at "
                                         r"row 9000001; .* before the step that would use them"):
        fit()
    # the steps before the bad row's batch trained; the step that would use it changed nothing
    X[bad, 0] = 0.0
    stopped = fit(_stopped_at(bad // size))
    assert any(not np.array_equal(initial[k], v) for k, v in stopped.items())
    assert_state(models[1], stopped)


def test_a_label_out_of_range_in_streamed_rows_is_refused_naming_its_row(backend, tmp_path):
    X, y = _data(classes=3)
    row, step = _bad_row(X.shape[0], 16, seed=1)
    y[row] = 7
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match=rf"labels must lie in \[0, 3\), got values in \[0, 7\]; "
                                         rf"first at row {row} of y"):
        xnn.fit(model, _memmap(tmp_path, X, "X"), _memmap(tmp_path, y, "y"),
                loss=losses.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), lr=0.01),
                epochs=3, batch_size=16, seed=1, progress=False)
    y[row] = 0
    assert_state(model, _fit(X, y, classes=3, callbacks=[_stopped_at(step)])[1])


@pytest.mark.parametrize("case", ["complex", "text", "length", "validation width"])
def test_streamed_data_are_refused_up_front_with_the_in_memory_message(backend, tmp_path, case):
    X, y = _data()
    X_val, y_val = X[:10], y[:10]
    if case == "complex":
        X = X + 1j
    elif case == "text":
        X = X.astype(str)
    elif case == "length":
        y = y[:-1]
    else:
        X_val = X_val[:, :4]
    messages = []
    for stored in (lambda a: a, Rows):  # in memory, then streamed
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(5, 2))
        before = host_state(model)
        with pytest.raises((TypeError, ValueError)) as error:
            xnn.fit(model, stored(X), y, loss=losses.MSELoss(), epochs=1,
                    optimizer=optim.SGD(model.parameters(), lr=0.1), progress=False,
                    validation_data=(stored(X_val), y_val))
        assert_state(model, before)
        messages.append(str(error.value))
    in_memory, streamed = messages
    assert streamed.split(";")[0] == in_memory.split(";")[0] or (
        case == "text" and streamed.startswith("fit: X has the non-numeric dtype"))


# --- 4. shuffle="batch": whole batches of consecutive rows, in a drawn order ----------------

def test_batch_shuffle_reads_each_batch_as_consecutive_rows_in_a_new_order_each_epoch(backend):
    X, y = _data()
    stored = Rows(X)
    streamed = _fit(stored, y, shuffle="batch", epochs=2)
    _same(streamed, _fit(X, y, shuffle="batch", epochs=2))
    reads = stored.rows_read()[1:]  # after fit's check of the first batch
    for rows in reads:  # a read each run of consecutive rows (batches that follow in the file)
        assert np.array_equal(rows, np.arange(rows[0], rows[0] + rows.shape[0]))
    rows = np.concatenate(reads)
    batches = np.split(rows, np.flatnonzero(np.isin(rows, np.arange(0, 203, 16)))[1:])
    assert all(np.array_equal(b, np.arange(b[0], b[0] + b.shape[0])) for b in batches)
    starts = [int(b[0]) for b in batches]
    first, second = starts[:13], starts[13:]
    assert first[-1] == second[-1] == 192  # the short last batch (11 rows) stays last
    assert sorted(first) == sorted(second) == list(range(0, 203, 16)) and first != second


def test_batch_shuffle_differs_from_the_row_shuffle_and_from_none(backend):
    X, y = _data()
    weights = [_fit(X, y, shuffle=how)[1] for how in (True, "batch", False)]
    for a, b in ((0, 1), (1, 2)):
        assert any(not np.array_equal(weights[a][k], weights[b][k]) for k in weights[a])


def test_fit_refuses_a_shuffle_that_is_not_a_bool_or_batch(backend):
    X, y = _data()
    with pytest.raises(TypeError, match=r"fit: shuffle must be True or False, got str 'rows'; "
                                        r"or 'batch', to shuffle whole batches"):
        _fit(X, y, shuffle="rows")


# --- 5. fit(distributed=True): each rank reads only its share of each batch -----------------

@pytest.mark.parametrize("ranks", [2, 3])
def test_each_rank_reads_only_its_share_and_trains_as_in_memory(tmp_path, ranks):
    from test_distributed import _load, _relative, run_job  # noqa: PLC0415

    done = run_job(ranks, "stream", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    generator = np.random.default_rng(3)  # fit's row order of each epoch for seed=3
    order = [generator.permutation(101) for _ in range(2)]
    batches = [(s, min(16, 101 - s)) for s in range(0, 101, 16)]  # 6 x 16 rows + 5 rows
    for r in range(ranks):
        reads = json.loads((tmp_path / f"stream-{r}.json").read_text())
        assert reads[0] == list(range(16))  # fit's check of the first batch, every rank
        shares = [sorted(rows[s + m * r // ranks:s + m * (r + 1) // ranks].tolist())
                  for rows in order for s, m in batches]
        shares = [share for share in shares if share]
        for rows in reads[1:]:  # each read: the shares of a run of whole batches
            held: list[int] = []
            while len(held) < len(rows):
                held += shares.pop(0)
            assert sorted(rows) == sorted(held)
        assert shares == []
    weights = [_load(tmp_path, f"stream-{r}") for r in range(ranks)]
    for name in weights[0]:
        if name.startswith("streamed/"):
            kept = name[len("streamed/"):]
            for w in weights:  # every rank: the in-memory distributed fit's weights
                np.testing.assert_array_equal(w[name], w[f"memory/{kept}"])
                np.testing.assert_array_equal(w[name], weights[0][name])
            assert _relative(weights[0][name], weights[0][f"alone/{kept}"]) <= 1e-12


@pytest.mark.parametrize("ranks", [2, 3])
def test_each_rank_trains_on_its_share_of_each_batch_of_a_batch_dataset(tmp_path, ranks):
    from test_distributed import _load, _relative, run_job  # noqa: PLC0415

    done = run_job(ranks, "stream_batches", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    saw = [json.loads((tmp_path / f"batches-{r}.json").read_text()) for r in range(ranks)]
    weights = [_load(tmp_path, f"batches-{r}") for r in range(ranks)]
    X = np.random.default_rng(7).normal(size=(97, 3))  # mpi_jobs.small_data(97)
    for mine in saw:  # the shares of the in-memory fit with shuffle="batch"
        assert mine["seen"]["batches"] == mine["seen"]["memory"]
        np.testing.assert_allclose(mine["val_loss"]["batches"], mine["val_loss"]["memory"],
                                   rtol=1e-12)
    for how, chunks in (("batches", 6), ("short", 7)):
        assert len(saw[0]["seen"][how]) == 2 * chunks
        for step in range(2 * chunks):  # the ranks' shares, in rank order, make one chunk
            shares = [mine["seen"][how][step] for mine in saw]
            rows = sum(shares, [])
            start = 16 * (int(np.argmin(np.abs(X[:, 0] - rows[0]))) // 16)
            assert rows == X[start:start + 16, 0].tolist()
            m = len(rows)  # a rank's share: m // ranks or one more row (0 of the last 1)
            assert [len(share) for share in shares] == [m * (r + 1) // ranks - m * r // ranks
                                                        for r in range(ranks)]
    for name in weights[0]:
        kept = name.split("/", 1)[1]
        for w in weights:  # every rank the same, the in-memory distributed fit's weights
            np.testing.assert_array_equal(w[f"batches/{kept}"], w[f"memory/{kept}"])
            np.testing.assert_array_equal(w[name], weights[0][name])
        assert _relative(weights[0][f"short/{kept}"], weights[0][f"alone/{kept}"]) <= 1e-12


def test_a_rank_names_a_bad_row_of_its_share_by_its_row_in_the_batch(backend):
    from xnn.stream import batch_sources  # noqa: PLC0415 - what fit(distributed=True) cuts

    X, y = _data()
    X[16 + 13, 2] = np.nan  # batch 1, row 13: in the second of two shares (rows 8-15)
    xs, _ = batch_sources("fit", ("X", "y"), Chunks(X, y), backend, "float64", True)
    second = xs.cut(lambda m: (m // 2, m))
    np.testing.assert_array_equal(second.read(np.array([0])), X[8:16])
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 row\(s\), first at row 13 "
                                         r"of batch 1"):
        second.read(np.array([1]))
    xs.cut(lambda m: (0, m // 2)).read(np.array([1]))  # the first share holds no bad row


def test_jit_compile_trains_streamed_rows_step_by_step_as_in_memory(tmp_path):
    pytest.importorskip("jax")
    X, y = _data()
    with xnn.use_backend("jax"):
        memory = _fit(X, y, jit_compile=True)
        streamed = _fit(_memmap(tmp_path, X, "X"), y, jit_compile=True)
    for name, value in memory[1].items():  # compiled steps against compiled epochs: rounding
        np.testing.assert_allclose(streamed[1][name], value, rtol=1e-5, atol=1e-6)


def test_stream_refuses_what_has_no_rows_to_index():
    with pytest.raises(TypeError, match=r"Stream: expected rows with shape, dtype and indexing, "
                                        r"got list without shape, dtype"):
        xnn.data.Stream([[1.0, 2.0]])
    assert repr(xnn.data.Stream(np.zeros((4, 2)))) == "Stream(ndarray of shape (4, 2))"


# --- 6. a memmap is read from its file: the rows it gives, and no pages kept mapped ---------

def _source(data, backend):
    return source("fit", "X", data, backend, "float32", labels_ok=False, checked=True)


@pytest.mark.parametrize("streamed", [True, False])
def test_an_epochs_row_order_is_freed_before_the_next_epoch_draws_its_own(backend, tmp_path,
                                                                           monkeypatch,
                                                                           streamed):
    # the order is the one array of a streamed fit that grows with the rows (4 bytes a row):
    # two at once would double it
    X, y = _data()
    if streamed:
        X, y = _memmap(tmp_path, X, "X.dat"), _memmap(tmp_path, y, "y.dat")
    drawn, real = [], xnn.random.permutation

    def tracked(n, generator=None):
        assert all(ref() is None for ref in drawn), "the last epoch's order is still held"
        order = real(n, generator)
        drawn.append(weakref.ref(order))
        return order

    monkeypatch.setattr(xnn.random, "permutation", tracked)
    _fit(X, y, seed=None)
    assert len(drawn) == 3



@pytest.fixture(params=["a batch of reads", "a read a row"])
def reads(request, monkeypatch):
    """How a memmap's scattered rows are read: one batch of reads (xnn.rowread), or one read a
    row, as on a system without native AIO."""
    if request.param == "a read a row":
        monkeypatch.setattr(stream.rowread, "read", lambda fd, buffers, offsets, sizes: None)
    return request.param


@pytest.mark.parametrize("stored", ["npy", "raw with offset", "view", "copy-on-write"])
def test_reads_of_a_memmap_give_the_rows_its_indexing_gives(backend, tmp_path, stored, reads):
    values = np.random.default_rng(0).normal(size=(301, 3, 2)).astype(np.float32)
    if stored == "npy":  # rows after the .npy header
        np.save(tmp_path / "X.npy", values)
        data = np.load(tmp_path / "X.npy", mmap_mode="r")
    elif stored in ("raw with offset", "view"):
        (tmp_path / "X.f32").write_bytes(b"\0" * 12 + values.tobytes())
        data = np.memmap(tmp_path / "X.f32", np.float32, "r", offset=12, shape=values.shape)
        data = data[5:250] if stored == "view" else data
    else:  # a private change the file does not have: read by indexing
        np.save(tmp_path / "X.npy", values)
        data = np.load(tmp_path / "X.npy", mmap_mode="c")
        data[7, 1, 0] = 99.0
    rows = _source(data, backend)
    assert (rows.file is None) == (stored == "copy-on-write")
    n = data.shape[0]
    shuffled = np.random.default_rng(1).permutation(n)
    for at in (shuffled[:64], np.sort(shuffled[:64]), np.arange(3, 40), np.arange(0),
               np.array([n - 1]), np.arange(n)):
        np.testing.assert_array_equal(rows.read(at), data[at])
    np.testing.assert_array_equal(rows.read(slice(10, 20)), data[10:20])
    part = rows.part(n - 50, n)  # validation_split's last rows
    np.testing.assert_array_equal(part.read(shuffled[:20] % 50), data[n - 50:][shuffled[:20] % 50])


@pytest.mark.parametrize("at", [[5, 299, 2], [296, 297, 298, 299, 300]], ids=["rows", "a run"])
def test_a_memmap_over_a_file_cut_short_is_refused_naming_the_file_and_first_row_missing(
        backend, tmp_path, reads, at):
    values = np.random.default_rng(0).normal(size=(301, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", values)
    data = np.load(tmp_path / "X.npy", mmap_mode="r")
    rows = _source(data, backend)
    os.truncate(tmp_path / "X.npy", data.offset + 16 * 298 + 5)  # rows 298 on are gone
    with pytest.raises(OSError, match=rf"X.npy: reading row {298 if len(at) > 3 else 299} "
                                      r"failed \((5|0) of 16 bytes read\); the file is shorter"):
        rows.read(np.array(at))


def _rss_file_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_reading_every_row_of_a_memmap_keeps_none_of_its_pages_mapped(backend, tmp_path):
    rows, width = 2 ** 16, 256  # 64 MiB of float32
    with open(tmp_path / "X.f32", "wb") as f:  # written without mapping it here
        for start in range(0, rows, 4096):
            f.write(np.full((4096, width), start, np.float32).tobytes())
    data = np.memmap(tmp_path / "X.f32", np.float32, "r", shape=(rows, width))
    stored = _source(data, backend)
    before = _rss_file_mib()
    order = np.random.default_rng(0).permutation(rows)
    for start in range(0, rows, 4096):  # a shuffled epoch, then a pass in order
        at = order[start:start + 4096]
        assert (stored.read(at)[:, 0] == at // 4096 * 4096).all()
    for start in range(0, rows, 4096):
        stored.read(slice(start, start + 4096))
    assert _rss_file_mib() - before < 4


# --- 7. a BatchDataset: batches read by index, for data without row indexing ----------------

class Chunks(xnn.data.BatchDataset):
    """Consecutive chunks of ``size`` rows of (X, y) as a BatchDataset; each read is logged as
    (thread name, batch index)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, size: int = 16) -> None:
        self.X, self.y, self.size = X, y, size
        self.reads: list[tuple[str, int]] = []

    def __len__(self) -> int:
        return -(-self.X.shape[0] // self.size)

    def __getitem__(self, i: int):
        self.reads.append((threading.current_thread().name, i))
        rows = slice(i * self.size, (i + 1) * self.size)
        return self.X[rows], self.y[rows]


@pytest.mark.parametrize("classes", [None, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_batch_dataset_trains_as_the_same_batches_in_memory_bit_for_bit(backend, classes,
                                                                          shuffle):
    X, y = _data(208, classes)  # 13 batches of 16: shuffle=True draws as shuffle="batch"
    X_val, y_val = X[:40] * 0.5, y[:40]
    metrics = ["mae" if classes is None else "accuracy"]
    memory = _fit(X, y, classes, metrics=metrics, validation_data=(X_val, y_val),
                  shuffle="batch" if shuffle else False)
    batched = _fit(Chunks(X, y), None, classes, metrics=metrics, batch_size=None,
                   validation_data=Chunks(X_val, y_val, 8), shuffle=shuffle)
    _same(batched, memory)


def test_a_batch_dataset_is_read_once_a_batch_in_the_background_in_a_new_order_each_epoch(
        backend):
    X, y = _data()
    chunks = Chunks(X, y)
    _fit(chunks, None, batch_size=None, epochs=2)
    (first_thread, first), *reads = chunks.reads
    assert first == 0  # fit's checks of the first batch (one call gives its x and y)
    assert {thread for thread, _ in reads} == {"xnn-stream-reader"}
    epochs = [[i for _, i in reads[:13]], [i for _, i in reads[13:]]]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(13))
    assert epochs[0] != epochs[1] and epochs[0] != list(range(13))


def test_evaluate_and_predict_read_a_batch_dataset_as_the_rows_in_memory(backend):
    X, y = _data(classes=3)
    _, _, model = _fit(X, y, classes=3)
    np.testing.assert_allclose(xnn.to_numpy(xnn.predict(model, Chunks(X, y, 50))),
                               xnn.to_numpy(xnn.predict(model, X)), rtol=1e-6, atol=1e-7)

    class Inputs(Chunks):  # x alone: enough for predict
        def __getitem__(self, i):
            return super().__getitem__(i)[0]

    np.testing.assert_array_equal(xnn.to_numpy(xnn.predict(model, Inputs(X, y, 50))),
                                  xnn.to_numpy(xnn.predict(model, Chunks(X, y, 50))))
    scores = xnn.evaluate(model, Chunks(X, y, 50), None, loss=losses.CrossEntropyLoss(),
                          metrics=["accuracy"])
    assert scores == pytest.approx(xnn.evaluate(model, X, y, loss=losses.CrossEntropyLoss(),
                                                metrics=["accuracy"]), rel=1e-6)


@pytest.mark.parametrize("where", ["X", "y", "label"])
def test_a_bad_row_of_a_batch_is_refused_naming_batch_and_row_before_its_step(backend, where):
    classes = 3 if where == "label" else None
    X, y = _data(classes=classes)
    bad = {"X": X.copy(), "y": y.copy()}
    if where == "label":
        bad["y"][7 * 16 + 3] = 9
    else:
        bad[where][7 * 16 + 3, 1] = np.nan
    message = (r"labels must lie in \[0, 3\), got values in \[0, 9\]; first at row 3 of batch "
               r"7 of y" if where == "label" else
               rf"fit: {where} contains NaN or Inf in 1 row\(s\), first at row 3 of batch 7; ")
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, classes or 2))
    with pytest.raises(ValueError, match=message + r".* before the step"):
        xnn.fit(model, Chunks(bad["X"], bad["y"]), None, epochs=1, shuffle=False,
                loss=losses.CrossEntropyLoss() if classes else losses.MSELoss(),
                optimizer=optim.Adam(model.parameters(), lr=0.01), progress=False)
    assert_state(model, _fit(X, y, classes, shuffle=False, callbacks=[_stopped_at(7)])[1])


@pytest.mark.parametrize("case", ["y given", "batch_size", "not a pair", "no batches"])
def test_fit_refuses_a_batch_dataset_it_cannot_step_through(backend, case):
    X, y = _data()
    class Xs(Chunks):  # batches without targets
        def __getitem__(self, i):
            return super().__getitem__(i)[0]

    chunks = {"no batches": Chunks(X[:0], y[:0]), "not a pair": Xs(X, y)}.get(case,
                                                                             Chunks(X, y))
    message = {"y given": r"fit: a BatchDataset X gives the targets with its batches; pass "
                          r"y=None",
               "batch_size": r"fit: a BatchDataset X makes its own batches; batch_size does "
                             r"not apply",
               "not a pair": r"fit: batch 0 of the BatchDataset Xs must be a pair \(x, y\), "
                             r"got ndarray",
               "no batches": r"fit: the BatchDataset Chunks has no batches \(len 0\)"}[case]
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(5, 2))
    with pytest.raises((TypeError, ValueError), match=message):
        xnn.fit(model, chunks, y if case == "y given" else None, loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
                batch_size=16 if case == "batch_size" else None)


def test_fit_points_a_generator_of_batches_to_batch_dataset(backend):
    model = nn.Sequential(nn.Linear(5, 2))
    batches = (pair for pair in [_data()])
    with pytest.raises(TypeError, match=r"fit: X cannot be used as data: .*got generator.*; for "
                                        r"batches a generator or files give, subclass "
                                        r"xnn.data.BatchDataset \(docs/streaming.md\)$"):
        xnn.fit(model, batches, None, loss=losses.MSELoss(), epochs=1,
                optimizer=optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match=r"X cannot be used as data: .*NoneType[^;]*$"):
        xnn.fit(model, None, None, loss=losses.MSELoss(), epochs=1,
                optimizer=optim.SGD(model.parameters(), lr=0.1))


def test_parquet_row_groups_train_as_batches(backend, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    import pyarrow as pa  # noqa: PLC0415

    X, y = _data(208)
    table = pa.table({**{f"x{j}": X[:, j] for j in range(5)}, "t0": y[:, 0], "t1": y[:, 1]})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=16)

    class RowGroups(xnn.data.BatchDataset):
        def __init__(self, path):
            self.file = pq.ParquetFile(path)

        def __len__(self):
            return self.file.num_row_groups

        def __getitem__(self, i):
            group = self.file.read_row_group(i)
            columns = [c.to_numpy() for c in group.columns]
            return np.stack(columns[:5], axis=1), np.stack(columns[5:], axis=1)

    _same(_fit(RowGroups(tmp_path / "data.parquet"), None, batch_size=None),
          _fit(X, y, shuffle="batch"))
