"""scikit-learn's tools around an xnn network: a Pipeline (StandardScaler + xnn.sklearn's
MLPClassifier) tuned by GridSearchCV on the bundled 8x8 digits; prints the best parameters and
the test accuracy and plots every candidate's loss curve.

    python examples/sklearn_pipeline.py --backend numpy --out out/sklearn_pipeline
"""

from __future__ import annotations

import warnings

import xnn

from _common import out_dir, parse_args

GRID = {"mlpclassifier__hidden_layer_sizes": [(32,), (64,)],
        "mlpclassifier__alpha": [1e-4, 1e-2]}


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=60, lr=1e-3, argv=argv, distributed=False)
    out = out_dir(args, "sklearn_pipeline")
    try:
        from matplotlib.figure import Figure
        from sklearn.base import clone
        from sklearn.datasets import load_digits
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import GridSearchCV, train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from xnn.sklearn import MLPClassifier
    except ImportError as err:
        raise SystemExit(f'sklearn_pipeline.py needs scikit-learn and matplotlib: pip install -e '
                         f'".[examples]" ({err})') from err
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    # trains on xnn's active backend (--backend) from NumPy data; results come back as NumPy
    pipe = make_pipeline(StandardScaler(), MLPClassifier(
        max_iter=args.epochs, learning_rate_init=args.lr, random_state=args.seed,
        dtype=args.dtype, verbose=False))
    search = GridSearchCV(pipe, GRID, cv=3)
    with warnings.catch_warnings():  # a short run stops at max_iter, as scikit-learn warns
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
        # each candidate once more on the whole training split, for its loss curve
        curves = {str(p): clone(pipe).set_params(**p).fit(X_train, y_train)[-1].loss_curve_
                  for p in search.cv_results_["params"]}
    test_acc = float(search.score(X_test, y_test))
    best = {k.split("__")[1]: v for k, v in search.best_params_.items()}
    print(f"backend {xnn.get_backend()}: GridSearchCV over {len(curves)} candidates, 3-fold, "
          f"{args.epochs} epochs each; best {best} (CV accuracy {search.best_score_:.4f}); "
          f"test accuracy {test_acc:.4f} on {len(y_test)} images")

    fig = Figure(figsize=(7, 4.5))  # drawn off-screen, as xnn.plot draws
    ax = fig.subplots()
    for label, curve in curves.items():
        short = label.replace("mlpclassifier__", "")
        ax.plot(range(1, len(curve) + 1), curve, label=short, linewidth=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (with the L2 term)")
    ax.set_yscale("log")
    ax.set_title(f"digits: GridSearchCV candidates; best test accuracy {test_acc:.3f}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=120)
    print(f"plots written to {out}/")
    return {"test_accuracy": test_acc, "cv_accuracy": float(search.best_score_)}


if __name__ == "__main__":
    main()
