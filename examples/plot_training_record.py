"""
The training record and its plots
=================================

A fitted :class:`sklearn_lm.LMRegressor` (or :class:`sklearn_lm.LMClassifier`)
keeps the record of its epochs in ``history_``, a
:class:`sklearn_lm.engine.TrainingHistory`: per epoch the training loss, the
damping factor ``lambda``, the attempts per step, the wall time and, with
early stopping, the validation score; the best epoch; and why training
stopped. :mod:`sklearn_lm.inspection` draws it
(:class:`~sklearn_lm.inspection.TrainingCurvesDisplay`) and draws predictions
against targets (:class:`~sklearn_lm.inspection.PredictionsDisplay`).
"""

# %%
# A fit with early stopping
# -------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import SplineTransformer

from sklearn_lm import LMRegressor
from sklearn_lm.inspection import PredictionsDisplay, TrainingCurvesDisplay

rng = np.random.default_rng(0)
X = rng.uniform(-1.0, 1.0, size=(400, 1))
y = np.sinc(5.0 * X[:, 0]) + rng.normal(scale=0.05, size=400)

reg = LMRegressor(
    hidden=(20,), early_stopping=True, n_iter_no_change=10, tol=0.0, random_state=0
).fit(X, y)

# %%
# Why it stopped, when it was best, how long each epoch took
# ----------------------------------------------------------
history = reg.history_
print("stopped:", history.stop_reason.value, "-", history.message)
print("best epoch:", history.best_epoch)
frame = history.to_dataframe()  # one row per epoch (needs pandas)
print(frame.head())
print(f"total time {frame['time'].sum():.2f} s over {len(frame)} epochs")

# %%
# Training curves
# ---------------
# The loss (log scale) with the validation score on a second axis, and
# ``lambda`` (log scale) below; the dotted line marks the best epoch, whose
# weights the estimator kept. ``x="time"`` draws them against wall time.
display = TrainingCurvesDisplay.from_estimator(reg)
display.figure_.set_layout_engine("constrained")

# %%
# Predictions against targets
# ---------------------------
# :class:`~sklearn_lm.inspection.PredictionsDisplay` is scikit-learn's
# :class:`~sklearn.metrics.PredictionErrorDisplay` (targets against
# predictions), plus error bars of two standard deviations when the
# estimator's ``predict`` takes ``return_std=True``, as
# :class:`~sklearn.linear_model.BayesianRidge` does. Here a Bayesian ridge on
# spline features gives them; the LM network gives none.
bayes = BayesianRidge()
splines = SplineTransformer(n_knots=12).fit(X)
bayes.fit(splines.transform(X), y)
fig, (ax_lm, ax_bayes) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
PredictionsDisplay.from_estimator(reg, X, y, ax=ax_lm, subsample=200, random_state=0)
ax_lm.set_title("LMRegressor")
PredictionsDisplay.from_estimator(
    bayes, splines.transform(X), y, ax=ax_bayes, subsample=200, random_state=0
)
ax_bayes.set_title("BayesianRidge on splines, ±2 std")
plt.show()
