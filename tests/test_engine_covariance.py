"""Covariance of the weights against curve_fit and NIST's certified values."""

import warnings

import keras
import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, curve_fit

from sklearn_lm.engine import Trainer
from sklearn_lm.engine.covariance import CovarianceWarning, parameter_covariance


class Formula(keras.layers.Layer):
    """``y = f(b, x)`` with the parameters ``b`` as one float64 weight vector."""

    def __init__(self, formula, start, **kwargs):
        super().__init__(dtype="float64", **kwargs)
        self.formula, self.start = formula, np.asarray(start, dtype=np.float64)

    def build(self, input_shape):
        self.b = self.add_weight(shape=self.start.shape, initializer="zeros")
        self.b.assign(self.start)

    def call(self, x):
        b = [self.b[i] for i in range(self.start.shape[0])]
        return keras.ops.expand_dims(self.formula(b, x[:, 0], keras.ops), -1)


def _function(formula, b):
    inputs = keras.Input((1,), dtype="float64")
    return Trainer(keras.Model(inputs, Formula(formula, b)(inputs))).fn


def _decay(b, t, xp):
    return b[0] * xp.exp(-b[1] * t) + b[2]


def _decay_jacobian(t, *b):
    e = np.exp(-b[1] * t)
    return np.stack([e, -b[0] * t * e, np.ones_like(t)], axis=1)


@pytest.fixture
def decay_data():
    rng = np.random.default_rng(1)
    t = np.linspace(0.0, 4.0, 40)
    sigma = 0.05 * (1.0 + rng.uniform(size=t.size))
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + sigma * rng.standard_normal(t.size)
    return t, y, sigma


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("absolute_sigma", [False, True])
def test_matches_curve_fit(decay_data, weighted, absolute_sigma):
    t, y, sigma = decay_data
    # Tight tolerances: pcov comes from the Jacobian of MINPACK's last step.
    popt, pcov = curve_fit(
        lambda t, *b: _decay(b, t, np), t, y, p0=[1.0, 1.0, 0.0],
        sigma=sigma if weighted else None, absolute_sigma=absolute_sigma,
        jac=_decay_jacobian, method="lm", ftol=1e-15, xtol=1e-15, gtol=1e-15,
    )  # fmt: skip
    fn = _function(_decay, popt)
    cov = parameter_covariance(
        fn, "mse", t[:, None], y,
        sample_weight=sigma**-2 if weighted else None, absolute_sigma=absolute_sigma,
    )  # fmt: skip
    np.testing.assert_allclose(cov.covariance, pcov, rtol=1e-9)
    np.testing.assert_allclose(cov.standard_errors, np.sqrt(np.diag(pcov)), rtol=1e-9)
    assert cov.dof == t.size - 3
    residuals = (_decay(popt, t, np) - y) / (sigma if weighted else 1.0)
    np.testing.assert_allclose(cov.ssr, residuals @ residuals, rtol=1e-12)
    expected = 1.0 if absolute_sigma else cov.ssr / cov.dof
    assert cov.sigma2 == pytest.approx(expected, rel=1e-12)


def test_chunks_do_not_change_the_result(decay_data):
    t, y, sigma = decay_data
    fn = _function(_decay, [2.4, 1.2, 0.4])
    whole = parameter_covariance(fn, "mse", t[:, None], y, sigma**-2)
    chunked = parameter_covariance(fn, "mse", t[:, None], y, sigma**-2, chunk_size=7)
    np.testing.assert_allclose(chunked.covariance, whole.covariance, rtol=1e-12)


def _unused_weight(b, t, xp):
    return b[0] * xp.exp(-b[1] * t) + 0.0 * b[2]


def test_singular_is_inf_with_a_warning_like_curve_fit(decay_data):
    t, y, _ = decay_data
    fn = _function(_unused_weight, [2.5, 1.3, 7.0])
    with pytest.warns(CovarianceWarning, match="rank 2 of 3"):
        cov = parameter_covariance(fn, "mse", t[:, None], y)
    assert np.all(np.isinf(cov.covariance)) and np.all(np.isinf(cov.standard_errors))
    with pytest.warns(OptimizeWarning, match="could not be estimated"):
        _, pcov = curve_fit(
            lambda t, *b: _unused_weight(b, t, np), t, y, p0=[1.0, 1.0, 7.0]
        )
    assert np.all(np.isinf(pcov))


