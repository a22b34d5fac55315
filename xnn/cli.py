"""xnn's command line. parity trains a tutorial network on several backends (or MPI ranks)
and compares the weights; backends lists the backends that can run on this machine;
export-onnx writes a checkpoint's model as an ONNX file. "python -m xnn COMMAND --help"
describes each."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from . import parity
from ._checks import number
from .backend import BACKEND_NAMES, unavailable_reason


def _parity(args: argparse.Namespace) -> int:
    rtol = args.rtol
    training = {"steps": args.steps, "dtype": args.dtype, "seed": args.seed}
    try:
        if rtol is not None:  # before training: a NaN or negative one would fail every run
            rtol = number("--rtol", "the tolerance", rtol, low=0.0)
        if args.ranks is not None and args.backends is not None:
            raise ValueError("--backends does not apply with --ranks, which compares ranks "
                             "with one process on one backend: pass one of them")
        if args.ranks is None:
            report = parity.compare_tutorial(args.example, backends=_backends_to_compare(args),
                                             **training)
            print(f"example {args.example}")
        else:
            from . import rank_parity  # noqa: PLC0415 - starts an MPI job: only when asked

            report = rank_parity.compare_ranks(args.example, ranks=args.ranks, **training)
            if rtol is None:
                rtol = (rank_parity.TOLERANCE if args.dtype == "float64"
                        else parity.TOLERANCES[args.dtype])
    except (ValueError, ImportError, RuntimeError) as err:
        print(f"xnn parity: {err}", file=sys.stderr)
        return 2
    print(report.table(rtol))
    return 0 if report.passed(rtol) else 1


def _backends_to_compare(args: argparse.Namespace) -> list[str]:
    """The backends --backends names (one unable to run is an error: it was asked for), else
    every one that can run here."""
    if args.backends is not None:
        return [b.strip() for b in args.backends.split(",") if b.strip()]
    return _runnable(sys.stdout)


def _runnable(stream: TextIO) -> list[str]:
    """The backends that can run here; each other one, and why, is a line on ``stream``."""
    names = []
    for name in BACKEND_NAMES:
        why = unavailable_reason(name)
        if why is None:
            names.append(name)
        else:
            print(f"skipped {name}: {why}", file=stream)
    return names


def _backends(args: argparse.Namespace) -> int:
    print("\n".join(_runnable(sys.stderr)))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    import importlib  # noqa: PLC0415

    from . import io, onnx  # noqa: PLC0415 - onnx itself is imported by export only

    try:
        for name in args.imports:  # the user's modules defining custom layers
            importlib.import_module(name)
        model = io.load(args.checkpoint, backend="numpy", restore_rng=False).model
        onnx.export(model, args.out, input_shape=args.input_shape, opset=args.opset)
    except (ValueError, TypeError, ImportError, OSError) as err:
        hint = (" (here: --import MODULE)" if "unknown layer class" in str(err)
                and not args.imports else "")
        print(f"xnn export-onnx: {err}{hint}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} from {args.checkpoint}")
    return 0


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1 (xnn's, its examples' and benchmarks' flags)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int of at least 1, got {text!r}")
    return value


def _input_shape(text: str) -> tuple:
    """An argparse type: ',8,8' as (None, 8, 8); the batch axis empty, 'batch' or 'None'."""
    try:
        return tuple(None if d.strip() in ("", "batch", "None") else int(d)
                     for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, the batch axis empty "
                                         f"(',8,8'), got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _command(sub, "parity", "Train a tutorial network for a few steps on several backends, "
                 "from the same seed, and compare its weights and loss after every step. The "
                 "exit status is 0 within the tolerance, 1 beyond it, 2 when it cannot run.")
    p.add_argument("--example", default="arithmetic", choices=parity.TUTORIALS,
                   help="the tutorial network (default %(default)s)")
    p.add_argument("--backends", default=None,
                   help="comma-separated backends, the first the reference; name:device picks "
                        "a device (torch:cuda). Default: every backend that can run here, "
                        "saying which it skipped and why")
    p.add_argument("--steps", type=int, default=50,
                   help="optimizer steps on each backend (default %(default)s)")
    p.add_argument("--dtype", default="float64", choices=sorted(parity.TOLERANCES),
                   help="float dtype of the weights and data (default %(default)s)")
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance (default: the documented one for --dtype)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, data and shuffles (default %(default)s)")
    p.add_argument("--ranks", type=int, default=None,
                   help="compare N MPI ranks (mpiexec -n N) with one process instead of backends")
    p.set_defaults(run=_parity)
    b = _command(sub, "backends", "List the backends that can run on this machine, one per "
                 "line; each one skipped, and why, goes to stderr.")
    b.set_defaults(run=_backends)
    e = _command(sub, "export-onnx", "Write the model of a checkpoint (a file written by "
                 "xnn.save) as an ONNX file that ONNX Runtime runs.")
    e.add_argument("checkpoint", help="a file written by xnn.save")
    e.add_argument("out", help="the ONNX file to write")
    e.add_argument("--input-shape", default=None, type=_input_shape,
                   help="comma-separated, the batch axis empty: ',8,8' (default: (batch, "
                        "in_features) of the first Linear)")
    e.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default: the newest the installed onnxruntime runs)")
    e.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it defines the checkpoint's custom layers); "
                        "may be repeated")
    e.set_defaults(run=_export_onnx)
    args = parser.parse_args(argv)
    return args.run(args)


def _command(sub: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose one text is both its line in the list and its --help description."""
    return sub.add_parser(name, help=text, description=text)
