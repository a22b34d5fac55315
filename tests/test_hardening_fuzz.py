"""Random shapes (rank 0-3, sides 0-5), dtypes (bool, int32, int64, float32, float64), values
(NaN, +-Inf, huge, tiny) and non-arrays thrown at every public entry point, on every backend.

Each call must either work, with a sane result (the right shape and dtype, on the input's
backend; finite where the inputs were finite and moderate), or raise a documented exception
type (TypeError, ValueError, KeyError for state dicts, CheckpointError, BackendUnavailableError)
whose message names the entry point. An IndexError, AttributeError, ZeroDivisionError or
RuntimeError from inside a library fails the test.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xnn
from xnn import losses, metrics, nn, optim
from xnn.backend import (BACKEND_NAMES, BackendUnavailableError, array_namespace, backend_of,
                         dtype_name)
from xnn.io import CheckpointError

import catalogue
from fuzzing import FUZZ, attempt, fewer
from model_state import assert_state, host_state
from xnn.optim import clip, schedules

FEW = fewer(3 / 5)  # the slow entry points (fit, checkpoints)

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
FLOATS = ["float32", "float64"]
SPECIAL = [0.0, -0.0, 0.5, -1.0, 2.0, 1e3, -1e3, 1e-30, 1e30, -1e30, 3e38, 1e300, -1e300,
           math.nan, math.inf, -math.inf]
MODERATE = 1e3  # inputs below this in magnitude must give finite results
JUNK = [None, 1.5, 7, "abc", (1, 2), {"a": 1}, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]


# --- strategies ----------------------------------------------------------------------------------

@st.composite
def host_arrays(draw, dtypes=DTYPES, shape=None, min_rank=0, max_rank=3, special=True,
                low=-3, high=6):
    """A NumPy array: any rank and sides 0-5 unless ``shape`` is given; NaN, Inf, huge values."""
    if shape is None:
        rank = draw(st.integers(min_rank, max_rank))
        shape = tuple(draw(st.lists(st.integers(0, 5), min_size=rank, max_size=rank)))
    dtype = draw(st.sampled_from(dtypes))
    size = math.prod(shape)
    if dtype == "bool":
        elements = st.booleans()
    elif dtype.startswith("int"):
        info = np.iinfo(dtype)
        elements = st.integers(low, high)
        if special:
            elements = st.one_of(elements, st.sampled_from([int(info.min), int(info.max)]))
    else:
        elements = st.floats(-10, 10)
        if special:
            elements = st.one_of(elements, st.sampled_from(SPECIAL))
    values = draw(st.lists(elements, min_size=size, max_size=size))
    with np.errstate(all="ignore"):  # 1e300 becomes inf in float32, as it would for the user
        return np.array(values, dtype="float64" if dtype.startswith("float") else dtype
                        ).astype(dtype).reshape(shape)


def anything(well_formed=None):
    """Mostly ``well_formed`` (when given), else arrays of any kind, else non-arrays."""
    options = [host_arrays(), st.sampled_from(JUNK)]
    if well_formed is not None:
        options = [well_formed, well_formed, *options]
    return st.one_of(*options)


def on_backend(value: Any) -> Any:
    """A host array moved to the active backend with its own dtype; anything else as it is."""
    if isinstance(value, np.ndarray):
        return xnn.asarray(value, dtype=value.dtype.name)
    return value


# --- what an outcome may be ----------------------------------------------------------------------


def is_host_array(value: Any) -> bool:
    return isinstance(value, np.ndarray)


def is_float(value: Any) -> bool:
    return is_host_array(value) and value.dtype.kind == "f"


def moderate(*values: Any) -> bool:
    """Every value is a numeric array whose entries are finite and at most MODERATE in size."""
    for v in values:
        if not is_host_array(v):
            return False
        with np.errstate(all="ignore"):
            a = v.astype("float64")
        if not (np.isfinite(a).all() and (np.abs(a) <= MODERATE).all()):
            return False
    return True


def finite(x: Any) -> bool:
    return bool(np.isfinite(xnn.to_numpy(x)).all())


def same_place(y: Any, backend: xnn.Backend) -> None:
    assert array_namespace(y) is backend.xp
    assert str(backend_of(y).device) == str(backend.device)


# --- layers ------------------------------------------------------------------------------------

SAME = "same"


def layer_cases() -> dict[str, tuple[Callable[[], nn.Module], str]]:
    """name -> (maker, output shape): every public layer class (3 features in and out, so the
    shape is the input's), and settings that take other code paths."""
    return {**{name: (make, SAME) for name, make in catalogue.layers(3).items()}, **{
        "LeakyReLU(0.2)": (lambda: nn.LeakyReLU(0.2), SAME),
        "Softmax(axis=0)": (lambda: nn.Softmax(axis=0), SAME),
        "Dropout(eval)": (lambda: nn.Dropout(0.5).eval(), SAME),
        "Flatten": (nn.Flatten, "flatten"),
        "Linear(3, 2)": (lambda: nn.Linear(3, 2), "out2"),
        "Linear(bias=False)": (lambda: nn.Linear(3, 2, bias=False), "out2"),
        "BatchNorm1d(eval)": (lambda: nn.BatchNorm1d(3).eval(), SAME),
        "BatchNorm1d(bare)": (lambda: nn.BatchNorm1d(3, affine=False, track_running_stats=False),
                              SAME),
        "LayerNorm(bare)": (lambda: nn.LayerNorm(3, elementwise_affine=False), SAME),
        "Sequential(Linear, ReLU, Dropout, Linear)": (
            lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 2)),
            "out2"),
    }}


