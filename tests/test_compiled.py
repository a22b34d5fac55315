"""Compiled training (xnn/compiled.py): fit(jit_compile=True) and train_step give the eager
step's weights, dropout masks, logs and optimizer state; backends without a compiler say so."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import callbacks, losses, nn, optim, parity
from xnn.compiled import NotCompilableError, train_step

import catalogue


@pytest.fixture
def compiling(backend):
    """The backend under test where it has a compiler (jax); skipped elsewhere."""
    if backend.compiler is None:
        pytest.skip(f"{backend.name} has no compiler")
    return backend


@pytest.fixture
def eager_only(backend):
    """The backend under test where it has no compiler."""
    if backend.compiler is not None:
        pytest.skip(f"{backend.name} has a compiler")
    return backend


def host(model) -> dict[str, np.ndarray]:
    return {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}


def max_rel(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(a[k])), 1e-300))
               for k in a)


def fit_twice(make, X, y, **kwargs):
    """The same fit eagerly and compiled, from the same seed: (model, history, optimizer)."""
    out = []
    for jit in (False, True):
        xnn.seed(0)
        model, opt = make()
        history = xnn.fit(model, X, y, progress=False, jit_compile=jit, optimizer=opt,
                          **kwargs)
        out.append((model, history, opt))
    return out


@pytest.mark.parametrize("name", parity.TUTORIALS)
def test_compiled_fit_equals_eager_on_every_tutorial_network(compiling, float64, name):
    """200 steps (or the epochs nearest) of each tutorial network: <= 1e-10 relative."""
    t = parity.tutorial(name)
    X, y = t.data()
    n = X.shape[0]
    size = t.batch_size or n
    epochs = max(1, 200 // -(-n // size))

    def make():
        model = t.build()
        return model, t.optimizer(model.parameters())

    (m0, h0, o0), (m1, h1, o1) = fit_twice(make, X, y, loss=t.loss(), epochs=epochs,
                                           batch_size=t.batch_size, seed=3)
    assert max_rel(host(m0), host(m1)) <= 1e-10
    np.testing.assert_allclose(h1["loss"], h0["loss"], rtol=1e-10)
    assert o1.steps == o0.steps == epochs * -(-n // size)
    steps0 = [s.get("step") for s in o0.state.values()]
    steps1 = [s.get("step") for s in o1.state.values()]
    assert steps1 == steps0 and all(type(s) is type(t) for s, t in zip(steps0, steps1))


def compiled_and_eager(make, X, y, loss, **kwargs) -> tuple[dict, dict]:
    """The weights after 2 epochs of 2 steps of fit, eager and compiled, from one seed (a
    short program: the tutorial networks' test above runs the compiled loops)."""
    out = []
    for jit in (False, True):
        xnn.seed(0)
        model, opt = make()
        xnn.fit(model, X, y, loss=loss, optimizer=opt, epochs=2, batch_size=20,
                progress=False, jit_compile=jit, **kwargs)
        out.append(host(model))
    return out[0], out[1]


@pytest.mark.parametrize("name", sorted(catalogue.layers()))
def test_every_layer_compiles_to_the_eager_weights(compiling, float64, name):
    """Each public layer between two Linears: its forward and backprop traced give eager's
    weights (and buffers: running statistics, an adapted layer's)."""
    rng = np.random.default_rng(0)
    X, y = xnn.asarray(rng.normal(size=(40, 8))), xnn.asarray(rng.normal(size=(40, 1)))

    def make():
        layer = catalogue.layers()[name]()
        if hasattr(layer, "adapt"):
            layer.adapt(X)
        model = nn.Sequential(nn.Linear(8, 8), layer, nn.Linear(8, 1))
        return model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    eager, compiled = compiled_and_eager(make, X, y, losses.MSELoss())
    assert max_rel(eager, compiled) <= 1e-10


@pytest.mark.parametrize("name", sorted(catalogue.loss_classes()))
def test_every_loss_compiles_to_the_eager_weights(compiling, float64, name):
    loss = catalogue.construct(catalogue.loss_classes()[name])
    kind, last = catalogue.target_of(loss)
    y = catalogue.probe_targets(rows=40, width=4)[kind]

    def make():
        model = nn.Sequential(nn.Linear(3, 4), last())
        return model, optim.Adam(model.parameters(), lr=0.01)

    X = xnn.asarray(np.random.default_rng(2).normal(size=(40, 3)))
    eager, compiled = compiled_and_eager(make, X, y, loss)
    assert max_rel(eager, compiled) <= 1e-10


@pytest.mark.parametrize("name", sorted(catalogue.optimizer_classes()))
def test_every_optimizer_compiles_to_the_eager_weights(compiling, float64, name):
    cls = catalogue.optimizer_classes()[name]
    X, y = xnn.datasets.arithmetic(48, dtype="float64")
    X, y = X / 100, y / 100

    def make():
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
        return model, catalogue.construct(cls, params=model.parameters())

    eager, compiled = compiled_and_eager(make, X, y, losses.MSELoss())
    assert max_rel(eager, compiled) <= 1e-10


def test_compiled_fit_drops_what_eager_drops(compiling, float64):
    """Dropout's masks come from the same host keys: equal weights, and the generator ends
    where the eager run leaves it."""
    X, y = xnn.datasets.arithmetic(120, dtype="float64")

    def make():
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.4), nn.Linear(16, 3))
        return model, optim.SGD(model.parameters(), lr=1e-3, momentum=0.5)

    runs = []
    for jit in (False, True):
        xnn.seed(0)
        model, opt = make()
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=3, batch_size=32,
                progress=False, jit_compile=jit)
        runs.append((host(model), float(xnn.random.uniform((1,))[0])))
    assert max_rel(runs[0][0], runs[1][0]) <= 1e-12
    assert runs[0][1] == runs[1][1]


