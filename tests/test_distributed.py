"""xnn.distributed: the one-process world here, and real MPI jobs (mpiexec -n 2 / -n 3) started
from the tests: collectives on every CPU backend, parity with one process, faults, resuming."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import xnn
from xnn import distributed, nn
from xnn.optim.schedules import StepLR

ROOT = pathlib.Path(__file__).resolve().parents[1]
JOBS = ROOT / "tests" / "mpi_jobs.py"


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="MPI jobs need the mpi extra (mpi4py, mpich)")
    from xnn.rank_parity import mpiexec  # noqa: PLC0415

    try:
        return mpiexec()
    except RuntimeError as err:
        pytest.skip(str(err))


def run_job(ranks: int, *args: str, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python tests/mpi_jobs.py args`` (with ``env`` added to the
    environment); a job that outlives ``timeout`` seconds fails the test (subprocess kills it)
    instead of hanging the suite."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, str(JOBS), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _load(folder: pathlib.Path, name: str) -> dict[str, np.ndarray]:
    return dict(np.load(folder / f"{name}.npz"))


# --- the one-process world ---------------------------------------------------------------------

@pytest.fixture
def fresh_world(monkeypatch):
    """A process that has not called init(), outside any MPI launcher."""
    for name in (*distributed._LAUNCHER_VARIABLES, "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "_world", distributed._World())


def test_outside_a_launcher_the_world_is_one_process(fresh_world):
    assert not distributed.is_initialized()
    distributed.init()
    distributed.init()  # idempotent
    assert distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    distributed.barrier()
    assert distributed._world.comm is None  # no MPI was started


def test_rank_before_init_says_to_call_init(fresh_world):
    with pytest.raises(RuntimeError, match=r"call xnn.distributed.init\(\) first"):
        distributed.rank()


def test_under_a_launcher_without_mpi4py_init_says_how_to_install(fresh_world, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    with pytest.raises(ImportError, match=r"mpi4py is missing: pip install \"xnn-mlp\[mpi\]\" "
                                          r"\(in a clone of the repository: pip install -e "
                                          r"\"\.\[mpi\]\"\)"):
        distributed.init()
    assert not distributed.is_initialized()


def test_several_slurm_tasks_without_mpi_are_refused_not_trained_alone(fresh_world, monkeypatch):
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    with pytest.raises(RuntimeError, match=r"srun started 4 tasks without MPI .* --mpi=pmix"):
        distributed.init()
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "four")
    with pytest.raises(ValueError, match=r"SLURM_STEP_NUM_TASKS='four': expected an int of at "
                                         r"least 1"):
        distributed.init()
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    distributed.init()
    assert distributed.world_size() == 1


def test_one_process_allreduce_averages_to_the_same_and_weights_scale(backend, fresh_world):
    distributed.init()
    layer = nn.Linear(3, 2)
    layer.weight.grad = xnn.asarray(np.arange(6.0).reshape(3, 2), dtype=layer.weight.dtype)
    distributed.allreduce_gradients(layer)
    assert np.array_equal(xnn.to_numpy(layer.weight.grad), np.arange(6.0).reshape(3, 2))
    assert layer.bias.grad is None  # None on every rank stays None
    distributed.allreduce_gradients(layer.parameters(), weight=0.5)
    assert np.array_equal(xnn.to_numpy(layer.weight.grad), np.arange(6.0).reshape(3, 2) / 2)
    assert layer.bias.grad is None


def test_optimizer_reduces_through_one_kept_buffer_step_after_step(backend, fresh_world):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    opt = distributed.DistributedOptimizer(xnn.optim.SGD(model.parameters(), lr=0.1))
    params = model.parameters()
    for step in range(3):
        for i, p in enumerate(params):
            p.grad = (None if i == 1 else
                      xnn.asarray(np.full(p.shape, 10.0 * step + i), dtype=p.dtype))
        opt.reduce_gradients(weight=0.5)
        assert params[1].grad is None
        for i in (0, 2, 3):
            assert np.all(xnn.to_numpy(params[i].grad) == (10.0 * step + i) / 2), (step, i)
        opt.step()
        opt.zero_grad()
        buffers = [flat for _, flat in opt._reducer.buffers.values()]
        first = buffers[0] if step == 0 else first
        assert len(buffers) == 1 and buffers[0] is first  # one dtype: one buffer, made once


def test_allreduce_refuses_a_grad_of_the_wrong_shape(fresh_world):
    distributed.init()
    layer = nn.Linear(3, 2)
    layer.weight.grad = xnn.asarray(np.zeros((2, 3)), dtype=layer.weight.dtype)
    with pytest.raises(ValueError, match=r"allreduce_gradients: the parameter 0 has shape \(3, 2\)"):
        distributed.allreduce_gradients(layer, weight=0.5)


def test_distributed_optimizer_passes_lr_state_and_schedules_through(backend, fresh_world):
    model = nn.Linear(3, 2)
    inner = xnn.optim.Adam(model.parameters(), lr=0.1)
    opt = distributed.DistributedOptimizer(inner)
    assert isinstance(opt, xnn.optim.Optimizer) and opt.params is inner.params
    opt.lr = 0.05
    assert inner.lr == 0.05 and opt.optimizer is inner
    with pytest.raises(AttributeError, match=r"DistributedOptimizer has no 'betas'; set the "
                                             r"wrapped optimizer's: opt.optimizer.betas = "):
        opt.betas = (0.5, 0.5)  # set on the wrapped one, never lost
    with pytest.raises(AttributeError, match=r"read the wrapped optimizer's: "
                                             r"opt.optimizer.betas$"):
        opt.betas
    assert inner.betas == (0.9, 0.999)
    schedule = StepLR(opt, step_size=1, gamma=0.5)
    for p in model.parameters():
        p.grad = xnn.asarray(np.ones(p.shape), dtype=p.dtype)
    opt.step()
    schedule.step()
    assert inner.lr == opt.lr == 0.025 and inner.steps == opt.steps == 1
    assert opt.state is inner.state and opt.initial_lr == inner.initial_lr == 0.05
    saved = opt.state_dict()
    assert saved["optimizer"] == "Adam"
    opt.step()
    opt.load_state_dict(saved)  # into the wrapped optimizer
    assert inner.steps == 1 and inner.lr == 0.025
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(TypeError, match="expected an xnn optimizer to wrap, got list"):
        distributed.DistributedOptimizer([])


def test_a_checkpoint_of_a_distributed_optimizer_loads_as_the_wrapped_one(tmp_path, fresh_world):
    model = nn.Linear(3, 2)
    opt = distributed.DistributedOptimizer(xnn.optim.Adam(model.parameters(), lr=0.1))
    for p in model.parameters():
        p.grad = xnn.asarray(np.ones(p.shape), dtype=p.dtype)
    opt.step()
    xnn.save(tmp_path / "c.safetensors", model, opt)
    ck = xnn.load(tmp_path / "c.safetensors")
    assert type(ck.optimizer).__name__ == "Adam" and ck.optimizer.steps == 1


def test_one_process_distributed_fit_is_plain_fit(backend, fresh_world):
    from mpi_jobs import small_data, small_model  # noqa: PLC0415 - tests/ is on the path

    X, y = small_data()
    runs = []
    for flag in (False, True):
        xnn.seed(0)
        model = small_model()
        history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                          optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), epochs=3,
                          batch_size=16, progress=False, distributed=flag)
        runs.append((history["loss"], xnn.to_numpy(model.parameters()[0].value)))
    (loss_a, w_a), (loss_b, w_b) = runs
    assert np.allclose(loss_a, loss_b, rtol=1e-12, atol=0) and np.array_equal(w_a, w_b)


def test_fit_refuses_a_distributed_flag_that_is_not_a_bool(fresh_world):
    model = nn.Linear(2, 1)
    with pytest.raises(TypeError, match="fit: distributed must be True or False, got str 'yes'"):
        xnn.fit(model, np.zeros((4, 2)), np.zeros((4, 1)), loss=xnn.losses.MSELoss(),
                optimizer=xnn.optim.SGD(model.parameters(), lr=0.1), epochs=1,
                progress=False, distributed="yes")


# --- MPI jobs ----------------------------------------------------------------------------------

def test_collectives_broadcast_and_reduce_on_every_cpu_backend(backend, tmp_path):
    if backend.name == "cupy":
        pytest.skip("CuPy's host staging runs on the GPU machine only")
    device = "-" if backend.name == "numpy" else str(xnn.backend.device_label(backend.device))
    done = run_job(2, "collectives", str(tmp_path), backend.name, device)
    assert done.returncode == 0, done.stdout + done.stderr
    root, other = _load(tmp_path, "broadcast-0"), _load(tmp_path, "broadcast-1")
    assert "1.running_mean" in root
    for name in root:
        assert np.array_equal(root[name], other[name]), name
    own = [_load(tmp_path, f"own-{r}") for r in range(2)]
    assert not np.array_equal(own[0]["0.weight"], own[1]["0.weight"])
    for r in range(2):  # broadcast_parameters(root=1): every rank ends with rank 1's entries
        received = _load(tmp_path, f"from-rank-1-{r}")
        assert sorted(received) == sorted(own[1]) and "1.running_var" in received
        for name in received:
            assert np.array_equal(received[name], own[1][name]), (r, name)
    n = 6  # parameters: 2 Linear x 2, BatchNorm weight and bias
    for r in range(2):
        for how in ("", "shared-"):  # allreduce_gradients, and DistributedOptimizer's reducer
            average = _load(tmp_path, f"{how}average-{r}")
            assert sorted(average, key=int) == [f"{i}" for i in range(n) if i != n - 2]
            for i in range(n - 2):
                assert np.all(average[f"{i}"] == (i + 1) * 1.5)  # ((1 + 2) / 2) (i + 1)
            assert np.all(average[f"{n - 1}"] == n / 2)  # rank 0's n, rank 1's zeros
            weighted = _load(tmp_path, f"{how}weighted-{r}")
            assert all(np.all(g == 1.0) for g in weighted.values())  # 0 * 1 + 0.5 * 2
        stepped = _load(tmp_path, f"stepped-{r}")
        assert all(np.all(d == 3.0) for d in stepped.values())  # 2 steps of lr 1 x (1 + 2) / 2
        shared = json.loads((tmp_path / f"shared-{r}.json").read_text())
        assert shared == (backend.name in ("numpy", "torch")), "summed in shared memory"


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("pattern", ["plain", "scale", "clip"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_shared_memory_and_mpi_allreduce_give_the_same_bits(tmp_path, ranks, pattern, library):
    """Also when the script writes into the reduced grads in place before the step. Each
    rank of a job gets the same bits; on 3 ranks the paths add in different orders, so they
    agree to rounding only (floating-point addition is not associative)."""
    if library == "torch":
        pytest.importorskip("torch")
    for env in ({}, {"XNN_MPI_SHARED_MEMORY": "0"}):
        done = run_job(ranks, "reduce_paths", str(tmp_path), pattern, library, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        for r in range(ranks):
            shared = json.loads((tmp_path / f"shared-{r}.json").read_text())
            assert shared == (not env), "XNN_MPI_SHARED_MEMORY=0 turns shared memory off"
    first = _load(tmp_path, "default-0")
    for r in range(ranks):
        by_shm, by_mpi = _load(tmp_path, f"default-{r}"), _load(tmp_path, f"0-{r}")
        for name in first:
            assert np.array_equal(by_shm[name], first[name]), f"rank {r} differs: {name}"
            assert np.array_equal(by_mpi[name], _load(tmp_path, "0-0")[name]), name
            if ranks == 2:
                assert np.array_equal(by_shm[name], by_mpi[name]), name
            else:
                np.testing.assert_allclose(by_shm[name], by_mpi[name], rtol=1e-12,
                                           atol=1e-15, err_msg=name)


def test_ranks_stepping_different_models_all_get_a_clear_error():
    done = run_job(2, "reduce_mismatch", "-", timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "allreduce_gradients: the ranks' parameters differ" in out
    for r, width in ((0, 8), (1, 9)):
        assert (f"this rank {r} has float32 on numpy:cpu: 4 grads of sizes "
                f"[{3 * width}, {width}, {2 * width}, 2]") in out


@pytest.fixture(scope="module")
def loss_runs(tmp_path_factory):
    """ranks -> each rank's results of mpi_jobs.losses (every loss case alone and on ranks),
    run once per rank count for all the cases."""
    runs = {}

    def run(ranks: int) -> list[dict[str, np.ndarray]]:
        if ranks not in runs:
            folder = tmp_path_factory.mktemp(f"losses{ranks}")
            done = run_job(ranks, "losses", str(folder), timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            runs[ranks] = [_load(folder, f"losses-{r}") for r in range(ranks)]
        return runs[ranks]
    return run


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| (NaN where they are NaN alike)."""
    if np.array_equal(np.isnan(a), np.isnan(b)) and np.isnan(b).any():
        a, b = a[~np.isnan(b)], b[~np.isnan(b)]
    scale = np.max(np.abs(b)) if b.size else 0.0
    difference = float(np.max(np.abs(a - b), initial=0))
    return difference / scale if scale else difference


