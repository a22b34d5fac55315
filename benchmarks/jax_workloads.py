"""The jax rows of benchmarks/run.py (``--jax``): xnn on jax eager and compiled, and the anchor,
a hand-written JAX loop.

- "xnn on jax": the step a user writes by hand (as the "xnn" row), on the jax backend: every
  operation dispatched on its own.
- "xnn on jax, compiled": ``xnn.fit(..., jit_compile=True)``: each run of epochs one
  ``jax.jit`` (lax.scan over the batches, the row order inside). Its compiled functions are
  kept for models alike, so the warm-up compiles them (it trains the whole schedule: a
  shorter one would compile another length).
- "jax.jit": the anchor, what a JAX user writes: ``jax.value_and_grad`` of the network's loss
  and the optimizer's update in one jitted epoch (the rows taken in the epoch's order, lax.scan
  over the full batches, the short last one), called once per epoch.

All three train the workload's float32 network from the same initial weights. fit and the
anchor draw their row orders as they run, as a training loop must, the same way: a NumPy
permutation per epoch on the host, moved in with the call (fit's from its seed, the orders an
eager fit draws; the anchor's the workload's orders, drawn again each run). Drawing them inside the jitted epoch
with ``jax.random.permutation`` instead cost this CPU about 5 ms an epoch of 7,000 rows (a
sort; ``arithmetic``'s 20 epochs took 185 ms against about 80), more than the epoch's
training: a JAX user who measured would draw them on the host too.
"xnn on jax" takes the workload's orders, as the other hand-written rows do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

import xnn
import workloads as W


class XnnJaxCompiledTrainer(W.XnnTrainer):
    """xnn.fit(jit_compile=True) on the jax backend, full schedule every run."""

    label = "xnn on jax, compiled"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, backend="jax", validate=False, **kwargs)

    def run(self, max_steps: int | None = None) -> float:
        w = self.w
        history = xnn.fit(self.model, self.X, self.y, loss=self.loss, optimizer=self.opt,
                          epochs=w.epochs, batch_size=w.batch_size, shuffle=w.shuffle, seed=1,
                          progress=False, jit_compile=True)
        return history["loss"][-1]


class JaxJitTrainer:
    """The hand-written JAX loop: a jitted epoch of value_and_grad steps."""

    label = "jax.jit"

    def __init__(self, w: W.Workload, X: np.ndarray, y: np.ndarray, weights: list,
                 orders: list) -> None:
        xnn.backend._load("jax")  # jax with x64 on, as xnn runs it (the data stay float32)
        import jax  # noqa: PLC0415
        import jax.numpy as jnp  # noqa: PLC0415

        self.jax, self.jnp, self.w, self.weights = jax, jnp, w, weights
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        size = w.n if w.batch_size is None else w.batch_size
        self.full, self.size = w.n // size, size
        self.epoch = jax.jit(self._epoch, donate_argnums=(0, 1))

    def reset(self) -> None:
        jnp = self.jnp
        self.params = [(jnp.array(W), jnp.array(b)) for W, b in self.weights]
        zeros = [(jnp.zeros_like(W), jnp.zeros_like(b)) for W, b in self.params]
        self.state = {"t": jnp.zeros((), jnp.int32), "m": zeros,
                      "v": [(jnp.zeros_like(W), jnp.zeros_like(b)) for W, b in self.params]}
        self.generator = np.random.default_rng(1)  # batch_orders' draws: the workload's orders

    def _loss(self, params: list, xb: Any, yb: Any) -> Any:
        jax, jnp, w = self.jax, self.jnp, self.w
        act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[w.activation]
        h = xb
        for k, (weight, b) in enumerate(params):
            h = h @ weight + b
            if k < len(params) - 1:
                h = act(h)
        if w.output == "sigmoid":
            h = jax.nn.sigmoid(h)
        if w.loss == "mse":
            return jnp.mean((h - yb) ** 2)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def _update(self, params: list, state: dict, grads: list) -> tuple[list, dict]:
        jax, jnp, w = self.jax, self.jnp, self.w
        if w.optimizer == "sgd":
            return jax.tree.map(lambda p, g: p - w.lr * g, params, grads), state
        if w.optimizer == "sgd_momentum":
            m = jax.tree.map(lambda v, g: w.momentum * v + g, state["m"], grads)
            return jax.tree.map(lambda p, v: p - w.lr * v, params, m), {**state, "m": m}
        b1, b2, eps = 0.9, 0.999, 1e-8
        t = state["t"] + 1
        tf = t.astype(jnp.float32)  # float32 corrections: an int power would make float64
        c1, c2 = 1 - b1 ** tf, 1 - b2 ** tf
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
        new = jax.tree.map(lambda p, m, v: p - w.lr * (m / c1) / (jnp.sqrt(v / c2) + eps),
                           params, m, v)
        return new, {"t": t, "m": m, "v": v}

    def _step(self, carry: tuple, batch: tuple) -> tuple[tuple, Any]:
        params, state = carry
        loss, grads = self.jax.value_and_grad(self._loss)(params, *batch)
        params, state = self._update(params, state, grads)
        return (params, state), loss

    def _epoch(self, params: list, state: dict, X: Any, y: Any, order: Any) -> tuple:
        jnp, full, size = self.jnp, self.full, self.size
        if order is not None:
            X, y = X[order], y[order]
        cut = full * size
        batches = (X[:cut].reshape(full, size, *X.shape[1:]),
                   y[:cut].reshape(full, size, *y.shape[1:]))
        (params, state), losses = self.jax.lax.scan(self._step, (params, state), batches)
        loss = losses[-1]
        if cut < X.shape[0]:
            (params, state), loss = self._step((params, state), (X[cut:], y[cut:]))
        return params, state, jnp.asarray(loss)

    def run(self, max_steps: int | None = None) -> float:
        params, state, loss = self.params, self.state, None
        for i in range(self.w.epochs):
            order = self.generator.permutation(self.w.n) if self.w.shuffle else None
            params, state, loss = self.epoch(params, state, self.X, self.y, order)
            if max_steps is not None and (i + 1) * (self.full + 1) >= max_steps:
                break
        self.params, self.state = params, state
        return float(loss)


ROWS = {
    "xnn on jax": partial(W.XnnTrainer, backend="jax", validate=False),
    "xnn on jax, compiled": XnnJaxCompiledTrainer,
    "jax.jit": JaxJitTrainer,
}
