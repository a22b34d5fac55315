"""xnn.fit at its boundary: skipped steps, interrupted fits, metrics returning numbers,
BatchNorm's one-row batches, complex data, train/eval modes, the user's loss left alone,
callback arguments, and when the logs are read."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import xnn
from xnn import callbacks, losses, nn, optim

from model_state import assert_state, host_state


def _regression(n: int = 5, seed: int = 0):
    xnn.seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    return model, rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def _grads(model) -> list:
    return [p.grad for p in model.parameters()]


# --- skipped steps ------------------------------------------------------------------------------

def test_the_epoch_loss_is_the_row_weighted_mean_of_the_steps_taken(backend):
    model, X, y = _regression(n=5)
    seen = []  # (batch, loss, rows) of every batch, taken or not

    def take_batches_0_and_2(run, loss):
        seen.append((run.batch, float(loss)))
        return run.batch != 1

    history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(),
                      lr=0.1), epochs=1, batch_size=2, shuffle=False, metrics=["mse"],
                      callbacks=[callbacks.LambdaCallback(before_step=take_batches_0_and_2)],
                      progress=False)
    (b0, l0), (b1, _), (b2, l2) = seen
    assert (b0, b1, b2) == (0, 1, 2)
    expected = (2 * l0 + 1 * l2) / 3  # batches of 2 and 1 rows; the skipped one counts nothing
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history["mse"][0] == pytest.approx(expected, rel=1e-5)


def test_an_epoch_whose_steps_are_all_skipped_logs_nan_and_changes_nothing(backend):
    model, X, y = _regression(n=6)
    before = host_state(model)
    plateau_opt = optim.SGD(model.parameters(), lr=0.1)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=plateau_opt, epochs=3,
                      batch_size=2, metrics=["mae", lambda pred, t: 0.5],
                      validation_data=(X, y),
                      scheduler=optim.schedules.ReduceLROnPlateau(plateau_opt),
                      callbacks=[callbacks.LambdaCallback(before_step=lambda run, loss: False)],
                      progress=False)
    for key in ("loss", "mae", "<lambda>"):
        assert len(history[key]) == 3 and all(math.isnan(v) for v in history[key]), key
    assert all(math.isfinite(v) for v in history["val_loss"])
    assert_state(model, before)
    assert all(g is None for g in _grads(model))


# --- errors and Ctrl-C inside fit ----------------------------------------------------------------

class _FailingMSE(losses.MSELoss):
    """MSE that raises ``error`` on its ``bad_call``-th call (after earlier steps trained)."""

    def __init__(self, bad_call: int, error: BaseException) -> None:
        super().__init__()
        self.calls, self.bad_call, self.error = 0, bad_call, error

    def __call__(self, pred, target):
        self.calls += 1
        if self.calls == self.bad_call:
            raise self.error
        return super().__call__(pred, target)


class _Interrupt(callbacks.Callback):
    """Ctrl-C after the ``at``-th backprop, before its step: gradients are filled then."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def before_step(self, run, loss):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return True


@pytest.mark.parametrize("how", ["KeyboardInterrupt before a step", "loss error mid-epoch"])
def test_an_interrupted_fit_leaves_no_gradient_for_the_next_one(backend, how):
    model, X, y = _regression(n=6)
    twin, _, _ = _regression(n=6)  # the same weights, never interrupted
    opt = optim.SGD(model.parameters(), lr=0.1)
    if how == "KeyboardInterrupt before a step":
        with pytest.raises(KeyboardInterrupt):
            xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=2, batch_size=2,
                    shuffle=False, callbacks=[_Interrupt(at=2)], progress=False)
        xnn.fit(twin, X[:2], y[:2], loss=losses.MSELoss(),
                optimizer=optim.SGD(twin.parameters(), lr=0.1), epochs=1, progress=False)
    else:
        with pytest.raises(RuntimeError, match="boom"):
            xnn.fit(model, X, y, loss=_FailingMSE(3, RuntimeError("boom")), optimizer=opt,
                    epochs=2, batch_size=2, shuffle=False, progress=False)
        xnn.fit(twin, X[:4], y[:4], loss=losses.MSELoss(),
                optimizer=optim.SGD(twin.parameters(), lr=0.1), epochs=1, batch_size=2,
                shuffle=False, progress=False)
    assert all(g is None for g in _grads(model))
    assert_state(model, host_state(twin))  # trained up to the failing step, nothing more
    _same_after_a_fit(model, twin, X, y)  # the next fit's first step uses its own gradient only


