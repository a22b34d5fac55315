"""Every example runs on every backend with few epochs, reaches its metric and writes its plots."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

import xnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

pytest.importorskip("matplotlib", reason="the examples plot with matplotlib (xnn[plot])")


def _example(name: str):
    """examples/<name>.py as a module, loaded from its file: benchmarks/, which other test
    files put on sys.path too, has modules of the same names (streaming, distributed)."""
    module_name = f"_example_{name}"
    if module_name not in sys.modules:
        path = ROOT / "examples" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[module_name]

# example, extra arguments, the plots it writes, and what its returned metrics must satisfy
CASES = [
    ("linear_regression", ["--epochs", "150"], ["loss.png", "fit.png"],
     lambda m: abs(m["m"] - 2.0) < 0.05 and abs(m["b"] - 1.0) < 0.05),
    ("xor", ["--epochs", "2000", "--lr", "3"], ["loss.png", "decision_surface.png"],
     lambda m: m["max_error"] < 0.1),
    # the data's variance is about 68; lr 0.03 for 400 epochs was unstable (2.8 to 4.1 with
    # torch's thread count), 0.02 for 600 lands at 1.2-1.3 on every backend
    ("polynomial_regression", ["--epochs", "600", "--lr", "0.02"], ["loss.png", "fit.png"],
     lambda m: m["mse_truth"] < 2.0),
    ("deep_mlp", ["--epochs", "40", "--layer-dims", "2,16,8,1"],
     ["loss.png", "decision_surface.png"], lambda m: m["test_accuracy"] > 0.9),
    ("arithmetic", ["--epochs", "3"], ["loss.png"], lambda m: m["test_r2"] > 0.99),
    ("digits", ["--epochs", "8"], ["loss.png", "confusion_matrix.png"],
     lambda m: m["test_accuracy"] > 0.9),
    ("sklearn_pipeline", ["--epochs", "12", "--lr", "0.01"], ["loss_curves.png"],
     lambda m: m["test_accuracy"] > 0.9),
    ("streaming", ["--rows", "20000", "--epochs", "3", "--lr", "0.003"], ["loss.png"],
     lambda m: m["val_r2"] > 0.8 and m["rss_growth_mib"] <= m["budget_mib"]),
]


@pytest.mark.parametrize("name, args, plots, check", CASES, ids=[c[0] for c in CASES])
def test_example_reaches_its_metric_and_writes_its_plots(backend, tmp_path, capsys, name, args,
                                                         plots, check):
    if name in ("digits", "sklearn_pipeline"):
        pytest.importorskip("sklearn", reason=f"{name}.py loads scikit-learn's bundled data")
    example = _example(name)
    metrics = example.main([*args, "--out", str(tmp_path), "--no-progress"])
    assert check(metrics), metrics
    for plot in plots:
        assert (tmp_path / plot).stat().st_size > 10_000, plot  # a real picture, not an empty file
    printed = capsys.readouterr().out
    assert backend.name in printed and "plots written" in printed


@pytest.mark.parametrize("name, args, plots, check", CASES, ids=[c[0] for c in CASES])
def test_distributed_reaches_fit_or_is_not_offered(monkeypatch, tmp_path, capsys, name, args,
                                                   plots, check):
    """--distributed is passed to every fit an example makes; an example that trains by hand
    or through scikit-learn has no such flag (it would train alone on every rank)."""
    if name in ("digits", "sklearn_pipeline"):
        pytest.importorskip("sklearn", reason=f"{name}.py loads scikit-learn's bundled data")
    seen = []
    fit = xnn.fit

    def recording(*a, **kw):
        seen.append(kw.get("distributed", False))
        return fit(*a, **kw)

    monkeypatch.setattr(xnn, "fit", recording)
    example = _example(name)
    argv = [*args[:2], "--out", str(tmp_path), "--no-progress", "--distributed"]
    if name in ("xor", "sklearn_pipeline"):
        with pytest.raises(SystemExit) as stop:
            example.main(argv)
        assert stop.value.code == 2
        assert "unrecognized arguments: --distributed" in capsys.readouterr().err
        return
    example.main(argv + (["--rows", "3000"] if name == "streaming" else []))
    assert seen and all(seen), seen  # one process: the one-rank world trains as plain fit


def test_digits_exports_onnx_and_onnx_runtime_predicts_as_xnn(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="digits.py loads scikit-learn's bundled data")
    pytest.importorskip("onnxruntime", reason="the test extra installs onnxruntime")
    digits = _example("digits")
    path = tmp_path / "digits.onnx"
    metrics = digits.main(["--epochs", "2", "--out", str(tmp_path), "--no-progress",
                           "--onnx", str(path)])
    assert path.stat().st_size > 10_000 and metrics["onnx_agreement"] == 1.0
    assert "ONNX Runtime predicts" in capsys.readouterr().out


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "0"])
def test_examples_take_cuda_device_names_for_cupy(monkeypatch, device):
    from test_backend import _fake_cupy  # noqa: PLC0415 - a stand-in cupy module
    from _common import parse_args  # noqa: PLC0415 - examples/ is on the path above

    _fake_cupy(monkeypatch)
    parse_args("doc", epochs=1, lr=0.1, argv=["--backend", "cupy", "--device", device])
    assert str(xnn.get_backend()) == "cupy:0"


@pytest.mark.parametrize("backend, why", [
    ("numpy", "numpy runs on device 'cpu' only, got 'nope'"),
    ("torch", "torch has no device 'nope'; expected 'cpu', 'cuda', 'cuda:N' or a GPU index N"),
])
def test_examples_say_in_one_line_why_a_backend_cannot_run(capsys, backend, why):
    from _common import parse_args  # noqa: PLC0415 - examples/ is on the path above

    if backend == "torch":
        pytest.importorskip("torch", reason="the torch backend's message needs torch")
    with pytest.raises(SystemExit) as stop:
        parse_args("doc", epochs=1, lr=0.1, argv=["--backend", backend, "--device", "nope"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {why}")


# --- the command line, as a user runs it (a subprocess: what reaches the terminal) ----------------

EXAMPLES = ["linear_regression", "xor", "polynomial_regression", "deep_mlp", "arithmetic", "digits"]
# stand-in cupy packages: one whose import breaks, one without a GPU (as on a machine with no
# driver), so the failure a user sees can be checked without a GPU
BROKEN_CUPY = "raise RuntimeError('CUDA driver library libcuda.so.1 not found')\n"
NO_GPU_CUPY = ("import types\n"
               "def _no_device():\n"
               "    raise RuntimeError('cudaErrorNoDevice: no CUDA-capable device is detected')\n"
               "cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(\n"
               "    getDeviceCount=_no_device, getDevice=_no_device))\n")


def _run_example(name: str, *args: str, path: str = "",
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "XNN_BACKEND"}, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [path, str(ROOT)]))}
    return subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("cupy", [BROKEN_CUPY, NO_GPU_CUPY], ids=["broken-import", "no-gpu"])
def test_backend_cupy_without_a_gpu_is_one_line_without_a_traceback(tmp_path, cupy):
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(cupy)
    done = _run_example("xor", "--backend", "cupy", "--out", str(tmp_path), path=str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    *usage, last = done.stderr.splitlines()
    assert usage[0].startswith("usage: xor.py") and all(u.startswith(" ") for u in usage[1:])
    assert last.startswith("xor.py: error: ") and "cupy" in last


def test_device_without_backend_is_refused_not_ignored(tmp_path):
    done = _run_example("xor", "--device", "cuda", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        "numpy runs on device 'cpu' only, got 'cuda' (--device applies to the default backend, "
        "numpy; for a GPU pass --backend cupy or --backend torch)")
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize("epochs", ["0", "-3", "ten"])
def test_epochs_below_one_are_refused_with_a_usage_error(tmp_path, epochs):
    done = _run_example("xor", "--epochs", epochs, "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"xor.py: error: argument --epochs: expected an int of at least 1, got {epochs!r}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_help_describes_the_example_and_every_flag(name):
    done = _run_example(name, "--help")
    assert done.returncode == 0
    doc = _example(name).__doc__.strip()
    text = " ".join(done.stdout.split())
    assert " ".join(doc.split()) in text  # the whole description, not its first line
    flags = [line.split()[0] for line in done.stdout.splitlines()
             if line.startswith("  --") and not line.startswith("  -h")]
    assert "--epochs" in flags and "--device" in flags
    for line in done.stdout.split("options:")[1].split("\n  -")[1:]:
        assert len(line.split()) > 1 + line.startswith("-dtype"), f"no help for -{line}"


def _one_line_error(done: subprocess.CompletedProcess, name: str) -> str:
    """The one line an entry point printed for an error it refused, after checking there was
    nothing else: no traceback, no usage, exit status 2."""
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"{name}.py: error: ")
    return done.stderr.strip()


@pytest.mark.parametrize("cupy", [None, BROKEN_CUPY, NO_GPU_CUPY],
                         ids=["not-installed", "broken-import", "no-gpu"])
def test_xnn_backend_cupy_without_a_gpu_is_one_line_naming_the_fix(tmp_path, cupy):
    if cupy is None:  # a package that hides any installed cupy, as a machine without it
        (tmp_path / "cupy").mkdir()
        (tmp_path / "cupy" / "__init__.py").write_text("raise ImportError('No module named "
                                                       "cupy')\n")
    else:
        (tmp_path / "cupy").mkdir()
        (tmp_path / "cupy" / "__init__.py").write_text(cupy)
    done = _run_example("xor", "--out", str(tmp_path), path=str(tmp_path),
                        env={"XNN_BACKEND": "cupy"})
    line = _one_line_error(done, "xor")
    assert line.startswith("xor.py: error: XNN_BACKEND='cupy': ") and "cupy" in line[30:]
    assert line.endswith("or use XNN_BACKEND=numpy")
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize("env, expected", [
    ({"XNN_BACKEND": "tensorflow"}, "XNN_BACKEND='tensorflow': unknown backend 'tensorflow'; "
                                    "expected one of numpy, array_api_strict, torch, cupy"),
    ({"XNN_BACKEND": "numpy:cuda"}, "XNN_BACKEND='numpy:cuda': numpy runs on device 'cpu' "
                                    "only, got 'cuda'"),
    ({"XNN_PROGRESS_LINES": "ten"}, "XNN_PROGRESS_LINES='ten': expected an int of at least 1 "
                                    "(unset: 20)"),
    ({"XNN_PROGRESS_LINES": "0"}, "XNN_PROGRESS_LINES='0': expected an int of at least 1"),
    # under an MPI launcher's variables: read by --distributed's init, before any collective
    ({"PMI_RANK": "0", "XNN_MPI_SHARED_MEMORY": "no"},
     "XNN_MPI_SHARED_MEMORY='no': expected 0 (off) or 1 (on) (unset: 1)"),
    ({"PMI_RANK": "0", "XNN_MPI_CHECK_DATA": "false"},
     "XNN_MPI_CHECK_DATA='false': expected 0 (off) or 1 (on) (unset: 1)"),
], ids=["unknown-backend", "backend-device", "lines-text", "lines-zero", "shared-memory",
        "check-data"])
def test_every_environment_variable_refuses_a_bad_value_in_one_line(tmp_path, env, expected):
    args = ["--distributed"] if "PMI_RANK" in env else []
    done = _run_example("arithmetic", *args, "--epochs", "1", "--out", str(tmp_path), env=env)
    assert expected in _one_line_error(done, "arithmetic")
    assert not (tmp_path / "loss.png").exists()


def test_a_flag_a_run_needs_at_its_end_is_checked_before_training(tmp_path):
    broken = tmp_path / "site"  # a matplotlib that cannot be imported: the plots come last
    (broken / "matplotlib").mkdir(parents=True)
    (broken / "matplotlib" / "__init__.py").write_text("raise ImportError('no pyplot')\n")
    done = _run_example("xor", "--out", str(tmp_path), path=str(broken))
    assert "the plots need matplotlib, which cannot be imported (no pyplot): pip install " \
           '"xnn-mlp[plot]"' in _one_line_error(done, "xor")
    done = _run_example("digits", "--onnx", str(tmp_path / "missing" / "d.onnx"),
                        "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"digits.py: error: argument --onnx: expected a file in an existing folder, got "
        f"{str(tmp_path / 'missing' / 'd.onnx')!r}")


@pytest.mark.parametrize("args, expected", [
    (["--examples", "xor,resnet"], "argument --examples: unknown resnet; expected names among "
                                   "linear_regression, xor,"),
    (["--backends", "numpy,tensorflow"], "argument --backends: unknown backend 'tensorflow'"),
])
def test_results_checks_every_example_and_backend_before_the_first_runs(capsys, args, expected):
    results = _example("results")
    with pytest.raises(SystemExit) as stop:
        results.main(args)
    captured = capsys.readouterr()
    assert stop.value.code == 2 and captured.out == ""  # no table started
    assert f": error: {expected}" in captured.err.splitlines()[-1]
