"""xnn.fit: trains the tutorial networks, validates, reports, refuses bad arguments, and the
callbacks steer it."""

from __future__ import annotations

import io
import math
import pathlib

import numpy as np
import pytest

import xnn
from xnn import callbacks, data, datasets, nn


def _xor_setup(lr: float = 2.0):
    xnn.seed(0)
    X, y = datasets.xor()
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
    return model, X, y, xnn.optim.SGD(model.parameters(), lr=lr)


def _arithmetic_setup(n: int = 2000):
    xnn.seed(0)
    X, y = datasets.arithmetic(n, seed=1)
    X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_size=0.3, seed=2)
    sx, sy = data.StandardScaler().fit(X_tr), data.StandardScaler().fit(y_tr)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    return model, (sx.transform(X_tr), sy.transform(y_tr)), (sx.transform(X_te), sy.transform(y_te))


def test_fit_trains_xor_full_batch(backend):
    model, X, y, opt = _xor_setup(lr=3.0)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=1500,
                      progress=False)
    assert len(history["loss"]) == 1500 and history.epoch[-1] == 1499
    assert history["loss"][-1] < 0.005
    np.testing.assert_allclose(xnn.to_numpy(model(X))[:, 0], [0, 1, 1, 0], atol=0.1)


def test_fit_trains_the_polynomial_network_full_batch(backend):
    xnn.seed(0)
    X, y = datasets.polynomial(n=400, seed=0)
    scale = data.StandardScaler().fit(y)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
    history = xnn.fit(model, X, scale.transform(y), loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.Adam(model.parameters(), lr=0.03), epochs=400,
                      progress=False)
    # standardized targets start near variance 1; the noise floor is 1 / var(y), about 0.015
    assert history["loss"][0] > 0.9 and history["loss"][-1] < 0.05


def test_fit_trains_arithmetic_with_minibatches_and_validation(backend):
    model, train, test = _arithmetic_setup()
    history = xnn.fit(model, *train, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.05), epochs=15,
                      batch_size=64, seed=0, validation_data=test, metrics=["r2_score"],
                      progress=False)
    assert history["loss"][-1] < 0.01 and history["val_loss"][-1] < 0.01
    assert history["val_r2_score"][-1] > 0.99
    assert history["loss"][-1] < history["loss"][0] / 10
    logs = xnn.evaluate(model, *test, loss=xnn.losses.MSELoss(), metrics=["r2_score"])
    assert logs["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)


def test_fit_history_is_identical_on_numpy_and_backend(backend, float64):
    def run():
        model, train, test = _arithmetic_setup(500)
        return xnn.fit(model, *train, loss=xnn.losses.MSELoss(),
                       optimizer=xnn.optim.SGD(model.parameters(), lr=0.05), epochs=3,
                       batch_size=50, seed=5, validation_data=test, progress=False)

    here = run()
    with xnn.use_backend("numpy"):
        reference = run()
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(here[key], reference[key], rtol=1e-12)


def test_validation_split_holds_out_the_last_rows(backend):
    model, (X, y), _ = _arithmetic_setup(200)
    assert X.shape[0] == 140
    seen = {}
    probe = callbacks.LambdaCallback(on_train_begin=lambda run: seen.update(
        val=xnn.evaluate(run.model, X[112:, ...], y[112:, ...], loss=xnn.losses.MSELoss())))
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.0), epochs=1,
                      validation_split=0.2, callbacks=[probe], progress=False)
    # lr=0 leaves the model unchanged, so val_loss is the loss on rows 112..139 (the last 20%)
    assert history["val_loss"][0] == pytest.approx(seen["val"]["loss"], rel=1e-6)


def test_fit_casts_host_data_to_the_model_dtype(backend):
    model, _, _, opt = _xor_setup()
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])            # int64 host data
    y = [[0.0], [1.0], [1.0], [0.0]]                            # a list
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=3,
                      progress=False)
    assert len(history["loss"]) == 3 and math.isfinite(history["loss"][-1])


