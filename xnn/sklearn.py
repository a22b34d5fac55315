"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``, trained by xnn's epoch loop.

They take scikit-learn's constructor parameters with its defaults and meanings
(``sklearn.neural_network``), plus ``backend``, ``device`` and ``dtype``, and keep its fitted
attributes. The network is an ``xnn.nn.Sequential`` (``model_``) of Linear layers and the
hidden activation; it outputs the last layer's pre-activation (logits for a classifier) and
``out_activation_`` is applied when predicting, as scikit-learn's loss-link pairs it with the
loss. Training runs xnn's epoch loop (xnn/loop.py) with an xnn optimizer (SGD, or Adam with
scikit-learn's epsilon); scikit-learn's row order and the L2 penalty's gradient are its hooks
(``_Steps``), and what it does at each epoch's end (``loss_curve_``, the stopping rule, the
'invscaling' and 'adaptive' learning rates, early stopping) is a callback, ``_Epochs``.
``solver="lbfgs"`` minimizes the same objective over every row at once: scipy's L-BFGS-B on
NumPy, as scikit-learn does, and elsewhere its Array API port (xnn/optim/_lbfgs.py), which keeps
the parameters on the device. With the same ``random_state`` and data the result is
scikit-learn's network, to rounding.

Where the work runs: ``backend=None`` trains on the input's library and device when
scikit-learn's ``array_api_dispatch`` is on, else on xnn's active backend. ``dtype=None`` is
float32 on a GPU (cupy, torch on CUDA) and the input's float dtype otherwise. Predictions and
fitted arrays come back in the namespace and on the device of the input (NumPy when dispatch
is off), predictions in the input's float dtype.

This module imports scikit-learn; ``import xnn`` does not import this module.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral
from typing import Any

import numpy as np

from .extras import install_hint

try:
    import scipy.optimize
    from sklearn import get_config, neural_network
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d, shuffle
    from sklearn.utils._param_validation import StrOptions
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover - the sklearn extra is missing
    raise ImportError(f"xnn.sklearn needs scikit-learn (1.6 or later): "
                      f"{install_hint('sklearn')}") from err

from . import nn
from ._checks import ArgumentTypeError, all_finite
from .backend import (Backend, array_namespace, asarray, backend_of, detached, dtype_name,
                      get_backend, host_backend, is_array, to_numpy, use_backend)
from .callbacks import Callback
from .loop import Steps, train
from .losses import BCEWithLogitsLoss, CrossEntropyLoss
from .optim import SGD, Adam
from .optim._lbfgs import lbfgs

__all__ = ["MLPClassifier", "MLPRegressor"]

