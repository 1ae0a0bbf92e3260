"""Bayesian regularization of the classifier and its moderated probabilities.

References: NumPy implementations of the evidence framework for
classification (MacKay 1992) with the Jacobian of the logits by central
differences, the stationarity conditions of the penalised cross-entropy,
scikit-learn's ``LogisticRegression`` (the same penalised likelihood for
``hidden=()``), and the refusals of what is not supported.
"""

import contextlib
import io
import pickle
import warnings

import numpy as np
import pytest
from _reference import flat_weights, model_jacobian
from scipy.linalg import null_space
from scipy.special import expit, log_softmax, softmax
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMClassifier
from sklearn_lm.engine import Status, StepConfig, Trainer, losses, predictive
from sklearn_lm.engine import bayesian as bayesian_module
from sklearn_lm.network import build_network, forward


def _data(kind, n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    if kind == "binary":
        y = (X[:, 0] - 0.5 * X[:, 1] + 0.8 * rng.normal(size=n) > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(X[:, 0] + 0.7 * rng.normal(size=n), [-0.5, 0.5])
    else:  # multilabel
        noise = 0.8 * rng.normal(size=(n, 2))
        y = (X @ np.array([[1.0, 0.3], [-0.5, 1.0]]) + noise > 0).astype(int)
    return X, y


def _targets(clf, y):
    """One-hot (softmax) or 0/1 (sigmoid) targets shaped like the logits."""
    if clf._output_kind == "softmax":
        return np.eye(len(clf.classes_))[np.searchsorted(clf.classes_, y)]
    return np.asarray(y, float).reshape(len(y), -1)


class _Reference:
    """The evidence framework for classification, in NumPy."""

    def __init__(self, clf, X, y, sample_weight=None):
        self.softmax = clf._output_kind == "softmax"
        z = forward(clf.model_, X)
        t = _targets(clf, y)
        s = np.ones(len(X)) if sample_weight is None else sample_weight
        s = s * len(s) / s.sum()  # the estimator's relative weights
        if self.softmax:
            p = softmax(z, axis=1)
            ce = -np.sum(t * log_softmax(z, axis=1), axis=1)
            lam = np.einsum("ij,jk->ijk", p, np.eye(p.shape[1]))
            lam -= p[:, :, None] * p[:, None, :]
        else:
            p = expit(z)
            ce = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=1)
            lam = np.einsum("ij,jk->ijk", p * (1 - p), np.eye(p.shape[1]))
        jac = model_jacobian(clf.model_, X)
        self.ce_sum = float(np.sum(s * ce))
        self.normal = np.einsum("i,iap,iab,ibq->pq", s, jac, lam, jac)
        # Gradient of the summed cross-entropy: J^T S (p - t).
        self.gradient = np.einsum("i,iap,ia->p", s, jac, p - t)
        self.w = flat_weights(clf.model_)
        k = z.shape[1]
        self.mask = np.ones(self.w.size)
        self.mask[-k:] = 0.0  # the output biases
        # A softmax does not see a shift of every output bias: the evidence
        # is that of the weights orthogonal to it.
        self.shift = None
        basis = np.eye(self.w.size)
        if self.softmax:
            self.shift = np.zeros(self.w.size)
            self.shift[-k:] = 1 / np.sqrt(k)
            basis = null_space(self.shift[None, :])
        self.basis = basis
        self.e_w = 0.5 * float(np.sum(self.mask * self.w**2))

    def reduced(self, alpha):
        q = self.basis
        return q.T @ (self.normal + alpha * np.diag(self.mask)) @ q

    def gamma(self, alpha):
        q = self.basis
        inverse = q @ np.linalg.inv(self.reduced(alpha)) @ q.T
        return self.mask.sum() - alpha * np.sum(self.mask * np.diag(inverse))

    def log_evidence(self, alpha):
        return (
            -self.ce_sum
            - alpha * self.e_w
            - 0.5 * np.linalg.slogdet(self.reduced(alpha))[1]
            + 0.5 * self.mask.sum() * np.log(alpha)
        )

    def covariance(self, alpha):
        q = self.basis
        return q @ np.linalg.inv(self.reduced(alpha)) @ q.T


def _fit(kind, hidden=(3,), sample_weight=None, **params):
    X, y = _data(kind)
    options = dict(
        hidden=hidden,
        bayesian=True,
        dtype="float64",
        max_iter=40,
        random_state=0,
    )
    clf = LMClassifier(**{**options, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y, sample_weight=sample_weight)
    return X, y, clf


@pytest.fixture(scope="module", params=["binary", "multiclass"])
def fitted(request):
    return _fit(request.param, moderate_proba=True)


def test_evidence_matches_numpy(fitted):
    X, y, clf = fitted
    ref = _Reference(clf, X, y)
    state = clf._trainer.bayesian
    assert not state.estimate_beta and state.beta == 1.0
    # The generalised Gauss-Newton matrix of the summed cross-entropy.
    np.testing.assert_allclose(state.normal, ref.normal, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(bayesian_module.penalty_mask(state_fn(clf)), ref.mask)
    if ref.shift is None:
        assert state.shift is None
    else:
        np.testing.assert_allclose(state.shift, ref.shift)
    alpha = 0.7
    got = bayesian_module.evidence(
        ref.normal,
        ref.mask,
        ref.ce_sum,
        ref.e_w,
        123,  # the number of residuals does not enter
        alpha,
        1.0,
        estimate_beta=False,
        shift=state.shift,
    )
    assert got.ok and got.beta == 1.0
    np.testing.assert_allclose(got.gamma, ref.gamma(alpha), rtol=1e-9)
    np.testing.assert_allclose(got.log_evidence, ref.log_evidence(alpha), rtol=1e-9)
    np.testing.assert_allclose(got.alpha, ref.gamma(alpha) / (2 * ref.e_w), rtol=1e-9)
    # The fitted attributes: E_D is the summed cross-entropy at the weights.
    np.testing.assert_allclose(
        bayesian_module.evidence(
            state.normal,
            state.mask,
            ref.ce_sum,
            ref.e_w,
            0,
            clf.alpha_,
            1.0,
            estimate_beta=False,
            shift=state.shift,
        ).log_evidence,
        ref.log_evidence(clf.alpha_),
        rtol=1e-7,
    )
    assert 0 < clf.gamma_ < ref.mask.sum() and np.isfinite(clf.log_evidence_)
    history = clf.history_.history
    for name in ("alpha", "gamma", "log_evidence"):
        assert len(history[name]) == clf.n_iter_
    assert "beta" not in history and "noise_variance" not in history
    assert history["alpha"][-1] == clf.alpha_


def state_fn(clf):
    return clf._trainer.fn


def test_logit_variance_gradient_matches_finite_differences(fitted):
    X, _, clf = fitted
    fn = state_fn(clf)
    v = np.random.default_rng(2).normal(size=fn.n_params)
    got = predictive.predictive_variance(fn, X, np.outer(v, v))
    directional = model_jacobian(clf.model_, X) @ v
    assert got.shape == directional.shape == (len(X), clf.n_outputs_)
    np.testing.assert_allclose(got, directional**2, rtol=1e-6, atol=1e-12)


def test_moderated_probabilities_match_numpy(fitted):
    X, y, clf = fitted
    ref = _Reference(clf, X, y)
    X_test = np.random.default_rng(5).normal(scale=2.0, size=(15, 2))
    mu = forward(clf.model_, X_test)
    g = model_jacobian(clf.model_, X_test)
    variance = np.einsum("iap,pq,iaq->ia", g, ref.covariance(clf.alpha_), g)
    kappa = 1 / np.sqrt(1 + np.pi * variance / 8)
    if ref.softmax:
        expected = softmax(kappa * mu, axis=1)
    else:
        p = expit(kappa * mu).ravel()
        expected = np.column_stack([1 - p, p])
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-12)
    # predict is the argmax of the (moderated) probabilities.
    np.testing.assert_array_equal(
        clf.predict(X_test), clf.classes_[np.argmax(proba, axis=1)]
    )
    # Moderation moves every probability towards uniform (for a sigmoid,
    # never across 1/2).
    plain = clf.set_params(moderate_proba=False).predict_proba(X_test)
    clf.set_params(moderate_proba=True)
    if not ref.softmax:
        assert np.all(np.abs(proba - 0.5) <= np.abs(plain - 0.5) + 1e-15)
        assert np.any(np.abs(proba - 0.5) < np.abs(plain - 0.5) - 1e-3)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X_test), proba, rtol=1e-12)