@pytest.mark.parametrize("case", sorted(__import__("mpi_jobs").loss_cases()))
@pytest.mark.parametrize("ranks", [2, 3])
def test_every_loss_and_reduction_trains_on_ranks_as_one_process(loss_runs, ranks, case):
    _mpiexec()
    every = loss_runs(ranks)
    first = every[0]
    names = [k[len(f"{case}/alone/"):] for k in first if k.startswith(f"{case}/alone/")]
    assert "loss" in names and len(names) > 1
    for name in names:
        alone = first[f"{case}/alone/{name}"]
        assert np.all(np.isfinite(alone)), (name, alone)
        for how in ("ranks", "wrapped"):  # an optimizer, and a DistributedOptimizer
            ranked = first[f"{case}/{how}/{name}"]
            assert _relative(ranked, alone) <= 1e-12, (how, name, ranked, alone)
            for r in range(1, ranks):  # every rank ends with the same weights and History
                assert np.array_equal(every[r][f"{case}/{how}/{name}"], ranked), (r, how, name)


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_same_weights_as_one_process(ranks):
    _mpiexec()
    from xnn.rank_parity import compare_ranks  # noqa: PLC0415

    # arithmetic: 2000 rows in batches of 64, so each epoch ends with a batch of 16 rows:
    # 8 + 8 on 2 ranks, 5 + 5 + 6 on 3; fit runs 2 epochs (64 steps), by hand 50 steps
    report = compare_ranks("arithmetic", ranks=ranks, steps=50, dtype="float64")
    assert report.steps == {"optimizer": 50, "fit": 64}
    assert len(report.rows) == 12 and all(report.ranks_agree.values()), report.table()
    assert report.max_rel <= 1e-12, report.table()
    assert report.passed()