def test_compiled_fit_with_batchnorm_metrics_validation_and_schedule(compiling, float64):
    """Running statistics, metrics, val_ logs and a schedule stepped per epoch as eager."""
    X, y = xnn.datasets.arithmetic(150, dtype="float64")

    def make():
        model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
        # not Adam: the bias before BatchNorm has a gradient of rounding noise only, which
        # Adam's division by its root mean square turns into whole steps
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return model, opt

    runs = []
    for jit in (False, True):
        xnn.seed(0)
        model, opt = make()
        history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=4,
                          batch_size=40, metrics=["mae"], validation_split=0.2,
                          scheduler=optim.schedules.StepLR(opt, step_size=1, gamma=0.5),
                          progress=False, jit_compile=jit)
        runs.append((host(model), history, opt.lr))
    assert max_rel(runs[0][0], runs[1][0]) <= 1e-10
    for key in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(runs[1][1][key], runs[0][1][key], rtol=1e-10)
    assert runs[0][2] == runs[1][2] == 0.01 * 0.5 ** 4


def test_compiled_fit_runs_steps_a_callback_skips_as_eager(compiling, float64):
    """A before_step callback gets compiled steps: the steps it skips are skipped."""
    X, y = xnn.datasets.arithmetic(96, dtype="float64")
    seen = []

    def every_other(run, loss):
        seen.append(run.batch)
        return run.batch % 2 == 0

    def make():
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
        return model, optim.Adam(model.parameters(), lr=0.01)

    runs = []
    for jit in (False, True):
        seen.clear()
        xnn.seed(0)
        model, opt = make()
        history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=2,
                          batch_size=32, callbacks=[callbacks.LambdaCallback(
                              before_step=every_other)], progress=False, jit_compile=jit)
        runs.append((host(model), history["loss"], list(seen), opt.steps))
    assert max_rel(runs[0][0], runs[1][0]) <= 1e-12
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-12)
    assert runs[0][2] == runs[1][2] == [0, 1, 2, 0, 1, 2]
    assert runs[0][3] == runs[1][3] == 4