LAYERS = layer_cases()


def _expected_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind == SAME:
        return shape
    if kind == "flatten":
        return (shape[0], math.prod(shape[1:]))
    return (shape[0], 2)


@pytest.mark.parametrize("name", list(LAYERS))
@FEW
@given(x=anything(st.builds(lambda b: (b, 3), st.integers(0, 5)).flatmap(
    lambda shape: host_arrays(dtypes=["float32"], shape=shape))))
def test_layer_forward_and_backprop_work_or_refuse_clearly(backend, name, x):
    make, kind = LAYERS[name]
    xnn.seed(0)
    layer = make()
    owners = sorted({type(m).__name__ for m in layer.modules()})
    xb = on_backend(x)
    ok, out = attempt(lambda: layer.forward(xb), owners)
    if not ok:
        return
    y, backprop = out
    same_place(y, backend)
    assert tuple(y.shape) == _expected_shape(kind, x.shape)
    assert y.dtype == xb.dtype
    ok, dx = attempt(lambda: backprop(backend.xp.ones_like(y)), owners)
    assert ok, f"backprop of a successful forward failed: {dx}"
    assert tuple(dx.shape) == x.shape and dx.dtype == xb.dtype
    if moderate(x):
        assert finite(y) and finite(dx), f"{name} of finite input {x!r} gave {y!r} / {dx!r}"


# --- losses ------------------------------------------------------------------------------------

def loss_cases(classwise: bool) -> dict[str, Callable[[], losses.Loss]]:
    """name -> maker: every public loss class with its defaults, those taking labels (classwise)
    or the others, and settings that take other code paths."""
    found = {name: cls for name, cls in catalogue.loss_classes().items()
             if (catalogue.target_of(cls())[0] == "labels") == classwise}
    settings = {
        "L1Loss(sum)": lambda: losses.L1Loss(reduction="sum"),
        "SmoothL1Loss(beta=0)": lambda: losses.SmoothL1Loss(beta=0.0),
        "HuberLoss(none)": lambda: losses.HuberLoss(reduction="none", delta=0.5),
    } if not classwise else {
        "CrossEntropyLoss(smoothing, none)": lambda: losses.CrossEntropyLoss(label_smoothing=0.1,
                                                                            reduction="none"),
        "NLLLoss(sum, ignore 1)": lambda: losses.NLLLoss(reduction="sum", ignore_index=1),
    }
    return {**found, **settings}


ELEMENTWISE, CLASSWISE = loss_cases(classwise=False), loss_cases(classwise=True)


@st.composite
def elementwise_pair(draw):
    shape = draw(host_arrays(dtypes=["float32"], max_rank=3)).shape
    dtype = draw(st.sampled_from(FLOATS))
    return (draw(host_arrays(dtypes=[dtype], shape=shape)),
            draw(host_arrays(dtypes=[dtype], shape=shape)))


@st.composite
def class_pair(draw):
    batch, classes = draw(st.integers(0, 5)), draw(st.integers(0, 4))
    dtype = draw(st.sampled_from(FLOATS))
    scores = draw(host_arrays(dtypes=[dtype], shape=(batch, classes)))
    if draw(st.booleans()):
        target = draw(host_arrays(dtypes=["int64", "int32"], shape=(batch,), special=False,
                                  low=-1, high=classes))
    else:
        target = draw(host_arrays(dtypes=[dtype], shape=(batch, classes), special=False))
    return scores, target


