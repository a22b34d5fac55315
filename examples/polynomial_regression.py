"""Polynomial regression: one tanh hidden layer fits noisy 6th-order polynomial data.

    python examples/polynomial_regression.py --backend numpy --out out/polynomial_regression
"""

from __future__ import annotations

import xnn

from _common import out_dir, parse_args, positive_int


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=3000, lr=0.01, argv=argv,
                      extra=lambda p: p.add_argument("--hidden", type=positive_int, default=64,
                                                     help="width of the tanh hidden layer "
                                                          "(default 64)"))
    out = out_dir(args, "polynomial_regression")
    X, y = xnn.datasets.polynomial(n=1000, noise=1.0, seed=args.seed)   # 6th order, noise std 1
    scale = xnn.data.StandardScaler().fit(y)      # the net learns standardized targets
    model = xnn.tutorials.polynomial(args.hidden)  # 1-hidden-1, tanh
    history = xnn.fit(model, X, scale.transform(y), loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, progress=not args.no_progress,
                      distributed=args.distributed)
    pred = scale.inverse_transform(xnn.predict(model, X))
    truth = xnn.datasets.polyval(xnn.datasets.POLYNOMIAL_COEFFICIENTS, X)
    mse_data = float(xnn.metrics.mse(pred, y))
    mse_truth = float(xnn.metrics.mse(pred, truth))
    print(f"backend {xnn.get_backend()}: 1-{args.hidden}-1 tanh, {args.epochs} epochs; "
          f"MSE to the noisy data {mse_data:.4f} (noise variance 1.0), "
          f"MSE to the true curve {mse_truth:.4f}")
    xnn.plot.loss_curve(history, out / "loss.png", title="polynomial regression (standardized MSE)")
    xnn.plot.fit_curve(X, y, out / "fit.png", curves={"network": (X, pred)}, truth=(X, truth),
                       title="6th-order polynomial, noise std 1.0")
    print(f"plots written to {out}/")
    return {"mse": mse_data, "mse_truth": mse_truth}


if __name__ == "__main__":
    main()
