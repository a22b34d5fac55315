"""Every loss: gradients that match finite differences, reductions that agree with each other,
stability where the naive formula overflows, and errors that name the loss and the shapes."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import xnn
from xnn import losses
from xnn.testing import gradcheck

REDUCTIONS = ("mean", "sum", "none")


def _a(host, dtype=None):
    """A host array on the active backend (integers stay integers)."""
    return xnn.asarray(np.asarray(host), dtype=dtype)


# --- data of each kind, drawn on the host so every backend sees the same numbers --------------

def _regression(rng, shape):
    pred = rng.standard_normal(shape)
    return pred, pred + 1.5 * rng.standard_normal(shape)


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape), rng.uniform(0.0, 1.0, shape)


def _binary_logits(rng, shape):
    return 3 * rng.standard_normal(shape), rng.uniform(0.0, 1.0, shape)


def _labels(rng, shape):
    return 2 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0])


def _class_probabilities(rng, shape):
    t = np.exp(rng.standard_normal(shape))
    return 2 * rng.standard_normal(shape), t / t.sum(axis=1, keepdims=True)


def _log_probabilities(rng, shape):
    z = rng.standard_normal(shape)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), rng.integers(0, shape[1], shape[0])


def _weights(width, offset=0.5):
    return offset + np.arange(width) / max(width, 1)   # positive, one per column / class


# (id, loss made from the reduction and the width, data)
CASES = [
    ("MSELoss", lambda r, w: losses.MSELoss(r), _regression),
    ("L1Loss", lambda r, w: losses.L1Loss(r), _regression),
    ("SmoothL1Loss", lambda r, w: losses.SmoothL1Loss(r), _regression),
    ("SmoothL1Loss-beta0.4", lambda r, w: losses.SmoothL1Loss(r, beta=0.4), _regression),
    ("HuberLoss-delta0.7", lambda r, w: losses.HuberLoss(r, delta=0.7), _regression),
    ("BCELoss", lambda r, w: losses.BCELoss(reduction=r), _probabilities),
    ("BCELoss-weight", lambda r, w: losses.BCELoss(_a(_weights(w)), r), _probabilities),
    ("BCEWithLogitsLoss", lambda r, w: losses.BCEWithLogitsLoss(reduction=r), _binary_logits),
    ("BCEWithLogitsLoss-weights", lambda r, w: losses.BCEWithLogitsLoss(
        _a(_weights(w)), r, pos_weight=_a(_weights(w, 2.0))), _binary_logits),
    ("CrossEntropyLoss-labels", lambda r, w: losses.CrossEntropyLoss(reduction=r), _labels),
    ("CrossEntropyLoss-labels-weight-smoothing", lambda r, w: losses.CrossEntropyLoss(
        _a(_weights(w)), reduction=r, label_smoothing=0.2), _labels),
    ("CrossEntropyLoss-probabilities-smoothing", lambda r, w: losses.CrossEntropyLoss(
        reduction=r, label_smoothing=0.1), _class_probabilities),
    ("NLLLoss", lambda r, w: losses.NLLLoss(reduction=r), _log_probabilities),
    ("NLLLoss-weight", lambda r, w: losses.NLLLoss(_a(_weights(w)), reduction=r),
     _log_probabilities),
]
CASE_PARAMS = [pytest.param(make, data, id=ident) for ident, make, data in CASES]


def _inputs(data, shape, seed=0):
    pred, target = data(np.random.default_rng(seed), shape)
    return _a(pred, "float64"), _a(target, "float64" if target.dtype.kind == "f" else None)


# --- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make, data", CASE_PARAMS)
def test_loss_gradient_matches_finite_differences(backend, float64, make, data, reduction):
    assert gradcheck(make(reduction, 3), *_inputs(data, (4, 3)))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 4), width=st.sampled_from([1, 3, 5]),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
@example(batch=1, width=1, reduction="mean", seed=0)
@example(batch=1, width=5, reduction="none", seed=1)
@pytest.mark.parametrize("make, data", CASE_PARAMS)
def test_loss_gradient_matches_finite_differences_for_any_small_shape(
        backend, float64, make, data, batch, width, reduction, seed):
    assert gradcheck(make(reduction, width), *_inputs(data, (batch, width), seed))


# --- reductions ------------------------------------------------------------------------------

@pytest.mark.parametrize("make, data", CASE_PARAMS)
def test_reductions_agree_and_none_returns_the_gradient_of_the_sum(backend, float64, make, data):
    pred, target = _inputs(data, (5, 3), seed=3)
    results = {r: [xnn.to_numpy(v) for v in make(r, 3)(pred, target)] for r in REDUCTIONS}
    (none, g_none), (total, g_sum), (mean, g_mean) = (results[r] for r in ("none", "sum", "mean"))
    assert total.shape == mean.shape == ()
    assert none.shape in {tuple(pred.shape), (pred.shape[0],)}   # per element, or per sample
    np.testing.assert_allclose(none.sum(), total, rtol=1e-12)
    np.testing.assert_array_equal(g_none, g_sum)
    assert g_sum.shape == tuple(pred.shape)
    # the mean divides value and gradient by the same count (a weight sum for class losses)
    count = total / mean
    np.testing.assert_allclose(g_mean * count, g_sum, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make, data", CASE_PARAMS)
def test_parts_are_the_total_count_and_gradient_the_call_divides(backend, float64, make, data,
                                                                  reduction):
    pred, target = _inputs(data, (5, 3), seed=4)
    loss = make(reduction, 3)
    value, grad = (xnn.to_numpy(v) for v in loss(pred, target))
    total, count, grad_total = loss.parts(pred, target)
    total, count, grad_total = float(total), float(count), xnn.to_numpy(grad_total)
    divisor = {"mean": count, "sum": 1.0, "none": float(value.size)}[reduction]
    if reduction == "none":  # fit reports the values' mean; the gradient is of their sum
        assert count == value.size
        np.testing.assert_allclose(value.sum(), total, rtol=1e-12)
        np.testing.assert_allclose(grad, grad_total, rtol=1e-12, atol=1e-15)
        return
    assert reduction == "mean" or count == 1
    np.testing.assert_allclose(value, total / divisor, rtol=1e-12)
    np.testing.assert_allclose(grad * divisor, grad_total, rtol=1e-12, atol=1e-15)


def test_parts_of_labels_all_ignored_count_nothing_and_have_no_gradient(backend, float64):
    loss = losses.CrossEntropyLoss(_a(_weights(3)), ignore_index=2)
    pred, _ = _inputs(_labels, (4, 3))
    total, count, grad = loss.parts(pred, _a([2, 2, 2, 2]))
    assert float(total) == 0 and float(count) == 0 and not np.any(xnn.to_numpy(grad))
    total, count, grad = loss.parts(pred, _a([0, 2, 1, 2]))
    assert float(count) == pytest.approx(0.5 + (0.5 + 1 / 3))  # the kept labels' weights


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_told_every_label_is_a_class_gives_the_same_numbers(backend, float64,
                                                                          reduction):
    pred, target = _inputs(_labels, (6, 4), seed=5)
    told = losses.CrossEntropyLoss(reduction=reduction, every_label_a_class=True)
    assert "every_label_a_class=True" in repr(told)
    for a, b in zip(told(pred, target), losses.CrossEntropyLoss(reduction=reduction)(pred, target)):
        np.testing.assert_allclose(xnn.to_numpy(a), xnn.to_numpy(b), rtol=1e-14, atol=1e-16)
    with pytest.raises(TypeError, match="every_label_a_class must be True or False"):
        losses.CrossEntropyLoss(every_label_a_class="yes")


def test_mean_over_elements_divides_by_their_number(backend, float64):
    pred, target = _a([[1.0, 2.0], [3.0, 4.0]]), _a([[1.0, 0.0], [3.0, 8.0]])
    value, grad = losses.MSELoss()(pred, target)
    assert float(xnn.to_numpy(value)) == pytest.approx((4 + 16) / 4)
    np.testing.assert_allclose(xnn.to_numpy(grad), [[0, 1], [0, -2]])   # 2 d / 4


@pytest.mark.parametrize("make, data", CASE_PARAMS)
def test_float32_inputs_give_float32_value_and_gradient(backend, make, data):
    pred, target = data(np.random.default_rng(0), (4, 3))
    pred = _a(pred, "float32")
    target = _a(target, "float32" if target.dtype.kind == "f" else None)
    made = make("mean", 3)
    if getattr(made, "weight", None) is not None:    # weights must share the dtype
        made.weight = xnn.asarray(made.weight, dtype="float32")
    if getattr(made, "pos_weight", None) is not None:
        made.pos_weight = xnn.asarray(made.pos_weight, dtype="float32")
    value, grad = made(pred, target)
    assert value.dtype == grad.dtype == xnn.get_backend().xp.float32


# --- regression losses -----------------------------------------------------------------------

def test_l1_gradient_is_zero_at_the_kink(backend, float64):
    pred = _a([[1.0, -2.0, 3.0]])
    _, grad = losses.L1Loss("sum")(pred, _a([[1.0, 0.0, 5.0]]))
    np.testing.assert_array_equal(xnn.to_numpy(grad), [[0.0, -1.0, -1.0]])


def test_smooth_l1_with_beta_zero_is_l1(backend, float64):
    pred, target = _inputs(_regression, (4, 3))
    for reduction in REDUCTIONS:
        ours = losses.SmoothL1Loss(reduction, beta=0.0)(pred, target)
        l1 = losses.L1Loss(reduction)(pred, target)
        for a, b in zip(ours, l1):
            np.testing.assert_array_equal(xnn.to_numpy(a), xnn.to_numpy(b))


def test_smooth_l1_is_quadratic_inside_beta_and_linear_outside(backend, float64):
    value, grad = losses.SmoothL1Loss("none", beta=2.0)(_a([0.5, -3.0, 2.0]), _a([0.0, 0.0, 0.0]))
    np.testing.assert_allclose(xnn.to_numpy(value), [0.5 * 0.25 / 2, 3.0 - 1.0, 2.0 - 1.0])
    np.testing.assert_allclose(xnn.to_numpy(grad), [0.25, -1.0, 1.0])


def test_huber_is_delta_times_smooth_l1(backend, float64):
    pred, target = _inputs(_regression, (4, 3))
    huber = losses.HuberLoss("none", delta=0.6)(pred, target)
    smooth = losses.SmoothL1Loss("none", beta=0.6)(pred, target)
    for h, s in zip(huber, smooth):
        np.testing.assert_allclose(xnn.to_numpy(h), 0.6 * xnn.to_numpy(s), rtol=1e-12)


def test_huber_slope_is_capped_at_delta(backend, float64):
    _, grad = losses.HuberLoss("sum", delta=0.5)(_a([10.0, -10.0, 0.25]), _a([0.0, 0.0, 0.0]))
    np.testing.assert_allclose(xnn.to_numpy(grad), [0.5, -0.5, 0.25])


# --- binary losses ---------------------------------------------------------------------------

def test_bce_clamps_the_log_at_minus_100_without_warnings(backend, float64):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = losses.BCELoss(reduction="none")(_a([0.0, 1.0, 0.0, 1.0]), _a([1.0, 0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(xnn.to_numpy(value), [100.0, 100.0, 0.0, 0.0])
    assert np.isfinite(xnn.to_numpy(grad)).all()


def test_bce_with_logits_equals_bce_of_the_sigmoid(backend, float64):
    z, t = _inputs(_binary_logits, (4, 3))
    p = _a(1 / (1 + np.exp(-xnn.to_numpy(z))), "float64")
    v1, g1 = losses.BCEWithLogitsLoss()(z, t)
    v2, g2 = losses.BCELoss()(p, t)
    np.testing.assert_allclose(xnn.to_numpy(v1), xnn.to_numpy(v2), rtol=1e-10)
    # chain rule through the sigmoid: dL/dz = dL/dp * p (1 - p)
    host_p = xnn.to_numpy(p)
    np.testing.assert_allclose(xnn.to_numpy(g1), xnn.to_numpy(g2) * host_p * (1 - host_p),
                               rtol=1e-9)


def test_bce_with_logits_is_exact_for_huge_logits(backend):
    z = _a([1000.0, -1000.0, 1000.0, -1000.0], "float32")
    t = _a([1.0, 0.0, 0.0, 1.0], "float32")
    value, grad = losses.BCEWithLogitsLoss(reduction="none")(z, t)
    np.testing.assert_array_equal(xnn.to_numpy(value), [0.0, 0.0, 1000.0, 1000.0])
    np.testing.assert_array_equal(xnn.to_numpy(grad), [0.0, 0.0, 1.0, -1.0])


def test_bce_with_logits_pos_weight_scales_only_the_positive_term(backend, float64):
    z, t = _a([[0.3, -1.2]]), _a([[1.0, 0.0]])
    plain, _ = losses.BCEWithLogitsLoss(reduction="none")(z, t)
    weighted, _ = losses.BCEWithLogitsLoss(reduction="none", pos_weight=_a([3.0, 3.0]))(z, t)
    np.testing.assert_allclose(xnn.to_numpy(weighted), xnn.to_numpy(plain) * [[3.0, 1.0]])


# --- multi-class losses ----------------------------------------------------------------------

def test_cross_entropy_of_labels_equals_that_of_one_hot_probabilities(backend, float64):
    logits, labels = _inputs(_labels, (5, 4))
    one_hot = _a(np.eye(4)[xnn.to_numpy(labels)], "float64")
    for smoothing in (0.0, 0.3):
        loss = losses.CrossEntropyLoss(label_smoothing=smoothing)
        for a, b in zip(loss(logits, labels), loss(logits, one_hot)):
            np.testing.assert_allclose(xnn.to_numpy(a), xnn.to_numpy(b), rtol=1e-12)


def test_cross_entropy_is_log_softmax_then_nll(backend, float64):
    logits, labels = _inputs(_labels, (6, 3))
    labels = _a(np.array([0, 2, -100, 1, 1, 2]))
    weight = _a([0.2, 1.0, 3.0], "float64")
    host = xnn.to_numpy(logits)
    log_p = host - np.log(np.exp(host).sum(axis=1, keepdims=True))
    ce, ce_grad = losses.CrossEntropyLoss(weight)(logits, labels)
    nll, nll_grad = losses.NLLLoss(weight)(_a(log_p, "float64"), labels)
    np.testing.assert_allclose(xnn.to_numpy(ce), xnn.to_numpy(nll), rtol=1e-12)
    # chain rule through log_softmax: dz = dlogp - softmax * sum(dlogp)
    g = xnn.to_numpy(nll_grad)
    expected = g - np.exp(log_p) * g.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(xnn.to_numpy(ce_grad), expected, rtol=1e-10, atol=1e-15)


def test_cross_entropy_leaves_ignored_samples_out_of_the_mean(backend, float64):
    logits, _ = _inputs(_labels, (4, 3))
    labels = _a(np.array([2, -100, 0, -100]))
    value, grad = losses.CrossEntropyLoss()(logits, labels)
    kept = _a(xnn.to_numpy(logits)[[0, 2]], "float64")
    kept_value, kept_grad = losses.CrossEntropyLoss()(kept, _a(np.array([2, 0])))
    np.testing.assert_allclose(xnn.to_numpy(value), xnn.to_numpy(kept_value), rtol=1e-12)
    g = xnn.to_numpy(grad)
    np.testing.assert_array_equal(g[[1, 3]], 0.0)
    np.testing.assert_allclose(g[[0, 2]], xnn.to_numpy(kept_grad), rtol=1e-12)


def test_cross_entropy_can_ignore_a_real_class(backend, float64):
    logits, _ = _inputs(_labels, (3, 3))
    value, _ = losses.CrossEntropyLoss(ignore_index=1, reduction="none")(
        logits, _a(np.array([1, 0, 1])))
    v = xnn.to_numpy(value)
    assert v[0] == v[2] == 0.0 and v[1] > 0


def test_cross_entropy_over_only_ignored_samples_is_nan_with_zero_gradient(backend, float64):
    logits, _ = _inputs(_labels, (2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy says so about the 0 / 0
        value, grad = losses.CrossEntropyLoss()(logits, _a(np.array([-100, -100])))
    assert np.isnan(xnn.to_numpy(value))                 # 0 / 0, as in torch
    np.testing.assert_array_equal(xnn.to_numpy(grad), 0.0)


def test_cross_entropy_weighted_mean_divides_by_the_labels_weights(backend, float64):
    logits, _ = _inputs(_labels, (3, 2))
    labels, weight = _a(np.array([0, 1, 1])), _a([2.0, 0.5], "float64")
    per_sample, _ = losses.CrossEntropyLoss(weight, reduction="none")(logits, labels)
    mean, _ = losses.CrossEntropyLoss(weight)(logits, labels)
    assert float(xnn.to_numpy(mean)) == pytest.approx(xnn.to_numpy(per_sample).sum() / 3.0)


def test_cross_entropy_is_stable_for_huge_logits(backend):
    logits = _a([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], "float32")
    value, grad = losses.CrossEntropyLoss(reduction="none")(logits, _a(np.array([2, 1])))
    np.testing.assert_allclose(xnn.to_numpy(value), [2e4, np.log(3)], rtol=1e-6)
    np.testing.assert_allclose(xnn.to_numpy(grad), [[1, 0, -1], [1 / 3, -2 / 3, 1 / 3]],
                               atol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_labels_of_any_integer_dtype_work(backend, float64, dtype):
    logits, labels = _inputs(_labels, (4, 3))
    expected = losses.CrossEntropyLoss()(logits, labels)
    got = losses.CrossEntropyLoss()(logits, _a(xnn.to_numpy(labels).astype(dtype)))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(xnn.to_numpy(a), xnn.to_numpy(b))


def test_nll_picks_the_labels_log_probability(backend, float64):
    log_p = _a([[-0.1, -np.inf, -3.0], [-2.0, -0.5, -1.0]], "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = losses.NLLLoss(reduction="none")(log_p, _a(np.array([0, 2])))
    np.testing.assert_array_equal(xnn.to_numpy(value), [0.1, 1.0])   # -inf off the label: no nan
    np.testing.assert_array_equal(xnn.to_numpy(grad), [[-1, 0, 0], [0, 0, -1]])


def test_validate_false_skips_the_label_check(backend, float64):
    logits, _ = _inputs(_labels, (3, 3))
    value, grad = losses.CrossEntropyLoss(validate=False)(logits, _a(np.array([0, 7, 1])))
    expected, _ = losses.CrossEntropyLoss()(logits, _a(np.array([0, -100, 1])))
    np.testing.assert_allclose(xnn.to_numpy(value), xnn.to_numpy(expected), rtol=1e-12)


# --- bad input -------------------------------------------------------------------------------

ELEMENTWISE = [losses.MSELoss, losses.L1Loss, losses.SmoothL1Loss, losses.HuberLoss,
               losses.BCELoss, losses.BCEWithLogitsLoss]


@pytest.mark.parametrize("loss", ELEMENTWISE, ids=lambda c: c.__name__)
def test_elementwise_losses_reject_an_integer_prediction(backend, loss):
    with pytest.raises(TypeError, match=rf"^{loss.__name__}: expected a floating-point "
                                        r"prediction \(float32 or float64\), got dtype int64$"):
        loss()(_a(np.ones((4, 2), dtype="int64")), _a(np.ones((4, 2)), "float32"))


@pytest.mark.parametrize("loss", ELEMENTWISE, ids=lambda c: c.__name__)
def test_elementwise_losses_reject_a_target_of_another_shape(backend, loss):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: expected a target of shape "
                                         r"\(4, 2\) like the prediction, got shape \(4, 3\)$"):
        loss()(_a(np.ones((4, 2)), "float32"), _a(np.ones((4, 3)), "float32"))


@pytest.mark.parametrize("loss", ELEMENTWISE, ids=lambda c: c.__name__)
def test_elementwise_losses_say_how_to_reshape_a_1d_target(backend, loss):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: expected a target of shape "
                                         r"\(4, 1\) like the prediction, got shape \(4,\); a 1-D "
                                         r"target needs one column: y.reshape\(-1, 1\)$"):
        loss()(_a(np.full((4, 1), 0.5), "float32"), _a(np.ones(4), "float32"))


@pytest.mark.parametrize("loss", ELEMENTWISE, ids=lambda c: c.__name__)
def test_elementwise_losses_reject_a_target_of_another_dtype(backend, loss):
    with pytest.raises(TypeError, match=rf"^{loss.__name__}: expected a float32 target like the "
                                        r"prediction, got float64"):
        loss()(_a(np.ones((4, 2)), "float32"), _a(np.ones((4, 2)), "float64"))


def test_bce_rejects_an_integer_target(backend):
    with pytest.raises(TypeError, match=r"^BCELoss: expected a floating-point target "
                                        r"\(float32 or float64\), got dtype int64$"):
        losses.BCELoss()(_a(np.full((4,), 0.5), "float32"), _a(np.ones(4, dtype="int64")))


def test_bce_rejects_a_weight_that_does_not_broadcast(backend):
    loss = losses.BCEWithLogitsLoss(pos_weight=_a(np.ones(5), "float32"))
    with pytest.raises(ValueError, match=r"^BCEWithLogitsLoss: pos_weight of shape \(5,\) does "
                                         r"not broadcast to the prediction's shape \(4, 3\)$"):
        loss(_a(np.ones((4, 3)), "float32"), _a(np.ones((4, 3)), "float32"))


@pytest.mark.parametrize("labels, shown", [([0, 5, 1, 2], "[0, 5]"), ([0, -1, 2, 1], "[-1, 2]"),
                                           ([3, -100, 1, 4], "[1, 4]")])
@pytest.mark.parametrize("loss", [losses.CrossEntropyLoss, losses.NLLLoss],
                         ids=lambda c: c.__name__)
def test_class_losses_reject_labels_out_of_range(backend, loss, labels, shown):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: labels must lie in \[0, 3\), "
                                         rf"got values in {re.escape(shown)}$"):
        loss()(_a(np.zeros((4, 3)), "float32"), _a(np.array(labels)))


def test_cross_entropy_names_both_target_shapes_it_accepts(backend):
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: expected integer labels of shape "
                                         r"\(4,\) or probabilities of shape \(4, 3\), "
                                         r"got shape \(4, 2\)$"):
        losses.CrossEntropyLoss()(_a(np.zeros((4, 3)), "float32"), _a(np.zeros((4, 2), "int64")))


def test_cross_entropy_rejects_float_labels(backend):
    with pytest.raises(TypeError, match=r"^CrossEntropyLoss: expected integer labels of shape "
                                        r"\(4,\), got dtype float32$"):
        losses.CrossEntropyLoss()(_a(np.zeros((4, 3)), "float32"), _a(np.zeros(4), "float32"))


def test_cross_entropy_rejects_integer_probabilities(backend):
    with pytest.raises(TypeError, match=r"^CrossEntropyLoss: expected probabilities of shape "
                                        r"\(4, 3\) to be floating-point, got dtype int64$"):
        losses.CrossEntropyLoss()(_a(np.zeros((4, 3)), "float32"), _a(np.zeros((4, 3), "int64")))


@pytest.mark.parametrize("loss, what", [(losses.CrossEntropyLoss, "logits"),
                                        (losses.NLLLoss, "log-probabilities")])
def test_class_losses_want_2d_float_scores(backend, loss, what):
    with pytest.raises(ValueError, match=rf"^{loss.__name__}: expected {what} of shape "
                                         r"\(batch, classes\), got shape \(3,\)$"):
        loss()(_a(np.zeros(3), "float32"), _a(np.array([0, 1, 2])))
    with pytest.raises(TypeError, match=rf"^{loss.__name__}: expected a floating-point {what} "
                                        r"\(float32 or float64\), got dtype int64$"):
        loss()(_a(np.zeros((3, 2), "int64")), _a(np.array([0, 1, 1])))


def test_nll_rejects_labels_of_another_shape_or_dtype(backend):
    log_p = _a(np.zeros((4, 3)), "float32")
    with pytest.raises(ValueError, match=r"^NLLLoss: expected integer labels of shape \(4,\), "
                                         r"got shape \(4, 3\)$"):
        losses.NLLLoss()(log_p, _a(np.zeros((4, 3)), "float32"))
    with pytest.raises(TypeError, match=r"^NLLLoss: expected integer labels of shape \(4,\), "
                                        r"got dtype float32$"):
        losses.NLLLoss()(log_p, _a(np.zeros(4), "float32"))


def test_class_weight_must_have_one_entry_per_class(backend):
    loss = losses.CrossEntropyLoss(weight=_a([1.0, 2.0], "float32"))
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: expected a weight of shape \(3,\), "
                                         r"one per class, got shape \(2,\)$"):
        loss(_a(np.zeros((4, 3)), "float32"), _a(np.array([0, 1, 2, 0])))


@pytest.mark.parametrize("make, message", [
    (lambda: losses.MSELoss("average"), r"MSELoss: reduction must be one of \('mean', 'sum', "
                                        r"'none'\), got 'average'"),
    (lambda: losses.SmoothL1Loss(beta=-1.0),
     r"SmoothL1Loss: beta must be a number in \[0.0, inf\), got -1.0"),
    (lambda: losses.HuberLoss(delta=0.0),
     r"HuberLoss: delta must be a number in \(0.0, inf\), got 0.0"),
    (lambda: losses.CrossEntropyLoss(label_smoothing=1.5),
     r"CrossEntropyLoss: label_smoothing must be a number in \[0.0, 1.0\], got 1.5"),
])
def test_constructors_reject_bad_settings(make, message):
    with pytest.raises(ValueError, match=rf"^{message}$"):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: losses.SmoothL1Loss(beta="a"), r"SmoothL1Loss: beta must be a real number, got str 'a'"),
    (lambda: losses.HuberLoss(delta=None), r"HuberLoss: delta must be a real number, got NoneType None"),
    (lambda: losses.CrossEntropyLoss(label_smoothing="a"),
     r"CrossEntropyLoss: label_smoothing must be a real number, got str 'a'"),
])
def test_constructors_reject_settings_of_the_wrong_type_when_made(make, message):
    with pytest.raises(TypeError, match=rf"^{message}$"):
        make()


def test_constructors_take_numpy_scalars_as_python_numbers():
    loss = losses.HuberLoss(delta=np.float32(0.5))
    assert type(loss.delta) is float and loss.delta == 0.5


def test_constructors_reject_weights_that_are_not_arrays():
    with pytest.raises(TypeError, match=r"^NLLLoss: weight must be an array \(xnn.asarray\(...\)\) "
                                        r"or None, got list$"):
        losses.NLLLoss(weight=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"got str; pass the reduction by name: "
                                        r"BCELoss\(reduction='sum'\)$"):
        losses.BCELoss("sum")
    with pytest.raises(TypeError, match=r"^CrossEntropyLoss: ignore_index must be an int"):
        losses.CrossEntropyLoss(ignore_index=1.0)


def test_repr_shows_the_settings():
    assert repr(losses.SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(beta=0.5, reduction='mean')"
    assert (repr(losses.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"))
            == "CrossEntropyLoss(label_smoothing=0.1, reduction='sum')")
    assert (repr(losses.NLLLoss(weight=xnn.asarray([1.0, 2.0]), ignore_index=0))
            == "NLLLoss(weight=<float32 array of shape (2,)>, ignore_index=0, reduction='mean')")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_gives_the_same_bits_whether_or_not_it_checked_the_labels(backend, reduction,
                                                                              dtype):
    # with validate=True and every label a class it skips the ignored-row bookkeeping
    rng = np.random.default_rng(3)
    logits = xnn.asarray(rng.standard_normal((33, 7)) * 4, dtype=dtype)
    labels = xnn.asarray(rng.integers(0, 7, 33))
    checked = losses.CrossEntropyLoss(reduction=reduction)(logits, labels)
    unchecked = losses.CrossEntropyLoss(reduction=reduction, validate=False)(logits, labels)
    for a, b in zip(checked, unchecked):
        np.testing.assert_array_equal(xnn.to_numpy(a), xnn.to_numpy(b))