def test_fit_refuses_bad_arguments(backend):
    model, X, y, opt = _xor_setup()
    mse = xnn.losses.MSELoss()
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        xnn.fit(model, X, y, loss=mse, optimizer=opt, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="epochs must be a positive int, got -1"):
        xnn.fit(model, X, y, loss=mse, optimizer=opt, epochs=-1)
    with pytest.raises(ValueError, match=r"X has 4 rows \(shape \(4, 2\)\), y has 3"):
        xnn.fit(model, X, y[:3, ...], loss=mse, optimizer=opt, epochs=1)
    with pytest.raises(ValueError, match="validation_data or validation_split, not both"):
        xnn.fit(model, X, y, loss=mse, optimizer=opt, epochs=1, validation_split=0.5,
                validation_data=(X, y))
    with pytest.raises(ValueError, match=r"SGD: lr must be a number in \[0, inf\), got -0.1"):
        xnn.optim.SGD(model.parameters(), lr=-0.1)


def test_history_reads_as_a_mapping_of_its_logs(backend):
    model, X, y, opt = _xor_setup()
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=3,
                      metrics=["mae"], validation_data=(X, y), progress=False)
    keys = ["loss", "mae", "val_loss", "val_mae"]
    assert list(history) == list(history.keys()) == keys and len(history) == 4
    assert dict(history) == history.history and dict(history.items())["mae"] == history["mae"]
    assert "val_mae" in history and "accuracy" not in history and 0 not in history
    with pytest.raises(KeyError, match=r"History has no 'accuracy'; it holds 'loss', 'mae', "
                                       r"'val_loss', 'val_mae'"):
        history["accuracy"]
    with pytest.raises(KeyError, match=r"'loss'; it holds nothing: no epoch ended"):
        xnn.History()["loss"]


def test_an_epochs_mean_of_many_steps_is_the_mean_of_all_of_them(backend, xp):
    from xnn.loop import STACK_CHUNK, mean  # noqa: PLC0415 - stacked a chunk at a time

    values = np.random.default_rng(0).normal(size=2 * STACK_CHUNK + 7)
    steps = [xnn.asarray(v) for v in values]
    full = [32] * len(steps)
    assert float(mean(xp, steps, full)) == float(xp.mean(xp.stack(steps)))
    short = full[:-1] + [5]  # a short last batch weighs its rows
    np.testing.assert_allclose(float(mean(xp, steps, short)),
                               np.dot(values, short) / sum(short), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("stored", ["memory", "memmap"])
def test_a_value_beyond_float32_is_named_as_what_the_cast_made_it(backend, tmp_path, stored):
    model = nn.Sequential(nn.Linear(3, 1, dtype="float32"))
    X = np.ones((8, 3))
    X[5, 1] = 1e300  # finite in float64, Inf in the model's float32
    if stored == "memmap":
        X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype,
                                      shape=X.shape)
        X[...] = np.ones((8, 3))
        X[5, 1] = 1e300
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 row\(s\), first at row 5; "
                                         r"clean or drop those rows before training \(in "
                                         r"float32, the model's dtype, a value beyond 3.4e\+38 "
                                         r"is Inf\)"):
        xnn.fit(model, X, np.ones((8, 1)), loss=xnn.losses.MSELoss(), epochs=1,
                optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), progress=False)
    X[5, 1] = np.nan  # a NaN is no cast's doing: no such words
    with pytest.raises(ValueError, match=r"first at row 5; clean or drop those rows before "
                                         r"training( \(found as the rows were read[^)]*\))?$"):
        xnn.fit(model, X, np.ones((8, 1)), loss=xnn.losses.MSELoss(), epochs=1,
                optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_fit_names_a_class_given_where_its_instance_belongs(backend):
    model, X, y, opt = _xor_setup()
    with pytest.raises(TypeError, match=r"^fit: loss must be an instance, got the class MSELoss; "
                                        r"write loss=MSELoss\(\)$"):
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss, optimizer=opt, epochs=1)
    with pytest.raises(TypeError, match=r"^fit: optimizer must be an instance, got the class "
                                        r"SGD; write optimizer=SGD\(model.parameters\(\), "
                                        r"...\)$"):
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.SGD, epochs=1)
    with pytest.raises(TypeError, match=r"^evaluate: loss must be an instance"):
        xnn.evaluate(model, X, y, loss=xnn.losses.MSELoss)


