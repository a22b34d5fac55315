"""Checkpoints: safetensors files portable across backends and readers, exact continuation,
safe against crafted files, atomic against a crash mid-save, with the mode a file should have."""

from __future__ import annotations

import json
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

import catalogue
from conftest import load_or_skip
from model_state import assert_state, host_state


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16, init=nn.init.he_uniform), nn.ReLU(),
                         nn.Linear(16, 8, init=nn.init.normal(0.1)), nn.Tanh(), nn.Linear(8, 3))


def _train(model, opt, epochs):
    X, y = xnn.datasets.arithmetic(200, seed=1)
    return xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=epochs,
                   batch_size=32, progress=False)  # shuffles from xnn's global generator


def test_checkpoint_round_trips_weights_and_dtype_onto_any_backend(backend, tmp_path, float64):
    with xnn.use_backend("numpy"):
        xnn.seed(0)
        model = _model()
    xnn.save(tmp_path / "m.safetensors", model)
    xnn.set_default_dtype("float32")  # the file's dtype wins over today's default
    ck = xnn.load(tmp_path / "m.safetensors")
    assert repr(ck.model) == repr(model) and ck.optimizer is None
    for name, value in ck.model.state_dict().items():
        assert xnn.backend.array_namespace(value) is backend.xp
        assert xnn.backend.dtype_name(value.dtype) == "float64"
        np.testing.assert_array_equal(xnn.to_numpy(value), host_state(model)[name])


