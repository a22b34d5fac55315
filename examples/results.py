"""Run every example on several backends and print the README's results table (Markdown).

The metrics only: run times on a shared machine are noise (docs/performance.md measures speed).

    python examples/results.py --backends numpy,array_api_strict,torch
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import tempfile

import xnn

# example -> (the metrics shown, formatted)
SHOWN = {
    "linear_regression": lambda m: f"m = {m['m']:.3f}, b = {m['b']:.3f} (true 2, 1)",
    "xor": lambda m: f"MSE {m['mse']:.2e}, max error {m['max_error']:.3f}",
    "polynomial_regression": lambda m: f"MSE to data {m['mse']:.3f} (noise var 1.0), to truth {m['mse_truth']:.3f}",
    "deep_mlp": lambda m: f"test accuracy {m['test_accuracy']:.3f}",
    "arithmetic": lambda m: f"test R² {m['test_r2']:.5f}, MSE a+b {m['mse a+b']:.4f}",
    "digits": lambda m: f"test accuracy {m['test_accuracy']:.4f}",
    "sklearn_pipeline": lambda m: f"test accuracy {m['test_accuracy']:.4f}",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,array_api_strict,torch",
                        help="comma-separated backends, a column each (default "
                             "numpy,array_api_strict,torch)")
    parser.add_argument("--examples", default=",".join(SHOWN),
                        help=f"comma-separated examples, a row each (default all: "
                             f"{','.join(SHOWN)})")
    args = parser.parse_args(argv)
    backends, names = args.backends.split(","), args.examples.split(",")
    unknown = [name for name in names if name not in SHOWN]
    if unknown:  # each checked before the first example runs
        parser.error(f"argument --examples: unknown {', '.join(unknown)}; expected names "
                     f"among {', '.join(SHOWN)}")
    for backend in backends:
        try:
            xnn.use_backend(backend)  # loads it, or says why it cannot run here
        except (xnn.BackendUnavailableError, ValueError) as err:
            parser.error(f"argument --backends: {err}")
    print("| example | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for name in names:
        cells = []
        for backend in backends:
            module = importlib.import_module(name)
            with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
                metrics = module.main(["--backend", backend, "--out", out, "--no-progress"])
            cells.append(SHOWN[name](metrics))
        print(f"| `{name}.py` | " + " | ".join(cells) + " |", flush=True)
    xnn.set_backend("numpy")


if __name__ == "__main__":
    main()
