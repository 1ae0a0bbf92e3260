"""
Restarts: keeping the best of several initialisations
=====================================================

Levenberg-Marquardt converges fast to the minimum nearest its starting
weights, and different initial weights lead to different minima. With
``n_init``, :class:`sklearn_lm.LMRegressor` trains that many initialisations
(each drawn from ``random_state``) and keeps the best: the one with the
lowest final training loss, or with ``early_stopping`` the best validation
score. ``best_init_`` says which start won and ``init_scores_`` how each
did (higher is better: minus the training loss here).

We fit ``sinc(10 x)`` with a 1-20-1 network, once with a single start and
once with five, and look at each start's loss.
"""

# %%
# Single start and five starts
# ----------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_lm import LMRegressor

X = np.linspace(-1.0, 1.0, 2000).reshape(-1, 1)
y = np.sinc(10.0 * X[:, 0])
common = dict(hidden=(20,), max_iter=150, tol=0.0, n_iter_no_change=10)

with warnings.catch_warnings():
    # tol=0 lets the fits run to max_iter when they keep improving.
    warnings.simplefilter("ignore", category=ConvergenceWarning)
    single = LMRegressor(**common, random_state=1).fit(X, y)
    best = LMRegressor(**common, n_init=5, random_state=1).fit(X, y)

mse = {
    name: np.mean((r.predict(X) - y) ** 2) for name, r in [("1", single), ("5", best)]
}
print(f"n_init=1: MSE {mse['1']:.2e}")
print(f"n_init=5: MSE {mse['5']:.2e}, start {best.best_init_} kept")
# The scores are minus the final loss on standardised targets.
start_losses = -np.asarray(best.init_scores_) * np.var(y)
for k, loss in enumerate(start_losses):
    print(f"  start {k}: MSE {loss:.2e}")

# %%
# The loss of each start
# ----------------------
# The first start is the single fit; the start kept has its record in
# ``history_``.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.bar(range(len(start_losses)), start_losses, color="C0")
ax.bar(best.best_init_, start_losses[best.best_init_], color="C1", label="kept")
ax.set_yscale("log")
ax.set_xlabel("start")
ax.set_ylabel("final training MSE")
ax.legend()
plt.show()