def test_train_step_equals_the_eager_hand_loop_with_clipping_and_lr_changes(compiling,
                                                                           float64):
    """train_step with clip and an lr set between steps (no new compile) equals the loop."""
    X, y = xnn.datasets.arithmetic(64, dtype="float64")
    clip = lambda ps: optim.clip_grad_norm(ps, 0.5)  # noqa: E731

    def make():
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
        return model, optim.AdamW(model.parameters(), lr=0.01)

    model, opt = make()
    loss = losses.SmoothL1Loss()
    eager = []
    for i in range(30):
        opt.lr = 0.01 / (1 + i)
        pred, backprop = model.forward(X)
        value, dpred = loss(pred, y)
        backprop(dpred)
        clip(model.parameters())
        opt.step()
        opt.zero_grad()
        eager.append(float(value))
    reference, ref_draw = host(model), float(xnn.random.uniform((1,))[0])

    model, opt = make()
    step = train_step(model, loss, opt, clip=clip)
    compiled = []
    for i in range(30):
        opt.lr = 0.01 / (1 + i)
        compiled.append(float(step(X, y)))
    np.testing.assert_allclose(compiled, eager, rtol=1e-12)
    assert max_rel(reference, host(model)) <= 1e-12
    assert float(xnn.random.uniform((1,))[0]) == ref_draw  # the masks' keys, drawn as eager
    from xnn.compiled import _CACHE
    kept = len(_CACHE)
    opt.lr = 0.5
    step(X, y)
    assert len(_CACHE) == kept  # the same compiled function: lr is an input
    assert opt.steps == 31 and all(s["step"] == 31 for s in opt.state.values())


def test_train_step_checks_class_labels_before_each_compiled_call(compiling, float64):
    """CrossEntropyLoss() as given (validate=True): the labels are checked on the host before
    each call, the step equals the eager one, and a bad label changes nothing."""
    X = xnn.random.normal((32, 6))
    y = xnn.asarray(np.arange(32) % 4, dtype="int64")

    def run(jit_compile):
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.1), nn.Linear(8, 4))
        step = train_step(model, losses.CrossEntropyLoss(), optim.Adam(model.parameters()),
                          jit_compile=jit_compile)
        return model, step, [float(step(X, y)) for _ in range(5)]

    (eager, _, eager_losses), (model, step, losses_) = run(False), run(True)
    np.testing.assert_allclose(losses_, eager_losses, rtol=1e-12)
    assert max_rel(host(eager), host(model)) <= 1e-12
    before = host(model)
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: labels must lie in \[0, 4\), got "
                                         r"values in \[0, 4\]"):
        step(X, xnn.asarray(np.arange(32) % 5, dtype="int64"))
    assert all(np.array_equal(before[k], v) for k, v in host(model).items())


def test_train_step_refuses_a_loss_that_reads_its_predictions_on_the_host(compiling):
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NotCompilableError, match=r"^train_step: BCELoss\(validate=True\) reads "
                                                 r"its inputs back .* pass validate=False or "
                                                 r"jit_compile=False$"):
        train_step(model, losses.BCELoss(), opt)
    step = train_step(model, losses.BCELoss(validate=False), opt)
    assert np.isfinite(float(step(xnn.random.normal((8, 3)), xnn.random.uniform((8, 1)))))


def test_compiled_fit_names_a_metric_that_reads_back_and_changes_nothing(compiling):
    def host_mean(pred, target):  # a value on the host: cannot be traced
        return float(xnn.to_numpy(pred).mean())

    xnn.seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    before = host(model)
    with pytest.raises(NotCompilableError, match=r"^fit: host_mean \(tests/test_compiled.py:\d+\) "
                                                 r"reads an array's value back to the host, "
                                                 r"which a compiled step cannot .* run it with "
                                                 r"jit_compile=False$"):
        xnn.fit(model, xnn.random.normal((16, 3)), xnn.random.normal((16, 1)), epochs=1,
                loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
                metrics=[host_mean], jit_compile=True, progress=False)
    assert all(np.array_equal(before[k], v) for k, v in host(model).items())


