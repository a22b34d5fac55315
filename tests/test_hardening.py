"""Hardening: bad input gets a clear exception naming what was expected and what came, and a call
that fails leaves nothing lost or half-written.

Three parts: arrays from another backend or device (layers, losses, metrics, optimizers, and
``model.to`` as the way out); NaN/Inf refused by ``fit`` with the row index; state, checkpoint
and training left whole by every failure. The random inputs thrown at every entry point live in
test_hardening_fuzz.py.

Every test here first failed against a bug it found (44 in all, fixed in the library); each
runs on every backend through the ``backend`` fixture.
"""

from __future__ import annotations

import copy
import json
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xnn
from xnn import losses, metrics, nn, optim
from xnn.backend import BackendUnavailableError, array_namespace
from xnn.io import CheckpointError

from model_state import assert_state, host_state

# --- helpers ---------------------------------------------------------------------------------

PLACES = [("numpy", None), ("array_api_strict", None), ("array_api_strict", "device1"),
          ("torch", "cpu")]
PLACE_IDS = ["numpy", "strict", "strict-device1", "torch"]
PAIRS = [(a, b) for a in PLACES for b in PLACES if a != b]
PAIR_IDS = [f"{PLACE_IDS[PLACES.index(a)]}<-{PLACE_IDS[PLACES.index(b)]}" for a, b in PAIRS]


def _backend(place) -> xnn.Backend:
    try:
        return xnn.backend._load(*place)
    except BackendUnavailableError as err:
        pytest.skip(f"{place[0]} unavailable: {err}")


def _names(place_a, place_b) -> list[str]:
    """What a message about the two places must name: the libraries, or else the devices."""
    if place_a[0] != place_b[0]:
        return [place_a[0], place_b[0]]
    return ["CPU_DEVICE" if p[1] is None else p[1] for p in (place_a, place_b)]


def _data(place, shape, dtype="float32", seed=0, fill=None):
    host = np.random.default_rng(seed).normal(size=shape) if fill is None else np.full(shape, fill)
    return xnn.asarray(host, dtype=dtype, backend=_backend(place))


def _labels(place, values):
    return xnn.asarray(np.asarray(values, dtype=np.int64), backend=_backend(place))


def _optimizer_state(opt) -> tuple:
    state = opt.state_dict()
    arrays = {k: [None if a is None else a if isinstance(a, int) else xnn.to_numpy(a).copy()
                  for a in v] for k, v in state["state"].items()}
    return repr(state["hyperparameters"]), state["steps"], arrays


def _assert_optimizer_state(opt, before: tuple) -> None:
    hyper, steps, arrays = _optimizer_state(opt)
    assert (hyper, steps) == before[:2]
    for key, items in before[2].items():
        for a, b in zip(items, arrays[key]):
            if a is None or isinstance(a, int):
                assert a == b, key
            else:
                np.testing.assert_array_equal(b, a, err_msg=key)


# --- arrays from another backend or device ---------------------------------------------------

