"""Real data: scikit-learn's bundled 8x8 handwritten digits (no download), classified by a
softmax MLP trained with cross-entropy; writes a confusion matrix.

    python examples/digits.py --backend numpy --out out/digits
"""

from __future__ import annotations

import xnn

from _common import out_dir, parse_args


def load() -> tuple:
    """Pixels scaled to [0, 1] and integer labels, on the active backend."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise SystemExit('digits.py needs scikit-learn: pip install -e ".[examples]"') from err
    digits = load_digits()
    return (xnn.asarray(digits.data / 16.0, dtype=xnn.get_default_dtype()),
            xnn.asarray(digits.target, dtype="int64"))


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=40, lr=1e-3, argv=argv)
    out = out_dir(args, "digits")
    X, y = load()
    X_tr, X_te, y_tr, y_te = xnn.data.train_test_split(X, y, test_size=0.3, seed=args.seed)
    model = xnn.tutorials.digits()  # 64-128-10: ReLU, Dropout(0.1), logits
    history = xnn.fit(model, X_tr, y_tr, loss=xnn.losses.CrossEntropyLoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, batch_size=32, seed=args.seed,
                      validation_data=(X_te, y_te), metrics=["accuracy"],
                      progress=not args.no_progress,
                      distributed=args.distributed)
    model.eval()
    matrix = xnn.metrics.confusion_matrix(model(X_te), y_te, 10)
    test_acc = history["val_accuracy"][-1]
    print(f"backend {xnn.get_backend()}: 64-128-10 softmax MLP, {args.epochs} epochs; "
          f"train accuracy {history['accuracy'][-1]:.4f}, test accuracy {test_acc:.4f} "
          f"on {X_te.shape[0]} images")
    xnn.plot.loss_curve(history, out / "loss.png", title="digits, cross-entropy")
    xnn.plot.confusion_matrix(matrix, out / "confusion_matrix.png",
                              title=f"digits test set, accuracy {test_acc:.3f}")
    print(f"plots written to {out}/")
    return {"test_accuracy": test_acc}


if __name__ == "__main__":
    main()