@pytest.mark.parametrize(
    "kind, weighted",
    [("binary", False), ("binary", True), ("multiclass", False), ("multilabel", False)],
)
def test_logistic_regression_stationary_and_fixed_point(kind, weighted):
    # hidden=(): the fit minimises CE_sum + alpha E_W (kernels penalised,
    # output biases free) with alpha at the fixed point alpha = gamma / 2 E_W.
    X, y = _data(kind)
    sw = None
    if weighted:
        sw = np.random.default_rng(3).uniform(0.2, 3.0, size=len(y))
    _, _, clf = _fit(
        kind, hidden=(), sample_weight=sw, max_iter=60, n_iter_no_change=np.inf
    )
    ref = _Reference(clf, X, y, sw)
    alpha = clf.alpha_
    gradient = ref.gradient + alpha * ref.mask * ref.w
    scale = np.max(np.abs(ref.gradient)) + alpha * np.max(np.abs(ref.w))
    assert np.max(np.abs(gradient)) < 1e-7 * scale
    np.testing.assert_allclose(alpha, ref.gamma(alpha) / (2 * ref.e_w), rtol=1e-7)
    np.testing.assert_allclose(clf.gamma_, ref.gamma(alpha), rtol=1e-7)
    np.testing.assert_allclose(clf.log_evidence_, ref.log_evidence(alpha), rtol=1e-7)
    if kind == "binary":
        # LogisticRegression minimises C CE_sum + |coef|^2 / 2: C = 1 / alpha.
        s = np.ones(len(y)) if sw is None else sw * len(sw) / sw.sum()
        logistic = LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=10_000)
        logistic.fit(X, y, sample_weight=s)
        kernel, bias = clf.model_.get_weights()
        np.testing.assert_allclose(kernel.ravel(), logistic.coef_.ravel(), rtol=1e-5)
        np.testing.assert_allclose(bias, logistic.intercept_, rtol=1e-5)


