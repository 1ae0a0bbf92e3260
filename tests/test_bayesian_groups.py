"""Bayesian regularization with one weight precision per group of weights.

References: a NumPy implementation of the per-group evidence updates with
Jacobians by central differences, the single-``alpha`` path (equal for a
linear model, whose only group is the kernel), and MacKay's fixed point
``alpha_g = gamma_g / (2 E_W,g)`` recomputed in NumPy at the fitted weights.
"""

import warnings

import keras
import numpy as np
import pytest
from _reference import flat_weights, model_jacobian
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_lm import LMRegressor
from sklearn_lm.engine import StepConfig, Trainer
from sklearn_lm.engine import bayesian as bayesian_module
from sklearn_lm.network import forward

# Short fits (max_iter of a few epochs) are not converged on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = np.sin(3 * X[:, 0] + 1) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y


def _regressor(**params):
    options = dict(
        bayesian=True,
        bayesian_groups="layer",
        dtype="float64",
        max_iter=200,
        tol=1e-14,
        random_state=0,
    )
    return LMRegressor(**{**options, **params})


def _numpy_group_evidence(jac, mask, groups, e_d, w, m, alpha, beta):
    """gamma_g, alpha_g, beta and the log evidence, straight from the formulas."""
    per_weight = np.array([alpha[g] if g >= 0 else 0.0 for g in groups])
    a = beta * jac.T @ jac + np.diag(per_weight * mask)
    inv_diag = np.diag(np.linalg.inv(a))
    n_groups = len(alpha)
    gammas = np.array(
        [
            np.sum(groups == g) - alpha[g] * np.sum(inv_diag[groups == g])
            for g in range(n_groups)
        ]
    )
    e_w = np.array([0.5 * np.sum(w[groups == g] ** 2) for g in range(n_groups)])
    gamma = gammas.sum()
    log_evidence = (
        -beta * e_d
        - np.sum(alpha * e_w)
        - 0.5 * np.linalg.slogdet(a)[1]
        + sum(0.5 * np.sum(groups == g) * np.log(alpha[g]) for g in range(n_groups))
        + 0.5 * m * np.log(beta)
        - 0.5 * m * np.log(2 * np.pi)
    )
    return gammas, gammas / (2 * e_w), (m - gamma) / (2 * e_d), log_evidence


def test_groups_are_the_penalised_variables():
    X, y = _data()
    reg = _regressor(hidden=(3,), max_iter=2).fit(X, y)
    groups = bayesian_module.penalty_groups(reg._trainer.fn)
    # kernel 2x3, hidden bias 3, kernel 3x1, output bias (unpenalised).
    assert groups.tolist() == [0] * 6 + [1] * 3 + [2] * 3 + [-1]
    assert reg.alpha_.shape == reg.gammas_.shape == (3,)
    history = reg.history_.history
    for name in ("alpha_0", "alpha_1", "alpha_2", "gamma_0", "gamma_2"):
        assert len(history[name]) == reg.n_iter_
    assert "alpha" not in history


def test_group_evidence_matches_numpy():
    X, y = _data()
    reg = _regressor(hidden=(3,), max_iter=30).fit(X, y)
    state = reg._trainer.bayesian
    targets = reg._target_scaler.transform(y)
    jac = model_jacobian(reg.model_, X)[:, 0, :]
    np.testing.assert_allclose(state.normal, jac.T @ jac, rtol=1e-6, atol=1e-8)
    fn = reg._trainer.fn
    mask = bayesian_module.penalty_mask(fn)
    groups = bayesian_module.penalty_groups(fn)
    w = flat_weights(reg.model_)
    e_d = 0.5 * np.sum((forward(reg.model_, X) - targets) ** 2)
    e_w = np.array([0.5 * np.sum(w[groups == g] ** 2) for g in range(3)])
    m, alpha, beta = X.shape[0], np.array([0.7, 3.0, 0.2]), 20.0
    got = bayesian_module.evidence(
        jac.T @ jac, mask, e_d, e_w, m, alpha, beta, groups=groups
    )
    gammas, new_alpha, new_beta, log_evidence = _numpy_group_evidence(
        jac, mask, groups, e_d, w, m, alpha, beta
    )
    assert got.ok
    np.testing.assert_allclose(got.gammas, gammas, rtol=1e-10)
    np.testing.assert_allclose(got.gamma, gammas.sum(), rtol=1e-10)
    np.testing.assert_allclose(got.alpha, new_alpha, rtol=1e-10)
    np.testing.assert_allclose(got.beta, new_beta, rtol=1e-10)
    np.testing.assert_allclose(got.log_evidence, log_evidence, rtol=1e-10)