def test_fit_refuses_an_optimizer_over_another_models_parameters(backend):
    model, X, y, _ = _xor_setup()
    other = nn.Sequential(nn.Linear(2, 1))
    before = xnn.to_numpy(model.state_dict()["0.weight"])
    with pytest.raises(ValueError, match=r"fit: the optimizer \(SGD\) updates none of the "
                                         r"model's parameters \(was it built over another "
                                         r"model\?\); pass SGD\(model.parameters\(\), ...\)"):
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=1,
                optimizer=xnn.optim.SGD(other.parameters(), lr=0.1))
    np.testing.assert_array_equal(xnn.to_numpy(model.state_dict()["0.weight"]), before)
    # some of them, the rest frozen: trains those only
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=2, progress=False,
            optimizer=xnn.optim.SGD(model[2].parameters(), lr=0.5))
    np.testing.assert_array_equal(xnn.to_numpy(model.state_dict()["0.weight"]), before)
    assert not np.array_equal(xnn.to_numpy(model.state_dict()["2.weight"]),
                              xnn.to_numpy(_xor_setup()[0].state_dict()["2.weight"]))


def test_fit_refuses_nan_in_x_naming_the_row(backend):
    model, _, y, opt = _xor_setup()
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, np.nan], [1.0, 1.0]])
    before = xnn.to_numpy(model.state_dict()["0.weight"])
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 row\(s\), first at row 2"):
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=1)
    np.testing.assert_array_equal(xnn.to_numpy(model.state_dict()["0.weight"]), before)
    with pytest.raises(ValueError, match=r"y contains NaN or Inf .* first at row 0"):
        xnn.fit(model, datasets.xor()[0], [[np.inf], [1.0], [1.0], [0.0]],
                loss=xnn.losses.MSELoss(), optimizer=opt, epochs=1)


def test_fit_takes_finite_rows_whose_sum_overflows(backend):
    # the check reads one sum; 4 x 3e38 overflows float32, and that alone is no NaN or Inf
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 1, dtype="float32"))
    X = np.full((4, 2), 3e38, dtype=np.float32)
    y = np.full((4, 1), 3e38, dtype=np.float32)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.0), epochs=1,
                      progress=False)
    assert len(history["loss"]) == 1
    X[3, 1] = -np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or Inf in 1 row\(s\), first at row 3"):
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                optimizer=xnn.optim.SGD(model.parameters(), lr=0.0), epochs=1)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the check's overflow is expected
@pytest.mark.parametrize("bad", [None, math.nan, math.inf], ids=["finite", "nan", "inf"])
def test_terminate_on_nan_tells_huge_finite_gradients_from_nan(backend, bad):
    # gradients of 3e38 sum past float32's range: only a NaN or Inf among them stops
    model = nn.Linear(4, 1, dtype="float32")
    for p in model.parameters():
        p.grad = xnn.asarray(np.full(tuple(p.value.shape), 3e38, dtype=np.float32))
    if bad is not None:
        p.grad = xnn.asarray(np.array([bad], dtype=np.float32))
    stopped = []
    run = type("Run", (), {"model": model, "epoch": 0, "batch": 0,
                           "stop": lambda self, reason: stopped.append(reason)})()
    loss = xnn.asarray(np.float32(1.0))
    if bad is None:
        assert callbacks.TerminateOnNaN().before_step(run, loss) is True and not stopped
    else:
        with pytest.warns(RuntimeWarning, match="became NaN/Inf"):
            assert callbacks.TerminateOnNaN().before_step(run, loss) is False
        assert len(stopped) == 1


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    model, X, y, opt = _xor_setup()
    terminal = _TTY()
    monkeypatch.setattr("sys.stderr", terminal)
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=5, metrics=["mae"])
    text = terminal.getvalue()
    draws = text.split("\r")[1:]  # redrawn in place: one line, no new line per redraw
    bar, summary = draws[-1].splitlines()  # the bar, then the last epoch's logs in full
    assert "5/5" in bar and "loss=" in bar and "mae=" in bar
    assert summary.startswith("epoch 5/5: loss ") and ", mae " in summary
    assert text.count("\n") == 2 and text.endswith("\n")
    assert all(len(d.split("\n")[0]) <= 80 for d in draws)  # a terminal of unknown width: 80
    quiet = _TTY()
    monkeypatch.setattr("sys.stderr", quiet)
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=5, progress=False)
    assert quiet.getvalue() == ""


