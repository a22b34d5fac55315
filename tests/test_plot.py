"""xnn.plot: every panel has labelled axes, epochs are whole numbers, the decision surface
marks each class and the misclassified points, fit plots keep the truth visible."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
from xnn import nn

pytest.importorskip("matplotlib", reason="xnn.plot draws with matplotlib (xnn[plot])")


@pytest.fixture
def figures(monkeypatch):
    """The figures xnn.plot draws, kept instead of only written."""
    drawn = []
    real = xnn.plot._save

    def keep(fig, path):
        drawn.append(fig)
        return real(fig, path)

    monkeypatch.setattr(xnn.plot, "_save", keep)
    return drawn


def _labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


def _history(logs: dict[str, list[float]]) -> xnn.History:
    n = len(next(iter(logs.values())))
    return xnn.History(logs, list(range(n)))


def test_loss_curve_labels_every_panel_and_counts_whole_epochs_from_1(figures, tmp_path):
    history = _history({"loss": [1.0, 0.5, 0.3], "accuracy": [0.5, 0.7, 0.8],
                        "val_loss": [1.1, 0.6, 0.4], "val_accuracy": [0.4, 0.6, 0.7]})
    xnn.plot.loss_curve(history, tmp_path / "loss.png")
    loss_ax, metric_ax = figures[0].axes
    assert all(_labelled(ax) for ax in (loss_ax, metric_ax))
    assert metric_ax.get_ylabel() == "accuracy"
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    ticks = [t for t in loss_ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    # training solid, validation dashed, one colour per quantity
    styles = {line.get_label(): (line.get_linestyle(), line.get_color()) for line in loss_ax.lines}
    assert styles["loss"][0] == "-" and styles["val_loss"][0] == "--"
    assert styles["loss"][1] == styles["val_loss"][1]


def test_loss_curve_draws_r2_as_one_minus_r2_on_a_log_scale(figures, tmp_path):
    history = _history({"loss": [0.1, 0.01, 0.001], "r2_score": [0.9, 0.99, 0.999]})
    xnn.plot.loss_curve(history, tmp_path / "loss.png")
    metric_ax = figures[0].axes[1]
    assert metric_ax.get_yscale() == "log" and "1 - R²" in metric_ax.get_ylabel()
    np.testing.assert_allclose(metric_ax.lines[0].get_ydata(), [0.1, 0.01, 0.001])


def _circle_classifier():
    xnn.seed(0)
    X, y = xnn.datasets.circles(n=200, noise=0.1, seed=0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1),
                          nn.Sigmoid())
    xnn.fit(model, X, y, loss=xnn.losses.BCELoss(),
            optimizer=xnn.optim.Adam(model.parameters(), lr=0.02), epochs=30, batch_size=32,
            seed=0, progress=False)
    return model, X, y


def test_decision_surface_marks_classes_and_misclassified_points(figures, tmp_path):
    model, X, y = _circle_classifier()
    xnn.plot.decision_surface(model, X, y, tmp_path / "surface.png")
    ax = figures[0].axes[0]
    assert _labelled(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["class 0", "class 1"]
    predicted = xnn.to_numpy(xnn.predict(model, X))[:, 0] >= 0.5
    wrong = int((predicted != (xnn.to_numpy(y)[:, 0] >= 0.5)).sum())
    assert f"misclassified ({wrong} of 200)" in labels
    ringed = [c for c in ax.collections if c.get_label().startswith("misclassified")][0]
    assert len(ringed.get_offsets()) == wrong
    faces = [c.get_facecolor()[0].tolist() for c in ax.collections
             if c.get_label().startswith("class")]
    assert faces[0] != faces[1]  # the classes differ in colour as well as in marker
    assert all(m.training for m in model.modules())  # drawn in eval mode, mode put back


def test_decision_surface_refuses_a_model_with_several_outputs(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="must have one output"):
        xnn.plot.decision_surface(model, [[0.0, 0.0], [1.0, 1.0]], [0, 1], tmp_path / "s.png")


def test_fit_curve_draws_the_truth_dashed_on_top_of_the_fit(figures, tmp_path):
    x = np.linspace(-1, 1, 50)[:, None]
    xnn.plot.fit_curve(x, 2 * x + 1, tmp_path / "fit.png", curves={"learned": (x, 2 * x + 1)},
                       truth=(x, 2 * x + 1))
    ax = figures[0].axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert lines["truth"].get_linestyle() == "--"
    assert lines["truth"].get_zorder() > lines["learned"].get_zorder()
    assert lines["truth"].get_color() != lines["learned"].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data", "learned", "truth"]
    assert _labelled(ax)


def test_confusion_matrix_labels_its_axes_and_colour_bar(figures, tmp_path):
    xnn.plot.confusion_matrix(np.array([[3, 1], [0, 4]]), tmp_path / "cm.png")
    ax, bar = figures[0].axes
    assert _labelled(ax) and bar.get_ylabel() == "count"


def test_loss_curve_takes_a_mapping_of_lists_and_refuses_anything_else(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (xnn[plot])")
    path = xnn.plot.loss_curve({"loss": [1.0, 0.5, 0.25]}, tmp_path / "l.png")
    assert (tmp_path / "l.png").stat().st_size > 1000 and str(path).endswith("l.png")
    with pytest.raises(TypeError, match=r"loss_curve: history must be fit's History or a "
                                        r"mapping of lists .*got list"):
        xnn.plot.loss_curve([1.0, 0.5], tmp_path / "m.png")


def test_confusion_matrix_wants_one_class_name_per_row(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (xnn[plot])")
    with pytest.raises(ValueError, match=r"confusion_matrix: expected a square matrix and one "
                                         r"class name per row, got shape \(2, 2\) and 1 names"):
        xnn.plot.confusion_matrix(np.array([[2, 1], [0, 3]]), tmp_path / "c.png",
                                  class_names=["a"])
    assert not (tmp_path / "c.png").exists()
