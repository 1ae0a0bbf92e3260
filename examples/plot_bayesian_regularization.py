r"""
Bayesian regularization and predictive uncertainty
==================================================

Levenberg-Marquardt drives the training loss of a small network very low,
which on small, noisy data means fitting the noise.
``LMRegressor(bayesian=True)`` sets its own weight decay and noise level from
the evidence after every step (MacKay 1992; Foresee and Hagan 1997; MATLAB's
``trainbr``): a weight precision :math:`\alpha`, a noise precision
:math:`\beta` and :math:`\gamma`, the effective number of weights the data
determine. ``predict(X, return_std=True)`` returns the linearised Laplace
predictive standard deviation, :math:`\sqrt{1/\beta + g^\top A^{-1} g}` with
:math:`g` the gradient of the output with respect to the weights; it works
without Bayesian regularization too (with the residual variance as noise).
With fewer than four samples per weight it is on by default
(``bayesian="auto"``); the comparisons below set ``bayesian`` explicitly.

Three parts:

* a noisy sinc curve, with and without Bayesian regularization, with ±2σ
  bands;
* cross-validated R² on ``load_diabetes``;
* how well the predictive intervals are calibrated on held-out data.
"""

# %%
# A noisy sinc curve
# ------------------
# 100 points of ``sinc(3x)`` (NumPy's ``sin(pi t) / (pi t)``) with Gaussian
# noise of standard deviation 0.1, i.e. noise variance 0.01, fitted by a
# 1-20-1 tanh network with 61 weights. Without Bayesian regularization the
# noise variance behind ``return_std`` is the residual variance
# ``SSR / (m - n)``, which needs more points than weights: with 61 points or
# fewer the unregularized fit's standard deviations are ``inf`` (with a
# ``CovarianceWarning``).
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMRegressor

NOISE_STD = 0.1
rng = np.random.default_rng(0)
N_POINTS = 100
X = rng.uniform(-1.0, 1.0, size=(N_POINTS, 1))
y = np.sinc(3.0 * X[:, 0]) + NOISE_STD * rng.standard_normal(N_POINTS)
X_grid = np.linspace(-1.2, 1.2, 400).reshape(-1, 1)

plain = LMRegressor(hidden=(20,), bayesian=False, random_state=0).fit(X, y)
bayes = LMRegressor(hidden=(20,), bayesian=True, random_state=0).fit(X, y)

n_weights = bayes.model_.count_params()
# One weight precision per layer (the default bayesian_groups="layer"): the
# input kernel, the hidden biases and the output kernel.
print(f"alpha_          = {np.array2string(bayes.alpha_, precision=4)}")
print(f"noise_variance_ = {bayes.noise_variance_:.4g}  (true {NOISE_STD**2:.4g})")
print(f"gamma_          = {bayes.gamma_:.1f} effective parameters of {n_weights}")
print(f"log_evidence_   = {bayes.log_evidence_:.2f}")

# %%
# The fit without it follows the noise, and its band, built from a nearly
# singular curvature with almost no residual degrees of freedom, swings from
# narrow to huge. The Bayesian fit is smooth, its band has about the width of
# the noise (±2 × 0.1) inside the data and widens outside them (``|x| > 1``).
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, layout="constrained")
for ax, (name, reg) in zip(
    axes, [("bayesian=False", plain), ("bayesian=True", bayes)], strict=True
):
    mean, std = reg.predict(X_grid, return_std=True)
    ax.fill_between(
        X_grid[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.25, label="±2σ"
    )
    ax.plot(X_grid[:, 0], np.sinc(3.0 * X_grid[:, 0]), "k--", lw=1, label="sinc(3x)")
    ax.plot(X_grid[:, 0], mean, lw=2, label="prediction")
    ax.plot(X[:, 0], y, "o", ms=4, color="C3", label="training data")
    ax.set(title=f"LMRegressor(hidden=(20,), {name})", xlabel="x")
    ax.set_ylim(-1.0, 1.6)
axes[0].set_ylabel("y")
axes[0].legend(loc="upper left")
plt.show()

# %%
# Diabetes: cross-validated R²
# ----------------------------
# 442 patients, 10 features; a 10-10-1 network has 121 weights. Without
# regularization LM overfits each training fold; with Bayesian
# regularization it is ahead of scikit-learn's L-BFGS MLP.
X_diab, y_diab = load_diabetes(return_X_y=True)
cv = KFold(5)
contenders = {
    "LMRegressor(hidden=(10,), bayesian=False)": LMRegressor(
        hidden=(10,), bayesian=False, random_state=0
    ),
    "LMRegressor(hidden=(10,), bayesian=True)": LMRegressor(
        hidden=(10,), bayesian=True, random_state=0
    ),
    'MLPRegressor((10,), solver="lbfgs")': MLPRegressor(
        hidden_layer_sizes=(10,), solver="lbfgs", random_state=0
    ),
}
print(f"{'estimator (after StandardScaler)':<42} {'5-fold R²':>10}")
for name, est in contenders.items():
    with warnings.catch_warnings():
        # Some fits stop at max_iter; that is not the point here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), est)
        scores = cross_val_score(pipe, X_diab, y_diab, cv=cv)
    print(f"{name:<42} {scores.mean():>6.3f} ± {scores.std():.3f}")

# %%
# Are the predictive intervals calibrated?
# ----------------------------------------
# On a held-out quarter of diabetes, the central p-interval of a normal
# predictive, ``mean ± z_p σ`` with ``z_p`` the ``(1 + p) / 2`` quantile of
# the standard normal, should hold a fraction p of the test targets. The
# closer the curve is to the diagonal, the better calibrated the intervals.
X_train, X_test, y_train, y_test = train_test_split(
    X_diab, y_diab, test_size=0.25, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train_s, X_test_s = scaler.transform(X_train), scaler.transform(X_test)

levels = np.linspace(0.01, 0.99, 99)
z = norm.ppf((1 + levels) / 2)
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
for name, bayesian in [("bayesian=False", False), ("bayesian=True", True)]:
    reg = LMRegressor(hidden=(10,), bayesian=bayesian, random_state=0)
    reg.fit(X_train_s, y_train)
    mean, std = reg.predict(X_test_s, return_std=True)
    inside = np.abs(y_test - mean)[:, None] <= z[None, :] * std[:, None]
    coverage = inside.mean(axis=0)
    at = {p: coverage[np.argmin(np.abs(levels - p))] for p in (0.5, 0.9, 0.95)}
    print(
        f"{name:<14} test R² {reg.score(X_test_s, y_test):.3f}; coverage at "
        + ", ".join(f"p={p}: {c:.2f}" for p, c in at.items())
    )
    ax.plot(levels, coverage, lw=2, label=f"LMRegressor(hidden=(10,), {name})")
ax.set(
    xlabel="nominal level p",
    ylabel="fraction of test targets inside the interval",
    title="Calibration of the predictive intervals (diabetes)",
    xlim=(0, 1),
    ylim=(0, 1),
)
ax.legend(loc="upper left")
plt.show()
