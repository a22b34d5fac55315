"""Jobs that tests/test_distributed.py runs under ``mpiexec -n N python tests/mpi_jobs.py JOB
FOLDER ...``: each rank writes what it ends with to FOLDER for the test to check."""

from __future__ import annotations

import inspect
import json
import os
import signal
import sys

import numpy as np

import xnn
from xnn import callbacks, distributed, nn


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


def small_data(n: int = 101) -> tuple:
    g = np.random.default_rng(7)
    X = g.normal(size=(n, 3))
    return X, np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 0]], axis=1)


def save_weights(folder: str, name: str, model: nn.Module) -> None:
    np.savez(os.path.join(folder, f"{name}-{distributed.rank()}.npz"),
             **{k: xnn.to_numpy(v) for k, v in model.state_dict().items()})


def collectives(folder: str, backend: str, device: str) -> None:
    """broadcast_parameters and allreduce_gradients on one backend, from different weights."""
    xnn.set_backend(backend, None if device == "-" else device)
    xnn.set_default_dtype("float64")
    distributed.init()
    r = distributed.rank()
    xnn.seed(r)  # every rank starts from its own weights and BatchNorm statistics
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model.train()
    model(xnn.asarray(np.random.default_rng(r).normal(size=(5, 3))))
    distributed.broadcast_parameters(model)
    save_weights(folder, "broadcast", model)
    xnn.seed(10 + r)  # a second model, different on each rank, receives rank 1's entries
    spare = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    spare(xnn.asarray(np.random.default_rng(10 + r).normal(size=(5, 3))))
    save_weights(folder, "own", spare)
    distributed.broadcast_parameters(spare, root=1)
    save_weights(folder, "from-rank-1", spare)
    params = model.parameters()
    opt = distributed.DistributedOptimizer(xnn.optim.SGD(params, lr=1.0))
    # the same reductions by allreduce_gradients (MPI_Allreduce on a flat buffer) and by the
    # optimizer's kept reducer (shared memory on one machine, where the backend allows)
    for how, reduce, weigh in (
            ("", lambda: distributed.allreduce_gradients(model),
             lambda w: distributed.allreduce_gradients(params, weight=w)),
            ("shared-", opt.reduce_gradients, lambda w: opt.reduce_gradients(weight=w))):
        for i, p in enumerate(params):  # grad of parameter i on rank r: (r + 1) * (i + 1);
            # the last parameter has a grad on rank 0 only, the one before on no rank
            p.grad = (None if i == len(params) - 2 or (i == len(params) - 1 and r != 0)
                      else xnn.asarray(np.full(p.shape, (r + 1.0) * (i + 1)), dtype="float64"))
        reduce()
        grads = {f"{i}": xnn.to_numpy(p.grad) for i, p in enumerate(params)
                 if p.grad is not None}
        np.savez(os.path.join(folder, f"{how}average-{r}.npz"), **grads)
        for p in params:
            p.grad = xnn.asarray(np.full(p.shape, r + 1.0), dtype="float64")
        weigh(0.5 * r)
        np.savez(os.path.join(folder, f"{how}weighted-{r}.npz"),
                 **{f"{i}": xnn.to_numpy(p.grad) for i, p in enumerate(params)})
        opt.zero_grad()
    before = [xnn.to_numpy(p.value) for p in params]
    for _ in range(2):  # through the optimizer's kept buffer, twice
        for p in params:
            p.grad = xnn.asarray(np.full(p.shape, r + 1.0), dtype="float64")
        opt.step()
        opt.zero_grad()
    np.savez(os.path.join(folder, f"stepped-{r}.npz"),
             **{f"{i}": b - xnn.to_numpy(p.value) for i, (b, p) in enumerate(zip(before, params))})
    with open(os.path.join(folder, f"shared-{r}.json"), "w") as f:
        json.dump(bool(opt._reducer.sums), f)


