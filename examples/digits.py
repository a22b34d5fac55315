"""Real data: scikit-learn's bundled 8x8 handwritten digits (no download), classified by a
softmax MLP trained with cross-entropy; writes a confusion matrix.

    python examples/digits.py --backend numpy --out out/digits
    python examples/digits.py --onnx out/digits.onnx    # also export, and predict with ONNX Runtime
"""

from __future__ import annotations

import argparse
import os

import xnn
from xnn.extras import install_hint

from _common import needs, out_dir, parse_args


def load() -> tuple:
    """Pixels scaled to [0, 1] and integer labels, on the active backend."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise SystemExit(f"digits.py needs scikit-learn: {install_hint('examples')}") from err
    digits = load_digits()
    return (xnn.asarray(digits.data / 16.0, dtype=xnn.get_default_dtype()),
            xnn.asarray(digits.target, dtype="int64"))


def _onnx_path(text: str) -> str:
    """An argparse type: a file to write in an existing folder, with onnx and onnxruntime
    importable, checked before training rather than after it."""
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder) or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"expected a file in an existing folder, got {text!r}")
    try:
        needs("onnx", "the export", install_hint("onnx"))
        needs("onnxruntime", "the predictions of ONNX Runtime", "pip install onnxruntime")
    except ImportError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=40, lr=1e-3, argv=argv, extra=lambda p: p.add_argument(
        "--onnx", default=None, metavar="PATH", type=_onnx_path,
        help="export the model to this ONNX file, and predict with ONNX Runtime"))
    out = out_dir(args, "digits")
    X, y = load()
    X_tr, X_te, y_tr, y_te = xnn.data.train_test_split(X, y, test_size=0.3, seed=args.seed)
    model = xnn.tutorials.digits()  # 64-128-10: ReLU, Dropout(0.1), logits
    history = xnn.fit(model, X_tr, y_tr, loss=xnn.losses.CrossEntropyLoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=args.lr),
                      epochs=args.epochs, batch_size=32, seed=args.seed,
                      validation_data=(X_te, y_te), metrics=["accuracy"],
                      progress=not args.no_progress, distributed=args.distributed)
    matrix = xnn.metrics.confusion_matrix(xnn.predict(model, X_te), y_te, 10)
    test_acc = history["val_accuracy"][-1]
    print(f"backend {xnn.get_backend()}: 64-128-10 softmax MLP, {args.epochs} epochs; "
          f"train accuracy {history['accuracy'][-1]:.4f}, test accuracy {test_acc:.4f} "
          f"on {X_te.shape[0]} images")
    xnn.plot.loss_curve(history, out / "loss.png", title="digits, cross-entropy")
    xnn.plot.confusion_matrix(matrix, out / "confusion_matrix.png",
                              title=f"digits test set, accuracy {test_acc:.3f}")
    print(f"plots written to {out}/")
    if args.onnx:
        return {"test_accuracy": test_acc, **export_onnx(model, X_te, args.onnx)}
    return {"test_accuracy": test_acc}


def export_onnx(model: xnn.nn.Module, X: object, path: str) -> dict[str, float]:
    """Write the model as ONNX and show ONNX Runtime predicting the first test images."""
    import onnxruntime  # importable: --onnx checked it

    xnn.onnx.export(model, path)
    images = xnn.to_numpy(X)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": images})[0]
    ours = xnn.to_numpy(xnn.predict(model, X))  # eval mode, as the export
    agree = float((logits.argmax(axis=1) == ours.argmax(axis=1)).mean())
    print(f"ONNX model written to {path}; ONNX Runtime predicts {logits[:8].argmax(axis=1)} "
          f"for the first 8 test images (xnn: {ours[:8].argmax(axis=1)}), "
          f"same class on {agree:.1%} of {len(images)}")
    return {"onnx_agreement": agree}


if __name__ == "__main__":
    main()
