"""Estimator API: hyperparameter and input validation, fitted attributes,
stopping rules, verbosity, partial_fit and warm_start."""

import re
import warnings

import keras
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_lm.engine import Status
from sklearn_lm.engine import damping as damping_module
from sklearn_lm.estimators import LMClassifier, LMRegressor

FAST = dict(hidden=(4,), max_iter=5, random_state=0)


def _regression_data(n=40, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, n_features))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    return X, y


def _classification_data(n=60, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "pos", "neg")
    return X, y


def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ---------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------
BAD_PARAMS = [
    ("hidden", (0,)),
    ("hidden", (5, -1)),
    ("hidden", ("a",)),
    ("hidden", (2.5,)),
    ("hidden", 0),
    ("hidden", "20"),
    ("activation", "swish2"),
    ("activation", None),
    ("weight_init", "xavier"),
    ("weight_init", None),
    ("loss", "hinge"),
    ("damping", 0.0),
    ("damping", -1.0),
    ("damping", "big"),
    ("damping_mode", "marquardt"),
    ("damping_increase", 1.0),
    ("damping_decrease", 0.0),
    ("damping_decrease", 1.5),
    ("damping_min", 0.0),
    ("damping_max", -1.0),
    ("max_attempts", 0),
    ("max_attempts", 1.5),
    ("solver", "lu"),
    ("solver", None),
    ("cg_max_iter", 0),
    ("cg_max_iter", 2.5),
    ("batch_size", 0),
    ("batch_size", "auto"),
    ("learning_rate", 0.0),
    ("max_iter", 0),
    ("tol", -1e-3),
    ("n_iter_no_change", 0),
    ("n_iter_no_change", "never"),
    ("early_stopping", "yes"),
    ("validation_fraction", 0.0),
    ("validation_fraction", 1.0),
    ("alpha", -0.1),
    ("dtype", "float16"),
    ("random_state", "seed"),
    ("n_init", 0),
    ("n_init", 1.5),
    ("warm_start", 2),
    ("verbose", -1),
]


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
@pytest.mark.parametrize("param, value", BAD_PARAMS)
def test_invalid_hyperparameter_names_the_parameter(Estimator, param, value):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    est = Estimator(**{**FAST, param: value})
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        est.fit(X, y)


def test_invalid_class_weight():
    X, y = _classification_data()
    with pytest.raises(InvalidParameterError, match="'class_weight' parameter"):
        LMClassifier(**FAST, class_weight="auto").fit(X, y)


def test_regressor_rejects_classification_losses():
    X, y = _regression_data()
    with pytest.raises(InvalidParameterError, match="'loss' parameter"):
        LMRegressor(**FAST, loss="cross_entropy").fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(damping_min=1.0, damping_max=1.0), "damping_min must be smaller"),
        (dict(damping=1e-12), "damping must lie within"),
        (dict(damping=1e11), "damping must lie within"),
    ],
)
def test_inconsistent_damping_bounds(params, match):
    X, y = _regression_data()
    with pytest.raises(ValueError, match=match):
        LMRegressor(**FAST, **params).fit(X, y)


def test_init_only_stores_parameters():
    est = LMRegressor(hidden=[3, 2], damping=-5, activation="nonsense")
    assert est.get_params()["hidden"] == [3, 2]
    assert est.damping == -5
    assert not [k for k in vars(est) if k.endswith("_")]


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def _with(X, i, j, value):
    X = X.copy()
    X[i, j] = value
    return X