def loss_inputs(pair):
    return st.one_of(pair, pair, st.tuples(host_arrays(), host_arrays()),
                     st.tuples(anything(), anything()))


def _check_loss(backend, name, loss, pred, target, classwise):
    p, t = on_backend(pred), on_backend(target)
    ok, out = attempt(lambda: loss(p, t), name.split("(")[0])
    if not ok:
        return
    value, grad = out
    same_place(grad, backend)
    assert tuple(grad.shape) == pred.shape and grad.dtype == p.dtype
    assert value.dtype == p.dtype
    labels = classwise and target.ndim == 1
    if loss.reduction != "none":
        assert tuple(value.shape) == ()
    else:
        assert tuple(value.shape) == (pred.shape if not classwise else pred.shape[:1])
    ignored = labels and (target == getattr(loss, "ignore_index", -100)).all()
    if moderate(pred, target) and pred.size > 0 and not ignored:
        assert finite(value) and finite(grad), f"{name}({pred!r}, {target!r}) = {value!r}, {grad!r}"


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@FUZZ
@given(pair=loss_inputs(elementwise_pair()))
def test_elementwise_loss_works_or_refuses_clearly(backend, name, pair):
    _check_loss(backend, name, ELEMENTWISE[name](), *pair, classwise=False)


@pytest.mark.parametrize("name", list(CLASSWISE))
@FUZZ
@given(pair=loss_inputs(class_pair()))
def test_class_loss_works_or_refuses_clearly(backend, name, pair):
    _check_loss(backend, name, CLASSWISE[name](), *pair, classwise=True)


# --- metrics -----------------------------------------------------------------------------------

@st.composite
def metric_pair(draw, name):
    if name == "accuracy":
        pred, target = draw(class_pair())
        if target.ndim == 1:
            target = np.clip(target, 0, None)
        return pred, target
    return draw(elementwise_pair())


@pytest.mark.parametrize("name", ["accuracy", "binary_accuracy", "mse", "mae", "r2_score"])
@FUZZ
@given(data=st.data())
def test_metric_works_or_refuses_clearly(backend, name, data):
    pred, target = data.draw(st.one_of(metric_pair(name), metric_pair(name),
                                       st.tuples(host_arrays(), host_arrays()),
                                       st.tuples(anything(), anything())))
    p, t = on_backend(pred), on_backend(target)
    ok, value = attempt(lambda: getattr(metrics, name)(p, t), name)
    if not ok:
        return
    assert tuple(value.shape) == ()
    if moderate(pred, target) and pred.size > 0:
        v = float(xnn.to_numpy(value))
        assert math.isfinite(v)
        if name in ("accuracy", "binary_accuracy"):
            assert 0 <= v <= 1
        elif name in ("mse", "mae"):
            assert v >= 0
        else:
            assert v <= 1 + 1e-6


@FUZZ
@given(batch=st.integers(0, 5), classes=st.integers(1, 4), scores=st.booleans(), data=st.data())
def test_confusion_matrix_counts_every_sample(backend, batch, classes, scores, data):
    """Well-formed input only: everything else is pinned as [confusion-matrix-checks]."""
    labels = data.draw(host_arrays(dtypes=["int64", "int32"], shape=(batch,), special=False,
                                   low=0, high=classes - 1))
    pred = (data.draw(host_arrays(dtypes=FLOATS, shape=(batch, classes))) if scores else
            data.draw(host_arrays(dtypes=["int64"], shape=(batch,), special=False, low=0,
                                  high=classes - 1)))
    m = metrics.confusion_matrix(on_backend(pred), on_backend(labels), classes)
    host = xnn.to_numpy(m)
    assert host.shape == (classes, classes) and host.dtype.kind == "i"
    assert host.sum() == batch
    np.testing.assert_array_equal(host.sum(axis=1), np.bincount(labels, minlength=classes))


@FUZZ
@given(metric=st.one_of(st.sampled_from(["accuracy", "acc", "binary_accuracy", "mse", "mae",
                                         "r2", "r2_score", "nope", "", "MSE", None, 3]),
                        st.just(metrics.mse), st.just(lambda p, t: p)))
def test_get_metric_gives_a_callable_or_a_named_error(metric):
    ok, out = attempt(lambda: metrics.get_metric(metric), "metric")
    if ok:
        name, fn = out
        assert isinstance(name, str) and callable(fn)


# --- data ----------------------------------------------------------------------------------------