_HIDDEN = {"identity": nn.Identity, "logistic": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


# --- the objective: scikit-learn's loss, its L2 term, and the loss-link gradient -------------

# Each data loss takes the last layer's pre-activation z (batch, outputs) and the targets and
# returns scikit-learn's per-row values and their sum's gradient with respect to z, act(z) - y;
# the objective averages them, weighted by sample_weight where given (xnn's losses with
# reduction="none" give exactly these). For several regression outputs scikit-learn averages
# the squared error over them but not its gradient, and sums the Poisson deviance; so do these.

_CROSS_ENTROPY = CrossEntropyLoss(reduction="none", validate=False)  # labels checked on the host
_BINARY = BCEWithLogitsLoss(reduction="none")


def _softmax_loss(xp: Any, z: Any, labels: Any) -> tuple[Any, Any]:
    """Cross-entropy of softmax(z)."""
    return _CROSS_ENTROPY(z, labels)


def _logistic_loss(xp: Any, z: Any, t: Any) -> tuple[Any, Any]:
    """Binary cross-entropy of sigmoid(z), summed over the outputs."""
    value, grad = _BINARY(z, t)
    return xp.sum(value, axis=1), grad


def _identity_loss(xp: Any, z: Any, y: Any) -> tuple[Any, Any]:
    """Half the squared error, the mean over the outputs."""
    diff = z - y
    return xp.sum(diff * diff, axis=1) / (2 * z.shape[1]), diff


def _exp_loss(xp: Any, z: Any, y: Any) -> tuple[Any, Any]:
    """Half the Poisson deviance of p = e^z, y log(y / p) - y + p, summed over the outputs."""
    p = xp.exp(z)
    positive = y > 0
    # y log(y / p) = y (log y - z), which is 0 where y is 0 (log of 1 there, not of 0)
    term = xp.where(positive, y * (xp.log(xp.where(positive, y, 1.0)) - z), 0.0)
    return xp.sum(term - y + p, axis=1), p - y


_OUTPUTS = {"softmax": nn.Softmax(), "logistic": nn.Sigmoid(), "identity": nn.Identity(),
            "exp": lambda z: array_namespace(z).exp(z)}
_DATA_LOSSES = {"softmax": _softmax_loss, "logistic": _logistic_loss,
                "identity": _identity_loss, "exp": _exp_loss}


# --- scikit-learn's steps and epoch bookkeeping: hooks of xnn's loop ---------------------------

class _Steps(Steps):
    """scikit-learn's steps: batches in its row order, its per-batch loss (``objective``), and
    the L2 penalty's gradient alpha W / divisor (the rows, or their summed sample weights)
    added to the weights' between backprop and the step. The loop hands the objective row
    indices, so targets and sample weights (``y`` and ``sample_weight``, where the network is)
    travel in the same order; ``solver="lbfgs"`` takes ``objective`` and ``penalty`` over
    every row."""

    def __init__(self, est: _BaseMLP, n: int, size: int, y: Any,
                 sample_weight: Any) -> None:
        super().__init__(self.objective, n, size, self._order if est.shuffle else None)
        self.est, self.index = est, np.arange(n)
        self.y, self.sample_weight = y, sample_weight
        self.data_loss = _DATA_LOSSES[est.out_activation_]
        self.weights = [layer.weight for layer in est._linears]
        self.alpha = float(est.alpha)
        self.divisor: Any = None  # the batch's rows, or its summed sample weights
        if est.alpha:
            self.after_backward = self.penalty

    def objective(self, z: Any, rows: Any) -> tuple[Any, Any]:
        """The data loss of ``out_activation`` plus 0.5 alpha sum ||W||^2 over the weights
        (not the biases), both divided by the rows or the summed sample weights (scikit-learn's
        np.average), and the data loss's gradient (``penalty`` adds the L2's)."""
        xp = array_namespace(z)
        values, grad = self.data_loss(xp, z, xp.take(self.y, rows, axis=0))
        if self.sample_weight is None:
            self.divisor = z.shape[0]
        else:
            w = xp.take(self.sample_weight, rows, axis=0)
            values, grad = values * w, grad * w[:, None]
            self.divisor = xp.sum(w)
        value = xp.sum(values)
        if self.alpha:
            value = value + 0.5 * self.alpha * sum(xp.sum(w.value * w.value)
                                                   for w in self.weights)
        return value / self.divisor, grad / self.divisor

    def _order(self, epoch: int) -> Any:
        # scikit-learn's own call: its MLP permutes the last epoch's order at each epoch
        self.index = shuffle(self.index, random_state=self.est._random_state)
        return self.index

    def penalty(self, run: Any, value: Any) -> Any:
        scale = self.alpha / self.divisor
        for w in self.weights:
            w.grad = w.grad + scale * w.value
        return value


class _Adam(Adam):
    """Adam with epsilon added to sqrt(v) before the bias correction sqrt(1 - beta2^t), where
    scikit-learn adds it; torch's Adam adds eps after it, so each step uses that Adam with
    eps = epsilon / sqrt(1 - beta2^t), the same step."""

    hyperparameters = ("lr", "betas", "epsilon")  # what state_dict saves and a twin takes

    def __init__(self, params: list, lr: float, betas: tuple[float, float],
                 epsilon: float) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=epsilon)
        self.epsilon = self.eps

    def step(self) -> None:
        self.eps = self.epsilon / math.sqrt(1.0 - self.betas[1] ** (self.steps + 1))
        super().step()


class _Epochs(Callback):
    """What scikit-learn does at each epoch end: it records ``loss_``, ``loss_curve_``, ``t_``
    and ``n_iter_``, scores the validation rows (early stopping), counts the epochs without
    improvement by ``tol``, sets the 'invscaling' learning rate, divides the 'adaptive' one by
    5 or stops training.
    """

    def __init__(self, est: _BaseMLP, n_train: int, incremental: bool,
                 validation: tuple[Any, Any] | None) -> None:
        self.est, self.n_train = est, n_train
        self.incremental, self.validation = incremental, validation

    def on_epoch_end(self, run: Any, logs: dict[str, float]) -> None:
        est, opt = self.est, run.optimizer
        est.n_iter_ += 1
        est.loss_ = float(logs["loss"])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._count_no_improvement()
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            _set_lr(opt, float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t)
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation is not None else "Training loss"
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            adaptive = est.solver == "sgd" and est.learning_rate == "adaptive"
            if adaptive and opt.lr > 1e-6:
                _set_lr(opt, opt.lr / 5.0)
                if est.verbose:
                    print(f"{msg} Setting learning rate to {opt.lr:f}")
                est._no_improvement_count = 0
            else:
                if est.verbose:
                    print(f"{msg}{' Learning rate too small.' if adaptive else ''} Stopping.")
                run.stop("converged")
                return
        if not self.incremental and est.n_iter_ == est.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning)

    def _count_no_improvement(self) -> None:
        est = self.est
        if self.validation is None:  # the training loss, negated: higher is better for both
            score, best = -est.loss_curve_[-1], -est.best_loss_
        else:
            score, best = est._device_score(*self.validation), est.best_validation_score_
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
        # scikit-learn's rule: an epoch improves when it beats the best by more than tol
        if score < best + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > best and self.validation is None:
            est.best_loss_ = -score
        elif score > best:  # early stopping keeps the weights of the best validation score
            est.best_validation_score_ = score
            est._best_values = [_copy(p.value) for p in est.model_.parameters()]


