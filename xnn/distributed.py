"""Data-parallel training over MPI: every rank holds the whole model, trains on its share of
each batch, and the ranks sum their gradients before each step (docs/distributed.md).

mpi4py is imported only by :func:`init`, and only under an MPI launcher (``mpiexec``,
``srun``); anywhere else the world is one process and every collective here returns at once.
Arrays travel through mpi4py's buffer interface, never pickled: NumPy arrays, torch CPU
tensors and array_api_strict arrays are handed to MPI as they are; arrays on a GPU (CuPy,
torch on CUDA) are staged through host memory (device -> host -> MPI -> device).

Under a launcher with more than one rank, ``init`` makes an uncaught exception on any rank
print its rank and error and abort the whole job (``MPI_Abort``): the other ranks would
otherwise wait for it in their next collective forever.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import sys
import time
from typing import Any, Iterable

import numpy as np

from ._checks import env_flag, env_int, flag, integer, number
from .backend import asarray, backend_of, dtype_name, host_view, is_array, to_numpy
from .extras import install_hint
from .loop import Steps, TrainingRun, to_host
from .losses.base import Loss
from .namespace import array_namespace
from .nn.module import Module, Parameter
from .nn.normalization import BatchNorm1d
from .optim._checks import check_grads, parameter_list, placements
from .optim.optimizers import Optimizer
from .stream import BatchRows, Source

__all__ = ["init", "rank", "world_size", "is_initialized", "barrier", "broadcast_parameters",
           "allreduce_gradients", "DistributedOptimizer"]

# what MPI launchers set in each process they start: Hydra (MPICH, Intel MPI) and Slurm's
# PMI-2 set PMI_RANK; PMIx (Open MPI 5, srun --mpi=pmix) PMIX_RANK; older Open MPI its own
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


class _World:
    """The communicator (None in a one-process world), this process's rank and the size."""

    def __init__(self) -> None:
        self.comm: Any = None
        self.mpi: Any = None  # the mpi4py.MPI module, once init imported it
        self.rank = 0
        self.size = 1
        self.initialized = False
        self.node: Any = None  # the ranks on this machine, once one_machine() asked
        self.on_one_machine: bool | None = None
        self.abort: Any = None  # the excepthook that ends the job, once init installed it
        # XNN_MPI_SHARED_MEMORY and XNN_MPI_CHECK_DATA, read by init before any collective
        self.shared_memory = self.check_data = True

    def one_machine(self) -> bool:
        """Whether every rank runs on this machine, so that they can share memory (asked of
        MPI once, by every rank together). ``XNN_MPI_SHARED_MEMORY=0`` on any rank says no."""
        if self.on_one_machine is None:
            self.node = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
            mine = int(self.shared_memory and self.node.Get_size() == self.size)
            self.on_one_machine = bool(_gather(self, np.asarray([mine])).min())
        return self.on_one_machine


_world = _World()


def init() -> None:
    """Join the MPI world when started by an MPI launcher; a one-process world otherwise.

    Idempotent. Under a launcher without mpi4py it raises ImportError with the install command
    (training on alone, each rank would silently fit its own model); in a Slurm step of several
    tasks started without MPI (``srun --mpi=none``) it raises RuntimeError for the same reason.
    """
    if _world.initialized:
        return
    if any(name in os.environ for name in _LAUNCHER_VARIABLES):
        _world.shared_memory = env_flag("XNN_MPI_SHARED_MEMORY", True)
        _world.check_data = env_flag("XNN_MPI_CHECK_DATA", True)
        try:
            from mpi4py import MPI  # noqa: PLC0415 - optional, the mpi extra
        except ImportError as err:
            raise ImportError(f"xnn.distributed: this process was started by an MPI launcher "
                              f"but mpi4py is missing: {install_hint('mpi')}") from err
        comm, _world.mpi = MPI.COMM_WORLD, MPI
        _world.comm, _world.rank, _world.size = comm, comm.Get_rank(), comm.Get_size()
        if _world.size > 1:
            _abort_on_uncaught_exception()
    elif (tasks := env_int("SLURM_STEP_NUM_TASKS", 1, low=1)) > 1:
        # srun started several tasks but gave them no MPI: each would train alone
        raise RuntimeError(f"xnn.distributed: srun started {tasks} "
                           f"tasks without MPI (no PMI_RANK or PMIX_RANK); launch with "
                           f"srun --mpi=pmix or --mpi=pmi2 (srun --mpi=list shows what this "
                           f"cluster has)")
    _world.initialized = True


