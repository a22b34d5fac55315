"""xnn.sklearn against scikit-learn's own MLP: fit time for the same epochs, and test scores.

    python benchmarks/sklearn_compare.py              # 5 repeats per data set (~1-2 min)
    python benchmarks/sklearn_compare.py --repeats 3 --datasets digits
    python benchmarks/sklearn_compare.py --backend torch   # xnn.sklearn trained on torch
    python benchmarks/sklearn_compare.py --threads 0       # BLAS's own thread count

Both estimators get the same hyperparameters and run every epoch (``n_iter_no_change=inf``),
so they do the same work: the same Glorot draws from ``random_state``, the same batches of
``batch_size='auto'``, float64 data. The timed fits alternate (xnn, scikit-learn, xnn, ...)
and the table shows medians and their ratio. Both call the same NumPy BLAS, limited to
``--threads`` threads (default 1: on a small, shared machine several threads make both slower
and the times noisy). Results are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import statistics
import sys
import time
import warnings

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import xnn  # noqa: E402
from xnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# data set: (loader, xnn estimator, scikit-learn estimator, epochs, extra hyperparameters)
DATASETS = {
    "digits": (load_digits, MLPClassifier, neural_network.MLPClassifier, 100, {}),
    "breast_cancer": (load_breast_cancer, MLPClassifier, neural_network.MLPClassifier, 200, {}),
    "diabetes": (load_diabetes, MLPRegressor, neural_network.MLPRegressor, 200, {}),
    "digits-sgd": (load_digits, MLPClassifier, neural_network.MLPClassifier, 100,
                   {"solver": "sgd", "learning_rate_init": 0.01}),
}


def split(loader) -> tuple[np.ndarray, ...]:
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    if loader is load_diabetes:
        y_scaler = StandardScaler().fit(y_train[:, None])
        y_train, y_test = (y_scaler.transform(v[:, None])[:, 0] for v in (y_train, y_test))
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def timed_fit(cls, params: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, object]:
    model = cls(**params)
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start, model


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--backend", default="numpy", help="xnn's backend (default numpy)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0: leave as is)")
    args = parser.parse_args(argv)
    previous = xnn.get_backend()
    xnn.set_backend(args.backend)
    try:
        with contextlib.ExitStack() as limits, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if args.threads:
                from threadpoolctl import threadpool_limits  # noqa: PLC0415 - optional

                limits.enter_context(threadpool_limits(args.threads))
            return run(args)
    finally:
        xnn.set_backend(previous)


def run(args: argparse.Namespace) -> list[dict]:
    """Time the data sets of ``args`` and print the table; returns its rows."""
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, BLAS threads {args.threads or 'default'}, "
          f"xnn backend {xnn.get_backend()}")
    print(f"{'data set':<14} {'epochs':>6} {'xnn s':>8} {'sklearn s':>10} {'xnn/sk':>7} "
          f"{'xnn score':>10} {'sk score':>9}")
    rows = []
    for name in args.datasets.split(","):
        loader, ours, theirs, epochs, extra = DATASETS[name]
        X_train, X_test, y_train, y_test = split(loader)
        params = dict(random_state=0, max_iter=epochs, n_iter_no_change=math.inf, **extra)
        times: dict[str, list[float]] = {"xnn": [], "sklearn": []}
        models = {}
        timed_fit(ours, params, X_train, y_train)  # warm-up: imports and first calls
        timed_fit(theirs, params, X_train, y_train)
        for _ in range(args.repeats):
            for label, cls in (("xnn", ours), ("sklearn", theirs)):
                seconds, models[label] = timed_fit(cls, params, X_train, y_train)
                times[label].append(seconds)
        assert models["xnn"].n_iter_ == models["sklearn"].n_iter_ == epochs
        row = {"dataset": name, "epochs": epochs,
               **{f"{k}_s": statistics.median(v) for k, v in times.items()},
               **{f"{k}_score": float(m.score(X_test, y_test)) for k, m in models.items()}}
        row["ratio"] = row["xnn_s"] / row["sklearn_s"]
        rows.append(row)
        print(f"{name:<14} {epochs:>6} {row['xnn_s']:>8.3f} {row['sklearn_s']:>10.3f} "
              f"{row['ratio']:>7.2f} {row['xnn_score']:>10.4f} {row['sklearn_score']:>9.4f}")
        sys.stdout.flush()
    return rows


if __name__ == "__main__":
    main()