def _set_lr(opt: Any, lr: float) -> None:
    """Set SGD's learning rate as scikit-learn changes it.

    scikit-learn's velocity v <- momentum v - lr g keeps the steps taken at the old rates;
    torch's buffer b <- momentum b + g (xnn's SGD) is scaled by the current rate at each step.
    They agree while v = -lr b, so the buffer is rescaled by old / new when the rate changes.
    """
    ratio = opt.lr / lr
    for state in opt.state.values():
        if "momentum_buffer" in state:
            state["momentum_buffer"] = state["momentum_buffer"] * ratio
    opt.lr = lr


def _copy(a: Any) -> Any:
    return array_namespace(a).asarray(a, copy=True)


# --- where the work runs and where results go ---------------------------------------------------

def _dispatch() -> bool:
    return bool(get_config().get("array_api_dispatch", False))


def _place(a: Any, backend: Backend, dtype: str | None = None) -> Any:
    """``a`` on ``backend`` in ``dtype`` (a name; None keeps a's), copied only where it has to
    move or change dtype."""
    if backend.holds(a) and (dtype is None or dtype_name(a.dtype) == dtype):
        return a
    return asarray(a, dtype=dtype, backend=backend)


def _like(a: Any, X: Any, dtype: str | None = None) -> Any:
    """``a`` where results go: the namespace and device of ``X`` under array_api_dispatch,
    else NumPy; cast to ``dtype`` (a dtype name) when given."""
    return _place(a, backend_of(X) if _dispatch() and is_array(X) else host_backend(), dtype)


def _check_same_namespace(est: Any, X: Any, method: str) -> None:
    """Under array_api_dispatch, refuse X from another namespace or device than fit's (the
    error scikit-learn's check_same_namespace raises)."""
    if not _dispatch():
        return
    fitted, host = backend_of(est.coefs_[0]), host_backend()
    if fitted.holds(X) or (fitted == host and not is_array(X)):
        return
    if host.holds(X) or not is_array(X):
        why = (f"Array namespace used during fit ({fitted.name}) is not compatible with the "
               f"array-like input passed to {method}. Only the NumPy namespace is compatible "
               f"with array-like inputs.")
    elif fitted.name != backend_of(X).name:
        why = (f"Array namespaces used during fit ({fitted.name}) and {method} "
               f"({backend_of(X).name}) differ.")
    else:
        why = (f"Devices used during fit ({fitted.device}) and {method} "
               f"({backend_of(X).device}) differ.")
    raise ValueError(f"Inputs passed to {type(est).__name__}.{method}() must use the same "
                     f"namespace and the same device as those passed to fit(). {why}")


def _float_dtypes(X: Any) -> tuple[Any, Any]:
    """The float dtypes validate_data may keep X in, of X's namespace under dispatch."""
    xp = array_namespace(X) if _dispatch() and is_array(X) else host_backend().xp
    return xp.float64, xp.float32


# --- the estimators ------------------------------------------------------------------------------