def reduce_paths(folder: str, pattern: str = "plain", backend: str = "numpy") -> None:
    """Ten steps of Adam on different random grads per rank, through DistributedOptimizer:
    the weights it ends with, and whether the grads were summed in shared memory.
    ``pattern``: what the script does between the reduce and the step ("plain": nothing;
    "scale": p.grad *= 0.5 in place on every reduced grad; "clip": clip_grad_norm)."""
    distributed.init()
    xnn.set_backend(backend)
    xnn.set_default_dtype("float64")
    xnn.seed(0)
    model = small_model()
    opt = distributed.DistributedOptimizer(xnn.optim.Adam(model.parameters(), lr=0.01))
    g = np.random.default_rng(distributed.rank())
    for _ in range(10):
        for p in model.parameters():
            p.grad = xnn.asarray(g.normal(size=p.shape))
        opt.reduce_gradients()
        if pattern == "scale":
            for p in model.parameters():
                p.grad *= 0.5
        elif pattern == "clip":
            xnn.optim.clip_grad_norm(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad()
    save_weights(folder, os.environ.get("XNN_MPI_SHARED_MEMORY", "default"), model)
    with open(os.path.join(folder, f"shared-{distributed.rank()}.json"), "w") as f:
        json.dump(bool(opt._reducer.sums), f)


def reduce_mismatch(folder: str) -> None:
    """Rank 1 steps a wider model than the other ranks (no broadcast_parameters to catch it)."""
    distributed.init()
    width = 9 if distributed.rank() == 1 else 8
    model = nn.Sequential(nn.Linear(3, width), nn.Linear(width, 2))
    opt = distributed.DistributedOptimizer(xnn.optim.SGD(model.parameters(), lr=0.1))
    for p in model.parameters():
        p.grad = p.value * 0
    opt.step()


def fault(folder: str, how: str) -> None:
    """Rank 1 raises (or is killed) at step 5 of a fit."""
    distributed.init()
    xnn.seed(0)
    model = small_model()
    steps = [0]

    def before_step(run, loss):
        steps[0] += 1
        if distributed.rank() == 1 and steps[0] == 5:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 fails at step 5 on purpose")
        return True

    X, y = small_data()
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.Adam(model.parameters()),
            epochs=1000, batch_size=10, seed=0, progress=False, distributed=True,
            callbacks=[callbacks.LambdaCallback(before_step=before_step)])


def mismatch(folder: str) -> None:
    """Rank 1 builds a wider hidden layer than the other ranks."""
    distributed.init()
    width = 9 if distributed.rank() == 1 else 8
    distributed.broadcast_parameters(nn.Sequential(nn.Linear(3, width), nn.Linear(width, 2)))


def disagree(folder: str) -> None:
    """Rank 1 passes one row fewer to fit than the other ranks."""
    distributed.init()
    xnn.seed(0)
    model = small_model()
    X, y = small_data(101 - (distributed.rank() == 1))
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=xnn.optim.Adam(model.parameters()),
            epochs=1, batch_size=10, progress=False, distributed=True)


def vote(folder: str) -> None:
    """Rank 0's callback skips step 2, rank 1's stops training at step 4."""
    distributed.init()
    xnn.seed(0)
    model = small_model()
    opt = xnn.optim.Adam(model.parameters())
    calls = [0]

    def before_step(run, loss):
        calls[0] += 1
        if distributed.rank() == 0 and calls[0] == 2:
            return False
        if distributed.rank() == 1 and calls[0] == 4:
            run.stop("rank 1 has seen enough")
            return False
        return True

    X, y = small_data()
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=3,
                      batch_size=10, seed=0, progress=False, distributed=True,
                      callbacks=[callbacks.LambdaCallback(before_step=before_step)])
    with open(os.path.join(folder, f"vote-{distributed.rank()}.json"), "w") as f:
        json.dump({"steps": opt.steps, "reason": history.stop_reason,
                   "epochs": len(history.epoch)}, f)


def train(folder: str, epochs: str, resume: str) -> None:
    """fit(distributed=True) with seed=None (rank 0's generator draws the order), writing a
    checkpoint every epoch; resume="yes" continues from that checkpoint."""
    distributed.init()
    xnn.set_default_dtype("float64")
    path = os.path.join(folder, "ckpt.safetensors")
    if resume == "yes":
        ck = xnn.load(path)
        model, opt = ck.model, ck.optimizer
    else:
        xnn.seed(0)
        model = small_model()
        opt = xnn.optim.Adam(model.parameters(), lr=0.01)
    keep = callbacks.ModelCheckpoint(path, monitor="loss")
    X, y = small_data()
    history = xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), optimizer=opt, epochs=int(epochs),
                      batch_size=16, progress=False, distributed=True, callbacks=[keep])
    save_weights(folder, "resume" if resume == "yes" else "first", model)
    with open(os.path.join(folder, f"log-{resume}-{distributed.rank()}.json"), "w") as f:
        json.dump({"loss": history["loss"], "saved": len(keep.saved)}, f)