@st.composite
def rows_pair(draw):
    """X (n, ...) and y (n, ...) with the same number of rows."""
    n = draw(st.integers(0, 5))
    x_tail = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    y_tail = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    return (draw(host_arrays(shape=(n, *x_tail))), draw(host_arrays(shape=(n, *y_tail))))


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        a, b, equal_nan=a.dtype.kind == "f")


TEST_SIZES = st.one_of(st.floats(0, 1), st.integers(-1, 7),
                       st.sampled_from([None, "0.5", math.nan, True, 0.0, 1.0]))


@FUZZ
@given(pair=st.one_of(rows_pair(), rows_pair(), st.tuples(anything(), anything())),
       test_size=TEST_SIZES, shuffle=st.booleans(), seed=st.one_of(st.none(), st.integers(0, 99)))
def test_train_test_split_works_or_refuses_clearly(backend, pair, test_size, shuffle, seed):
    X, y = pair
    ok, out = attempt(lambda: xnn.data.train_test_split(on_backend(X), on_backend(y),
                                                        test_size, seed=seed, shuffle=shuffle),
                      "train_test_split")
    if not ok:
        return
    X_tr, X_te, y_tr, y_te = (xnn.to_numpy(a) for a in out)
    arrays = is_host_array(X) and is_host_array(y)
    if arrays:  # arrays keep their dtype; lists of numbers are data, as fit takes them
        assert X_tr.dtype == X.dtype and y_te.dtype == y.dtype
    X, y = np.asarray(X), np.asarray(y)
    same = _equal if arrays else np.array_equal
    assert X_tr.shape[0] > 0 and X_te.shape[0] > 0
    assert X_tr.shape[0] + X_te.shape[0] == X.shape[0] and X_tr.shape[1:] == X.shape[1:]
    assert (y_tr.shape[0], y_te.shape[0]) == (X_tr.shape[0], X_te.shape[0])
    if not shuffle:
        cut = X_tr.shape[0]
        assert same(X_tr, X[:cut]) and same(X_te, X[cut:]) and same(y_te, y[cut:])


@FUZZ
@given(X=anything(st.tuples(st.integers(1, 5), st.integers(1, 3)).flatmap(
           lambda s: host_arrays(dtypes=FLOATS, shape=s))),
       other=st.one_of(st.none(), anything()))
def test_standard_scaler_works_or_refuses_clearly(backend, X, other):
    """fit on X, then transform X (or ``other``) and invert it."""
    Z = X if other is None else other
    scaler = xnn.data.StandardScaler()
    ok, _ = attempt(lambda: scaler.fit(on_backend(X)), "StandardScaler.fit")
    if not ok:
        return
    assert tuple(scaler.mean.shape) == tuple(scaler.scale.shape) == (np.shape(X)[1],)
    ok, z = attempt(lambda: scaler.transform(on_backend(Z)), "StandardScaler.transform")
    if not ok:
        return
    assert tuple(z.shape) == np.shape(Z)
    ok, back = attempt(lambda: xnn.to_numpy(scaler.inverse_transform(z)),
                       "StandardScaler.inverse_transform")
    assert ok, back
    if moderate(X, Z):
        assert finite(z)
        tolerance = 1e-3 * (1 + np.abs(X).max(initial=0) + np.abs(Z).max(initial=0))
        np.testing.assert_allclose(back, Z, rtol=1e-4, atol=tolerance)


@FUZZ
@given(pair=st.one_of(rows_pair(), rows_pair(), st.tuples(anything(), anything())),
       batch_size=st.one_of(st.none(), st.integers(-1, 6), st.sampled_from([2.5, "2", True])),
       shuffle=st.booleans())
def test_batches_cover_every_row_once_or_refuse_clearly(backend, pair, batch_size, shuffle):
    X, y = pair
    ok, out = attempt(lambda: list(xnn.data.batches(on_backend(X), on_backend(y), batch_size,
                                                    shuffle=shuffle, seed=0)), "batches")
    if not ok:
        return
    same = _equal if is_host_array(X) else np.array_equal  # lists: data, as fit takes them
    X = np.asarray(X)
    sizes = [xb.shape[0] for xb, _ in out]
    assert sum(sizes) == X.shape[0] and all(xb.shape[0] == yb.shape[0] for xb, yb in out)
    if batch_size is not None:
        assert all(0 < s <= batch_size for s in sizes)
    if not shuffle and out:
        assert same(np.concatenate([xnn.to_numpy(xb) for xb, _ in out]), X)


