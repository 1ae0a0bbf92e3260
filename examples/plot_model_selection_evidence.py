r"""
Choosing the hidden size by evidence or by cross-validation
===========================================================

With ``bayesian=True`` a fitted :class:`~sklearn_lm.LMRegressor` reports
``log_evidence_``, the log marginal likelihood :math:`\log p(y \mid \alpha,
\beta, \mathcal{H})` of the training targets under the Laplace approximation
(MacKay 1992). Unlike the training loss it penalises complexity: a network
with more weights than the data support pays for them through the Occam
factor. Comparing it across architectures is a model-selection criterion that
needs one fit per candidate, where k-fold cross-validation needs k.

Here both criteria pick the number of hidden units ``h`` of a 1-h-1 tanh
network on a small noisy regression problem, and a held-out split checks the
choices.
"""

# %%
# Data and candidates
# -------------------
# 150 points of ``sinc(3x)`` with Gaussian noise of standard deviation 0.1;
# 100 for training (evidence and cross-validation both only see these) and 50
# held out for the test R².
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import KFold, cross_val_score, train_test_split

from sklearn_lm import LMRegressor

rng = np.random.default_rng(0)
X = rng.uniform(-1.0, 1.0, size=(150, 1))
y = np.sinc(3.0 * X[:, 0]) + 0.1 * rng.standard_normal(150)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=100, random_state=0
)

hidden_sizes = (1, 2, 3, 5, 8, 12, 20)
cv = KFold(5, shuffle=True, random_state=0)

# %%
# One fit per h for the evidence, five per h for cross-validation
# ----------------------------------------------------------------
# Each evidence fit is timed on the whole training split; each
# cross-validation run (five fits and their scoring) is timed separately.
rows = []
for h in hidden_sizes:
    reg = LMRegressor(hidden=(h,), bayesian=True, random_state=0)
    start = time.perf_counter()
    reg.fit(X_train, y_train)
    t_evidence = time.perf_counter() - start

    start = time.perf_counter()
    cv_scores = cross_val_score(
        LMRegressor(hidden=(h,), bayesian=True, random_state=0),
        X_train,
        y_train,
        cv=cv,
    )
    t_cv = time.perf_counter() - start

    rows.append(
        dict(
            h=h,
            n_weights=reg.model_.count_params(),
            log_evidence=reg.log_evidence_,
            gamma=reg.gamma_,
            cv_r2=cv_scores.mean(),
            cv_r2_std=cv_scores.std(),
            test_r2=reg.score(X_test, y_test),
            t_evidence=t_evidence,
            t_cv=t_cv,
        )
    )

log_evidence = np.array([r["log_evidence"] for r in rows])
cv_r2 = np.array([r["cv_r2"] for r in rows])
h_evidence = hidden_sizes[int(np.argmax(log_evidence))]
h_cv = hidden_sizes[int(np.argmax(cv_r2))]

header = (
    f"{'h':>3} {'weights':>7} {'log evid.':>9} {'gamma':>6} {'CV R²':>13} "
    f"{'test R²':>7} {'t evid. s':>9} {'t 5-CV s':>8}"
)
print(header)
print("-" * len(header))
for r in rows:
    print(
        f"{r['h']:>3} {r['n_weights']:>7} {r['log_evidence']:>9.2f} "
        f"{r['gamma']:>6.2f} {r['cv_r2']:>6.3f} ± {r['cv_r2_std']:.3f} "
        f"{r['test_r2']:>7.3f} {r['t_evidence']:>9.2f} {r['t_cv']:>8.2f}"
    )
t_evidence_total = sum(r["t_evidence"] for r in rows)
t_cv_total = sum(r["t_cv"] for r in rows)
test_of = {r["h"]: r["test_r2"] for r in rows}
print(f"\nchosen by log evidence: h = {h_evidence} (test R² {test_of[h_evidence]:.3f})")
print(f"chosen by 5-fold CV R²: h = {h_cv} (test R² {test_of[h_cv]:.3f})")
print(
    f"time: evidence {t_evidence_total:.1f} s, 5-fold CV {t_cv_total:.1f} s "
    f"(ratio {t_cv_total / t_evidence_total:.1f})"
)

# %%
# Both criteria against h
# -----------------------
# Log evidence on the left axis, mean 5-fold CV R² (± one standard deviation
# over the folds) on the right; the star marks each criterion's choice.
fig, ax_ev = plt.subplots(figsize=(7, 4), layout="constrained")
ax_cv = ax_ev.twinx()
ax_ev.plot(hidden_sizes, log_evidence, "o-", color="C0", label="log evidence")
ax_cv.errorbar(
    hidden_sizes,
    cv_r2,
    yerr=[r["cv_r2_std"] for r in rows],
    fmt="s--",
    color="C1",
    capsize=3,
    label="5-fold CV R²",
)
ax_ev.plot(h_evidence, log_evidence.max(), "*", ms=18, color="C0", mec="k", zorder=5)
ax_cv.plot(h_cv, cv_r2.max(), "*", ms=18, color="C1", mec="k", zorder=5)
ax_ev.set_xscale("log")
ax_ev.set_xticks(hidden_sizes, [str(h) for h in hidden_sizes])
ax_ev.minorticks_off()
ax_ev.set_xlabel("hidden units h")
ax_ev.set_ylabel("log evidence", color="C0")
ax_cv.set_ylabel("5-fold CV R²", color="C1")
ax_ev.set_title(
    f"Noisy sinc: evidence picks h = {h_evidence}, cross-validation h = {h_cv}"
)
handles = ax_ev.get_legend_handles_labels()[0] + ax_cv.get_legend_handles_labels()[0]
ax_ev.legend(handles=handles, loc="lower right")
plt.show()

# %%
# What the numbers show
# ---------------------
# * Both criteria reject the smallest networks: with ``h = 1`` the evidence
#   is far below the rest, ``gamma_`` is close to zero (the fit collapsed to
#   nearly a constant) and the CV and test R² are about zero or negative;
#   ``h = 2`` is clearly worse than ``h >= 3`` on every column.
# * From ``h = 3`` to ``h = 12`` the log evidence stays within about 2 nats
#   and the CV R² within about 0.03, less than its spread over the folds; the
#   two criteria pick different sizes (8 and 12) from this plateau, and their
#   test R² are practically equal (0.843 and 0.842). On this problem the
#   choice between them does not matter.
# * They differ at ``h = 20`` (61 weights for 100 points): the evidence drops
#   by about 18 nats, penalising weights the data do not determine
#   (``gamma_`` is about 17 of 61), whereas the CV R² and the test R² are as
#   good as at ``h = 12``: Bayesian regularization keeps the large network
#   from overfitting, so the evidence prefers the smaller one without the
#   larger one predicting worse here.
# * Cost: the evidence needs one fit per candidate, 5-fold CV five (on 80 %
#   of the data). With fits that take well under a second, the measured CV
#   time was only about twice the evidence time when this example was
#   written (see the printed ratio), not five times.