MODELS = {
    "Linear": lambda: nn.Linear(3, 2),
    "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "LayerNorm": lambda: nn.LayerNorm(3),
    # the check fires at the first layer with parameters, after a parameter-free one ran
    "Sequential": lambda: nn.Sequential(nn.Tanh(), nn.Linear(3, 4), nn.ReLU(), nn.LayerNorm(4),
                                        nn.Linear(4, 2)),
}
OWNER = {"Linear": "Linear", "BatchNorm1d": "BatchNorm1d", "LayerNorm": "LayerNorm",
         "Sequential": "Linear"}


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("model_place, input_place", PAIRS, ids=PAIR_IDS)
def test_model_refuses_input_from_another_backend_or_device_naming_both(model_place,
                                                                         input_place, kind):
    with xnn.use_backend(_backend(model_place)):
        xnn.seed(0)
        model = MODELS[kind]()
    before = host_state(model)
    x = _data(input_place, (4, 3))
    error = TypeError if model_place[0] != input_place[0] else ValueError
    with pytest.raises(error) as info:
        model(x)
    message = str(info.value)
    assert OWNER[kind] in message
    for name in _names(model_place, input_place):
        assert name in message, f"{name!r} missing from {message!r}"
    assert "model.to()" in message or "xnn.asarray()" in message  # says how to fix it
    assert_state(model, before)  # BatchNorm1d's running statistics were not touched


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("model_place, input_place", PAIRS, ids=PAIR_IDS)
def test_model_to_the_inputs_backend_then_works(model_place, input_place, kind):
    with xnn.use_backend(_backend(model_place)):
        xnn.seed(0)
        model = MODELS[kind]()
        reference = xnn.to_numpy(model(_data(model_place, (4, 3))))
    x = _data(input_place, (4, 3))
    assert model.to(*input_place) is model
    y = model(x)
    assert array_namespace(y) is array_namespace(x)
    assert str(xnn.backend.backend_of(y).device) == str(xnn.backend.backend_of(x).device)
    np.testing.assert_allclose(xnn.to_numpy(y), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_place, input_place", PAIRS, ids=PAIR_IDS)
def test_fit_and_evaluate_move_data_from_another_backend(model_place, input_place):
    """fit documents that X and y are moved to the model's backend: the user asked for it."""
    with xnn.use_backend(_backend(model_place)):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    X, y = _data(input_place, (6, 3)), _data(input_place, (6, 2), seed=1)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
    assert np.isfinite(history["loss"]).all()
    assert np.isfinite(xnn.evaluate(model, X, y, loss=losses.MSELoss())["loss"])


def _loss_inputs(kind, pred_place, target_place):
    if kind in ("CrossEntropyLoss", "NLLLoss"):
        return _data(pred_place, (4, 3)), _labels(target_place, [0, 2, 1, 0])
    return _data(pred_place, (4, 3)), _data(target_place, (4, 3), fill=0.5)


LOSS_KINDS = ["MSELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]
LIBRARY_PAIRS = [(a, b) for a, b in PAIRS if a[0] != b[0]]
LIBRARY_IDS = [i for (a, b), i in zip(PAIRS, PAIR_IDS) if a[0] != b[0]]
DEVICE_PAIRS = [(a, b) for a, b in PAIRS if a[0] == b[0]]
DEVICE_IDS = [i for (a, b), i in zip(PAIRS, PAIR_IDS) if a[0] == b[0]]


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("pred_place, target_place", LIBRARY_PAIRS, ids=LIBRARY_IDS)
def test_loss_refuses_pred_and_target_from_two_libraries_naming_both(pred_place, target_place,
                                                                     kind):
    pred, target = _loss_inputs(kind, pred_place, target_place)
    with pytest.raises(TypeError) as info:
        getattr(losses, kind)()(pred, target)
    for name in _names(pred_place, target_place):
        assert name in str(info.value)
    assert "xnn.asarray()" in str(info.value)


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("pred_place, target_place",
                         [LIBRARY_PAIRS[LIBRARY_IDS.index(i)] for i in ("numpy<-torch",
                                                                        "torch<-strict-device1")],
                         ids=["numpy<-torch", "torch<-strict-device1"])
def test_loss_mixed_libraries_message_names_the_loss(pred_place, target_place, kind):
    pred, target = _loss_inputs(kind, pred_place, target_place)
    with pytest.raises(TypeError, match=kind):
        getattr(losses, kind)()(pred, target)


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("pred_place, target_place", DEVICE_PAIRS[:1], ids=DEVICE_IDS[:1])
def test_loss_refuses_pred_and_target_on_two_devices_naming_loss_and_devices(pred_place,
                                                                             target_place, kind):
    pred, target = _loss_inputs(kind, pred_place, target_place)
    with pytest.raises(ValueError) as info:
        getattr(losses, kind)()(pred, target)
    for name in [kind, *_names(pred_place, target_place)]:
        assert name in str(info.value)


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_loss_given_lists_names_itself(kind):
    with pytest.raises(TypeError, match=kind):
        getattr(losses, kind)()([[0.5, 0.5]], [[0.0, 1.0]])


@pytest.mark.parametrize("metric", ["accuracy", "mse", "r2_score"])
def test_metric_given_lists_names_itself(metric):
    with pytest.raises(TypeError, match=metric):
        getattr(metrics, metric)([[0.5, 0.5]], [[0.0, 1.0]])


@pytest.mark.parametrize("metric", ["mse", "binary_accuracy"])
@pytest.mark.parametrize("pred_place, target_place", [LIBRARY_PAIRS[0], DEVICE_PAIRS[0]],
                         ids=[LIBRARY_IDS[0], DEVICE_IDS[0]])
def test_metric_on_two_backends_names_metric_and_both(pred_place, target_place, metric):
    pred, target = _data(pred_place, (4, 3)), _data(target_place, (4, 3), fill=0.5)
    with pytest.raises((TypeError, ValueError)) as info:
        getattr(metrics, metric)(pred, target)
    for name in [metric, *_names(pred_place, target_place)]:
        assert name in str(info.value)


@pytest.mark.filterwarnings("ignore:You are comparing a array_api_strict dtype")
@pytest.mark.parametrize("param_place, grad_place", [LIBRARY_PAIRS[0], LIBRARY_PAIRS[-1],
                                                     DEVICE_PAIRS[0]],
                         ids=[LIBRARY_IDS[0], LIBRARY_IDS[-1], DEVICE_IDS[0]])
def test_optimizer_refuses_a_grad_from_another_backend_naming_both(param_place, grad_place):
    with xnn.use_backend(_backend(param_place)):
        layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    before = host_state(layer)
    layer.weight.grad = _data(grad_place, (3, 2))
    with pytest.raises((TypeError, ValueError)) as info:
        opt.step()
    for name in ["SGD", *_names(param_place, grad_place)]:
        assert name in str(info.value)
    assert_state(layer, before)


# --- NaN / Inf: fit refuses them before training, naming the first bad row -------------------

@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.integers(1, 6), where=st.sampled_from(["X", "y", "X_val", "y_val"]),
       bad=st.sampled_from([np.nan, np.inf, -np.inf]), data=st.data(), rank3=st.booleans())
def test_fit_refuses_nan_and_inf_with_the_first_bad_row(backend, rows, where, bad, data, rank3):
    xnn.seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    shapes = {"X": (rows, 2, 2) if rank3 else (rows, 4), "y": (rows, 2)}
    arrays = {name: np.random.default_rng(1).normal(size=shapes[name[0]])
              for name in ("X", "y", "X_val", "y_val")}
    hit = arrays[where]
    bad_rows = sorted(set(data.draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=3))))
    for r in bad_rows:
        hit.reshape(rows, -1)[r, data.draw(st.integers(0, hit[0].size - 1))] = bad
    before = host_state(model)
    with pytest.raises(ValueError, match=rf"fit: {where} contains NaN or Inf in {len(bad_rows)} "
                                         rf"row\(s\), first at row {bad_rows[0]};"):
        xnn.fit(model, arrays["X"], arrays["y"], loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
                validation_data=(arrays["X_val"], arrays["y_val"]))
    assert_state(model, before)


