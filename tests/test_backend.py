"""The backend selector, the conversions, and the missing-library errors."""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

import xnn
from xnn.backend import BackendUnavailableError


def _run_python(code: str, env_backend: str | None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "XNN_BACKEND"}
    if env_backend is not None:
        env["XNN_BACKEND"] = env_backend
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_default_backend_is_numpy_without_env_var():
    assert _run_python("import xnn; print(xnn.get_backend().name)", None) == "numpy"


def test_env_var_selects_backend_at_import():
    code = "import xnn; b = xnn.get_backend(); print(b.name, b.device)"
    name, device = _run_python(code, "array_api_strict").split(" ", 1)
    assert name == "array_api_strict" and "CPU_DEVICE" in device


def test_env_var_with_unknown_backend_raises_naming_it():
    import os

    env = dict(os.environ, XNN_BACKEND="tensorflow")
    out = subprocess.run([sys.executable, "-c", "import xnn; xnn.get_backend()"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert "XNN_BACKEND='tensorflow': unknown backend 'tensorflow'" in out.stderr


@pytest.mark.parametrize("value", ["tensorflow", "cupy:nope", "torch:tpu"])
def test_env_var_that_cannot_run_is_one_exception_naming_the_fix(value):
    import os

    env = dict(os.environ, XNN_BACKEND=value)
    out = subprocess.run([sys.executable, "-c", "import xnn; xnn.asarray([1.0])"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert out.stderr.count("Traceback") == 1 and "direct cause" not in out.stderr, out.stderr
    last = out.stderr.splitlines()[-1]
    assert f"XNN_BACKEND={value!r}: " in last and last.endswith("; or use XNN_BACKEND=numpy")


def test_env_var_is_read_at_import_not_later():
    code = ("import os, xnn; os.environ['XNN_BACKEND'] = 'array_api_strict'; "
            "print(xnn.get_backend().name)")
    assert _run_python(code, None) == "numpy"


def test_set_backend_changes_process_default():
    xnn.set_backend("array_api_strict")
    assert xnn.get_backend().name == "array_api_strict"
    xnn.set_backend("numpy")
    assert xnn.get_backend().name == "numpy"


def test_use_backend_restores_previous_and_nests():
    xnn.set_backend("numpy")
    with xnn.use_backend("array_api_strict") as outer:
        assert xnn.get_backend() == outer
        with xnn.use_backend("array_api_strict", "device1") as inner:
            assert str(xnn.get_backend().device) == str(inner.device)
            assert "device1" in str(inner.device)
        assert xnn.get_backend() == outer
    assert xnn.get_backend().name == "numpy"


def test_use_backend_restores_after_exception():
    xnn.set_backend("numpy")
    with pytest.raises(RuntimeError):
        with xnn.use_backend("array_api_strict"):
            raise RuntimeError("boom")
    assert xnn.get_backend().name == "numpy"


def test_use_backend_is_local_to_its_thread():
    xnn.set_backend("numpy")
    seen = {}
    entered, release = threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen["other"] = xnn.get_backend().name
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with xnn.use_backend("array_api_strict"):
        entered.set()
        release.wait(10)
        seen["main"] = xnn.get_backend().name
    t.join()
    assert seen == {"main": "array_api_strict", "other": "numpy"}


def test_unknown_backend_name_raises_value_error():
    with pytest.raises(ValueError, match=r"unknown backend 'mxnet'.*numpy, array_api_strict"):
        xnn.set_backend("mxnet")
    assert xnn.get_backend().name == "numpy"


def test_unknown_strict_device_raises():
    with pytest.raises(ValueError, match="device9"):
        xnn.set_backend("array_api_strict", "device9")


def test_numpy_rejects_gpu_device():
    with pytest.raises(ValueError, match="cpu"):
        xnn.set_backend("numpy", "cuda")


class _FakeDevice:
    """Like cupy.cuda.Device: an id, compares equal by id, unhashable, prints '<CUDA Device N>'."""

    __module__ = "cupy.cuda.device"
    __hash__ = None

    def __init__(self, id: int = 0) -> None:
        self.id = id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FakeDevice) and other.id == self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class _HostArray(np.ndarray):
    """A NumPy array with cupy's .get(), for the probe's kernel and matmul."""

    def get(self) -> np.ndarray:
        return np.asarray(self)


def _fake_cupy(monkeypatch, get_device_count=lambda: 1, *, current=0, arange=None):
    """A stand-in 'cupy' module with ``get_device_count`` and the current device ``current``;
    ``arange`` replaces the probe's first kernel. Returns the module (its .probes counts runs)."""
    fake = types.ModuleType("cupy")
    fake.ndarray = type("ndarray", (), {})  # array_api_compat looks this up
    fake.float32 = np.float32
    fake.probes = 0

    def host_arange(*args, **kwargs):
        fake.probes += 1
        return np.arange(*args, **kwargs).view(_HostArray)

    fake.arange = arange or host_arange
    fake.empty = lambda *args, **kwargs: np.empty(*args, **kwargs).view(_HostArray)
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count, getDevice=lambda: current),
        Device=_FakeDevice)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(xnn.backend, "_CUPY_PROBED", {})
    real = xnn.namespace.array_api_compat.array_namespace
    monkeypatch.setattr(xnn.namespace.array_api_compat, "array_namespace",
                        lambda *a: "cupy-namespace" if isinstance(a[0], _HostArray) else real(*a))
    return fake


def test_missing_cupy_says_how_to_install(monkeypatch):
    real_import = importlib.import_module

    def without_cupy(name, *args, **kwargs):  # jax's import passes package= by name
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_cupy)
    with pytest.raises(BackendUnavailableError, match=r'pip install "xnn-mlp\[cuda12\]" \(in a clone of the repository: pip install -e "\.\[cuda12\]"\); for CUDA 13, the extra cuda13'):
        xnn.set_backend("cupy")
    assert "cupy" not in xnn.available_backends()