def _abort_on_uncaught_exception() -> None:
    """An uncaught exception on this rank prints its traceback and rank, then ends every rank:
    the others would wait for it in their next collective forever."""
    previous = sys.excepthook

    def hook(kind: type, error: BaseException, traceback: Any) -> None:
        previous(kind, error, traceback)
        sys.stderr.write(f"xnn.distributed: rank {_world.rank} of {_world.size} failed with "
                         f"{kind.__name__}: {error}; aborting the job\n")
        sys.stdout.flush()
        sys.stderr.flush()
        if getattr(error, "every_rank", False):  # raised by every rank: let each print first
            _world.comm.Barrier()
        # the launcher relays output through pipes; an abort at once can cut the traceback off
        # (seen on a loaded machine), so give it a moment to pass the last lines on
        time.sleep(0.5)
        _world.comm.Abort(1)
        os._exit(1)  # MPI_Abort may return before the launcher ends this rank: nothing runs on

    sys.excepthook = _world.abort = hook


def _left_fit(error: BaseException) -> None:
    """End the job, as an uncaught exception does, when this rank leaves fit on its own (an
    error, even one its script then catches, sys.exit, Ctrl-C): every rank is in the middle of
    fit's collectives. An error every rank raises together (a refusal) is left to the caller."""
    if not getattr(error, "every_rank", False):
        _world.abort(type(error), error, error.__traceback__)


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _world.initialized


def _initialized(owner: str) -> _World:
    if not _world.initialized:
        raise RuntimeError(f"xnn.distributed.{owner}: call xnn.distributed.init() first")
    return _world


def rank() -> int:
    """This process's rank, 0 to world_size() - 1 (0 in a one-process world)."""
    return _initialized("rank()").rank


def world_size() -> int:
    """How many processes train together (1 outside an MPI launcher)."""
    return _initialized("world_size()").size


def barrier() -> None:
    """Wait until every rank has reached this call."""
    world = _initialized("barrier()")
    if world.size > 1:
        world.comm.Barrier()


# --- parameters --------------------------------------------------------------------------------

def broadcast_parameters(model: Module, root: int = 0) -> None:
    """Give every rank ``root``'s parameters and buffers (BatchNorm statistics too).

    The ranks first compare their models' entries (names, shapes, dtypes) with root's: where
    they differ, every rank raises ValueError naming the ranks and the first difference,
    instead of hanging or receiving garbage. Each dtype travels as one flat buffer.
    """
    world = _initialized("broadcast_parameters()")
    if not isinstance(model, Module):
        raise TypeError(f"broadcast_parameters: model must be an xnn Module, got "
                        f"{type(model).__name__}")
    root = integer("broadcast_parameters", "root", root, low=0, high=world.size - 1)
    if world.size == 1:
        return
    state = model.state_dict()
    _check_same_models(world, state, root)
    received = {}
    for names in _groups(state.items()).values():
        arrays = [state[name] for name in names]
        flat = _transfer(_flatten(arrays), lambda host: world.comm.Bcast(host, root=root))
        received.update(zip(names, _unflatten(flat, arrays)))
    if world.rank != root:
        model.load_state_dict(received)


def _check_same_models(world: _World, state: dict[str, Any], root: int) -> None:
    """ValueError on every rank unless every rank's model has root's entries (the name, shape
    and dtype of each, one a line)."""
    mine = "\n".join(f"{name} {tuple(value.shape)} {dtype_name(value.dtype)}"
                     for name, value in state.items())
    theirs = world.comm.bcast(mine, root=root)  # a short text, not an array: pickled
    differ = np.flatnonzero(_gather(world, np.asarray([mine != theirs], dtype=np.int64))).tolist()
    if not differ:
        return
    message = (f"broadcast_parameters: the models of ranks {differ} differ from rank {root}'s "
               f"(names, shapes or dtypes of parameters and buffers)")
    if world.rank in differ:
        message += f"; on rank {world.rank}: " + _first_difference(mine, theirs, root)
    raise _every_rank(ValueError(message))


def _first_difference(mine: str, theirs: str, root: int) -> str:
    a, b = mine.splitlines(), theirs.splitlines()
    for here, there in zip(a, b):
        if here != there:
            return f"this rank has {here!r} where rank {root} has {there!r}"
    if len(a) > len(b):
        return f"this rank has {a[len(b)]!r} where rank {root}'s model ends"
    return f"rank {root} has {b[len(a)]!r} where this rank's model ends"


def _every_rank(error: Exception) -> Exception:
    """Mark an error that every rank raises together (it ends the job once each printed it)."""
    error.every_rank = True
    return error


def _gather(world: _World, mine: np.ndarray) -> np.ndarray:
    """Every rank's ``mine`` (a 1-D array, as long on every rank), one row per rank: the one
    way the ranks compare what they are about to do together (settings, models, gradients)."""
    every = np.empty((world.size, mine.size), dtype=mine.dtype)
    world.comm.Allgather(mine, every)
    return every


# --- gradients ---------------------------------------------------------------------------------

