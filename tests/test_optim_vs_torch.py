"""Each optimizer and clipping function against torch's, on the same parameters and gradients."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import xnn
from xnn import optim
from xnn.nn import Parameter

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (5,)]
STEPS = 100
# (xnn class name, keyword arguments): torch's class of the same name gets the same ones
CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01,
                 "initial_accumulator_value": 0.1}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.05, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
       for name, kw in CONFIGS]


def _problem(dtype: str):
    """Start values, targets and per-step noise: the gradient is 0.5 (p - target) + noise_t."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    target = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    noise = [(0.3 * rng.standard_normal((STEPS, *s))).astype(dtype) for s in SHAPES]
    return start, target, noise


def _grad(value: np.ndarray, k: int, t: int, target, noise) -> np.ndarray | None:
    if k == 2 and t % 3 == 1:
        return None  # parameter 2 misses every third gradient: skipped, its step count lags
    return (value.dtype.type(0.5) * (value - target[k]) + noise[k][t]).astype(value.dtype)


def _run_torch(name: str, kwargs: dict, dtype: str):
    start, target, noise = _problem(dtype)
    params = [torch.tensor(s, requires_grad=True) for s in start]
    opt = getattr(torch.optim, name)(params, foreach=False, **kwargs)
    for t in range(STEPS):
        for k, p in enumerate(params):
            g = _grad(p.detach().numpy(), k, t, target, noise)
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
    return params, opt


def _run_xnn(name: str, kwargs: dict, dtype: str):
    start, target, noise = _problem(dtype)
    params = [Parameter(xnn.asarray(s, dtype=dtype)) for s in start]
    opt = getattr(optim, name)(params, **kwargs)
    for t in range(STEPS):
        for k, p in enumerate(params):
            g = _grad(xnn.to_numpy(p.value), k, t, target, noise)
            p.grad = None if g is None else xnn.asarray(g, dtype=dtype)
        opt.step()
    return params, opt


def _tolerance(dtype: str) -> dict:
    # float64: 1e-10 relative; float32: torch.testing's defaults for float32
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 1.3e-6, "atol": 1e-5}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_trajectory_over_100_steps_matches_torch(backend, name, kwargs, dtype):
    params, opt = _run_xnn(name, kwargs, dtype)
    reference, torch_opt = _run_torch(name, kwargs, dtype)
    tol = _tolerance(dtype)
    for k, (p, q) in enumerate(zip(params, reference)):
        assert xnn.backend.array_namespace(p.value) is backend.xp
        np.testing.assert_allclose(xnn.to_numpy(p.value), q.detach().numpy(), **tol,
                                   err_msg=f"parameter {k}")
    # the optimizer state under torch's names holds torch's values too
    for key, items in opt.state_dict()["state"].items():
        for k, (item, q) in enumerate(zip(items, reference)):
            if item is None:
                assert key not in torch_opt.state[q], (key, k)
            elif key == "step":
                assert item == int(torch_opt.state[q]["step"]) == (STEPS if k < 2 else 67)
            else:
                np.testing.assert_allclose(xnn.to_numpy(item),
                                           torch_opt.state[q][key].numpy(), **tol,
                                           err_msg=f"{key}[{k}]")


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_hyperparameter_names_and_defaults_match_torch(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for arg, param in ours.items():
        if arg == "params":
            continue
        assert arg in theirs, f"{name}: torch has no argument {arg!r}"
        assert param.default == theirs[arg].default, f"{name}.{arg}"


BAD_ARGUMENTS = [
    ("SGD", {"lr": -0.1}, "lr", "-0.1"),
    ("SGD", {"momentum": -0.5}, "momentum", "-0.5"),
    ("SGD", {"weight_decay": -1e-4}, "weight_decay", "-0.0001"),
    ("SGD", {"nesterov": True}, "nesterov", "momentum=0"),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov", "dampening=0.1"),
    ("Adagrad", {"lr_decay": -1.0}, "lr_decay", "-1.0"),
    ("Adagrad", {"initial_accumulator_value": -0.1}, "initial_accumulator_value", "-0.1"),
    ("Adagrad", {"eps": -1e-10}, "eps", "-1e-10"),
    ("RMSprop", {"alpha": -0.9}, "alpha", "-0.9"),
    ("RMSprop", {"momentum": -0.1}, "momentum", "-0.1"),
    ("RMSprop", {"eps": -1.0}, "eps", "-1.0"),
    ("Adam", {"lr": -1e-3}, "lr", "-0.001"),
    ("Adam", {"betas": (1.0, 0.999)}, r"betas\[0\]", "1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, r"betas\[1\]", "-0.1"),
    ("Adam", {"eps": -1e-8}, "eps", "-1e-08"),
    ("Adam", {"weight_decay": -0.01}, "weight_decay", "-0.01"),
    ("AdamW", {"betas": (0.9, 1.0)}, r"betas\[1\]", "1.0"),
    ("AdamW", {"weight_decay": -0.01}, "weight_decay", "-0.01"),
]


@pytest.mark.parametrize(("name", "kwargs", "arg", "value"), BAD_ARGUMENTS,
                         ids=[f"{n}-{a}" for n, _, a, _ in BAD_ARGUMENTS])
def test_bad_arguments_raise_value_error_where_torch_does(name, kwargs, arg, value):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=rf"^{name}: {arg}.*{value}"):
        getattr(optim, name)([Parameter(xnn.asarray([0.0, 0.0]))], **kwargs)


def _grads(dtype: str, scale: float):
    rng = np.random.default_rng(7)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(backend, float64, max_norm, norm_type):
    grads = _grads("float64", 2.0)
    params = [Parameter(xnn.asarray(np.zeros_like(g))) for g in grads]
    for p, g in zip(params, grads):
        p.grad = xnn.asarray(g)
    params[1].grad = None  # skipped by both
    total = optim.clip_grad_norm(params, max_norm, norm_type=norm_type)

    reference = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for q, g in zip(reference, grads):
        q.grad = torch.tensor(g)
    reference[1].grad = None
    expected = torch.nn.utils.clip_grad_norm_(reference, max_norm, norm_type=norm_type,
                                              foreach=False)
    assert xnn.backend.array_namespace(total) is backend.xp and total.shape == ()
    np.testing.assert_allclose(xnn.to_numpy(total), expected.numpy(), rtol=1e-12)
    assert params[1].grad is None
    for k in (0, 2):
        np.testing.assert_allclose(xnn.to_numpy(params[k].grad), reference[k].grad.numpy(),
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_grad_value_matches_torch(backend, dtype):
    grads = _grads(dtype, 2.0)
    params = [Parameter(xnn.asarray(np.zeros_like(g))) for g in grads]
    reference = [torch.zeros(g.shape, dtype=getattr(torch, dtype), requires_grad=True)
                 for g in grads]
    for p, q, g in zip(params, reference, grads):
        p.grad, q.grad = xnn.asarray(g), torch.tensor(g)
    optim.clip_grad_value(params, 1.5)
    torch.nn.utils.clip_grad_value_(reference, 1.5, foreach=False)
    for p, q in zip(params, reference):
        assert p.grad.dtype == p.value.dtype
        np.testing.assert_array_equal(xnn.to_numpy(p.grad), q.grad.numpy())
    assert max(np.abs(xnn.to_numpy(p.grad)).max() for p in params) == pytest.approx(1.5)
