"""An L-layer network built from a list of widths (the tutorials' layer_dims), classifying
two concentric circles with ReLU hidden layers, a sigmoid output and binary cross-entropy.

    python examples/deep_mlp.py --layer-dims 2,32,16,8,1 --backend numpy --out out/deep_mlp
"""

from __future__ import annotations

import argparse

import xnn

from _common import out_dir, parse_args


def _widths(text: str) -> list[int]:
    try:
        dims = [int(w) for w in text.split(",")]
    except ValueError:
        dims = []
    if len(dims) < 2 or dims[0] != 2 or dims[-1] != 1 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive widths starting "
                                         f"with 2 inputs and ending with 1 output, got {text!r}")
    return dims


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=300, lr=0.01, argv=argv, extra=lambda p: p.add_argument(
        "--layer-dims", type=_widths, default=[2, 32, 16, 8, 1],
        help="comma-separated layer widths, 2 inputs first and 1 output last "
             "(default 2,32,16,8,1)"))
    out = out_dir(args, "deep_mlp")
    X, y = xnn.datasets.circles(n=1000, noise=0.1, seed=args.seed)
    X_tr, X_te, y_tr, y_te = xnn.data.train_test_split(X, y, test_size=0.3, seed=args.seed)
    model = xnn.tutorials.deep(args.layer_dims)  # Linear + ReLU per hidden width, then Sigmoid
    history = xnn.fit(model, X_tr, y_tr, loss=xnn.losses.BCELoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, batch_size=64, seed=args.seed,
                      validation_data=(X_te, y_te), metrics=["binary_accuracy"],
                      progress=not args.no_progress,
                      distributed=args.distributed)
    train_acc = history["binary_accuracy"][-1]
    test_acc = history["val_binary_accuracy"][-1]
    dims = "-".join(map(str, args.layer_dims))
    print(f"backend {xnn.get_backend()}: {dims} network, {len(model.parameters()) // 2} layers; "
          f"train accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")
    xnn.plot.loss_curve(history, out / "loss.png", title=f"{dims} MLP, BCE")
    xnn.plot.decision_surface(model, X_te, y_te, out / "decision_surface.png",
                              title="P(inner circle) over the plane, test points")
    print(f"plots written to {out}/")
    return {"train_accuracy": train_acc, "test_accuracy": test_acc}


if __name__ == "__main__":
    main()