def test_save_on_backend_load_on_numpy_continues_like_the_uninterrupted_run(backend, tmp_path,
                                                                           float64):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 6)
    uninterrupted = host_state(model)

    xnn.seed(0)
    model = _model()
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 3)
    xnn.save(tmp_path / "half.safetensors", model, opt, extra={"epoch": 3})
    xnn.seed(12345)  # whatever happens to the generator in between is undone by load
    with xnn.use_backend("numpy"):
        ck = xnn.load(tmp_path / "half.safetensors")
        assert ck.extra == {"epoch": 3} and ck.optimizer.steps == opt.steps
        _train(ck.model, ck.optimizer, 3)
    for name, value in host_state(ck.model).items():
        np.testing.assert_allclose(value, uninterrupted[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_save_on_numpy_load_on_backend_continues_bit_for_bit_on_the_same_backend(tmp_path):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _train(model, opt, 4)
    uninterrupted = host_state(model)
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _train(model, opt, 2)
    xnn.save(tmp_path / "c.safetensors", model, opt)
    ck = xnn.load(tmp_path / "c.safetensors")
    _train(ck.model, ck.optimizer, 2)
    for name, value in host_state(ck.model).items():
        np.testing.assert_array_equal(value, uninterrupted[name], err_msg=name)


def test_checkpoint_is_a_safetensors_file_that_numpy_and_torch_read(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    xnn.seed(0)
    model = _model()
    opt = xnn.optim.Adam(model.parameters(), lr=1e-2)
    _train(model, opt, 1)
    path = tmp_path / "m.safetensors"
    xnn.save(path, model, opt, extra={"epoch": 1})
    tensors = load_file(path)
    model_keys = [k for k in tensors if not k.startswith("optimizer/")]
    assert sorted(model_keys) == sorted(model.state_dict())
    for key, value in host_state(model).items():
        np.testing.assert_array_equal(tensors[key], value)
    assert {k.split("/")[1] for k in tensors if k.startswith("optimizer/")} == {"exp_avg",
                                                                              "exp_avg_sq"}
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    assert meta["format"] == "xnn-checkpoint" and meta["format_version"] == "3"
    assert meta["xnn_version"] == xnn.__version__
    assert json.loads(meta["extra"]) == {"epoch": 1}
    assert json.loads(meta["optimizer"])["class"] == "Adam"
    torch_st = pytest.importorskip("safetensors.torch")
    for key, value in torch_st.load_file(path).items():
        np.testing.assert_array_equal(value.numpy(), tensors[key])


def _rewrite(src, dst, change):
    """Copy a checkpoint to ``dst`` after ``change(tensors, meta)`` edits its tensors or its
    metadata (parsed from JSON)."""
    from safetensors.numpy import save_file

    header, tensors = xnn.io.read_tensors(src)
    header.pop(xnn.io.DIGEST)  # a hand-edited file, as one without the tensors' digest
    meta = {k: v if k in xnn.io._PLAIN_FIELDS else json.loads(v) for k, v in header.items()}
    change(tensors, meta)
    save_file(tensors, dst, metadata={k: v if isinstance(v, str) else json.dumps(v)
                                      for k, v in meta.items()})
    return dst


def _modules(meta):
    return meta["architecture"]["modules"]


def _linear_entry(meta):
    return next(m for m in _modules(meta) if m["class"].endswith(".Linear"))


def test_load_refuses_a_file_whose_tensor_bytes_were_damaged(tmp_path):
    xnn.seed(0)
    model = _model()
    path = tmp_path / "model.safetensors"
    xnn.save(path, model)
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # the tensors follow the header
    data[start:start + 8] = np.array([np.nan, 1e30], dtype=np.float32).tobytes()
    (tmp_path / "damaged.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"damaged.safetensors is not a readable xnn "
                                              r"checkpoint \(ValueError: its tensors' bytes do "
                                              r"not match the digest written with them"):
        xnn.load(tmp_path / "damaged.safetensors")
    restored = xnn.load(path).model  # the sound file still loads, weights as saved
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(restored.state_dict()[name]),
                                      xnn.to_numpy(value))


def test_load_refuses_truncated_and_foreign_files(tmp_path):
    from safetensors.numpy import save_file

    xnn.seed(0)
    xnn.save(tmp_path / "good.safetensors", _model())
    data = (tmp_path / "good.safetensors").read_bytes()
    for cut in (3, 20, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="cut.safetensors is not a readable xnn "
                                                  "checkpoint"):
            xnn.load(tmp_path / "cut.safetensors")
    (tmp_path / "noise.bin").write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="noise.bin is not a readable xnn checkpoint"):
        xnn.load(tmp_path / "noise.bin")
    save_file({"w": np.zeros(3)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="plain.safetensors is not an xnn checkpoint"):
        xnn.load(tmp_path / "plain.safetensors")


def _crafted(path, header: dict, data: bytes = b"") -> None:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [4000, 4000], "data_offsets": [0, 64_000_000]},
    {"dtype": "F32", "shape": [4000, 4000], "data_offsets": [0, 16]},
    {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 16]},
    {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]},
    {"dtype": "O", "shape": [4], "data_offsets": [0, 16]},
], ids=["offsets past the end", "shape bigger than offsets", "overflowing shape",
        "negative shape", "object dtype"])
def test_a_header_declaring_more_than_the_file_holds_is_refused_before_reading(tmp_path, entry):
    import tracemalloc

    path = tmp_path / "crafted.safetensors"
    _crafted(path, {"__metadata__": {"format": "xnn-checkpoint"}, "0.weight": entry}, bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="crafted.safetensors is not a readable"):
            xnn.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_declared_layer_bigger_than_its_stored_weights_is_refused_without_allocating(tmp_path):
    import tracemalloc

    xnn.seed(0)
    xnn.save(tmp_path / "good.safetensors", _model())
    _rewrite(tmp_path / "good.safetensors", tmp_path / "big.safetensors",
             lambda t, m: _linear_entry(m)["arguments"].update(in_features=4000,
                                                                out_features=4000))
    assert (tmp_path / "big.safetensors").stat().st_size < 4000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"big.safetensors: Linear is inconsistent: "
                                                  r"weight has shape \(2, 16\), its settings "
                                                  r"need \(4000, 4000\)"):
            xnn.load(tmp_path / "big.safetensors")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # a Linear(4000, 4000) would take 64 MB


def _self_reference(tensors, meta):
    _modules(meta)[-1]["arguments"]["layers"]["list"][0] = {"module": len(_modules(meta)) - 1}


