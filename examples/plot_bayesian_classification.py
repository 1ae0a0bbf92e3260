r"""
Bayesian regularization and moderated probabilities for classification
======================================================================

``LMClassifier(bayesian=True)`` sets its own weight decay from the evidence
(MacKay 1992, *The evidence framework applied to classification
networks*): after every Levenberg-Marquardt step the weight precision
:math:`\alpha` is re-estimated as :math:`\gamma / (2 E_W)`, with
:math:`\gamma` the effective number of weights the data determine, computed
from the generalised Gauss-Newton matrix of the cross-entropy. There is no
noise level to estimate.

``moderate_proba=True`` also takes the uncertainty of the weights into
account in ``predict_proba``: each logit's linearised Laplace variance
:math:`s^2 = g^\top A^{-1} g` shrinks it by
:math:`\kappa = (1 + \pi s^2 / 8)^{-1/2}` before the sigmoid (MacKay's
probit approximation), so that the probabilities move towards 1/2 where the
network is unsure.

On data as small as these for the network (fewer than 32 samples times
outputs per weight) the default ``bayesian="auto"`` turns Bayesian
regularization on by itself; ``bayesian=False`` shows the fit without it.

Two parts:

* two noisy half moons with 100 training points: the predicted probabilities
  of a plain (``bayesian=False``), a Bayesian and a moderated fit, and their reliability
  diagram and scores on 2000 held-out points;
* held-out scores on ``load_breast_cancer``.
"""

# %%
# Two half moons, 100 training points
# -----------------------------------
# A 2-20-1 tanh network (81 weights) on 100 noisy points. Without
# regularization LM drives the training cross-entropy towards zero: the
# probabilities jump from 0 to 1 across a contorted boundary.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMClassifier

X_train, y_train = make_moons(100, noise=0.3, random_state=0)
X_test, y_test = make_moons(2000, noise=0.3, random_state=1)

contenders = {
    "bayesian=False": LMClassifier(hidden=(20,), bayesian=False, random_state=0),
    "bayesian=True": LMClassifier(hidden=(20,), bayesian=True, random_state=0),
    "bayesian=True, moderate_proba=True": LMClassifier(
        hidden=(20,), bayesian=True, moderate_proba=True, random_state=0
    ),
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for clf in contenders.values():
        clf.fit(X_train, y_train)

bayes = contenders["bayesian=True"]
print(f"alpha_        = {bayes.alpha_:.4g}  (weight precision)")
print(f"gamma_        = {bayes.gamma_:.1f} effective weights of 81")
print(f"log_evidence_ = {bayes.log_evidence_:.2f}")

# %%
# The probability of the second class over the plane. The Bayesian fit is
# smooth; moderation keeps it where the data are and fades it towards 1/2
# away from them, where the weights leave the logits uncertain.
xx, yy = np.meshgrid(np.linspace(-2.5, 3.5, 150), np.linspace(-2.0, 2.5, 150))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(
    1, 3, figsize=(13, 4), sharex=True, sharey=True, layout="constrained"
)
for ax, (name, clf) in zip(axes, contenders.items(), strict=True):
    proba = clf.predict_proba(grid)[:, 1].reshape(xx.shape)
    image = ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r")
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(*X_train.T, c=y_train, cmap="RdBu_r", edgecolors="k", s=25)
    ax.set(title=name, xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.colorbar(image, ax=axes, label="P(class 1)")
plt.show()

# %%
# Reliability diagram and held-out scores
# ---------------------------------------
# On 2000 held-out points, binned by predicted probability: a calibrated
# classifier's curve follows the diagonal. The log loss and the Brier score
# reward calibrated probabilities; the accuracy is that of ``predict``,
# which moderation does not change for two classes.
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
print(f"{'LMClassifier(hidden=(20,), ...)':<36} log loss   Brier    acc")
for name, clf in contenders.items():
    proba = clf.predict_proba(X_test)[:, 1]
    observed, predicted = calibration_curve(y_test, proba, n_bins=10)
    ax.plot(predicted, observed, "o-", label=name)
    print(
        f"{name:<36} {log_loss(y_test, proba):>8.3f} "
        f"{brier_score_loss(y_test, proba):>7.3f} "
        f"{accuracy_score(y_test, clf.predict(X_test)):>6.3f}"
    )
ax.set(
    xlabel="mean predicted probability",
    ylabel="fraction of class 1",
    title="Reliability diagram (two moons, held out)",
    xlim=(0, 1),
    ylim=(0, 1),
)
ax.legend(loc="upper left")
plt.show()

# %%
# Breast cancer
# -------------
# 569 tumours, 30 features; a 30-20-1 network has 641 weights. Half of the
# data for training, half held out, after ``StandardScaler``. Bayesian
# regularization lowers the held-out log loss and Brier score several times
# over. Moderation raises them a little here: the held-out tumours look
# like the training ones, the network is confident and mostly right about
# them, and moderation only tempers that confidence; it pays off away from
# the training data, as in the maps above.
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print(f"{'LMClassifier(hidden=(20,), ...)':<36} log loss   Brier    acc")
for name, params in [
    ("bayesian=False", {"bayesian": False}),
    ("bayesian=True", {"bayesian": True}),
    ("bayesian=True, moderate_proba=True", {"bayesian": True, "moderate_proba": True}),
]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LMClassifier(hidden=(20,), random_state=0, **params).fit(X_train, y_train)
    proba = clf.predict_proba(X_test)[:, 1]
    print(
        f"{name:<36} {log_loss(y_test, proba):>8.3f} "
        f"{brier_score_loss(y_test, proba):>7.3f} "
        f"{accuracy_score(y_test, clf.predict(X_test)):>6.3f}"
    )