def test_fit_refuses_nan_in_the_validation_split_with_the_row_of_the_whole_x(backend):
    xnn.seed(0)
    model = nn.Linear(2, 1)
    X, y = np.ones((10, 2)), np.ones((10, 1))
    X[8, 1] = np.nan  # in the last 20%, the validation part
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 row\(s\), first at row 8"):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=1, validation_split=0.2, progress=False)


# --- nothing lost or half-written: module state dicts ----------------------------------------

def _bn_model():
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model(xnn.asarray(np.random.default_rng(0).normal(size=(5, 2)), dtype="float32"))
    return model


def _shifted_state(model):
    """A valid state dict whose every value differs from the model's (so a partial load shows)."""
    return {k: v + (1 if v.dtype.kind == "f" else 3) for k, v in host_state(model).items()}


BAD_MODULE_STATES = {
    "missing key": lambda s: {k: v for k, v in s.items() if k != "1.running_var"},
    "unexpected key": lambda s: dict(s, extra=np.ones(3)),
    "wrong shape in the last entry": lambda s: dict(s, **{"1.running_var": np.ones(4)}),
    "wrong shape in the first entry": lambda s: dict(s, **{"0.weight": np.ones((3, 2))}),
}


@pytest.mark.parametrize("corrupt", list(BAD_MODULE_STATES))
def test_failed_load_state_dict_leaves_the_module_unchanged(backend, corrupt):
    model = _bn_model()
    before = host_state(model)
    with pytest.raises((KeyError, ValueError), match="Sequential.load_state_dict"):
        model.load_state_dict(BAD_MODULE_STATES[corrupt](_shifted_state(model)))
    assert_state(model, before)


@pytest.mark.parametrize("value", ["x", np.array(["a", "b", "c"])], ids=["str", "str-array"])
def test_load_state_dict_with_an_unconvertible_last_value_leaves_the_module_unchanged(value):
    model = _bn_model()
    before = host_state(model)
    key = "1.num_batches_tracked" if isinstance(value, str) else "1.running_var"
    with pytest.raises((TypeError, ValueError), match=f"load_state_dict.*{key}"):
        model.load_state_dict(dict(_shifted_state(model), **{key: value}))
    assert_state(model, before)


def test_load_state_dict_takes_or_clearly_refuses_a_list_of_the_right_shape():
    model = _bn_model()
    state = dict(_shifted_state(model), **{"0.bias": [1.0, 2.0, 3.0]})
    try:
        model.load_state_dict(state)
    except TypeError as err:
        assert "0.bias" in str(err) and "list" in str(err)
    else:
        np.testing.assert_array_equal(xnn.to_numpy(model.state_dict()["0.bias"]), [1, 2, 3])


@pytest.mark.parametrize("state", [3, None], ids=["int", "None"])
def test_load_state_dict_of_a_non_mapping_names_the_module(state):
    with pytest.raises(TypeError, match="load_state_dict"):
        _bn_model().load_state_dict(state)


def test_model_to_refuses_an_integer_dtype():
    model = _bn_model()
    before = host_state(model)
    with pytest.raises(ValueError, match="float"):
        model.to("numpy", dtype="int64")
    assert_state(model, before)


# --- nothing lost or half-written: optimizers ------------------------------------------------

def _stepped_adam():
    model = _bn_model()
    opt = optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):
        for p in model.parameters():
            p.grad = xnn.asarray(np.ones(p.shape), dtype="float32")
        opt.step()
    return model, opt


def _other_adam_state(opt):
    """A valid Adam state dict, different from ``opt``'s in every entry."""
    state = copy.deepcopy({**opt.state_dict(), "state": {
        k: [a + 1 if isinstance(a, int) else xnn.to_numpy(a) * 3 for a in v]
        for k, v in opt.state_dict()["state"].items() if k != "max_exp_avg_sq"}})
    state["state"]["max_exp_avg_sq"] = [None] * len(opt.params)
    state["hyperparameters"] = dict(state["hyperparameters"], lr=0.5)
    state["steps"] += 5
    return state


BAD_OPTIMIZER_STATES = {
    "another optimizer": lambda s: dict(s, optimizer="SGD"),
    "unknown hyperparameter": lambda s: dict(s, hyperparameters=dict(s["hyperparameters"], x=1)),
    "negative lr": lambda s: dict(s, hyperparameters=dict(s["hyperparameters"], lr=-1.0)),
    "beta of 2": lambda s: dict(s, hyperparameters=dict(s["hyperparameters"], betas=(0.9, 2.0))),
    "wrong shape in the last entry": lambda s: dict(s, state=dict(
        s["state"], exp_avg_sq=[*s["state"]["exp_avg_sq"][:-1], np.ones(7)])),
    "too few entries": lambda s: dict(s, state=dict(s["state"], exp_avg=s["state"]["exp_avg"][:1])),
    "a str entry": lambda s: dict(s, state=dict(s["state"], exp_avg=["x", *s["state"]["exp_avg"][1:]])),
    "a str step": lambda s: dict(s, state=dict(s["state"], step=[*s["state"]["step"][:-1], "x"])),
}


