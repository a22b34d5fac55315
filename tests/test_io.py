"""Checkpoints: portable across backends, exact continuation, safe against crafted files,
atomic against a crash mid-save."""

from __future__ import annotations

import io as _io
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xnn
from xnn import callbacks, nn
from xnn.io import CheckpointError


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16, init=nn.init.he_uniform), nn.ReLU(),
                         nn.Linear(16, 8, init=nn.init.normal(0.1)), nn.Tanh(), nn.Linear(8, 3))


def _train(model, opt, epochs):
    X, y = xnn.datasets.arithmetic(200, seed=1)
    return xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=epochs,
                   batch_size=32, progress=False)  # shuffles from xnn's global generator


def _host_state(model):
    return {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}


def test_checkpoint_round_trips_weights_and_dtype_onto_any_backend(backend, tmp_path, float64):
    with xnn.use_backend("numpy"):
        xnn.seed(0)
        model = _model()
    xnn.save(tmp_path / "m.npz", model)
    xnn.set_default_dtype("float32")  # the file's dtype wins over today's default
    ck = xnn.load(tmp_path / "m.npz")
    assert repr(ck.model) == repr(model) and ck.optimizer is None
    for name, value in ck.model.state_dict().items():
        assert xnn.backend.array_namespace(value) is backend.xp
        assert xnn.backend.dtype_name(value.dtype) == "float64"
        np.testing.assert_array_equal(xnn.to_numpy(value), _host_state(model)[name])


def test_save_on_backend_load_on_numpy_continues_like_the_uninterrupted_run(backend, tmp_path,
                                                                           float64):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 6)
    uninterrupted = _host_state(model)

    xnn.seed(0)
    model = _model()
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 3)
    xnn.save(tmp_path / "half.npz", model, opt, extra={"epoch": 3})
    xnn.seed(12345)  # whatever happens to the generator in between is undone by load
    with xnn.use_backend("numpy"):
        ck = xnn.load(tmp_path / "half.npz")
        assert ck.extra == {"epoch": 3} and ck.optimizer.steps == opt.steps
        _train(ck.model, ck.optimizer, 3)
    for name, value in _host_state(ck.model).items():
        np.testing.assert_allclose(value, uninterrupted[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_save_on_numpy_load_on_backend_continues_bit_for_bit_on_the_same_backend(tmp_path):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _train(model, opt, 4)
    uninterrupted = _host_state(model)
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _train(model, opt, 2)
    xnn.save(tmp_path / "c.npz", model, opt)
    ck = xnn.load(tmp_path / "c.npz")
    _train(ck.model, ck.optimizer, 2)
    for name, value in _host_state(ck.model).items():
        np.testing.assert_array_equal(value, uninterrupted[name], err_msg=name)


def test_load_refuses_a_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.array([_Evil(str(marker))], dtype=object)
    buffer = _io.BytesIO()
    np.savez(buffer, **{"__xnn__": payload})  # savez pickles object arrays
    (tmp_path / "evil.npz").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="not a readable xnn checkpoint.*pickle"):
        xnn.load(tmp_path / "evil.npz")
    assert not marker.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_load_refuses_truncated_and_foreign_files(tmp_path):
    xnn.seed(0)
    xnn.save(tmp_path / "good.npz", _model())
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.npz is not a readable xnn checkpoint"):
        xnn.load(tmp_path / "cut.npz")
    (tmp_path / "noise.npz").write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="not a readable xnn checkpoint"):
        xnn.load(tmp_path / "noise.npz")
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="has no __xnn__ entry"):
        xnn.load(tmp_path / "plain.npz")


def _rewrite_meta(src, dst, edit):
    import json

    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(bytes(arrays["__xnn__"]).decode())
    edit(meta, arrays)
    arrays["__xnn__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)


def test_load_names_what_is_wrong_in_a_tampered_checkpoint(tmp_path):
    xnn.seed(0)
    xnn.save(tmp_path / "good.npz", _model())
    cases = {
        "version": (lambda m, a: m.update(version=99), "format version 99"),
        "class": (lambda m, a: m["architecture"].update({"class": "os.system"}),
                  "unknown layer class 'os.system'"),
        "shape": (lambda m, a: a.update({"model/0.weight": np.zeros((3, 3), np.float32)}),
                  r"stores '0.weight' with shape \(3, 3\), the architecture needs \(2, 16\)"),
        "missing": (lambda m, a: a.pop("model/2.bias"), "lacks the array for '2.bias'"),
    }
    for name, (edit, message) in cases.items():
        _rewrite_meta(tmp_path / "good.npz", tmp_path / f"{name}.npz", edit)
        with pytest.raises(CheckpointError, match=message):
            xnn.load(tmp_path / f"{name}.npz")


def test_save_refuses_what_it_cannot_describe_and_leaves_the_old_file(tmp_path):
    xnn.seed(0)
    path = tmp_path / "m.npz"
    xnn.save(path, _model())
    before = path.read_bytes()
    custom = nn.Sequential(nn.Linear(2, 2, init=lambda shape, dtype=None: xnn.nn.init.zeros(shape)))
    with pytest.raises(CheckpointError, match=r"cannot describe Linear\(init=...\)"):
        xnn.save(path, custom)
    with pytest.raises(TypeError, match="extra must be JSON data"):
        xnn.save(path, _model(), extra={"when": object()})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary files left behind


CHILD = textwrap.dedent("""
    import sys, time
    import xnn
    from xnn import nn
    xnn.seed(0)
    xnn.save(sys.argv[1], nn.Sequential(nn.Linear(2, 3)))
    def slow(file, arrays):          # write part of the archive, then hang: the kill lands here
        file.write(b"PK" + b"x" * 1000)
        file.flush()
        print("mid-save", flush=True)
        time.sleep(60)
    xnn.io.write_arrays = slow
    xnn.save(sys.argv[1], nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
""")


def test_a_save_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "ckpt.npz"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "mid-save"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    ck = xnn.load(path)  # the first, complete checkpoint
    assert len(ck.model) == 1 and ck.model[0].out_features == 3


def test_model_checkpoint_keeps_the_best_epoch(backend, tmp_path):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01)
    X, y = xnn.datasets.arithmetic(200, seed=1)
    states = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: states.append(
        _host_state(run.model)))
    keeper = callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="loss",
                                       save_best_only=True)
    every = callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch}.npz"), monitor="loss")
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=4,
                      callbacks=[record, keeper, every], progress=False)
    best = int(np.argmin(history["loss"]))
    ck = xnn.load(tmp_path / "best.npz")
    assert ck.extra["epoch"] == best + 1  # counted from 1, as Keras names files
    assert ck.extra["logs"]["loss"] == history["loss"][best]
    for name, value in _host_state(ck.model).items():
        np.testing.assert_array_equal(value, states[best][name])
    assert sorted(p.name for p in tmp_path.glob("epoch*.npz")) == [f"epoch{i}.npz" for i in range(1, 5)]