# how each loss's data looks, by name; a loss not named here takes real-valued targets
_KINDS = {"BCELoss": "probabilities", "BCEWithLogitsLoss": "binary",
          "CrossEntropyLoss": "labels", "NLLLoss": "log-probabilities"}


def loss_cases() -> dict[str, tuple[str, str, str, str]]:
    """id -> (loss name, options, data kind, reduction) for every loss of xnn.losses.__all__,
    every reduction, and each option its constructor takes (class weights, pos_weight,
    label_smoothing, ignore_index with a rank's share all ignored, probability targets)."""
    cases = {}
    for name in xnn.losses.__all__:
        cls = getattr(xnn.losses, name)
        if cls is xnn.losses.Loss:
            continue
        kind = _KINDS.get(name, "values")
        takes = inspect.signature(cls).parameters
        variants = [("plain", kind)]
        if "weight" in takes:
            variants.append(("weight", kind))
        if "pos_weight" in takes:
            variants.append(("weight+pos_weight", kind))
        if "label_smoothing" in takes:
            variants += [("weight+label_smoothing", kind),
                         ("weight+label_smoothing", "class-probabilities")]
        if "ignore_index" in takes:
            variants.append(("weight+ignore_index", kind + "+ignored-share"))
        for options, data in variants:
            for reduction in ("mean", "sum", "none"):
                cases[f"{name}-{options}-{data}-{reduction}"] = (name, options, data, reduction)
    return cases


def _loss_case(name: str, options: str, data: str, reduction: str) -> tuple:
    """(model, loss, X, y, fit keywords) of one case, float64, the same on every rank."""
    kind = data.split("+")[0]
    classes = 2 if kind in ("values", "probabilities", "binary") else 3
    n, ignored = (24, True) if data.endswith("ignored-share") else (37, False)
    g = np.random.default_rng(3)
    X = g.normal(size=(n, 3))
    if kind == "values":
        y = np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 0]], axis=1)
    elif kind == "probabilities":
        y = g.uniform(size=(n, classes))
    elif kind == "binary":
        y = (g.uniform(size=(n, classes)) < 0.4).astype(np.float64)
    elif kind == "class-probabilities":
        y = g.dirichlet(np.ones(classes), size=n)
    else:
        y = g.integers(0, classes, size=n)
    kwargs: dict = {}
    if "weight" in options:
        kwargs["weight"] = xnn.asarray(np.linspace(0.5, 2.0, classes))
    if "pos_weight" in options:
        kwargs["pos_weight"] = xnn.asarray(np.linspace(3.0, 0.5, classes))
    if "label_smoothing" in options:
        kwargs["label_smoothing"] = 0.1
    fit_kwargs = {"batch_size": 8, "seed": 0}
    if ignored:
        # batches of 12 rows in order: rows 6-11 and 18-23 are the last share on 2 ranks and
        # hold it on 3 (rows 8-11, 20-23): that rank's share is every label ignored
        kwargs["ignore_index"] = 1
        y[6:12] = y[18:24] = 1
        y[:6] = y[12:18] = np.tile([0, 2], 3)
        fit_kwargs = {"batch_size": 12, "shuffle": False}
    xnn.seed(0)
    layers = [nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, classes)]
    if kind == "probabilities":
        layers.append(nn.Sigmoid())
    if kind == "log-probabilities":
        layers.append(nn.LogSoftmax())
    loss = getattr(xnn.losses, name)(**kwargs, reduction=reduction)
    return nn.Sequential(*layers), loss, X, y, fit_kwargs


