"""The benchmark workloads, each written three times: xnn, hand-written NumPy, PyTorch eager.

All three train the same float32 network from the same initial weights (drawn by xnn, copied
into the other two) on the same data, in the same batch order, with the same optimizer math,
and record every step's loss without reading it back to the host. A trainer's ``run()`` is the
timed part: the whole training of the workload, from the initial weights.

What "xnn" is: the training step a user writes by hand (``model.forward`` with
``input_grad=False``, the loss, ``backprop``, ``optimizer.step``, ``zero_grad``). Two extra
rows show ``model.forward`` with its default ``input_grad=True`` and ``xnn.fit``.

On a GPU (``device_implementations``) the same three run as xnn on CuPy, the hand-written
network on CuPy (which mirrors NumPy's API) and PyTorch on CUDA. Each trainer moves the data
to the device when it is built and the initial weights in ``reset()``; the steps read nothing
back, and ``run()`` ends by reading the final loss, which waits for the device.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Callable

import numpy as np

import xnn
from xnn import nn


@dataclass(frozen=True)
class Workload:
    """One network, data set and training schedule."""

    name: str
    sizes: tuple[int, ...]          # layer widths, input first
    activation: str                 # hidden activation: "sigmoid", "tanh", "relu"
    output: str                     # output activation: "sigmoid" or "none"
    loss: str                       # "mse" or "cross_entropy" (integer labels)
    optimizer: str                  # "sgd", "sgd_momentum", "adam"
    lr: float
    epochs: int
    batch_size: int | None          # None: full batch
    shuffle: bool
    data: Callable[[int], tuple[np.ndarray, np.ndarray]] = field(repr=False)
    n: int = 0                      # samples (filled from the data)
    momentum: float = 0.9

    def steps_per_epoch(self) -> int:
        return 1 if self.batch_size is None else math.ceil(self.n / self.batch_size)

    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch()

    def flops_per_step(self) -> float:
        """Useful float operations of one full-size step: forward and backward GEMMs (the first
        layer's input gradient excluded: nobody needs it)."""
        b = self.n if self.batch_size is None else self.batch_size
        mults = [i * o for i, o in zip(self.sizes[:-1], self.sizes[1:])]
        return 2.0 * b * (3 * sum(mults) - mults[0])


# --- data (host NumPy, float32; integer labels for cross-entropy) --------------------------------

def _xor(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = xnn.datasets.xor(dtype="float32")
    return xnn.to_numpy(X), xnn.to_numpy(y)


def _standardize(a: np.ndarray) -> np.ndarray:
    return ((a - a.mean(axis=0)) / a.std(axis=0)).astype(np.float32)


def _polynomial(seed: int) -> tuple[np.ndarray, np.ndarray]:
    with xnn.use_backend("numpy"):
        X, y = xnn.datasets.polynomial(n=1000, noise=1.0, seed=seed, dtype="float64")
    return X.astype(np.float32), _standardize(y)   # the example's standardized targets


def _arithmetic(seed: int) -> tuple[np.ndarray, np.ndarray]:
    with xnn.use_backend("numpy"):
        X, y = xnn.datasets.arithmetic(10_000, seed=seed, dtype="float64")
    return _standardize(X[:7000]), _standardize(y[:7000])  # the 70% training part


def _mlp_data(n: int, features: int = 784, classes: int = 10):
    def make(seed: int) -> tuple[np.ndarray, np.ndarray]:
        g = np.random.default_rng(seed)
        X = g.standard_normal((n, features), dtype=np.float32)
        teacher = g.standard_normal((features, classes), dtype=np.float32)
        return X, np.argmax(X @ teacher, axis=1).astype(np.int64)  # learnable labels
    return make


def workloads(quick: bool = False) -> dict[str, Workload]:
    """The suite; ``quick`` shortens every schedule (same networks, same step)."""
    suite = [
        Workload("xor", (2, 2, 1), "sigmoid", "sigmoid", "mse", "sgd", 2.0,
                 epochs=10_000, batch_size=None, shuffle=False, data=_xor),
        Workload("polynomial", (1, 64, 1), "tanh", "none", "mse", "adam", 1e-2,
                 epochs=5_000, batch_size=None, shuffle=False, data=_polynomial),
        Workload("arithmetic", (2, 64, 64, 3), "relu", "none", "mse", "adam", 1e-3,
                 epochs=20, batch_size=64, shuffle=True, data=_arithmetic),
        Workload("mlp-large", (784, 1024, 1024, 10), "relu", "none", "cross_entropy",
                 "sgd_momentum", 1e-2, epochs=1, batch_size=256, shuffle=False,
                 data=_mlp_data(256 * 24)),
    ]
    if quick:
        short = {"xor": 1_000, "polynomial": 500, "arithmetic": 2, "mlp-large": 1}
        suite = [replace(w, epochs=short[w.name]) for w in suite]
        suite[-1] = replace(suite[-1], data=_mlp_data(256 * 6))
    return {w.name: w for w in suite}


def load(w: Workload, seed: int = 0) -> tuple[Workload, np.ndarray, np.ndarray, list]:
    """The workload with n filled in, its data, and the initial weights [(W, b), ...] drawn by
    xnn (torch.nn.Linear's distribution), as float32 NumPy arrays."""
    X, y = w.data(seed)
    xnn.seed(seed)
    with xnn.use_backend("numpy"):
        layers = [nn.Linear(i, o, dtype="float32") for i, o in zip(w.sizes[:-1], w.sizes[1:])]
    weights = [(xnn.to_numpy(l.weight.value), xnn.to_numpy(l.bias.value)) for l in layers]
    return replace(w, n=X.shape[0]), X, y, weights


def batch_orders(w: Workload, seed: int = 0) -> list[np.ndarray | None]:
    """One host permutation per epoch (None without shuffling), shared by all implementations."""
    g = np.random.default_rng(seed + 1)
    return [g.permutation(w.n) if w.shuffle else None for _ in range(w.epochs)]


def _bounds(w: Workload) -> list[tuple[int, int]]:
    size = w.n if w.batch_size is None else w.batch_size
    return [(s, min(s + size, w.n)) for s in range(0, w.n, size)]


# --- xnn -----------------------------------------------------------------------------------------

def _accepts_input_grad(module: Any) -> bool:
    return "input_grad" in inspect.signature(module.forward).parameters


def _given(array: np.ndarray) -> Callable:
    """An xnn initializer that returns a copy of ``array`` on the active backend."""
    return lambda shape, dtype=None: xnn.asarray(array)


class XnnTrainer:
    """The training step a user writes with xnn (on the numpy backend unless ``backend`` names
    another).

    Trainers convert the data when built and make the model and optimizer in ``reset()``, so
    the peak-memory measurement can take the data as part of its baseline. ``validate=False``
    turns off CrossEntropyLoss's per-step label check, which reads two numbers back to the host
    (a GPU sync per step): what a GPU loop does, and what the other two implementations do."""

    label = "xnn"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, weights: list,
                 orders: list, backend: str = "numpy", input_grad: bool = False,
                 validate: bool = True) -> None:
        self.w, self.weights, self.backend = w, weights, xnn.backend._load(backend)
        self.input_grad, self.validate = input_grad, validate
        with xnn.use_backend(self.backend):
            self.X = xnn.asarray(X)
            self.y = xnn.asarray(y)
            self.orders = [None if o is None else xnn.asarray(o, dtype="int64") for o in orders]

    def reset(self) -> None:
        w = self.w
        self.model = self.opt = None  # drop the last run's arrays before making new ones
        with xnn.use_backend(self.backend):
            acts = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
            layers: list[nn.Module] = []
            for k, (W, b) in enumerate(self.weights):
                linear = nn.Linear(*W.shape, init=_given(W), bias_init=_given(b))
                layers.append(linear)
                if k < len(self.weights) - 1:
                    layers.append(acts[w.activation]())
            if w.output == "sigmoid":
                layers.append(nn.Sigmoid())
            self.model = nn.Sequential(*layers)
            self.loss = (xnn.losses.MSELoss() if w.loss == "mse"
                         else xnn.losses.CrossEntropyLoss(validate=self.validate))
            params = self.model.parameters()
            if w.optimizer == "adam":
                self.opt = xnn.optim.Adam(params, lr=w.lr)
            elif w.optimizer == "sgd_momentum":
                self.opt = xnn.optim.SGD(params, lr=w.lr, momentum=w.momentum)
            else:
                self.opt = xnn.optim.SGD(params, lr=w.lr)
        self.forward_kwargs = ({"input_grad": self.input_grad}
                               if _accepts_input_grad(self.model) else {})

    def run(self, max_steps: int | None = None) -> float:
        model, loss_fn, opt, kwargs = self.model, self.loss, self.opt, self.forward_kwargs
        X, y, bounds = self.X, self.y, _bounds(self.w)
        losses = []
        for order in self.orders:
            Xe, ye = (X, y) if order is None else (xnn.data.take_rows(X, order),
                                                   xnn.data.take_rows(y, order))
            for start, stop in bounds:
                xb, yb = Xe[start:stop, ...], ye[start:stop, ...]
                pred, backprop = model.forward(xb, **kwargs)
                value, dpred = loss_fn(pred, yb)
                backprop(dpred)
                opt.step()
                opt.zero_grad()
                losses.append(value)
                if max_steps is not None and len(losses) >= max_steps:
                    return float(losses[-1])
        return float(losses[-1])


class XnnDefaultTrainer(XnnTrainer):
    """The same step with model.forward(xb): the first layer also computes dL/dx."""

    label = "xnn, input_grad=True"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, input_grad=True, **kwargs)


