"""Every layer matches PyTorch autograd: output, input gradient and parameter gradients.

The same weights go into both (xnn's 2-D Linear weight is torch's transposed); float64 must agree
to 1e-10, float32 to torch.testing.assert_close's default tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn

torch = pytest.importorskip("torch", reason="the comparison with PyTorch needs torch installed")
tnn = torch.nn

DTYPES = ["float64", "float32"]


class _TorchResidual(tnn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return x + self.module(x)


# name -> (xnn layer, torch layer, input shape); both built for width 5
PAIRS = {
    "Identity": (nn.Identity, tnn.Identity, (4, 5)),
    "ReLU": (nn.ReLU, tnn.ReLU, (4, 5)),
    "LeakyReLU": (nn.LeakyReLU, tnn.LeakyReLU, (4, 5)),
    "LeakyReLU(0.3)": (lambda: nn.LeakyReLU(0.3), lambda: tnn.LeakyReLU(0.3), (4, 5)),
    "ELU": (nn.ELU, tnn.ELU, (4, 5)),
    "ELU(alpha=0.5)": (lambda: nn.ELU(0.5), lambda: tnn.ELU(0.5), (4, 5)),
    "Sigmoid": (nn.Sigmoid, tnn.Sigmoid, (4, 5)),
    "Tanh": (nn.Tanh, tnn.Tanh, (4, 5)),
    "GELU": (nn.GELU, lambda: tnn.GELU(approximate="tanh"), (4, 5)),
    "Softplus": (nn.Softplus, tnn.Softplus, (4, 5)),
    "Softplus(beta=2, threshold=4)": (lambda: nn.Softplus(2.0, 4.0),
                                      lambda: tnn.Softplus(2.0, 4.0), (4, 5)),
    "SiLU": (nn.SiLU, tnn.SiLU, (4, 5)),
    "Softmax": (nn.Softmax, lambda: tnn.Softmax(dim=-1), (4, 5)),
    "Softmax(axis=0)": (lambda: nn.Softmax(axis=0), lambda: tnn.Softmax(dim=0), (4, 5)),
    "LogSoftmax": (nn.LogSoftmax, lambda: tnn.LogSoftmax(dim=-1), (4, 5)),
    "LogSoftmax(axis=1) on rank 3": (lambda: nn.LogSoftmax(axis=1), lambda: tnn.LogSoftmax(dim=1),
                                     (4, 5, 2)),
    "GELU on rank 3": (nn.GELU, lambda: tnn.GELU(approximate="tanh"), (2, 5, 3)),
    "Dropout in eval mode": (lambda: nn.Dropout(0.5).eval(), lambda: tnn.Dropout(0.5).eval(),
                             (4, 5)),
    "Dropout(p=0)": (lambda: nn.Dropout(0.0), lambda: tnn.Dropout(0.0), (4, 5)),
    "Linear": (lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(5), lambda: tnn.BatchNorm1d(5), (4, 5)),
    "BatchNorm1d(affine=False)": (lambda: nn.BatchNorm1d(5, affine=False),
                                  lambda: tnn.BatchNorm1d(5, affine=False), (4, 5)),
    "BatchNorm1d(track_running_stats=False) in eval mode": (
        lambda: nn.BatchNorm1d(5, track_running_stats=False).eval(),
        lambda: tnn.BatchNorm1d(5, track_running_stats=False).eval(), (4, 5)),
    "LayerNorm": (lambda: nn.LayerNorm(5), lambda: tnn.LayerNorm(5), (4, 5)),
    "LayerNorm(elementwise_affine=False)": (lambda: nn.LayerNorm(5, elementwise_affine=False),
                                            lambda: tnn.LayerNorm(5, elementwise_affine=False),
                                            (4, 5)),
    "LayerNorm(bias=False)": (lambda: nn.LayerNorm(5, bias=False),
                              lambda: tnn.LayerNorm(5, bias=False), (4, 5)),
    "Flatten": (nn.Flatten, tnn.Flatten, (4, 5, 3)),
    "Residual": (lambda: nn.Residual(nn.Sequential(nn.Linear(5, 5), nn.Tanh())),
                 lambda: _TorchResidual(tnn.Sequential(tnn.Linear(5, 5), tnn.Tanh())), (4, 5)),
    "Sequential": (
        lambda: nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.GELU(), nn.Linear(6, 4),
                              nn.LayerNorm(4), nn.ELU(), nn.Linear(4, 3), nn.LogSoftmax()),
        lambda: tnn.Sequential(tnn.Linear(5, 6), tnn.BatchNorm1d(6), tnn.GELU(approximate="tanh"),
                               tnn.Linear(6, 4), tnn.LayerNorm(4), tnn.ELU(), tnn.Linear(4, 3),
                               tnn.LogSoftmax(dim=-1)), (4, 5)),
}


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == "float64" else {}  # {}: torch's defaults


def _tensor(a, dtype):
    return torch.from_numpy(np.array(a)).to(getattr(torch, dtype))


def _copy_parameters(ours: nn.Module, theirs, dtype: str) -> None:
    """Give the torch module our (randomised) weights; our 2-D weights are torch's transposed."""
    rng = np.random.default_rng(3)
    mine, torch_params = list(ours.named_parameters()), list(theirs.named_parameters())
    assert [n for n, _ in mine] == [n for n, _ in torch_params]
    with torch.no_grad():
        for (name, p), (_, q) in zip(mine, torch_params):
            host = xnn.to_numpy(p.value) + 0.3 * rng.standard_normal(p.shape)
            p.value = xnn.asarray(host, dtype=dtype)
            q.copy_(_tensor(host.T if host.ndim == 2 else host, dtype))