def test_cupy_without_driver_says_no_gpu(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    _fake_cupy(monkeypatch, no_driver)
    with pytest.raises(BackendUnavailableError, match="cannot reach a CUDA GPU.*InsufficientDriver"):
        xnn.set_backend("cupy")


def test_cupy_with_zero_devices_says_none_visible(monkeypatch):
    _fake_cupy(monkeypatch, lambda: 0)
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU is visible"):
        xnn.set_backend("cupy")


@pytest.mark.parametrize("device", [None, "cuda", "CUDA:1", "gpu", 1, "1", np.int64(1),
                                    _FakeDevice(1)])
def test_cupy_takes_the_current_device_by_any_name_and_prints_as_cupy_index(monkeypatch, device):
    _fake_cupy(monkeypatch, lambda: 2, current=1)
    b = xnn.set_backend("cupy", device)
    assert b.device == _FakeDevice(1)
    assert str(b) == "cupy:1"
    assert hash(b) == hash(xnn.set_backend(str(b)))
    assert xnn.set_backend(str(b)) == b


def test_cupy_refuses_a_device_that_is_not_the_current_one(monkeypatch):
    _fake_cupy(monkeypatch, lambda: 2, current=0)
    with pytest.raises(ValueError, match=r"current CUDA device only, which is 0, but device 1 "
                                         r"was asked for.*cupy.cuda.Device\(1\).use\(\)"):
        xnn.set_backend("cupy", "cuda:1")
    assert xnn.get_backend().name == "numpy"


@pytest.mark.parametrize("device, error, message", [
    (5, ValueError, r"cupy device 5 does not exist: 2 GPU\(s\) visible"),
    ("cuda:x", ValueError, r"cupy has no device 'cuda:x'; expected None, 'cuda', 'cuda:N'"),
    ("cpu", ValueError, r"cupy has no device 'cpu'"),
    (1.5, TypeError, r"cupy device must be a str, int or cupy.cuda.Device .*got float"),
    (True, TypeError, r"got bool"),
])
def test_cupy_names_the_devices_it_takes(monkeypatch, device, error, message):
    _fake_cupy(monkeypatch, lambda: 2)
    with pytest.raises(error, match=message):
        xnn.set_backend("cupy", device)


def test_cupy_without_its_cuda_libraries_is_unavailable_naming_the_fix(monkeypatch):
    def no_nvrtc(*args, **kwargs):
        raise RuntimeError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12"')

    _fake_cupy(monkeypatch, arange=no_nvrtc)
    with pytest.raises(BackendUnavailableError,
                       match=r"cannot compute on it \(RuntimeError: Failure finding \"libnvrtc"
                             r".*NVRTC, cuBLAS.*\[ctk\] extra"):
        xnn.set_backend("cupy")
    assert "cupy" not in xnn.available_backends()


def test_cupy_probes_a_kernel_and_a_matmul_once_per_device(monkeypatch):
    fake = _fake_cupy(monkeypatch)
    xnn.set_backend("cupy")
    with xnn.use_backend("cupy"):
        pass
    assert "cupy" in xnn.available_backends()
    assert fake.probes == 1


def test_available_backends_lists_the_cpu_ones():
    names = xnn.available_backends()
    assert names[0] == "numpy"
    assert "array_api_strict" in names


def test_asarray_lands_on_active_backend_and_device(backend):
    x = xnn.asarray([[1.0, 2.0], [3.0, 4.0]])
    assert xnn.backend.array_namespace(x) is backend.xp
    assert backend.holds(x)
    assert xnn.backend.dtype_name(x.dtype) == "float32"


def test_asarray_copies_never_aliases(backend):
    source = np.arange(6.0).reshape(2, 3)
    x = xnn.asarray(source, dtype="float64")
    source[0, 0] = 100.0
    assert xnn.to_numpy(x)[0, 0] == 0.0
    y = xnn.asarray(x)
    assert y is not x
    np.testing.assert_array_equal(xnn.to_numpy(y), xnn.to_numpy(x))


def test_asarray_honours_dtype_names(backend):
    x = xnn.asarray([1, 2, 3], dtype="float64")
    assert xnn.backend.dtype_name(x.dtype) == "float64"
    i = xnn.asarray([1, 2, 3])
    assert xnn.backend.dtype_name(i.dtype) == "int64"


def test_to_numpy_round_trips_exactly(backend):
    source = np.random.default_rng(0).standard_normal((5, 3))
    back = xnn.to_numpy(xnn.asarray(source, dtype="float64"))
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, source)


