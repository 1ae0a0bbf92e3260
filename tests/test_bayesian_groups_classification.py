"""Bayesian regularization of the classifier with one precision per layer.

References: the evidence framework for classification (MacKay 1992) with
one ``alpha_g`` per group of weights, recomputed in NumPy from the
generalised Gauss-Newton matrix of the summed cross-entropy (Jacobian of the
logits by central differences), the groups built by hand from the layer
shapes, the single-``alpha`` formulas for ``bayesian_groups="single"``, and
the single-``alpha`` fit itself for ``hidden=()`` (one group).
"""

import warnings

import numpy as np
import pytest
from _reference import flat_weights, model_jacobian
from scipy.linalg import null_space
from scipy.special import expit, log_softmax, softmax
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_lm import LMClassifier
from sklearn_lm.network import forward


def _data(kind, n=60, seed=0):
    # Nonlinear boundaries, so that no group of weights is pruned.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    if kind == "binary":
        y = np.sin(2 * X[:, 0] + 1) + X[:, 1] + 0.5 * rng.normal(size=n) > 0
        return X, y.astype(int)
    # Three classes in rings.
    r = X[:, 0] ** 2 + X[:, 1] ** 2 + 0.3 * rng.normal(size=n)
    return X, np.digitize(r, [0.8, 2.0])


