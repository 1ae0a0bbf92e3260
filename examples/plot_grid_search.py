r"""
Tuning damping and batch size with GridSearchCV
===============================================

:class:`sklearn_lm.LMRegressor` is a regular scikit-learn estimator, so it can
sit in a :class:`~sklearn.pipeline.Pipeline` and be tuned with
:class:`~sklearn.model_selection.GridSearchCV`.

We search over two hyperparameters on Friedman's synthetic regression
problem:

* ``damping``, the *initial* damping factor :math:`\lambda`. The damping is
  adapted after every step, so a poor starting value mostly costs a few
  extra steps;
* ``batch_size``: ``None`` solves one LM system on the whole training set per
  iteration, an integer splits every iteration (epoch) into several cheaper,
  noisier steps on mini-batches.
"""

# %%
# The search
# ----------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_friedman1
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMRegressor

X, y = make_friedman1(n_samples=1200, noise=0.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        ("lm", LMRegressor(hidden=(10,), max_iter=200, random_state=0)),
    ]
)
param_grid = {
    "lm__damping": [1e-4, 1e-2, 1.0, 100.0],
    "lm__batch_size": [None, 300],
}
# TensorFlow already spreads one fit over all cores: keep n_jobs=1.
search = GridSearchCV(pipe, param_grid, cv=3, scoring="r2", n_jobs=1)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best CV R^2: {search.best_score_:.4f}")
print(f"test R^2 of the refitted best model: {search.score(X_test, y_test):.4f}")

# %%
# Score and cost of every combination
# -----------------------------------
results = pd.DataFrame(search.cv_results_)
results["batch_size"] = results["param_lm__batch_size"].map(
    lambda b: "full" if b is None else str(b)
)
results["damping"] = results["param_lm__damping"].astype(float)
score = results.pivot(index="damping", columns="batch_size", values="mean_test_score")
cost = results.pivot(index="damping", columns="batch_size", values="mean_fit_time")
print(score.round(4))


def heatmap(ax, table, title, fmt):
    image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(table.shape[1]), labels=table.columns)
    ax.set_yticks(np.arange(table.shape[0]), labels=[f"{d:g}" for d in table.index])
    ax.set(xlabel="batch_size", ylabel="initial damping", title=title)
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, format(value, fmt), ha="center", va="center", color="white")
    return image


fig, (ax_score, ax_cost) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
fig.colorbar(heatmap(ax_score, score, "mean CV $R^2$", ".3f"), ax=ax_score)
fig.colorbar(heatmap(ax_cost, cost, "mean fit time (s)", ".1f"), ax=ax_cost)
plt.show()