@pytest.mark.parametrize("corrupt", list(BAD_OPTIMIZER_STATES))
def test_failed_optimizer_load_state_dict_leaves_it_unchanged(backend, corrupt):
    _, opt = _stepped_adam()
    before = _optimizer_state(opt)
    with pytest.raises((TypeError, ValueError), match="Adam"):
        opt.load_state_dict(BAD_OPTIMIZER_STATES[corrupt](_other_adam_state(opt)))
    _assert_optimizer_state(opt, before)


@pytest.mark.parametrize("steps", ["x", None, "missing"])
def test_optimizer_load_state_dict_with_bad_steps_leaves_it_unchanged(steps):
    _, opt = _stepped_adam()
    before = _optimizer_state(opt)
    state = _other_adam_state(opt)
    if steps == "missing":
        del state["steps"]
    else:
        state["steps"] = steps
    with pytest.raises((KeyError, TypeError, ValueError), match="Adam"):
        opt.load_state_dict(state)
    _assert_optimizer_state(opt, before)


@pytest.mark.parametrize("state", [3, "missing hyperparameters"])
def test_optimizer_load_state_dict_of_a_non_state_names_the_optimizer(state):
    _, opt = _stepped_adam()
    if state != 3:
        state = {k: v for k, v in opt.state_dict().items() if k != "hyperparameters"}
    with pytest.raises((TypeError, KeyError, ValueError), match="Adam.load_state_dict"):
        opt.load_state_dict(state)


def test_optimizer_step_with_a_bad_grad_changes_nothing(backend):
    xnn.seed(0)
    layer = nn.Linear(3, 2, bias=False)
    opt = optim.Adam(layer.parameters(), lr=0.1)
    before = host_state(layer)
    layer.weight.grad = xnn.asarray(np.ones((2, 3)), dtype="float32")
    with pytest.raises(ValueError, match=r"Adam: the parameter 0 has shape \(3, 2\).*\(2, 3\)"):
        opt.step()
    assert_state(layer, before)
    assert opt.steps == 0 and list(opt.state.values()) == [{}]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_optimizer_step_checks_every_grad_before_updating_any(backend, kind):
    xnn.seed(0)
    layer = nn.Linear(3, 2)
    opt = getattr(optim, kind)(layer.parameters(), lr=0.1)
    before = host_state(layer)
    layer.weight.grad = xnn.asarray(np.ones((3, 2)), dtype="float32")  # fine
    layer.bias.grad = xnn.asarray(np.ones((5,)), dtype="float32")       # wrong shape
    with pytest.raises(ValueError, match="parameter 1"):
        opt.step()
    assert_state(layer, before)


def test_optimizer_step_refuses_a_grad_that_is_not_an_array():
    layer = nn.Linear(2, 3)
    layer.weight.grad = [[1.0] * 3] * 2
    with pytest.raises(TypeError, match="SGD"):
        optim.SGD(layer.parameters()).step()


@pytest.mark.parametrize("device", [None, "device1"], ids=["strict", "strict-device1"])
@pytest.mark.parametrize("entry", ["SGD(lr)", "Adam(eps)", "clip_grad_norm", "clip_grad_value",
                                   "ExponentialLR(gamma)"])
def test_numpy_scalar_hyperparameters_work_on_array_api_strict(device, entry):
    with xnn.use_backend("array_api_strict", device):
        xnn.seed(0)
        layer = nn.Linear(2, 3)
        params = layer.parameters()
        opt = (optim.Adam(params, eps=np.float32(1e-8)) if entry == "Adam(eps)" else
               optim.SGD(params, lr=np.float32(0.1) if entry == "SGD(lr)" else 0.1))
        if entry == "ExponentialLR(gamma)":
            optim.schedules.ExponentialLR(opt, gamma=np.float32(0.5)).step()
        for p in params:
            p.grad = xnn.asarray(np.ones(p.shape), dtype="float32")
        if entry == "clip_grad_norm":
            optim.clip.clip_grad_norm(params, np.float32(0.5))
        elif entry == "clip_grad_value":
            optim.clip.clip_grad_value(params, np.float32(0.5))
        opt.step()
        assert type(layer.weight.value) is type(layer.bias.grad)


@pytest.mark.parametrize("entry", ["clip_grad_norm", "clip_grad_value"])
@pytest.mark.parametrize("grad", ["int64", "float64"])
def test_clipping_refuses_grads_unlike_their_parameters(backend, entry, grad):
    xnn.seed(0)
    params = nn.Linear(2, 3).parameters()
    params[0].grad = xnn.asarray(np.ones((2, 3), dtype=grad))
    with pytest.raises((TypeError, ValueError), match=entry):
        getattr(optim.clip, entry)(params, 1.0)


@pytest.mark.parametrize("entry", ["clip_grad_value", "Adagrad"])
def test_huge_python_floats_work_or_are_refused_on_torch(entry):
    pytest.importorskip("torch")
    with xnn.use_backend("torch"):
        params = nn.Linear(2, 3).parameters()
        params[0].grad = xnn.asarray(np.ones((2, 3)), dtype="float32")
        try:
            if entry == "clip_grad_value":
                optim.clip.clip_grad_value(params, 1e300)
            else:
                optim.Adagrad(params, initial_accumulator_value=1e300).step()
        except ValueError as err:
            assert entry in str(err)


@pytest.mark.parametrize("params", [None, "module"])
def test_optimizer_of_a_non_iterable_names_itself(params):
    model = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"SGD.*parameters\(\)"):
        optim.SGD(model if params == "module" else params)