def test_fit_ignores_gradients_left_by_a_hand_written_backprop(backend):
    model, X, y = _regression(n=4)
    twin, _, _ = _regression(n=4)
    pred, backprop = model.forward(xnn.asarray(X, dtype="float32"))
    backprop(losses.MSELoss()(pred, xnn.asarray(y, dtype="float32"))[1])  # leaves p.grad set
    _same_after_a_fit(model, twin, X, y)


def _same_after_a_fit(model, twin, X, y) -> None:
    """One epoch of the same fit on each: equal weights after it if no stale gradient got in."""
    for m in (model, twin):
        xnn.fit(m, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(m.parameters(), lr=0.1),
                epochs=1, progress=False)
    assert_state(model, host_state(twin))


# --- metrics ------------------------------------------------------------------------------------

def test_metrics_may_return_python_or_numpy_numbers(backend):
    model, X, y = _regression(n=6)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=4,
                      metrics=[lambda pred, t: 0.5, "mae"], validation_data=(X, y),
                      progress=False)
    assert history["<lambda>"] == [0.5, 0.5] and history["val_<lambda>"] == [0.5, 0.5]

    def host_mse(pred, target):  # a scikit-learn-like metric: NumPy in, NumPy float out
        return np.float64(np.mean((xnn.to_numpy(pred) - xnn.to_numpy(target)) ** 2))

    history = xnn.fit(model, X, y, loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.0), epochs=1,
                      metrics=[host_mse], progress=False)
    assert history["host_mse"][0] == pytest.approx(history["loss"][0], rel=1e-5)
    logs = xnn.evaluate(model, X, y, loss=losses.MSELoss(), metrics=[host_mse])
    assert isinstance(logs["host_mse"], float)
    assert logs["host_mse"] == pytest.approx(logs["loss"], rel=1e-5)


@pytest.mark.parametrize("metric, error, match", [
    (lambda pred, t: pred, ValueError, r"metric '<lambda>' must return a number or a 0-d array, "
                                       r"got shape \(2, 2\)"),
    (lambda pred, t: "good", TypeError, r"metric '<lambda>' must return a number or a 0-d "
                                        r"array, got str"),
])
def test_a_metric_that_returns_no_number_is_refused_before_training(backend, metric, error,
                                                                    match):
    model, X, y = _regression(n=4)
    before = host_state(model)
    with pytest.raises(error, match=match):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=1, batch_size=2, metrics=[metric], progress=False)
    assert_state(model, before)


# --- BatchNorm1d and batches of one row --------------------------------------------------------

def _bn_model():
    xnn.seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize("n, batch_size, split, match", [
    (9, 4, None, r"fit: batch_size=4 leaves a last batch of 1 row \(9 training rows = 2 x 4 \+ 1"
                 r"\), and BatchNorm1d needs more than 1 row per batch in training; use a "
                 r"batch_size that leaves no row or at least 2 over \(such as 3 or 5\), or drop "
                 r"a row"),
    (8, 1, None, r"fit: batch_size=1 makes batches of 1 row, and BatchNorm1d needs more"),
    (1, None, None, r"fit: there is 1 training row, and BatchNorm1d needs more"),
    (12, 3, 0.1, r"batch_size=3 leaves a last batch of 1 row \(10 training rows = 3 x 3 \+ 1\)"),
])
def test_batchnorm_with_a_one_row_batch_is_refused_before_training(backend, n, batch_size,
                                                                   split, match):
    model = _bn_model()
    X, y = np.ones((n, 3)), np.ones((n, 2))
    before = host_state(model)
    with pytest.raises(ValueError, match=match):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=2, batch_size=batch_size, validation_split=split, progress=False)
    assert_state(model, before)