def losses(folder: str) -> None:
    """Every loss case trained by one process and by fit(distributed=True), with an optimizer
    and with a DistributedOptimizer ("wrapped"), on each rank."""
    distributed.init()
    xnn.set_default_dtype("float64")
    out = {}
    for case, spec in loss_cases().items():
        for how in ("alone", "ranks", "wrapped"):
            model, loss, X, y, kwargs = _loss_case(*spec)
            opt = xnn.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
            if how == "wrapped":
                opt = distributed.DistributedOptimizer(opt)
            # TerminateOnNaN: before_step sees each step's loss as a 0-d array on every rank
            history = xnn.fit(model, X, y, loss=loss, optimizer=opt, epochs=3, progress=False,
                              distributed=how != "alone", **kwargs,
                              callbacks=[callbacks.TerminateOnNaN()])
            assert history.stop_reason is None, (case, how, history.stop_reason)
            out[f"{case}/{how}/loss"] = np.asarray(history["loss"])
            for k, v in model.state_dict().items():
                out[f"{case}/{how}/{k}"] = xnn.to_numpy(v)
    np.savez(os.path.join(folder, f"losses-{distributed.rank()}.npz"), **out)


# --- what each rank may do its own way, and what it must do the same (issue 24) -------------

class _Record(callbacks.Callback):
    """A rank-0 style logging callback: counts the steps it sees and the epochs it logs."""

    def __init__(self) -> None:
        self.steps, self.epochs = 0, []

    def before_step(self, run, loss) -> bool:
        self.steps += 1
        return True

    def on_epoch_end(self, run, logs) -> None:
        self.epochs.append(logs["loss"])


class _StopAtEpochEnd(callbacks.Callback):
    """Asks to stop at the end of epoch ``epoch`` (a time budget, a STOP file)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, run, logs) -> None:
        if run.epoch == self.epoch:
            run.stop("the time budget is spent")


class _Leave(callbacks.Callback):
    """Leaves fit at step 5 by ``how``: sys.exit(3), KeyboardInterrupt, or an exception that
    the rank's script catches (so no excepthook sees it)."""

    def __init__(self, how: str) -> None:
        self.how, self.seen = how, 0

    def before_step(self, run, loss) -> bool:
        self.seen += 1
        if self.seen == 5:
            if self.how == "exit":
                sys.exit(3)
            if self.how == "interrupt":
                raise KeyboardInterrupt
            raise RuntimeError("rank 1 gives up at step 5")
        return True


def _setup(folder: str, case: str, me: int) -> tuple:
    """(model, optimizer, X, y, loss, callbacks) of ``case`` as rank ``me`` makes them."""
    X, y = small_data()
    cbs, loss = [], xnn.losses.MSELoss()
    xnn.seed(0)
    model = small_model()
    opt = xnn.optim.Adam(model.parameters(), lr=0.01)
    last = distributed.world_size() - 1
    if case == "rank0-callbacks":  # log on rank 0 only, the usual habit
        cbs = [_Record(), callbacks.TerminateOnNaN()] if me == 0 else []
    elif case == "epoch-end-stop":  # the last rank stops at the end of epoch 1
        cbs = [_StopAtEpochEnd(1)] if me == last else []
    elif case == "early-stopping":  # EarlyStopping on the last rank, its patience spent at once
        cbs = [callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)] \
            if me == last else []
    elif case in ("exit", "interrupt", "caught"):
        cbs = [_Leave(case)] if me == 1 else []
    elif case == "resume-on-rank-0" and me == 0:  # only rank 0 resumes from the checkpoint
        ck = xnn.load(os.path.join(folder, "resume.safetensors"))
        model, opt = ck.model, ck.optimizer
    elif case == "lr-per-rank":
        opt = xnn.optim.Adam(model.parameters(), lr=0.01 * (me + 1))
    elif case == "optimizer-class" and me == 1:
        opt = xnn.optim.SGD(model.parameters(), lr=0.01)
    elif case in ("data", "data-unchecked") and me == 1:  # one value differs, sizes agree
        X = X.copy()
        X[17, 1] += 1e-3
    elif case == "loss" and me == 1:
        loss = xnn.losses.MSELoss(reduction="sum")
    return model, opt, X, y, loss, cbs


def _fit(model, opt, X, y, loss, cbs, distributed: bool):
    return xnn.fit(model, X, y, loss=loss, optimizer=opt, epochs=3, batch_size=10, seed=0,
                   progress=False, distributed=distributed, callbacks=cbs)


