"""Optimizer state on every backend: per-parameter dicts under torch's names, loads that check
everything (through the constructor's checks) before they change anything, hyperparameters
checked by the constructor and lr when assigned, and state that follows its parameters to
another backend, device or dtype."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import xnn
from xnn import nn, optim
from xnn._checks import number
from xnn.backend import BackendUnavailableError, array_namespace, backend_of
from xnn.nn import Parameter
from xnn.optim import schedules

# the same configurations (every optimizer with every state entry in use), parameters and grads
from test_optim import CONFIGS, NAMES, _params, _set_grads

# what torch.optim keeps in optimizer.state[p] for the configurations above
TORCH_ENTRIES = {
    "SGD": {"momentum_buffer"},
    "Adagrad": {"step", "sum"},
    "RMSprop": {"square_avg", "grad_avg", "momentum_buffer"},  # torch also counts a "step"
    "Adam": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "AdamW": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
}


def _train(opt: optim.Optimizer, params: list[Parameter], first: int, last: int) -> None:
    for t in range(first, last):
        _set_grads(params, t)
        opt.step()


def _snapshot(opt: optim.Optimizer, params: list[Parameter]) -> str:
    """Everything a refused call must leave alone, as text: values, hyperparameters, state."""
    state = opt.state_dict()
    host = {k: [None if a is None else a if isinstance(a, int) else xnn.to_numpy(a).tolist()
                for a in items] for k, items in state["state"].items()}
    return repr(([xnn.to_numpy(p.value).tolist() for p in params], state["hyperparameters"],
                 state["steps"], host, [sorted(opt.state[p]) for p in params]))


def _host_state(state: dict) -> dict:
    """What a checkpoint keeps: NumPy arrays, and JSON's lists for tuples."""
    out = copy.deepcopy({**state, "state": {
        k: [xnn.to_numpy(a) if xnn.backend.is_array(a) else a for a in items]
        for k, items in state["state"].items()}})
    out["hyperparameters"] = json.loads(json.dumps(out["hyperparameters"]))
    return out


# --- the state: one dict per parameter, under torch's names -------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_state_is_a_dict_per_parameter_with_torchs_entries(backend, name):
    cls, kwargs = CONFIGS[name]
    params = _params()
    opt = cls(params, **kwargs)
    assert list(opt.state) == params  # keyed by parameter as in torch, in parameter order
    assert list(opt.state.values()) == [{}, {}]  # nothing before the first update
    _set_grads(params, 0)
    params[1].grad = None
    opt.step()
    first, second = opt.state[params[0]], opt.state[params[1]]
    assert set(first) == TORCH_ENTRIES[name] and second == {}
    for key, item in first.items():
        if key == "step":
            assert item == 1
        else:
            assert array_namespace(item) is backend.xp and item.shape == (3, 2), key
    # state_dict() lists each entry in parameter order, None where a parameter has none
    entries = opt.state_dict()["state"]
    assert set(entries) == set(opt.state_keys)
    assert all(items[1] is None for items in entries.values())
    assert all(entries[key][0] is first[key] for key in first)


def test_state_entries_match_torchs_names():
    torch = pytest.importorskip("torch")
    for name, (cls, kwargs) in CONFIGS.items():
        q = torch.zeros(2, requires_grad=True)
        reference = getattr(torch.optim, name)([q], foreach=False, **kwargs)
        q.grad = torch.ones(2)
        reference.step()
        p = Parameter(xnn.asarray([0.0, 0.0]))
        opt = cls([p], **kwargs)
        p.grad = xnn.asarray([1.0, 1.0])
        opt.step()
        extra = {"step"} if name == "RMSprop" else set()  # a count torch's RMSprop never uses
        assert set(opt.state[p]) | extra == set(reference.state[q]), name


# --- load_state_dict checks the whole state first -----------------------------------------------

def _stepped(name: str, backend=None):
    cls, kwargs = CONFIGS[name]
    params = _params()
    opt = cls(params, **kwargs)
    _train(opt, params, 0, 3)
    return params, opt


def _hyper(**changes):
    return lambda s: dict(s, hyperparameters=dict(s["hyperparameters"], **changes))


def _entry(key, i, value):
    def change(s):
        items = list(s["state"][key])
        items[i] = value(items[i]) if callable(value) else value
        return dict(s, state=dict(s["state"], **{key: items}))
    return change


