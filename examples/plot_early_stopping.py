"""
Early stopping on noisy data
============================

Levenberg-Marquardt fits a training set quickly and very closely, which
includes its noise. With ``early_stopping=True``,
:class:`sklearn_lm.LMRegressor` sets aside ``validation_fraction`` of the
training data, scores the network on it after every iteration
(``validation_scores_``) and stops once the score has not improved for
``n_iter_no_change`` iterations, keeping the best weights.

We train a deliberately large network, two hidden layers of 30 units (about
1 000 weights), on 150 noisy samples of ``sinc(10 x)``, with and without early
stopping. ``tol=0`` makes any improvement count, so only the validation score
(or ``max_iter``) ends training.
"""

# %%
# Noisy data
# ----------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_lm import LMRegressor

rng = np.random.default_rng(0)
X = rng.uniform(-1.0, 1.0, size=(150, 1))
y = np.sinc(10.0 * X[:, 0]) + rng.normal(scale=0.15, size=150)
X_grid = np.linspace(-1.0, 1.0, 1000).reshape(-1, 1)
y_grid = np.sinc(10.0 * X_grid[:, 0])

# %%
# With and without early stopping
# -------------------------------
common = dict(hidden=(30, 30), activation="tanh", max_iter=200, tol=0.0, random_state=0)
with warnings.catch_warnings():
    # Without early stopping the fit runs to max_iter on purpose.
    warnings.simplefilter("ignore", category=ConvergenceWarning)
    free = LMRegressor(**common).fit(X, y)
stopped = LMRegressor(
    early_stopping=True, validation_fraction=0.2, n_iter_no_change=10, **common
).fit(X, y)

for name, reg in [("no early stopping", free), ("early stopping", stopped)]:
    error = np.mean((reg.predict(X_grid) - y_grid) ** 2)
    print(
        f"{name:>18}: {reg.n_iter_:3d} iterations, final training loss "
        f"{reg.loss_curve_[-1]:.4f}, MSE to the true curve {error:.4f}"
    )

# %%
# Curves
# ------
# The training loss keeps falling, while the validation score (:math:`R^2` on
# the held-out fifth) peaks early: the later steps fit the noise.
fig, (ax_curve, ax_fit) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax_curve.semilogy(free.loss_curve_, label="training loss, no early stopping")
ax_curve.semilogy(stopped.loss_curve_, label="training loss, early stopping")
ax_curve.set(xlabel="iteration", ylabel="training loss (MSE / Var(y))")
ax_score = ax_curve.twinx()
ax_score.plot(stopped.validation_scores_, color="C2", label="validation $R^2$")
ax_score.set_ylabel("validation $R^2$")
lines = ax_curve.get_lines() + ax_score.get_lines()
ax_curve.legend(lines, [line.get_label() for line in lines], loc="upper right")
ax_curve.set_title("Training loss and validation score")

ax_fit.scatter(X[:, 0], y, s=8, color="grey", label="noisy samples")
ax_fit.plot(X_grid[:, 0], y_grid, color="black", lw=2, alpha=0.4, label="sinc(10x)")
ax_fit.plot(X_grid[:, 0], free.predict(X_grid), label="no early stopping")
ax_fit.plot(X_grid[:, 0], stopped.predict(X_grid), label="early stopping")
ax_fit.set(xlabel="x", ylabel="y", title="Fitted functions")
ax_fit.legend(fontsize="small")
plt.show()