def test_failed_factorisation_keeps_the_hyperparameters():
    normal = -np.eye(3)  # A = -I + 0: not positive definite
    alpha = np.array([1.0, 2.0])
    got = bayesian_module.evidence(
        normal,
        np.array([1.0, 1.0, 0.0]),
        1.0,
        np.array([0.5, 0.5]),
        10,
        alpha,
        1.0,
        groups=np.array([0, 1, -1]),
    )
    assert not got.ok and np.isnan(got.gamma)
    np.testing.assert_array_equal(got.alpha, alpha)


def test_linear_model_equals_the_single_alpha():
    X, y = _data(n=40)
    single = _regressor(hidden=(), bayesian_groups="single").fit(X, y)
    grouped = _regressor(hidden=()).fit(X, y)
    assert grouped.alpha_.shape == (1,)
    np.testing.assert_allclose(grouped.alpha_[0], single.alpha_, rtol=1e-9)
    np.testing.assert_allclose(grouped.gammas_[0], single.gamma_, rtol=1e-9)
    for name in ("gamma_", "noise_variance_", "log_evidence_"):
        np.testing.assert_allclose(
            getattr(grouped, name), getattr(single, name), rtol=1e-9
        )
    np.testing.assert_allclose(
        flat_weights(grouped.model_), flat_weights(single.model_), rtol=1e-9, atol=1e-12
    )
    X_test = np.random.default_rng(1).uniform(-1, 1, size=(6, 2))
    np.testing.assert_allclose(
        grouped.predict(X_test, return_std=True),
        single.predict(X_test, return_std=True),
        rtol=1e-9,
    )


def test_fitted_model_is_at_the_fixed_point():
    X, y = _data(n=40, seed=2)
    reg = _regressor(hidden=(4,), max_iter=300, n_iter_no_change=np.inf).fit(X, y)
    fn = reg._trainer.fn
    mask = bayesian_module.penalty_mask(fn)
    groups = bayesian_module.penalty_groups(fn)
    s = reg._target_scaler.scale_[0]
    beta = s**2 / reg.noise_variance_
    jac = model_jacobian(reg.model_, X)[:, 0, :]
    w = flat_weights(reg.model_)
    e_d = 0.5 * np.sum((forward(reg.model_, X) - reg._target_scaler.transform(y)) ** 2)
    gammas, new_alpha, new_beta, _ = _numpy_group_evidence(
        jac, mask, groups, e_d, w, X.shape[0], reg.alpha_, beta
    )
    np.testing.assert_allclose(new_alpha, reg.alpha_, rtol=1e-4)
    np.testing.assert_allclose(new_beta, beta, rtol=1e-4)
    np.testing.assert_allclose(gammas, reg.gammas_, rtol=1e-4)
    # Predictive std with the per-group precisions, from NumPy.
    per_weight = np.array([reg.alpha_[g] if g >= 0 else 0.0 for g in groups])
    a = beta * jac.T @ jac + np.diag(per_weight)
    X_test = np.linspace(-1, 1, 10).reshape(5, 2)
    g = model_jacobian(reg.model_, X_test)[:, 0, :]
    expected = s * np.sqrt(1 / beta + np.sum(g @ np.linalg.inv(a) * g, axis=1))
    np.testing.assert_allclose(
        reg.predict(X_test, return_std=True)[1], expected, rtol=1e-4
    )


