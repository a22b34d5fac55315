"""Parity across ranks: a tutorial network trained on N MPI ranks against the same training in
one process, by hand with DistributedOptimizer and with ``fit(distributed=True)``.

``compare_ranks`` trains the one-process references here, starts
``mpiexec -n N python -m xnn.rank_parity ...`` (every rank writes its final weights), and
reports, per parameter, the largest difference from the reference relative to the parameter's
largest magnitude, and whether the ranks hold bitwise the same weights.
``python -m xnn parity --ranks N`` prints the report.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import distributed, random
from ._checks import integer
from .backend import to_numpy, use_default_dtype
from .parity import (check_dtype, normwise_difference, shuffled_batches, training_arrays,
                     tutorial)
from .train import fit

__all__ = ["compare_ranks", "RankReport", "TOLERANCE", "MODES"]

TOLERANCE = 1e-12  # float64: the ranks' sums differ from one process's in the last bits only
MODES = ("optimizer", "fit")


@dataclass
class RankReport:
    """Per mode and parameter, the worst difference of the ranks' weights from one process's."""

    example: str
    ranks: int
    dtype: str
    steps: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[str, str, float, float]] = field(default_factory=list)  # mode, name, abs, rel
    ranks_agree: dict[str, bool] = field(default_factory=dict)

    @property
    def max_rel(self) -> float:
        return max((rel for *_, rel in self.rows), default=0.0)

    def passed(self, rtol: float = TOLERANCE) -> bool:
        """Whether every parameter is within ``rtol`` and every rank holds the same weights."""
        return self.max_rel <= rtol and all(self.ranks_agree.values())

    def table(self, rtol: float = TOLERANCE) -> str:
        lines = [f"{self.example} on {self.ranks} ranks against 1 process, {self.dtype}",
                 f"{'mode':<10} {'steps':>5} {'parameter':<14} {'max abs diff':>13} "
                 f"{'max rel diff':>13}"]
        lines += [f"{mode:<10} {self.steps[mode]:>5} {name:<14} {max_abs:>13.3e} {max_rel:>13.3e}"
                  for mode, name, max_abs, max_rel in self.rows]
        lines += [f"{mode:<10} every rank holds the same weights: {'yes' if same else 'NO'}"
                  for mode, same in self.ranks_agree.items()]
        verdict = "PASS" if self.passed(rtol) else "FAIL"
        lines.append(f"worst relative difference {self.max_rel:.3e}; tolerance {rtol:g}: {verdict}")
        return "\n".join(lines)

    __str__ = table


def train(example: str, mode: str, steps: int, dtype: str, seed: int,
          reference: bool = False) -> tuple[dict[str, Any], int]:
    """Train tutorial ``example`` in this process's world (one process, or this rank of an MPI
    job); returns the final weights as NumPy arrays, by name, and the steps taken. The
    ``reference`` fit is a plain one-process fit (distributed=False)."""
    _check_mode(mode)
    t = tutorial(example)
    distributed.init()
    with use_default_dtype(dtype), random.use_seed(seed):
        model = t.build()
        X, y, size = training_arrays(*t.data(), dtype, t.batch_size)
        per_epoch = math.ceil(X.shape[0] / size)
        epochs = math.ceil(steps / per_epoch)
        if mode == "fit":
            fit(model, X, y, loss=t.loss(), optimizer=t.optimizer(model.parameters()),
                epochs=epochs, batch_size=size, seed=seed, progress=False,
                distributed=not reference)
            taken = epochs * per_epoch
        else:
            _by_hand(model, t, X, y, size, steps, seed)
            taken = steps  # shuffled_batches yields exactly ``steps`` batches
    return {name: to_numpy(p.value) for name, p in model.named_parameters()}, taken


def _by_hand(model: Any, t: Any, X: Any, y: Any, size: int, steps: int, seed: int) -> None:
    """The loop of docs/distributed.md: each rank takes its share of every global batch; equal
    shares are averaged by step(), unequal ones weighted by their rows."""
    rank, ranks = distributed.rank(), distributed.world_size()
    distributed.broadcast_parameters(model)
    opt = distributed.DistributedOptimizer(t.optimizer(model.parameters()))
    loss = t.loss()
    for Xe, ye, start, stop in shuffled_batches(X, y, size, steps, seed):
        m = stop - start
        lo, hi = start + m * rank // ranks, start + m * (rank + 1) // ranks
        if hi > lo:
            pred, backprop = model.forward(Xe[lo:hi, ...])
            backprop(loss(pred, ye[lo:hi, ...])[1])
        if m % ranks:
            opt.reduce_gradients(weight=(hi - lo) / m)
        opt.step()
        opt.zero_grad()


def mpiexec() -> str:
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        from .extras import install_hint  # noqa: PLC0415

        raise RuntimeError(f"rank parity needs mpiexec: {install_hint('mpi')}")
    return found


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"rank parity: mode must be one of {MODES}, got {mode!r}")


def compare_ranks(example: str = "arithmetic", *, ranks: int = 2, steps: int = 50,
                  dtype: str = "float64", seed: int = 0, modes: tuple[str, ...] = MODES,
                  timeout: float = 300.0) -> RankReport:
    """Train ``example`` on ``ranks`` MPI ranks and in this process; report the differences.

    Raises RuntimeError with the job's output when the MPI job fails or outlives ``timeout``
    seconds.
    """
    # everything the MPI job needs, before it starts (its failure would come as its whole log)
    tutorial(example)
    check_dtype("compare_ranks", dtype)
    ranks = integer("compare_ranks", "ranks", ranks, low=1)
    steps = integer("compare_ranks", "steps", steps, low=1)
    seed = integer("compare_ranks", "seed", seed, low=0)
    for mode in modes:
        _check_mode(mode)
    report = RankReport(example, ranks, dtype)
    with tempfile.TemporaryDirectory() as folder:
        command = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "xnn.rank_parity",
                   folder, example, str(steps), dtype, str(seed), *modes]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"rank parity: {' '.join(command)} ran past {timeout:g} s") from err
        if done.returncode != 0:
            raise RuntimeError(f"rank parity: the MPI job failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        for mode in modes:
            reference, taken = train(example, mode, steps, dtype, seed, reference=True)
            report.steps[mode] = taken
            weights = [dict(np.load(os.path.join(folder, f"{mode}-{r}.npz")))
                       for r in range(ranks)]
            report.ranks_agree[mode] = all(
                all(np.array_equal(w[k], weights[0][k]) for k in reference) for w in weights)
            for name, ref in reference.items():
                max_abs, max_rel, _ = normwise_difference(weights[0][name], ref)
                report.rows.append((mode, name, max_abs, max_rel))
    return report


def main(argv: list[str] | None = None) -> None:
    """One rank of compare_ranks' MPI job, ``python -m xnn.rank_parity OUT EXAMPLE STEPS DTYPE
    SEED MODE...``: train each mode and write this rank's weights into the folder OUT."""
    out, example, steps, dtype, seed, *modes = sys.argv[1:] if argv is None else argv
    for mode in modes:
        weights, _ = train(example, mode, int(steps), dtype, int(seed))
        np.savez(os.path.join(out, f"{mode}-{distributed.rank()}.npz"), **weights)


if __name__ == "__main__":
    main()