def habit(folder: str, case: str) -> None:
    """One rank-specific habit of issue 24 trained by fit(distributed=True) ("ranks"), and by
    one process as rank 0 would set it up, without callbacks ("alone"), float64. Each rank
    writes both models and what its fit reported."""
    distributed.init()
    xnn.set_default_dtype("float64")
    me = distributed.rank()
    if case == "resume-on-rank-0":  # one epoch, checkpointed by rank 0
        model, opt, X, y, loss, _ = _setup(folder, "plain", me)
        xnn.fit(model, X, y, loss=loss, optimizer=opt, epochs=1, batch_size=10, seed=0,
                progress=False, distributed=True)
        if me == 0:
            xnn.save(os.path.join(folder, "resume.safetensors"), model, opt)
        distributed.barrier()
    model, opt, X, y, loss, cbs = _setup(folder, case, me)
    try:
        history = _fit(model, opt, X, y, loss, cbs, distributed=True)
    except RuntimeError as err:
        if case != "caught":
            raise
        print(f"rank {me} caught '{err}' and carries on", flush=True)
        return
    info = {"steps": opt.steps, "epochs": len(history.epoch), "loss": history["loss"],
            "reason": history.stop_reason}
    if cbs and isinstance(cbs[0], _Record):
        info["seen"] = {"steps": cbs[0].steps, "epochs": len(cbs[0].epochs)}
    save_weights(folder, "ranks", model)
    model, opt, X, y, loss, _ = _setup(folder, case, 0)
    alone = _fit(model, opt, X, y, loss, [], distributed=False)
    info["alone"] = {"steps": opt.steps, "loss": alone["loss"]}
    save_weights(folder, "alone", model)
    with open(os.path.join(folder, f"habit-{me}.json"), "w") as f:
        json.dump(info, f)

def stream(folder: str) -> None:
    """fit(distributed=True) on rows read from storage: the rows each rank reads while
    training, and its weights against the same fit on the rows in memory and one process."""
    distributed.init()
    xnn.set_default_dtype("float64")
    X, y = small_data()
    reads = []

    class Rows:  # a stored array that only indexes, logging the rows it hands out
        shape, dtype = X.shape, X.dtype

        def __getitem__(self, index):
            reads.append(np.arange(*index.indices(X.shape[0])).tolist()
                         if isinstance(index, slice) else np.asarray(index).tolist())
            return X[index]

    path = os.path.join(folder, "y.npy")
    if distributed.rank() == 0:
        np.save(path, y)
    distributed.barrier()
    weights = {}
    for how, data, ranks in (("streamed", (Rows(), np.load(path, mmap_mode="r")), True),
                             ("memory", (X, y), True), ("alone", (X, y), False)):
        xnn.seed(0)
        model = small_model()
        xnn.fit(model, *data, loss=xnn.losses.MSELoss(), epochs=2, batch_size=16, seed=3,
                optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), progress=False,
                distributed=ranks)
        weights[how] = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
    np.savez(os.path.join(folder, f"stream-{distributed.rank()}.npz"),
             **{f"{how}/{k}": v for how, w in weights.items() for k, v in w.items()})
    with open(os.path.join(folder, f"stream-{distributed.rank()}.json"), "w") as f:
        json.dump(reads, f)


