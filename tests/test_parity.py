"""Cross-backend parity: every tutorial network trains to the same numbers on every backend,
and the report and CLI catch and show a real difference."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn, parity
from xnn.cli import main as cli


@pytest.mark.parametrize("network", parity.TUTORIALS)
def test_tutorial_networks_agree_with_numpy_after_100_float64_steps(backend, network):
    if network == "digits":
        pytest.importorskip("sklearn", reason="the digits network loads scikit-learn's data")
    report = parity.compare_tutorial(network, backends=["numpy", backend], steps=100)
    assert len(report.losses[str(backend)]) == 100
    # the CPU libraries differ only in the order of their sums; a GPU gets the documented bound
    limit = parity.TOLERANCES["float64"] if backend.name == "cupy" else 1e-12
    assert report.max_rel <= limit, report.table()
    assert report.loss_rel_diff(str(backend)) <= limit, report.table()


@pytest.mark.parametrize("network", ["arithmetic", "deep_mlp"])
def test_tutorial_networks_agree_within_the_float32_tolerance(backend, network):
    report = parity.compare_tutorial(network, backends=["numpy", backend], steps=100,
                                     dtype="float32")
    assert report.passed(), report.table()
    assert report.max_rel <= parity.TOLERANCES["float32"]


def _nudged_model():
    """The XOR net, with one weight moved by 1e-6 on torch only: a difference to be found."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
    if xnn.get_backend().name == "torch":
        w = xnn.to_numpy(model[2].weight.value)
        w[1, 0] += 1e-6
        model[2].weight.value = xnn.asarray(w, dtype="float64")
    return model


def test_report_finds_and_locates_a_real_difference():
    pytest.importorskip("torch")
    X, y = parity.tutorial("xor").data()
    report = parity.compare_backends(_nudged_model, X, y, loss=xnn.losses.MSELoss(),
                                     optimizer=lambda ps: xnn.optim.SGD(ps, lr=2.0), steps=5,
                                     backends=("numpy", "array_api_strict", "torch"))
    assert not report.passed()
    assert report.worst().backend == "torch"
    first = next(d for d in report.diffs if d.step == 1 and d.name == "2.weight"
                 and d.backend == "torch")
    assert first.index == (1, 0) and first.max_abs == pytest.approx(1e-6, rel=0.2)
    assert report.worst("array_api_strict").max_abs == 0.0
    assert "torch" in report.table() and "FAIL" in report.table()
    with pytest.raises(AssertionError, match=r"disagree beyond tolerance(.|\n)*2.weight"):
        parity.assert_parity(_nudged_model, X, y, loss=xnn.losses.MSELoss(),
                             optimizer=lambda ps: xnn.optim.SGD(ps, lr=2.0), steps=5,
                             backends=("numpy", "torch"))


def _report(reference_losses, losses, max_rel):
    """A two-backend report with one parameter entry and the given loss curves."""
    report = parity.ParityReport("numpy", ["numpy", "other"], "float64", len(losses))
    report.losses = {"numpy": reference_losses, "other": losses}
    report.diffs = [parity.ParamDiff("other", 1, "0.weight", max_rel, max_rel, (0, 0), 1.0,
                                     1.0 + max_rel)]
    return report


def test_report_fails_on_loss_curves_that_drift_even_where_parameters_agree():
    agreeing = _report([2.0, 1.0], [2.0, 1.0], max_rel=0.0)
    assert agreeing.passed() and "PASS" in agreeing.table()
    drifting = _report([2.0, 1.0], [2.0, 1.0 + 1e-6], max_rel=0.0)
    assert drifting.loss_rel_diff("other") == pytest.approx(1e-6)
    assert not drifting.passed() and "FAIL" in drifting.table()
    assert drifting.passed(rtol=1e-5)


def test_report_loss_difference_is_relative_to_the_reference_loss():
    report = _report([200.0, 400.0], [202.0, 401.0], max_rel=0.0)
    assert report.loss_rel_diff("other") == pytest.approx(0.01)  # 2 / 200, not 2