def _fit(kind, **params):
    X, y = _data(kind)
    options = dict(
        hidden=(3,),
        bayesian=True,
        bayesian_groups="layer",
        dtype="float64",
        max_iter=200,
        tol=1e-12,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    clf = LMClassifier(**{**options, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return X, y, clf


def _layer_groups(model):
    """Group of each weight, from the layer shapes: every kernel and hidden
    bias vector its own group in order, the output bias -1."""
    groups, group = [], 0
    weights = model.get_weights()
    for i, w in enumerate(weights):
        if i == len(weights) - 1 and w.ndim == 1:
            groups.append(np.full(w.size, -1))
        else:
            groups.append(np.full(w.size, group))
            group += 1
    return np.concatenate(groups)


class _GroupEvidence:
    """MacKay's evidence for classification with per-group precisions, in NumPy."""

    def __init__(self, clf, X, y):
        z = forward(clf.model_, X)
        k = z.shape[1]
        if clf._output_kind == "softmax":
            t = np.eye(k)[np.searchsorted(clf.classes_, y)]
            p = softmax(z, axis=1)
            self.ce_sum = -float(np.sum(t * log_softmax(z, axis=1)))
            lam = np.einsum("ij,jk->ijk", p, np.eye(k)) - p[:, :, None] * p[:, None, :]
        else:
            t = np.asarray(y, float).reshape(len(y), -1)
            p = expit(z)
            self.ce_sum = -float(np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)))
            lam = np.einsum("ij,jk->ijk", p * (1 - p), np.eye(k))
        jac = model_jacobian(clf.model_, X)
        # Generalised Gauss-Newton matrix of the summed cross-entropy.
        self.normal = np.einsum("iap,iab,ibq->pq", jac, lam, jac)
        self.w = flat_weights(clf.model_)
        self.groups = _layer_groups(clf.model_)
        self.n_groups = int(self.groups.max()) + 1
        # A softmax does not see a shift of all output biases: the evidence
        # is that of the weights orthogonal to it.
        self.basis = np.eye(self.w.size)
        if k > 1:
            shift = np.zeros(self.w.size)
            shift[-k:] = 1.0
            self.basis = null_space(shift[None, :])
        self.counts = np.array([np.sum(self.groups == g) for g in range(self.n_groups)])
        self.e_w = np.array(
            [0.5 * np.sum(self.w[self.groups == g] ** 2) for g in range(self.n_groups)]
        )

    def _per_weight(self, alpha):
        alpha = np.broadcast_to(np.asarray(alpha, float), (self.n_groups,))
        return np.where(self.groups >= 0, alpha[np.maximum(self.groups, 0)], 0.0)

    def reduced(self, alpha):
        q = self.basis
        return q.T @ (self.normal + np.diag(self._per_weight(alpha))) @ q

    def covariance(self, alpha):
        q = self.basis
        return q @ np.linalg.inv(self.reduced(alpha)) @ q.T

    def gammas(self, alpha):
        """``gamma_g = n_g - alpha_g tr_g(A^-1)`` per group."""
        alpha = np.broadcast_to(np.asarray(alpha, float), (self.n_groups,))
        diagonal = np.diag(self.covariance(alpha))
        return np.array(
            [
                self.counts[g] - alpha[g] * np.sum(diagonal[self.groups == g])
                for g in range(self.n_groups)
            ]
        )

    def log_evidence(self, alpha):
        alpha = np.broadcast_to(np.asarray(alpha, float), (self.n_groups,))
        return (
            -self.ce_sum
            - np.sum(alpha * self.e_w)
            - 0.5 * np.linalg.slogdet(self.reduced(alpha))[1]
            + 0.5 * np.sum(self.counts * np.log(alpha))
        )


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_layer_precisions_match_numpy(kind):
    X, y, clf = _fit(kind, moderate_proba=True)
    ref = _GroupEvidence(clf, X, y)
    k = 1 if kind == "binary" else 3
    # kernel 2x3, hidden bias 3, kernel 3xk: three groups; output bias free.
    np.testing.assert_array_equal(
        ref.groups, [0] * 6 + [1] * 3 + [2] * (3 * k) + [-1] * k
    )
    assert clf.alpha_.shape == clf.gammas_.shape == (3,)
    assert np.all(clf.alpha_ > 0) and np.all(np.isfinite(clf.alpha_))
    history = clf.history_.history
    for name in ("alpha_0", "alpha_1", "alpha_2", "gamma_0", "gamma_2"):
        assert len(history[name]) == clf.n_iter_
    assert "alpha" not in history
    # The last update, at the final weights, from the precisions before it:
    # gamma_g = n_g - alpha_g tr_g(A^-1), alpha_g = gamma_g / (2 E_W,g).
    before = np.array([history[f"alpha_{g}"][-2] for g in range(3)])
    np.testing.assert_allclose(clf.gammas_, ref.gammas(before), rtol=1e-6)
    np.testing.assert_allclose(clf.alpha_, clf.gammas_ / (2 * ref.e_w), rtol=1e-9)
    np.testing.assert_allclose(clf.gamma_, clf.gammas_.sum(), rtol=1e-12)
    np.testing.assert_allclose(clf.log_evidence_, ref.log_evidence(before), rtol=1e-7)
    # Moderated probabilities with the per-group posterior A^-1.
    X_test = np.random.default_rng(5).normal(scale=2.0, size=(8, 2))
    g = model_jacobian(clf.model_, X_test)
    variance = np.einsum("iap,pq,iaq->ia", g, ref.covariance(clf.alpha_), g)
    mu = forward(clf.model_, X_test) / np.sqrt(1 + np.pi * variance / 8)
    if kind == "binary":
        expected = np.column_stack([1 - expit(mu[:, 0]), expit(mu[:, 0])])
    else:
        expected = softmax(mu, axis=1)
    np.testing.assert_allclose(clf.predict_proba(X_test), expected, rtol=1e-6)


def test_layer_precisions_reach_the_group_fixed_point():
    # Three classes: the fit converges (lambda reaches its maximum) to
    # alpha_g = gamma_g(alpha) / (2 E_W,g) for every group.
    X, y, clf = _fit("multiclass")
    ref = _GroupEvidence(clf, X, y)
    gammas = ref.gammas(clf.alpha_)
    np.testing.assert_allclose(gammas / (2 * ref.e_w), clf.alpha_, rtol=1e-4)
    np.testing.assert_allclose(gammas, clf.gammas_, rtol=1e-4)
    expected = ref.log_evidence(clf.alpha_)
    np.testing.assert_allclose(clf.log_evidence_, expected, rtol=1e-4)
    # The groups' precisions differ: one alpha is not this fixed point.
    assert np.ptp(np.log(clf.alpha_)) > 1.0


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_single_keeps_one_precision_at_its_fixed_point(kind):
    X, y, clf = _fit(kind, bayesian_groups="single")
    ref = _GroupEvidence(clf, X, y)
    assert isinstance(clf.alpha_, float) and not hasattr(clf, "gammas_")
    # One alpha for every penalised weight: gamma = n_w - alpha tr(P A^-1),
    # alpha = gamma / (2 E_W).
    gamma = ref.gammas(clf.alpha_).sum()
    np.testing.assert_allclose(clf.gamma_, gamma, rtol=1e-4)
    np.testing.assert_allclose(clf.alpha_, gamma / (2 * ref.e_w.sum()), rtol=1e-4)
    expected = ref.log_evidence(clf.alpha_)
    np.testing.assert_allclose(clf.log_evidence_, expected, rtol=1e-4)
    assert "alpha" in clf.history_.history and "alpha_0" not in clf.history_.history


def test_linear_model_has_one_group():
    # hidden=(): the kernel is the only group, the fit that of one alpha.
    X, y, grouped = _fit("binary", hidden=(), max_iter=60)
    _, _, single = _fit("binary", hidden=(), max_iter=60, bayesian_groups="single")
    assert grouped.alpha_.shape == grouped.gammas_.shape == (1,)
    np.testing.assert_allclose(grouped.alpha_[0], single.alpha_, rtol=1e-8)
    np.testing.assert_allclose(grouped.gammas_[0], single.gamma_, rtol=1e-8)
    np.testing.assert_allclose(grouped.log_evidence_, single.log_evidence_, rtol=1e-8)
    np.testing.assert_allclose(
        flat_weights(grouped.model_), flat_weights(single.model_), rtol=1e-7, atol=1e-10
    )


def test_parameter_validation_and_clone():
    X, y = _data("binary", n=10)
    with pytest.raises(InvalidParameterError, match="bayesian_groups"):
        LMClassifier(bayesian_groups="input").fit(X, y)
    clf = LMClassifier(bayesian_groups="layer")
    assert clf.get_params()["bayesian_groups"] == "layer"
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert copy.set_params(bayesian_groups="single").bayesian_groups == "single"
    assert LMClassifier().bayesian_groups == "single"


def test_groups_are_unused_without_bayesian_regularization():
    X, y, clf = _fit("binary", max_iter=5)
    assert clf.alpha_.shape == (3,)
    # A refit without Bayesian regularization leaves none of its attributes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(bayesian=False).fit(X, y)
    for name in ("alpha_", "gamma_", "gammas_", "log_evidence_"):
        assert not hasattr(clf, name)
    assert "alpha_0" not in clf.history_.history