def test_progress_writes_one_line_per_epoch_where_there_is_no_terminal(monkeypatch):
    model, X, y, opt = _xor_setup()
    log = io.StringIO()  # a CI log or a file: no terminal
    monkeypatch.setattr("sys.stderr", log)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=4,
                      metrics=["mae"], validation_data=(X, y))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/4: loss {history['loss'][epoch - 1]:.4g}, ")
        assert "mae" in line and "val_loss" in line and "val_mae" in line


def test_early_stopping_stops_and_restores_the_best_weights(backend):
    model, train, test = _arithmetic_setup(300)
    states = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: states.append(
        {k: xnn.to_numpy(v) for k, v in run.model.state_dict().items()}))
    # lr so large the validation loss gets worse after the first epochs
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    history = xnn.fit(model, *train, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.6), epochs=50,
                      batch_size=32, seed=0, validation_data=test,
                      callbacks=[record, stopper], progress=False)
    losses = history["val_loss"]
    assert len(losses) < 50 and "did not improve for 2 epochs" in history.stop_reason
    best = int(np.argmin(losses))
    assert len(losses) == best + 3  # the best epoch, then patience worse ones (Keras' count)
    assert f"at epoch {best + 1})" in history.stop_reason  # counted from 1, as Keras displays
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(value), states[best][name])


def test_early_stopping_counts_a_tie_as_no_improvement(backend):
    model, X, y, _ = _xor_setup()
    opt = xnn.optim.SGD(model.parameters(), lr=0.0)  # the loss repeats exactly: each epoch ties
    stopper = callbacks.EarlyStopping(monitor="loss", patience=2)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=20,
                      callbacks=[stopper], progress=False)
    assert len(set(history["loss"])) == 1
    # as in Keras and Lightning: with min_delta=0 an equal loss is not an improvement
    assert len(history["loss"]) == 3  # the first (best) epoch, then patience ties
    assert "did not improve for 2 epochs" in history.stop_reason
    assert "at epoch 1)" in history.stop_reason


@pytest.mark.parametrize("patience", [0, 1, 20])
def test_early_stopping_stops_after_exactly_patience_epochs_without_improvement(backend, patience):
    model, X, y, _ = _xor_setup()
    opt = xnn.optim.SGD(model.parameters(), lr=0.0)  # every epoch after the first is no better
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=50,
                      callbacks=[callbacks.EarlyStopping(monitor="loss", patience=patience)],
                      progress=False)
    # Keras' and Lightning's rule (wait >= patience): the best epoch, then `patience` bad ones;
    # patience=0 stops at the first bad epoch
    assert len(history["loss"]) == 1 + max(patience, 1)


def _refused_before_training(model, opt, X, y, cb, **kwargs):
    """Run a fit that a callback must refuse up front; check nothing changed, return the error."""
    before = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    opt_before, calls = repr(opt.state_dict()), []
    spy = callbacks.LambdaCallback(on_train_begin=lambda run: calls.append("began"))
    with pytest.raises(ValueError) as err:
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=2,
                callbacks=[spy, cb], progress=False, **kwargs)
    assert calls == []                                   # refused before training began
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(value), before[name])
    assert repr(opt.state_dict()) == opt_before
    return str(err.value)


@pytest.mark.parametrize("make", [
    lambda path: callbacks.EarlyStopping(),
    lambda path: callbacks.ModelCheckpoint(str(path / "best.safetensors"), save_best_only=True),
], ids=["EarlyStopping", "ModelCheckpoint"])
def test_callbacks_refuse_a_monitor_that_will_not_be_logged_before_training(backend, make,
                                                                           tmp_path):
    model, X, y, opt = _xor_setup()
    message = _refused_before_training(model, opt, X, y, make(tmp_path), metrics=["mse"])
    assert message.endswith("monitor 'val_loss' will not be logged; fit logs ['loss', 'mse'] "
                            "(val_ keys need validation_data or validation_split)")
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=2,
                      validation_data=(X, y), callbacks=[make(tmp_path)], progress=False)
    assert len(history["val_loss"]) == 2                 # logged: accepted


