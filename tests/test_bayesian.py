"""Bayesian regularization and the predictive standard deviation.

References: scikit-learn's ``BayesianRidge`` (the same fixed point for a
linear model), NumPy implementations of the formulas with Jacobians by
central differences, and the refusals of what is not supported yet.
"""

import pickle
import warnings

import keras
import numpy as np
import pytest
from _reference import flat_weights, model_jacobian
from sklearn.linear_model import BayesianRidge

from sklearn_lm import LMRegressor
from sklearn_lm.engine import LMModel, StepConfig, Trainer, predictive
from sklearn_lm.engine import bayesian as bayesian_module
from sklearn_lm.engine.covariance import CovarianceWarning
from sklearn_lm.network import forward


def _linear_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X -= X.mean(axis=0)  # BayesianRidge's predict does not centre X
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.5 * rng.normal(size=n)
    return X, y


def _bayesian_regressor(**params):
    # One alpha (tests/test_bayesian_groups.py covers one per layer).
    options = dict(
        bayesian=True,
        bayesian_groups="single",
        dtype="float64",
        max_iter=200,
        tol=1e-14,
    )
    return LMRegressor(**{**options, **params, "random_state": 0})


@pytest.mark.parametrize("weighted", [False, True])
def test_linear_model_matches_bayesian_ridge(weighted):
    # hidden=() with an unpenalised intercept: the fixed point of the same
    # equations as BayesianRidge without hyperpriors. Its lambda_ is the
    # precision of the coefficients (ours alpha_ / s**2 in original units),
    # its alpha_ the noise precision (ours 1 / noise_variance_). Sample
    # weights of mean 1 (the estimator rescales them to mean 1; BayesianRidge
    # counts m = N residuals whatever the weights, as we do).
    X, y = _linear_data()
    sw = None
    if weighted:
        sw = np.random.default_rng(3).uniform(0.2, 1.8, size=len(y))
        sw /= sw.mean()
    reg = _bayesian_regressor(hidden=()).fit(X, y, sample_weight=sw)
    ref = BayesianRidge(
        alpha_1=0.0, alpha_2=0.0, lambda_1=0.0, lambda_2=0.0, tol=1e-12
    ).fit(X, y, sample_weight=sw)
    s = reg._target_scaler.scale_[0]
    np.testing.assert_allclose(reg.alpha_ / s**2, ref.lambda_, rtol=1e-6)
    np.testing.assert_allclose(reg.noise_variance_, 1.0 / ref.alpha_, rtol=1e-6)
    kernel, bias = reg.model_.get_weights()
    np.testing.assert_allclose(kernel.ravel() * s, ref.coef_, rtol=1e-6)
    X_test = np.random.default_rng(1).normal(size=(7, 3))
    y_pred, y_std = reg.predict(X_test, return_std=True)
    ref_pred, ref_std = ref.predict(X_test, return_std=True)
    np.testing.assert_allclose(y_pred, ref_pred, rtol=1e-6)
    # BayesianRidge leaves out the intercept's variance: with centred
    # training inputs it is exactly noise / N.
    intercept_var = reg.noise_variance_ / X.shape[0]
    np.testing.assert_allclose(y_std**2, ref_std**2 + intercept_var, rtol=1e-6)
    assert 0 < reg.gamma_ <= 3
    history = reg.history_.history
    for name in ("alpha", "beta", "noise_variance", "gamma", "log_evidence"):
        assert len(history[name]) == reg.n_iter_


def _tiny_fit():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(30, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=30)
    return X, y, _bayesian_regressor(hidden=(3,), max_iter=30).fit(X, y)


