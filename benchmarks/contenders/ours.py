"""sklearn_lm: the engine's ``Trainer`` and the estimators.

Hooks
-----
* Full-batch ``Trainer``: a loop of ``trainer.train_step(x, y)``, whose
  result holds the training loss after the step (float64, full data).
* Mini-batch ``Trainer``: ``trainer.fit(..., callbacks=[cb])``; after each
  epoch the full-data loss is evaluated with the clock paused.
* ``LMRegressor`` / ``LMClassifier``: with ``verbose=1`` the estimator prints
  one line per epoch; standard output is routed to a writer that time-stamps
  each line (and stops the fit at the budget -- on friedman1 and digits the
  safety cap -- by raising from that writer). The losses are taken from
  ``loss_curve_`` after the fit (exact values; for the regressor rescaled
  from standardised to original targets). Should the line format change so
  that the lines cannot be read, only the end of the fit is recorded.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings

import numpy as np

from ..clock import BudgetReached, Recorder
from ..config import Settings
from ..tasks import Task
from ._common import keras_network, keras_outputs, repeat_fit, scores

__all__ = ["trainer", "estimator"]

_EPOCH_LINE = re.compile(r"^Epoch (\d+): loss = ([^,]+),.*attempts = ([0-9.eE+-]+)")


def _max_steps(task: Task, settings: Settings) -> int:
    return settings.scale_max_steps if task.name == "scale" else 10**9


def trainer(
    task: Task,
    seed: int,
    settings: Settings,
    rec: Recorder,
    batch_size: int | None = None,
    dtype: str = "float32",
    geodesic: bool = True,
) -> dict:
    """Train the shared Keras network with ``sklearn_lm.engine.Trainer``.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.
    batch_size : int, optional
        ``None`` for full-batch steps.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the network (same initial weights either way).
    geodesic : bool, default=True
        Geodesic acceleration (the engine's default); ``False`` times plain
        Levenberg-Marquardt steps.

    Returns
    -------
    dict
        ``attempts`` (mean per step after the first few), ``stop_reason``,
        ``batch_rows`` and the scores of :func:`._common.scores`.
    """
    import tensorflow as tf

    from sklearn_lm.engine import Trainer
    from sklearn_lm.engine.damping import Fletcher

    model = keras_network(task, seed, dtype)
    x = task.x_train.astype(dtype)
    y = task.y_train.reshape(-1, 1)
    attempts: list[float] = []
    stop = "budget"
    rec.start()
    # Fletcher's scale-invariant damping with the gain-ratio rule: the setting
    # that needed the fewest steps on sinc among the engine's built-in ones;
    # geodesic acceleration is the engine's default.
    lm = Trainer(
        model, loss="mse", damping=Fletcher(update="gain_ratio"), geodesic=geodesic
    )
    if batch_size is None:
        xt, yt = tf.constant(x), tf.constant(y)
        for _ in range(_max_steps(task, settings)):
            logs = lm.train_step(xt, yt)
            attempts.append(logs["attempts"])
            spent = rec.record(logs["loss"])
            if not math.isfinite(logs["loss"]):
                stop = "non_finite"
                break
            if not logs["accepted"] and logs["damping"] >= lm.damping.max_value:
                stop = "damping_max"
                break
            if spent:
                break
        else:
            stop = "max_steps"
    else:

        def callback(epoch: int, logs: dict) -> bool:
            attempts.append(logs["attempts"])
            return rec.record_evaluated(lambda: lm.evaluate(x, y), steps=logs["steps"])

        history = lm.fit(
            x, y, epochs=10**9, batch_size=batch_size, seed=seed, callbacks=[callback]
        )
        stop = "budget" if history.stop_reason == "callback" else history.stop_reason
    rec.stop()
    skip = min(settings.skip_steps, max(len(attempts) - 1, 0))
    return {
        "attempts": float(np.mean(attempts[skip:])) if attempts else None,
        "stop_reason": stop,
        "batch_rows": batch_size or len(x),
        **scores(task, keras_outputs(model, task.x_train)),
    }


class _EpochLines(io.TextIOBase):
    """A text stream that time-stamps the estimators' per-epoch lines."""

    def __init__(self, rec: Recorder, steps_per_epoch: int, stop_at_budget: bool):
        self.rec = rec
        self.steps_per_epoch = steps_per_epoch
        self.stop_at_budget = stop_at_budget
        self.attempts: list[float] = []
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            match = _EPOCH_LINE.match(line)
            if match is None:
                continue
            spent = self.rec.record(float(match.group(2)), self.steps_per_epoch)
            self.attempts.append(float(match.group(3)))
            if spent and self.stop_at_budget:
                raise BudgetReached
        return len(text)


def estimator(
    task: Task,
    seed: int,
    settings: Settings,
    rec: Recorder,
    params: dict | None = None,
) -> dict:
    """Fit ``LMRegressor`` or ``LMClassifier`` (``hidden=(20,)``) on the task.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.
    params : dict, optional
        Extra constructor arguments.

    Returns
    -------
    dict
        ``n_iter``, ``attempts``, ``stop_reason``, ``warnings``,
        ``repeat_fit_s`` (friedman1 and digits: the wall time of a second,
        identical fit in the same process) and scores.
    """
    from sklearn_lm.estimators import LMClassifier, LMRegressor

    params = dict(params or {})
    open_ended = task.name in ("sinc", "scale")
    if task.name == "scale":
        params.setdefault("max_iter", settings.scale_max_steps)
    elif task.name == "sinc":
        params.setdefault("max_iter", 10**6)
    cls = LMRegressor if task.kind == "regression" else LMClassifier
    est = cls(hidden=(task.layers[1],), random_state=seed, verbose=1, **params)
    batch = est.batch_size
    n = len(task.x_train)
    steps = 1 if batch is None or batch >= n else math.ceil(n / batch)
    lines = _EpochLines(rec, steps, stop_at_budget=True)
    stop = "converged"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec.start()
        try:
            with contextlib.redirect_stdout(lines):
                est.fit(task.x_train, task.y_train)
        except BudgetReached:
            stop = "budget" if open_ended else "time cap"
        rec.stop()
    if stop == "converged" and est.n_iter_ >= est.max_iter:
        stop = "max_iter"
    scale = float(np.var(task.y_train)) if task.kind == "regression" else 1.0
    curve = np.asarray(getattr(est, "loss_curve_", []), dtype=np.float64) * scale
    if len(curve) == 0 and rec.trace:
        # The budget stopped the fit before it recorded its curve: the
        # per-epoch lines give the same losses (8 significant digits).
        rec.trace[:] = [(t, float(loss) * scale, s) for t, loss, s in rec.trace]
    elif len(rec.trace) == len(curve):
        rec.trace[:] = [
            (t, float(loss), s)
            for (t, _, s), loss in zip(rec.trace, curve, strict=True)
        ]
    else:  # the per-epoch lines could not be read: keep only the end point
        rec.trace[:] = [(rec.end_s, float(curve[-1]), int(est.n_iter_) * steps)]
    if task.kind == "regression":
        train = est.predict(task.x_train)
        test = est.predict(task.x_test) if task.x_test is not None else None
    else:
        train = np.log(np.maximum(est.predict_proba(task.x_train), 1e-300))
        test = np.log(np.maximum(est.predict_proba(task.x_test), 1e-300))
    skip = min(settings.skip_steps, max(len(lines.attempts) - 1, 0))
    return {
        "repeat_fit_s": None if open_ended else repeat_fit(est, task),
        "n_iter": int(getattr(est, "n_iter_", len(lines.attempts))),
        "attempts": float(np.mean(lines.attempts[skip:])) if lines.attempts else None,
        "stop_reason": stop,
        "batch_rows": n if steps == 1 else batch,
        "warnings": sorted({type(w.message).__name__ for w in caught}),
        **scores(task, train, test),
    }
