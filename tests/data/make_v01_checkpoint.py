"""Write tests/data/v01_checkpoint.npz and v01_predictions.npz with xnn 0.1 (the npz format).

Run once, with the xnn 0.1 code, from the repository root:

    python tests/data/make_v01_checkpoint.py

The files are committed; tests/test_io_legacy.py loads the checkpoint with today's xnn and
compares its predictions with the ones 0.1 made. Rerunning it with a later xnn would write the
newer format and defeat the test, so the script refuses unless xnn.io still writes npz.
"""

from __future__ import annotations

import pathlib

import numpy as np

import xnn
from xnn import nn

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    if getattr(xnn.io, "VERSION", None) != 1:
        raise SystemExit("this script makes a 0.1 (npz) checkpoint: run it with xnn 0.1")
    xnn.set_default_dtype("float64")
    xnn.seed(0)
    model = nn.Sequential(
        nn.Linear(4, 16, init=nn.init.he_uniform), nn.BatchNorm1d(16), nn.LeakyReLU(0.05),
        nn.Residual(nn.Sequential(nn.Linear(16, 16, init=nn.init.normal(0.1)), nn.Tanh())),
        nn.LayerNorm(16), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 4))
    y = np.stack([X[:, 0] + X[:, 1], X[:, 2] * X[:, 3], np.tanh(X[:, 0])], axis=1)
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=3, batch_size=16,
            progress=False)
    xnn.save(HERE / "v01_checkpoint.npz", model, opt, extra={"epoch": 3, "made_by": "xnn 0.1"})
    model.eval()
    inputs = rng.normal(size=(17, 4))
    np.savez(HERE / "v01_predictions.npz", inputs=inputs, outputs=xnn.to_numpy(model(inputs)),
             steps=np.array(opt.steps))
    print(f"wrote {HERE / 'v01_checkpoint.npz'} and v01_predictions.npz")


if __name__ == "__main__":
    main()