def test_batchnorm_trains_with_batches_of_two_rows_or_more(backend):
    model = _bn_model()
    X = np.random.default_rng(0).normal(size=(10, 3))
    history = xnn.fit(model, X, X[:, :2], loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=4,
                      progress=False)  # batches of 4, 4 and 2
    assert all(math.isfinite(v) for v in history["loss"])


# --- complex data -------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["X", "y", "X_val", "y_val"])
def test_complex_data_is_refused_before_training(backend, where):
    model, X, y = _regression(n=4)
    data = {"X": X, "y": y, "X_val": X, "y_val": y}
    data[where] = data[where] + 1j
    before = host_state(model)
    with pytest.raises(TypeError, match=rf"fit: {where} has the complex dtype complex128"):
        xnn.fit(model, data["X"], data["y"], loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters()), epochs=1,
                validation_data=(data["X_val"], data["y_val"]), progress=False)
    assert_state(model, before)


def test_complex_device_arrays_and_lists_are_refused_too(backend):
    model, X, y = _regression(n=2)
    for bad in ([[1j, 0, 0], [0, 0, 1]], xnn.asarray(np.ones((2, 3), dtype=np.complex64))):
        with pytest.raises(TypeError, match=r"fit: X has the complex dtype complex"):
            xnn.fit(model, bad, y, loss=losses.MSELoss(),
                    optimizer=optim.SGD(model.parameters()), epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"evaluate: y has the complex dtype complex128"):
        xnn.evaluate(model, X, y + 0j, loss=losses.MSELoss())


# --- train/eval modes -------------------------------------------------------------------------

def test_fit_trains_in_training_mode_and_puts_back_each_modules_mode(backend):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    X, y = np.ones((4, 3)), np.ones((4, 2))
    model.eval()
    model[1].train()  # a mixed setting, as a user may leave it
    modes = [m.training for m in model.modules()]
    seen = []
    watch = callbacks.LambdaCallback(
        on_epoch_begin=lambda run: seen.append(all(m.training for m in run.model.modules())))
    xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
            epochs=2, validation_data=(X, y), callbacks=[watch], progress=False)
    assert seen == [True, True]
    assert [m.training for m in model.modules()] == modes
    with pytest.raises(RuntimeError, match="boom"):
        xnn.fit(model, X, y, loss=_FailingMSE(3, RuntimeError("boom")),
                optimizer=optim.SGD(model.parameters()), epochs=3, progress=False)
    assert [m.training for m in model.modules()] == modes
    xnn.evaluate(model, X, y, loss=losses.MSELoss())
    assert [m.training for m in model.modules()] == modes


def test_a_refused_fit_leaves_the_model_mode_and_generator_alone(backend):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model.eval()
    before, state = host_state(model), xnn.random.get_state()
    with pytest.raises(ValueError, match="MSELoss"):
        xnn.fit(model, np.ones((4, 3)), np.ones((4, 5)), loss=losses.MSELoss(),
                optimizer=optim.SGD(model.parameters()), epochs=1, progress=False)
    assert_state(model, before)
    assert not any(m.training for m in model.modules())
    assert xnn.random.get_state() == state


# --- the user's loss --------------------------------------------------------------------------

def test_fit_never_switches_the_users_loss_validation_off(backend):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(12, 4))
    y = np.arange(12) % 3
    loss = losses.CrossEntropyLoss()
    settings = dict(vars(loss))
    seen = []
    watch = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: seen.append(loss.validate))
    xnn.fit(model, X, y, loss=loss, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
            batch_size=4, validation_data=(X, y), callbacks=[watch], progress=False)
    assert seen == [True, True] and vars(loss) == settings


