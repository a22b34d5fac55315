"""XOR with a 2-2-1 sigmoid network and mean squared error, trained by full-batch SGD.

The training loop is written out by hand, as in the tutorial it comes from:
forward, loss, backprop, step.

    python examples/xor.py --backend numpy --out out/xor
"""

from __future__ import annotations

import xnn
from xnn import nn

from _common import out_dir, parse_args


def train(epochs: int = 5000, lr: float = 2.0, seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Train on the four XOR points on the active backend; returns the model and loss per epoch."""
    xnn.seed(seed)
    X, y = xnn.datasets.xor()
    model = xnn.tutorials.xor()  # 2-2-1: Linear, Sigmoid, Linear, Sigmoid
    loss_fn = xnn.losses.MSELoss()
    opt = xnn.optim.SGD(model.parameters(), lr=lr)
    values = []
    for _ in range(epochs):
        pred, backprop = model.forward(X)     # output and a closure over what the forward saw
        value, dpred = loss_fn(pred, y)       # loss and its gradient with respect to pred
        backprop(dpred)                       # fills p.grad of every parameter
        opt.step()
        opt.zero_grad()
        values.append(value)                  # stays on the device: no sync per step
    xp = xnn.get_backend().xp
    return model, [float(v) for v in xnn.to_numpy(xp.stack(values))]


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, epochs=5000, lr=2.0, argv=argv, distributed=False)
    out = out_dir(args, "xor")
    model, losses = train(args.epochs, args.lr, args.seed)
    X, y = xnn.datasets.xor()
    pred = xnn.to_numpy(xnn.predict(model, X))[:, 0]
    print(f"backend {xnn.get_backend()}, {args.epochs} epochs, final MSE {losses[-1]:.6f}")
    for (a, b), p in zip(xnn.to_numpy(X).astype(int), pred):
        print(f"  {a} xor {b} -> {p:.4f}")
    history = xnn.History({"loss": losses}, list(range(len(losses))))
    xnn.plot.loss_curve(history, out / "loss.png", title="XOR 2-2-1, MSE")
    xnn.plot.decision_surface(model, X, y, out / "decision_surface.png",
                              title="XOR: network output and the four points")
    print(f"plots written to {out}/")
    return {"mse": losses[-1], "max_error": float(abs(pred - xnn.to_numpy(y)[:, 0]).max())}


if __name__ == "__main__":
    main()