def allreduce_gradients(model_or_params: Module | Iterable[Parameter], average: bool = True,
                        *, weight: float | None = None) -> None:
    """Sum (``average``: average) every parameter's ``.grad`` over the ranks, in place.

    One collective per dtype, on a flat buffer of every grad of that dtype. ``weight`` replaces
    the averaging: the grads become sum over ranks of weight_r * grad_r (each rank's share of
    a batch's rows, say, so that the result is the whole batch's mean gradient). A grad that
    is None on a rank counts as zeros there; it stays None only where it is None on every rank
    (or comes only from ranks of weight 0).
    """
    average = flag("allreduce_gradients", "average", average)
    params = (model_or_params.parameters() if isinstance(model_or_params, Module)
              else parameter_list("allreduce_gradients", model_or_params))
    _Reducer().reduce(params, average, weight)


class _Reducer:
    """allreduce_gradients with its buffers kept from call to call, so that a training loop
    does not allocate (and page in) a gradient-sized array at every step.

    The reduced grads are views of the kept buffer: the next reduce() rewrites them, which a
    loop never notices (step() reads them, zero_grad() drops them); DistributedOptimizer and
    fit keep one each (``shared``), allreduce_gradients makes a new one per call. With
    ``shared``, when every rank runs on one machine, NumPy and torch CPU grads are summed in
    an MPI shared-memory window (see _SharedSum) instead of by MPI_Allreduce.
    """

    def __init__(self, shared: bool = False) -> None:
        self.buffers: dict[tuple, Any] = {}
        self.shared = shared
        self.sums: dict[tuple, _SharedSum] = {}
        self.layout: tuple = ((), None)  # (ids of the parameters and values, _Layout)

    def reduce(self, params: list[Parameter], average: bool, weight: float | None,
               parts: tuple[float, float, bool] | None = None) -> tuple[float, float] | None:
        """``parts`` (fit's shares, so more than one rank): this rank's (total, count, divide)
        of a loss (Loss.parts): the grads, of the ranks' totals, are summed and divided by the
        global count where ``divide``; returns the global (total, count), agreed in the same
        collective as the layout."""
        world = _initialized("allreduce_gradients()")
        if weight is not None:
            weight = number("allreduce_gradients", "weight", weight, low=0)
        scale = weight if weight is not None else (1.0 / world.size if average else 1.0)
        if world.size == 1 and scale == 1.0:
            return None
        layout = self._layout(params)
        check_grads("allreduce_gradients", layout.placed)
        summed = self._agree(world, layout, parts) if world.size > 1 else None
        if parts is not None:
            scale = 1.0 / summed[1] if parts[2] and summed[1] > 0 else 1.0
        for (key, group), (_, sizes) in zip(layout.groups, layout.sizes):
            if key in self.sums:
                grads, exists = self.sums[key].sum(group, sizes, scale)
            else:
                flat = self._fill(key, group, sizes)
                if scale != 1.0:
                    flat *= scale
                if world.size > 1:
                    flat = _transfer(flat, lambda host: world.comm.Allreduce(
                        world.mpi.IN_PLACE, host))
                grads = _unflatten(flat[:-len(group)], [p.value for p in group])
                exists = to_numpy(flat[-len(group):]) > 0
            for p, grad, keep in zip(group, grads, exists):
                p.grad = grad if keep else None
        return summed

    def _layout(self, params: list[Parameter]) -> _Layout:
        """The parameters' groups and digest, kept while the parameters and values are the
        same objects (a value's dtype, shape and device do not change)."""
        ids = tuple(id(p) for p in params) + tuple(id(p.value) for p in params)
        if self.layout[0] != ids:
            self.layout = (ids, _Layout(params, self.shared))
        return self.layout[1]

    def _agree(self, world: _World, layout: _Layout,
               parts: tuple[float, float, bool] | None) -> tuple[float, float] | None:
        """ValueError on every rank unless every rank reduces the same grads (how many, their
        sizes, libraries and dtypes): MPI would hang or mix them up. Also decides, together,
        whether the ranks make new shared-memory windows (every rank must, or none), and sums
        the loss's ``parts`` (total, count) over the ranks. Returns only once every rank has
        entered this reduce (so has finished reading the last one)."""
        shareable = world.one_machine() and layout.shareable
        ready = shareable and all(key in self.sums and self.sums[key].n == n
                                  for key, n in layout.lengths)
        vote = np.zeros(5, dtype=np.int64)  # digest, needs windows, cannot share, total, count
        vote[:3] = layout.digest, not ready, not shareable
        if parts is not None:
            vote[3:] = np.asarray(parts[:2], dtype=np.float64).view(np.int64)
        every = _gather(world, vote)
        if not np.all(every[:, 0] == layout.digest):
            raise _every_rank(ValueError(
                f"allreduce_gradients: the ranks' parameters differ (how many, their sizes or "
                f"dtypes); this rank {world.rank} has {layout.describe()}"))
        if every[:, 2].any():  # some rank cannot share (another machine, a GPU): MPI_Allreduce
            self.sums = {}
        elif every[:, 1].any():  # some rank has no window of the size: every rank makes new ones
            _old_windows.extend(self.sums.values())  # grads may still view them: never freed
            self.sums = {key: _SharedSum(world, key[1], n) for key, n in layout.lengths}
        if parts is None:
            return None
        total, count = np.ascontiguousarray(every[:, 3:]).view(np.float64).T
        return math.fsum(total), math.fsum(count)

    def _fill(self, key: tuple, group: list[Parameter], sizes: tuple[int, ...]) -> Any:
        """The group's buffer holding each grad (zeros for None), then a 1 per grad present:
        summed over the ranks, those say which grads exist anywhere."""
        like = group[0].value
        xp = array_namespace(like)
        layout = (tuple(id(p) for p in group), sizes)
        held, flat = self.buffers.get(key, (None, None))
        if held != layout:  # the first call, or the parameters changed: a new buffer
            flat = xp.empty((sum(sizes) + len(group),), dtype=like.dtype, device=like.device)
            self.buffers[key] = (layout, flat)
        flags = xp.asarray([0.0 if p.grad is None else 1.0 for p in group], dtype=like.dtype,
                           device=like.device)
        try:
            for p, start, size in zip(group, itertools.accumulate(sizes, initial=0), sizes):
                flat[start:start + size] = 0.0 if p.grad is None else xp.reshape(p.grad, (-1,))
        except TypeError:  # immutable arrays (jax): the same layout, made anew by concatenation
            return xp.concat([xp.zeros((size,), dtype=like.dtype, device=like.device)
                              if p.grad is None else xp.reshape(p.grad, (-1,))
                              for p, size in zip(group, sizes)] + [flags])
        flat[-len(group):] = flags
        return flat