# --- nothing lost or half-written: checkpoints -----------------------------------------------

def _with_callable():
    model = nn.Linear(2, 2)
    model.hook = print  # nothing a checkpoint can describe
    return model


def _saved(tmp_path):
    model, opt = _stepped_adam()
    path = tmp_path / "model.safetensors"
    xnn.save(path, model, opt, extra={"epoch": 3})
    return model, opt, path, path.read_bytes()


def _leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name != "model.safetensors")


def _crash(*args, **kwargs):
    raise OSError("disk full (simulated)")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


BAD_SAVES = {
    "extra not JSON": (lambda m, o, p: xnn.save(p, m, o, extra={"a": {1, 2}}), TypeError),
    "extra holding a text array": (lambda m, o, p: xnn.save(p, m, extra={"a": np.array(["t"])}),
                                   TypeError),
    "optimizer of another model": (
        lambda m, o, p: xnn.save(p, m, optim.SGD(nn.Linear(1, 1).parameters())), ValueError),
    "undescribable attribute": (lambda m, o, p: xnn.save(p, _with_callable()), CheckpointError),
}


@pytest.mark.parametrize("case", list(BAD_SAVES))
def test_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, case):
    model, opt, path, previous = _saved(tmp_path)
    call, error = BAD_SAVES[case]
    with pytest.raises(error, match="save|checkpoint"):
        call(model, opt, path)
    assert path.read_bytes() == previous and _leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [_crash, _interrupt], ids=["OSError", "KeyboardInterrupt"])
def test_save_interrupted_while_writing_leaves_the_previous_checkpoint_whole(tmp_path,
                                                                            monkeypatch, failure):
    model, opt, path, previous = _saved(tmp_path)
    monkeypatch.setattr(xnn.io, "write_arrays", failure)
    with pytest.raises((OSError, KeyboardInterrupt)):
        xnn.save(path, model, opt)
    assert path.read_bytes() == previous and _leftovers(tmp_path) == []
    assert xnn.load(path).extra == {"epoch": 3}


@pytest.mark.parametrize("args", ["model None", "optimizer 3"])
def test_save_refuses_a_non_model_or_non_optimizer_with_typeerror(tmp_path, args):
    model, opt, path, previous = _saved(tmp_path)
    with pytest.raises(TypeError, match="xnn.save"):
        xnn.save(path, None) if args == "model None" else xnn.save(path, model, 3)
    assert path.read_bytes() == previous


def _rewrite(path, out, change):
    """Copy a checkpoint to ``out`` after ``change(tensors, meta)`` edits its tensors or its
    metadata (each metadata entry parsed from JSON)."""
    from safetensors.numpy import save_file

    header, tensors = xnn.io.read_tensors(path)
    header.pop(xnn.io.DIGEST)  # a hand-edited file, as one without the tensors' digest
    meta = {k: json.loads(v) if k in ("architecture", "optimizer", "rng", "extra") else v
            for k, v in header.items()}
    change(tensors, meta)
    save_file(tensors, out, metadata={k: v if isinstance(v, str) else json.dumps(v)
                                      for k, v in meta.items()})
    return out


def test_failed_load_leaves_the_generator_and_raises_checkpointerror(tmp_path):
    _, _, path, _ = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "bad.safetensors",
                   lambda t, m: t.__setitem__("0.weight", np.ones((5, 5), np.float32)))
    xnn.seed(7)
    state = copy.deepcopy(xnn.random.get_state())
    with pytest.raises(CheckpointError, match=r"weight has shape \(5, 5\)"):
        xnn.load(bad)
    assert xnn.random.get_state() == state


def _set(path_in_meta, value):
    def change(tensors, meta):
        *parents, leaf = path_in_meta
        for key in parents:
            meta = meta[key]
        if value is KeyError:
            del meta[leaf]
        else:
            meta[leaf] = value
    return change


LINEAR, BATCHNORM, ROOT = 0, 1, 2  # _bn_model's modules: children first, the Sequential last
CORRUPT_CHECKPOINTS = {
    "garbage bytes": None,
    "truncated": None,
    "empty file": None,
    "plain safetensors": None,
    "no architecture": _set(["architecture"], KeyError),
    "architecture a string": _set(["architecture"], "Linear"),
    "class outside xnn": _set(["architecture", "modules", LINEAR, "class"], "os.system"),
    "negative width": _set(["architecture", "modules", LINEAR, "arguments", "in_features"], -1),
    "width a string": _set(["architecture", "modules", LINEAR, "arguments", "out_features"],
                           "3"),
    "zero eps": _set(["architecture", "modules", BATCHNORM, "arguments", "eps"], 0.0),
    "training a string": _set(["architecture", "modules", BATCHNORM, "training"],
                              "yes"),
    "root out of range": _set(["architecture", "root"], 7),
    "layers not a list": _set(["architecture", "modules", ROOT, "arguments", "layers"], 3),
    "unknown buffer": _set(["architecture", "modules", BATCHNORM, "buffers", "nope"],
                           "1.running_mean"),
    "future version": _set(["format_version"], "99"),
    "not xnn": _set(["format"], "other"),
    "weight of the wrong shape": lambda t, m: t.__setitem__("0.weight", np.ones((5, 5))),
    "weight missing": lambda t, m: t.pop("0.weight"),
    "buffer of the wrong shape": lambda t, m: t.__setitem__("1.num_batches_tracked", np.ones(3)),
    "unknown optimizer": _set(["optimizer", "class"], "Nope"),
    "steps not a number": _set(["optimizer", "steps"], "x"),
    "no rng": _set(["rng"], KeyError),
    "rng of another generator": _set(["rng"], {"bit_generator": "MT19937"}),
    "no optimizer hyperparameters": _set(["optimizer", "hyperparameters"], KeyError),
    "no optimizer state": _set(["optimizer", "state"], KeyError),
    "negative lr": _set(["optimizer", "hyperparameters", "lr"], -1.0),
    "state tensor missing": _set(["optimizer", "state", "exp_avg", 0],
                                 {"tensor": "optimizer/nope"}),
    "weights stored as int64":
        lambda t, m: t.__setitem__("0.weight", np.ones((2, 3), np.int64)),
}


