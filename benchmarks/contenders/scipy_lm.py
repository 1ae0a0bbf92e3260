"""SciPy's MINPACK Levenberg-Marquardt on the same network, in NumPy.

``scipy.optimize.least_squares(method="lm")`` minimises ``sum(r**2)`` with
the residuals and the closed-form Jacobian of :class:`~benchmarks.numpy_mlp.
TanhNet` (float64), from the shared initial weights.

Hook: the residual function records the best MSE seen so far at every
evaluation (trial points included), and the Jacobian function marks one LM
iteration. At the budget (or the step cap) the residual function raises, and
the best weights seen are kept -- what MINPACK would return.
"""

from __future__ import annotations

import numpy as np

from ..clock import BudgetReached, Recorder
from ..config import Settings
from ..numpy_mlp import TanhNet
from ..tasks import Task, glorot_weights

__all__ = ["least_squares_lm"]

#: MINPACK's tolerances must exceed machine epsilon; these never stop it early.
TOLERANCE = 1e-15


def least_squares_lm(task: Task, seed: int, settings: Settings, rec: Recorder) -> dict:
    """Run ``least_squares(method="lm")`` until the budget is spent.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.

    Returns
    -------
    dict
        ``attempts`` (residual evaluations per Jacobian), ``n_iter``
        (Jacobian evaluations), ``stop_reason``, ``batch_rows`` and scores.
    """
    from scipy.optimize import least_squares

    net = TanhNet(task.x_train, task.y_train, task.layers[1])
    theta0 = net.flatten(glorot_weights(task.layers, seed))
    max_steps = settings.scale_max_steps if task.name == "scale" else 10**9
    best = {"loss": np.inf, "theta": theta0.copy(), "nfev": 0, "njev": 0}

    def residuals(theta):
        r = net.residuals(theta)
        loss = float(r @ r) / net.m
        best["nfev"] += 1
        if loss < best["loss"]:
            best["loss"], best["theta"] = loss, theta.copy()
        if rec.record(best["loss"], steps=0) or best["njev"] >= max_steps:
            raise BudgetReached
        return r

    def jacobian(theta):
        best["njev"] += 1
        rec.record(best["loss"], steps=1)
        return net.jacobian(theta)

    stop = "converged"
    rec.start()
    try:
        result = least_squares(
            residuals,
            theta0,
            jac=jacobian,
            method="lm",
            ftol=TOLERANCE,
            xtol=TOLERANCE,
            gtol=TOLERANCE,
            max_nfev=10**9,
        )
        stop = f"status {result.status}"
    except BudgetReached:
        stop = "budget" if best["njev"] < max_steps else "max_steps"
    rec.stop()
    train = net.predict(best["theta"])
    return {
        "n_iter": best["njev"],
        "attempts": best["nfev"] / max(best["njev"], 1),
        "stop_reason": stop,
        "batch_rows": net.m,
        "train_loss": float(np.mean((train - net.y) ** 2)),
    }