class _Layout:
    """Parameters grouped by library, device and dtype (one flat buffer each, every grad
    then a flag per grad), with a digest of the groups that the ranks compare."""

    def __init__(self, params: list[Parameter], shared: bool) -> None:
        self.placed = placements(params)  # what check_grads compares the grads with
        self.groups = list(_groups((p, p.value) for p in params).items())
        self.sizes = [(key, tuple(math.prod(p.value.shape) for p in group))
                      for key, group in self.groups]
        self.lengths = [(key, sum(sizes) + len(sizes)) for key, sizes in self.sizes]
        self.digest = int.from_bytes(hashlib.blake2b(repr(self.sizes).encode(),
                                                     digest_size=7).digest(), "little")
        self.shareable = shared and all(_shareable(group[0].value) for _, group in self.groups)

    def describe(self) -> str:
        return "; ".join(f"{dtype} on {library}: {len(s)} grads of sizes {list(s)}"
                         for (library, dtype), s in self.sizes) or "no parameters"


def _shareable(like: Any) -> bool:
    """Whether grads like ``like`` can be summed in shared memory: host arrays (NumPy, torch
    on the CPU) of a dtype NumPy has (so that a NumPy view reads and writes them in place)."""
    return backend_of(like).is_host and dtype_name(like.dtype) in ("float32", "float64")