def test_trainer_cross_entropy_records_without_beta():
    X, y = _data("multiclass")
    model = build_network(2, 3, hidden=(3,), activation="tanh", dtype="float64", seed=0)
    trainer = Trainer(
        model,
        loss=losses.get("sparse_categorical_crossentropy", from_logits=True),
        bayesian=True,
    )
    history = trainer.fit(X, y, epochs=5)
    assert set(history.history) >= {"alpha", "gamma", "log_evidence"}
    assert "beta" not in history.history
    state = trainer.bayesian
    # The step's L2 strength: alpha / (2 N c) with c = 1 for the softmax.
    assert state.l2(len(X)) == pytest.approx(state.alpha / (2 * len(X)))


@pytest.mark.parametrize(
    "loss",
    [
        losses.get("binary_crossentropy"),  # probabilities, not logits
        losses.get("categorical_crossentropy", from_logits=True, gauss_newton=False),
        losses.get("squared_categorical_crossentropy", from_logits=True),
    ],
)
def test_step_config_refuses_other_losses(loss):
    with pytest.raises(ValueError, match="loss="):
        StepConfig(bayesian=True, loss=loss)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"solver": "cg"}, "solver='cg'"),
        ({"early_stopping": True}, "early_stopping=True"),
        ({"batch_size": 5}, "batch_size=5"),
        ({"loss": "categorical_mse"}, "loss='categorical_mse'"),
        ({"loss": "squared_categorical_crossentropy"}, "loss='squared_categ"),
        ({"bayesian": False, "moderate_proba": True}, "moderate_proba=True needs"),
    ],
)
def test_classifier_refuses(params, match):
    X, y = _data("binary", n=20)
    params = {"bayesian": True, **params}
    with pytest.raises(ValueError, match=match):
        LMClassifier(hidden=(2,), **params).fit(X, y)