def test_step_input_is_one_strength_per_weight():
    x = np.linspace(-1, 1, 40)[:, None]
    y = np.sin(3 * x)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(3, "tanh"), keras.layers.Dense(1)]
    )
    trainer = Trainer(model, bayesian=True, bayesian_groups="layer")
    trainer.fit(x, y, epochs=3)
    l2 = trainer.bayesian.l2(40)
    assert l2.shape == (10,) and l2[-1] == 0.0
    # l2_j = alpha_g(j) / (beta N k) for the mean squared error.
    alpha, beta = trainer.bayesian.alpha, trainer.bayesian.beta
    np.testing.assert_allclose(l2[:3], alpha[0] / (beta * 40))
    np.testing.assert_allclose(l2[3:6], alpha[1] / (beta * 40))
    np.testing.assert_allclose(l2[6:9], alpha[2] / (beta * 40))
    signature = trainer._functions(*trainer._prepare(x, y, None)[:2]).step
    specs = signature.function.input_signature
    assert specs[-1].shape == (10,)
    single = Trainer(model, bayesian=True)
    specs = single._functions(*single._prepare(x, y, None)[:2]).step
    assert specs.function.input_signature[-1].shape == ()


def test_refusals():
    with pytest.raises(ValueError, match="bayesian_groups='layer'"):
        StepConfig(bayesian_groups="layer")
    with pytest.raises(ValueError, match="bayesian_groups must be"):
        StepConfig(bayesian=True, bayesian_groups="input")
    X, y = _data(n=10)
    with pytest.raises(InvalidParameterError, match="bayesian_groups"):
        LMRegressor(bayesian_groups="input").fit(X, y)
    # Without Bayesian regularization the groups are not used.
    reg = LMRegressor(
        hidden=(2,), bayesian=False, bayesian_groups="layer", max_iter=2
    ).fit(X, y)
    assert not hasattr(reg, "alpha_")


def test_a_group_without_weight_keeps_its_alpha():
    # Group 1's weights are all zero (E_W,1 = 0): its alpha_1 stays, group
    # 0's is re-estimated as gamma_0 / (2 E_W,0) (A = I here: diag(A^-1) =
    # 1 / (1 + alpha_g)).
    alpha = np.array([1.0, 2.0])
    got = bayesian_module.evidence(
        np.eye(3),
        np.array([1.0, 1.0, 0.0]),
        1.0,
        np.array([0.5, 0.0]),
        10,
        alpha,
        1.0,
        groups=np.array([0, 1, -1]),
    )
    assert got.ok
    np.testing.assert_allclose(got.gammas, [1 - 1 / 2, 1 - 2 / 3])
    np.testing.assert_allclose(got.alpha, [0.5 / (2 * 0.5), 2.0])


@pytest.mark.parametrize("pickled", [False, True])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_partial_fit_keeps_the_fitted_groups(kind, pickled):
    # partial_fit continues the fitted precisions: a changed bayesian_groups
    # is refused (also after a pickle round trip), while a fresh fit with
    # warm_start uses the new groups.
    import pickle

    from sklearn.datasets import load_iris, make_friedman1

    from sklearn_lm import LMClassifier

    if kind == "regressor":
        X, y = make_friedman1(60, random_state=0)
        cls = LMRegressor
    else:
        X, y = load_iris(return_X_y=True)
        cls = LMClassifier
    est = cls(
        hidden=(3,),
        bayesian=True,
        bayesian_groups="single",
        warm_start=True,
        max_iter=3,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    if pickled:
        est = pickle.loads(pickle.dumps(est))
    est.set_params(bayesian_groups="layer")
    with pytest.raises(ValueError, match="bayesian_groups='single'"):
        est.partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert np.shape(est.alpha_) == (3,)  # two kernels and the hidden biases
