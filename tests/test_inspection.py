"""The displays of sklearn_lm.inspection: what they draw."""

import builtins
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import BayesianRidge, LinearRegression

from sklearn_lm import LMClassifier, LMRegressor
from sklearn_lm.inspection import PredictionsDisplay, TrainingCurvesDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")

X = np.linspace(-1, 1, 60)[:, None]
Y = np.sin(3 * X).ravel()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def regressor():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LMRegressor(hidden=(4,), max_iter=8, tol=0, random_state=0).fit(X, Y)


def test_training_curves_draw_the_record(regressor):
    display = TrainingCurvesDisplay.from_estimator(regressor)
    record = regressor.history_.history
    np.testing.assert_array_equal(display.loss_line_.get_xdata(), range(8))
    np.testing.assert_array_equal(display.loss_line_.get_ydata(), record["loss"])
    np.testing.assert_array_equal(display.damping_line_.get_ydata(), record["damping"])
    assert display.ax_.get_yscale() == "log"
    assert display.ax_damping_.get_yscale() == "log"
    assert display.ax_.get_ylabel() == "training loss"
    assert display.ax_damping_.get_ylabel() == "damping (lambda)"
    assert display.ax_damping_.get_xlabel() == "epoch"
    assert display.ax_damping_ is not display.ax_
    assert display.figure_ is display.ax_.figure
    assert display.validation_line_ is None and display.ax_validation_ is None
    title = " ".join(display.ax_.get_title().split())
    assert regressor.history_.message in title
    best = regressor.history_.best_epoch
    assert display.best_line_.get_xdata()[0] == best


def test_training_curves_against_time(regressor):
    display = TrainingCurvesDisplay.from_estimator(regressor, x="time")
    expected = np.cumsum(regressor.history_.history["time"])
    np.testing.assert_allclose(display.loss_line_.get_xdata(), expected)
    assert display.ax_damping_.get_xlabel() == "time (s)"
    assert np.all(np.diff(display.loss_line_.get_xdata()) > 0)


def test_training_curves_draw_validation_scores():
    rng = np.random.default_rng(0)
    Xc = rng.normal(size=(100, 2))
    yc = (Xc.sum(axis=1) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = LMClassifier(hidden=(3,), early_stopping=True, max_iter=6).fit(Xc, yc)
    display = TrainingCurvesDisplay.from_history(est.history_)
    np.testing.assert_array_equal(
        display.validation_line_.get_ydata(), est.validation_scores_
    )
    assert display.ax_validation_.get_ylabel() == "validation score"


def test_training_curves_on_given_axes_and_bad_arguments(regressor):
    fig, axes = plt.subplots(1, 2)
    display = TrainingCurvesDisplay.from_estimator(regressor, ax=axes)
    assert display.ax_ is axes[0] and display.ax_damping_ is axes[1]
    assert display.figure_ is fig
    with pytest.raises(ValueError, match="x must be 'epoch' or 'time'. Received"):
        TrainingCurvesDisplay.from_estimator(regressor, x="step")
    with pytest.raises(ValueError, match="two matplotlib Axes"):
        TrainingCurvesDisplay.from_estimator(regressor, ax=[axes[0]])
    with pytest.raises(ValueError, match="history_"):
        TrainingCurvesDisplay.from_estimator(LinearRegression().fit(X, Y))


def test_predictions_with_std_draw_two_sigma_bars():
    rng = np.random.default_rng(0)
    Xb = rng.normal(size=(40, 2))
    yb = Xb @ [1.0, -2.0] + rng.normal(0, 0.3, 40)
    model = BayesianRidge().fit(Xb, yb)
    display = PredictionsDisplay.from_estimator(model, Xb, yb)
    y_pred, y_std = model.predict(Xb, return_std=True)
    offsets = display.scatter_.get_offsets()
    np.testing.assert_allclose(offsets[:, 0], y_pred)  # predictions on x
    np.testing.assert_allclose(offsets[:, 1], yb)  # targets on y
    segments = display.errorbar_.lines[2][0].get_segments()
    starts = np.array([s[0] for s in segments])
    ends = np.array([s[1] for s in segments])
    np.testing.assert_allclose(ends[:, 0] - starts[:, 0], 4 * y_std)  # ±2σ
    np.testing.assert_allclose((ends[:, 0] + starts[:, 0]) / 2, y_pred)
    np.testing.assert_allclose(starts[:, 1], yb)
    assert display.ax_.get_xlabel() == "Predicted values"
    assert display.ax_.get_ylabel() == "Actual values"


def test_predictions_without_std_are_sklearns_display():
    # LinearRegression.predict takes no return_std: no error bars.
    linear = LinearRegression().fit(X, Y)
    display = PredictionsDisplay.from_estimator(linear, X, Y)
    assert display.errorbar_ is None
    np.testing.assert_allclose(display.scatter_.get_offsets()[:, 0], linear.predict(X))
    with pytest.raises(ValueError, match="kind='actual_vs_predicted'"):
        display.plot(kind="residual_vs_predicted")


def test_lm_regressor_predictions_get_two_sigma_bars(regressor):
    display = PredictionsDisplay.from_estimator(regressor, X, Y)
    mean, std = regressor.predict(X, return_std=True)
    np.testing.assert_allclose(display.scatter_.get_offsets()[:, 0], mean)
    segments = display.errorbar_.lines[2][0].get_segments()
    half = np.array([(s[1][0] - s[0][0]) / 2 for s in segments])
    np.testing.assert_allclose(half, 2 * std, rtol=1e-10)


def test_predictions_subsample_keeps_std_aligned():
    y_true = np.arange(50.0)
    display = PredictionsDisplay.from_predictions(
        y_true, y_true + 1, y_std=y_true / 10, subsample=10, random_state=0
    )
    segments = display.errorbar_.lines[2][0].get_segments()
    half = np.array([(s[1][0] - s[0][0]) / 2 for s in segments])
    np.testing.assert_allclose(half, 2 * display.y_true / 10)
    assert len(display.y_true) == 10


def test_missing_matplotlib_is_named(monkeypatch, regressor):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="TrainingCurvesDisplay needs matplotlib"):
        TrainingCurvesDisplay.from_estimator(regressor)
    with pytest.raises(ImportError, match="PredictionsDisplay needs matplotlib"):
        PredictionsDisplay.from_predictions(Y, Y)
