"""The estimators' training record (history_), restarts (n_init) and progress."""

import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_lm import LMClassifier, LMRegressor
from sklearn_lm.engine import Status, TrainingHistory

X = np.linspace(-1, 1, 200)[:, None]
Y = np.sinc(6 * X).ravel()


def _classification():
    rng = np.random.default_rng(0)
    Xc = rng.normal(size=(120, 2))
    return Xc, (Xc[:, 0] + Xc[:, 1] > 0).astype(int)


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _standardized_mse(est, X, y):
    """The regressor's training loss recomputed from its predictions."""
    return float(np.mean((est.predict(X) - y) ** 2) / np.var(y))


# -- history_ ------------------------------------------------------------------
def test_history_matches_the_curves_and_tells_why_and_when():
    est = LMRegressor(hidden=(5,), max_iter=200, random_state=0)
    started = time.perf_counter()
    est.fit(X, Y)
    elapsed = time.perf_counter() - started
    history = est.history_
    assert isinstance(history, TrainingHistory)
    assert history.history["loss"] == est.loss_curve_
    assert history.history["damping"] == est.damping_curve_
    assert history.epoch == list(range(est.n_iter_))
    assert history.stop_reason is est.stop_reason_ is Status.NO_IMPROVEMENT
    assert "improve" in history.message
    assert history.best_epoch == int(np.argmin(est.loss_curve_))
    times = history.history["time"]
    assert all(t > 0 for t in times)
    assert sum(times) <= elapsed
    assert len(history.history["attempts"]) == est.n_iter_


def test_history_with_early_stopping_has_the_validation_scores():
    Xc, yc = _classification()
    est = LMClassifier(hidden=(4,), early_stopping=True, max_iter=30, random_state=0)
    _quiet_fit(est, Xc, yc)
    scores = est.history_.history["validation_score"]
    assert scores == est.validation_scores_
    assert est.history_.best_epoch == int(np.argmax(scores))


def test_fit_resets_and_partial_fit_extends_the_history():
    est = LMRegressor(hidden=(4,), max_iter=3, n_iter_no_change=np.inf, random_state=0)
    _quiet_fit(est, X, Y)
    assert len(est.history_.epoch) == 3
    est.partial_fit(X, Y)
    est.partial_fit(X, Y)
    assert est.history_.epoch == [0, 1, 2, 3, 4]
    assert est.history_.history["loss"] == est.loss_curve_
    assert est.history_.history["loss"][3:] == est.loss_curve_[3:]
    _quiet_fit(est, X, Y)
    assert est.history_.epoch == [0, 1, 2]
    assert est.history_.history["loss"] == est.loss_curve_


def test_history_to_dataframe():
    pytest.importorskip("pandas")
    est = LMRegressor(hidden=(4,), max_iter=4, tol=0, random_state=0)
    _quiet_fit(est, X, Y)
    frame = est.history_.to_dataframe()
    assert frame.shape == (est.n_iter_, 4)
    np.testing.assert_array_equal(frame["loss"], est.loss_curve_)


# -- n_init ----------------------------------------------------------------------
@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
@pytest.mark.parametrize("value", [0, 1.5, "2"])
def test_invalid_n_init_names_it(Estimator, value):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'n_init' parameter"):
        Estimator(n_init=value).fit(*_classification())


def test_single_start_is_the_default_fit():
    params = dict(hidden=(5,), max_iter=30, random_state=0)
    default = _quiet_fit(LMRegressor(**params), X, Y)
    single = _quiet_fit(LMRegressor(**params, n_init=1), X, Y)
    pairs = zip(default.model_.get_weights(), single.model_.get_weights(), strict=True)
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)
    assert single.best_init_ == 0 and single.init_scores_ is None


def test_restarts_keep_the_start_with_the_lowest_training_loss():
    params = dict(hidden=(5,), max_iter=30, random_state=0)
    single = _quiet_fit(LMRegressor(**params), X, Y)
    est = _quiet_fit(LMRegressor(**params, n_init=4), X, Y)
    losses = -np.asarray(est.init_scores_)
    assert len(losses) == 4 and len(set(losses.tolist())) == 4
    # The first start is the single fit, recomputed from its predictions.
    np.testing.assert_allclose(losses[0], _standardized_mse(single, X, Y), rtol=1e-4)
    # The start kept has the lowest loss and its own record.
    assert est.best_init_ == int(np.argmin(losses))
    np.testing.assert_allclose(_standardized_mse(est, X, Y), losses.min(), rtol=1e-4)
    np.testing.assert_allclose(
        est.history_.history["loss"][-1], losses.min(), rtol=1e-4
    )
    assert est.loss_curve_ == est.history_.history["loss"]
    assert _standardized_mse(est, X, Y) <= _standardized_mse(single, X, Y)


def test_restarts_with_early_stopping_keep_the_best_validation_score():
    Xc, yc = _classification()
    est = LMClassifier(
        hidden=(4,), early_stopping=True, max_iter=15, n_init=3, random_state=1
    )
    _quiet_fit(est, Xc, yc)
    assert len(est.init_scores_) == 3
    assert est.best_init_ == int(np.argmax(est.init_scores_))
    assert est.best_validation_score_ == max(est.init_scores_)
    assert est.history_.history["validation_score"] == est.validation_scores_


def test_continuing_training_does_not_restart():
    est = LMRegressor(hidden=(4,), max_iter=5, n_init=3, random_state=0)
    _quiet_fit(est, X, Y)
    first = est.init_scores_
    est.set_params(warm_start=True)
    _quiet_fit(est, X, Y)
    est.partial_fit(X, Y)
    assert est.init_scores_ == first and est.history_.epoch[-1] == est.n_iter_ - 1


# -- verbose -------------------------------------------------------------------------
def test_verbose_1_lines_are_unchanged(capsys):
    est = LMRegressor(hidden=(4,), max_iter=2, tol=0, random_state=0, verbose=1)
    _quiet_fit(est, X, Y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch 1: loss = ")
    assert ", damping = " in lines[0] and ", attempts = " in lines[0]


def test_verbose_2_shows_step_bars_for_mini_batches(capsys):
    params = dict(hidden=(4,), max_iter=2, tol=0, batch_size=50, random_state=0)
    quiet = _quiet_fit(LMRegressor(**params), X, Y)
    loud = _quiet_fit(LMRegressor(**params, verbose=2), X, Y)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "4/4" in out
    # Step by step: the same steps as the compiled epoch.
    np.testing.assert_allclose(loud.loss_curve_, quiet.loss_curve_, rtol=1e-4)


def test_verbose_2_shows_an_epoch_bar_for_full_batches(capsys):
    est = LMRegressor(hidden=(4,), max_iter=3, tol=0, random_state=0, verbose=2)
    _quiet_fit(est, X, Y)
    out = capsys.readouterr().out
    assert "3/3" in out and "epoch" in out