def stream_batches(folder: str) -> None:
    """fit(distributed=True) on BatchDatasets of consecutive chunks of 16 rows, each rank
    keeping its share of each batch: of 96 rows against the in-memory distributed fit with
    shuffle="batch" (the same batches when all are full), of 97 rows (a last batch of one row:
    an empty share) against one process; the weights, validation losses, and the rows each
    rank's steps took."""
    distributed.init()
    xnn.set_default_dtype("float64")
    X, y = small_data(97)
    X_val, y_val = small_data(37)
    seen: dict[str, list] = {}  # first feature of the rows each of this rank's steps took

    class Chunks(xnn.data.BatchDataset):
        def __init__(self, X, y):
            self.X, self.y = X, y

        def __len__(self):
            return -(-self.X.shape[0] // 16)

        def __getitem__(self, i):
            return self.X[16 * i:16 * (i + 1)], self.y[16 * i:16 * (i + 1)]

    weights, val = {}, {}
    for how, data, validation, ranks in (
            ("batches", (Chunks(X[:96], y[:96]), None), Chunks(X_val, y_val), True),
            ("memory", (X[:96], y[:96]), (X_val, y_val), True),
            ("short", (Chunks(X, y), None), None, True),
            ("alone", (Chunks(X, y), None), None, False)):
        xnn.seed(0)
        model = small_model()
        first, steps = model[0], seen.setdefault(how, [])
        forward = first.forward

        def logged(x, *args, _forward=forward, _first=first, _steps=steps, **kwargs):
            if _first.training:  # a step, not fit's first-batch check or validation
                _steps.append(xnn.to_numpy(x)[:, 0].tolist())
            return _forward(x, *args, **kwargs)
        first.forward = logged
        history = xnn.fit(model, *data, loss=xnn.losses.MSELoss(), epochs=2, seed=3,
                          batch_size=16 if how == "memory" else None,
                          shuffle="batch" if how == "memory" else True,
                          validation_data=validation,
                          optimizer=xnn.optim.Adam(model.parameters(), lr=0.01),
                          progress=False, distributed=ranks)
        del first.forward
        weights[how] = {k: xnn.to_numpy(v) for k, v in model.state_dict().items()}
        val[how] = history.history.get("val_loss")
    np.savez(os.path.join(folder, f"batches-{distributed.rank()}.npz"),
             **{f"{how}/{k}": v for how, w in weights.items() for k, v in w.items()})
    with open(os.path.join(folder, f"batches-{distributed.rank()}.json"), "w") as f:
        json.dump({"seen": seen, "val_loss": val}, f)


def restore(folder: str) -> None:
    """A callback on rank 0 only that puts the weights after the first epoch back at
    on_train_end (what EarlyStopping(restore_best=True) does): every rank ends with them. Then
    a callback on rank 1 only that moves its weights at each epoch end: the ranks end apart."""
    distributed.init()
    xnn.set_default_dtype("float64")
    X, y = small_data()
    me = distributed.rank()
    kept: dict = {}

    def keep(run, logs):
        if not kept:
            kept.update({k: xnn.to_numpy(v).copy() for k, v in run.model.state_dict().items()})

    def put_back(run):
        run.model.load_state_dict({k: xnn.asarray(v) for k, v in kept.items()})

    xnn.seed(me)  # different weights on each rank: fit starts every rank from rank 0's
    model = small_model()
    xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=3, batch_size=16, seed=3,
            optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), progress=False,
            distributed=True, callbacks=[xnn.callbacks.LambdaCallback(
                on_epoch_end=keep, on_train_end=put_back)] if me == 0 else [])
    np.savez(os.path.join(folder, f"restore-{me}.npz"),
             **{f"end/{k}": xnn.to_numpy(v) for k, v in model.state_dict().items()},
             **{f"kept/{k}": v for k, v in kept.items()})

    def bump(run, logs):
        first = run.model.parameters()[0]
        first.value = first.value + 1.0

    model = small_model()
    try:
        xnn.fit(model, X, y, loss=xnn.losses.MSELoss(), epochs=2, batch_size=16, seed=3,
                optimizer=xnn.optim.Adam(model.parameters(), lr=0.01), progress=False,
                distributed=True, callbacks=[xnn.callbacks.LambdaCallback(
                    on_epoch_end=bump)] if me == 1 else [])
        outcome = "trained"
    except RuntimeError as error:
        outcome = str(error)
    # a BatchNorm1d model with a callback on one rank: its buffers (a step count) compared too
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))
    xnn.fit(model, X[:96], y[:96], loss=xnn.losses.MSELoss(), epochs=2, batch_size=16, seed=3,
            optimizer=xnn.optim.SGD(model.parameters(), lr=0.01), progress=False,
            distributed=True, callbacks=[xnn.callbacks.LambdaCallback(
                on_epoch_end=lambda run, logs: None)] if me == 0 else [])
    save_weights(folder, "restore-norm", model)
    with open(os.path.join(folder, f"restore-{me}.json"), "w") as f:
        json.dump(outcome, f)


if __name__ == "__main__":
    job, folder, *rest = sys.argv[1:]
    {"collectives": collectives, "fault": fault, "mismatch": mismatch, "disagree": disagree,
     "train": train, "vote": vote, "reduce_paths": reduce_paths,
     "reduce_mismatch": reduce_mismatch, "losses": losses, "habit": habit,
     "stream": stream, "stream_batches": stream_batches, "restore": restore}[job](folder, *rest)