class XnnFitTrainer(XnnTrainer):
    """xnn.fit with the same batches (no validation, no metrics, no progress bar)."""

    label = "xnn.fit"

    def run(self, max_steps: int | None = None) -> float:
        w = self.w
        epochs = w.epochs if max_steps is None else max(1, max_steps // w.steps_per_epoch())
        history = xnn.fit(self.model, self.X, self.y, loss=self.loss, optimizer=self.opt,
                          epochs=epochs, batch_size=w.batch_size, shuffle=w.shuffle, seed=1,
                          progress=False)
        return history["loss"][-1]


# --- hand-written NumPy ----------------------------------------------------------------------------

class NumpyTrainer:
    """The tutorials' NumPy network: W, b arrays, explicit forward, backward and update, written
    straight through for the two shapes of the suite (one hidden layer, two hidden layers).

    ``xp`` is the array module: numpy, or cupy, which mirrors NumPy's API (the GPU row)."""

    label = "numpy"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, weights: list,
                 orders: list, xp: Any = np) -> None:
        self.w, self.weights, self.xp = w, weights, xp
        self.X, self.y = xp.asarray(X), xp.asarray(y)   # numpy: the same arrays, no copy
        self.orders = [None if o is None else xp.asarray(o) for o in orders]
        self.step = {2: self._step_one_hidden, 3: self._step_two_hidden}[len(weights)]
        self.update = {"sgd": self._sgd, "sgd_momentum": self._momentum,
                       "adam": self._adam}[w.optimizer]

    def reset(self) -> None:
        self.W = [self.xp.array(W) for W, _ in self.weights]   # a copy, on the device for cupy
        self.b = [self.xp.array(b) for _, b in self.weights]
        self.m = self.v = None  # optimizer state, made at the first update as torch and xnn do
        self.t = 0

    def _zeros(self) -> list[np.ndarray]:
        return [self.xp.zeros_like(a) for a in self.W + self.b]

    # xor (sigmoid, sigmoid output) and polynomial (tanh, linear output); mean squared error
    def _step_one_hidden(self, X: np.ndarray, y: np.ndarray) -> Any:
        xp, (W1, W2), (b1, b2) = self.xp, self.W, self.b
        sigmoid_hidden = self.w.activation == "sigmoid"
        z1 = X @ W1 + b1
        a1 = 1 / (1 + xp.exp(-z1)) if sigmoid_hidden else xp.tanh(z1)
        z2 = a1 @ W2 + b2
        out = 1 / (1 + xp.exp(-z2)) if self.w.output == "sigmoid" else z2
        diff = out - y
        loss = xp.mean(diff ** 2)
        d2 = 2 * diff / diff.size
        if self.w.output == "sigmoid":
            d2 = d2 * out * (1 - out)
        dW2 = a1.T @ d2
        db2 = d2.sum(axis=0)
        d1 = d2 @ W2.T
        d1 = d1 * a1 * (1 - a1) if sigmoid_hidden else d1 * (1 - a1 * a1)
        dW1 = X.T @ d1
        db1 = d1.sum(axis=0)
        self.update([dW1, dW2, db1, db2])
        return loss

    # arithmetic (mean squared error) and mlp-large (softmax cross-entropy); ReLU
    def _step_two_hidden(self, X: np.ndarray, y: np.ndarray) -> Any:
        xp, (W1, W2, W3), (b1, b2, b3) = self.xp, self.W, self.b
        z1 = X @ W1 + b1
        a1 = xp.maximum(z1, 0)
        z2 = a1 @ W2 + b2
        a2 = xp.maximum(z2, 0)
        out = a2 @ W3 + b3
        if self.w.loss == "mse":
            diff = out - y
            loss = xp.mean(diff ** 2)
            d3 = 2 * diff / diff.size
        else:
            shifted = out - out.max(axis=1, keepdims=True)
            e = xp.exp(shifted)
            s = e.sum(axis=1, keepdims=True)
            rows = xp.arange(len(y))
            loss = xp.mean(xp.log(s[:, 0]) - shifted[rows, y])
            d3 = e / s
            d3[rows, y] -= 1
            d3 /= len(y)
        dW3 = a2.T @ d3
        db3 = d3.sum(axis=0)
        d2 = (d3 @ W3.T) * (a2 > 0)
        dW2 = a1.T @ d2
        db2 = d2.sum(axis=0)
        d1 = (d2 @ W2.T) * (a1 > 0)
        dW1 = X.T @ d1
        db1 = d1.sum(axis=0)
        self.update([dW1, dW2, dW3, db1, db2, db3])
        return loss

    def _sgd(self, grads: list[np.ndarray]) -> None:
        lr = self.w.lr
        for p, g in zip(self.W + self.b, grads):
            p -= lr * g

    def _momentum(self, grads: list[np.ndarray]) -> None:
        lr, mu = self.w.lr, self.w.momentum
        if self.m is None:
            self.m = self._zeros()
        for p, g, v in zip(self.W + self.b, grads, self.m):
            v *= mu
            v += g
            p -= lr * v

    def _adam(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        lr, b1, b2, eps = self.w.lr, 0.9, 0.999, 1e-8
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        if self.m is None:
            self.m, self.v = self._zeros(), self._zeros()
        for p, g, m, v in zip(self.W + self.b, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= lr * (m / c1) / (self.xp.sqrt(v / c2) + eps)

    def run(self, max_steps: int | None = None) -> float:
        losses = []
        for order in self.orders:
            Xe, ye = (self.X, self.y) if order is None else (self.X[order], self.y[order])
            for start, stop in _bounds(self.w):
                losses.append(self.step(Xe[start:stop], ye[start:stop]))
                if max_steps is not None and len(losses) >= max_steps:
                    return float(losses[-1])
        return float(losses[-1])


# --- PyTorch eager ---------------------------------------------------------------------------------

class TorchTrainer:
    """torch.nn + torch.optim, the way a PyTorch user writes the loop (eager, on ``device``:
    "cpu" or "cuda")."""

    label = "torch"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, weights: list,
                 orders: list, device: str = "cpu") -> None:
        import torch  # noqa: PLC0415 - optional

        self.torch, self.w, self.weights, self.device = torch, w, weights, device
        self.X = torch.from_numpy(X.copy()).to(device)   # "cpu": the tensor itself
        self.y = torch.from_numpy(y.copy()).to(device)
        self.orders = [None if o is None else torch.from_numpy(o).to(device) for o in orders]

    def reset(self) -> None:
        torch, w = self.torch, self.w
        self.model = self.opt = None  # drop the last run's tensors before making new ones
        acts = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
        layers: list[Any] = []
        for k, (W, b) in enumerate(self.weights):
            linear = torch.nn.Linear(*W.shape, device=self.device)
            with torch.no_grad():  # copy_ moves host weights to the device
                linear.weight.copy_(torch.from_numpy(W.T.copy()))  # torch stores (out, in)
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if k < len(self.weights) - 1:
                layers.append(acts[w.activation]())
        if w.output == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers)
        self.loss = torch.nn.MSELoss() if w.loss == "mse" else torch.nn.CrossEntropyLoss()
        params = list(self.model.parameters())
        if w.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=w.lr)
        elif w.optimizer == "sgd_momentum":
            self.opt = torch.optim.SGD(params, lr=w.lr, momentum=w.momentum)
        else:
            self.opt = torch.optim.SGD(params, lr=w.lr)

    def run(self, max_steps: int | None = None) -> float:
        model, loss_fn, opt = self.model, self.loss, self.opt
        losses = []
        for order in self.orders:
            Xe, ye = (self.X, self.y) if order is None else (self.X[order], self.y[order])
            for start, stop in _bounds(self.w):
                opt.zero_grad()
                loss = loss_fn(model(Xe[start:stop]), ye[start:stop])
                loss.backward()
                opt.step()
                losses.append(loss.detach())
                if max_steps is not None and len(losses) >= max_steps:
                    return float(losses[-1])
        return float(losses[-1])