@pytest.mark.parametrize("path, error", [
    ("ckpt-{val_loss:.3f}.safetensors", r"has the field {val_loss}, which names no logged key; "
     r"it may name ['epoch', 'loss'] (val_ keys need validation_data"),
    ("ckpt-{}.safetensors", "has the field {}, which names no logged key"),
    ("ckpt-{0}.safetensors", "has the field {0}, which names no logged key"),
    ("ckpt-{loss:03d}.safetensors", "is not a template str.format can fill with ['epoch', "
     "'loss']: Unknown format code 'd'"),
    ("ckpt-{epoch.safetensors", "is not a template str.format can fill"),
])
def test_model_checkpoint_refuses_a_path_template_before_training(backend, tmp_path, path, error):
    model, X, y, opt = _xor_setup()
    keeper = callbacks.ModelCheckpoint(str(tmp_path / path), monitor="loss")
    message = _refused_before_training(model, opt, X, y, keeper)
    assert message.startswith("ModelCheckpoint: path ") and error in message
    assert list(tmp_path.iterdir()) == []


class _PoisonedMSE(xnn.losses.MSELoss):
    """MSE whose gradient (and, with ``finite_loss=False``, value) turns NaN on its
    ``bad_call``-th call."""

    def __init__(self, bad_call: int, finite_loss: bool = False) -> None:
        super().__init__()
        self.calls, self.bad_call, self.finite_loss = 0, bad_call, finite_loss

    def __call__(self, pred, target):
        value, grad = super().__call__(pred, target)
        self.calls += 1
        if self.calls == self.bad_call:
            return (value if self.finite_loss else value * math.nan), grad * math.nan
        return value, grad


@pytest.mark.parametrize("finite_loss", [False, True],
                         ids=["nan-loss-and-gradient", "nan-gradient-finite-loss"])
def test_terminate_on_nan_stops_before_the_bad_step(backend, finite_loss):
    model, X, y, opt = _xor_setup()
    states = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: states.append(
        {k: xnn.to_numpy(v) for k, v in run.model.state_dict().items()}))
    # a NaN gradient with a finite loss must stop too: TerminateOnNaN watches both
    with pytest.warns(RuntimeWarning, match="became NaN/Inf at epoch 6, batch 1;"):
        history = xnn.fit(model, X, y, loss=_PoisonedMSE(bad_call=6, finite_loss=finite_loss),
                          optimizer=opt, epochs=20,
                          callbacks=[record, callbacks.TerminateOnNaN()], progress=False)
    assert len(history["loss"]) == 5 and "TerminateOnNaN" in history.stop_reason
    for name, value in model.state_dict().items():  # as after epoch 4's step: no NaN written
        np.testing.assert_array_equal(xnn.to_numpy(value), states[-1][name])
        assert np.all(np.isfinite(xnn.to_numpy(value)))


@pytest.mark.parametrize("at_batch, epochs_logged", [(3, 1), (7, 2)],
                         ids=["mid-epoch", "last-batch"])
def test_a_stop_asked_in_before_step_stops_after_the_step_it_took(backend, at_batch,
                                                                  epochs_logged):
    xnn.seed(0)
    X = np.random.default_rng(0).normal(size=(16, 2))
    model = nn.Sequential(nn.Linear(2, 1))
    opt = xnn.optim.SGD(model.parameters(), lr=0.1)

    def stop_then_take(run, loss):
        if run.epoch == 1 and run.batch == at_batch:
            run.stop("enough")
        return True

    history = xnn.fit(model, X, X[:, :1], loss=xnn.losses.MSELoss(), optimizer=opt,
                      batch_size=2, epochs=5, progress=False,
                      callbacks=[callbacks.LambdaCallback(before_step=stop_then_take)])
    assert opt.steps == 8 + at_batch + 1  # epoch 0's 8 steps, then up to the asking one
    assert len(history["loss"]) == epochs_logged and history.stop_reason == "enough"


def test_lambda_callback_sees_every_epoch_and_can_stop(backend):
    model, X, y, opt = _xor_setup()
    seen = []

    def on_epoch_end(run, logs):
        seen.append((run.epoch, logs["loss"]))
        if run.epoch == 2:
            run.stop("enough")

    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=10,
                      callbacks=[callbacks.LambdaCallback(on_epoch_end=on_epoch_end)],
                      progress=False)
    assert [e for e, _ in seen] == [0, 1, 2] and history.stop_reason == "enough"
    assert [v for _, v in seen] == history["loss"]
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        callbacks.LambdaCallback(on_epoch_end=3)


def test_fit_steps_the_scheduler_once_per_epoch(backend):
    model, X, y, opt = _xor_setup(lr=1.0)
    lrs = []
    watch = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: lrs.append(run.optimizer.lr))
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=5, callbacks=[watch],
            scheduler=xnn.optim.schedules.StepLR(opt, step_size=2, gamma=0.5), progress=False)
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]