@FUZZ
@given(labels=anything(host_arrays(dtypes=["int64", "int32"], max_rank=1, min_rank=1,
                                   special=False, low=0, high=3)),
       classes=st.one_of(st.integers(-1, 5), st.sampled_from([2.5, "3", True, None])),
       dtype=st.sampled_from([None, "float32", "float64", "int64", "bool"]))
def test_one_hot_works_or_refuses_clearly(backend, labels, classes, dtype):
    ok, out = attempt(lambda: xnn.data.one_hot(on_backend(labels), classes, dtype), "one_hot")
    if not ok:
        return
    host = xnn.to_numpy(out)
    assert host.shape == (np.shape(labels)[0], classes)  # lists: data, as fit takes them
    assert host.dtype.name == (dtype or xnn.get_default_dtype())
    assert (host.astype(int).sum(axis=1) == 1).all()


# --- fit and evaluate ----------------------------------------------------------------------------

@st.composite
def regression_data(draw):
    n = draw(st.integers(0, 5))
    X = draw(st.one_of(host_arrays(shape=(n, 3)), host_arrays(shape=(n, 3)), host_arrays()))
    y = draw(st.one_of(host_arrays(dtypes=FLOATS, shape=(n, 2)), host_arrays()))
    return X, y


@st.composite
def class_data(draw):
    n = draw(st.integers(0, 5))
    X = draw(st.one_of(host_arrays(shape=(n, 3)), host_arrays()))
    y = draw(st.one_of(host_arrays(dtypes=["int64", "int32"], shape=(n,), low=-1, high=3),
                       host_arrays()))
    return X, y


@pytest.mark.parametrize("task", ["regression", "classes"])
@FEW
@given(data=st.data(), epochs=st.integers(1, 2), batch_size=st.sampled_from([None, 1, 2, 4]),
       validation=st.sampled_from([None, "split", "data"]))
def test_fit_trains_or_refuses_before_touching_the_model(backend, task, data, epochs,
                                                         batch_size, validation):
    X, y = data.draw(regression_data() if task == "regression" else class_data())
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2 if task == "regression" else 3))
    loss = losses.MSELoss() if task == "regression" else losses.CrossEntropyLoss()
    before = host_state(model)
    kwargs = {"split": {"validation_split": 0.4}, "data": {"validation_data": (X, y)}}.get(
        validation, {})
    ok, history = attempt(
        lambda: xnn.fit(model, X, y, loss=loss, optimizer=optim.SGD(model.parameters(), lr=0.01),
                        epochs=epochs, batch_size=batch_size, seed=0, progress=False, **kwargs),
        ["fit", "Linear", "Sequential", type(loss).__name__])
    if not ok:
        assert_state(model, before)
        return
    assert len(history["loss"]) == epochs
    same_place(model.state_dict()["0.weight"], backend)
    if moderate(X, y):
        assert all(math.isfinite(v) for v in history["loss"]), history.history


@FUZZ
@given(pair=st.one_of(regression_data(), st.tuples(host_arrays(), host_arrays())),
       metric_names=st.sampled_from([(), ("mae",), ("mse", "mae")]))
def test_evaluate_reports_or_refuses_clearly(backend, pair, metric_names):
    X, y = pair
    xnn.seed(0)
    model = nn.Linear(3, 2)
    ok, logs = attempt(lambda: xnn.evaluate(model, X, y, loss=losses.MSELoss(),
                                            metrics=metric_names),
                       ["evaluate", "Linear", "MSELoss", *metric_names])
    if not ok:
        return
    assert set(logs) == {"loss", *metric_names} and all(isinstance(v, float) for v in logs.values())
    if moderate(X, y) and X.shape[0] > 0:
        assert all(math.isfinite(v) for v in logs.values())


# --- optimizers, clipping, schedules -----------------------------------------------------------

ODD_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                        st.integers(-2, 2),
                        st.sampled_from([None, "0.1", True, False, (0.9, 0.99), (0.5,),
                                         [0.9, 0.999], np.float32(0.1)]))


def representable(value: Any) -> bool:
    """Not a number, or a number within float32's range (where torch converts it)."""
    return not isinstance(value, numbers.Real) or abs(float(value)) <= float(
        np.finfo("float32").max)


def _grads(params):
    """A grad per parameter: None, one of the right shape and dtype, or any array at all."""
    return st.tuples(*[st.one_of(st.none(), host_arrays(dtypes=[dtype_name(p.dtype)],
                                                        shape=p.shape), host_arrays())
                       for p in params])


def _linear_params():
    xnn.seed(0)
    return nn.Linear(2, 3).parameters()