IMPLEMENTATIONS: dict[str, type] = {
    "xnn": XnnTrainer,
    "numpy": NumpyTrainer,
    "torch": TorchTrainer,
}
EXTRAS: dict[str, type] = {
    "xnn, input_grad=True": XnnDefaultTrainer,
    "xnn.fit": XnnFitTrainer,
}


def device_implementations(xnn_backend: str, hand: Any, torch_device: str | None,
                           extras: bool = False) -> dict[str, Callable]:
    """The implementations on a device, by row name: "xnn" on ``xnn_backend``, the hand-written
    network on the array module ``hand`` (its name is the row's: "cupy"), "torch" on
    ``torch_device`` (None: no torch row), then the extra xnn rows if ``extras``. Each value
    is called as a trainer class is: ``(w, X, y, weights, orders)``.

    The xnn rows skip the per-step label check, as the other two do (see XnnTrainer)."""
    rows: dict[str, Callable] = {
        "xnn": partial(XnnTrainer, backend=xnn_backend, validate=False),
        hand.__name__: partial(NumpyTrainer, xp=hand),
    }
    if torch_device is not None:
        rows["torch"] = partial(TorchTrainer, device=torch_device)
    if extras:
        rows["xnn, input_grad=True"] = partial(XnnDefaultTrainer, backend=xnn_backend,
                                               validate=False)
        rows["xnn.fit"] = partial(XnnFitTrainer, backend=xnn_backend, validate=False)
    return rows