def test_evidence_matches_numpy():
    X, y, reg = _tiny_fit()
    state = reg._trainer.bayesian
    targets = reg._target_scaler.transform(y)
    jac = model_jacobian(reg.model_, X)[:, 0, :]
    # J^T J at the fitted weights, from the engine's pass.
    np.testing.assert_allclose(state.normal, jac.T @ jac, rtol=1e-6, atol=1e-8)
    mask = bayesian_module.penalty_mask(reg._trainer.fn)
    assert mask.tolist() == [1.0] * 9 + [0.0]  # all but the output bias
    w = flat_weights(reg.model_)
    e_d = 0.5 * np.sum((forward(reg.model_, X) - targets) ** 2)
    e_w = 0.5 * np.sum(mask * w**2)
    m, alpha, beta = X.shape[0], 0.7, 20.0
    got = bayesian_module.evidence(jac.T @ jac, mask, e_d, e_w, m, alpha, beta)
    a = beta * jac.T @ jac + alpha * np.diag(mask)
    gamma = mask.sum() - alpha * np.sum(mask * np.diag(np.linalg.inv(a)))
    log_evidence = (
        -beta * e_d
        - alpha * e_w
        - 0.5 * np.linalg.slogdet(a)[1]
        + 0.5 * mask.sum() * np.log(alpha)
        + 0.5 * m * np.log(beta)
        - 0.5 * m * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(got.gamma, gamma, rtol=1e-10)
    np.testing.assert_allclose(got.log_evidence, log_evidence, rtol=1e-10)
    np.testing.assert_allclose(got.alpha, gamma / (2 * e_w), rtol=1e-10)
    np.testing.assert_allclose(got.beta, (m - gamma) / (2 * e_d), rtol=1e-10)


def test_predictive_std_matches_numpy():
    X, y, reg = _tiny_fit()
    s = reg._target_scaler.scale_[0]
    beta = s**2 / reg.noise_variance_
    mask = bayesian_module.penalty_mask(reg._trainer.fn)
    jac = model_jacobian(reg.model_, X)[:, 0, :]
    a = beta * jac.T @ jac + reg.alpha_ * np.diag(mask)
    X_test = np.linspace(-1.5, 1.5, 9)[:, None]
    g = model_jacobian(reg.model_, X_test)[:, 0, :]
    expected = s * np.sqrt(1 / beta + np.sum(g @ np.linalg.inv(a) * g, axis=1))
    np.testing.assert_allclose(
        reg.predict(X_test, return_std=True)[1], expected, rtol=1e-5
    )


def test_predictive_gradient_matches_finite_differences():
    X, _, reg = _tiny_fit()
    fn = reg._trainer.fn
    v = np.random.default_rng(2).normal(size=fn.n_params)
    got = predictive.predictive_variance(fn, X, np.outer(v, v))
    directional = model_jacobian(reg.model_, X) @ v
    np.testing.assert_allclose(got, directional**2, rtol=1e-6, atol=1e-12)


def test_several_outputs_and_pickling():
    X, y = _linear_data()
    Y = np.column_stack([y, 2 * y + 1])
    reg = _bayesian_regressor(hidden=(3,), max_iter=50).fit(X, Y)
    # One noise precision in standardised units: the second target is
    # twice the first, so its noise variance is four times as large.
    assert reg.noise_variance_.shape == (2,)
    np.testing.assert_allclose(reg.noise_variance_[1], 4 * reg.noise_variance_[0])
    y_pred, y_std = reg.predict(X[:4], return_std=True)
    assert y_std.shape == y_pred.shape == (4, 2)
    restored = pickle.loads(pickle.dumps(reg))
    np.testing.assert_allclose(restored.predict(X[:4], return_std=True)[1], y_std)
    assert np.isfinite(reg.log_evidence_) and 0 < reg.gamma_ < 3 * 4 + 4 * 2


def test_std_without_bayesian_several_outputs():
    X, y = _linear_data()
    Y = np.column_stack([y, 2 * y + 1])
    reg = LMRegressor(
        hidden=(4,), alpha=1e-3, bayesian=False, dtype="float64", random_state=0
    )
    reg.fit(X, Y)
    y_pred, y_std = reg.predict(X[:5], return_std=True)
    assert y_std.shape == y_pred.shape == (5, 2)
    assert np.all(np.isfinite(y_std)) and np.all(y_std > 0)
    # The training data are not pickled: refused after unpickling.
    with pytest.raises(ValueError, match="training data"):
        pickle.loads(pickle.dumps(reg)).predict(X[:5], return_std=True)


def test_std_singular_warns_inf():
    # More weights than residuals and no penalty: A is singular.
    X, y = _linear_data(n=8)
    reg = LMRegressor(
        hidden=(5,), alpha=0.0, bayesian=False, dtype="float64", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y)
    with pytest.warns(CovarianceWarning, match="could not be estimated"):
        _, y_std = reg.predict(X, return_std=True)
    assert np.all(np.isinf(y_std))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"solver": "cg"}, "solver='cg'"),
        ({"form": "gram"}, "form='gram'"),
        ({"loss": "binary_crossentropy"}, "loss="),
    ],
)
def test_step_config_refuses(options, match):
    with pytest.raises(ValueError, match=match):
        StepConfig(bayesian=True, **options)