def test_parity_command_prints_the_rank_report():
    _mpiexec()
    done = subprocess.run([sys.executable, "-m", "xnn", "parity", "--ranks", "2", "--steps", "20"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "arithmetic on 2 ranks against 1 process" in done.stdout
    assert done.stdout.rstrip().endswith("PASS")


def test_a_rank_that_raises_ends_the_job_with_its_rank_and_error():
    done = run_job(2, "fault", "-", "raise", timeout=60)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "RuntimeError: rank 1 fails at step 5 on purpose" in out
    assert ("xnn.distributed: rank 1 of 2 failed with RuntimeError: rank 1 fails at step 5 on "
            "purpose; aborting the job") in out


def test_a_killed_rank_ends_the_job():
    done = run_job(2, "fault", "-", "kill", timeout=60)
    assert done.returncode != 0
    assert "signal 9" in done.stdout + done.stderr or "Killed" in done.stdout + done.stderr


def test_ranks_with_different_models_all_get_a_clear_error():
    done = run_job(2, "mismatch", "-", timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "the models of ranks [1] differ from rank 0's" in out
    assert ("on rank 1: this rank has '0.weight (3, 9) float32' where rank 0 has "
            "'0.weight (3, 8) float32'") in out


def test_ranks_calling_fit_with_different_data_get_a_clear_error():
    done = run_job(2, "disagree", "-", timeout=60)
    assert done.returncode != 0
    assert "the ranks called fit differently (training rows: rank 0 101, rank 1 100; " in (
        done.stdout + done.stderr)


def test_a_step_skipped_or_a_stop_on_one_rank_is_taken_by_every_rank(tmp_path):
    done = run_job(3, "vote", str(tmp_path), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    votes = [json.loads((tmp_path / f"vote-{r}.json").read_text()) for r in range(3)]
    assert [v["steps"] for v in votes] == [2, 2, 2]  # steps 1 and 3 taken, 2 skipped, 4 stopped
    assert [v["epochs"] for v in votes] == [0, 0, 0]
    assert votes[1]["reason"] == "rank 1 has seen enough"
    assert votes[0]["reason"] == votes[2]["reason"] == "a callback on another rank stopped training"


def test_a_checkpoint_from_two_ranks_resumes_exactly_on_three(tmp_path):
    from mpi_jobs import small_data, small_model  # noqa: PLC0415

    first = run_job(2, "train", str(tmp_path), "2", "no")
    assert first.returncode == 0, first.stdout + first.stderr
    resumed = run_job(3, "train", str(tmp_path), "2", "yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    logs = [json.loads((tmp_path / f"log-yes-{r}.json").read_text()) for r in range(3)]
    assert [log["saved"] for log in logs] == [2, 0, 0]  # rank 0 alone writes
    assert logs[1]["loss"] == logs[0]["loss"] == logs[2]["loss"]  # the same floats everywhere
    # one process, never stopped: 4 epochs from the same start, the order from xnn's generator
    with xnn.use_default_dtype("float64"):
        xnn.seed(0)
        model = small_model()
        X, y = small_data()
        history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(),
                          optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), epochs=4,
                          batch_size=16, progress=False)
    assert np.allclose(logs[0]["loss"], history["loss"][2:], rtol=1e-12, atol=0)
    for r in range(3):
        weights = _load(tmp_path, f"resume-{r}")
        for name, value in model.state_dict().items():
            ref = xnn.to_numpy(value)
            assert np.max(np.abs(weights[name] - ref)) <= 1e-12 * np.max(np.abs(ref)), name


def test_importing_xnn_and_its_distributed_module_starts_no_mpi():
    code = ("import sys, xnn, xnn.distributed, xnn.rank_parity; "
            "print('mpi4py' in sys.modules, 'mpi4py.MPI' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["False", "False"], done.stderr


@pytest.mark.parametrize("example, args, metric", [
    ("arithmetic", ["--epochs", "3"], "test R^2 0.99"),
    ("digits", ["--epochs", "8"], "test accuracy 0.9"),
])
def test_examples_train_on_two_ranks_and_rank_0_reports(tmp_path, example, args, metric):
    pytest.importorskip("matplotlib", reason="the examples plot with matplotlib (xnn[plot])")
    if example == "digits":
        pytest.importorskip("sklearn", reason="digits.py loads scikit-learn's bundled data")
    done = subprocess.run([_mpiexec(), "-n", "2", sys.executable,
                           str(ROOT / "examples" / f"{example}.py"), "--distributed", *args,
                           "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("plots written") == 1 and metric in done.stdout, done.stdout
    assert (tmp_path / "loss.png").stat().st_size > 10_000


def _doc_blocks() -> list[str]:
    import re  # noqa: PLC0415

    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "distributed.md").read_text(), re.S)


def test_the_docs_fit_script_prints_the_same_loss_on_two_ranks_as_alone(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_doc_blocks()[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    alone = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=300, env=env)
    two = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert alone.returncode == 0 and two.returncode == 0, alone.stderr + two.stderr
    # rank 0's callback logs each epoch, then the script prints the final loss
    assert alone.stdout.startswith("epoch 1: loss ")
    assert alone.stdout.splitlines()[-1].startswith("1 rank(s): final loss ")
    assert two.stdout == alone.stdout.replace("1 rank(s)", "2 rank(s)")  # rank 0 alone prints


def test_every_block_of_the_distributed_page_runs_on_two_ranks(tmp_path):
    script = tmp_path / "page.py"
    script.write_text("\n".join(_doc_blocks()))
    done = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("2 rank(s)") == 1 and "resumed at step 24" in done.stdout, done.stdout


# --- what each rank may do its own way, and what it must do the same ----------------------------

def _habit(tmp_path: pathlib.Path, ranks: int, case: str,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run mpi_jobs.habit on ``ranks`` ranks; a hang fails the test after 90 s."""
    return run_job(ranks, "habit", str(tmp_path), case, timeout=90, env=env)


def _habit_results(tmp_path: pathlib.Path, ranks: int) -> list[dict]:
    return [json.loads((tmp_path / f"habit-{r}.json").read_text()) for r in range(ranks)]


def _assert_same_weights(tmp_path: pathlib.Path, ranks: int, other: str = "ranks") -> None:
    """Every rank's 'ranks' weights equal rank 0's ``other`` weights to 1e-12 relative."""
    ref = _load(tmp_path, f"{other}-0")
    for r in range(ranks):
        got = _load(tmp_path, f"ranks-{r}")
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("ranks", [2, 3])
def test_callbacks_on_rank_0_only_train_as_one_process(tmp_path, ranks):
    done = _habit(tmp_path, ranks, "rank0-callbacks")
    assert done.returncode == 0, done.stdout + done.stderr
    results = _habit_results(tmp_path, ranks)
    assert results[0]["seen"] == {"steps": 33, "epochs": 3}  # 101 rows in batches of 10
    assert all(r["steps"] == 33 and r["epochs"] == 3 for r in results)
    assert all(r["loss"] == results[0]["loss"] for r in results)
    np.testing.assert_allclose(results[0]["loss"], results[0]["alone"]["loss"], rtol=1e-12)
    _assert_same_weights(tmp_path, ranks, other="alone")


@pytest.mark.parametrize("ranks", [2, 3])
def test_weights_put_back_on_one_rank_at_train_end_reach_every_rank(tmp_path, ranks):
    done = run_job(ranks, "restore", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    kept = {k[len("kept/"):]: v for k, v in _load(tmp_path, "restore-0").items()
            if k.startswith("kept/")}
    assert kept  # rank 0 kept the weights after the first epoch, and put them back
    for r in range(ranks):  # every rank holds them (without the fix only rank 0 did)
        ended = _load(tmp_path, f"restore-{r}")
        for k, v in kept.items():
            np.testing.assert_array_equal(ended[f"end/{k}"], v, err_msg=f"rank {r} {k}")
        normed = _load(tmp_path, f"restore-norm-{r}")
        assert int(normed["1.num_batches_tracked"]) == 2 * 6  # 96 rows in batches of 16
        for k, v in _load(tmp_path, "restore-norm-0").items():
            np.testing.assert_array_equal(normed[k], v, err_msg=f"rank {r} {k}")
        outcome = json.loads((tmp_path / f"restore-{r}.json").read_text())
        assert outcome.startswith("fit(distributed=True): the ranks ended training with "
                                  "different weights (rank 1 apart from rank 0): a callback "
                                  "changed the model on some ranks only"), outcome


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case, reason", [
    ("epoch-end-stop", "the time budget is spent"),
    ("early-stopping", "EarlyStopping: loss did not improve"),
])
def test_a_stop_asked_at_an_epoch_end_on_one_rank_stops_every_rank_there(tmp_path, ranks,
                                                                          case, reason):
    done = _habit(tmp_path, ranks, case)
    assert done.returncode == 0, done.stdout + done.stderr
    results = _habit_results(tmp_path, ranks)
    assert [r["epochs"] for r in results] == [2] * ranks
    assert [r["steps"] for r in results] == [22] * ranks
    assert reason in results[-1]["reason"]
    assert all(r["reason"] == "a callback on another rank stopped training"
               for r in results[:-1])
    _assert_same_weights(tmp_path, ranks)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case, shown", [
    ("exit", "rank 1 of {ranks} failed with SystemExit: 3"),
    ("interrupt", "rank 1 of {ranks} failed with KeyboardInterrupt: "),
    ("caught", "rank 1 of {ranks} failed with RuntimeError: rank 1 gives up at step 5"),
])
def test_a_rank_leaving_fit_ends_the_job_with_the_reason(tmp_path, ranks, case, shown):
    done = _habit(tmp_path, ranks, case)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"xnn.distributed: {shown.format(ranks=ranks)}; aborting the job" in out
    assert "carries on" not in out  # the rank that caught the error did not go on alone


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case, message", [
    ("optimizer-class", "optimizer: rank 0 Adam(6 parameters, lr=0.01, betas=(0.9, 0.999), "
                        "eps=1e-08, weight_decay=0.0, amsgrad=False) at step 0, rank 1 SGD(6 "
                        "parameters, lr=0.01,"),
    ("lr-per-rank", "optimizer: rank 0 Adam(6 parameters, lr=0.01, betas=(0.9, 0.999), "
                    "eps=1e-08, weight_decay=0.0, amsgrad=False) at step 0, rank 1 Adam(6 "
                    "parameters, lr=0.02, "),
    # only rank 0 loaded the checkpoint: its optimizer is 11 steps on, with Adam's moments
    ("resume-on-rank-0", "optimizer: rank 0 Adam(6 parameters, lr=0.01, betas=(0.9, 0.999), "
                         "eps=1e-08, weight_decay=0.0, amsgrad=False) at step 11 (arrays "),
    ("data", "data (digest): rank 0 "),
    ("loss", "loss: rank 0 MSELoss(reduction='mean'), rank 1 MSELoss(reduction='sum')"),
])
def test_what_must_be_equal_on_every_rank_is_refused_on_every_rank(tmp_path, ranks, case,
                                                                   message):
    done = _habit(tmp_path, ranks, case)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    refusal = f"failed with ValueError: fit(distributed=True): the ranks called fit differently ("
    assert out.count(refusal + message) == ranks, out
    assert ("XNN_MPI_CHECK_DATA=0 skips" in out) == (case == "data")
    assert not list(tmp_path.glob("ranks-*.npz"))  # nothing trained


def test_the_data_check_can_be_skipped_for_huge_data(tmp_path):
    done = _habit(tmp_path, 2, "data-unchecked", env={"XNN_MPI_CHECK_DATA": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["steps"] for r in _habit_results(tmp_path, 2)] == [33, 33]