def test_parameter_difference_is_relative_to_the_largest_reference_magnitude(backend):
    def build():
        """One layer with weights [[100], [2]]; on every backend but NumPy, 2 is 2.001."""
        layer = nn.Linear(2, 1)
        nudge = 0.0 if xnn.get_backend().name == "numpy" else 1e-3
        layer.weight.value = xnn.asarray([[100.0], [2.0 + nudge]], dtype="float64")
        return layer

    X, y = np.c_[np.ones(4), np.zeros(4)], np.zeros((4, 1))  # the nudged weight sees 0s only
    report = parity.compare_backends(build, X, y, loss=xnn.losses.MSELoss(),
                                     optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.0), steps=1,
                                     backends=("numpy", backend))
    if backend.name == "numpy":
        assert report.max_rel == 0.0
        return
    worst = report.worst(str(backend), "weight")
    assert worst.index == (1, 0) and worst.max_abs == pytest.approx(1e-3, rel=1e-9)
    assert worst.max_rel == pytest.approx(1e-5, rel=1e-9)  # 1e-3 / max |reference| = 100
    assert report.loss_rel_diff(str(backend)) == 0.0  # the same losses: only the weight differs
    assert report.passed(rtol=2e-5) and not report.passed(rtol=5e-6)


def test_parity_uses_identical_batches_and_dropout_masks(backend):
    def build():
        return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 1))
    report = parity.assert_parity(build, X, y, rtol=1e-12, loss=xnn.losses.MSELoss(),
                                  optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.1), steps=20,
                                  backends=("numpy", backend), batch_size=8)
    assert report.losses["numpy"][0] != report.losses["numpy"][1]  # batches really differ


def test_parity_api_is_public_in_xnn_testing(backend):
    """The names users import: xnn.testing.compare_backends and assert_parity."""
    from xnn.testing import assert_parity, compare_backends

    X, y = parity.tutorial("xor").data()
    kwargs = dict(loss=xnn.losses.MSELoss(), optimizer=lambda ps: xnn.optim.SGD(ps, lr=2.0),
                  steps=3, backends=("numpy", backend))
    report = compare_backends(_nudged_model, X, y, **kwargs)
    assert sorted({d.step for d in report.diffs}) == [1, 2, 3]
    assert {d.name for d in report.diffs} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    if backend.name == "torch":  # the nudged weight is found through the public names too
        with pytest.raises(AssertionError, match="2.weight"):
            assert_parity(_nudged_model, X, y, **kwargs)
    else:
        assert assert_parity(_nudged_model, X, y, rtol=1e-12, **kwargs).passed(1e-12)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int32", "uint32", "int64"])
def test_compare_backends_takes_integer_labels_of_any_integer_dtype_as_labels(backend, dtype):
    X = np.random.default_rng(0).normal(size=(12, 4))
    y = (np.arange(12) % 3).astype(dtype)
    report = parity.compare_backends(lambda: nn.Sequential(nn.Linear(4, 3)), X, y,
                                     loss=xnn.losses.CrossEntropyLoss(),
                                     optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.1), steps=3,
                                     batch_size=4, backends=["numpy", backend])
    assert report.passed(), report.table()
    float_labels = parity.compare_backends(  # the same labels as floats: one-hot targets
        lambda: nn.Sequential(nn.Linear(4, 3)), X, np.eye(3)[y.astype(int)],
        loss=xnn.losses.CrossEntropyLoss(), optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.1),
        steps=3, batch_size=4, backends=["numpy", "numpy"])
    assert report.losses["numpy"] == pytest.approx(float_labels.losses["numpy"], rel=1e-12)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"backends": ["numpy", "tensorflow"]}, ValueError, "unknown backend 'tensorflow'"),
    ({"batch_size": 0}, ValueError, "compare_backends: batch_size must be a positive int"),
    ({"dtype": "float16"}, ValueError, "compare_backends: dtype must be one of"),
    ({"y": np.zeros((3, 1))}, ValueError, r"compare_backends: X and y have different lengths"),
    ({"backends": "numpy,torch"}, TypeError, r"backends must be a sequence of names, such as "
                                             r"\('numpy', 'torch'\), got str 'numpy,torch'"),
])
def test_compare_backends_checks_every_argument_before_training(monkeypatch, kwargs, error,
                                                                message):
    def never():
        pytest.fail("a model was built before the arguments were checked")

    y = kwargs.pop("y", np.zeros((4, 1)))
    with pytest.raises(error, match=message):
        parity.compare_backends(never, np.zeros((4, 2)), y,
                                loss=xnn.losses.MSELoss(), optimizer=xnn.optim.SGD, steps=1,
                                **{"backends": ["numpy", "numpy"], **kwargs})
    with pytest.raises(TypeError, match=r"build_model must be a function that builds a fresh "
                                        r"model"):
        parity.compare_backends(_nudged_model(), np.zeros((4, 2)), np.zeros((4, 1)),
                                loss=xnn.losses.MSELoss(), optimizer=xnn.optim.SGD, steps=1,
                                backends=["numpy", "numpy"])