def test_too_few_residuals_is_inf_unless_absolute(decay_data):
    t, y, _ = decay_data
    fn = _function(_decay, [2.5, 1.3, 0.5])
    with pytest.warns(CovarianceWarning, match="no more residuals"):
        cov = parameter_covariance(fn, "mse", t[:3, None], y[:3])
    assert np.all(np.isinf(cov.covariance))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cov = parameter_covariance(fn, "mse", t[:3, None], y[:3], absolute_sigma=True)
    assert np.all(np.isfinite(cov.covariance))


def test_logistic_regression_is_the_inverse_fisher_information():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    y = (x @ [1.0, -2.0] + 0.3 > rng.logistic(size=200)).astype(np.float64)
    model = keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(1, "sigmoid", dtype="float64"),
        ]
    )
    model.set_weights([np.array([[0.8], [-1.5]]), np.array([0.2])])
    cov = parameter_covariance(Trainer(model, "binary_crossentropy").fn,
                               "binary_crossentropy", x, y)  # fmt: skip
    design = np.hstack([x, np.ones((200, 1))])  # weights: kernel, then bias
    p = 1.0 / (1.0 + np.exp(-(design @ [0.8, -1.5, 0.2])))
    fisher = design.T @ (design * (p * (1.0 - p))[:, None])
    np.testing.assert_allclose(cov.covariance, np.linalg.inv(fisher), rtol=1e-9)
    assert cov.sigma2 == 1.0


def test_bad_arguments(decay_data):
    t, y, _ = decay_data
    fn = _function(_decay, [2.5, 1.3, 0.5])
    with pytest.raises(ValueError, match="sample_weight"):
        parameter_covariance(fn, "mse", t[:, None], y, -np.ones_like(t))
    with pytest.raises(ValueError, match="chunk_size=0"):
        parameter_covariance(fn, "mse", t[:, None], y, chunk_size=0)
    with pytest.raises(TypeError, match="absolute_sigma=1"):
        parameter_covariance(fn, "mse", t[:, None], y, absolute_sigma=1)


@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09"])
def test_certified_standard_deviations(name):
    from benchmarks import nist

    problem = nist.load(name)
    fn = Trainer(nist.keras_model(problem, problem.certified)).fn
    cov = parameter_covariance(fn, "mse", problem.x, problem.y)
    assert nist.log_relative_error(cov.standard_errors, problem.certified_sd) >= 4
    assert cov.ssr == pytest.approx(problem.certified_rss, rel=1e-8)
    assert cov.dof == problem.y.size - problem.n_params


def _spd(n, log_condition, seed):
    """A symmetric positive definite matrix with a chosen condition number and
    badly scaled rows and columns."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, -log_condition, n)) @ q.T
    d = np.logspace(-3, 3, n)
    return d[:, None] * a * d[None, :]


@pytest.mark.parametrize(
    "n, log_condition", [(40, 2), (120, 6), (40, 11)], ids=["cholesky", "cho-6", "eigh"]
)
def test_scaled_inverse_is_the_inverse(n, log_condition):
    # Well-conditioned matrices take the Cholesky path, the kappa = 1e11 one
    # the eigendecomposition; both must agree with a plain inverse in
    # extended precision terms: A X = I to the accuracy kappa * eps allows.
    from sklearn_lm.engine.covariance import _scaled_inverse

    a = _spd(n, log_condition, seed=n)
    before = a.copy()
    inverse, rank = _scaled_inverse(a, tol=np.finfo(np.float64).eps * n)
    assert rank == n
    np.testing.assert_array_equal(a, before)  # the input is not overwritten
    np.testing.assert_array_equal(inverse, inverse.T)
    d = np.sqrt(np.diag(a))
    # Residual of the unit-diagonal system, where the bound kappa * eps holds.
    residual = (a / np.outer(d, d)) @ (inverse * np.outer(d, d)) - np.eye(n)
    assert np.max(np.abs(residual)) < 10.0**log_condition * n * 1e-15


def test_scaled_inverse_rejects_a_singular_matrix():
    from sklearn_lm.engine.covariance import _scaled_inverse

    rng = np.random.default_rng(3)
    j = rng.standard_normal((10, 25))
    inverse, rank = _scaled_inverse(j.T @ j, tol=np.finfo(np.float64).eps * 25)
    assert inverse is None
    assert rank == np.linalg.matrix_rank(j)