def test_fit_hands_the_plateau_schedule_the_validation_loss(backend):
    model, X, y, _ = _xor_setup()
    opt = xnn.optim.SGD(model.parameters(), lr=1e-6)  # too small to improve by the threshold
    plateau = xnn.optim.schedules.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=6,
                      validation_data=(X, y), scheduler=plateau, progress=False)
    assert plateau.best == history["val_loss"][0]
    assert opt.lr == pytest.approx(1e-6 * 0.5 ** 2)  # epochs 3 and 5 end two bad ones in a row


def _classifier():
    xnn.seed(0)
    X = xnn.asarray(np.random.default_rng(0).standard_normal((40, 4)), dtype="float32")
    y = xnn.asarray(np.arange(40) % 3)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, X, y


def test_fit_checks_labels_once_up_front_and_not_every_step(backend, monkeypatch):
    model, X, y = _classifier()
    loss = xnn.losses.CrossEntropyLoss()
    checks = []
    real = xnn.losses.classification.check_labels
    monkeypatch.setattr(xnn.losses.classification, "check_labels",
                        lambda *a, **k: checks.append(1) or real(*a, **k))
    xnn.fit(model, X, y, loss=loss, optimizer=xnn.optim.SGD(model.parameters(), lr=0.1),
            epochs=3, batch_size=8, validation_data=(X, y), progress=False)
    assert len(checks) == 2          # training and validation labels, once each, not 15 steps
    assert loss.validate is True     # the user's loss is as it was


def test_fit_refuses_out_of_range_labels_before_training(backend):
    model, X, _ = _classifier()
    bad = xnn.asarray(np.r_[np.zeros(39, dtype=np.int64), 5])
    before = xnn.to_numpy(model[0].weight.value)
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: labels must lie in \[0, 3\), "
                                         r"got values in \[0, 5\]"):
        xnn.fit(model, X, bad, loss=xnn.losses.CrossEntropyLoss(),
                optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)
    np.testing.assert_array_equal(xnn.to_numpy(model[0].weight.value), before)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int16", "int32"])
def test_labels_of_any_integer_dtype_train_as_int64_labels(backend, dtype):
    """torch has no uint16/32/64 kernels for the losses' gather: fit makes every label int64."""
    def trained(labels):
        model, X, _ = _classifier()
        history = xnn.fit(model, X, labels, loss=xnn.losses.CrossEntropyLoss(),
                          optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                          batch_size=8, seed=0, metrics=["accuracy"], progress=False)
        return history.history["loss"], xnn.to_numpy(model[0].weight.value)

    loss, weight = trained(np.arange(40).astype(dtype) % 3)
    loss64, weight64 = trained(np.arange(40) % 3)
    assert loss == loss64
    np.testing.assert_array_equal(weight, weight64)


class _RowRecorder:
    """MSELoss that records, per epoch of training, the targets of the batches it sees."""

    def __init__(self) -> None:
        self.epochs: list[list] = []
        self.mse = xnn.losses.MSELoss()

    def __call__(self, pred, target):
        if self.epochs:  # fit's check of the first batch, before training, is not recorded
            self.epochs[-1].extend(xnn.to_numpy(target)[:, 0].tolist())
        return self.mse(pred, target)


def _row_orders(seed: int, epochs: int = 4) -> list[list[int]]:
    """The order in which fit visits 12 rows (batches of 4) in each epoch, with ``seed``."""
    xnn.seed(0)
    X = xnn.asarray(np.random.default_rng(0).standard_normal((12, 2)), dtype="float32")
    y = xnn.asarray(np.arange(12.0)[:, None], dtype="float32")  # target = the row's index
    model = nn.Sequential(nn.Linear(2, 1))
    loss = _RowRecorder()
    new_epoch = callbacks.LambdaCallback(on_epoch_begin=lambda run: loss.epochs.append([]))
    xnn.fit(model, X, y, loss=loss, optimizer=xnn.optim.SGD(model.parameters(), lr=0.01),
            epochs=epochs, batch_size=4, shuffle=True, seed=seed, callbacks=[new_epoch],
            progress=False)
    return [[int(v) for v in order] for order in loss.epochs]