def test_a_backend_compared_with_itself_has_rows_of_its_own(capsys):
    assert cli(["parity", "--backends", "numpy,numpy", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "numpy #2                   0.weight           0.000e+00" in out and "PASS" in out


def test_compare_backends_refuses_a_single_backend():
    with pytest.raises(ValueError, match="at least two backends"):
        parity.compare_backends(_nudged_model, np.zeros((4, 2)), np.zeros((4, 1)),
                                loss=xnn.losses.MSELoss(), optimizer=xnn.optim.SGD, steps=1,
                                backends=("numpy",))


def test_parity_cli_prints_the_table_and_sets_the_exit_code(capsys):
    assert cli(["parity", "--example", "arithmetic", "--backends",
                "numpy,array_api_strict:device1", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    assert "example arithmetic" in out and "0.weight" in out and "PASS" in out
    pytest.importorskip("torch")
    assert cli(["parity", "--example", "xor", "--backends", "numpy,torch", "--steps", "20",
                "--dtype", "float32", "--rtol", "1e-12"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert cli(["parity", "--backends", "numpy,tensorflow"]) == 2
    assert "unknown backend 'tensorflow'" in capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["--ranks", "0"], "compare_ranks: ranks must be a positive int, got 0"),
    (["--ranks", "-1"], "compare_ranks: ranks must be a positive int, got -1"),
    (["--ranks", "2", "--steps", "0"], "compare_ranks: steps must be a positive int, got 0"),
    (["--ranks", "2", "--backends", "torch,jax"], "--backends does not apply with --ranks, "
                                                  "which compares ranks with one process on one "
                                                  "backend: pass one of them"),
    (["--steps", "-3"], "compare_backends: steps must be a positive int, got -3"),
    (["--seed", "-1"], "compare_backends: seed must be an int >= 0, got -1"),
])
def test_parity_cli_refuses_an_out_of_range_count_with_one_line(capsys, monkeypatch, args,
                                                                expected):
    from xnn import rank_parity  # noqa: PLC0415

    monkeypatch.setattr(rank_parity, "mpiexec", lambda: pytest.fail("an MPI job was started"))
    assert cli(["parity", *args]) == 2
    assert capsys.readouterr().err == f"xnn parity: {expected}\n"


@pytest.mark.parametrize("steps", [0, -2, 2.5])
def test_compare_backends_refuses_a_step_count_that_is_not_a_positive_int(steps):
    with pytest.raises((ValueError, TypeError), match=r"compare_backends: steps must be"):
        parity.compare_tutorial("xor", backends=["numpy", "array_api_strict"], steps=steps)


@pytest.mark.parametrize("name, value", [("ranks", 0), ("ranks", -1), ("steps", 0)])
def test_compare_ranks_refuses_a_count_below_one_before_starting_mpi(monkeypatch, name, value):
    from xnn import rank_parity  # noqa: PLC0415

    monkeypatch.setattr(rank_parity, "mpiexec", lambda: pytest.fail("an MPI job was started"))
    with pytest.raises(ValueError, match=rf"compare_ranks: {name} must be a positive int"):
        rank_parity.compare_ranks("xor", **{name: value})


@pytest.mark.parametrize("kwargs, message", [
    ({"example": "resnet"}, "unknown tutorial network 'resnet'"),
    ({"dtype": "float16"}, r"compare_ranks: dtype must be one of \['float32', 'float64'\]"),
    ({"modes": ("fit", "adam")}, r"mode must be one of \('optimizer', 'fit'\), got 'adam'"),
])
def test_compare_ranks_checks_the_example_dtype_and_modes_before_starting_mpi(monkeypatch,
                                                                               kwargs, message):
    from xnn import rank_parity  # noqa: PLC0415

    monkeypatch.setattr(rank_parity, "mpiexec", lambda: pytest.fail("an MPI job was started"))
    with pytest.raises(ValueError, match=message):
        rank_parity.compare_ranks(**{"example": "xor", **kwargs})


def test_cli_help_is_whole_plain_text_for_every_command(capsys):
    from xnn import cli as module  # noqa: PLC0415

    for argv in ([], ["parity"], ["backends"], ["export-onnx"]):
        with pytest.raises(SystemExit) as done:
            cli([*argv, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        text = " ".join(out.split())
        assert "``" not in text and ":func:" not in text, text
        if not argv:
            assert " ".join(module.__doc__.split()) in text  # the whole description
            continue
        paragraphs = out.split("\n\n")  # usage, the description, then the arguments
        assert paragraphs[1].rstrip().endswith("."), out  # whole sentences
        lines = out.split("options:\n")[1].splitlines()
        for i, line in enumerate(lines):  # help beside each option, or on the line below
            if line.startswith("  -"):
                below = lines[i + 1] if i + 1 < len(lines) else ""
                assert "  " in line.strip() or below.startswith(" " * 20), line


def test_parity_cli_says_which_backends_it_skipped_and_why(monkeypatch, capsys):
    import importlib  # noqa: PLC0415

    pytest.importorskip("array_api_strict", reason="the comparison needs two CPU backends")
    real_import, missing = importlib.import_module, ("torch", "cupy", "jax")

    # as on a machine without them; sys.modules[name] = None would break array-api-compat's
    # type tests of every other array (in a fresh process, before its cache has answers)
    def without(name, *args, **kwargs):
        if name in missing:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without)
    assert cli(["parity", "--example", "xor", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    for name in missing:
        assert (f"skipped {name}: backend {name!r} needs the package {name!r}, which "
                f"is not installed: pip install") in out
    assert "reference numpy" in out and "array_api_strict" in out and "PASS" in out
    assert cli(["backends"]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == ["numpy", "array_api_strict"]
    assert "skipped cupy: backend 'cupy' needs the package 'cupy'" in listed.err


@pytest.mark.parametrize("rtol", ["nan", "-1"])
def test_parity_cli_refuses_a_tolerance_no_run_could_pass_before_training(monkeypatch, capsys,
                                                                          rtol):
    monkeypatch.setattr(parity, "compare_backends", lambda *a, **k: pytest.fail("it trained"))
    assert cli(["parity", "--rtol", rtol]) == 2
    assert capsys.readouterr().err == (f"xnn parity: --rtol: the tolerance must be a number in "
                                       f"[0.0, inf), got {float(rtol)!r}\n")
    with pytest.raises(ValueError, match=r"assert_parity: rtol must be a number in \[0.0, inf\)"):
        parity.assert_parity(lambda: pytest.fail("it trained"), np.zeros((4, 2)),
                             np.zeros((4, 1)), rtol=float(rtol), loss=xnn.losses.MSELoss(),
                             optimizer=xnn.optim.SGD, steps=1)
