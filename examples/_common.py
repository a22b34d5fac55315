"""What every example shares: the command line (--backend, --epochs, --out, ...) and setup."""

from __future__ import annotations

import argparse
import atexit
import os
import pathlib
import shutil
import sys
import tempfile
from typing import Callable

import xnn


def parse_args(doc: str, *, epochs: int, lr: float, argv: list[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    """Parse the common flags, select backend and dtype, seed xnn, and create --out."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--backend", default=None,
                        help="numpy (default), array_api_strict, torch or cupy")
    parser.add_argument("--device", default=None,
                        help="device of the backend: cuda or cuda:N (cupy, torch), device1 "
                             "(array_api_strict), cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for the plots (default out/NAME)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--distributed", action="store_true",
                        help="train data-parallel over the ranks of mpiexec -n N (rank 0 reports)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.backend:
        try:
            xnn.set_backend(args.backend, args.device)
        except (xnn.BackendUnavailableError, ValueError, TypeError) as err:
            parser.error(str(err))  # one line and exit status 2, not a traceback
    xnn.set_default_dtype(args.dtype)
    xnn.seed(args.seed)
    if args.distributed:
        xnn.distributed.init()
        if xnn.distributed.rank() != 0:  # rank 0 prints and plots for the job
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
            args.out = tempfile.mkdtemp(prefix=f"rank{xnn.distributed.rank()}-")
            atexit.register(shutil.rmtree, args.out, True)
    return args


def out_dir(args: argparse.Namespace, example: str) -> pathlib.Path:
    """The folder the example writes its plots to, created if needed."""
    path = pathlib.Path(args.out or os.path.join("out", example))
    path.mkdir(parents=True, exist_ok=True)
    return path