# (optimizer, corruption, error, message)
INCONSISTENT = {
    "amsgrad a str": ("Adam", _hyper(amsgrad="no"), TypeError,
                      r"^Adam: amsgrad must be True or False, got str 'no'"),
    "amsgrad 2": ("Adam", _hyper(amsgrad=2), TypeError, "amsgrad must be True or False"),
    "amsgrad None": ("AdamW", _hyper(amsgrad=None), TypeError, "AdamW: amsgrad must be True"),
    "nesterov a str": ("SGD", _hyper(nesterov="yes"), TypeError, "SGD: nesterov must be True"),
    "centered 0.0": ("RMSprop", _hyper(centered=0.0), TypeError, "RMSprop: centered must be True"),
    "step None beside moments": ("Adam", _entry("step", 0, None), ValueError,
                                 r"^Adam.load_state_dict: parameter 0 has 'exp_avg', "
                                 r"'exp_avg_sq', 'max_exp_avg_sq' but no 'step'"),
    "moments without step": ("Adam", _entry("exp_avg_sq", 1, None), ValueError,
                             r"parameter 1 has .* but no 'exp_avg_sq'"),
    "sum without step": ("Adagrad", _entry("step", 1, None), ValueError,
                         r"^Adagrad.load_state_dict: parameter 1 has 'sum' but no 'step'"),
    "buffer without average": ("RMSprop", _entry("square_avg", 0, None), ValueError,
                               r"^RMSprop.load_state_dict: parameter 0 .* no 'square_avg'"),
    "a negative step": ("Adam", _entry("step", 0, -1), ValueError,
                        r"Adam.load_state_dict: 'step'\[0\] must be an int >= 0, got -1"),
    "a float step": ("Adagrad", _entry("step", 0, 2.0), TypeError, r"'step'\[0\] must be an int"),
    "an int moment": ("Adam", _entry("exp_avg", 1, lambda a: np.zeros(a.shape, dtype="int64")),
                      TypeError, r"'exp_avg'\[1\] is int64; optimizer state is floating-point"),
    "a bool buffer": ("SGD", _entry("momentum_buffer", 0, lambda a: np.zeros(a.shape, bool)),
                      TypeError, r"^SGD.load_state_dict: 'momentum_buffer'\[0\] is bool"),
    "a wrong shape": ("RMSprop", _entry("grad_avg", 0, np.zeros((2, 3))), ValueError,
                      r"'grad_avg'\[0\] has shape \(2, 3\), parameter 0 has shape \(3, 2\)"),
    "a list entry": ("Adagrad", _entry("sum", 0, [[1.0, 2.0]] * 3), TypeError,
                     r"'sum'\[0\] is a list, not an array"),
    "one parameter too many": ("SGD", lambda s: dict(s, state={
        "momentum_buffer": [*s["state"]["momentum_buffer"], None]}), ValueError,
        "'momentum_buffer' holds 3 entries but the optimizer has 2 parameters"),
    "a negative lr": ("AdamW", _hyper(lr=-0.5), ValueError, r"^AdamW: lr must be a number in"),
    "a NaN beta": ("Adam", _hyper(betas=[0.9, float("nan")]), ValueError, r"betas\[1\]"),
    "nesterov without momentum": ("SGD", _hyper(momentum=0.0), ValueError,
                                  "nesterov=True needs momentum > 0"),
    "a str initial_lr": ("SGD", _hyper(initial_lr="0.1"), TypeError,
                         "SGD: initial_lr must be a real number"),
    "a negative initial_lr": ("AdamW", _hyper(initial_lr=-1.0), ValueError,
                              "AdamW: initial_lr must be a number in"),
    "an alpha below 0": ("RMSprop", _hyper(alpha=-0.5), ValueError,
                         "RMSprop: alpha must be a number in"),
}


@pytest.mark.parametrize("case", list(INCONSISTENT))
def test_inconsistent_state_is_refused_naming_the_entry_and_changes_nothing(backend, case):
    name, corrupt, error, message = INCONSISTENT[case]
    params, opt = _stepped(name)
    good = _host_state(opt.state_dict())
    before = _snapshot(opt, params)
    with pytest.raises(error, match=message):
        opt.load_state_dict(corrupt(copy.deepcopy(good)))
    assert _snapshot(opt, params) == before
    # and the optimizer steps on as if nothing had been tried
    twin_params, twin = _stepped(name)
    _train(opt, params, 3, 5)
    _train(twin, twin_params, 3, 5)
    assert _snapshot(opt, params) == _snapshot(twin, twin_params)