BAD_INPUTS = [
    ("nan_in_X", lambda X, y: (_with(X, 3, 1, np.nan), y), ValueError, "NaN"),
    ("inf_in_X", lambda X, y: (_with(X, 0, 0, np.inf), y), ValueError, "infinity"),
    (
        "empty",
        lambda X, y: (X[:0], y[:0]),
        ValueError,
        "0 sample",
    ),
    ("X_1d", lambda X, y: (X[:, 0], y), ValueError, "Expected 2D array"),
    (
        "non_numeric_X",
        lambda X, y: (np.full(X.shape, "abc", dtype=object), y),
        ValueError,
        "could not convert|argument must be",
    ),
    ("complex_X", lambda X, y: (X + 1j, y), ValueError, "[Cc]omplex"),
    ("sparse_X", lambda X, y: (sp.csr_matrix(X), y), TypeError, "[Ss]parse"),
    ("y_none", lambda X, y: (X, None), ValueError, "requires y"),
    (
        "length_mismatch",
        lambda X, y: (X, y[:-1]),
        ValueError,
        "inconsistent numbers of samples",
    ),
]


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
@pytest.mark.parametrize(
    "make_bad, error, match",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_raises_validation_error(Estimator, make_bad, error, match):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    X_bad, y_bad = make_bad(X, y)
    with pytest.raises(error, match=match):
        Estimator(**FAST).fit(X_bad, y_bad)


def test_nan_in_regression_target():
    X, y = _regression_data()
    y = y.copy()
    y[2] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        LMRegressor(**FAST).fit(X, y)


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
def test_bad_input_at_predict(Estimator):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    est = _fit_quietly(Estimator(**FAST), X, y)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(X[0])


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
def test_predict_before_fit(Estimator):
    X, _ = _regression_data()
    with pytest.raises(NotFittedError):
        Estimator().predict(X)


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
@pytest.mark.parametrize(
    "weights, match",
    [
        (lambda n: np.r_[-1.0, np.ones(n - 1)], "sample_weight"),
        (lambda n: np.zeros(n), "weights must contain at least one non-zero"),
        (lambda n: np.ones(n - 1), "sample_weight.shape"),
        (lambda n: np.ones((n, 2)), "1D array"),
    ],
    ids=["negative", "all_zero", "wrong_length", "2d"],
)
def test_bad_sample_weight(Estimator, weights, match):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    with pytest.raises(ValueError, match=match):
        Estimator(**FAST).fit(X, y, sample_weight=weights(len(y)))


def test_one_class_is_rejected():
    X, _ = _classification_data()
    with pytest.raises(ValueError, match="only one class"):
        LMClassifier(**FAST).fit(X, np.full(len(X), "a"))


def test_one_class_left_after_weighting_is_rejected():
    X, y = _classification_data()
    weights = (y == "pos").astype(float)
    with pytest.raises(ValueError, match="at least 2 classes with a positive weight"):
        LMClassifier(**FAST).fit(X, y, sample_weight=weights)


def test_continuous_target_is_rejected_by_classifier():
    X, y = _regression_data()
    with pytest.raises(ValueError, match="Unknown label type"):
        LMClassifier(**FAST).fit(X, y)


def test_multiclass_multioutput_is_rejected():
    X, _ = _classification_data()
    y = np.column_stack([np.arange(len(X)) % 3, np.arange(len(X)) % 2])
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        LMClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize("n_samples", [1, 3])
def test_early_stopping_needs_a_validation_set(n_samples):
    X, y = _regression_data()
    est = LMRegressor(**FAST, early_stopping=True)
    with pytest.raises(ValueError, match=f"n_samples={n_samples}"):
        est.fit(X[:n_samples], y[:n_samples])


def test_single_sample_fits_without_early_stopping():
    X, y = _regression_data()
    est = _fit_quietly(LMRegressor(**FAST), X[:1], y[:1])
    np.testing.assert_allclose(est.predict(X[:1]), y[:1], atol=1e-6)


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
def test_input_arrays_are_not_modified(Estimator):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    X32 = X.astype(np.float32)
    weights = np.linspace(0.5, 2.0, len(y))
    originals = [X.copy(), X32.copy(), y.copy(), weights.copy()]
    params = dict(**FAST, early_stopping=True, batch_size=16)
    if Estimator is LMClassifier:
        params["class_weight"] = "balanced"
    est = _fit_quietly(Estimator(**params), X, y, sample_weight=weights)
    _fit_quietly(clone(est), X32, y, sample_weight=weights)
    est.predict(X)
    est.predict(X32)
    for now, before in zip([X, X32, y, weights], originals, strict=True):
        np.testing.assert_array_equal(now, before)
        assert now.dtype == before.dtype


# ---------------------------------------------------------------------------
# Fitted attributes
# ---------------------------------------------------------------------------
def test_fitted_attributes_regressor():
    X, y = _regression_data()
    est = LMRegressor(hidden=(4, 3), max_iter=200, random_state=0).fit(X, y)
    assert isinstance(est.model_, keras.Model)
    shapes = [tuple(w.shape) for w in est.model_.get_weights()]
    assert shapes == [(3, 4), (4,), (4, 3), (3,), (3, 1), (1,)]
    assert 1 <= est.n_iter_ < 200
    assert len(est.loss_curve_) == len(est.damping_curve_) == est.n_iter_
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.t_ == est.n_iter_ * len(X)
    assert est.n_outputs_ == 1
    assert est.n_features_in_ == 3
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert not hasattr(est, "feature_names_in_")
    assert all(d > 0 for d in est.damping_curve_)
    # The loss decreases overall: LM only accepts steps that lower it.
    assert est.loss_curve_[-1] < 0.1 * est.loss_curve_[0]


def test_fitted_attributes_classifier():
    X, y = _classification_data()
    est = _fit_quietly(LMClassifier(**FAST), X, y)
    np.testing.assert_array_equal(est.classes_, ["neg", "pos"])
    assert est.n_outputs_ == 1
    assert len(est.loss_curve_) == est.n_iter_
    y3 = np.arange(len(X)) % 3
    est3 = _fit_quietly(LMClassifier(**FAST), X, y3)
    assert est3.n_outputs_ == 3
    assert est3.model_.get_weights()[-1].shape == (3,)


def test_linear_model_with_empty_hidden():
    X, _ = _regression_data()
    coef = np.array([1.5, -2.0, 0.5])
    y = X @ coef + 3.0
    est = LMRegressor(hidden=(), max_iter=50, dtype="float64", random_state=0)
    est.fit(X, y)
    assert len(est.model_.layers) == 1
    kernel, bias = est.model_.get_weights()
    # The network works on standardised targets: undo that for the coefficients.
    np.testing.assert_allclose(
        kernel.ravel() * est._target_scaler.scale_, coef, rtol=1e-6
    )
    np.testing.assert_allclose(est.predict(X), y, atol=1e-6)


def test_tags():
    reg_tags = get_tags(LMRegressor())
    assert reg_tags.target_tags.multi_output
    assert not reg_tags.input_tags.allow_nan
    assert not reg_tags.input_tags.sparse
    clf_tags = get_tags(LMClassifier())
    assert clf_tags.classifier_tags.multi_label
    assert not clf_tags.input_tags.allow_nan


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
def test_clone_of_fitted_is_unfitted(Estimator):
    X, y = _regression_data() if Estimator is LMRegressor else _classification_data()
    est = _fit_quietly(Estimator(**FAST, alpha=0.1), X, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not hasattr(fresh, "model_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def test_damping_instance_parameter_is_not_mutated():
    X, y = _regression_data()
    strategy = damping_module.Fletcher(initial=1e-2, min_value=1e-8)
    before = strategy.get_config()
    est = LMRegressor(hidden=(4,), damping_mode=strategy, max_iter=20, random_state=0)
    _fit_quietly(est, X, y)
    assert est.damping_mode is strategy
    assert strategy.get_config() == before
    assert est.damping_curve_[0] != 1e-2 or est.damping_curve_[1] != 1e-2
    assert est.score(X, y) > 0.9


# ---------------------------------------------------------------------------
# Stopping rules and progress printing
# ---------------------------------------------------------------------------
def test_convergence_warning_when_max_iter_is_reached():
    X, y = _regression_data()
    est = LMRegressor(hidden=(4,), max_iter=3, n_iter_no_change=np.inf, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        est.fit(X, y)
    assert est.n_iter_ == 3
    assert est.stop_reason_ is Status.MAX_EPOCHS and not est.stop_reason_.converged


def test_classifier_reports_max_epochs_with_the_warning():
    X, y = _classification_data()
    est = LMClassifier(hidden=(4,), max_iter=2, n_iter_no_change=np.inf)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        est.set_params(random_state=0).fit(X, y)
    assert est.stop_reason_ is Status.MAX_EPOCHS
    assert est.stop_reason_.message == "completed the requested epochs"


def test_tol_rule_stops_without_warning():
    X, y = _regression_data()
    # With a huge tol no epoch after the first counts as an improvement (the
    # first one improves on an infinite best loss).
    est = LMRegressor(hidden=(4,), max_iter=100, tol=1e6, n_iter_no_change=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.set_params(random_state=0).fit(X, y)
    assert est.n_iter_ == 1 + 4
    assert est.stop_reason_ is Status.NO_IMPROVEMENT


@pytest.mark.parametrize(
    "Estimator, data",
    [(LMRegressor, _regression_data), (LMClassifier, _classification_data)],
)
@pytest.mark.parametrize(
    "params, patience",
    [
        ({}, 2),  # full batch: one deterministic, monotone LM step per epoch
        ({"batch_size": 16}, 10),
        ({"early_stopping": True, "validation_fraction": 0.25}, 10),
    ],
)
def test_auto_patience_depends_on_batching_and_early_stopping(
    Estimator, data, params, patience
):
    X, y = data()
    # As above, a huge tol makes every epoch after the first one without
    # improvement, so training stops after 1 + patience epochs.
    est = Estimator(hidden=(4,), max_iter=100, tol=1e6, random_state=0, **params)
    assert est.n_iter_no_change == "auto"
    est.fit(X, y)
    assert est.n_iter_ == 1 + patience
    assert est.stop_reason_ is Status.NO_IMPROVEMENT


def test_tol_rule_counts_consecutive_epochs():
    X, y = _regression_data()
    # Without Bayesian regularization, whose evidence rule could stop first.
    est = LMRegressor(
        hidden=(6,), max_iter=300, tol=1e-3, n_iter_no_change=3, bayesian=False
    )
    est.set_params(random_state=0).fit(X, y)
    curve = np.asarray(est.loss_curve_)
    best_before = np.minimum.accumulate(np.r_[np.inf, curve[:-1]])
    no_improvement = curve > best_before - 1e-3
    # Stopped at the first run of 3 epochs without improvement.
    runs = np.convolve(no_improvement, np.ones(3, dtype=int), mode="valid")
    assert runs[-1] == 3
    assert np.all(runs[:-1] < 3)


def test_reaching_damping_max_counts_as_converged():
    X, _ = _regression_data()
    y = X @ np.array([1.0, 2.0, -1.0])
    # A linear model on exact linear data is solved in a couple of steps;
    # afterwards every attempt is rejected and lambda climbs to damping_max.
    est = LMRegressor(
        hidden=(),
        damping_max=1e2,
        max_iter=200,
        n_iter_no_change=np.inf,
        dtype="float64",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ < 200
    assert est.damping_curve_[-1] == pytest.approx(1e2)
    assert est.stop_reason_ is Status.DAMPING_MAX and est.stop_reason_.converged


def test_early_stopping_restores_the_best_scoring_weights():
    X, y = _regression_data(n=120)
    y = y + 0.3 * np.random.RandomState(1).normal(size=120)  # room to overfit
    est = LMRegressor(
        hidden=(12,), early_stopping=True, batch_size=16, random_state=0
    ).fit(X, y)
    scores = est.validation_scores_
    assert est.stop_reason_ is Status.NO_IMPROVEMENT
    assert int(np.argmax(scores)) < len(scores) - 1
    # The validation set, drawn as fit draws it: the second seed of random_state.
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=2)
    _, val = train_test_split(np.arange(120), test_size=12, random_state=seeds[1])
    # fit scores float32 inputs (dtype="float32").
    X_val = X[val].astype(np.float32)
    assert est.score(X_val, y[val]) == pytest.approx(max(scores), abs=1e-12)
    assert est.best_validation_score_ == max(scores)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = _regression_data()
    est = _fit_quietly(LMRegressor(**FAST, verbose=1), X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    epoch_lines = [line for line in lines if line.startswith("Epoch")]
    assert len(epoch_lines) == est.n_iter_
    pattern = r"Epoch (\d+): loss = ([\d.e+-]+), damping = ([\d.e+-]+), attempts = "
    for i, line in enumerate(epoch_lines, start=1):
        match = re.match(pattern, line)
        assert match, line
        assert int(match.group(1)) == i
        # Eight significant digits, whatever the size of the loss.
        assert float(match.group(2)) == pytest.approx(est.loss_curve_[i - 1], rel=1e-7)
        assert float(match.group(3)) == pytest.approx(
            est.damping_curve_[i - 1], rel=1e-3
        )


def test_verbose_reports_validation_score(capsys):
    X, y = _regression_data(n=60)
    est = _fit_quietly(LMRegressor(**FAST, verbose=1, early_stopping=True), X, y)
    out = capsys.readouterr().out
    scores = re.findall(r"validation score = ([-\d.e+]+)", out)
    assert len(scores) == est.n_iter_
    np.testing.assert_allclose(
        [float(s) for s in scores], est.validation_scores_, atol=1e-6
    )


def test_silent_by_default(capsys):
    X, y = _regression_data()
    _fit_quietly(LMRegressor(**FAST), X, y)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
@pytest.mark.parametrize(
    "extra", [{}, dict(batch_size=16, early_stopping=True)], ids=["full", "batches"]
)
def test_random_state_makes_fits_identical(Estimator, extra):
    X, y = (
        _regression_data(n=80)
        if Estimator is LMRegressor
        else _classification_data(n=80)
    )
    method = "predict" if Estimator is LMRegressor else "predict_proba"
    params = dict(hidden=(5,), max_iter=15, **extra)
    first = _fit_quietly(Estimator(**params, random_state=3), X, y)
    second = _fit_quietly(Estimator(**params, random_state=3), X, y)
    other = _fit_quietly(Estimator(**params, random_state=4), X, y)
    np.testing.assert_array_equal(getattr(first, method)(X), getattr(second, method)(X))
    assert first.loss_curve_ == second.loss_curve_
    assert not np.allclose(getattr(first, method)(X), getattr(other, method)(X))


def test_random_state_instance_is_accepted():
    X, y = _regression_data()
    est = _fit_quietly(
        LMRegressor(**{**FAST, "random_state": np.random.RandomState(0)}), X, y
    )
    assert est.predict(X).shape == y.shape


# ---------------------------------------------------------------------------
# partial_fit and warm_start
# ---------------------------------------------------------------------------
def test_partial_fit_runs_one_epoch_and_matches_fit():
    X, y = _regression_data()
    # bayesian="auto" is off in partial_fit, on in a fit on these few samples.
    incremental = LMRegressor(hidden=(4,), bayesian=False, random_state=0)
    for i in range(1, 4):
        incremental.partial_fit(X, y)  # no ConvergenceWarning (an error here)
        assert incremental.n_iter_ == i
        assert len(incremental.loss_curve_) == i
        assert incremental.stop_reason_ is Status.MAX_EPOCHS
    assert incremental.t_ == 3 * len(X)
    batch = LMRegressor(
        hidden=(4,), max_iter=3, n_iter_no_change=np.inf, bayesian=False, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        batch.fit(X, y)
    # Full-batch epochs: three partial fits are three epochs of one fit,
    # with the damping factor carried over between calls.
    np.testing.assert_allclose(incremental.predict(X), batch.predict(X), rtol=1e-6)
    np.testing.assert_allclose(incremental.damping_curve_, batch.damping_curve_)


def test_partial_fit_after_fit_continues():
    X, y = _regression_data()
    est = _fit_quietly(LMRegressor(**FAST), X, y)
    loss_before = est.loss_curve_[-1]
    est.partial_fit(X, y)
    assert est.n_iter_ == FAST["max_iter"] + 1
    assert est.loss_curve_[-1] <= loss_before


def test_partial_fit_with_early_stopping_is_rejected():
    X, y = _regression_data()
    with pytest.raises(ValueError, match="early_stopping"):
        LMRegressor(**FAST, early_stopping=True).partial_fit(X, y)


def test_partial_fit_checks_n_features():
    X, y = _regression_data()
    est = LMRegressor(**FAST).partial_fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features"):
        est.partial_fit(X[:, :2], y)


def test_classifier_partial_fit_classes():
    X, y = _classification_data()
    est = LMClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    # A batch may lack some classes.
    est.partial_fit(X[y == "neg"], y[y == "neg"], classes=["pos", "neg", "maybe"])
    np.testing.assert_array_equal(est.classes_, ["maybe", "neg", "pos"])
    assert est.n_outputs_ == 3
    est.partial_fit(X, y)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        est.partial_fit(X, y, classes=["neg", "pos"])
    with pytest.raises(ValueError, match="labels not seen"):
        est.partial_fit(X[:2], ["neg", "other"])
    assert est.predict_proba(X).shape == (len(X), 3)


def test_partial_fit_with_balanced_class_weight_is_rejected():
    X, y = _classification_data()
    est = LMClassifier(**FAST, class_weight="balanced")
    with pytest.raises(ValueError, match="balanced"):
        est.partial_fit(X, y, classes=["neg", "pos"])


def test_warm_start_continues_from_previous_weights():
    X, y = _regression_data()
    # Without Bayesian regularization, whose hyperparameters (and so the
    # objective) start afresh with each fit.
    params = dict(
        hidden=(4,), max_iter=4, n_iter_no_change=np.inf, bayesian=False, random_state=0
    )
    warm = LMRegressor(**params, warm_start=True)
    cold = LMRegressor(**params)
    with pytest.warns(ConvergenceWarning):
        warm.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        cold.fit(X, y)
    first_end = warm.loss_curve_[-1]
    with pytest.warns(ConvergenceWarning):
        warm.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        cold.fit(X, y)
    assert warm.n_iter_ == 4
    # The warm fit starts where the first stopped; the cold one starts over.
    assert warm.loss_curve_[0] <= first_end
    assert cold.loss_curve_[0] > first_end
    assert warm.loss_curve_[-1] < cold.loss_curve_[-1]


def test_warm_start_rejects_a_different_network():
    X, y = _regression_data()
    est = _fit_quietly(LMRegressor(**FAST, warm_start=True), X, y)
    est.set_params(hidden=(6,))
    with pytest.raises(ValueError, match="hidden, activation and dtype must not"):
        est.fit(X, y)
    est.set_params(hidden=(4,))
    with pytest.raises(ValueError, match="outputs"):
        est.fit(X, np.column_stack([y, y]))


def test_warm_start_rejects_different_classes():
    X, y = _classification_data()
    est = _fit_quietly(LMClassifier(**FAST, warm_start=True), X, y)
    y_other = np.where(y == "pos", "pos", "other")
    with pytest.raises(ValueError, match="same classes"):
        est.fit(X, y_other)


def test_values_beyond_float32_are_rejected():
    X, y = _regression_data()
    with pytest.raises(ValueError, match="too large for dtype='float32'"):
        LMRegressor(**FAST).fit(X * 1e40, y)
    est = _fit_quietly(LMRegressor(**FAST, dtype="float64"), X * 1e40, y)
    assert np.all(np.isfinite(est.predict(X * 1e40)))


def test_labels_of_another_type_than_classes():
    X, y = _classification_data()
    est = LMClassifier(**FAST).partial_fit(X, y, classes=["neg", "pos"])
    with pytest.raises(ValueError, match="labels"):
        est.partial_fit(X[:3], [1, 2, 3])


def test_damping_update_selects_the_rule():
    X = np.linspace(-1, 1, 80).reshape(-1, 1)
    y = np.sin(3 * X[:, 0])
    fixed = LMRegressor(
        hidden=(4,),
        damping=1e-3,
        damping_update="fixed",
        max_iter=8,
        tol=0.0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed.fit(X, y)
        ratio = LMRegressor(
            hidden=(4,), damping=1e-3, max_iter=8, tol=0.0, random_state=0
        ).fit(X, y)
    # Fixed factors 10 and 0.1 keep lambda on the grid 1e-3 * 10**k.
    exponents = np.log10(np.asarray(fixed.damping_curve_) / 1e-3)
    np.testing.assert_allclose(exponents, np.round(exponents), atol=1e-9)
    exponents = np.log10(np.asarray(ratio.damping_curve_) / 1e-3)
    assert np.max(np.abs(exponents - np.round(exponents))) > 1e-3


@pytest.mark.parametrize(
    "hidden, auto_is",
    [((8,), "direct"), ((3, 300), "cg")],  # 41 and 1513 weights on 3 features
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_solver_is_direct_for_small_and_cg_for_large_networks(hidden, auto_is):
    X, y = _regression_data()
    other = {"direct": "cg", "cg": "direct"}[auto_is]
    fits = {
        solver: LMRegressor(
            hidden=hidden, max_iter=3, random_state=0, solver=solver
        ).fit(X, y)
        for solver in ("auto", auto_is, other)
    }
    auto, same, different = (fits[k].predict(X) for k in ("auto", auto_is, other))
    np.testing.assert_array_equal(auto, same)
    assert not np.allclose(auto, different, rtol=1e-6)
