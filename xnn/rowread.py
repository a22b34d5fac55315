"""Scattered rows of a file read by one system call: Linux's native AIO (io_submit) of a batch of
preads, called through ctypes, which releases the GIL for the call.

A streamed fit reads its shuffled rows one pread each. From Python that is a call a row, and
every call takes the GIL back from the training step running on the other thread; submitted as
one batch, the reads run in the kernel beside the step (benchmarks/streaming.py, 10^6 rows of 50
float32, batches of 256: 0.34x the in-memory fit's rows/s read a row a call, 0.58x a batch a
submission, 0.52-0.90x a run of 32 batches; docs/streaming.md). Where there is no native AIO
(not Linux, an architecture not listed, a sandbox that forbids it, a file it cannot read)
``read`` answers None and the caller reads a run of rows a call."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import threading

import numpy as np

__all__ = ["read", "DEPTH"]

# (io_setup, io_destroy, io_submit, io_getevents) of linux/unistd.h
_CALLS = {"x86_64": (206, 207, 209, 208), "aarch64": (0, 1, 2, 4)}
# struct iocb and struct io_event of linux/aio_abi.h, 64-bit little-endian
_IOCB = np.dtype([("data", "<u8"), ("key", "<u4"), ("rw_flags", "<i4"), ("opcode", "<u2"),
                  ("reqprio", "<i2"), ("fildes", "<u4"), ("buf", "<u8"), ("nbytes", "<u8"),
                  ("offset", "<i8"), ("reserved2", "<u8"), ("flags", "<u4"), ("resfd", "<u4")])
_EVENT = np.dtype([("data", "<u8"), ("obj", "<u8"), ("res", "<i8"), ("res2", "<i8")])
_PREAD = 0  # IOCB_CMD_PREAD
DEPTH = 1024  # reads submitted at a time (a context holds as many)


def _syscall() -> ctypes._CFuncPtr | None:
    if not sys.platform.startswith("linux") or platform.machine() not in _CALLS:
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    call.restype = ctypes.c_long
    return call


_SYSCALL = _syscall()
_SETUP, _DESTROY, _SUBMIT, _GETEVENTS = _CALLS.get(platform.machine(), (0, 0, 0, 0))


class _Context:
    """A kernel queue of reads (io_setup), one per thread, destroyed with the thread; its
    request blocks are kept and refilled."""

    def __init__(self) -> None:
        handle = ctypes.c_ulong(0)
        if _SYSCALL(ctypes.c_long(_SETUP), ctypes.c_long(DEPTH), ctypes.byref(handle)) != 0:
            raise OSError(ctypes.get_errno(), "io_setup")
        self.handle, self.syscall = ctypes.c_ulong(handle.value), _SYSCALL
        self.pid = os.getpid()  # a forked child has none of its parent's contexts
        # kept: a module's names are None at exit
        self.destroy, self.getpid = ctypes.c_long(_DESTROY), os.getpid
        self.blocks = np.zeros(DEPTH, _IOCB)
        self.blocks["data"] = np.arange(DEPTH)  # each event names its request by this
        self.blocks["opcode"] = _PREAD
        self.pointers = (self.blocks.ctypes.data
                         + np.arange(DEPTH, dtype=np.uint64) * np.uint64(_IOCB.itemsize))
        self.events = np.zeros(DEPTH, _EVENT)

    def __del__(self) -> None:
        if self.pid == self.getpid():
            self.syscall(self.destroy, self.handle)

    def _call(self, number: int, *args: int) -> int:
        """The system call's answer, called again while a signal interrupts it (EINTR)."""
        while True:
            answer = self.syscall(ctypes.c_long(number), self.handle,
                                  *(ctypes.c_long(a) for a in args))
            if answer >= 0 or ctypes.get_errno() != errno.EINTR:
                return answer

    def read(self, fd: int, buffers: np.ndarray, offsets: np.ndarray,
             sizes: np.ndarray) -> np.ndarray:
        """Bytes read by each of at most DEPTH preads of ``sizes`` bytes at ``offsets`` of
        ``fd`` into the addresses ``buffers`` (all of them have ended when it returns, failed
        or not: the kernel writes to no buffer after)."""
        count = offsets.shape[0]
        blocks = self.blocks[:count]
        blocks["fildes"], blocks["buf"] = fd, buffers
        blocks["offset"], blocks["nbytes"] = offsets, sizes
        submitted = ended = 0
        error = None
        while True:
            if submitted < count and error is None:
                answer = self._call(_SUBMIT, count - submitted,
                                    self.pointers.ctypes.data + 8 * submitted)
                if answer <= 0:  # reap what is in flight before saying so
                    error = OSError(ctypes.get_errno() if answer else errno.EAGAIN, "io_submit")
                else:
                    submitted += answer
            if ended == submitted:
                break
            answer = self._call(_GETEVENTS, 1, submitted - ended,
                                self.events.ctypes.data + _EVENT.itemsize * ended, 0)
            if answer < 0:  # EFAULT, EINVAL: a bug here, not the file's
                raise OSError(ctypes.get_errno(), "io_getevents")
            ended += answer
        if error is not None:
            raise error
        got = np.zeros(count, np.int64)
        got[self.events["data"][:ended].astype(np.int64)] = self.events["res"][:ended]
        return got


_LOCAL = threading.local()


def read(fd: int, buffers: np.ndarray, offsets: np.ndarray,
         sizes: np.ndarray) -> np.ndarray | None:
    """Bytes read by each pread of ``sizes[i]`` bytes at ``offsets[i]`` of ``fd`` into the
    address ``buffers[i]`` (negative: an errno), all submitted together; None where there is
    no native AIO, or none for this file. The caller keeps the buffers alive and large
    enough."""
    context = getattr(_LOCAL, "context", None)
    if context is None or context.pid != os.getpid():
        if _SYSCALL is None or getattr(_LOCAL, "refused", False):
            return None
        try:
            context = _LOCAL.context = _Context()
        except OSError:  # ENOSYS, EPERM (a seccomp filter), EAGAIN (aio-max-nr reached)
            _LOCAL.refused = True
            return None
    try:
        return np.concatenate([np.zeros(0, np.int64)] + [
            context.read(fd, buffers[s:s + DEPTH], offsets[s:s + DEPTH], sizes[s:s + DEPTH])
            for s in range(0, offsets.shape[0], DEPTH)])
    except OSError as error:
        if error.errno in _NOT_HERE:  # a file whose system has no AIO reads: read it a call
            return None
        raise


# io_submit's answer for a file it cannot read asynchronously (some FUSE and special files)
_NOT_HERE = {errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS}