def test_load_names_what_is_wrong_in_a_tampered_checkpoint(tmp_path):
    xnn.seed(0)
    xnn.save(tmp_path / "good.safetensors", _model())
    cases = {
        "version": (lambda t, m: m.update(format_version="99"), "format version '99'"),
        "class": (lambda t, m: _modules(m)[0].update({"class": "os.system"}),
                  "unknown layer class 'os.system'"),
        "shape": (lambda t, m: t.update({"0.weight": np.zeros((3, 3), np.float32)}),
                  r"weight has shape \(3, 3\), its settings need \(2, 16\)"),
        "missing": (lambda t, m: t.pop("4.bias"), "lacks the tensor '4.bias'"),
        "unused": (lambda t, m: t.update({"stray": np.zeros(2)}),
                   r"tensors \['stray'\] belong to no module"),
        "int weight": (lambda t, m: t.update({"0.weight": np.ones((2, 16), np.int64)}),
                       "'0.weight' is stored as int64"),
        "cycle": (_self_reference, "only modules described before it"),
        "method attribute": (lambda t, m: _modules(m)[0]["arguments"].update(forward=1),
                             "Linear is inconsistent: .*unexpected keyword argument 'forward'"),
        "class setting": (lambda t, m: _modules(m)[1]["arguments"].update(takes_input_grad=True),
                          "ReLU is inconsistent: .*takes no arguments"),
        "deep json": (lambda t, m: m.update(extra="[" * 100_000 + "]" * 100_000),
                      "corrupt metadata 'extra'"),
        "negative width": (lambda t, m: _linear_entry(m)["arguments"].update(in_features=-2),
                         "in_features"),
        "bad json": (lambda t, m: m.update(architecture="{"), "corrupt metadata"),
    }
    for name, (edit, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        _rewrite(tmp_path / "good.safetensors", path, edit)  # a str is written as it is
        with pytest.raises(CheckpointError, match=f"{name}.safetensors.*{message}"):
            xnn.load(path)


class _Scaled(nn.Module):
    """A custom layer holding a callable: nothing a checkpoint can describe."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, x):
        return self.fn(x), lambda dy: dy


def test_save_refuses_what_it_cannot_describe_and_leaves_the_old_file(tmp_path):
    xnn.seed(0)
    path = tmp_path / "m.safetensors"
    xnn.save(path, _model())
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"xnn.save: cannot describe _Scaled.fn, a "
                                              r"function: .*docs/custom-layers.md"):
        xnn.save(path, nn.Sequential(nn.Linear(2, 2), _Scaled(lambda x: 2 * x)))
    with pytest.raises(TypeError, match="extra must be JSON data"):
        xnn.save(path, _model(), extra={"when": object()})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary files left behind


# --- the live module tree ------------------------------------------------------------------------

def _changed_after_construction():
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.LeakyReLU(), nn.Dropout(0.5))
    model.append(nn.Linear(8, 8))
    model.layers[3] = nn.ELU(alpha=0.3)              # replaced after construction
    model.layers[2].negative_slope = 0.3             # settings changed after construction
    model.layers[1].eps = 0.5
    model.append(nn.Dropout(0.1)).layers[-1].p = 0.0
    return model


def _shared():
    block = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    head = nn.Linear(4, 4)
    tied = nn.Linear(4, 4)
    tied.weight = head.weight                         # tied weights
    return nn.Sequential(block, nn.Residual(block), head, nn.ReLU(), tied)  # block used twice


@pytest.mark.parametrize("make", [_changed_after_construction, _shared],
                         ids=["changed after construction", "shared modules and weights"])
def test_a_model_loads_as_it_was_saved_not_as_it_was_built(backend, tmp_path, make):
    xnn.seed(0)
    model = make()
    x = xnn.random.normal((5, 3 if make is _changed_after_construction else 4))
    model(x)  # training mode: BatchNorm's running statistics move
    model.eval()
    xnn.save(tmp_path / "m.safetensors", model)
    loaded = xnn.load(tmp_path / "m.safetensors").model
    assert repr(loaded) == repr(model)
    assert list(loaded.state_dict()) == list(model.state_dict())
    np.testing.assert_array_equal(xnn.to_numpy(loaded(x)), xnn.to_numpy(model(x)))
    same = [[a is b for b in model.modules()] for a in model.modules()]
    assert [[a is b for b in loaded.modules()] for a in loaded.modules()] == same
    # every module's parameters against the model's: a parameter two modules share stays shared
    shared_params = [[a is b for b in model.parameters()]
                     for m in model.modules() for a in m.parameters()]
    assert [[a is b for b in loaded.parameters()]
            for m in loaded.modules() for a in m.parameters()] == shared_params


def checkpoint_cases() -> dict:
    """name -> maker: every public layer class (4 features in and out), and settings that
    change what the constructor makes."""
    return {**catalogue.layers(4), **{
        "Linear(bias=False)": lambda: nn.Linear(4, 4, bias=False),
        "BatchNorm1d(bare)": lambda: nn.BatchNorm1d(4, affine=False, track_running_stats=False),
        "BatchNorm1d(momentum=None)": lambda: nn.BatchNorm1d(4, momentum=None),
        "LayerNorm(bias=False)": lambda: nn.LayerNorm(4, bias=False),
        "Softmax(axis=0)": lambda: nn.Softmax(axis=0),
    }}


def assert_round_trips(layer: nn.Module, path) -> None:
    """``layer`` between two Linear layers, its statistics moved in training mode, loads from a
    checkpoint as it was saved: classes, settings, state and evaluation output."""
    model = nn.Sequential(nn.Linear(4, 4), layer, nn.Linear(4, 2))
    x = xnn.random.normal((5, 4))
    model(x)
    model.eval()
    xnn.save(path, model)
    loaded = xnn.load(path).model
    assert [type(m) for m in loaded.modules()] == [type(m) for m in model.modules()]
    assert repr(loaded) == repr(model)
    assert_state(loaded, host_state(model))
    np.testing.assert_array_equal(xnn.to_numpy(loaded(x)), xnn.to_numpy(model(x)))


@pytest.mark.parametrize("name", list(checkpoint_cases()))
def test_every_layer_round_trips_through_a_checkpoint(backend, tmp_path, name):
    xnn.seed(0)
    assert_round_trips(checkpoint_cases()[name](), tmp_path / "m.safetensors")


class _Offset(nn.Module):
    """y = x + offset: a constant array the constructor makes, neither parameter nor buffer."""

    def __init__(self, features: int):
        self.features = xnn.integer(self, "features", features, low=1)
        self.offset = xnn.asarray(np.arange(features, dtype=float))

    def forward(self, x):
        return x + self.offset, lambda dy: dy


def test_what_a_constructor_makes_on_load_lands_on_the_target_backend(backend, tmp_path):
    with xnn.use_backend("numpy"):  # active while saving and loading; the target is another
        xnn.save(tmp_path / "m.safetensors", nn.Sequential(nn.Linear(3, 3), _Offset(3)))
        loaded = xnn.io.load(tmp_path / "m.safetensors", backend=backend).model
    assert xnn.backend.array_namespace(loaded[1].offset) is backend.xp
    assert xnn.backend.array_namespace(loaded[0].weight.value) is backend.xp


class _Pair(nn.Module):
    """Lists its parameters from a list it keeps: setting the stored ones as attributes would
    leave the list's, which the constructor made, in use."""

    def __init__(self, n: int):
        self.n = xnn.integer(self, "n", n, low=1)
        self.pair = [nn.Parameter(nn.init.ones((n,))), nn.Parameter(nn.init.zeros((n,)))]

    def _own_parameters(self):
        yield from ((f"pair{i}", p) for i, p in enumerate(self.pair))

    def forward(self, x):
        scale, shift = self.pair[0].value, self.pair[1].value
        return x * scale + shift, lambda dy: dy * scale


def test_a_layer_whose_parameters_a_checkpoint_cannot_put_in_place_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"xnn.save: the architecture names parameters "
                                              r"\['0.pair0', '0.pair1'\] but the model it builds"):
        xnn.save(tmp_path / "m.safetensors", nn.Sequential(_Pair(3)))
    assert not (tmp_path / "m.safetensors").exists()


