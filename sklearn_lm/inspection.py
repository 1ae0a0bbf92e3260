"""Plots of fitted estimators, in scikit-learn's Display style.

* :class:`TrainingCurvesDisplay` -- the training record
  (:class:`~sklearn_lm.engine.TrainingHistory`): loss, validation score and
  damping ``lambda`` per epoch or against time;
* :class:`PredictionsDisplay` -- predictions against targets
  (:class:`sklearn.metrics.PredictionErrorDisplay`), with error bars of
  ``n_std`` standard deviations when the estimator predicts one.

A display is built by a ``from_*`` class method, which draws it; ``plot``
draws it again (on new axes or the ones given) and keeps the figure, the
axes and the artists on the display. matplotlib is imported only when
drawing; it is an optional dependency.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.metrics import PredictionErrorDisplay
from sklearn.utils import check_random_state

from .engine import TrainingHistory

__all__ = ["TrainingCurvesDisplay", "PredictionsDisplay"]


def _pyplot(what: str):
    """``matplotlib.pyplot``, or an ImportError saying ``what`` needs it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{what} needs matplotlib, which is not installed; install it "
            "with `pip install matplotlib`."
        ) from error
    return plt


class TrainingCurvesDisplay:
    """Training curves of a Levenberg-Marquardt fit.

    Draws, from a :class:`~sklearn_lm.engine.TrainingHistory`, the training
    loss per epoch (log scale) with, when recorded, the validation score on
    a second y axis of the same axes, and the damping factor ``lambda``
    (log scale) on axes of its own below. The best epoch is marked by a
    vertical line and the title says why training stopped.

    Build it with :meth:`from_estimator` or :meth:`from_history`.

    Parameters
    ----------
    history : TrainingHistory
        The record to draw.
    x : {"epoch", "time"}, default="epoch"
        The horizontal axis: the epoch index, or the wall time in seconds
        at the end of each epoch (the cumulative sum of
        ``history.history["time"]``).

    Attributes
    ----------
    x_ : ndarray of shape (n_epochs,)
        The horizontal coordinates of the epochs.
    figure_ : matplotlib.figure.Figure
    ax_ : matplotlib.axes.Axes
        The loss axes.
    ax_validation_ : matplotlib.axes.Axes or None
        The validation score's axes (a twin of ``ax_``), ``None`` without
        validation scores.
    ax_damping_ : matplotlib.axes.Axes
        The ``lambda`` axes.
    loss_line_, validation_line_, damping_line_ : matplotlib.lines.Line2D
        The curves (``validation_line_`` is ``None`` without validation
        scores).
    best_line_ : matplotlib.lines.Line2D or None
        The vertical line at the best epoch, ``None`` when there is none.

    See Also
    --------
    PredictionsDisplay : Predictions against targets.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_lm import LMRegressor
    >>> from sklearn_lm.inspection import TrainingCurvesDisplay
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = LMRegressor(hidden=(5,), random_state=0)
    >>> reg = reg.fit(X, np.sin(3 * X).ravel())
    >>> display = TrainingCurvesDisplay.from_estimator(reg)
    >>> display.ax_.get_yscale(), display.ax_damping_.get_ylabel()
    ('log', 'damping (lambda)')
    """

    def __init__(self, *, history: TrainingHistory, x: str = "epoch"):
        self.history = history
        self.x = x

    @classmethod
    def from_estimator(
        cls, estimator: Any, *, x: str = "epoch", ax=None
    ) -> TrainingCurvesDisplay:
        """Draw the training record ``history_`` of a fitted estimator.

        Parameters
        ----------
        estimator : LMRegressor or LMClassifier
            A fitted estimator (anything with a ``history_``).
        x : {"epoch", "time"}, default="epoch"
            See the class.
        ax : sequence of two matplotlib Axes, optional
            Where to draw ``(loss, lambda)``; by default a new figure with
            two rows sharing the horizontal axis.

        Returns
        -------
        TrainingCurvesDisplay
        """
        history = getattr(estimator, "history_", None)
        if not isinstance(history, TrainingHistory):
            raise ValueError(
                "from_estimator needs a fitted estimator with a history_ "
                f"attribute. Received: estimator={type(estimator).__name__}"
            )
        return cls.from_history(history, x=x, ax=ax)

    @classmethod
    def from_history(
        cls, history: TrainingHistory, *, x: str = "epoch", ax=None
    ) -> TrainingCurvesDisplay:
        """Draw a :class:`~sklearn_lm.engine.TrainingHistory` (for example
        the one :meth:`Trainer.fit <sklearn_lm.engine.Trainer.fit>` returns).

        Parameters are those of :meth:`from_estimator`.

        Returns
        -------
        TrainingCurvesDisplay
        """
        return cls(history=history, x=x).plot(ax=ax)

    def _x_values(self) -> tuple[np.ndarray, str]:
        record = self.history.history
        if self.x == "epoch":
            return np.asarray(self.history.epoch, dtype=float), "epoch"
        if self.x == "time":
            return np.cumsum(record["time"]), "time (s)"
        raise ValueError(f"x must be 'epoch' or 'time'. Received: x={self.x!r}")

    def plot(self, ax: Sequence | None = None) -> TrainingCurvesDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : sequence of two matplotlib Axes, optional
            Where to draw ``(loss, lambda)``; by default a new figure with
            two rows sharing the horizontal axis.

        Returns
        -------
        TrainingCurvesDisplay
            ``self``, with its figure, axes and lines set.
        """
        plt = _pyplot("TrainingCurvesDisplay")
        self.x_, x_label = self._x_values()
        if ax is None:
            _, ax = plt.subplots(2, 1, sharex=True, figsize=(6.4, 6.0))
        if len(ax) != 2:
            raise ValueError(
                "ax must be a sequence of two matplotlib Axes (loss, damping). "
                f"Received: ax={ax!r}"
            )
        self.ax_, self.ax_damping_ = ax
        self.figure_ = self.ax_.figure
        record = self.history.history

        (self.loss_line_,) = self.ax_.plot(self.x_, record["loss"], label="loss")
        self.ax_.set_yscale("log")
        self.ax_.set_ylabel("training loss")
        # The message, wrapped to the width of the axes.
        self.ax_.set_title(
            textwrap.fill(f"Stopped: {self.history.message}", width=60), fontsize=10
        )
        self.ax_validation_ = self.validation_line_ = None
        if "validation_score" in record:
            self.ax_validation_ = self.ax_.twinx()
            (self.validation_line_,) = self.ax_validation_.plot(
                self.x_, record["validation_score"], color="C1", label="validation"
            )
            self.ax_validation_.set_ylabel("validation score")
        self.best_line_ = None
        if self.history.best_epoch is not None:
            self.best_line_ = self.ax_.axvline(
                self.x_[self.history.best_epoch],
                color="0.5",
                linestyle=":",
                label="best epoch",
            )
        handles = [self.loss_line_, self.validation_line_, self.best_line_]
        self.ax_.legend(handles=[h for h in handles if h is not None])

        (self.damping_line_,) = self.ax_damping_.plot(
            self.x_, record["damping"], color="C2"
        )
        self.ax_damping_.set_yscale("log")
        self.ax_damping_.set_ylabel("damping (lambda)")
        self.ax_damping_.set_xlabel(x_label)
        return self


def _predicts_std(estimator: Any) -> bool:
    """Whether ``estimator.predict`` takes ``return_std``."""
    try:
        parameters = inspect.signature(estimator.predict).parameters
    except (TypeError, ValueError):
        return False
    return "return_std" in parameters


class PredictionsDisplay(PredictionErrorDisplay):
    """Predictions against targets, with error bars of ``n_std`` deviations.

    A :class:`sklearn.metrics.PredictionErrorDisplay` of kind
    ``"actual_vs_predicted"`` (targets against predictions, and the
    diagonal of perfect predictions) that adds, when a predictive standard
    deviation ``y_std`` is known, horizontal error bars from
    ``y_pred - n_std * y_std`` to ``y_pred + n_std * y_std``.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,)
    y_pred : ndarray of shape (n_samples,)
    y_std : ndarray of shape (n_samples,), optional
        Standard deviation of each prediction.
    n_std : float, default=2.0
        Half-length of the error bars in standard deviations.

    Attributes
    ----------
    errorbar_ : matplotlib.container.ErrorbarContainer or None
        The error bars, ``None`` without ``y_std``.
    scatter_, line_, ax_, figure_
        As in :class:`~sklearn.metrics.PredictionErrorDisplay`.

    See Also
    --------
    TrainingCurvesDisplay : The training record.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn_lm.inspection import PredictionsDisplay
    >>> X = np.linspace(0, 1, 30).reshape(-1, 1)
    >>> y = 2 * X.ravel() + np.random.default_rng(0).normal(0, 0.1, 30)
    >>> model = BayesianRidge().fit(X, y)
    >>> display = PredictionsDisplay.from_estimator(model, X, y)
    >>> display.errorbar_ is not None
    True
    """

    def __init__(self, *, y_true, y_pred, y_std=None, n_std: float = 2.0):
        super().__init__(y_true=y_true, y_pred=y_pred)
        self.y_std = y_std
        self.n_std = n_std

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X,
        y,
        *,
        n_std: float = 2.0,
        subsample: float | int | None = 1000,
        random_state=None,
        ax=None,
        scatter_kwargs: dict | None = None,
        line_kwargs: dict | None = None,
        errorbar_kwargs: dict | None = None,
    ) -> PredictionsDisplay:
        """Predict ``X`` with ``estimator`` and draw the predictions.

        The standard deviations come from ``estimator.predict(X,
        return_std=True)`` when its ``predict`` has a ``return_std``
        parameter (for example :class:`sklearn.linear_model.BayesianRidge`);
        otherwise no error bars are drawn.

        Parameters
        ----------
        estimator : fitted regressor
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        n_std : float, default=2.0
            Half-length of the error bars in standard deviations.
        subsample, random_state, ax, scatter_kwargs, line_kwargs
            As in :meth:`sklearn.metrics.PredictionErrorDisplay.from_estimator`.
        errorbar_kwargs : dict, optional
            Passed to ``matplotlib.axes.Axes.errorbar``.

        Returns
        -------
        PredictionsDisplay
        """
        y_std = None
        if _predicts_std(estimator):
            y_pred, y_std = estimator.predict(X, return_std=True)
        else:
            y_pred = estimator.predict(X)
        return cls.from_predictions(
            y,
            y_pred,
            y_std=y_std,
            n_std=n_std,
            subsample=subsample,
            random_state=random_state,
            ax=ax,
            scatter_kwargs=scatter_kwargs,
            line_kwargs=line_kwargs,
            errorbar_kwargs=errorbar_kwargs,
        )

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_pred,
        *,
        y_std=None,
        n_std: float = 2.0,
        subsample: float | int | None = 1000,
        random_state=None,
        ax=None,
        scatter_kwargs: dict | None = None,
        line_kwargs: dict | None = None,
        errorbar_kwargs: dict | None = None,
    ) -> PredictionsDisplay:
        """Draw given predictions (and standard deviations) against targets.

        Parameters are those of :meth:`from_estimator`, with ``y_true``,
        ``y_pred`` and ``y_std`` (optional) arrays of shape (n_samples,).

        Returns
        -------
        PredictionsDisplay
        """
        arrays = [np.ravel(y_true), np.ravel(y_pred)]
        if y_std is not None:
            arrays.append(np.ravel(y_std))
        n = arrays[0].shape[0]
        if any(a.shape[0] != n for a in arrays):
            raise ValueError(
                "y_true, y_pred and y_std must have the same number of samples. "
                f"Received: {[a.shape[0] for a in arrays]}"
            )
        size = None
        if isinstance(subsample, Integral) and not isinstance(subsample, bool):
            size = int(subsample)
        elif isinstance(subsample, Real):
            size = int(subsample * n)
        if size is not None and size < n:
            rng = check_random_state(random_state)
            index = rng.choice(n, size=size, replace=False)
            arrays = [a[index] for a in arrays]
        display = cls(
            y_true=arrays[0],
            y_pred=arrays[1],
            y_std=arrays[2] if y_std is not None else None,
            n_std=n_std,
        )
        return display.plot(
            ax=ax,
            scatter_kwargs=scatter_kwargs,
            line_kwargs=line_kwargs,
            errorbar_kwargs=errorbar_kwargs,
        )

    def plot(
        self,
        ax=None,
        *,
        kind: str = "actual_vs_predicted",
        scatter_kwargs: dict | None = None,
        line_kwargs: dict | None = None,
        errorbar_kwargs: dict | None = None,
    ) -> PredictionsDisplay:
        """Draw targets against predictions, with the error bars.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            By default a new figure.
        kind : {"actual_vs_predicted"}, default="actual_vs_predicted"
            Only targets against predictions (the error bars are on the
            predictions).
        scatter_kwargs, line_kwargs
            As in :meth:`sklearn.metrics.PredictionErrorDisplay.plot`.
        errorbar_kwargs : dict, optional
            Passed to ``matplotlib.axes.Axes.errorbar``.

        Returns
        -------
        PredictionsDisplay
        """
        _pyplot("PredictionsDisplay")
        if kind != "actual_vs_predicted":
            raise ValueError(
                "PredictionsDisplay draws kind='actual_vs_predicted' only. "
                f"Received: kind={kind!r}"
            )
        super().plot(
            ax=ax, kind=kind, scatter_kwargs=scatter_kwargs, line_kwargs=line_kwargs
        )
        self.errorbar_ = None
        if self.y_std is not None:
            options = {"fmt": "none", "ecolor": "C0", "alpha": 0.4, "elinewidth": 1}
            options.update(errorbar_kwargs or {})
            self.errorbar_ = self.ax_.errorbar(
                self.y_pred,
                self.y_true,
                xerr=self.n_std * np.asarray(self.y_std),
                label=f"±{self.n_std:g} std",
                **options,
            )
            self.ax_.legend()
        return self