def test_train_step_state_saves_and_loads_like_eager(compiling, float64, tmp_path):
    """After compiled steps the model and optimizer save and load (ints stay ints)."""
    X, y = xnn.datasets.arithmetic(32, dtype="float64")
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    step = train_step(model, losses.MSELoss(), opt)
    for _ in range(3):
        step(X, y)
    state = opt.state_dict()
    assert state["state"]["step"] == [3, 3, 3, 3] and state["steps"] == 3
    xnn.save(tmp_path / "m.safetensors", model, optimizer=opt)
    loaded = xnn.load(tmp_path / "m.safetensors")
    assert max_rel(host(model), host(loaded.model)) == 0


def test_without_a_compiler_jit_compile_says_so_in_one_line(eager_only):
    """True is refused in one line naming the backend; 'auto' and False run eagerly."""
    X, y = xnn.datasets.xor()
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NotCompilableError) as err:
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=1, progress=False,
                jit_compile=True)
    assert "\n" not in str(err.value) and eager_only.name in str(err.value)
    assert opt.steps == 0
    with pytest.raises(NotCompilableError):
        train_step(model, losses.MSELoss(), opt)
    history = xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=2,
                      progress=False, jit_compile="auto")
    assert len(history["loss"]) == 2 and opt.steps == 2
    step = train_step(model, losses.MSELoss(), opt, jit_compile="auto")
    before = host(model)
    assert float(step(X, y)) >= 0 and opt.steps == 3
    assert max_rel(before, host(model)) > 0


def test_jit_compile_is_refused_with_distributed_and_bad_values(backend):
    X, y = xnn.datasets.xor()
    model = nn.Sequential(nn.Linear(2, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="jit_compile"):
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=1, progress=False,
                jit_compile="yes")
    if backend.compiler is not None:
        with pytest.raises(NotCompilableError, match="distributed"):
            xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=opt, epochs=1,
                    progress=False, jit_compile=True, distributed=True)
    assert opt.steps == 0


def test_a_compiled_epochs_program_does_not_grow_with_its_steps(compiling, monkeypatch):
    """The steps' losses and metrics stay stacked into the epoch's logs: a program an
    operation a step took seconds to trace and compile at 10,000 steps."""
    import jax  # noqa: PLC0415 - the compiling backend is jax's

    from xnn import compiled  # noqa: PLC0415

    seen = []
    real = compiled._Compiled.__call__

    def recording(self, current, *args):
        shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
                              if hasattr(a, "shape") else a, args)
        seen.append((self, current, shapes))  # before the call donates its buffers
        return real(self, current, *args)

    monkeypatch.setattr(compiled._Compiled, "__call__", recording)

    def program_lines(steps: int) -> int:
        X, y = xnn.datasets.arithmetic(8 * steps + 3)  # full batches of 8, and a short one
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3))
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(),
                lr=0.01), epochs=1, batch_size=8, metrics=["mae"], progress=False,
                jit_compile=True)
        kept, current, shapes = seen[-1]
        kept.current = current
        try:
            return len(kept.fn.lower(*shapes).as_text().splitlines())
        finally:
            kept.current = None

    few, many = program_lines(20), program_lines(400)
    assert many <= few + 10, (few, many)


def test_the_dropout_key_counts_kept_for_compiled_fits_are_bounded(compiling, monkeypatch):
    from xnn import compiled  # noqa: PLC0415

    monkeypatch.setattr(compiled, "_KEY_COUNTS_SIZE", 3)
    monkeypatch.setattr(compiled, "_KEY_COUNTS", compiled.OrderedDict())
    X, y = xnn.datasets.arithmetic(64)
    for width in range(2, 8):  # six signatures: a search over the hidden width
        xnn.seed(0)
        model = nn.Sequential(nn.Linear(2, width), nn.Dropout(0.2), nn.Linear(width, 3))
        xnn.fit(model, X, y, loss=losses.MSELoss(), optimizer=optim.SGD(model.parameters(),
                lr=0.01), epochs=1, batch_size=16, progress=False, jit_compile=True)
    assert len(compiled._KEY_COUNTS) == 3


def test_jit_compile_names_every_value_it_takes(backend):
    model = nn.Sequential(nn.Linear(3, 1))
    with pytest.raises(TypeError, match=r"train_step: jit_compile must be True, False or 'auto', "
                                        r"got str 'yes'"):
        train_step(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=0.1),
                   jit_compile="yes")