def _model(dtype="float32"):
    return keras.Sequential(
        [
            keras.Input((1,), dtype=dtype),
            keras.layers.Dense(3, "tanh", dtype=dtype),
            keras.layers.Dense(1, dtype=dtype),
        ]
    )


def test_trainer_refuses_mini_batches_and_train_step():
    x = np.linspace(-1, 1, 20)[:, None]
    trainer = Trainer(_model(), bayesian=True)
    with pytest.raises(ValueError, match="batch_size=5"):
        trainer.fit(x, x**2, batch_size=5)
    with pytest.raises(ValueError, match="train_step"):
        trainer.train_step(x, x**2)
    with pytest.raises(ValueError, match="LMModel"):
        LMModel(_model()).compile(loss="mse", bayesian=True)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"solver": "cg"}, "solver='cg'"),
        ({"early_stopping": True}, "early_stopping=True"),
        ({"batch_size": 5}, "batch_size=5"),
        ({"loss": "reduced_outputs_mse"}, "loss="),
    ],
)
def test_regressor_refuses(params, match):
    X, y = _linear_data(n=20)
    with pytest.raises(ValueError, match=match):
        LMRegressor(hidden=(2,), bayesian=True, **params).fit(X, y)


def test_trainer_records_and_traces_once():
    x = np.linspace(-1, 1, 40)[:, None]
    y = np.sin(3 * x) + 0.05 * np.cos(40 * x)
    # float64, for the finite-difference reference below.
    trainer = Trainer(_model("float64"), bayesian=True)
    history = trainer.fit(x, y, epochs=6)
    alphas = history.history["alpha"]
    assert len(alphas) == 6 and len(set(alphas)) > 1  # re-estimated each epoch
    state = trainer.bayesian
    assert state.noise_variance == 1 / state.beta
    assert np.isfinite(state.gamma) and np.isfinite(state.log_evidence)
    # Each epoch's update took the normal matrix its step formed at the
    # step's start; after the last epoch that update is redone with the one
    # at the final weights: the state is the evidence there, from the
    # hyperparameters the last step used.
    jac = model_jacobian(trainer.model, x)[:, 0, :]
    mask = bayesian_module.penalty_mask(trainer.fn)
    w = flat_weights(trainer.model)
    e_d = 0.5 * np.sum((forward(trainer.model, x) - y) ** 2)
    e_w = 0.5 * np.sum(mask * w**2)
    h = history.history
    expected = bayesian_module.evidence(
        jac.T @ jac, mask, e_d, e_w, x.shape[0], h["alpha"][-2], h["beta"][-2]
    )
    np.testing.assert_allclose(state.normal, jac.T @ jac, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        [state.alpha, state.beta, state.gamma, state.log_evidence],
        [expected.alpha, expected.beta, expected.gamma, expected.log_evidence],
        rtol=1e-5,
    )
    # The history's last record holds these final values.
    assert (alphas[-1], h["gamma"][-1]) == (state.alpha, state.gamma)
    # The L2 strength is a graph input: one trace for every epoch, and the
    # normal pass of the evidence is traced once too.
    (compiled,) = trainer._compiled.values()
    traced = compiled.step_variables.function.experimental_get_tracing_count()
    assert traced == 1
    assert compiled.normal.function.experimental_get_tracing_count() == 1
    # A second fit of a same-shaped model reuses both graphs.
    again = Trainer(_model("float64"), bayesian=True)
    again.fit(x, y, epochs=2)
    (shared,) = again._compiled.values()
    assert shared is compiled
    assert compiled.normal.function.experimental_get_tracing_count() == 1
    # Steps without Bayesian regularization keep their signature.
    plain = Trainer(_model())
    plain.fit(x, y, epochs=1)
    (compiled,) = plain._compiled.values()
    specs = compiled.step.function.input_signature
    assert len(specs) == 6
    assert "alpha" not in plain.fit(x, y, epochs=1).history


# -- bayesian="auto" -------------------------------------------------------------
def _weights_equal(a, b):
    pairs = zip(a.model_.get_weights(), b.model_.get_weights(), strict=True)
    return all(np.array_equal(u, v) for u, v in pairs)