@pytest.mark.parametrize("ignored", [False, True])
@pytest.mark.parametrize("validate", [True, False])
def test_fit_with_cross_entropy_gives_the_bits_of_the_hand_written_loop(backend, ignored,
                                                                        validate):
    # fit checks every label once up front; its steps then skip the per-step label work (and,
    # when no label is ignored, the ignored-row bookkeeping), which must change no result
    rng = np.random.default_rng(1)
    X = rng.normal(size=(22, 4))
    y = rng.integers(0, 3, 22)
    if ignored:
        y[[2, 9]] = -100
    models, losses_ = [], []
    for _ in range(2):
        xnn.seed(0)
        models.append(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
        losses_.append(losses.CrossEntropyLoss(validate=validate))
    history = xnn.fit(models[0], X, y, loss=losses_[0],
                      optimizer=optim.Adam(models[0].parameters(), lr=0.01), epochs=3,
                      batch_size=8, shuffle=False, progress=False)
    opt = optim.Adam(models[1].parameters(), lr=0.01)
    Xd, yd = xnn.asarray(X, dtype=models[1][0].weight.dtype), xnn.asarray(y)
    for _ in range(3):
        for start in range(0, 22, 8):
            stop = min(start + 8, 22)
            pred, backprop = models[1].forward(Xd[start:stop, ...])
            value, grad = losses_[1](pred, yd[start:stop, ...])
            backprop(grad)
            opt.step()
            opt.zero_grad()
    for name, value in host_state(models[1]).items():
        np.testing.assert_array_equal(host_state(models[0])[name], value, err_msg=name)
    assert math.isfinite(history["loss"][-1])


def test_bce_checks_the_first_batch_up_front_and_not_every_step(backend, monkeypatch):
    xnn.seed(0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    y = (X[:, :1] > 0).astype(np.float64)
    logits = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))  # no Sigmoid: a mistake
    before = host_state(logits)
    with pytest.raises(ValueError, match=r"BCELoss: expected probabilities in \[0, 1\]"):
        xnn.fit(logits, X, y, loss=losses.BCELoss(), optimizer=optim.SGD(logits.parameters()),
                epochs=1, progress=False)
    assert_state(logits, before)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid())
    loss = losses.BCELoss()
    reads = []
    real = xnn.losses.classification.read_numbers
    monkeypatch.setattr(xnn.losses.classification, "read_numbers",
                        lambda *a: reads.append(1) or real(*a))
    history = xnn.fit(model, X, y, loss=loss, optimizer=optim.SGD(model.parameters(), lr=0.5),
                      epochs=3, batch_size=4, validation_data=(X, y), progress=False)
    assert len(reads) == 1 and loss.validate is True  # the first batch, once
    assert all(math.isfinite(v) for v in history["loss"] + history["val_loss"])