def test_asarray_moves_arrays_from_another_backend(backend):
    with xnn.use_backend("array_api_strict", "device1"):
        other = xnn.asarray([1.5, 2.5], dtype="float64")
    here = xnn.asarray(other)
    assert xnn.backend.array_namespace(here) is backend.xp
    np.testing.assert_array_equal(xnn.to_numpy(here), [1.5, 2.5])


def test_asarray_rejects_ragged_data():
    with pytest.raises((TypeError, ValueError)):
        xnn.asarray([[1.0, 2.0], [3.0]])


def test_default_dtype_rejects_integers():
    with pytest.raises(ValueError, match="float32.*int32"):
        xnn.set_default_dtype("int32")


def test_require_gpu_turns_a_missing_gpu_into_a_failure():
    import os
    import pathlib

    if "cupy" in xnn.available_backends():
        pytest.skip("a GPU is present: nothing to turn into a failure")
    root = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, XNN_REQUIRE_GPU="1", XNN_TEST_BACKENDS="cupy")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(root / "tests" / "test_gpu.py")], env=env, capture_output=True,
                         text=True, check=False, cwd=root)
    assert out.returncode != 0
    assert "XNN_REQUIRE_GPU=1 but cupy cannot run" in out.stdout


def _pytest_with(env_vars: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    import os
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("XNN_TEST_BACKENDS", "XNN_REQUIRE_GPU")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                           str(root / "tests" / "test_xor.py")], env={**env, **env_vars},
                          capture_output=True, text=True, check=False, cwd=root)


@pytest.mark.parametrize("names", ["gpu", "numpy,Cuda", "nmupy"])
def test_test_backends_refuse_unknown_names(names):
    out = _pytest_with({"XNN_TEST_BACKENDS": names})
    assert out.returncode == 4, out.stdout + out.stderr
    assert "names unknown backend(s)" in out.stderr and "expected some of" in out.stderr