def _close(ours, theirs, dtype, what):
    torch.testing.assert_close(_tensor(xnn.to_numpy(ours), dtype), theirs.detach(),
                               **_tolerance(dtype), msg=lambda m: f"{what}: {m}")


def _compare_step(ours, theirs, x_host, dy, dtype) -> None:
    """One forward and backward of both, then output, input gradient and parameter gradients.

    ``dy`` is dL/dy on the host, or a NumPy Generator to draw it from.
    """
    ours.zero_grad()
    x_t = _tensor(x_host, dtype).requires_grad_(True)
    y, backprop = ours.forward(xnn.asarray(x_host, dtype=dtype))
    dy_host = dy.standard_normal(tuple(y.shape)) if isinstance(dy, np.random.Generator) else dy
    dx = backprop(xnn.asarray(dy_host, dtype=dtype))
    y_t = theirs(x_t)
    y_t.backward(_tensor(dy_host, dtype))
    _close(y, y_t, dtype, "output")
    _close(dx, x_t.grad, dtype, "input gradient")
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        grad = xnn.to_numpy(p.grad)
        _close(grad.T if grad.ndim == 2 else grad, q.grad, dtype, f"gradient of {name}")
    theirs.zero_grad()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PAIRS)
def test_layer_matches_torch_autograd(backend, dtype, name):
    xnn.set_default_dtype(dtype)
    make_ours, make_theirs, shape = PAIRS[name]
    xnn.seed(0)
    ours, theirs = make_ours(), make_theirs().to(getattr(torch, dtype))
    _copy_parameters(ours, theirs, dtype)
    rng = np.random.default_rng(5)
    x_host = 3 * rng.standard_normal(shape) + 0.5  # reaches Softplus's threshold and ELU's tail
    _compare_step(ours, theirs, x_host, rng, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_running_stats_and_eval_mode_match_torch(backend, dtype, momentum):
    xnn.set_default_dtype(dtype)
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=momentum))
    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4, momentum=momentum))
    theirs.to(getattr(torch, dtype))
    _copy_parameters(ours, theirs, dtype)
    rng = np.random.default_rng(8)
    for step in range(3):
        x_host = 2 * rng.standard_normal((6, 3)) + step
        _compare_step(ours, theirs, x_host, rng.standard_normal((6, 4)), dtype)
    state = {k: xnn.to_numpy(v) for k, v in ours.state_dict().items()}
    assert set(state) == set(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert state[key].dtype == np.int64 and int(state[key]) == int(value) == 3
        else:
            _close(state[key].T if value.ndim == 2 else state[key], value, dtype, key)
    ours.eval()
    theirs.eval()
    _compare_step(ours, theirs, rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), dtype)


@pytest.mark.parametrize("name, ours, theirs", [
    ("Sigmoid", nn.Sigmoid, tnn.Sigmoid),
    ("Softplus", nn.Softplus, tnn.Softplus),
    ("LogSoftmax", nn.LogSoftmax, lambda: tnn.LogSoftmax(dim=-1)),
    ("Softmax", nn.Softmax, lambda: tnn.Softmax(dim=-1)),
    ("SiLU", nn.SiLU, tnn.SiLU),
    ("ELU", nn.ELU, tnn.ELU),
])
def test_stable_layers_match_torch_at_plus_minus_1000_in_float32(backend, name, ours, theirs):
    x_host = np.array([[-1000.0, -100.0, -1.0, 0.5, 100.0, 1000.0]])
    dy_host = np.array([[1.0, -2.0, 0.5, 1.5, -1.0, 2.0]])
    _compare_step(ours(), theirs(), x_host, dy_host, "float32")
