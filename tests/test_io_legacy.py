"""Checkpoints written by xnn 0.1 (npz) still load, give the predictions 0.1 gave, continue
training, and are read as untrusted: pickles, compressed members and declared sizes beyond
the stored bytes are refused before anything is allocated."""

from __future__ import annotations

import io as _io
import json
import pathlib
import shutil
import zipfile

import numpy as np
import pytest

import xnn
from xnn.io import CheckpointError

DATA = pathlib.Path(__file__).resolve().parent / "data"
V01 = DATA / "v01_checkpoint.npz"  # made by tests/data/make_v01_checkpoint.py with xnn 0.1


def test_a_01_checkpoint_gives_the_predictions_01_gave_on_every_backend(backend):
    expected = np.load(DATA / "v01_predictions.npz")
    ck = xnn.load(V01)
    assert ck.extra == {"epoch": 3, "made_by": "xnn 0.1"}
    assert ck.optimizer.steps == int(expected["steps"])
    for value in ck.model.state_dict().values():
        assert xnn.backend.array_namespace(value) is backend.xp
    ck.model.eval()
    out = ck.model(xnn.asarray(expected["inputs"], dtype="float64"))
    np.testing.assert_allclose(xnn.to_numpy(out), expected["outputs"], rtol=1e-12, atol=1e-14)


def test_a_01_checkpoint_keeps_its_optimizer_state_and_saves_in_the_new_format(tmp_path):
    with np.load(V01) as archive:
        stored = {k: archive[k] for k in archive.files}
    ck = xnn.load(V01)
    state = ck.optimizer.state_dict()["state"]
    for i, value in enumerate(state["exp_avg"]):
        np.testing.assert_array_equal(xnn.to_numpy(value), stored[f"optim/exp_avg/{i}"])
    xnn.save(tmp_path / "new.safetensors", ck.model, ck.optimizer)
    assert not (tmp_path / "new.safetensors").read_bytes().startswith(b"PK")
    again = xnn.load(tmp_path / "new.safetensors")
    for key, value in again.model.state_dict().items():
        np.testing.assert_array_equal(xnn.to_numpy(value), stored[f"model/{key}"])
    assert again.optimizer.steps == ck.optimizer.steps


def _members(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, value in members.items():
            buffer = _io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=True)
            archive.writestr(f"{name}.npy", buffer.getvalue())


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_in_a_01_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    _write(tmp_path / "evil.npz", {"__xnn__": np.array([_Evil(str(marker))], dtype=object)})
    with pytest.raises(CheckpointError, match="evil.npz member '__xnn__.npy' holds objects"):
        xnn.load(tmp_path / "evil.npz")
    assert not marker.exists()


def test_a_compressed_member_is_refused_instead_of_inflated(tmp_path):
    members = _members(V01)
    members["model/0.weight"] = np.zeros((1000, 1000))  # 8 MB of zeros deflate to a few KB
    _write(tmp_path / "bomb.npz", members, zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    with pytest.raises(CheckpointError, match="bomb.npz member '.*' is compressed"):
        xnn.load(tmp_path / "bomb.npz")


def test_a_member_declaring_more_than_it_holds_is_refused(tmp_path):
    members = _members(V01)
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        for name, value in members.items():
            buffer = _io.BytesIO()
            np.lib.format.write_array(buffer, value)
            data = buffer.getvalue()
            if name == "model/0.weight":  # the header claims 999 columns, the data holds 16
                assert b"'shape': (4, 16)" in data
                data = data.replace(b"'shape': (4, 16)", b"'shape': (4,999)")
            archive.writestr(f"{name}.npy", data)
    with pytest.raises(CheckpointError, match=r"big.npz member 'model/0.weight.npy' declares "
                                              r"\(4, 999\) float64 \(31968 bytes\) but holds"):
        xnn.load(tmp_path / "big.npz")


def test_a_01_architecture_declaring_a_huge_layer_is_refused_before_building(tmp_path):
    import tracemalloc

    members = _members(V01)
    meta = json.loads(bytes(members["__xnn__"]).decode())
    meta["architecture"]["args"][0]["args"] = [4000, 4000]
    members["__xnn__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    _write(tmp_path / "huge.npz", members)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"huge.npz stores '0.weight' with shape "
                                                  r"\(4, 16\), the architecture needs "
                                                  r"\(4000, 4000\)"):
            xnn.load(tmp_path / "huge.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def _peak_bytes_of(call):
    """The peak of Python-tracked memory (NumPy's arrays included) while ``call()`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("width", [{"list": [10_000_000]}, {"tuple": [10_000_000]},
                                   {"list": [{"tuple": [10_000_000]}]}],
                         ids=["list", "tuple", "nested"])
def test_a_01_layer_width_written_as_a_list_is_refused_before_allocating(tmp_path, width):
    members = _members(V01)
    meta = json.loads(bytes(members["__xnn__"]).decode())
    layer_norm = meta["architecture"]["args"][4]
    assert layer_norm["class"].endswith("LayerNorm")
    layer_norm["args"] = [width]  # 80 MB of float64 weights if anything allocated them
    members["__xnn__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    _write(tmp_path / "wide.npz", members)

    def load():
        with pytest.raises(CheckpointError, match=r"wide.npz.*(needs \(10000000,\)|"
                                                  r"normalized_shape must be an int)"):
            xnn.load(tmp_path / "wide.npz")

    assert _peak_bytes_of(load) < 5_000_000


def test_a_zip_directory_declaring_more_bytes_than_the_file_has_is_refused_unread(tmp_path):
    import struct

    buffer = _io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(4))
    npy = buffer.getvalue().replace(b"'shape': (4,)", b"'shape': (10000000,)")
    raw = _io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("__xnn__.npy", npy)
    blob = bytearray(raw.getvalue())
    for signature, at in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):  # local, central entry
        struct.pack_into("<II", blob, blob.find(signature) + at, 80_000_200, 80_000_200)
    (tmp_path / "lies.npz").write_bytes(bytes(blob))  # under 300 bytes on disk

    def load():
        with pytest.raises(CheckpointError, match=r"lies.npz member '__xnn__.npy' declares "
                                                  r"\(10000000,\) float64 \(80000000 bytes\) "
                                                  r"but holds \d{3} bytes"):
            xnn.load(tmp_path / "lies.npz")

    assert _peak_bytes_of(load) < 5_000_000
