"""``fit(distributed=True)``: each rank's share of every global batch, the row-weighted reduce,
and the epoch logs made global (docs/distributed.md).

Every rank holds all the data and draws the same permutation a one-process ``fit`` would.
Global batch b of m rows is cut into world_size consecutive shares whose sizes differ by at
most one row; rank r trains on share r and weights its mean gradient by its rows / m, so the
summed gradient is the mean over the whole batch, also for an uneven last batch. A rank whose
share is empty (a batch of fewer rows than ranks) adds zeros and still steps.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import distributed, random
from .nn.module import Module
from .nn.normalization import BatchNorm1d
from .train import TrainingRun, _epoch_logs, _to_host

# the vote on a step when callbacks look at it: take it, skip it, or stop training
_STEP, _SKIP, _STOP = 0, 1, 2


class Shards:
    """This rank's rows of each global batch and the weight of its gradient in the reduce."""

    def __init__(self, model: Module, loss: Callable, batches: list[tuple[int, int]],
                 settings: dict[str, int]) -> None:
        distributed.init()
        self.rank, self.size = distributed.rank(), distributed.world_size()
        self.comm = distributed._world.comm
        _agree(self.comm, self.size, settings)
        distributed.broadcast_parameters(model)
        self.reducer = distributed._fit_reducer
        self.has_buffers = any(True for m in model.modules() for _ in m.named_buffers())
        summed = getattr(loss, "reduction", "mean") == "sum"  # a sum adds up, a mean weighs
        self.shares, self.weights = [], []
        for start, stop in batches:
            m = stop - start
            lo, hi = start + m * self.rank // self.size, start + m * (self.rank + 1) // self.size
            self.shares.append((lo, hi))
            self.weights.append(1.0 if summed else (hi - lo) / m)
        _check_batch_norm_shares(model, batches, self.size)

    def generator(self, seed: int | None) -> Any:
        """What fit draws its permutations from: ``seed``'s generator on every rank, or rank
        0's draws from xnn's generator, broadcast (the other ranks' generators may differ)."""
        return random.host_generator(seed) if seed is not None else _RootDraws(self)

    def run_epoch(self, run: TrainingRun, loss: Callable, metrics: list, X: Any, y: Any,
                  callbacks: list, forward_kwargs: dict) -> tuple[list, list[int]] | None:
        """train._run_epoch on this rank's shares, with the gradients reduced before the
        callbacks and the step; every rank takes or skips each step together."""
        model, optimizer = run.model, run.optimizer
        values: list = []
        rows: list[int] = []
        for run.batch, ((start, stop), weight) in enumerate(zip(self.shares, self.weights)):
            value = None
            if stop > start:
                xb, yb = X[start:stop, ...], y[start:stop, ...]
                pred, backprop = model.forward(xb, **forward_kwargs)
                value, dpred = loss(pred, yb)
                backprop(dpred)
            if isinstance(optimizer, distributed.DistributedOptimizer):
                optimizer.reduce_gradients(weight)
            else:
                self.reducer.reduce(model, True, weight)
            if callbacks:
                vote = _STEP
                if value is not None and not all(cb.before_step(run, value) for cb in callbacks):
                    vote = _STOP if run.stop_training else _SKIP
                vote = self._most(vote)
                if vote != _STEP:
                    optimizer.zero_grad()
                    if vote == _STOP:
                        if not run.stop_training:
                            run.stop("a callback on another rank stopped training")
                        return None
                    continue
            if value is not None:
                values.append((value, *[fn(pred, yb) for _, fn in metrics]) if metrics else value)
                rows.append(stop - start)
            optimizer.step()
            optimizer.zero_grad()
        return values, rows

    def epoch_logs(self, model: Module, xp: Any, dtype: Any, names: list[str], values: list,
                   rows: list[int]) -> dict[str, float]:
        """The epoch's training logs over every rank's rows, the same floats on every rank;
        BatchNorm statistics become rank 0's, so every rank validates the same model."""
        count = sum(rows)
        local = [0.0] * len(names)
        if values:
            logs = _epoch_logs(xp, names, values, rows)
            local = [column[0] * count for column in _to_host(xp, dtype, [[v] for v in
                                                                             logs.values()])]
        mine = np.asarray([*local, count], dtype=np.float64)
        every = np.empty((self.size, mine.size), dtype=np.float64)
        if self.size > 1:
            self.comm.Allgather(mine, every)
        else:
            every[0] = mine
        if self.has_buffers:
            distributed.broadcast_parameters(model)
        total = every[:, -1].sum()
        return {name: math.fsum(every[:, i]) / total if total else math.nan
                for i, name in enumerate(names)}

    def _most(self, vote: int) -> int:
        if self.size == 1:
            return vote
        from mpi4py import MPI  # noqa: PLC0415 - imported already by distributed.init

        return self.comm.allreduce(vote, op=MPI.MAX)


class _RootDraws:
    """A permutation source for seed=None: rank 0 draws from xnn's generator, as a
    one-process fit would, and every rank receives its draw."""

    def __init__(self, shards: Shards) -> None:
        self.shards = shards

    def permutation(self, n: int) -> Any:
        s = self.shards
        order = (np.asarray(random.permutation(n), dtype=np.int64) if s.rank == 0
                 else np.empty(n, dtype=np.int64))
        if s.size > 1:
            s.comm.Bcast(order, root=0)
        return order


_SETTINGS = ("training rows", "batch size", "epochs", "seed", "shuffle", "validation rows")


def _agree(comm: Any, size: int, settings: dict[str, int]) -> None:
    """ValueError on every rank unless every rank calls fit with the same data sizes and
    settings (else their batches, and so their collectives, would not match)."""
    if size == 1:
        return
    mine = np.asarray([settings[k] for k in _SETTINGS], dtype=np.int64)
    every = np.empty((size, mine.size), dtype=np.int64)
    comm.Allgather(mine, every)
    differ = [k for i, k in enumerate(_SETTINGS) if len(set(every[:, i].tolist())) > 1]
    if differ:
        table = "; ".join(f"{k}: " + ", ".join(f"rank {r} {int(every[r, _SETTINGS.index(k)])}"
                                                 for r in range(size)) for k in differ)
        raise distributed._every_rank(ValueError(
            f"fit(distributed=True): the ranks called fit differently ({table}); every rank "
            f"must pass the same data and settings"))


def _check_batch_norm_shares(model: Module, batches: list[tuple[int, int]], size: int) -> None:
    """Refuse a rank share of one row where BatchNorm1d would have to normalise it."""
    if not any(isinstance(m, BatchNorm1d) for m in model.modules()):
        return
    for start, stop in batches:
        m = stop - start
        shares = {m * (r + 1) // size - m * r // size for r in range(size)}
        if 1 in shares:
            raise distributed._every_rank(ValueError(
                f"fit(distributed=True): a batch of {m} rows over {size} ranks gives a rank 1 "
                f"row, and BatchNorm1d needs more than 1 row per batch in training; choose a "
                f"batch_size and row count whose batches give every rank 0 or at least 2 rows"))
