"""Optimizers on every backend: in-place updates, skipped parameters, checkpoints, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import optim
from xnn.backend import backend_of, dtype_name
from xnn.nn import Parameter
from conftest import IMMUTABLE

# every optimizer with every state list in use (momentum, centered, amsgrad)
CONFIGS = {
    "SGD": (optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
    "Adagrad": (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01}),
    "RMSprop": (optim.RMSprop, {"momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    "Adam": (optim.Adam, {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
    "AdamW": (optim.AdamW, {"lr": 0.01, "amsgrad": True}),
}
NAMES = list(CONFIGS)


def _params(seed: int = 0, dtype: str = "float64") -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [Parameter(xnn.asarray(rng.standard_normal(s), dtype=dtype)) for s in [(3, 2), (2,)]]


def _set_grads(params: list[Parameter], t: int) -> None:
    """A gradient that depends on the values and on the step, so state and values both matter."""
    for k, p in enumerate(params):
        v = xnn.to_numpy(p.value)
        p.grad = xnn.asarray(v - np.cos(t + k + np.arange(v.size).reshape(v.shape)),
                             dtype=dtype_name(p.value.dtype), backend=backend_of(p.value))


def _train(opt: optim.Optimizer, params: list[Parameter], first: int, last: int) -> None:
    for t in range(first, last):
        _set_grads(params, t)
        opt.step()


def _host(params: list[Parameter]) -> list[np.ndarray]:
    return [xnn.to_numpy(p.value) for p in params]


def _to_host_state(state: dict) -> dict:
    """What a checkpoint does: every array becomes a NumPy array."""
    out = dict(state, hyperparameters=dict(state["hyperparameters"]))
    out["state"] = {key: [xnn.to_numpy(a) if xnn.backend.is_array(a) else a for a in items]
                    for key, items in state["state"].items()}
    return out


@pytest.mark.parametrize("name", NAMES)
def test_step_updates_values_and_state_in_place(backend, name):
    cls, kwargs = CONFIGS[name]
    params = _params()
    values = [p.value for p in params]
    opt = cls(params, **kwargs)
    _train(opt, params, 0, 2)
    kept = {key: list(items) for key, items in opt.state_dict()["state"].items()}
    before = _host(params)
    _train(opt, params, 2, 4)
    assert not np.allclose(_host(params)[0], before[0])  # they did change
    if backend.name in IMMUTABLE:  # the same lines rebind the slots instead
        assert not any(p.value is v for p, v in zip(params, values))
        return
    assert all(p.value is v for p, v in zip(params, values))
    for key, items in opt.state_dict()["state"].items():
        if key in ("step", "max_exp_avg_sq"):  # ints; the running max is a new array (no out=)
            continue
        assert all(a is b for a, b in zip(items, kept[key])), key


@pytest.mark.parametrize("name", NAMES)
def test_every_backend_follows_numpys_trajectory(backend, name):
    # SGD's momentum buffer scaled through a local name drifted 5e-2 on immutable arrays
    cls, kwargs = CONFIGS[name]
    runs = []
    for place in ("numpy", backend):
        with xnn.use_backend(place):
            params = _params()
            _train(cls(params, **kwargs), params, 0, 6)
            runs.append(_host(params))
    for mine, numpys in zip(runs[1], runs[0]):
        np.testing.assert_allclose(mine, numpys, rtol=1e-12, atol=1e-14)


def test_read_only_parameter_is_replaced_once_then_updated_in_place():
    value = np.array([1.0, 2.0])
    value.flags.writeable = False
    p = Parameter(value)
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    p.grad = np.array([1.0, 1.0])
    opt.step()
    assert p.value is not value and p.value.flags.writeable
    np.testing.assert_array_equal(value, [1.0, 2.0])  # the user's array is untouched
    np.testing.assert_array_equal(p.value, [0.5, 1.5])
    fresh = p.value
    opt.step()
    assert p.value is fresh
    np.testing.assert_allclose(p.value, [0.5 - 0.5 * 1.9, 1.5 - 0.5 * 1.9])


@pytest.mark.parametrize("name", NAMES)
def test_step_never_writes_into_the_gradient(backend, name):
    cls, kwargs = CONFIGS[name]
    params = _params()
    opt = cls(params, **kwargs)
    for t in range(3):
        _set_grads(params, t)
        grads = [p.grad for p in params]
        copies = [xnn.to_numpy(g) for g in grads]
        opt.step()
        for p, g, c in zip(params, grads, copies):
            assert p.grad is g
            np.testing.assert_array_equal(xnn.to_numpy(g), c)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_without_grad_is_left_alone_and_gets_no_state(backend, name):
    cls, kwargs = CONFIGS[name]
    params = _params()
    opt = cls(params, **kwargs)
    frozen = xnn.to_numpy(params[1].value)
    for t in range(3):
        _set_grads(params, t)
        params[1].grad = None
        opt.step()
    np.testing.assert_array_equal(xnn.to_numpy(params[1].value), frozen)
    assert all(items[1] is None for items in opt.state_dict()["state"].values())
    assert opt.steps == 3


@pytest.mark.parametrize("name", NAMES)
def test_save_load_continue_reproduces_the_uninterrupted_run_bit_for_bit(backend, name):
    cls, kwargs = CONFIGS[name]
    params = _params()
    opt = cls(params, **kwargs)
    _train(opt, params, 0, 6)
    saved_values, saved_state = _host(params), _to_host_state(opt.state_dict())
    _train(opt, params, 6, 12)

    resumed = _params(seed=99)  # other values: everything must come from the checkpoint
    for p, v in zip(resumed, saved_values):
        p.value = xnn.asarray(v)
    opt2 = cls(resumed, lr=123.0)
    opt2.load_state_dict(saved_state)
    assert opt2.state_dict()["hyperparameters"] == opt.state_dict()["hyperparameters"]
    assert opt2.steps == 6
    _train(opt2, resumed, 6, 12)
    for a, b in zip(_host(resumed), _host(params)):
        np.testing.assert_array_equal(a, b)
    for key, items in opt2.state_dict()["state"].items():
        for a in items:
            if xnn.backend.is_array(a):
                assert xnn.backend.array_namespace(a) is backend.xp, key


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_state_saved_on_another_backend_loads_and_continues(backend, name):
    cls, kwargs = CONFIGS[name]
    other = "array_api_strict" if backend.name == "numpy" else "numpy"
    with xnn.use_backend(other):
        source = _params()
        opt = cls(source, **kwargs)
        _train(opt, source, 0, 4)
    target = _params(seed=5)
    for p, q in zip(target, source):
        p.value = xnn.asarray(q.value)
    opt2 = cls(target, **kwargs)
    opt2.load_state_dict(opt.state_dict())  # the other library's arrays, as they are
    with xnn.use_backend(other):
        _train(opt, source, 4, 8)
    _train(opt2, target, 4, 8)
    for a, b in zip(_host(target), _host(source)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_loaded_state_is_a_copy_that_later_steps_do_not_change():
    params = _params()
    opt = optim.Adam(params)
    _train(opt, params, 0, 2)
    state = opt.state_dict()
    saved = [a.copy() for a in state["state"]["exp_avg"]]
    opt2 = optim.Adam(params)
    opt2.load_state_dict(state)
    _train(opt2, params, 2, 4)
    for a, b in zip(state["state"]["exp_avg"], saved):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    _train(opt, params, 0, 2)
    good = _to_host_state(opt.state_dict())
    exp_avg = opt.state[params[0]]["exp_avg"]
    fresh = optim.Adam(params, lr=0.5)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: the state is of a 'SGD'"):
        fresh.load_state_dict(optim.SGD(params).state_dict())
    with pytest.raises(ValueError, match=r"'exp_avg' holds 1 entries but the optimizer has 2"):
        fresh.load_state_dict(
            dict(good, state=dict(good["state"], exp_avg=good["state"]["exp_avg"][:1])))
    wrong_shape = list(good["state"]["exp_avg_sq"])
    wrong_shape[0] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"'exp_avg_sq'\[0\] has shape \(2, 3\), "
                                         r"parameter 0 has shape \(3, 2\)"):
        fresh.load_state_dict(dict(good, state=dict(good["state"], exp_avg_sq=wrong_shape)))
    bad_hyper = dict(good, hyperparameters=dict(good["hyperparameters"], eps=-1.0))
    with pytest.raises(ValueError, match=r"Adam: eps must be a number in \[0, inf\), got -1.0"):
        fresh.load_state_dict(bad_hyper)
    assert fresh.lr == 0.5 and fresh.eps == 1e-8 and fresh.steps == 0
    assert list(fresh.state.values()) == [{}, {}]
    assert opt.state[params[0]]["exp_avg"] is exp_avg


def test_lr_changed_between_steps_is_used_by_the_next_step(backend):
    p = Parameter(xnn.asarray([1.0, -1.0], dtype="float64"))
    opt = optim.SGD([p], lr=0.1)
    p.grad = xnn.asarray([1.0, 1.0], dtype="float64")
    opt.step()
    opt.lr = 0.01
    opt.step()
    np.testing.assert_allclose(xnn.to_numpy(p.value), [1.0 - 0.11, -1.0 - 0.11])


def test_adamw_decays_weights_without_a_gradient_signal_unlike_adam(backend, float64):
    # with a zero gradient Adam's L2 term is rescaled to a full lr-sized step, AdamW's is lr*wd*p
    params = {}
    for cls in (optim.Adam, optim.AdamW):
        p = Parameter(xnn.asarray([2.0]))
        opt = cls([p], lr=0.1, weight_decay=0.1)
        p.grad = xnn.asarray([0.0])
        opt.step()
        params[cls.__name__] = float(xnn.to_numpy(p.value)[0])
    assert params["AdamW"] == pytest.approx(2.0 * (1 - 0.1 * 0.1))
    assert params["Adam"] == pytest.approx(2.0 - 0.1, rel=1e-6)


def test_step_reads_no_value_back_from_the_device(monkeypatch):
    pytest.importorskip("array_api_strict")

    def refuse(self, *args):
        raise AssertionError("a host read of an array inside step()")

    with xnn.use_backend("array_api_strict", "device1"):
        params = _params()
        opts = [cls(params, **kwargs) for cls, kwargs in CONFIGS.values()]
        grads = []
        for t in range(2):
            _set_grads(params, t)
            grads.append([p.grad for p in params])
        for name in ("__bool__", "__float__", "__int__", "__index__", "__array__"):
            monkeypatch.setattr(type(params[0].value), name, refuse, raising=False)
        for step_grads in grads:
            for opt in opts:
                for p, g in zip(params, step_grads):
                    p.grad = g
                opt.step()
            optim.clip_grad_norm(params, 1.0)
            optim.clip_grad_value(params, 1.0)


def test_gradient_of_the_wrong_shape_or_dtype_is_rejected(backend):
    p = Parameter(xnn.asarray(np.zeros((2, 3)), dtype="float32"))
    opt = optim.SGD([p], lr=0.1)
    p.grad = xnn.asarray(np.zeros((3,)), dtype="float32")
    with pytest.raises(ValueError, match=r"SGD: the parameter 0 has shape \(2, 3\) but the grad "
                                         r"of parameter 0 has shape \(3,\)"):
        opt.step()
    p.grad = xnn.asarray(np.zeros((2, 3)), dtype="float64")
    with pytest.raises(TypeError, match="SGD: expected a float32 grad of parameter 0 like the "
                                        "parameter 0, got float64"):
        opt.step()


def test_bad_parameter_lists_are_rejected():
    p = Parameter(xnn.asarray([1.0]))
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="SGD: parameter 1 appears twice"):
        optim.SGD([p, p])
    with pytest.raises(TypeError, match=r"RMSprop: item 0 of params is a Linear, not a Parameter"):
        optim.RMSprop(xnn.nn.Sequential(xnn.nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="Adam: lr must be a real number, got str"):
        optim.Adam([p], lr="0.1")
    with pytest.raises(ValueError, match="Adam: betas must be a pair of floats, got 0.9"):
        optim.Adam([p], betas=0.9)


def test_zero_grad_forgets_every_gradient(backend):
    params = _params()
    opt = optim.SGD(params)
    _set_grads(params, 0)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


# --- clipping ------------------------------------------------------------------------------------

def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before(backend, float64):
    params = _params()
    params[0].grad = xnn.asarray(np.full((3, 2), 3.0))
    params[1].grad = xnn.asarray([4.0, 0.0])
    original = params[0].grad
    total = optim.clip_grad_norm(params, 1.0)
    norm = np.sqrt(6 * 9 + 16)
    assert float(total) == pytest.approx(norm, rel=1e-12)
    clipped = np.concatenate([xnn.to_numpy(p.grad).ravel() for p in params])
    assert np.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(xnn.to_numpy(original), np.full((3, 2), 3.0))  # a copy


def test_clip_grad_norm_below_max_norm_leaves_gradients_unchanged(backend, float64):
    params = _params()
    _set_grads(params, 0)
    before = [xnn.to_numpy(p.grad) for p in params]
    optim.clip_grad_norm(params, 1e6)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(xnn.to_numpy(p.grad), b)


def test_clip_grad_norm_without_gradients_returns_zero(backend):
    total = optim.clip_grad_norm(_params(), 1.0)
    assert total.shape == () and float(total) == 0.0


def test_clipping_rejects_negative_limits():
    params = _params()
    with pytest.raises(ValueError, match=r"clip_grad_norm: max_norm must be a number in "
                                         r"\[0, inf\), got -1.0"):
        optim.clip_grad_norm(params, -1.0)
    with pytest.raises(ValueError, match=r"clip_grad_value: limit must be a number in \[0, inf\), "
                                         r"got -0.5"):
        optim.clip_grad_value(params, -0.5)
    with pytest.raises(ValueError, match=r"clip_grad_norm: norm_type must be a number in \(0, "):
        optim.clip_grad_norm(params, 1.0, norm_type=0)
    with pytest.raises(TypeError, match="clip_grad_norm: norm_type must be a real number"):
        optim.clip_grad_norm(params, 1.0, norm_type="inf")


def test_betas_a_checkpoint_stored_as_a_list_load_as_a_pair():
    params = _params()
    state = optim.Adam(params).state_dict()
    state["hyperparameters"]["betas"] = [0.5, 0.6]  # what JSON makes of a tuple
    opt = optim.Adam(params)
    opt.load_state_dict(state)
    assert opt.betas == (0.5, 0.6)