@pytest.mark.parametrize("name", NAMES)
def test_a_state_the_optimizer_can_reach_loads_and_steps(backend, name):
    """Hyperparameters switched on by hand after some steps (amsgrad, centered, momentum): the
    entries they need are made at the next update, so such a state loads and steps."""
    cls, kwargs = CONFIGS[name]
    off = {k: (False if v is True else 0.0 if k == "momentum" and name != "SGD" else v)
           for k, v in kwargs.items() if k not in ("nesterov",)}
    params = _params()
    opt = cls(params, **off)
    _train(opt, params, 0, 2)
    for k, v in kwargs.items():
        setattr(opt, k, v)
    state = _host_state(opt.state_dict())
    fresh = cls(_params(), **kwargs)
    fresh.load_state_dict(state)
    _train(opt, params, 2, 4)
    fresh_params = fresh.params
    for p, q in zip(fresh_params, params):
        p.value = xnn.asarray(xnn.to_numpy(q.value))
    _train(fresh, fresh_params, 4, 5)
    assert set(fresh.state[fresh_params[0]]) == TORCH_ENTRIES[name]
    assert fresh.steps == 3


def test_old_checkpoint_state_with_int_hyperparameters_loads(backend):
    """A state dict as xnn 0.1 wrote it (JSON: ints where a float was 0, betas as a list)."""
    params = _params()
    old = {"optimizer": "Adam", "steps": 2,
           "hyperparameters": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-08,
                               "weight_decay": 0, "amsgrad": False, "initial_lr": None},
           "state": {"step": [2, None], "exp_avg": [np.full((3, 2), 0.1), None],
                     "exp_avg_sq": [np.full((3, 2), 0.01), None],
                     "max_exp_avg_sq": [None, None]}}
    opt = optim.Adam(params)
    opt.load_state_dict(old)
    assert opt.steps == 2 and opt.betas == (0.9, 0.999)
    first, second = opt.state[params[0]], opt.state[params[1]]
    assert type(opt.weight_decay) is float and second == {}
    assert first["step"] == 2 and array_namespace(first["exp_avg"]) is backend.xp
    _train(opt, params, 2, 3)
    assert first["step"] == 3 and second["step"] == 1


def test_loaded_torch_state_that_requires_grad_is_detached():
    torch = pytest.importorskip("torch")
    with xnn.use_backend("torch"):
        params = _params()
        opt = optim.SGD(params, lr=0.1, momentum=0.9)
        _train(opt, params, 0, 1)
        state = opt.state_dict()
        state["state"]["momentum_buffer"] = [torch.ones(s, dtype=torch.float64,
                                                        requires_grad=True) for s in [(3, 2), (2,)]]
        opt.load_state_dict(state)
        assert not any(s["momentum_buffer"].requires_grad for s in opt.state.values())
        _train(opt, params, 1, 2)
        assert not any(p.value.requires_grad for p in params)


# --- lr is checked when assigned, every hyperparameter by the constructor -----------------------

@pytest.mark.parametrize("scalar", [np.float64, np.float32, np.int64])
def test_numpy_scalar_lr_set_by_hand_becomes_a_python_float(backend, scalar, tmp_path):
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    opt.lr = scalar(1)
    assert type(opt.lr) is float and opt.lr == 1.0
    _train(opt, params, 0, 2)  # on array_api_strict a NumPy scalar times an array fails
    assert all(array_namespace(p.value) is backend.xp for p in params)
    json.dumps(opt.state_dict()["hyperparameters"])  # JSON has no NumPy scalars
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.lr = scalar(1)
    xnn.save(tmp_path / "model.safetensors", model, opt)
    assert xnn.load(tmp_path / "model.safetensors").optimizer.lr == 1.0


def test_lr_a_schedule_computes_from_numpy_scalars_is_a_python_float(backend):
    params = _params()
    opt = optim.SGD(params, lr=np.float32(0.5))
    schedule = schedules.StepLR(opt, step_size=1, gamma=np.float64(0.5))
    _train(opt, params, 0, 1)
    schedule.step()
    assert type(opt.lr) is float and opt.lr == 0.25
    assert type(opt.initial_lr) is float


LR_ASSIGNMENTS = [  # (value, error, message)
    (-1.0, ValueError, r"^Adam: lr must be a number in \[0, inf\), got -1.0"),
    ("0.1", TypeError, r"^Adam: lr must be a real number, got str '0.1'"),
    (float("nan"), ValueError, "Adam: lr must be a number"),
]