@pytest.mark.parametrize("corrupt", list(CORRUPT_CHECKPOINTS))
def test_corrupt_checkpoint_raises_checkpointerror(tmp_path, corrupt):
    from safetensors.numpy import save_file

    _, _, path, good = _saved(tmp_path)
    bad = tmp_path / "bad.safetensors"
    change = CORRUPT_CHECKPOINTS[corrupt]
    if corrupt == "garbage bytes":
        bad.write_bytes(b"not a checkpoint at all")
    elif corrupt == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif corrupt == "empty file":
        bad.write_bytes(b"")
    elif corrupt == "plain safetensors":
        save_file({"a": np.ones(3)}, bad)
    else:
        _rewrite(path, bad, change)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        xnn.load(bad)


@pytest.mark.parametrize("field, value", [(6, 64), (10, 99), (8, 1)],
                         ids=["version needed", "compression method", "encrypted flag"])
def test_01_checkpoint_with_damaged_zip_headers_raises_checkpointerror(tmp_path, field, value):
    """One byte of a central-directory header (found by its PK\\1\\2 signature) of a file
    written by xnn 0.1 changed."""
    raw = bytearray((pathlib.Path(__file__).parent / "data" / "v01_checkpoint.npz").read_bytes())
    raw[raw.find(b"PK\x01\x02") + field] = value
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="model.npz"):
        xnn.load(path)


# --- nothing lost or half-written: fit -------------------------------------------------------

def _fit_setup():
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(6, 3)), rng.normal(size=(6, 2))


def _bad_at(a, row, value=np.nan):
    a = a.copy()
    a[row, 0] = value
    return a


BAD_FITS = {
    "NaN in X": lambda X, y: dict(X=_bad_at(X, 3)),
    "Inf in y": lambda X, y: dict(y=_bad_at(y, 0, -np.inf)),
    "rows differ": lambda X, y: dict(y=y[:5]),
    "X too narrow": lambda X, y: dict(X=X[:, :2]),
    "y of the wrong width": lambda X, y: dict(y=np.ones((6, 3))),
    "NaN in validation y": lambda X, y: dict(validation_data=(X, _bad_at(y, 1))),
    "validation_data of three": lambda X, y: dict(validation_data=(X, y, y)),
    # refused before training, not by the loss after the first epoch
    "validation y of the wrong width": lambda X, y: dict(validation_data=(X, np.ones((6, 3)))),
    "validation X too narrow": lambda X, y: dict(validation_data=(X[:, :2], y)),
    "validation labels for value targets": lambda X, y: dict(
        validation_data=(X, np.zeros(6, dtype=np.int64))),
    "validation_split leaving nothing": lambda X, y: dict(validation_split=0.99),
    "both validations": lambda X, y: dict(validation_split=0.5, validation_data=(X, y)),
    "unknown metric": lambda X, y: dict(metrics=["nope"]),
    "epochs 0": lambda X, y: dict(epochs=0),
    "batch_size 2.5": lambda X, y: dict(batch_size=2.5),
    "loss not callable": lambda X, y: dict(loss="mse"),
    "optimizer without step": lambda X, y: dict(optimizer=None),
}


@pytest.mark.parametrize("case", list(BAD_FITS))
def test_fit_that_refuses_its_input_leaves_the_model_unchanged(backend, case):
    model, X, y = _fit_setup()
    before = host_state(model)
    kwargs = dict(X=X, y=y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(), lr=0.5),
                  epochs=2, batch_size=2, progress=False)
    kwargs.update(BAD_FITS[case](X, y))
    with pytest.raises((TypeError, ValueError), match="fit|Linear|MSELoss|metric"):
        xnn.fit(model, kwargs.pop("X"), kwargs.pop("y"), **kwargs)
    assert_state(model, before)


def test_fit_whose_loss_refuses_the_target_leaves_batchnorm_statistics_unchanged(backend):
    model = _bn_model()
    before = host_state(model)
    with pytest.raises(ValueError, match="MSELoss"):
        xnn.fit(model, np.ones((4, 2)), np.ones((4, 5)), loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters()), epochs=1, progress=False)
    assert_state(model, before)