def test_shared_modules_still_share_after_load_when_trained(tmp_path):
    xnn.seed(0)
    model = _shared()
    xnn.save(tmp_path / "m.safetensors", model)
    loaded = xnn.load(tmp_path / "m.safetensors").model
    assert loaded[0] is loaded[1].module and loaded[4].weight is loaded[2].weight
    from safetensors.numpy import load_file

    stored = sorted(load_file(tmp_path / "m.safetensors"))
    assert stored == sorted(n for n, _ in model.named_parameters())  # each shared one once
    assert len(stored) == 5 and len(model.state_dict()) == 5
    opt = xnn.optim.SGD(loaded.parameters(), lr=0.1)
    x = xnn.random.normal((5, 4))
    y, backprop = loaded.forward(x)
    backprop(xnn.asarray(np.ones((5, 4)), dtype=y.dtype))
    opt.step()
    np.testing.assert_array_equal(xnn.to_numpy(loaded[4].weight.value),
                                  xnn.to_numpy(loaded[2].weight.value))
    assert len(loaded.parameters()) == len(model.parameters()) == 5


# --- files on disk ---------------------------------------------------------------------------------

def test_a_new_checkpoint_gets_the_umask_mode_and_an_existing_one_keeps_its_mode(tmp_path):
    old = os.umask(0o027)
    try:
        xnn.save(tmp_path / "new.safetensors", nn.Linear(2, 2))
        assert (tmp_path / "new.safetensors").stat().st_mode & 0o777 == 0o640
        (tmp_path / "shared.safetensors").write_bytes(b"")
        os.chmod(tmp_path / "shared.safetensors", 0o644)
        xnn.save(tmp_path / "shared.safetensors", nn.Linear(2, 2))
        assert (tmp_path / "shared.safetensors").stat().st_mode & 0o777 == 0o644
        os.chmod(tmp_path / "shared.safetensors", 0o600)
        xnn.save(tmp_path / "shared.safetensors", nn.Linear(2, 2))
        assert (tmp_path / "shared.safetensors").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