class _SharedSum:
    """The ranks of one machine sum their grads in one MPI shared-memory window, with no
    MPI_Allreduce: each rank reads and writes less than MPI_Allreduce moves.

    The window's first row is the result, as long as the group's flat layout (every grad, then
    a flag per grad, as _Reducer._fill), cut into one part per rank. Every rank writes
    weight x its grads for the other ranks' parts: rank r + 1 straight into the result's part
    r, any further rank into a row of its own. Then (barrier) rank r adds those rows and
    weight x its own grads into part r in place. After a second barrier the result row holds
    the sum, and every rank copies it into a buffer of its own, which its grads view: a write
    into a grad (p.grad *= s) changes that rank's alone, as on the MPI_Allreduce path. The
    ranks enter only together (the Allgather of _Reducer._agree), so nobody rewrites the
    result while a slower rank still copies it.
    """

    BLOCK = 1 << 15  # elements weighed at a time into a scratch block that stays in cache

    def __init__(self, world: _World, dtype: str, n: int) -> None:
        size, rank = world.size, world.rank
        self.comm, self.rank, self.size, self.n = world.node, rank, size, n
        rows, itemsize = max(size - 1, 1), np.dtype(dtype).itemsize
        self.window = world.mpi.Win.Allocate_shared(n * rows * itemsize if rank == 0 else 0,
                                              itemsize, comm=world.node)
        memory, _ = self.window.Shared_query(0)
        memory = np.frombuffer(memory, dtype=dtype, count=n * rows).reshape(rows, n)
        self.result, self.extra = memory[0], memory[1:]
        cuts = [n * r // size for r in range(size + 1)]
        self.mine = (cuts[rank], cuts[rank + 1])
        # (row, lo, hi) where this rank writes its share of each other rank's part
        self.targets = [(self._target(part), cuts[part], cuts[part + 1])
                        for part in range(size) if part != rank]
        self.block = np.empty(min(n, self.BLOCK), dtype=dtype)
        self.own = np.empty(n, dtype=dtype)  # this rank's copy of the result
        self.views: tuple = ((), [])  # (shapes, views of own), made once

    def _target(self, part: int) -> np.ndarray:
        """Where this rank writes its share of the result's part ``part``."""
        lead = (part + 1) % self.size
        if lead == self.rank:
            return self.result
        others = [r for r in range(self.size) if r not in (part, lead)]
        return self.extra[others.index(self.rank)]

    def sum(self, group: list[Parameter], sizes: tuple[int, ...],
            scale: float) -> tuple[list[Any], np.ndarray]:
        """Make the result row the sum over ranks of scale_r x (grads_r, flags_r); returns its
        views shaped as each parameter (in its library), and which grads exist on some rank."""
        pieces = [(size, None if p.grad is None else host_view(p.grad).reshape(-1))
                  for p, size in zip(group, sizes)]
        pieces.append((len(group), np.asarray([0.0 if p.grad is None else 1.0 for p in group],
                                              dtype=self.result.dtype)))
        for row, lo, hi in self.targets:
            _weigh(pieces, scale, row, lo, hi)
        self.comm.Barrier()
        lo, hi = self.mine
        mine = self.result[lo:hi]
        for row in self.extra:
            mine += row[lo:hi]
        _add_weighted(pieces, scale, self.result, lo, hi, self.block)
        self.comm.Barrier()
        np.copyto(self.own, self.result)
        shapes = tuple(tuple(p.value.shape) for p in group)
        if self.views[0] != shapes:
            like = group[0].value
            own = self.own if isinstance(like, np.ndarray) else array_namespace(like).asarray(
                self.own)
            self.views = (shapes, _unflatten(own[:-len(group)], [p.value for p in group]))
        return self.views[1], self.own[-len(group):] > 0


def _overlaps(pieces: list[tuple[int, Any]], lo: int, hi: int) -> Iterable[tuple]:
    """(piece, a, b, start) for each piece (size, flat array or None) laid end to end that
    overlaps [lo, hi): it covers [a, b) there and begins at ``start``."""
    start = 0
    for size, piece in pieces:
        a, b = max(lo, start), min(hi, start + size)
        if a < b:
            yield piece, a, b, start
        start += size


def _weigh(pieces: list[tuple[int, Any]], scale: float, out: np.ndarray, lo: int,
           hi: int) -> None:
    """``out[lo:hi]`` = scale x (the pieces laid end to end)[lo:hi], None pieces as zeros."""
    for piece, a, b, start in _overlaps(pieces, lo, hi):
        if piece is None:
            out[a:b].fill(0)
        elif scale == 1.0:
            np.copyto(out[a:b], piece[a - start:b - start])
        else:
            np.multiply(piece[a - start:b - start], scale, out=out[a:b])


def _add_weighted(pieces: list[tuple[int, Any]], scale: float, out: np.ndarray, lo: int,
                  hi: int, block: np.ndarray) -> None:
    """``out[lo:hi]`` += scale x (the pieces laid end to end)[lo:hi], a block at a time so
    that the scaled block is read back from cache (NumPy has no fused multiply-add)."""
    for piece, a, b, start in _overlaps(pieces, lo, hi):
        if piece is None:
            continue
        if scale == 1.0:
            out[a:b] += piece[a - start:b - start]
            continue
        for s in range(a, b, block.size):
            e = min(b, s + block.size)
            scaled = block[:e - s]
            np.multiply(piece[s - start:e - start], scale, out=scaled)
            out[s:e] += scaled


_old_windows: list[_SharedSum] = []

# fit's reducer, one for every distributed fit (each rank's fits run together), so that its
# shared-memory window is made once, not once per fit: windows are freed only at exit
_fit_reducer = _Reducer(shared=True)


# --- flat buffers and their transport ----------------------------------------------------------

def _groups(named: Iterable[tuple[Any, Any]]) -> dict[tuple[str, str], list[Any]]:
    """The names of (name, array) pairs grouped by library, device and dtype, in their order."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for name, value in named:
        groups.setdefault((str(backend_of(value)), dtype_name(value.dtype)), []).append(name)
    return groups


def _flatten(arrays: list[Any]) -> Any:
    xp = array_namespace(*arrays)
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def _unflatten(flat: Any, like: list[Any]) -> list[Any]:
    """Views of ``flat`` shaped as each of ``like``, in order."""
    xp = array_namespace(flat)
    sizes = [math.prod(a.shape) for a in like]
    starts = itertools.accumulate(sizes, initial=0)
    return [xp.reshape(flat[s:s + n], tuple(a.shape)) for a, s, n in zip(like, starts, sizes)]


def _transfer(flat: Any, collective: Any) -> Any:
    """Run ``collective(buffer)`` on the contiguous 1-D ``flat``: in place in host memory, or
    staged through a host copy for a GPU array. Returns the array holding the result."""
    if backend_of(flat).is_host:  # MPI reads and writes its memory directly
        collective(flat)
        return flat
    host = np.ascontiguousarray(to_numpy(flat))
    collective(host)
    return asarray(host, backend=backend_of(flat))


# --- fit(distributed=True) ----------------------------------------------------------------------

# a rank's vote on a step when callbacks look at it, two bits the ranks OR together: skip the
# step (or, at an epoch end, the epochs after it), and stop training after it
_SKIP, _STOP = 1, 2


def fit_steps(model: Module, loss: Any, optimizer: Any, n: int, size: int, order: Any,
              seeded: bool, settings: dict[str, Any], data: list[Any], callbacks: bool) -> Steps:
    """fit's steps on this rank (xnn/loop.py), after checking that every rank called fit alike
    (``settings``, the loss, the optimizer and its state, and a digest of ``data`` unless
    XNN_MPI_CHECK_DATA=0) and giving every rank rank 0's parameters; a one-process world
    trains as plain fit.
    ``order``: fit's row orders; unless ``seeded``, rank 0's draws reach every rank.
    ``callbacks``: whether this rank has any (the ranks vote on each step if any has)."""
    init()
    if _world.size == 1:
        return Steps(loss, n, size, order)
    settings = {**settings, "loss": _describe(loss), "optimizer": _describe(optimizer),
                "callbacks": callbacks}
    if _world.check_data:
        settings["data (digest)"] = _digest(data)
    every = _agree_settings(_world, settings)
    broadcast_parameters(model)
    order = order if order is None or seeded else _root_draws(n, order)
    return _Shares(model, loss, n, size, order, any(t["callbacks"] for t in every),
                   data[0] if isinstance(data[0], BatchRows) else None)


class _Shares(Steps):
    """This rank's share of each global batch, the loss's parts summed over the ranks.

    Every rank holds all the data and draws the same row order a one-process fit would. Global
    batch b of m rows is cut into world_size consecutive shares whose sizes differ by at most
    one row (``share``: by the steps' rows, or, for a BatchDataset's ``batches``, whose steps
    are whole batches of sizes known once read, as each batch is read); each rank
    backpropagates the gradient of its share's total (Loss.parts), and the reduce sums the
    totals, counts and gradients and divides by the global count: the whole batch's loss and
    gradient, whatever the loss divides by (rows, class weights of the labels kept, nothing
    for "sum"). A rank whose share is empty (a batch of fewer rows than ranks,
    or every label ignored) adds zeros and still steps. When any rank has callbacks
    (``voting``), the ranks vote at every step and epoch end, so that a skip or a stop on one
    rank is taken by all; a rank leaving fit on its own ends the job.
    """

    def __init__(self, model: Module, loss: Any, n: int, size: int, order: Any,
                 voting: bool, batches: BatchRows | None = None) -> None:
        super().__init__(loss, n, size, order)
        self.votes, self.batches = voting, batches is not None
        if batches is None:
            self.steps = [(s + a, s + b, m) for s, _, m in self.steps for a, b in [self.share(m)]]
        sizes = [batches.first_rows] if batches is not None else [m for _, _, m in self.steps]
        _check_batch_norm_shares(model, sizes, _world.size)
        self.params = model.parameters()
        self.has_buffers = any(True for m in model.modules() for _ in m.named_buffers())
        self.parts = isinstance(loss, Loss) and type(loss)._terms is not Loss._terms
        self.loss_of, self.after_backward = self._loss_of, self._reduce
        reduction = loss.reduction if self.parts else "mean"
        self.divide, self.averaged = reduction == "mean", reduction != "sum"

    @staticmethod
    def share(m: int) -> tuple[int, int]:
        """(start, stop) of this rank's share of a batch of ``m`` rows."""
        r, k = _world.rank, _world.size
        return m * r // k, m * (r + 1) // k

    def reads(self, data: Any) -> Any:
        """A BatchDataset's batches, cut to this rank's share of each as they are read; stored
        rows as they are (the steps are shares already)."""
        return data.cut(self.share) if self.batches and isinstance(data, BatchRows) else data

    def train_end(self, run: TrainingRun, callbacks: list) -> None:
        """The callbacks' on_train_end, then one model on every rank: where callbacks on some
        ranks only put weights back (EarlyStopping(restore_best=True) on rank 0), and those
        ranks agree, the others take their weights; ranks that ended apart otherwise (a
        callback that changed the model during training on some ranks) are a RuntimeError on
        every rank."""
        if not self.votes:  # no rank has a callback: the ranks cannot have drifted
            super().train_end(run, callbacks)
            return
        before = _digest(list(run.model.state_dict().values()))
        super().train_end(run, callbacks)
        after = _digest(list(run.model.state_dict().values()))
        every = _gather(_world, np.frombuffer(bytes.fromhex(before + after), dtype=np.int64))
        ends = every[:, 1]
        if (ends == ends[0]).all():
            return
        changed = [r for r in range(_world.size) if every[r, 0] != every[r, 1]]
        if changed and all(ends[r] == ends[changed[0]] for r in changed):
            broadcast_parameters(run.model, root=changed[0])
            return
        apart = ", ".join(f"rank {r}" for r in range(_world.size) if ends[r] != ends[0])
        why = (f"the ranks that put weights back at on_train_end ({', '.join(map(str, changed))})"
               f" put back different ones; give them the same callbacks" if changed else
               "a callback changed the model on some ranks only; give every rank the callbacks "
               "that change the model (or put weights back at on_train_end, which the other "
               "ranks then take)")
        raise _every_rank(RuntimeError(
            f"fit(distributed=True): the ranks ended training with different weights ({apart} "
            f"apart from rank 0): {why}"))

    def optimizer(self, optimizer: Any) -> Any:
        """The optimizer that steps: a DistributedOptimizer's own, as fit reduces already."""
        return optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer

    def _loss_of(self, pred: Any, target: Any) -> tuple[tuple[Any, Any], Any]:
        """((total, count), grad of the total) of a share, from Loss.parts where the loss has
        them."""
        if self.parts:
            total, count, grad = self.loss.parts(pred, target)
            return (total, count), grad
        # a plain callable: a mean over the rows, as fit reports it
        value, grad = self.loss(pred, target)
        rows = pred.shape[0]
        return (array_namespace(value).mean(value) * rows, rows), grad * rows

    def _reduce(self, run: TrainingRun, value: Any) -> Any:
        """Sum the ranks' gradients and loss parts; the step's loss, the same on every rank,
        a 0-d array beside the parameters (what callbacks expect)."""
        total, count = (0.0, 0.0) if value is None else value
        total, count = _fit_reducer.reduce(self.params, True, None,
                                           parts=(float(total), float(count), self.divide))
        loss = total if not self.averaged else total / count if count else math.nan
        like = self.params[0].value
        return array_namespace(like).asarray(loss, dtype=like.dtype, device=like.device)

    def agree(self, run: TrainingRun, take: bool) -> bool:
        """Every rank takes or skips each step together; a stop on one rank stops them all."""
        if not self.votes:  # no rank has a callback: nothing to agree on
            return take
        mine = (0 if take else _SKIP) | (_STOP if run.stop_training else 0)
        vote = int(np.bitwise_or.reduce(_gather(_world, np.asarray([mine], dtype=np.int64))[:, 0]))
        if vote & _STOP and not run.stop_training:
            run.stop("a callback on another rank stopped training")
        return not vote & _SKIP

    failed = staticmethod(_left_fit)  # a rank leaving fit on its own ends the job

    def epoch_logs(self, model: Module, xp: Any, dtype: Any, names: list[str], values: Any,
                   rows: list[int], columns: list, score_rows: list[int]) -> dict[str, Any]:
        """The epoch's logs over every rank's rows, the same floats on every rank: the loss
        from the steps' global losses, each metric the mean of the ranks' row-weighted sums.
        BatchNorm statistics become rank 0's, so every rank validates the same model."""
        logs = super().epoch_logs(model, xp, dtype, names, values, rows, columns, score_rows)
        if len(names) > 1:  # a rank whose shares were all empty has no metric of its own
            count = sum(score_rows)
            means = to_host(xp, dtype, [[logs.get(name, 0.0)] for name in names[1:]])
            local = [column[0] * count for column in means] + [count]
            every = _gather(_world, np.asarray(local, dtype=np.float64))
            rows_seen = every[:, -1].sum()
            logs.update({name: math.fsum(every[:, i]) / rows_seen if rows_seen else math.nan
                         for i, name in enumerate(names[1:])})
        if self.has_buffers:
            broadcast_parameters(model)
        return logs


def _root_draws(n: int, draw: Any) -> Any:
    """A row order per epoch for seed=None: rank 0 draws from xnn's generator, as a
    one-process fit would, and every rank receives its draw."""
    def order(epoch: int) -> np.ndarray:
        drawn = (np.asarray(draw(epoch), dtype=np.int64) if _world.rank == 0
                 else np.empty(n, dtype=np.int64))
        _world.comm.Bcast(drawn, root=0)
        return drawn
    return order


def _agree_settings(world: _World, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's fit ``settings``; ValueError on every rank, naming each rank's value,
    unless every rank has the same (but for "callbacks", which may differ): else their
    batches, and so their collectives, would not match."""
    every = world.comm.allgather(settings)  # short texts and numbers, not arrays: pickled
    table = "; ".join(f"{name}: " + ", ".join(f"rank {r} {theirs[name]}"
                                              for r, theirs in enumerate(every))
                      for name in settings
                      if name != "callbacks" and any(t[name] != settings[name] for t in every))
    if table:  # the settings that differ, with every rank's value
        hint = (" (XNN_MPI_CHECK_DATA=0 skips comparing the data's values)"
                if "data (digest)" in table else "")
        raise _every_rank(ValueError(
            f"fit(distributed=True): the ranks called fit differently ({table}); every rank must "
            f"pass the same data and settings{hint}"))
    return every


def _describe(obj: Any) -> str:
    """A loss or an optimizer as the ranks compare them: its repr (class and settings or
    hyperparameters), an optimizer's step count, and a digest of the arrays it holds (class
    weights, an optimizer's state); a function's name."""
    if not isinstance(obj, (Loss, Optimizer)):
        return getattr(obj, "__qualname__", type(obj).__name__)
    optimizer = isinstance(obj, Optimizer)
    held = obj.state_dict()["state"].values() if optimizer else [vars(obj).values()]
    arrays = [a for items in held for a in items if is_array(a)]
    text = f"{obj!r} at step {obj.steps}" if optimizer else repr(obj)
    return text + (f" (arrays {_digest(arrays)})" if arrays else "")


def _digest(arrays: list[Any]) -> str:
    """A short digest (BLAKE2b) of the arrays' shapes, dtypes and values, read where the
    backend's memory is the host's (Backend.is_host), else from a copy on the host."""
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        if isinstance(a, Source):  # rows read from storage, a part at a time
            a.fingerprint(h)
            continue
        h.update(f"{tuple(a.shape)} {dtype_name(a.dtype)};".encode())
        h.update(np.ascontiguousarray(host_view(a) if backend_of(a).is_host else to_numpy(a)).data)
    return h.hexdigest()


def _check_batch_norm_shares(model: Module, batches: list[int], size: int) -> None:
    """Refuse a rank share of one row where BatchNorm1d would have to normalise it."""
    if not any(isinstance(m, BatchNorm1d) for m in model.modules()):
        return
    for m in batches:
        shares = {m * (r + 1) // size - m * r // size for r in range(size)}
        if 1 in shares:
            raise _every_rank(ValueError(
                f"fit(distributed=True): a batch of {m} rows over {size} ranks gives a rank 1 "
                f"row, and BatchNorm1d needs more than 1 row per batch in training; choose a "
                f"batch_size and row count whose batches give every rank 0 or at least 2 rows"))


# --- the optimizer wrapper ---------------------------------------------------------------------

class DistributedOptimizer(Optimizer):
    """Wraps an xnn optimizer: ``step()`` averages the gradients over the ranks, then steps.

    It is an Optimizer whose parameters, state and hyperparameters are the wrapped one's:
    ``params``, ``state``, ``steps``, ``lr`` (read and set), ``zero_grad``, ``state_dict`` and
    ``load_state_dict`` pass through, so schedules attach to the wrapper as to the optimizer and
    checkpoints hold the wrapped optimizer. Other hyperparameters are read and set on the wrapped
    ``optimizer`` (``opt.optimizer.betas``). To clip the global gradient, call
    ``reduce_gradients()`` first, clip, then ``step()`` (which then does not reduce again): every
    rank clips the same gradient.

    Parameters
    ----------
    optimizer: the xnn optimizer to wrap.
    average: average the ranks' gradients (True) or sum them.
    """

    __slots__ = ("optimizer", "average", "_reduced", "_reducer")  # no __dict__: see Optimizer

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            object.__setattr__(self, name, value)
        except AttributeError:  # a hyperparameter of the wrapped optimizer (momentum, betas)
            if hasattr(type(self), name):  # the wrapper's own (a read-only property)
                raise
            raise AttributeError(f"DistributedOptimizer has no {name!r}; set the wrapped "
                                 f"optimizer's: opt.optimizer.{name} = ...") from None

    def __getattr__(self, name: str) -> Any:  # only for names the wrapper lacks
        raise AttributeError(f"DistributedOptimizer has no {name!r}; read the wrapped "
                             f"optimizer's: opt.optimizer.{name}")

    def __init__(self, optimizer: Optimizer, average: bool = True) -> None:
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, DistributedOptimizer):
            raise TypeError(f"DistributedOptimizer: expected an xnn optimizer to wrap, got "
                            f"{type(optimizer).__name__}")
        self.average = flag("DistributedOptimizer", "average", average)
        init()
        self.optimizer = optimizer
        self._reduced = False
        self._reducer = _Reducer(shared=True)

    # what the wrapped optimizer holds
    params = property(lambda self: self.optimizer.params)
    state = property(lambda self: self.optimizer.state)
    steps = property(lambda self: self.optimizer.steps)
    lr = property(lambda self: self.optimizer.lr,
                  lambda self, value: setattr(self.optimizer, "lr", value))
    initial_lr = property(lambda self: self.optimizer.initial_lr,
                          lambda self, value: setattr(self.optimizer, "initial_lr", value))

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: Any) -> None:
        """Load a state dict into the wrapped optimizer."""
        self.optimizer.load_state_dict(state)

    def reduce_gradients(self, weight: float | None = None) -> None:
        """Reduce the gradients now (see allreduce_gradients); the next step() will not."""
        self._reducer.reduce(self.optimizer.params, self.average, weight)
        self._reduced = True

    def step(self) -> None:
        """Reduce the gradients over the ranks (unless reduce_gradients() just did), then step."""
        if not self._reduced:
            self.reduce_gradients()
        self._reduced = False
        self.optimizer.step()

    def zero_grad(self) -> None:
        """Forget the gradients (reduced or not)."""
        self._reduced = False
        self.optimizer.zero_grad()

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r})"