@pytest.mark.parametrize("cls", list(catalogue.optimizer_classes().values()),
                         ids=lambda c: c.__name__)
@FUZZ
@given(data=st.data())
def test_optimizer_builds_and_steps_or_refuses_clearly(backend, cls, data):
    params = _linear_params()
    changed = data.draw(st.lists(st.sampled_from(cls.hyperparameters), unique=True, max_size=2))
    kwargs = {name: data.draw(ODD_NUMBERS) for name in changed}
    ok, opt = attempt(lambda: cls(params, **kwargs), cls.__name__)
    if not ok:
        return
    assert isinstance(opt.lr, numbers.Real) and opt.lr >= 0  # NaN and negatives refused
    dtypes = [p.dtype for p in params]
    tame = not kwargs  # default hyperparameters and, so far, moderate grads: values stay finite
    for _ in range(2):
        grads = data.draw(_grads(params))
        for p, g in zip(params, grads):
            p.grad = on_backend(g)
        ok, _ = attempt(opt.step, cls.__name__)
        if not ok:
            return
        for p in params:
            same_place(p.value, backend)
        assert [p.shape for p in params] == [(2, 3), (3,)]
        assert [p.dtype for p in params] == dtypes
        tame = tame and all(g is None or moderate(g) for g in grads)
        if tame:
            assert all(finite(p.value) for p in params)
    again = cls(params, **kwargs)
    again.load_state_dict(opt.state_dict())
    assert again.steps == opt.steps


@FUZZ
@given(data=st.data(), max_norm=ODD_NUMBERS, norm_type=st.one_of(
    ODD_NUMBERS, st.sampled_from([math.inf, "inf", 1, 2, 0.5])))
def test_gradient_clipping_works_or_refuses_clearly(backend, data, max_norm, norm_type):
    params = _linear_params()
    grads = data.draw(_grads(params))
    for p, g in zip(params, grads):
        p.grad = on_backend(g)
    ok, total = attempt(lambda: clip.clip_grad_norm(params, max_norm, norm_type),
                        "clip_grad_norm")
    if ok:
        assert tuple(total.shape) == ()
        assert [tuple(p.grad.shape) for p in params if p.grad is not None] == [
            g.shape for g in grads if g is not None]
    ok, _ = attempt(lambda: clip.clip_grad_value(params, max_norm), "clip_grad_value")
    if ok and isinstance(max_norm, (int, float)) and representable(max_norm):
        for p in params:
            if p.grad is not None and p.grad.dtype != bool:
                g = xnn.to_numpy(p.grad)
                # the limit rounds to the grad's dtype: up by a relative ulp, or to a subnormal
                slack = max_norm * 1e-6 + float(np.finfo(g.dtype).smallest_subnormal)
                g = g.astype("float64")
                assert (np.abs(g[~np.isnan(g)]) <= max_norm + slack).all()