CHILD = textwrap.dedent("""
    import sys, time
    import xnn
    from xnn import nn
    xnn.seed(0)
    xnn.save(sys.argv[1], nn.Sequential(nn.Linear(2, 3)))
    def slow(file, arrays, metadata):   # write part of the file, then hang: the kill lands here
        file.write(b"x" * 1000)
        file.flush()
        print("mid-save", flush=True)
        time.sleep(60)
    xnn.io.write_arrays = slow
    xnn.save(sys.argv[1], nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
""")


def test_a_save_killed_midway_leaves_the_previous_checkpoint_and_the_next_save_cleans_up(
        tmp_path):
    path = tmp_path / "ckpt.safetensors"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "mid-save"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    ck = xnn.load(path)  # the first, complete checkpoint
    assert len(ck.model) == 1 and ck.model[0].out_features == 3
    assert len(os.listdir(tmp_path)) == 2  # the killed save's temporary is still there
    xnn.save(tmp_path / "other.safetensors", ck.model)  # another target's save leaves it
    assert len(os.listdir(tmp_path)) == 3
    xnn.save(path, ck.model)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors", "other.safetensors"]


def test_model_checkpoint_keeps_the_best_epoch(backend, tmp_path):
    xnn.seed(0)
    model = _model()
    opt = xnn.optim.SGD(model.parameters(), lr=0.01)
    X, y = xnn.datasets.arithmetic(200, seed=1)
    states = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda run, logs: states.append(
        host_state(run.model)))
    keeper = callbacks.ModelCheckpoint(str(tmp_path / "best.safetensors"), monitor="loss",
                                       save_best_only=True)
    every = callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch}.safetensors"), monitor="loss")
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=4,
                      callbacks=[record, keeper, every], progress=False)
    best = int(np.argmin(history["loss"]))
    ck = xnn.load(tmp_path / "best.safetensors")
    assert ck.extra["epoch"] == best + 1  # counted from 1, as Keras names files
    assert ck.extra["logs"]["loss"] == history["loss"][best]
    for name, value in host_state(ck.model).items():
        np.testing.assert_array_equal(value, states[best][name])
    assert sorted(p.name for p in tmp_path.glob("epoch*.safetensors")) == [f"epoch{i}.safetensors" for i in range(1, 5)]