@pytest.mark.parametrize(("value", "error", "message"), LR_ASSIGNMENTS,
                         ids=[repr(v) for v, _, _ in LR_ASSIGNMENTS])
def test_refused_lr_raises_and_changes_nothing(backend, value, error, message):
    cls, kwargs = CONFIGS["Adam"]
    params = _params(dtype="float32")
    opt = cls(params, **kwargs)
    _train(opt, params, 0, 2)
    before = _snapshot(opt, params)
    with pytest.raises(error, match=message):
        opt.lr = value
    assert _snapshot(opt, params) == before


REFUSED = [  # (optimizer, hyperparameter, value, error, message)
    ("Adam", "betas", (0.9, 1.0), ValueError, r"Adam: betas\[1\] must be a number in \[0, 1\)"),
    ("Adam", "amsgrad", "yes", TypeError, "Adam: amsgrad must be True or False"),
    ("SGD", "momentum", 0.0, ValueError, "SGD: nesterov=True needs momentum > 0"),
    ("SGD", "nesterov", 0.5, TypeError, "SGD: nesterov must be True or False"),
    ("Adagrad", "initial_accumulator_value", 1e300, ValueError, "overflows parameter 0's float32"),
    ("RMSprop", "alpha", -0.5, ValueError, "RMSprop: alpha must be a number in"),
]


@pytest.mark.parametrize(("name", "attr", "value", "error", "message"), REFUSED,
                         ids=[f"{n}.{a}={v!r}" for n, a, v, _, _ in REFUSED])
def test_constructor_refuses_a_hyperparameter_out_of_range_or_of_the_wrong_type(
        backend, name, attr, value, error, message):
    cls, kwargs = CONFIGS[name]
    with pytest.raises(error, match=message):
        cls(_params(dtype="float32"), **{**kwargs, attr: value})


def test_betas_become_a_tuple_of_floats():
    opt = optim.Adam(_params(), betas=[np.float32(0.5), 0])
    assert opt.betas == (0.5, 0.0) and all(type(b) is float for b in opt.betas)


class _Scaled(optim.Optimizer):
    """An optimizer written outside xnn: p <- p - lr * scale * g, scale > 0."""

    hyperparameters = ("lr", "scale")

    def __init__(self, params, lr=0.1, scale=1.0):
        super().__init__(params, lr)
        self.scale = number(self, "scale", scale, low=0, low_open=True)

    def _update(self, params, states):
        for p in params:
            if p.grad is not None:
                p.value = p.value - self.lr * self.scale * p.grad


def test_a_new_optimizers_constructor_checks_its_loaded_state(backend, tmp_path):
    """load_state_dict and xnn.load run the constructor's checks: nothing else to write."""
    params = _params()
    opt = _Scaled(params, scale=2.0)
    _train(opt, params, 0, 1)
    good = opt.state_dict()
    assert good["hyperparameters"] == {"lr": 0.1, "scale": 2.0, "initial_lr": None}
    fresh = _Scaled(params)
    fresh.load_state_dict(good)
    assert fresh.scale == 2.0 and fresh.steps == 1
    with pytest.raises(ValueError, match=r"^_Scaled: scale must be a number in \(0, inf\)"):
        fresh.load_state_dict(_hyper(scale=0.0)(good))
    assert fresh.scale == 2.0
    model = nn.Linear(2, 1)
    xnn.save(tmp_path / "c.safetensors", model, _Scaled(model.parameters(), scale=3.0))
    assert xnn.load(tmp_path / "c.safetensors").optimizer.scale == 3.0


# --- the state follows its parameters to another backend, device or dtype ---------------------

def _hops(start: str) -> list[tuple[str, object]]:
    """From ``start`` through numpy, array_api_strict on device1 and torch, and back to it."""
    chain = [("numpy", None), ("array_api_strict", "device1"), ("torch", "cpu")]
    others = [place for place in chain if place[0] != start]
    return [*others, chain[[c[0] for c in chain].index(start)]] if start in dict(chain) else chain