SCHEDULES = {
    "StepLR": (schedules.StepLR, ("step_size", "gamma")),
    "ExponentialLR": (schedules.ExponentialLR, ("gamma",)),
    "CosineAnnealingLR": (schedules.CosineAnnealingLR, ("T_max", "eta_min")),
    "LinearWarmup": (schedules.LinearWarmup, ("warmup_steps", "start_factor")),
    "ReduceLROnPlateau": (schedules.ReduceLROnPlateau, ("mode", "factor", "patience", "cooldown")),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
@FUZZ
@given(data=st.data())
def test_schedule_builds_and_steps_or_refuses_clearly(name, data):
    cls, names = SCHEDULES[name]
    opt = optim.SGD(_linear_params(), lr=0.1)
    args = {k: data.draw(st.one_of(ODD_NUMBERS, st.integers(1, 4), st.sampled_from(
        ["min", "max", "x"]))) for k in names}
    ok, schedule = attempt(lambda: cls(opt, **args), name)
    if not ok:
        return
    for epoch in range(3):
        if name == "ReduceLROnPlateau":
            schedule.step(1.0 / (epoch + 1))
        else:
            schedule.step()
        assert isinstance(opt.lr, numbers.Real)


# --- backend: asarray, to_numpy, set_backend ---------------------------------------------------

@FUZZ
@given(host=host_arrays(), dtype=st.sampled_from([None, *DTYPES]), as_list=st.booleans())
def test_asarray_and_to_numpy_round_trip(backend, host, dtype, as_list):
    value = host.tolist() if as_list else host
    ok, x = attempt(lambda: xnn.asarray(value, dtype=dtype), ["asarray", "dtype"])
    assert ok, x
    same_place(x, backend)
    back = xnn.to_numpy(x)
    if not as_list or host.size:
        assert back.shape == host.shape
    made = np.asarray(value).dtype  # Python floats follow xnn's default float dtype
    expected = xnn.get_default_dtype() if made.kind == "f" and as_list else made.name
    assert back.dtype.name == (dtype or expected)
    if back.shape == host.shape and (dtype is None or dtype.startswith("float")):
        with np.errstate(all="ignore"):
            reference = host.astype(back.dtype)
        np.testing.assert_array_equal(back, reference)


@FUZZ
@given(name=st.one_of(st.sampled_from(["numpy", "NumPy ", "array_api_strict", "array-api-strict",
                                       "torch", "cupy", "nope", "", "torch:cpu", "numpy:gpu",
                                       "array_api_strict:device1", "torch:cuda"]),
                      st.none(), st.integers(-1, 2)),
       device=st.sampled_from([None, "cpu", "cuda", "cuda:0", 0, 1, -1, "device1", "device2",
                               "CPU_DEVICE", "nope"]))
def test_set_backend_selects_or_refuses_clearly(name, device):
    before = xnn.get_backend()
    try:
        ok, chosen = attempt(lambda: xnn.set_backend(name, device),
                             ["backend", "device", "numpy", "torch", "cupy", "array_api_strict"],
                             allowed=(TypeError, ValueError, BackendUnavailableError))
        if ok:
            assert chosen.name in BACKEND_NAMES and xnn.get_backend() == chosen
            x = xnn.asarray([1.0, 2.0])
            same_place(x, chosen)
    finally:
        xnn.set_backend(before)


# --- state dicts and checkpoints ---------------------------------------------------------------

def _bn_model():
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model(xnn.asarray(np.random.default_rng(0).normal(size=(5, 2)), dtype="float32"))
    return model


@FUZZ
@given(data=st.data())
def test_load_state_dict_loads_all_or_nothing(backend, data):
    model = _bn_model()
    before = host_state(model)
    state = {k: v + 1 for k, v in before.items()}
    keys = list(state)
    for _ in range(data.draw(st.integers(0, 2))):
        action = data.draw(st.sampled_from(["drop", "add", "replace"]))
        key = data.draw(st.sampled_from(keys))
        if action == "drop":
            state.pop(key, None)
        elif action == "add":
            state[data.draw(st.sampled_from(["extra", 0, "0.weight.x"]))] = np.ones(2)
        else:
            shape = before[key].shape
            state[key] = data.draw(st.one_of(host_arrays(shape=shape), host_arrays(),
                                             st.sampled_from(JUNK)))
    ok, _ = attempt(lambda: model.load_state_dict(state), "load_state_dict",
                    allowed=(KeyError, TypeError, ValueError))
    if not ok:
        assert_state(model, before)
        return
    for name, value in model.state_dict().items():
        same_place(value, backend)
        assert tuple(value.shape) == before[name].shape
        assert xnn.to_numpy(value).dtype == before[name].dtype


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 5),
                              st.floats(allow_nan=True), st.text(max_size=3)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.tuples(inner, inner),
                                            st.dictionaries(st.text(max_size=3), inner,
                                                            max_size=3)),
                    max_leaves=6)
# NumPy scalars are numbers and arrays of numbers are tensors: save takes them
NOT_JSON = st.sampled_from([{1, 2}, object(), b"bytes", {"f": print}, np.array(["text"]),
                            {"a": np.ones(1, complex)}])
ARRAYS = st.sampled_from([np.ones(2), {"a": np.arange(3)}, [np.zeros((2, 0), np.float32)]])


def _comparable(value):
    """``value`` as JSON text, each array written as its dtype, shape and numbers."""
    def array(a):
        return {"dtype": str(a.dtype), "shape": a.shape, "values": a.tolist()}
    return json.dumps(value, default=array)


@FUZZ
@given(extra=st.one_of(st.none(), JSON, NOT_JSON, ARRAYS,
                       st.dictionaries(st.text(max_size=2), st.one_of(NOT_JSON, ARRAYS),
                                       min_size=1, max_size=2)))
def test_save_writes_everything_or_leaves_the_old_file(tmp_path_factory, extra):
    folder = tmp_path_factory.mktemp("ck")
    path = folder / "model.safetensors"
    model = _bn_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    xnn.save(path, model, opt, extra={"old": True})
    previous = path.read_bytes()
    ok, _ = attempt(lambda: xnn.save(path, model, opt, extra=extra), "xnn.save")
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]  # no temporary left
    if not ok:
        assert path.read_bytes() == previous
        return
    assert _comparable(xnn.load(path).extra) == _comparable(extra)