def _quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.mark.parametrize("n, on", [(27, True), (28, False)])
def test_auto_threshold_is_four_residuals_per_weight(n, on):
    # 1-2-1 network: (1 + 1) * 2 + (2 + 1) * 1 = 7 weights, threshold 28.
    X = np.linspace(-1, 1, n)[:, None]
    y = np.sin(3 * X[:, 0])
    params = dict(hidden=(2,), max_iter=5, dtype="float64", random_state=0)
    auto = _quiet(LMRegressor(**params), X, y)
    explicit = _quiet(LMRegressor(**params, bayesian=on), X, y)
    assert auto.bayesian_ is on and explicit.bayesian_ is on
    assert _weights_equal(auto, explicit)
    assert hasattr(auto, "alpha_") is on


def test_auto_counts_outputs():
    # 1-2-2 network: (1 + 1) * 2 + (2 + 1) * 2 = 10 weights, threshold 40
    # residuals: 19 samples (38 residuals) are below it, 20 (40) are not.
    X = np.linspace(-1, 1, 26)[:, None]
    Y = np.column_stack([np.sin(3 * X[:, 0]), np.cos(3 * X[:, 0])])
    params = dict(hidden=(2,), max_iter=3, random_state=0)
    assert _quiet(LMRegressor(**params), X[:19], Y[:19]).bayesian_
    assert not _quiet(LMRegressor(**params), X[:20], Y[:20]).bayesian_


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "cg"},
        {"early_stopping": True},
        {"batch_size": 5},
        {"loss": "reduced_outputs_mse"},
        {"hidden": (400,)},  # 1201 weights: solver="auto" is conjugate gradients
    ],
)
def test_auto_is_off_where_bayesian_cannot_be_on(params):
    X, y = _linear_data(n=30)
    options = {"hidden": (3,), "max_iter": 3, "random_state": 0, **params}
    auto = _quiet(LMRegressor(**options), X, y)
    explicit = _quiet(LMRegressor(**options, bayesian=False), X, y)
    assert auto.bayesian_ is False and not hasattr(auto, "alpha_")
    assert _weights_equal(auto, explicit)


def test_auto_is_off_for_partial_fit():
    # The classifier's "auto": tests/test_bayesian_classification.py.
    X, y = _linear_data(n=20)
    reg = LMRegressor(hidden=(2,), random_state=0).partial_fit(X, y)
    assert reg.bayesian_ is False


def test_refit_without_bayesian_drops_its_attributes():
    X, y = _linear_data(n=30)
    reg = _quiet(LMRegressor(hidden=(2,), bayesian=True, random_state=0), X, y)
    assert np.all(np.isfinite(reg.alpha_)) and reg.gammas_.shape == (3,)
    _quiet(reg.set_params(bayesian=False), X, y)
    for name in ("alpha_", "noise_variance_", "gamma_", "gammas_", "log_evidence_"):
        assert not hasattr(reg, name)


def test_restarts_keep_the_start_with_the_highest_evidence():
    X, y = _linear_data(n=40)
    params = dict(hidden=(3,), bayesian=True, max_iter=30, random_state=0)
    single = _quiet(LMRegressor(**params), X, y)
    est = _quiet(LMRegressor(**params, n_init=3), X, y)
    # Scores are log evidences of the standardised targets: the fitted one
    # plus N ln s (one output).
    shift = len(y) * np.log(np.std(y))
    assert est.best_init_ == int(np.argmax(est.init_scores_))
    np.testing.assert_allclose(max(est.init_scores_), est.log_evidence_ + shift)
    np.testing.assert_allclose(est.init_scores_[0], single.log_evidence_ + shift)


def test_predict_std_traces_once_per_architecture():
    from sklearn_lm.engine import covariance

    X, y, reg = _tiny_fit()
    plain = LMRegressor(hidden=(3,), bayesian=False, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(X, y)
    first = [reg.predict(X[:5], return_std=True)[1]]
    for n in range(6, 12):  # batches of new sizes, repeated calls
        first.append(reg.predict(X[:n], return_std=True)[1])
        plain.predict(X[:n], return_std=True)
    # The same standard deviations, whatever the batch.
    np.testing.assert_allclose(first[-1][:5], first[0], rtol=1e-12)
    passes = covariance._PASSES.values()
    counts = [f.experimental_get_tracing_count() for f, _ in passes]
    # The variance pass and the normal-matrix pass, each traced at most twice
    # (a fixed shape, then one with the batch size unknown).
    assert len(counts) >= 2 and max(counts) <= 2
