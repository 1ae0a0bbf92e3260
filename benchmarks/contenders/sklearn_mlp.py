"""scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` (tanh, same hidden size).

scikit-learn exposes no per-iteration hook for L-BFGS, so on the sinc task
the loss-vs-time curve of ``solver="lbfgs"`` is built from *separate fits*
with growing ``max_iter`` (8, 16, 32, ... until the next one would overrun
the budget), all from the same ``random_state``; each point is the wall time
of one whole fit and the training MSE it ends with. L-BFGS iterates do not
depend on ``max_iter``, so the points lie on one trajectory. Where a
threshold is crossed between two fits, ``max_iter`` is bisected a few times
to locate the crossing, and a last fit sized from the measured time per
iteration ends just inside the budget.

``solver="adam"`` on the sinc task runs ``partial_fit`` once per epoch; the
full-data MSE is evaluated after each epoch with the clock paused.

Note that scikit-learn's L-BFGS keeps SciPy's default ``ftol`` (about
``2.2e-9`` on the half-MSE loss): it stops on its own once an iteration
lowers the loss by less than that, whatever ``tol`` and ``max_iter`` say.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..clock import Recorder
from ..config import THRESHOLDS, Settings
from ..tasks import Task
from ._common import repeat_fit, scores

__all__ = ["lbfgs_sweep", "adam_epochs", "single_fit"]

_FIRST_MAX_ITER = 8


def _estimator(task: Task, seed: int, **params):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if task.kind == "regression" else MLPClassifier
    return cls(
        hidden_layer_sizes=(task.layers[1],),
        activation="tanh",
        random_state=seed,
        **params,
    )


def _outputs(est, task: Task, x: np.ndarray) -> np.ndarray:
    if task.kind == "regression":
        return est.predict(x)
    return np.log(np.maximum(est.predict_proba(x), 1e-300))


def _mse(est, task: Task) -> float:
    return float(np.mean((est.predict(task.x_train) - task.y_train) ** 2))


def lbfgs_sweep(task: Task, seed: int, settings: Settings, rec: Recorder) -> dict:
    """L-BFGS fits with growing ``max_iter`` (see the module docstring).

    Returns
    -------
    dict
        ``n_iter`` of the longest fit, ``updates`` (iterations of the longest
        fit within the budget), ``stop_reason``, ``step_time_s`` and
        ``overhead_s`` (slope and intercept of fit time against iterations),
        ``fits`` (number of fits run) and scores of the longest fit.
    """
    from sklearn.exceptions import ConvergenceWarning

    budget = settings.sinc_budget_s
    points: dict[int, tuple[float, float, int]] = {}
    last = {}

    def fit(max_iter: int) -> tuple[float, float, int]:
        est = _estimator(
            task,
            seed,
            solver="lbfgs",
            alpha=0.0,
            tol=0.0,
            max_iter=max_iter,
            max_fun=10**9,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            begin = time.perf_counter()
            est.fit(task.x_train, task.y_train)
            took = time.perf_counter() - begin
        points[max_iter] = (took, _mse(est, task), int(est.n_iter_))
        if max_iter >= max(points):
            last["est"] = est
        return points[max_iter]

    rec.start()
    k, stopped = _FIRST_MAX_ITER, False
    while True:
        took, _, n_iter = fit(k)
        if n_iter < k:
            stopped = True  # L-BFGS stopped on its own tolerance
            break
        if 2.2 * took > budget:
            break
        k *= 2
    for threshold in THRESHOLDS:
        _refine(fit, points, threshold, settings.refine_bisections)
    slope, intercept = _time_per_iteration(points)
    if not stopped and slope > 0:
        target = int((0.95 * budget - intercept) / slope)
        if target > max(points):
            fit(target)
    rec.stop()
    for max_iter in sorted(points):  # trajectory order; times may jitter
        took, mse, n_iter = points[max_iter]
        rec.add(took, mse, n_iter)
    longest = max(points)
    in_budget = [n_iter for took, _, n_iter in points.values() if took <= budget]
    return {
        "n_iter": points[longest][2],
        "updates": max(in_budget, default=None),
        "stop_reason": "ftol" if stopped else "budget",
        "step_time_s": slope,
        "overhead_s": intercept,
        "fits": len(points),
        "batch_rows": len(task.x_train),
        **scores(task, _outputs(last["est"], task, task.x_train)),
    }


def _refine(fit, points, threshold: float, bisections: int) -> None:
    """Bisect ``max_iter`` between the last fit above and the first below."""
    reached = [k for k, p in points.items() if p[1] <= threshold]
    if not reached:
        return
    hi = min(reached)
    lo = max((k for k in points if k < hi), default=0)
    for _ in range(bisections):
        mid = (lo + hi) // 2
        if mid in (lo, hi) or mid < 1:
            return
        if fit(mid)[1] <= threshold:
            hi = mid
        else:
            lo = mid


def _time_per_iteration(points) -> tuple[float, float]:
    """Slope and intercept of fit time against iterations (two longest fits)."""
    ordered = sorted(points.values(), key=lambda p: p[2])
    if len(ordered) < 2 or ordered[-1][2] == ordered[-2][2]:
        took, _, n_iter = ordered[-1]
        return took / max(n_iter, 1), 0.0
    (t1, _, i1), (t2, _, i2) = ordered[-2], ordered[-1]
    slope = (t2 - t1) / (i2 - i1)
    return slope, max(t2 - slope * i2, 0.0)


def adam_epochs(task: Task, seed: int, settings: Settings, rec: Recorder) -> dict:
    """``solver="adam"`` (defaults, ``alpha=0``), one ``partial_fit`` per epoch.

    Returns
    -------
    dict
        ``n_iter`` (epochs), ``stop_reason``, ``batch_rows`` and scores.
    """
    est = _estimator(task, seed, solver="adam", alpha=0.0)
    n = len(task.x_train)
    batch = min(200, n)
    epochs = 0
    rec.start()
    while True:
        est.partial_fit(task.x_train, task.y_train)
        epochs += 1
        if rec.record_evaluated(lambda: _mse(est, task), math.ceil(n / batch)):
            break
    rec.stop()
    return {
        "n_iter": epochs,
        "stop_reason": "budget",
        "batch_rows": batch,
        **scores(task, _outputs(est, task, task.x_train)),
    }


def single_fit(
    task: Task,
    seed: int,
    settings: Settings,
    rec: Recorder,
    params: dict | None = None,
    cap_iter: bool = False,
) -> dict:
    """One ordinary ``fit``; the only point recorded is its end.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.
    params : dict, optional
        Constructor arguments besides the network shape and seed.
    cap_iter : bool, default=False
        Set ``max_iter`` to the scale task's step cap.

    Returns
    -------
    dict
        ``n_iter``, ``step_time_s`` (fit time per iteration), ``warnings``,
        ``repeat_fit_s`` (the wall time of a second identical fit in the same
        process, as in a grid search; not on the scale task) and scores.
    """
    params = dict(params or {})
    if cap_iter:
        params.update(max_iter=settings.scale_max_steps, max_fun=10**9)
    est = _estimator(task, seed, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec.start()
        est.fit(task.x_train, task.y_train)
        took = rec.stop()
    test = _outputs(est, task, task.x_test) if task.x_test is not None else None
    result = scores(task, _outputs(est, task, task.x_train), test)
    n = len(task.x_train)
    batch = n if est.solver == "lbfgs" else min(200, n)
    updates = int(est.n_iter_) * math.ceil(n / batch)
    rec.add(took, result["train_loss"], updates)
    return {
        "repeat_fit_s": None if cap_iter else repeat_fit(est, task),
        "n_iter": int(est.n_iter_),
        "step_time_s": took / max(updates, 1),
        "stop_reason": "max_iter" if est.n_iter_ >= est.max_iter else "converged",
        "warnings": sorted({type(w.message).__name__ for w in caught}),
        "batch_rows": batch,
        **result,
    }