def test_fit_with_an_out_of_range_label_in_a_later_batch_leaves_the_model_unchanged(backend):
    xnn.seed(0)
    model = nn.Linear(3, 2)
    before = host_state(model)
    labels = np.array([0, 1, 0, 1, 0, 5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        xnn.fit(model, np.ones((6, 3)), labels, loss=losses.CrossEntropyLoss(),
                optimizer=optim.SGD(model.parameters(), lr=0.5), epochs=1, batch_size=2,
                shuffle=False, progress=False)
    assert_state(model, before)


def test_fit_refuses_a_scheduler_without_step_before_training(backend):
    model, X, y = _fit_setup()
    before = host_state(model)
    with pytest.raises(TypeError, match="fit: scheduler"):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=1, scheduler=3, progress=False)
    assert_state(model, before)


def test_fit_on_zero_samples_raises_a_named_valueerror(backend):
    model, _, _ = _fit_setup()
    with pytest.raises(ValueError, match="fit"):
        xnn.fit(model, np.ones((0, 3)), np.ones((0, 2)), loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters()), epochs=1, progress=False)


@pytest.mark.parametrize("entry", ["fit", "evaluate"])
def test_fit_and_evaluate_refuse_a_non_module_with_typeerror(entry):
    opt = optim.SGD(nn.Linear(3, 2).parameters())
    with pytest.raises(TypeError, match=entry):
        if entry == "fit":
            xnn.fit(None, np.ones((2, 3)), np.ones((2, 2)), loss=losses.MSELoss(), optimizer=opt,
                    epochs=1)
        else:
            xnn.evaluate(None, np.ones((2, 3)), np.ones((2, 2)), loss=losses.MSELoss())


@pytest.mark.parametrize("case", ["X None", "X ragged", "X text", "evaluate loss None"])
def test_fit_and_evaluate_name_themselves_when_data_cannot_be_used(backend, case):
    model, X, y = _fit_setup()
    with pytest.raises((TypeError, ValueError), match="fit|evaluate"):
        if case == "evaluate loss None":
            xnn.evaluate(model, X, y, loss=None)
        else:
            bad = {"X None": None, "X ragged": [[1.0, 2.0, 3.0], [1.0]], "X text": "abc"}[case]
            xnn.fit(model, bad, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                    epochs=1, progress=False)