def test_save_refuses_what_load_would_refuse(tmp_path):
    xnn.seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.1))
    model.layers[1].p = 1.5                   # a rate Dropout's constructor refuses
    with pytest.raises(CheckpointError, match=r"xnn.save: Dropout is inconsistent: .*p"):
        xnn.save(tmp_path / "m.safetensors", model)
    model.layers[1].p = 0.1
    model.layers[0].in_features = 5           # no longer the width of its weight
    with pytest.raises(CheckpointError, match=r"Linear is inconsistent: weight has shape "
                                              r"\(2, 3\), its settings need \(5, 3\)"):
        xnn.save(tmp_path / "m.safetensors", model)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_model_built_from_a_class_since_redefined_still_saves(tmp_path):
    """A notebook re-runs the cell defining a layer: models built before still save, and load
    as the class of that name defined now."""
    def define():
        class Twice(nn.Module):
            def __init__(self):
                self.factor = 2.0

            def forward(self, x):
                return x * self.factor, lambda dy: dy * self.factor
        return Twice

    old = define()()
    new_class = define()
    xnn.save(tmp_path / "m.safetensors", nn.Sequential(old))
    loaded = xnn.load(tmp_path / "m.safetensors").model
    assert type(loaded[0]) is new_class and loaded[0].factor == 2.0


def test_save_names_a_missing_folder_or_a_folder_given_as_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"xnn.save: the folder .*nowhere of .* does not "
                                                r"exist"):
        xnn.save(tmp_path / "nowhere" / "m.safetensors", nn.Linear(1, 1))
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="folder is a folder"):
        xnn.save(tmp_path / "folder", nn.Linear(1, 1))
    assert sorted(os.listdir(tmp_path)) == ["folder"]


def test_a_shared_batchnorm_keeps_one_set_of_running_statistics(backend, tmp_path):
    from safetensors.numpy import load_file

    xnn.seed(0)
    bn = nn.BatchNorm1d(3)
    model = nn.Sequential(bn, nn.Linear(3, 3), bn)
    model(xnn.random.normal((8, 3)))
    xnn.save(tmp_path / "m.safetensors", model)
    assert not any(k.startswith("2.") for k in load_file(tmp_path / "m.safetensors"))
    loaded = xnn.load(tmp_path / "m.safetensors").model
    assert loaded[0] is loaded[2]
    assert list(loaded.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(loaded.state_dict()[key]), xnn.to_numpy(value))


@pytest.mark.parametrize("extra", ["", "hello", "123", "null", ["a", "1"], {"note": "[1]"}])
def test_extra_strings_come_back_as_the_same_strings(tmp_path, extra):
    # a string is JSON data too: it must not be read back as JSON text ("123" -> 123)
    xnn.save(tmp_path / "m.safetensors", nn.Linear(1, 1), extra=extra)
    assert xnn.load(tmp_path / "m.safetensors").extra == extra


def _extra_arrays() -> dict:
    """Arrays of the active backend in a JSON-like extra, of each dtype safetensors holds."""
    rng = np.random.default_rng(0)
    return {"x_mean": xnn.asarray(rng.normal(size=5), dtype="float32"),
            "runs": [{"scale": xnn.asarray(rng.normal(size=(2, 3)), dtype="float64")},
                     xnn.asarray(np.arange(4, dtype=np.int64)), "note"],
            "mask": xnn.asarray(np.array([True, False])), "empty": xnn.asarray(np.zeros((0, 2))),
            "scalar": xnn.asarray(np.array(2.5)), "epoch": 7, 3: xnn.asarray(np.array([1]))}