def test_test_backends_match_names_in_any_case():
    out = _pytest_with({"XNN_TEST_BACKENDS": "NumPy,CUPY"}, "--collect-only")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = {line.rsplit("[", 1)[1].rstrip("]") for line in out.stdout.splitlines() if "[" in line}
    assert ids == {"numpy", "cupy"}


def test_require_gpu_fails_when_no_gpu_backend_is_selected():
    out = _pytest_with({"XNN_TEST_BACKENDS": "numpy,torch", "XNN_REQUIRE_GPU": "1"})
    assert out.returncode == 4, out.stdout + out.stderr
    assert "XNN_REQUIRE_GPU=1 but XNN_TEST_BACKENDS='numpy,torch' selects no GPU backend" \
        in out.stderr


def test_to_numpy_and_asarray_stack_a_list_of_device_scalars(backend):
    xp = backend.xp
    values = [xp.sum(xnn.asarray([1.0, 2.0])), xp.sum(xnn.asarray([3.0, 4.0]))]
    np.testing.assert_array_equal(xnn.to_numpy(values), [3.0, 7.0])
    np.testing.assert_array_equal(xnn.to_numpy(xnn.asarray(tuple(values))), [3.0, 7.0])


def test_to_numpy_of_arrays_from_several_libraries_copies_each(backend):
    with xnn.use_backend("array_api_strict", "device1"):
        other = xnn.asarray(3.0)
    np.testing.assert_array_equal(xnn.to_numpy([xnn.asarray(1.0), np.float32(2), other]),
                                  [1.0, 2.0, 3.0])


def test_to_numpy_of_arrays_of_different_shapes_names_them(backend):
    with pytest.raises(TypeError, match=r"to_numpy: cannot make one array from a list of arrays "
                                        r"of different shapes \(\(2,\), \(1,\)\)"):
        xnn.to_numpy([xnn.asarray([1.0, 2.0]), xnn.asarray([1.0])])


# --- one namespace each, and placement ----------------------------------------------------------

def test_numpy_has_one_namespace():
    with xnn.use_backend("numpy") as b:
        assert xnn.get_backend().xp is xnn.namespace.array_namespace(np.ones(1))
        assert b.xp is xnn.backend.host_backend().xp is xnn._checks.HOST_XP
        assert xnn.expect("Probe", np.ones(1)) is b.xp


def test_arrays_give_their_backends_namespace(backend):
    x = xnn.asarray([1.0, 2.0])
    assert xnn.namespace.array_namespace(x) is backend.xp
    assert xnn.namespace.array_namespace(x, x) is backend.xp
    assert xnn.backend.backend_of(x) == backend


# (on the host, a GPU) for the devices the backend fixture runs on
_PLACES = {"numpy": (True, False), "array_api_strict": (False, False), "torch": (True, False),
           "cupy": (False, True), "jax": (False, False)}


def test_backend_says_whether_it_is_the_host_or_a_gpu(backend):
    assert (backend.is_host, backend.is_gpu) == _PLACES[backend.name]


def test_backend_holds_its_own_arrays_only(backend):
    x = xnn.asarray([1.0, 2.0])
    assert backend.holds(x) and backend.holds(x[:1])
    assert not backend.holds([1.0, 2.0]) and not backend.holds(None)
    with xnn.use_backend("array_api_strict", "device2") as elsewhere:  # no fixture's device
        other = xnn.asarray([1.0, 2.0])
    assert elsewhere.holds(other) and not elsewhere.holds(x)
    assert not backend.holds(other)
    assert xnn.backend.host_backend().holds(np.ones(2))
    assert backend.holds(np.ones(2)) is (backend.name == "numpy")


def test_strict_devices_are_told_apart():
    with xnn.use_backend("array_api_strict") as cpu:
        x = xnn.asarray([1.0])
    with xnn.use_backend("array_api_strict", "device1") as device1:
        y = xnn.asarray([1.0])
    assert cpu.holds(x) and not cpu.holds(y)
    assert device1.holds(y) and not device1.holds(x)


