"""Linear regression: a single neuron learns y = m x + b from noisy points.

    python examples/linear_regression.py --backend numpy --out out/linear_regression
"""

from __future__ import annotations

import xnn

from _common import out_dir, parse_args

TRUE_M, TRUE_B = 2.0, 1.0


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=200, lr=0.5, argv=argv)
    out = out_dir(args, "linear_regression")
    X, y = xnn.datasets.linear(m=TRUE_M, b=TRUE_B, n=200, noise=0.1, seed=args.seed)
    model = xnn.tutorials.linear()                            # y = x w + b: one neuron
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=args.lr),
                      epochs=args.epochs, progress=not args.no_progress,
                      distributed=args.distributed)
    m = float(xnn.to_numpy(model.weight.value)[0, 0])
    b = float(xnn.to_numpy(model.bias.value)[0])
    print(f"backend {xnn.get_backend()}: learned m = {m:.4f}, b = {b:.4f} "
          f"(true m = {TRUE_M}, b = {TRUE_B}); final MSE {history['loss'][-1]:.5f}")
    xnn.plot.loss_curve(history, out / "loss.png", title="linear regression, MSE")
    truth = X * TRUE_M + TRUE_B
    xnn.plot.fit_curve(X, y, out / "fit.png", curves={"learned": (X, xnn.predict(model, X))},
                       truth=(X, truth), title=f"learned y = {m:.3f} x + {b:.3f} "
                                               f"(true y = {TRUE_M:g} x + {TRUE_B:g})")
    print(f"plots written to {out}/")
    return {"m": m, "b": b, "mse": history["loss"][-1]}


if __name__ == "__main__":
    main()
