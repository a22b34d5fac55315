"""XOR with a 2-2-1 sigmoid network and mean squared error, trained by full-batch SGD.

    python examples/xor.py --backend numpy
"""

from __future__ import annotations

import argparse

import xnn
from xnn import nn


def build() -> nn.Sequential:
    """The tutorials' 2-2-1 network: sigmoid hidden layer, sigmoid output."""
    return nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())


def train(epochs: int = 5000, lr: float = 2.0, seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Train on the four XOR points on the active backend; returns the model and loss per 500."""
    xnn.seed(seed)
    X = xnn.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=xnn.get_default_dtype())
    y = xnn.asarray([[0], [1], [1], [0]], dtype=xnn.get_default_dtype())
    model = build()
    loss_fn = xnn.losses.MSELoss()
    opt = xnn.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        pred, backprop = model.forward(X)
        value, dpred = loss_fn(pred, y)
        backprop(dpred)
        opt.step()
        opt.zero_grad()
        if epoch % 500 == 0 or epoch == epochs - 1:
            losses.append(float(value))
    return model, losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="numpy, array_api_strict, torch or cupy")
    parser.add_argument("--device", default=None, help="device of the backend (e.g. cuda, device1)")
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend:
        xnn.set_backend(args.backend, args.device)
    model, losses = train(args.epochs, args.lr, args.seed)
    print(f"backend {xnn.get_backend()}, {args.epochs} epochs, final MSE {losses[-1]:.6f}")
    X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    pred = xnn.to_numpy(model(xnn.asarray(X, dtype=xnn.get_default_dtype())))
    for (a, b), p in zip(X, pred[:, 0]):
        print(f"  {a} xor {b} -> {p:.4f}")


if __name__ == "__main__":
    main()