class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, the network, the fit."""

    # scikit-learn's own table for its parameters, and the three xnn adds
    _parameter_constraints: dict = {
        **neural_network.MLPClassifier._parameter_constraints,
        "backend": [None, str],  # a name, so that clone's deepcopy of the parameters works
        "device": "no_validation",
        "dtype": [None, StrOptions({"float32", "float64"})],
    }

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags

    # --- the fit ------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseMLP:
        """Fit the network to X, shape (n_samples, n_features), and y; returns self.

        Parameters
        ----------
        X : array-like or sparse matrix, shape (n_samples, n_features)
            The inputs.
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
            Labels (classifier) or values (regressor).
        sample_weight : array-like, shape (n_samples,), optional
            Each row's weight in the loss, the L2 term and the early-stopping score, as in
            scikit-learn: a batch's loss is divided by its summed weights.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        X, y, sample_weight = detached(X), detached(y), detached(sample_weight)
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if not all(isinstance(h, Integral) and not isinstance(h, bool) for h in hidden):
            raise ArgumentTypeError(f"{type(self).__name__}: hidden_layer_sizes must be ints "
                                    f"(the widths of the hidden layers), got {hidden}")
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        X = X.toarray() if hasattr(X, "toarray") else X
        if sample_weight is not None:
            sample_weight = _host(_check_sample_weight(sample_weight, X))
        targets = self._targets(y)  # host NumPy: labels, indicators or values, 2-D except labels
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            backend = self._backend_for(X)
            self._initialize(targets, [X.shape[1], *hidden], backend, self._dtype_for(X, backend))
        if self.solver == "lbfgs":
            self._fit_lbfgs(*self._on_device(X, targets, sample_weight))
        else:
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
            self._train(X, targets, sample_weight, incremental)
        self._publish(X)
        return self

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Any]:
        """X and y validated as scikit-learn does, y on the host and 1-D where it is one column."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=not is_classifier(self), dtype=_float_dtypes(X),
                             reset=reset)
        y = _host(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        self._check_targets(y, incremental)
        return X, y

    def _backend_for(self, X: Any) -> Backend:
        """The backend ``backend`` and ``device`` name, else X's (array API dispatch) or xnn's."""
        if self.backend is not None:
            name = self.backend
        else:
            b = backend_of(X) if _dispatch() and is_array(X) else get_backend()
            name = b.name if self.device is not None else b
        with use_backend(name, self.device) as b:
            return b

    def _dtype_for(self, X: Any, backend: Backend) -> str:
        """``dtype``, else float32 on a GPU or for float32 X, else float64."""
        if self.dtype is not None:
            return self.dtype
        return "float32" if backend.is_gpu or dtype_name(X.dtype) == "float32" else "float64"

    def _initialize(self, targets: Any, units: list[int], backend: Backend, dtype: str) -> None:
        """The network with scikit-learn's Glorot-uniform draws from random_state, and the
        attributes a first fit starts from."""
        self.t_ = 0
        self.n_outputs_ = targets.shape[1] if targets.ndim == 2 else len(self.classes_)
        units = [*units, self.n_outputs_]
        self.n_layers_ = len(units)
        self.out_activation_ = self._out_activation()
        factor = 2.0 if self.activation == "logistic" else 6.0
        layers: list = []
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = math.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            layers += [_linear(coef, intercept, backend, dtype), _HIDDEN[self.activation]()]
        self.model_ = nn.Sequential(*layers[:-1])  # no hidden activation after the last layer
        # early stopping's best weights: the initial ones until a validation score beats -inf
        self._best_values = [_copy(p.value) for p in self.model_.parameters()]
        if self.solver == "lbfgs":  # scikit-learn's lbfgs keeps no curve and no best loss
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        # early stopping follows the validation score, else the training loss
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self.best_loss_ = None if self.early_stopping else np.inf

    @property
    def _linears(self) -> list:
        return [layer for layer in self.model_ if isinstance(layer, nn.Linear)]

    def _make_optimizer(self) -> Any:
        params = self.model_.parameters()
        if self.solver == "sgd":
            momentum = float(self.momentum)
            return SGD(params, lr=float(self.learning_rate_init), momentum=momentum,
                       nesterov=bool(self.nesterovs_momentum) and momentum > 0)
        return _Adam(params, lr=float(self.learning_rate_init),
                     betas=(float(self.beta_1), float(self.beta_2)), epsilon=float(self.epsilon))

    def _on_device(self, X: Any, targets: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
        """X, the targets and the sample weights where the network is, in its dtype (class
        indices stay integers)."""
        weight = self.model_.parameters()[0].value
        backend, dtype = backend_of(weight), dtype_name(weight.dtype)
        y = asarray(targets, dtype=None if targets.ndim == 1 else dtype, backend=backend)
        w = None if sample_weight is None else asarray(sample_weight, dtype=dtype,
                                                       backend=backend)
        return _place(X, backend, dtype), y, w

    def _fit_lbfgs(self, X: Any, y: Any, w: Any) -> None:
        """scikit-learn's L-BFGS: its objective (``_Steps``'s, over every row at once) over the
        weights then the biases, flattened as scikit-learn packs them, minimized by scipy's
        L-BFGS-B on NumPy and by its Array API port (xnn/optim/_lbfgs.py) elsewhere, which keeps
        the parameters on the device."""
        model, params = self.model_, [*(l.weight for l in self._linears),
                                       *(l.bias for l in self._linears)]
        backend = backend_of(X)
        xp, dtype = backend.xp, params[0].value.dtype
        steps = _Steps(self, X.shape[0], X.shape[0], y, w)
        rows = xp.arange(X.shape[0], device=backend.device)

        def unpack(flat: Any) -> None:
            start = 0
            for p in params:
                size = math.prod(p.shape)
                p.value = xp.reshape(flat[start:start + size], p.shape)
                start += size

        def loss_grad(flat: Any) -> tuple[Any, Any]:
            unpack(flat)
            model.zero_grad()
            z, backprop = model.forward(X, input_grad=False)
            value, dz = steps.objective(z, rows)
            backprop(dz)
            if steps.after_backward is not None:  # the L2 term's gradient
                steps.after_backward(None, value)
            return value, xp.concat([xp.reshape(p.grad, (-1,)) for p in params])

        x0 = xp.concat([xp.reshape(p.value, (-1,)) for p in params])
        if backend == host_backend():
            def host_loss_grad(flat: Any) -> tuple[float, Any]:
                # scipy works in float64 and writes its x in place: the model gets a copy
                value, grad = loss_grad(np.asarray(flat, dtype=dtype, copy=True))
                return float(value), np.asarray(grad, dtype=np.float64)

            result = scipy.optimize.minimize(
                host_loss_grad, np.asarray(x0, dtype=np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
            x = np.asarray(result.x, dtype=dtype, copy=True)
        else:
            result = lbfgs(loss_grad, x0, max_iter=self.max_iter, max_fun=self.max_fun,
                           gtol=self.tol)
            x = result.x
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        unpack(x)
        model.zero_grad()

    def _train(self, X: Any, targets: Any, sample_weight: Any, incremental: bool) -> None:
        """Run xnn's epoch loop for up to max_iter epochs (one for partial_fit) with
        scikit-learn's batching, row order, validation split and stopping rule, where the
        network is."""
        X, y, w = self._on_device(X, targets, sample_weight)
        backend, n = backend_of(X), X.shape[0]
        validation = None
        if self.early_stopping:
            # scikit-learn stratifies when there is one output column (binary), not otherwise,
            # on its boolean indicator (so its errors name the classes ['False', 'True'])
            binary = is_classifier(self) and self.n_outputs_ == 1
            stratify = targets.astype(bool) if binary else None
            kept, val = train_test_split(np.arange(n), random_state=self._random_state,
                                         test_size=self.validation_fraction,
                                         stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            xp, device = backend.xp, backend.device
            val, kept = xp.asarray(val, device=device), xp.asarray(kept, device=device)
            validation = (xp.take(X, val, axis=0), xp.take(y, val, axis=0),
                          None if w is None else xp.take(w, val, axis=0))
            X, y = xp.take(X, kept, axis=0), xp.take(y, kept, axis=0)
            w = None if w is None else xp.take(w, kept, axis=0)
            n = X.shape[0]
        auto = self.batch_size == "auto"
        if not auto and self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        size = min(200 if auto else int(self.batch_size), n)  # batch_size >= 1: _validate_params
        epochs = 1 if incremental else self.max_iter
        self.n_iter_ = 0
        try:
            rows = backend.xp.arange(n, device=backend.device)  # the loop orders and batches them
            train(self.model_, self._optimizer, X, rows, _Steps(self, n, size, y, w),
                  epochs=epochs, metrics=[],
                  callbacks=[_Epochs(self, n, incremental, validation)])
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if validation is not None:  # the best weights seen, perhaps in an earlier warm fit
            for p, best in zip(self.model_.parameters(), self._best_values):
                p.value = best

    def _publish(self, X: Any) -> None:
        """coefs_ and intercepts_ in X's namespace; refuse non-finite weights."""
        xp = array_namespace(self.model_.parameters()[0].value)
        if not all_finite(xp, [p.value for p in self.model_.parameters()]):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        self.coefs_ = [_like(layer.weight.value, X) for layer in self._linears]
        self.intercepts_ = [_like(layer.bias.value, X) for layer in self._linears]

    # --- prediction -------------------------------------------------------------------------

    def _forward(self, X: Any, method: str) -> tuple[Any, Any, str]:
        """The output activation of the network on X (on the training backend), the validated
        X, and the dtype results take: X's promoted with the network's, as NumPy promotes
        scikit-learn's X @ coefs_ (float64 unless both are float32)."""
        check_is_fitted(self)
        X = detached(X)
        _check_same_namespace(self, X, method)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=_float_dtypes(X))
        X = X.toarray() if hasattr(X, "toarray") else X
        weight = self.model_.parameters()[0].value
        backend, dtype = backend_of(weight), dtype_name(weight.dtype)
        out = _OUTPUTS[self.out_activation_](self.model_(_place(X, backend, dtype)))
        both32 = dtype == "float32" and dtype_name(X.dtype) == "float32"
        return out, X, "float32" if both32 else "float64"

    def _device_score(self, X: Any, y: Any, sample_weight: Any) -> float:
        """The validation score scikit-learn's ``_score`` gives (accuracy or R^2, weighted by
        ``sample_weight`` where given), computed where the model is, read back as one float."""
        out = _OUTPUTS[self.out_activation_](self.model_(X))
        xp = array_namespace(out)
        w = xp.ones(out.shape[:1], dtype=out.dtype, device=out.device) if sample_weight is None \
            else sample_weight
        return float(self._score_on_device(xp, out, y, w))


