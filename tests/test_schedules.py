"""Learning-rate schedules: the values of torch's schedulers, resuming, composing, bad input.

The schedules compute Python floats only, so the comparisons with torch run once; the tests at
the end check on every backend that the optimizer's steps use the lr a schedule set.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xnn
from xnn import optim
from xnn.nn import Parameter
from xnn.optim import schedules

torch = pytest.importorskip("torch")

BASE_LR = 0.1


def _optimizer(lr: float = BASE_LR) -> optim.SGD:
    return optim.SGD([Parameter(xnn.asarray([0.0]))], lr=lr)


def _lrs(schedule, steps: int, metrics=None) -> list[float]:
    """get_last_lr() after construction and after each of ``steps`` steps."""
    out = [schedule.get_last_lr()[0]]
    for t in range(steps):
        if metrics is None:
            schedule.step()
        else:
            schedule.step(metrics[t])
        out.append(schedule.get_last_lr()[0])
    return out


def _torch_lrs(make, steps: int, metrics=None) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    schedule = make(opt, torch.optim.lr_scheduler)
    out = [schedule.get_last_lr()[0]]
    for t in range(steps):
        opt.step()  # no gradients: nothing moves, but torch wants this order
        if metrics is None:
            schedule.step()
        else:
            schedule.step(metrics[t])
        out.append(schedule.get_last_lr()[0])
    return out


# (id, builder of xnn's schedule, builder of torch's, steps)
CASES = [
    ("StepLR", lambda o: schedules.StepLR(o, step_size=3, gamma=0.5),
     lambda o, s: s.StepLR(o, step_size=3, gamma=0.5), 20),
    ("StepLR-default-gamma", lambda o: schedules.StepLR(o, 4),
     lambda o, s: s.StepLR(o, 4), 13),
    ("ExponentialLR", lambda o: schedules.ExponentialLR(o, gamma=0.9),
     lambda o, s: s.ExponentialLR(o, gamma=0.9), 30),
    ("CosineAnnealingLR", lambda o: schedules.CosineAnnealingLR(o, T_max=7),
     lambda o, s: s.CosineAnnealingLR(o, T_max=7), 3 * 7 + 3),
    ("CosineAnnealingLR-eta_min", lambda o: schedules.CosineAnnealingLR(o, 5, eta_min=0.01),
     lambda o, s: s.CosineAnnealingLR(o, 5, eta_min=0.01), 3 * 5 + 2),
    ("LinearWarmup", lambda o: schedules.LinearWarmup(o, warmup_steps=5, start_factor=0.1),
     lambda o, s: s.LinearLR(o, start_factor=0.1, total_iters=5), 12),
    ("LinearWarmup-default", lambda o: schedules.LinearWarmup(o, 5),
     lambda o, s: s.LinearLR(o), 9),
    ("LinearWarmup-then-cosine",
     lambda o: schedules.LinearWarmup(o, 4, start_factor=0.25,
                                      after=schedules.CosineAnnealingLR(o, 6, eta_min=0.001)),
     lambda o, s: s.SequentialLR(o, [s.LinearLR(o, 0.25, total_iters=4),
                                     s.CosineAnnealingLR(o, 6, eta_min=0.001)], [4]), 24),
    ("LinearWarmup-then-step",
     lambda o: schedules.LinearWarmup(o, 3, start_factor=0.5, after=schedules.StepLR(o, 2, 0.5)),
     lambda o, s: s.SequentialLR(o, [s.LinearLR(o, 0.5, total_iters=3), s.StepLR(o, 2, 0.5)],
                                 [3]), 12),
    ("LinearWarmup-then-exponential",
     lambda o: schedules.LinearWarmup(o, 2, start_factor=0.2,
                                      after=schedules.ExponentialLR(o, 0.8)),
     lambda o, s: s.SequentialLR(o, [s.LinearLR(o, 0.2, total_iters=2),
                                     s.ExponentialLR(o, 0.8)], [2]), 10),
]


@pytest.mark.parametrize(("make", "make_torch", "steps"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_schedule_matches_torch_get_last_lr(make, make_torch, steps):
    opt = _optimizer()
    ours = _lrs(make(opt), steps)
    assert opt.lr == ours[-1]
    assert ours == _torch_lrs(make_torch, steps)  # the same formulas: the same floats, bit for bit


def test_cosine_annealing_reaches_eta_min_at_t_max_and_climbs_back():
    lrs = _lrs(schedules.CosineAnnealingLR(_optimizer(), T_max=4, eta_min=0.02), 8)
    assert lrs[4] == pytest.approx(0.02, rel=1e-12)
    assert lrs[8] == pytest.approx(BASE_LR, rel=1e-12)
    assert lrs[2] == pytest.approx(0.02 + (BASE_LR - 0.02) / 2, rel=1e-12)


# a metric that falls, stalls with noise, then jumps: every branch of the plateau logic runs
METRICS = ([1 / (1 + t) for t in range(8)] + [0.125 + 0.001 * math.sin(t) for t in range(20)]
           + [0.01, 0.02, 0.02, 0.02, 0.03, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
PLATEAU = [
    {},
    {"patience": 2, "factor": 0.5, "cooldown": 2},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 1, "factor": 0.3},
    {"patience": 0, "factor": 0.5, "min_lr": 0.02},
    {"patience": 1, "factor": 0.9, "eps": 0.05},
]


@pytest.mark.parametrize("kwargs", PLATEAU,
                         ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "defaults")
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    ours = _lrs(schedules.ReduceLROnPlateau(_optimizer(), **kwargs), len(METRICS), METRICS)
    theirs = _torch_lrs(lambda o, s: s.ReduceLROnPlateau(o, **kwargs), len(METRICS), METRICS)
    assert ours == theirs
    assert len(set(ours)) > 1 or kwargs.get("eps")  # the lr did move (but for the eps case)


def test_schedule_and_plateau_on_one_optimizer_compose_like_torch():
    opt = _optimizer()
    decay = schedules.ExponentialLR(opt, 0.95)
    plateau = schedules.ReduceLROnPlateau(opt, patience=1)
    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    t_decay = torch.optim.lr_scheduler.ExponentialLR(t_opt, 0.95)
    t_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, patience=1)
    for metric in METRICS:
        decay.step()
        plateau.step(metric)
        t_opt.step()
        t_decay.step()
        t_plateau.step(metric)
        assert opt.lr == t_opt.param_groups[0]["lr"]
    assert opt.lr < BASE_LR * 0.95 ** len(METRICS)  # the plateau cut in as well


RESUMABLE = {
    "cosine": lambda o: schedules.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
    "warmup-then-step": lambda o: schedules.LinearWarmup(o, 5, 0.1, after=schedules.StepLR(o, 3)),
    "plateau": lambda o: schedules.ReduceLROnPlateau(o, patience=1, factor=0.5, cooldown=1),
}


@pytest.mark.parametrize("name", list(RESUMABLE))
def test_resumed_schedule_continues_with_the_same_lrs(name):
    make = RESUMABLE[name]
    metrics = METRICS if name == "plateau" else None
    opt = _optimizer()
    schedule = make(opt)
    _lrs(schedule, 7, metrics)
    opt_state, schedule_state = opt.state_dict(), schedule.state_dict()
    expected = _lrs(schedule, 10, None if metrics is None else metrics[7:])

    opt2 = _optimizer(lr=5.0)  # another lr: the checkpoint must restore it
    schedule2 = make(opt2)
    opt2.load_state_dict(opt_state)
    schedule2.load_state_dict(schedule_state)
    assert _lrs(schedule2, 10, None if metrics is None else metrics[7:]) == expected
    assert schedule2.last_epoch == schedule.last_epoch == 17


def test_state_dict_is_plain_data_that_does_not_change_with_later_steps():
    opt = _optimizer()
    schedule = schedules.LinearWarmup(opt, 3, after=schedules.CosineAnnealingLR(opt, 4))
    state = schedule.state_dict()
    saved = repr(state)
    for _ in range(5):
        schedule.step()
    assert repr(state) == saved
    assert state["after"]["schedule"] == "CosineAnnealingLR"
    plain = (int, float, str, list, dict, type(None))
    assert all(isinstance(v, plain) for v in [*state.values(), *state["after"].values()])


def test_load_state_dict_rejects_another_schedule():
    opt = _optimizer()
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: the state is of a "
                                         r"'ExponentialLR' schedule"):
        schedules.StepLR(opt, 2).load_state_dict(schedules.ExponentialLR(opt, 0.5).state_dict())
    warm = schedules.LinearWarmup(opt, 2)
    with_after = schedules.LinearWarmup(opt, 2, after=schedules.StepLR(opt, 2))
    with pytest.raises(ValueError, match="saved with an after schedule, this one has none"):
        warm.load_state_dict(with_after.state_dict())


S = schedules
BAD = [  # (build from an optimizer, error, message)
    (lambda o: S.StepLR(o, step_size=0), ValueError,
     "StepLR: step_size must be a positive int, got 0"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError,
     "CosineAnnealingLR: T_max must be a positive int, got 0"),
    (lambda o: S.ExponentialLR(o, gamma="0.9"), TypeError,
     "ExponentialLR: gamma must be a real number"),
    (lambda o: S.LinearWarmup(o, 0), ValueError,
     "LinearWarmup: warmup_steps must be a positive int, got 0"),
    (lambda o: S.LinearWarmup(o, 3, start_factor=0.0), ValueError,
     r"LinearWarmup: start_factor must be a number in \(0, 1\], got 0.0"),
    (lambda o: S.LinearWarmup(o, 3, start_factor=1.5), ValueError,
     r"start_factor must be a number in \(0, 1\], got 1.5"),
    (lambda o: S.LinearWarmup(o, 3, after=S.ReduceLROnPlateau(o)), ValueError,
     "step ReduceLROnPlateau yourself"),
    (lambda o: S.LinearWarmup(o, 3, after=S.StepLR(_optimizer(), 2)), ValueError,
     "same optimizer"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be a number in \[0, 1\), got 1.0"),
    (lambda o: S.ReduceLROnPlateau(o, mode="avg"), ValueError,
     "mode must be 'min' or 'max', got 'avg'"),
    (lambda o: S.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     "threshold_mode must be 'rel' or 'abs', got 'pct'"),
    (lambda o: S.ReduceLROnPlateau(o, patience=-1), ValueError,
     "patience must be an int >= 0, got -1"),
    (lambda o: S.StepLR(object(), 2), TypeError,
     "StepLR: expected an xnn.optim optimizer, got object"),
    (lambda o: S.ReduceLROnPlateau(object()), TypeError,
     "ReduceLROnPlateau: expected an xnn.optim optimizer, got object"),
    (lambda o: S.ReduceLROnPlateau(o, cooldown=1.5), TypeError,
     "ReduceLROnPlateau: cooldown must be an int, got 1.5"),
    # settings that would make a negative or NaN lr, which the optimizer refuses
    (lambda o: S.StepLR(o, 2, gamma=-0.5), ValueError,
     r"StepLR: gamma must be a number in \[0, inf\), got -0.5"),
    (lambda o: S.ExponentialLR(o, math.inf), ValueError,
     r"ExponentialLR: gamma must be a number in \[0, inf\), got inf"),
    (lambda o: S.CosineAnnealingLR(o, 3, eta_min=-0.1), ValueError,
     r"CosineAnnealingLR: eta_min must be a number in \[0, inf\), got -0.1"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_schedule_arguments_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        make(_optimizer())


def test_plateau_is_a_schedule_stepped_with_a_metric_that_sets_no_lr_when_made():
    opt = _optimizer()
    plateau = schedules.ReduceLROnPlateau(opt, patience=0)
    assert isinstance(plateau, schedules.Schedule)
    assert not isinstance(plateau, schedules.EpochSchedule)  # so LinearWarmup refuses it
    assert plateau.needs_metric and not schedules.StepLR(opt, 2).needs_metric  # what fit asks
    assert opt.initial_lr == BASE_LR  # set by StepLR, not by the plateau (as in torch)
    assert plateau.get_last_lr() == [BASE_LR] and plateau.last_epoch == 0
    plateau.step(1.0)
    plateau.step(2.0)
    assert plateau.get_last_lr() == [BASE_LR * 0.1] and plateau.last_epoch == 2
    assert repr(plateau) == f"ReduceLROnPlateau(last_epoch=2, lr={BASE_LR * 0.1!r})"


def test_schedule_step_whose_lr_the_optimizer_refuses_changes_nothing():
    opt = _optimizer()
    schedule = schedules.ExponentialLR(opt, gamma=0.0)
    opt.lr = math.inf  # and inf * 0 is NaN
    with pytest.raises(ValueError, match="SGD: lr must be a number in"):
        schedule.step()
    assert schedule.last_epoch == 0 and schedule.get_last_lr() == [BASE_LR]
    assert opt.lr == math.inf


def test_torch_rejects_the_factor_and_start_factor_we_reject():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    with pytest.raises(ValueError):
        torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError):
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.0)


# --- with an optimizer, on every backend ---------------------------------------------------------

def test_each_step_uses_the_lr_the_schedule_set(backend, float64):
    p = Parameter(xnn.asarray([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.5)
    schedule = schedules.LinearWarmup(opt, 3, start_factor=0.2,
                                      after=schedules.CosineAnnealingLR(opt, 4))
    used = []
    for _ in range(9):
        p.grad = xnn.asarray([1.0, -1.0])  # a constant gradient: p moves by the lr each step
        used.append(opt.lr)
        opt.step()
        schedule.step()
    assert used[0] == pytest.approx(0.1) and used[3] == pytest.approx(0.5)
    np.testing.assert_allclose(xnn.to_numpy(p.value), [1.0 - sum(used), 2.0 + sum(used)],
                               rtol=1e-14)


def test_plateau_takes_a_zero_dimensional_array_metric(xp):
    opt = optim.SGD([Parameter(xnn.asarray([0.0]))], lr=1.0)
    plateau = schedules.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for value in (1.0, 2.0):
        metric = xp.mean(xnn.asarray([value, value]))  # a loss as a reduction gives it
        assert metric.shape == ()
        plateau.step(metric)
    assert opt.lr == 0.5 and plateau.get_last_lr() == [0.5]


def test_reduce_lr_on_plateau_keeps_pytorchs_patience_unlike_early_stopping():
    # PyTorch's rule (num_bad_epochs > patience): patience=2 tolerates two bad epochs and
    # reduces at the third; EarlyStopping(patience=2) follows Keras and stops at the second
    opt = _optimizer(1.0)
    plateau = schedules.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    lrs = []
    for metric in (1.0, 1.0, 1.0, 1.0):    # the best, then bad epochs (a tie is no improvement)
        plateau.step(metric)
        lrs.append(opt.lr)
    assert lrs == [1.0, 1.0, 1.0, 0.5]