# --- messages that name their owner ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["Linear", "BatchNorm1d", "LayerNorm"])
def test_layer_given_a_list_names_itself_and_says_array(kind):
    layer = MODELS[kind]()
    with pytest.raises(TypeError) as info:
        layer([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert kind in str(info.value) and "different backends" not in str(info.value)


@pytest.mark.parametrize("layer", [nn.Softmax, nn.LogSoftmax])
def test_softmax_over_an_empty_axis_returns_empty_or_names_itself(backend, layer):
    x = xnn.asarray(np.zeros((2, 0)), dtype="float32")
    try:
        y = layer()(x)
    except ValueError as err:
        assert layer.__name__ in str(err)
    else:
        assert tuple(y.shape) == (2, 0)


@pytest.mark.parametrize("target", ["labels", "probabilities"])
def test_cross_entropy_with_zero_classes_raises_a_named_valueerror(backend, target):
    logits = xnn.asarray(np.zeros((0, 0) if target == "labels" else (2, 0)), dtype="float32")
    t = (xnn.asarray(np.zeros(0, np.int64)) if target == "labels"
         else xnn.asarray(np.zeros((2, 0)), dtype="float32"))
    with pytest.raises(ValueError, match="CrossEntropyLoss"):
        losses.CrossEntropyLoss()(logits, t)


@pytest.mark.parametrize("metric", ["accuracy", "binary_accuracy", "r2_score"])
def test_metrics_refuse_integer_predictions_with_a_named_typeerror(backend, metric):
    pred = xnn.asarray(np.ones((3, 2), np.int64))
    with pytest.raises(TypeError, match=metric):
        getattr(metrics, metric)(pred, pred)


@pytest.mark.parametrize("shape", [(), (0,), (0, 3)])
def test_r2_score_on_no_samples_raises_a_named_valueerror(backend, shape):
    x = xnn.asarray(np.ones(shape), dtype="float32")
    with pytest.raises(ValueError, match="r2_score"):
        metrics.r2_score(x, x)


CM_CASES = {
    "label above range": (np.zeros((4, 3)), [0, 1, 2, 5], 3),
    "negative label": (np.zeros((4, 3)), [0, 1, 2, -1], 3),
    "num_classes 0": (np.zeros((4, 3)), [0, 0, 0, 0], 0),
    "num_classes 2.5": (np.zeros((4, 3)), [0, 0, 1, 1], 2.5),
    "0-d scores": (np.zeros(()), 0, 3),
    "rows differ": (np.zeros((4, 3)), [0, 1, 2], 3),
}


@pytest.mark.parametrize("case", list(CM_CASES))
def test_confusion_matrix_refuses_what_it_cannot_count(backend, case):
    scores, labels, k = CM_CASES[case]
    with pytest.raises((TypeError, ValueError), match="confusion_matrix"):
        metrics.confusion_matrix(xnn.asarray(scores, dtype="float32"),
                                 xnn.asarray(np.asarray(labels, np.int64)), k)


def test_accuracy_on_scores_of_zero_classes_names_itself(backend):
    scores = xnn.asarray(np.zeros((2, 0)), dtype="float32")
    with pytest.raises(ValueError, match="accuracy"):
        metrics.accuracy(scores, xnn.asarray(np.zeros(2, np.int64)))


def test_get_metric_of_a_list_names_itself():
    with pytest.raises(TypeError, match="get_metric|metric"):
        metrics.get_metric(["mse"])


@pytest.mark.parametrize("entry", ["train_test_split", "batches", "transform", "StandardScaler.fit",
                                   "one_hot"])
def test_data_functions_given_text_raise_a_named_typeerror(entry):
    # lists of numbers are data, as fit takes them (issue 25); text is not, as fit refuses it
    X, y = [["a", "b"], ["c", "d"], ["e", "f"]], ["x", "y", "z"]
    with pytest.raises(TypeError, match=rf"{entry}: \w+ cannot be used as data"):
        if entry == "train_test_split":
            xnn.data.train_test_split(X, y)
        elif entry == "batches":
            list(xnn.data.batches(X, y, 2))
        elif entry == "transform":
            xnn.data.StandardScaler().fit(xnn.asarray([[1.0, 2.0]])).transform(X)
        elif entry == "StandardScaler.fit":
            xnn.data.StandardScaler().fit(X)
        else:
            xnn.data.one_hot(y, 3)


def test_batches_of_zero_rows_yield_nothing(backend):
    X = xnn.asarray(np.zeros((0, 2)), dtype="float32")
    assert list(xnn.data.batches(X, X, shuffle=False)) == []


@pytest.mark.parametrize("n, test_size", [(4, 0.99), (1, 0.5), (0, 0.5)])
def test_train_test_split_never_returns_an_empty_part(backend, n, test_size):
    X = xnn.asarray(np.ones((n, 2)), dtype="float32")
    with pytest.raises(ValueError, match="train_test_split"):
        xnn.data.train_test_split(X, X[:, 0], test_size=test_size, seed=0)


@pytest.mark.parametrize("entry", ["train_test_split", "batches",
                                   "fit"])
@pytest.mark.parametrize("seed", [-1, "a"])
def test_a_bad_seed_is_refused_naming_the_function(entry, seed):
    X, y = xnn.asarray(np.ones((4, 3)), dtype="float32"), xnn.asarray(np.ones((4, 2)), dtype="float32")
    with pytest.raises((TypeError, ValueError), match=entry):
        if entry == "train_test_split":
            xnn.data.train_test_split(X, y, seed=seed)
        elif entry == "batches":
            list(xnn.data.batches(X, y, 2, seed=seed))
        else:
            model = nn.Linear(3, 2)
            xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                    epochs=1, batch_size=2, seed=seed, progress=False)


def test_standard_scaler_used_before_fit_raises_a_documented_type():
    with pytest.raises(ValueError, match="StandardScaler.transform"):
        xnn.data.StandardScaler().transform(xnn.asarray(np.ones((2, 2)), dtype="float32"))


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
def test_standard_scaler_refuses_integer_data_to_transform(backend_name):
    with xnn.use_backend(backend_name):
        scaler = xnn.data.StandardScaler().fit(xnn.asarray(np.ones((3, 2)), dtype="float32"))
        with pytest.raises(TypeError, match="StandardScaler.transform"):
            scaler.transform(xnn.asarray(np.ones((3, 2), np.int64)))


@pytest.mark.parametrize("label", [3, -1])
def test_one_hot_refuses_labels_out_of_range(backend, label):
    with pytest.raises(ValueError, match=r"one_hot.*\[0, 3\)"):
        xnn.data.one_hot(xnn.asarray(np.array([0, label], np.int64)), 3)


@pytest.mark.parametrize("device", ["nope", 3, "device1"])
def test_torch_backend_with_a_bad_device_raises_a_documented_type(device):
    pytest.importorskip("torch")
    with pytest.raises((ValueError, BackendUnavailableError), match="torch"):
        xnn.set_backend("torch", device)


def test_asarray_with_a_backend_name():
    try:
        x = xnn.asarray([1.0], backend="numpy")
    except TypeError as err:
        assert "backend" in str(err)
    else:
        assert isinstance(x, np.ndarray)


@pytest.mark.parametrize("value", ["abc", ["a", "b"], np.array(["2020-01-01"], "datetime64[D]")],
                         ids=["str", "str-list", "datetime"])
def test_asarray_refuses_non_numeric_data_on_every_backend(backend, value):
    with pytest.raises(TypeError, match="asarray"):
        xnn.asarray(value)


@pytest.mark.parametrize("value", [None, {"a": 1}, object()], ids=["None", "dict", "object"])
def test_to_numpy_refuses_what_is_not_numeric_data(value):
    with pytest.raises(TypeError, match="to_numpy"):
        xnn.to_numpy(value)


# --- documented behaviour around the same entry points (passing) -----------------------------

def test_backend_selection_errors_are_documented_types():
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        xnn.set_backend("nope")
    with pytest.raises(TypeError, match="backend name must be a str"):
        xnn.set_backend(3)
    with pytest.raises(ValueError, match="numpy runs on device 'cpu' only"):
        xnn.set_backend("numpy", "cuda")
    with pytest.raises(ValueError, match="array_api_strict has devices"):
        xnn.set_backend("array_api_strict", "device9")
    if "cupy" not in xnn.available_backends():  # no cupy, or no GPU, on this machine
        with pytest.raises(BackendUnavailableError, match="cupy"):
            xnn.set_backend("cupy")


def test_load_onto_an_unknown_backend_is_a_valueerror(tmp_path):
    _, _, path, _ = _saved(tmp_path)
    with pytest.raises(ValueError, match="unknown backend"):
        xnn.load(path, backend="nope")


def test_failed_model_call_on_another_device_leaves_batchnorm_statistics():
    with xnn.use_backend("array_api_strict"):
        model = _bn_model()
    before = host_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="device1"):
            model(_data(("array_api_strict", "device1"), (4, 2)))
    assert_state(model, before)