def test_moderation_needs_a_bayesian_fit():
    X, y = _data("binary", n=20)
    clf = LMClassifier(hidden=(2,), max_iter=3, bayesian=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.set_params(moderate_proba=True)
    with pytest.raises(ValueError, match="fitted with bayesian=True"):
        clf.predict_proba(X)


# -- bayesian="auto" -------------------------------------------------------------
def _quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _weights_equal(a, b):
    pairs = zip(a.model_.get_weights(), b.model_.get_weights(), strict=True)
    return all(np.array_equal(u, v) for u, v in pairs)


# 2-2-k networks have (2 + 1) * 2 + (2 + 1) * k weights: 9 for two classes
# (one output: threshold 288 residuals, 288 samples), 15 for three classes
# (three outputs: 480 residuals, 160 samples), 12 for two labels (two
# outputs: 384 residuals, 192 samples).
@pytest.mark.parametrize(
    "kind, n, on",
    [
        ("binary", 287, True),
        ("binary", 288, False),
        ("multiclass", 159, True),
        ("multiclass", 160, False),
        ("multilabel", 191, True),
        ("multilabel", 192, False),
    ],
)
def test_auto_threshold_is_32_residuals_per_weight(kind, n, on):
    X, y = _data(kind, n=n)
    params = dict(hidden=(2,), max_iter=3, dtype="float64", random_state=0)
    auto = _quiet(LMClassifier(**params), X, y)
    explicit = _quiet(LMClassifier(**params, bayesian=on), X, y)
    assert auto.bayesian_ is on and explicit.bayesian_ is on
    assert _weights_equal(auto, explicit)
    assert hasattr(auto, "alpha_") is on


def test_auto_is_off_on_large_data():
    # The default network (hidden=(20,)) on two features has 81 weights:
    # 2592 samples and more train exactly as with bayesian=False.
    X, y = _data("binary", n=2592)
    params = dict(max_iter=3, random_state=0)
    auto = _quiet(LMClassifier(**params), X, y)
    plain = _quiet(LMClassifier(**params, bayesian=False), X, y)
    assert auto.bayesian_ is False and not hasattr(auto, "alpha_")
    assert _weights_equal(auto, plain)
    assert auto.n_iter_ == plain.n_iter_


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "cg"},
        {"early_stopping": True},
        {"batch_size": 5},
        {"loss": "categorical_mse"},
        {"loss": "squared_categorical_crossentropy"},
        {"hidden": (400,)},  # 1601 weights: solver="auto" is conjugate gradients
    ],
)
def test_auto_is_off_where_bayesian_cannot_be_on(params):
    X, y = _data("binary", n=30)
    options = {"hidden": (2,), "max_iter": 3, "random_state": 0, **params}
    auto = _quiet(LMClassifier(**options), X, y)
    explicit = _quiet(LMClassifier(**options, bayesian=False), X, y)
    assert auto.bayesian_ is False and not hasattr(auto, "alpha_")
    assert _weights_equal(auto, explicit)


def test_auto_is_off_for_partial_fit():
    X, y = _data("binary", n=30)
    clf = LMClassifier(hidden=(2,), random_state=0).partial_fit(X, y, classes=[0, 1])
    assert clf.bayesian_ is False and not hasattr(clf, "alpha_")


def test_auto_moderates_only_a_bayesian_fit():
    params = dict(
        hidden=(2,), max_iter=5, dtype="float64", moderate_proba=True, random_state=0
    )
    # 60 samples of three classes: 180 residuals, below the threshold (480).
    X, y = _data("multiclass", n=60)
    auto = _quiet(LMClassifier(**params), X, y)
    explicit = _quiet(LMClassifier(**params, bayesian=True), X, y)
    assert auto.bayesian_
    proba = auto.predict_proba(X)
    np.testing.assert_allclose(proba, explicit.predict_proba(X), rtol=1e-12)
    assert not np.allclose(proba, softmax(forward(auto.model_, X), axis=1))
    # 200 samples (600 residuals): "auto" is off, the probabilities are the
    # plain softmax of the logits, without an error.
    X, y = _data("multiclass", n=200)
    auto = _quiet(LMClassifier(**params), X, y)
    assert not auto.bayesian_
    np.testing.assert_allclose(
        auto.predict_proba(X), softmax(forward(auto.model_, X), axis=1), rtol=1e-10
    )


def test_training_stops_when_the_log_evidence_levels_off():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LMClassifier(random_state=0, verbose=1)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        clf.fit(X, y)
    assert clf.bayesian_ and clf.stop_reason_ is Status.NO_IMPROVEMENT
    tol = clf.tol * X.shape[0]  # per residual; one logit per sample
    message = clf.history_.stop_message
    assert message == (
        f"The log evidence did not rise by at least {tol:.3g} nats for 2 epochs."
    )
    assert message in out.getvalue()
    # The rule saw each record's log evidence; the last record was then
    # recomputed at the final weights, so check the one before it.
    evidence = clf.history_.history["log_evidence"]
    assert evidence[-2] < max(evidence[:-2]) + tol