# --- callbacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, match", [
    (lambda: callbacks.EarlyStopping(patience=None), TypeError, "patience must be an int"),
    (lambda: callbacks.EarlyStopping(patience=2.5), TypeError, "patience must be an int"),
    (lambda: callbacks.EarlyStopping(patience=-1), ValueError, "patience must be an int >= 0"),
    (lambda: callbacks.EarlyStopping(min_delta="a"), TypeError, "min_delta must be a real"),
    (lambda: callbacks.EarlyStopping(min_delta=-0.1), ValueError, "min_delta must be a number"),
    (lambda: callbacks.EarlyStopping(monitor=None), TypeError, "monitor must be the name"),
    (lambda: callbacks.EarlyStopping(mode=None), TypeError, "mode must be 'auto'"),
    (lambda: callbacks.EarlyStopping(mode="best"), ValueError, "mode must be 'auto'"),
    (lambda: callbacks.ModelCheckpoint("a.npz", mode="up"), ValueError, "mode must be 'auto'"),
    (lambda: callbacks.ModelCheckpoint(None), TypeError, "path must be a str or os.PathLike"),
    (lambda: callbacks.ModelCheckpoint("a.npz", monitor=3), TypeError, "monitor must be"),
])
def test_callback_arguments_are_checked_when_made(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_callbacks_take_numpy_integers_and_floats():
    stopper = callbacks.EarlyStopping(patience=np.int64(2), min_delta=np.float32(0.5))
    assert stopper.patience == 2 and type(stopper.patience) is int


def test_fit_refuses_something_that_is_not_a_callback_before_training(backend):
    model, X, y = _regression(n=4)
    before = host_state(model)
    with pytest.raises(TypeError, match=r"fit: callbacks\[1\] \(function\) lacks on_train_begin"):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=1, callbacks=[callbacks.TerminateOnNaN(), lambda run: None],
                progress=False)
    assert_state(model, before)


# --- when the logs are read -------------------------------------------------------------------

def _reads(monkeypatch) -> list:
    """The logbook's reads of waiting logs: one transfer each off the host (on NumPy, float()
    of each value; tests/test_sync_guard.py counts the transfers themselves)."""
    reads = []
    real = xnn.loop.to_host
    monkeypatch.setattr(xnn.loop, "to_host", lambda *a: reads.append(1) or real(*a))
    return reads


def test_unwatched_logs_are_read_once_when_training_ends(backend, monkeypatch):
    model, X, y = _regression(n=8)
    reads = _reads(monkeypatch)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=30, batch_size=4,
                      metrics=["mae"], validation_data=(X, y), progress=False)
    assert len(reads) == 1
    assert history.epoch == list(range(30)) and len(history["val_mae"]) == 30
    logs = xnn.evaluate(model, X, y, loss=losses.MSELoss(), metrics=["mae"])
    assert history["val_loss"][-1] == pytest.approx(logs["loss"], rel=1e-6)


def test_watched_logs_are_read_once_per_epoch_end(backend, monkeypatch):
    model, X, y = _regression(n=8)
    reads = _reads(monkeypatch)
    seen = []
    xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=5, batch_size=4, metrics=["mae"],
            callbacks=[callbacks.LambdaCallback(on_epoch_end=lambda run, logs: seen.append(logs))],
            progress=False)
    assert len(reads) == 5 and [sorted(logs) for logs in seen] == [["loss", "mae"]] * 5


def test_unwatched_logs_wait_for_at_most_most_waiting_epochs(backend, monkeypatch):
    model, X, y = _regression(n=4)
    monkeypatch.setattr(xnn.loop._Logbook, "most_waiting", 3)
    reads = _reads(monkeypatch)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=10, progress=False)
    assert len(reads) == 4 and history.epoch == list(range(10))  # after epochs 3, 6, 9 and 10


def test_no_metrics_or_callbacks_may_be_given_as_none_and_a_lone_name_is_refused(backend):
    model, X, y = _regression(n=4)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                      epochs=1, metrics=None, callbacks=None, progress=False)
    assert list(history.history) == ["loss"]
    with pytest.raises(TypeError, match=r"fit: metrics must be a list .* write metrics=\['mae'\]"):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters()),
                epochs=1, metrics="mae", progress=False)
    assert list(xnn.evaluate(model, X, y, loss=losses.MSELoss(), metrics=None)) == ["loss"]


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_at_most_every_interval_and_at_the_end(monkeypatch):
    model, X, y = _regression(n=4)
    terminal = _TTY()
    monkeypatch.setattr("sys.stderr", terminal)
    xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
            epochs=2000)
    draws = terminal.getvalue().split("\r")[1:]
    assert 1 <= len(draws) < 2000 and "2000/2000" in draws[-1]
    assert terminal.getvalue().endswith("\n")