@FEW
@given(data=st.data())
def test_damaged_checkpoint_loads_or_raises_checkpointerror(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("ck")
    path = folder / "model.safetensors"
    model = _bn_model()
    xnn.save(path, model, optim.Adam(model.parameters()))
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    ok, ck = attempt(lambda: xnn.load(path), ["xnn.load", "model.safetensors", "layer class"],
                     allowed=(CheckpointError,))
    if ok:
        assert {k: tuple(v.shape) for k, v in ck.model.state_dict().items()} == {
            k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- the entry points issues 12 and 14 added -----------------------------------------------------

@FUZZ
@given(x=anything(), like=st.one_of(st.none(), host_arrays(dtypes=FLOATS, min_rank=1)),
       ndim=st.one_of(st.none(), st.integers(0, 3)), features=st.one_of(st.none(),
                                                                          st.integers(0, 5)),
       dtype=st.sampled_from(["float", "integral", None, "float64", "int32"]))
def test_expect_returns_the_namespace_or_refuses_naming_the_owner(backend, x, like, ndim,
                                                                  features, dtype):
    x, like = on_backend(x), on_backend(like)
    ok, xp = attempt(lambda: xnn.expect("Probe", x, like=like, ndim=ndim, features=features,
                                        dtype=dtype), "Probe")
    if ok:  # everything asked for holds
        assert xp is array_namespace(x)
        assert ndim is None or x.ndim == ndim
        assert features is None or x.shape[-1] == features
        if dtype == "float":
            assert dtype_name(x.dtype).startswith("float")
            assert like is None or dtype_name(x.dtype) == dtype_name(like.dtype)


@FUZZ
@given(value=ODD_NUMBERS, low=st.one_of(st.none(), st.floats(-2, 2)),
       high=st.one_of(st.none(), st.floats(-2, 2)), low_open=st.booleans())
def test_number_gives_a_float_in_bounds_or_refuses(value, low, high, low_open):
    ok, got = attempt(lambda: xnn.number("Probe", "x", value, low=low, high=high,
                                         low_open=low_open), "Probe: x must be")
    if ok:
        assert type(got) is float and got == got
        assert low is None or (got > low if low_open else got >= low)
        assert high is None or got <= high
    else:
        assert isinstance(got, (TypeError, ValueError))
        assert not isinstance(value, (bool, str, type(None), tuple, list)) or isinstance(
            got, TypeError)


@FUZZ
@given(value=st.one_of(ODD_NUMBERS, st.integers(-10, 10), st.just(np.int64(3))),
       low=st.one_of(st.none(), st.integers(-3, 3)))
def test_integer_gives_an_int_in_bounds_or_refuses(value, low):
    ok, got = attempt(lambda: xnn.integer("Probe", "n", value, low=low), "Probe: n must be")
    if ok:
        assert type(got) is int and (low is None or got >= low)
        assert not isinstance(value, (bool, float))


@FUZZ
@given(x=host_arrays(min_rank=1), rows=st.one_of(
    st.lists(st.integers(-8, 8), max_size=6), host_arrays(dtypes=["int64", "int32", "float64"],
                                                           max_rank=1, min_rank=1),
    st.sampled_from(JUNK)), on_device=st.booleans())
def test_take_rows_takes_numpy_rows_or_refuses_clearly(backend, x, rows, on_device):
    if on_device and isinstance(rows, (list, np.ndarray)):
        rows = attempt(lambda: xnn.asarray(rows), "asarray")[1]
        if isinstance(rows, Exception):
            return
    ok, got = attempt(lambda: xnn.data.take_rows(on_backend(x), rows), ["take_rows", "to_numpy"],
                      allowed=(TypeError, ValueError, IndexError))
    if ok:
        index = np.asarray(xnn.to_numpy(rows)).astype(np.int64)
        np.testing.assert_array_equal(xnn.to_numpy(got), x[index])


@FUZZ
@given(values=st.lists(host_arrays(dtypes=FLOATS, max_rank=1), max_size=4))
def test_to_numpy_of_a_list_of_backend_arrays_stacks_them_or_refuses(backend, values):
    arrays = [on_backend(v) for v in values]
    ok, got = attempt(lambda: xnn.to_numpy(arrays), "to_numpy")
    if ok:
        np.testing.assert_array_equal(got, np.array([v.astype(got.dtype) for v in values]))
    else:
        assert len({v.shape for v in values}) > 1