def test_fit_with_a_seed_draws_a_new_row_order_every_epoch(backend):
    orders = _row_orders(seed=3)
    assert len(orders) == 4
    assert all(sorted(order) == list(range(12)) for order in orders)  # each row once per epoch
    # one generator made from the seed for the whole run, not one per epoch
    assert len({tuple(order) for order in orders}) == 4, orders
    assert _row_orders(seed=3) == orders  # and the same seed replays the same orders
    assert _row_orders(seed=4) != orders


def _validation_data():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((32, 4)), rng.standard_normal((32, 1))
    # validation rows far from the training rows: statistics taken from them would show
    return (xnn.asarray(X, dtype="float32"), xnn.asarray(y, dtype="float32"),
            xnn.asarray(3 * X[:16] + 5, dtype="float32"), xnn.asarray(y[:16] - 2, dtype="float32"))


def _eval_mode_loss(model, X, y) -> float:
    """MSE of ``model`` on (X, y) in eval mode, computed by hand (not through fit/evaluate)."""
    model.eval()
    try:
        return float(xnn.losses.MSELoss()(model(X), y)[0])
    finally:
        model.train()


def test_fit_validates_with_dropout_off(backend):
    X, y, X_val, y_val = _validation_data()
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                      optimizer=xnn.optim.SGD(model.parameters(), lr=0.01), epochs=3,
                      batch_size=8, seed=0, validation_data=(X_val, y_val), progress=False)
    # with dropout on, val_loss would be that of a random half of the network
    assert history["val_loss"][-1] == pytest.approx(_eval_mode_loss(model, X_val, y_val),
                                                    rel=1e-5)


def test_fit_validation_leaves_batchnorm_statistics_alone(backend):
    X, y, X_val, y_val = _validation_data()

    def train(validation_data):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
        history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                          optimizer=xnn.optim.SGD(model.parameters(), lr=0.05), epochs=3,
                          batch_size=8, seed=0, validation_data=validation_data,
                          progress=False)
        return model, history

    validated, history = train((X_val, y_val))
    alone, _ = train(None)
    # the running statistics (and the weights) come from the training batches only
    state, expected = validated.state_dict(), alone.state_dict()
    assert "1.running_mean" in state
    for name in expected:
        np.testing.assert_array_equal(xnn.to_numpy(state[name]), xnn.to_numpy(expected[name]),
                                      err_msg=name)
    # and val_loss normalises with them, as eval mode does
    assert history["val_loss"][-1] == pytest.approx(_eval_mode_loss(validated, X_val, y_val),
                                                    rel=1e-5)


def test_fit_with_ignore_index_0_trains_as_if_class_0_rows_were_absent(backend, float64):
    rng = np.random.default_rng(2)
    X_host, y_host = rng.standard_normal((30, 4)), np.arange(30) % 3
    keep = y_host != 0

    def train(X, y, loss):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        history = xnn.fit(model, xnn.asarray(X), xnn.asarray(y), loss=loss,
                          optimizer=xnn.optim.SGD(model.parameters(), lr=0.5), epochs=3,
                          progress=False)
        return model, history

    # the mean over the rows kept: full batch, the same as training on those rows alone
    ignoring, history = train(X_host, y_host, xnn.losses.CrossEntropyLoss(ignore_index=0))
    alone, expected = train(X_host[keep], y_host[keep], xnn.losses.CrossEntropyLoss())
    # (only the order of float64 sums differs: a GPU's may round differently)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-9)
    for name, value in alone.state_dict().items():
        np.testing.assert_allclose(xnn.to_numpy(ignoring.state_dict()[name]),
                                   xnn.to_numpy(value), rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_documented_one_liner_gives_class_labels_from_predict(backend):
    line = "labels = xnn.to_numpy(xnn.predict(model, X)).argmax(axis=1)"
    page = (pathlib.Path(__file__).parents[1] / "docs" / "training.md").read_text()
    assert f"```python\n{line}\n```" in page and line in " ".join(xnn.predict.__doc__.split())
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(0).normal(size=(10, 2))
    namespace = {"xnn": xnn, "model": model, "X": X}
    exec(line, namespace)  # noqa: S102 - the documented line, as written
    scores = xnn.to_numpy(xnn.predict(model, X))
    assert namespace["labels"].tolist() == [int(np.argmax(row)) for row in scores]