def _linear(coef: Any, intercept: Any, backend: Backend, dtype: str) -> nn.Linear:
    """A Linear layer holding the host arrays ``coef`` and ``intercept`` on ``backend``."""
    # made with zeros (module-level initializers, so model_ pickles), then filled
    with use_backend(backend):
        linear = nn.Linear(coef.shape[0], coef.shape[1], init=nn.init.zeros,
                           bias_init=nn.init.zeros, dtype=dtype)
    linear.load_state_dict({"weight": coef, "bias": intercept})  # cast to dtype, on backend
    return linear


def _offers_partial_fit(est: _BaseMLP) -> bool:
    """scikit-learn's rule: partial_fit exists for the minibatch solvers, not for lbfgs."""
    if est.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{est.solver} is not stochastic.")
    return True


class _DetachedScore:
    """Placed before scikit-learn's ClassifierMixin or RegressorMixin, whose score it calls."""

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """scikit-learn's score, with torch tensors that require grad (X, y, sample_weight)
        detached first."""
        return super().score(detached(X), detached(y), sample_weight=detached(sample_weight))


class MLPClassifier(_DetachedScore, ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's parameters, trained by xnn.

    Binary, multiclass and multilabel targets; see docs/sklearn.md. The parameters are
    ``sklearn.neural_network.MLPClassifier``'s, with its defaults and meanings, plus
    ``backend``, ``device`` and ``dtype``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        The width of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        The hidden layers' activation.
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        The optimizer: minibatch Adam or SGD, or L-BFGS over every row at once (scipy's
        L-BFGS-B on NumPy, as in scikit-learn; its Array API port on other backends).
    alpha : float, default 0.0001
        The L2 penalty's strength (weights only, as in scikit-learn).
    batch_size : int or "auto", default "auto"
        Rows per step; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The learning-rate schedule (sgd only).
    learning_rate_init : float, default 0.001
        The initial learning rate.
    power_t : float, default 0.5
        The exponent of "invscaling".
    max_iter : int, default 200
        The most epochs (L-BFGS: iterations); a ``ConvergenceWarning`` says when they ran
        out.
    shuffle : bool, default True
        Reorder the rows at each epoch.
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the row order and the early-stopping split.
    tol : float, default 1e-4
        The improvement of the loss (or validation score) that counts as progress; for
        L-BFGS, the largest gradient entry at which it stops.
    verbose : bool, default False
        Print the loss at each epoch.
    warm_start : bool, default False
        Continue from the fitted network at the next ``fit``.
    momentum : float, default 0.9
        SGD's momentum.
    nesterovs_momentum : bool, default True
        Nesterov's momentum for SGD.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows, stop when their score stops improving
        and keep the best weights.
    validation_fraction : float, default 0.1
        The held-out fraction for early stopping.
    beta_1 : float, default 0.9
        Adam's decay rate of the mean of the gradients.
    beta_2 : float, default 0.999
        Adam's decay rate of the mean of their squares.
    epsilon : float, default 1e-8
        Adam's epsilon, placed where scikit-learn places it.
    n_iter_no_change : int, default 10
        Epochs without an improvement by ``tol`` before training stops.
    max_fun : int, default 15000
        L-BFGS only: the most loss evaluations (checked at the end of an iteration).
    backend : str or None, default None
        Where training runs: None is the input's library under scikit-learn's
        ``array_api_dispatch``, else xnn's active backend; or a name ("torch", "cupy:0").
    device : str or None, default None
        The device of that backend (None: the input's, or the backend's default).
    dtype : {"float32", "float64"} or None, default None
        None is float32 on a GPU library (CuPy, torch on CUDA) and the input's float dtype
        otherwise.

    Attributes
    ----------
    classes_ : array
        The class labels, in their own dtype (bool, int, str), as scikit-learn keeps them.
    coefs_, intercepts_ : list of arrays
        Each layer's weights ``(in, out)`` and biases, as scikit-learn's.
    loss_, loss_curve_ : float, list of float
        The last epoch's training loss and every epoch's (L-BFGS: the final loss, and no
        ``loss_curve_``, ``best_loss_`` or ``validation_scores_``, as in scikit-learn).
    n_iter_ : int
        The epochs (L-BFGS: iterations) run.
    out_activation_ : str
        "softmax" (multiclass) or "logistic" (binary, multilabel), applied by ``predict``.
    model_ : xnn.nn.Sequential
        The trained network; it outputs logits.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from xnn.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), MLPClassifier(
    ...     hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=500, random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    >>> clf.predict(X[[0, 50, 100]]), clf.predict_proba(X[:2]).shape
    (array([0, 1, 2]), (2, 3))
    """

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: Any = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 backend: Any = None, device: Any = None, dtype: str | None = None) -> None:
        _keep_arguments(self, locals())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _check_targets(self, y: Any, incremental: bool) -> None:
        """Fit the label binarizer on a first fit; refuse classes it has not seen after it."""
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")

    def _targets(self, y: Any) -> Any:
        """Integer class indices (softmax) or a float indicator matrix (logistic), on the host."""
        onehot = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return np.argmax(onehot, axis=1).astype(np.int64)
        return onehot.astype(np.float64)

    def _score_on_device(self, xp: Any, proba: Any, y: Any, w: Any) -> Any:
        """Accuracy (subset accuracy for multilabel) of the labels the probabilities give,
        weighted by ``w``."""
        if y.ndim == 1:  # class indices
            hit = xp.argmax(proba, axis=1) == y
        else:
            hit = xp.all((proba > 0.5) == (y > 0.5), axis=1)
        return xp.sum(xp.astype(hit, proba.dtype) * w) / xp.sum(w)

    @available_if(_offers_partial_fit)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None,
                    classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), weighted by ``sample_weight`` as in ``fit``; ``classes`` (all
        the labels) is needed on the first call."""
        self._validate_params()
        y = detached(y)
        if _check_partial_fit_first_call(self, classes):
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer = LabelBinarizer().fit(_host(y if multilabel else classes))
            self.classes_ = _host(self.classes_)  # on the host, as fit keeps them
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predicted labels, shape (n_samples,) or (n_samples, n_classes) for multilabel."""
        proba, X, _ = self._forward(X, "predict")
        xp = array_namespace(proba)
        if self._label_binarizer.y_type_ == "multiclass":
            index = xp.argmax(proba, axis=1)
        elif self._label_binarizer.y_type_ == "multilabel-indicator":
            return _like(xp.astype(proba > 0.5, xp.int64), X)
        elif len(self.classes_) == 1:
            index = xp.zeros((proba.shape[0],), dtype=xp.int64, device=proba.device)
        else:
            index = xp.astype(proba[:, 0] > 0.5, xp.int64)
        # classes_[index] in X's namespace (NumPy for labels no array library holds)
        if _dispatch() and self.classes_.dtype.kind in "biuf" and is_array(X):
            classes = _like(np.asarray(self.classes_), X)
            return array_namespace(classes).take(classes, _like(index, X), axis=0)
        return self.classes_[to_numpy(index)]

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        return self._proba(X, "predict_proba")

    def predict_log_proba(self, X: Any) -> Any:
        """log(predict_proba(X))."""
        proba = self._proba(X, "predict_log_proba")
        return array_namespace(proba).log(proba)

    def _proba(self, X: Any, method: str) -> Any:
        proba, X, dtype = self._forward(X, method)
        xp = array_namespace(proba)
        if self.n_outputs_ == 1:
            proba = xp.concat([1 - proba, proba], axis=1)
        return _like(proba, X, dtype)


class MLPRegressor(_DetachedScore, RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's parameters, trained by xnn.

    Single- and multi-output targets; see docs/sklearn.md. The parameters are
    ``sklearn.neural_network.MLPRegressor``'s, with its defaults and meanings, plus
    ``backend``, ``device`` and ``dtype``.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        Half the squared error, or half the Poisson deviance of ``exp`` of the output.
    hidden_layer_sizes : tuple of int, default (100,)
        As in ``MLPClassifier``.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        As in ``MLPClassifier``.
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        As in ``MLPClassifier``.
    alpha : float, default 0.0001
        As in ``MLPClassifier``.
    batch_size : int or "auto", default "auto"
        As in ``MLPClassifier``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        As in ``MLPClassifier``.
    learning_rate_init : float, default 0.001
        As in ``MLPClassifier``.
    power_t : float, default 0.5
        As in ``MLPClassifier``.
    max_iter : int, default 200
        As in ``MLPClassifier``.
    shuffle : bool, default True
        As in ``MLPClassifier``.
    random_state : int, RandomState or None, default None
        As in ``MLPClassifier``.
    tol : float, default 1e-4
        As in ``MLPClassifier``.
    verbose : bool, default False
        As in ``MLPClassifier``.
    warm_start : bool, default False
        As in ``MLPClassifier``.
    momentum : float, default 0.9
        As in ``MLPClassifier``.
    nesterovs_momentum : bool, default True
        As in ``MLPClassifier``.
    early_stopping : bool, default False
        As in ``MLPClassifier`` (early stopping scores R² on the held-out rows).
    validation_fraction : float, default 0.1
        As in ``MLPClassifier``.
    beta_1 : float, default 0.9
        As in ``MLPClassifier``.
    beta_2 : float, default 0.999
        As in ``MLPClassifier``.
    epsilon : float, default 1e-8
        As in ``MLPClassifier``.
    n_iter_no_change : int, default 10
        As in ``MLPClassifier``.
    max_fun : int, default 15000
        As in ``MLPClassifier``.
    backend : str or None, default None
        As in ``MLPClassifier``.
    device : str or None, default None
        As in ``MLPClassifier``.
    dtype : {"float32", "float64"} or None, default None
        As in ``MLPClassifier``.

    Attributes
    ----------
    coefs_, intercepts_, loss_, loss_curve_, n_iter_, model_ : optional
        As in ``MLPClassifier``; ``model_`` outputs the prediction itself ("identity")
        or its log ("exp", with ``loss="poisson"``).
    out_activation_ : str
        "identity", or "exp" with ``loss="poisson"``.

    Examples
    --------
    >>> import numpy as np
    >>> from xnn.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> y = X.ravel() ** 2
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=1000,
    ...                    random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9, reg.predict(X[:3]).shape
    (True, (3,))
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Any = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 backend: Any = None, device: Any = None, dtype: str | None = None) -> None:
        _keep_arguments(self, locals())

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _check_targets(self, y: Any, incremental: bool) -> None:
        """Poisson's targets, with scikit-learn's messages (its trees'): counts, and some
        positive ones to fit (a partial_fit batch of zeros is a valid update)."""
        if self.loss != "poisson":
            return
        if np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression.")
        if not incremental and not np.sum(y) > 0:
            raise ValueError("Sum of y is not positive which is necessary for Poisson "
                             "regression.")

    def _targets(self, y: Any) -> Any:
        return np.reshape(np.asarray(y, dtype=np.float64), (y.shape[0], -1))

    def _score_on_device(self, xp: Any, pred: Any, y: Any, w: Any) -> Any:
        """R^2 weighted by ``w`` and averaged over the outputs, with scikit-learn's
        force_finite rule; NaN where a prediction is not finite."""
        w = w[:, None]
        residual = xp.sum(w * (y - pred) ** 2, axis=0)
        total = xp.sum(w * (y - xp.sum(w * y, axis=0) / xp.sum(w)) ** 2, axis=0)
        safe = xp.where(total == 0, 1, total)
        perfect = xp.astype(residual == 0, pred.dtype)  # R² of a constant target: 1 or 0
        r2 = xp.mean(xp.where(total == 0, perfect, 1 - residual / safe))
        return xp.where(xp.all(xp.isfinite(pred)), r2, xp.full_like(r2, math.nan))

    @available_if(_offers_partial_fit)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), weighted by ``sample_weight`` as in ``fit``."""
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> Any:
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        pred, X, dtype = self._forward(X, "predict")
        if pred.shape[1] == 1:
            pred = pred[:, 0]
        return _like(pred, X, dtype)


def _keep_arguments(est: _BaseMLP, arguments: dict[str, Any]) -> None:
    """Store every constructor argument unchanged under its own name (``locals()`` of
    ``__init__``), as scikit-learn's ``get_params`` and ``clone`` expect."""
    for name, value in arguments.items():
        if name != "self":
            setattr(est, name, value)


def _host(a: Any) -> Any:
    """``a`` as a NumPy array on the host (labels and targets are prepared there)."""
    return np.asarray(a) if host_backend().holds(a) or not is_array(a) else to_numpy(a)
