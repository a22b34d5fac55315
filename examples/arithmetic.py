"""A network learns (a, b) -> (a + b, a - b, |a - b|) from 10,000 points, with a 70/30 split
and inputs and targets standardized by scalers fit on the training part only.

    python examples/arithmetic.py --backend numpy --out out/arithmetic
"""

from __future__ import annotations

import xnn

from _common import out_dir, parse_args

OUTPUTS = ("a+b", "a-b", "|a-b|")


def output_mse(i: int, scaler: xnn.data.StandardScaler):
    """A metric for fit: the MSE of output i in the original units, from standardized values."""
    def metric(pred, target):
        return xnn.metrics.mse(pred[:, i], target[:, i]) * scaler.scale[i] ** 2
    metric.__name__ = f"mse {OUTPUTS[i]}"  # fit logs it as "mse a+b" and "val_mse a+b"
    return metric


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=20, lr=1e-3, argv=argv)
    out = out_dir(args, "arithmetic")
    X, y = xnn.datasets.arithmetic(10_000, seed=args.seed)
    X_tr, X_te, y_tr, y_te = xnn.data.train_test_split(X, y, test_size=0.3, seed=args.seed)
    sx, sy = xnn.data.StandardScaler().fit(X_tr), xnn.data.StandardScaler().fit(y_tr)
    model = xnn.tutorials.arithmetic()  # 2-64-64-3 ReLU
    history = xnn.fit(model, sx.transform(X_tr), sy.transform(y_tr), loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, batch_size=64, seed=args.seed,
                      validation_data=(sx.transform(X_te), sy.transform(y_te)),
                      metrics=[output_mse(i, sy) for i in range(len(OUTPUTS))],
                      progress=not args.no_progress, distributed=args.distributed)
    pred = xnn.predict(model, sx.transform(X_te))
    test_r2 = float(xnn.metrics.r2_score(pred, sy.transform(y_te)))
    per_output = {name: history[f"val_mse {name}"][-1] for name in OUTPUTS}
    print(f"backend {xnn.get_backend()}: 2-64-64-3 ReLU, {args.epochs} epochs, "
          f"test R^2 {test_r2:.5f}")
    print("test MSE per output (original units): "
          + ", ".join(f"{k} {v:.4f}" for k, v in per_output.items()))
    cases = xnn.asarray([[3.0, 5.0], [-7.5, 2.0], [9.0, 9.0]], dtype=args.dtype)
    answers = xnn.to_numpy(sy.inverse_transform(model(sx.transform(cases))))
    for (a, b), row in zip(xnn.to_numpy(cases), answers):
        got = ", ".join(f"{name} = {v:7.3f}" for name, v in zip(OUTPUTS, row))
        print(f"  a = {a:5.1f}, b = {b:5.1f}: {got}   (true {a + b:.1f}, {a - b:.1f}, {abs(a - b):.1f})")
    xnn.plot.loss_curve(history, out / "loss.png", title="(a, b) -> (a+b, a-b, |a-b|)",
                        metric_label="MSE per output, original units")
    print(f"plots written to {out}/")
    return {"test_r2": test_r2, **{f"mse {k}": v for k, v in per_output.items()}}


if __name__ == "__main__":
    main()
