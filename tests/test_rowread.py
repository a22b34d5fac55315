"""xnn.rowread: scattered rows of a file read in one batch of system calls (Linux native AIO),
each row's bytes where the file has them, and None where the system has no such call."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest

from xnn import rowread


def _stored(tmp_path, rows: int = 5000, width: int = 7) -> tuple[np.ndarray, int]:
    values = np.random.default_rng(0).normal(size=(rows, width)).astype(np.float32)
    (tmp_path / "X.f32").write_bytes(b"\1" * 24 + values.tobytes())  # rows after 24 bytes
    return values, os.open(tmp_path / "X.f32", os.O_RDONLY)


def _read(fd: int, at: np.ndarray, width: int = 7,
          runs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``at`` (runs[i] rows from at[i], or one each) read into a new array."""
    runs = np.ones(at.shape[0], np.int64) if runs is None else runs
    out = np.full((int(runs.sum()), width), np.nan, np.float32)
    size = out.strides[0]
    buffers = out.ctypes.data + np.cumsum(np.append(0, runs[:-1])).astype(np.uint64) * size
    got = rowread.read(fd, buffers, at.astype(np.int64) * size + 24, runs * size)
    if got is None:
        pytest.skip("this system has no native AIO (rowread.read answers None)")
    return out, got


@pytest.mark.parametrize("count", [0, 1, 64, rowread.DEPTH + 1, 5000])
def test_a_batch_of_reads_fills_each_row_from_its_offset(tmp_path, count):
    values, fd = _stored(tmp_path)
    at = np.random.default_rng(count).permutation(5000)[:count]
    out, got = _read(fd, at)
    os.close(fd)
    np.testing.assert_array_equal(got, np.full(count, 28))
    np.testing.assert_array_equal(out, values[at])


def test_reads_of_runs_of_rows_fill_each_run_from_its_offset(tmp_path):
    values, fd = _stored(tmp_path)
    at, runs = np.array([4000, 10, 2999, 0]), np.array([16, 1, 2, 7])
    out, got = _read(fd, at, runs=runs)
    os.close(fd)
    np.testing.assert_array_equal(got, runs * 28)
    np.testing.assert_array_equal(out, values[np.concatenate(
        [np.arange(a, a + n) for a, n in zip(at, runs)])])


def test_rows_past_the_end_of_the_file_read_no_bytes_and_the_others_read_whole(tmp_path):
    values, fd = _stored(tmp_path)
    os.truncate(tmp_path / "X.f32", 24 + 28 * 100 + 10)  # row 100 is cut short
    out, got = _read(fd, np.array([3, 100, 4000, 99]))
    os.close(fd)
    np.testing.assert_array_equal(got, [28, 10, 0, 28])
    np.testing.assert_array_equal(out[[0, 3]], values[[3, 99]])


def test_a_closed_file_descriptor_is_an_oserror_and_no_read_is_left_in_flight(tmp_path):
    _, fd = _stored(tmp_path)
    os.close(fd)
    with pytest.raises(OSError) as error:
        _read(fd, np.arange(10) * 3)
    assert error.value.errno == errno.EBADF


def test_threads_reading_at_once_each_get_their_own_rows(tmp_path):
    values, fd = _stored(tmp_path)
    orders = [np.random.default_rng(k).permutation(5000) for k in range(4)]
    results: dict[int, np.ndarray] = {}

    def read(k: int) -> None:
        results[k] = np.concatenate([_read(fd, orders[k][s:s + 256])[0]
                                     for s in range(0, 5000, 256)])

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.close(fd)
    if not results:
        pytest.skip("this system has no native AIO (rowread.read answers None)")
    for k in range(4):
        np.testing.assert_array_equal(results[k], values[orders[k]])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_reads_with_a_queue_of_its_own(tmp_path):
    values, fd = _stored(tmp_path)
    at = np.random.default_rng(0).permutation(5000)[:300]
    _read(fd, at)  # the parent's thread now has a queue, which a child does not inherit
    readable, writable = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its reads of the same rows, as bytes down the pipe
        try:
            out, got = _read(fd, at)
            os.write(writable, out.tobytes() if (got == 28).all() else b"short")
        finally:
            os._exit(0)
    os.close(writable)
    data = b""
    while chunk := os.read(readable, 1 << 16):
        data += chunk
    os.waitpid(child, 0)
    os.close(fd)
    np.testing.assert_array_equal(np.frombuffer(data, np.float32).reshape(300, 7), values[at])


def test_a_file_the_kernel_cannot_read_asynchronously_is_answered_none(tmp_path, monkeypatch):
    _, fd = _stored(tmp_path)
    out = np.zeros((2, 7), np.float32)
    buffers = out.ctypes.data + np.arange(2, dtype=np.uint64) * 28
    if rowread.read(fd, buffers, np.array([24, 52]), np.full(2, 28)) is None:
        pytest.skip("this system has no native AIO (rowread.read answers None)")

    def refused(self, *args):
        raise OSError(errno.EINVAL, "io_submit")

    monkeypatch.setattr(rowread._Context, "read", refused)  # as for a file without read_iter
    assert rowread.read(fd, buffers, np.array([24, 52]), np.full(2, 28)) is None
    os.close(fd)


def test_a_system_without_native_aio_is_answered_none(tmp_path, monkeypatch):
    monkeypatch.setattr(rowread, "_SYSCALL", None)
    monkeypatch.setattr(rowread, "_LOCAL", threading.local())
    _, fd = _stored(tmp_path)
    out = np.zeros((3, 7), np.float32)
    buffers = out.ctypes.data + np.arange(3, dtype=np.uint64) * 28
    assert rowread.read(fd, buffers, np.array([24, 52, 80]), np.full(3, 28)) is None
    os.close(fd)
    assert (out == 0).all()