@pytest.mark.parametrize("name", NAMES)
def test_state_follows_model_to_another_backend_and_back(backend, name):
    cls, kwargs = CONFIGS[name]
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with xnn.use_backend("numpy"):
        xnn.seed(0)
        twin = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model.to(dtype="float64")
    twin.to(dtype="float64")
    opt, twin_opt = cls(model.parameters(), **kwargs), cls(twin.parameters(), **kwargs)
    t = 0
    for place in [None, *_hops(backend.name)]:
        if place is not None:
            try:
                model.to(*place)
            except BackendUnavailableError as err:
                pytest.skip(str(err))
        for _ in range(2):
            _set_grads(model.parameters(), t)
            _set_grads(twin.parameters(), t)
            opt.step()
            twin_opt.step()
            t += 1
        where = backend_of(model.parameters()[0].value)
        for state in opt.state.values():
            for key, item in state.items():
                if key != "step":
                    assert backend_of(item).name == where.name, key
                    assert str(backend_of(item).device) == str(where.device), key
        for p, q in zip(model.parameters(), twin.parameters()):
            np.testing.assert_allclose(xnn.to_numpy(p.value), xnn.to_numpy(q.value),
                                       rtol=1e-12, atol=1e-14)
    assert opt.steps == twin_opt.steps == t


def test_state_follows_a_change_of_dtype(backend):
    params = _params(dtype="float64")
    opt = optim.Adam(params, amsgrad=True)
    _train(opt, params, 0, 2)
    for p in params:
        p.value = xnn.asarray(xnn.to_numpy(p.value), dtype="float32")
    _train(opt, params, 2, 3)
    assert all(item.dtype == params[0].value.dtype
               for s in opt.state.values() for k, item in s.items() if k != "step")


def test_state_that_cannot_follow_is_refused_before_any_update(backend):
    params = _params()
    opt = optim.Adam(params)
    _train(opt, params, 0, 2)
    params[1].value = xnn.asarray(np.zeros(3))  # another shape: the state is not for it
    _set_grads(params, 2)
    before = _snapshot(opt, params)
    with pytest.raises(ValueError, match=r"^Adam.step: 'exp_avg'\[1\] has shape \(2,\), "
                                         r"parameter 1 has shape \(3,\)"):
        opt.step()
    assert _snapshot(opt, params) == before  # parameter 0 was not updated either


def test_a_parameter_reshaped_in_place_is_refused_before_any_update():
    params = _params()
    opt = optim.Adam(params)
    _train(opt, params, 0, 2)
    params[0].value.shape = (2, 3)  # NumPy reshapes a contiguous array in place: same object
    _set_grads(params, 2)
    before = _snapshot(opt, params)
    with pytest.raises(ValueError, match=r"^Adam.step: 'exp_avg'\[0\] has shape \(3, 2\), "
                                         r"parameter 0 has shape \(2, 3\)"):
        opt.step()
    assert _snapshot(opt, params) == before


def test_a_numpy_scalar_grad_of_a_0d_parameter_steps_like_an_array():
    p, q = Parameter(np.asarray(1.0)), Parameter(np.asarray(1.0))
    opt, twin = optim.Adam([p], lr=0.1), optim.Adam([q], lr=0.1)
    for t in range(3):
        p.grad, q.grad = np.float64(0.5 + t), np.asarray(0.5 + t)  # a scalar from a NumPy sum
        opt.step()
        twin.step()
    assert p.value == q.value and opt.state[p]["step"] == 3


@pytest.mark.parametrize("grad", [None, "ones"])
def test_a_parameter_replaced_by_a_non_array_is_refused_before_any_update(backend, grad):
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    _train(opt, params, 0, 2)
    _set_grads(params, 2)
    params[1].value = [1.0, 2.0]
    params[1].grad = None if grad is None else params[0].grad[0, :]
    before = _snapshot(opt, params[:1])
    with pytest.raises(TypeError, match=r"^SGD(.step)?: parameter 1 holds a list, not an array"):
        opt.step()
    with pytest.raises(TypeError, match=r"^SGD.load_state_dict: parameter 1 holds a list"):
        opt.load_state_dict(_host_state(opt.state_dict()))
    assert _snapshot(opt, params[:1]) == before


def test_a_fill_value_the_new_dtype_cannot_hold_is_refused_before_any_update(backend):
    params = _params(dtype="float64")
    opt = optim.Adagrad(params, initial_accumulator_value=1e300)
    _train(opt, params, 0, 1)
    for p in params:
        p.value = xnn.asarray(xnn.to_numpy(p.value), dtype="float32")
    _set_grads(params, 1)
    before = _snapshot(opt, params)
    with pytest.raises(ValueError, match=r"Adagrad: initial_accumulator_value=1e\+300 overflows"):
        opt.step()
    assert _snapshot(opt, params) == before
