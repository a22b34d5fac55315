"""What every example shares: the command line (--backend, --epochs, --out, ...) and setup."""

from __future__ import annotations

import argparse
import atexit
import importlib
import math
import os
import pathlib
import shutil
import sys
import tempfile
from typing import Callable

import xnn
from xnn.cli import positive_int
from xnn.extras import install_hint

# the backends xnn knows, numpy first; cupy's is an NVIDIA GPU
NAMES = [name + (" (an NVIDIA GPU)" if name == "cupy" else "")
         for name in xnn.backend.BACKEND_NAMES]

def parse_args(doc: str, *, epochs: int, lr: float, argv: list[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               distributed: bool = True) -> argparse.Namespace:
    """Parse the common flags, select backend and dtype, seed xnn, and create --out; check
    what the environment names and what the run needs at its end (matplotlib) before it starts.

    ``--device`` applies to the backend chosen: ``--backend``, else XNN_BACKEND's, else numpy.
    A device that backend lacks (``--device cuda`` on numpy) is a one-line usage error naming
    the backends that have it, never silently ignored.
    """
    parser = argparse.ArgumentParser(description=doc.strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=None,
                        help=f"array library to run on: numpy (the default, or XNN_BACKEND's), "
                             f"{', '.join(NAMES[1:-1])} or {NAMES[-1]}")
    parser.add_argument("--device", default=None,
                        help="device of the backend: cuda or cuda:N (cupy, torch), device1 "
                             "(array_api_strict), cpu; applies to --backend, so a GPU needs "
                             "--backend cupy or --backend torch")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="float dtype of the weights and data (default float32)")
    parser.add_argument("--epochs", type=positive_int, default=epochs,
                        help=f"passes over the training data, at least 1 (default {epochs})")
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"learning rate (default {lr:g})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, data and shuffles (default 0)")
    parser.add_argument("--out", default=None, help="folder for the plots (default out/NAME)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar (or the line per epoch without a terminal)")
    if distributed:  # an example whose training is fit's (not a loop by hand, not sklearn's)
        parser.add_argument("--distributed", action="store_true",
                            help="train data-parallel over the ranks of mpiexec -n N (rank 0 "
                                 "reports)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.backend is not None and not args.backend.strip():
        parser.error(f"--backend needs a name: {', '.join(NAMES[:-1])} or {NAMES[-1]}")
    if args.backend or args.device is not None:
        name = args.backend or xnn.get_backend().name
        try:
            xnn.set_backend(name, args.device)
        except (xnn.BackendUnavailableError, ValueError, TypeError) as err:
            hint = ("" if args.backend else f" (--device applies to the default backend, "
                    f"{name}; for a GPU pass --backend cupy or --backend torch)")
            parser.error(f"{err}{hint}")  # one line and exit status 2, not a traceback
    # what the environment names (XNN_BACKEND unless --backend, XNN_PROGRESS_LINES), before any
    # work; not a flag's fault, so one line without the usage
    _or_exit(parser, xnn.get_backend)
    _or_exit(parser, xnn.progress.line_budget)
    _or_exit(parser, lambda: needs("matplotlib", "the plots", install_hint("plot")))  # drawn last
    xnn.set_default_dtype(args.dtype)
    try:
        xnn.seed(args.seed)
    except ValueError:  # a negative seed: a usage error, not a traceback
        parser.error(f"argument --seed: expected an int of at least 0, got {args.seed}")
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"argument --out: {args.out} is a file; give a folder for the plots")
    if getattr(args, "distributed", False):
        _or_exit(parser, xnn.distributed.init)  # mpi4py missing, XNN_MPI_* values
        if xnn.distributed.rank() != 0:  # rank 0 prints and plots for the job
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
            args.out = tempfile.mkdtemp(prefix=f"rank{xnn.distributed.rank()}-")
            atexit.register(shutil.rmtree, args.out, True)
    return args


def _or_exit(parser: argparse.ArgumentParser, check: Callable[[], object]) -> None:
    """Run ``check``; its error is one line on stderr and exit status 2, not a traceback."""
    try:
        check()
    except (ValueError, ImportError, RuntimeError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def needs(module: str, what: str, fix: str) -> None:
    """Import ``module`` now, before training: ImportError saying ``what`` needs it, and the
    ``fix``."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} need {module}, which cannot be imported ({err}): "
                          f"{fix}") from None


def positive_float(text: str) -> float:
    """An argparse type: a finite float above 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text!r}")
    return value


def out_dir(args: argparse.Namespace, example: str) -> pathlib.Path:
    """The folder the example writes its plots to, created if needed."""
    path = pathlib.Path(args.out or os.path.join("out", example))
    path.mkdir(parents=True, exist_ok=True)
    return path