@pytest.mark.parametrize("target", ["numpy", "array_api_strict", "torch"])
def test_extra_arrays_round_trip_as_numpy_arrays_saved_on_one_backend_loaded_on_another(
        backend, tmp_path, target):
    load_to = load_or_skip(target)
    extra = _extra_arrays()
    xnn.save(tmp_path / "m.xnn", nn.Linear(2, 2), extra=extra)
    got = xnn.load(tmp_path / "m.xnn", backend=load_to).extra
    assert list(got) == ["x_mean", "runs", "mask", "empty", "scalar", "epoch", "3"]
    assert got["epoch"] == 7 and got["runs"][2] == "note"
    pairs = [(got[k], extra[k]) for k in ("x_mean", "mask", "empty", "scalar")] + [
        (got["runs"][0]["scale"], extra["runs"][0]["scale"]), (got["runs"][1], extra["runs"][1]),
        (got["3"], extra[3])]
    for loaded, saved in pairs:
        host = xnn.to_numpy(saved)
        assert type(loaded) is np.ndarray and loaded.dtype == host.dtype
        np.testing.assert_array_equal(loaded, host, strict=True)  # shape and dtype too


def test_extra_that_is_an_array_itself_round_trips(tmp_path):
    xnn.save(tmp_path / "m.xnn", nn.Linear(2, 2), extra=np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(xnn.load(tmp_path / "m.xnn").extra,
                                  np.eye(3, dtype=np.float32), strict=True)


def test_extra_arrays_safetensors_cannot_hold_are_refused_and_the_old_file_kept(tmp_path):
    path = tmp_path / "m.xnn"
    xnn.save(path, nn.Linear(2, 2), extra={"ok": np.ones(2)})
    before = path.read_bytes()
    for bad, dtype in [(np.array(["a"]), "<U1"), (np.ones(2, complex), "complex128"),
                       (np.array([None]), "object")]:
        with pytest.raises(TypeError, match=rf"xnn.save: extra must be JSON data .*and arrays "
                                            rf"of numbers: the array at \['runs', 1\] has dtype "
                                            rf"{dtype}"):
            xnn.save(path, nn.Linear(2, 2), extra={"runs": [0, bad]})
    cycle: list = [np.ones(1)]
    cycle.append(cycle)
    with pytest.raises(ValueError, match="extra must be JSON data without cycles"):
        xnn.save(path, nn.Linear(2, 2), extra=cycle)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.xnn"]


def test_load_refuses_extra_tensors_that_do_not_match_their_placeholders(tmp_path):
    xnn.save(tmp_path / "good.xnn", nn.Linear(2, 2), extra={"a": np.ones(2), "b": [1, None]})
    cases = {
        "not a placeholder": lambda t, m: m.update(extra_tensors=[["b", 0]]),
        "missing place": lambda t, m: m.update(extra_tensors=[["c"]]),
        "through a string": lambda t, m: m.update(extra={"a": "text"}),
        "not a list": lambda t, m: m.update(extra_tensors={"a": 0}),
        "missing tensor": lambda t, m: t.pop("extra/0"),
        "stray tensor": lambda t, m: t.update({"extra/1": np.ones(1)}),
        "no paths": lambda t, m: m.pop("extra_tensors"),
        "twice": lambda t, m: (m.update(extra_tensors=[["a"], ["a"]]),
                               t.update({"extra/1": np.ones(1)})),
    }
    for name, edit in cases.items():
        path = _rewrite(tmp_path / "good.xnn", tmp_path / f"{name}.xnn", edit)
        with pytest.raises(CheckpointError, match=f"{name}.xnn has unusable metadata "
                                                  f"'extra_tensors'"):
            xnn.load(path)
    ck = xnn.load(tmp_path / "good.xnn")
    np.testing.assert_array_equal(ck.extra["a"], np.ones(2))
    assert ck.extra["b"] == [1, None]  # a None of the user's stays None