def test_detached_drops_the_graph_of_a_tensor_that_requires_grad():
    torch = pytest.importorskip("torch")
    source = torch.ones(3, requires_grad=True)
    plain = xnn.backend.detached(source)
    assert not plain.requires_grad and plain.data_ptr() == source.data_ptr()
    assert xnn.backend.requires_grad(source) and not xnn.backend.requires_grad(plain)
    other = np.ones(3)
    assert xnn.backend.detached(other) is other and not xnn.backend.requires_grad(other)


def test_torch_backend_holds_only_its_device():
    torch = pytest.importorskip("torch")
    with xnn.use_backend("torch", "cpu") as b:
        assert b.holds(torch.ones(2)) and not b.holds(np.ones(2))
        assert b.is_host and not b.is_gpu


def test_jax_takes_its_devices_by_name_and_prints_them_back():
    jax = pytest.importorskip("jax")
    cpu = jax.devices("cpu")[0]
    for device in (None, "cpu", "CPU", cpu):
        b = xnn.set_backend("jax", device)
        assert b.device == cpu and str(b) == "jax:cpu" and not b.is_host and not b.is_gpu
    assert xnn.set_backend(str(b)) == b and b.holds(jax.numpy.ones(2, device=cpu))
    with pytest.raises(ValueError, match="jax has no device 'tpu'; expected 'cpu', 'gpu'"):
        xnn.set_backend("jax", "tpu")
    with pytest.raises(TypeError, match="jax device must be a str or jax Device"):
        xnn.set_backend("jax", 0)


def test_jax_without_a_gpu_says_so_naming_the_fix():
    jax = pytest.importorskip("jax")
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("jax sees a GPU here")
    with pytest.raises(xnn.BackendUnavailableError, match="jax sees no GPU.*jax\\[cuda12\\]"):
        xnn.set_backend("jax", "gpu:0")


def test_jax_keeps_float64_and_int64(backend):
    # on jax, x64 mode: without it JAX would make float32 and int32 arrays of these
    x = xnn.asarray(np.arange(3.0), dtype="float64")
    labels = xnn.asarray(np.arange(3))
    assert xnn.backend.dtype_name(x.dtype) == "float64"
    assert xnn.backend.dtype_name(labels.dtype) == "int64"
    assert xnn.backend.dtype_name((x * 2).dtype) == "float64"


def test_numpy_views_host_arrays_without_a_copy(backend):
    x = xnn.asarray([1.0, 2.0])
    if not backend.is_host:
        pytest.skip(f"{backend} arrays are not host memory that NumPy shares")
    view = xnn.backend.host_view(x)
    x[0] = 5.0
    assert view[0] == 5.0 and isinstance(view, np.ndarray)


def test_numpy_namespace_matmul_of_one_column_refuses_mismatched_shapes():
    xp = xnn.namespace.array_namespace(np.ones(1))
    a, b = np.arange(3.0).reshape(3, 1), np.arange(4.0).reshape(1, 4)
    np.testing.assert_array_equal(xp.matmul(a, b), np.matmul(a, b))
    with pytest.raises(ValueError):
        xp.matmul(a, np.ones((3, 4)))  # a broadcast multiply would give a (3, 4) array


def test_numpy_namespace_tensordot_over_rows_equals_numpys():
    # a Linear layer's dL/dW = tensordot(x, dy, axes=([0], [0])): the fast path is x.T @ dy
    xp = xnn.namespace.array_namespace(np.ones(1))
    g = np.random.default_rng(0)
    for rows in (1, 7, 64):
        x = g.standard_normal((rows, 5)).astype(np.float32)
        dy = g.standard_normal((rows, 3)).astype(np.float32)
        np.testing.assert_array_equal(xp.tensordot(x, dy, axes=([0], [0])),
                                      np.tensordot(x, dy, axes=([0], [0])))
    a, b = g.standard_normal((4, 5)), g.standard_normal((5, 3))  # other axes: NumPy's own
    np.testing.assert_array_equal(xp.tensordot(a, b, axes=1), np.tensordot(a, b, axes=1))
    with pytest.raises(ValueError):
        xp.tensordot(np.ones((3, 2)), np.ones((4, 2)), axes=([0], [0]))  # 3 rows against 4
