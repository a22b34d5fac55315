"""The ``python -m xnn`` command: ``parity`` checks backends against each other on this machine,
``backends`` lists the ones that run here."""

from __future__ import annotations

import argparse
import sys

from . import parity
from .backend import available_backends


def _parity(args: argparse.Namespace) -> int:
    if args.ranks is not None:
        return _rank_parity(args)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        report = parity.compare_tutorial(args.example, backends=backends, steps=args.steps,
                                         dtype=args.dtype, seed=args.seed)
    except (ValueError, ImportError, RuntimeError) as err:
        print(f"xnn parity: {err}", file=sys.stderr)
        return 2
    print(f"example {args.example}")
    print(report.table(args.rtol))
    return 0 if report.passed(args.rtol) else 1


def _rank_parity(args: argparse.Namespace) -> int:
    from . import rank_parity  # noqa: PLC0415 - starts an MPI job: only when asked

    try:
        report = rank_parity.compare_ranks(args.example, ranks=args.ranks, steps=args.steps,
                                           dtype=args.dtype, seed=args.seed)
    except (ValueError, ImportError, RuntimeError) as err:
        print(f"xnn parity: {err}", file=sys.stderr)
        return 2
    rtol = args.rtol if args.rtol is not None else (
        rank_parity.TOLERANCE if args.dtype == "float64" else parity.TOLERANCES[args.dtype])
    print(report.table(rtol))
    return 0 if report.passed(rtol) else 1


def _backends(args: argparse.Namespace) -> int:
    for name in available_backends():
        print(name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="train a tutorial network on several backends and compare")
    p.add_argument("--example", default="arithmetic", choices=parity.TUTORIALS)
    p.add_argument("--backends", default="numpy,array_api_strict",
                   help="comma-separated, the first is the reference; name:device picks a device")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--dtype", default="float64", choices=sorted(parity.TOLERANCES))
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance (default: the documented one for --dtype)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ranks", type=int, default=None,
                   help="compare N MPI ranks (mpiexec -n N) with one process instead of backends")
    p.set_defaults(run=_parity)
    b = sub.add_parser("backends", help="list the backends that can run here")
    b.set_defaults(run=_backends)
    args = parser.parse_args(argv)
    return args.run(args)
