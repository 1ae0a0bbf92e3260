"""Plumbing shared by :class:`LMRegressor` and :class:`LMClassifier`."""

from __future__ import annotations

import copy
import functools
import math
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real
from typing import NamedTuple

import keras
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._threads import configure_tensorflow_threads
from ..engine import Status, Trainer, TrainingHistory
from ..engine import bayesian as bayesian_module
from ..engine import damping as damping_module
from ..engine.stopping import EvidencePlateau
from ..network import ACTIVATIONS, build_network, forward, init_from_data
from ._progress import EpochProgress, StepProgress

_INT32_MAX = np.iinfo(np.int32).max


class _Samples(NamedTuple):
    """Samples to train on (``y``: encoded targets) or to score (labels)."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None


def _take(sample_weight, index):
    return None if sample_weight is None else sample_weight[index]


def _relative(sample_weight):
    """Weights rescaled to mean 1: the objective is a weighted mean, so only
    relative weights matter."""
    if sample_weight is None:
        return None
    total = float(np.sum(sample_weight))
    if not total > 0:
        raise ValueError(
            "The sample weights of the training samples are all zero "
            "(after setting aside the validation set); at least one "
            "training sample needs a positive weight."
        )
    return sample_weight * (sample_weight.shape[0] / total)


class _EpochLines:
    """The estimators' line per epoch (``verbose``), numbered from ``first``."""

    def __init__(self, first: int):
        self.number = first

    def __call__(self, epoch: int, logs: dict) -> bool:
        message = (
            f"Epoch {self.number}: loss = {logs['loss']:.8g}, "
            f"damping = {logs['damping']:.3e}, attempts = {logs['attempts']:.1f}"
        )
        if "validation_score" in logs:
            message += f", validation score = {logs['validation_score']:.6f}"
        print(message)
        self.number += 1
        return False


class BaseLM(BaseEstimator, ABC):
    """Base class of the Levenberg-Marquardt estimators.

    Holds what regression and classification share: hyperparameter
    validation, building the network, training through the engine's
    :class:`~sklearn_lm.engine.Trainer` (whose ``fit`` runs the epochs and
    applies the stopping rules, early stopping included), the fitted
    records, progress printing and pickling. The hyperparameters reach the
    engine through two mappings: :meth:`_step_options` (the LM step) and
    :meth:`_stopping_options` (the stopping rules). Subclasses encode their
    targets, choose the loss and turn network outputs into predictions.

    This class should not be used directly; use :class:`LMRegressor` or
    :class:`LMClassifier`.
    """

    _parameter_constraints: dict = {
        "hidden": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "weight_init": [StrOptions({"data", "glorot"})],
        "damping": [Interval(Real, 0, None, closed="neither")],
        "damping_mode": [
            StrOptions({"standard", "fletcher"}),
            damping_module.Damping,
        ],
        "damping_increase": [Interval(Real, 1, None, closed="neither")],
        "damping_decrease": [Interval(Real, 0, 1, closed="right")],
        "damping_update": [StrOptions({"fixed", "gain_ratio"})],
        "damping_min": [Interval(Real, 0, None, closed="neither")],
        "damping_max": [Interval(Real, 0, None, closed="neither")],
        "max_attempts": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"auto", "direct", "cg"})],
        "cg_max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
            StrOptions({"auto"}),
        ],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "bayesian": ["boolean", StrOptions({"auto"})],
        "bayesian_groups": [StrOptions({"single", "layer"})],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    @abstractmethod
    def __init__(
        self,
        *,
        hidden,
        activation,
        weight_init,
        loss,
        damping,
        damping_mode,
        damping_increase,
        damping_decrease,
        damping_update,
        damping_min,
        damping_max,
        max_attempts,
        solver,
        cg_max_iter,
        batch_size,
        learning_rate,
        max_iter,
        tol,
        n_iter_no_change,
        early_stopping,
        validation_fraction,
        alpha,
        bayesian,
        bayesian_groups,
        dtype,
        random_state,
        n_init,
        warm_start,
        verbose,
    ):
        self.hidden = hidden
        self.activation = activation
        self.weight_init = weight_init
        self.loss = loss
        self.damping = damping
        self.damping_mode = damping_mode
        self.damping_increase = damping_increase
        self.damping_decrease = damping_decrease
        self.damping_update = damping_update
        self.damping_min = damping_min
        self.damping_max = damping_max
        self.max_attempts = max_attempts
        self.solver = solver
        self.cg_max_iter = cg_max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.alpha = alpha
        self.bayesian = bayesian
        self.bayesian_groups = bayesian_groups
        self.dtype = dtype
        self.random_state = random_state
        self.n_init = n_init
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Subclass hooks
    # ------------------------------------------------------------------
    @abstractmethod
    def _validate_input(self, X, y, *, reset: bool):
        """Validate ``X`` and ``y`` with ``validate_data``; return both."""

    @abstractmethod
    def _encode_targets(self, y, sample_weight, *, first_call, incremental, classes):
        """Set the target-related fitted attributes on the first call and
        return ``(targets, sample_weight, stratify)`` for the engine, where
        ``sample_weight`` may now include class weights and ``stratify`` is
        an array to stratify the validation split on, or ``None``."""

    @abstractmethod
    def _make_loss(self):
        """Return the engine loss matching the encoded targets."""

    @abstractmethod
    def _score_outputs(self, outputs, y, sample_weight) -> float:
        """Validation score (higher is better) of raw network outputs."""

    # ------------------------------------------------------------------
    # Validation helpers
    # ------------------------------------------------------------------
    def _hidden_units(self) -> tuple[int, ...]:
        hidden = self.hidden
        if isinstance(hidden, Integral) and not isinstance(hidden, bool):
            return (int(hidden),)
        units = list(hidden)
        if any(
            isinstance(u, bool) or not isinstance(u, Integral) or u < 1 for u in units
        ):
            raise InvalidParameterError(
                f"The 'hidden' parameter of {type(self).__name__} must be an int "
                "in the range [1, inf) or a sequence of such ints (an empty "
                f"sequence gives a linear model). Got {hidden!r} instead."
            )
        return tuple(int(u) for u in units)

    def _check_damping_bounds(self) -> None:
        if isinstance(self.damping_mode, damping_module.Damping):
            return
        if not self.damping_min < self.damping_max:
            raise ValueError(
                "damping_min must be smaller than damping_max. Got "
                f"damping_min={self.damping_min!r} and "
                f"damping_max={self.damping_max!r}."
            )
        if not self.damping_min <= self.damping <= self.damping_max:
            raise ValueError(
                "damping must lie within [damping_min, damping_max]. Got "
                f"damping={self.damping!r}, damping_min={self.damping_min!r} and "
                f"damping_max={self.damping_max!r}."
            )

    def _architecture(self) -> tuple:
        return (self._hidden_units(), self.activation, self.dtype)

    def _make_damping(self, initial: float | None = None):
        if isinstance(self.damping_mode, damping_module.Damping):
            damping = copy.deepcopy(self.damping_mode)
            if initial is not None:
                damping.initial = float(
                    np.clip(initial, damping.min_value, damping.max_value)
                )
            return damping
        if initial is None:
            initial = self.damping
        initial = float(np.clip(initial, self.damping_min, self.damping_max))
        return damping_module.get(
            self.damping_mode,
            initial=initial,
            increase=float(self.damping_increase),
            decrease=float(self.damping_decrease),
            update=self.damping_update,
            min_value=float(self.damping_min),
            max_value=float(self.damping_max),
        )

    #: ``solver="auto"`` picks conjugate gradients above this many weights.
    _CG_MIN_WEIGHTS = 1000

    def _solver(self, n_weights: int, *, bayesian: bool | None = None) -> str:
        """The solver ``solver="auto"`` stands for with ``n_weights`` weights
        (always ``"direct"`` with Bayesian regularization; ``bayesian``
        defaults to the fitted ``bayesian_``)."""
        if self.solver != "auto":
            return self.solver
        if bayesian is None:
            bayesian = self.bayesian_
        if bayesian:
            return "direct"
        return "cg" if n_weights > self._CG_MIN_WEIGHTS else "direct"

    #: ``bayesian="auto"`` is on below this many residuals (samples times
    #: outputs) per weight; ``None``: ``"auto"`` is always off.
    _AUTO_BAYESIAN_RATIO: float | None = None

    def _n_weights(self, n_features: int) -> int:
        """Weights (kernels and biases) of the network for ``n_features`` inputs."""
        units = (n_features, *self._hidden_units(), self.n_outputs_)
        return sum((a + 1) * b for a, b in zip(units[:-1], units[1:], strict=True))

    def _bayesian_enabled(self, n_rows: int, n_features: int) -> bool:
        """Whether this fit uses Bayesian regularization (``bayesian_``).

        ``True`` and ``False`` stand for themselves. ``"auto"`` is on when
        the fit allows it and the data are small for the network: the
        solver is ``"direct"`` (``solver="direct"``, or ``"auto"`` with at
        most :attr:`_CG_MIN_WEIGHTS` weights), the steps are full-batch,
        there is no early stopping, the loss has a likelihood (the mean
        squared error, or a cross-entropy on logits:
        :func:`~sklearn_lm.engine.bayesian.likelihood`), and
        ``n_rows * n_outputs_ < _AUTO_BAYESIAN_RATIO * n_weights``. This is
        the one place where ``"auto"`` is resolved; a subclass overrides
        :attr:`_AUTO_BAYESIAN_RATIO` or this method.
        """
        if self.bayesian != "auto":
            return bool(self.bayesian)
        ratio = self._AUTO_BAYESIAN_RATIO
        if ratio is None or not self._BAYESIAN_SUPPORTED:
            return False
        n_weights = self._n_weights(n_features)
        return (
            self._solver(n_weights, bayesian=False) == "direct"
            and self._batch_size(n_rows) is None
            and not self.early_stopping
            and bayesian_module.likelihood(self._make_loss()) is not None
            and n_rows * self.n_outputs_ < ratio * n_weights
        )

    def _step_options(self) -> dict:
        """The engine's step options from the hyperparameters.

        The one place where estimator parameters reach the LM step (fields of
        :class:`~sklearn_lm.engine.config.StepConfig`): a new step option is
        a parameter (constraint, ``__init__``, docstring) and a line here.
        """
        solver = self._solver(self.model_.count_params())
        options = {
            "learning_rate": float(self.learning_rate),
            "max_attempts": int(self.max_attempts),
            "l2": float(self.alpha),  # the estimators' alpha is the engine's l2
            "solver": solver,
            "cg_max_iter": int(self.cg_max_iter),
            # Geodesic acceleration would cost a second inexact solve per
            # attempt; with conjugate gradients it did not pay for it.
            "geodesic": solver == "direct",
            "bayesian": bool(self.bayesian_),
        }
        if self.bayesian_:
            # Without Bayesian regularization the groups are not used.
            options["bayesian_groups"] = self.bayesian_groups
        return options

    def _make_trainer(self, initial_damping: float | None = None):
        return Trainer(
            self.model_,
            loss=self._make_loss(),
            damping=self._make_damping(initial_damping),
            **self._step_options(),
        )

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------
    #: ``n_iter_no_change="auto"`` for full-batch epochs without early stopping.
    _FULL_BATCH_PATIENCE = 2
    #: ``n_iter_no_change="auto"`` otherwise (scikit-learn's default).
    _PATIENCE = 10

    def _patience(self, *, full_batch: bool) -> float:
        """Epochs without improvement that end training (``n_iter_no_change``)."""
        if self.n_iter_no_change != "auto":
            return self.n_iter_no_change
        if full_batch and not self.early_stopping:
            return self._FULL_BATCH_PATIENCE
        return self._PATIENCE

    def _batch_size(self, n_train: int) -> int | None:
        """Samples per step; ``None`` for full-batch epochs."""
        if self.batch_size is None or self.batch_size >= n_train:
            return None
        return self.batch_size

    def _stopping_options(self, validation, *, n_train: int, incremental: bool):
        """The engine's stopping rules (:meth:`Trainer.fit` arguments).

        ``tol`` and ``n_iter_no_change`` are the no-improvement rule, off for
        :meth:`partial_fit` and for ``n_iter_no_change=np.inf``; with
        Bayesian regularization also on the log evidence
        (:class:`~sklearn_lm.engine.stopping.EvidencePlateau`, ``tol`` times
        the number of residuals). With early
        stopping the engine scores the validation set after each epoch and
        restores the weights of the best-scoring one. The engine's
        convergence tests (``ftol``, ``xtol``, ``gtol``) are off: the
        estimators stop by these rules and by lambda at its maximum.
        """
        patience = self._patience(full_batch=self._batch_size(n_train) is None)
        rule = not incremental and patience != np.inf
        rules = []
        if rule and self._trainer.bayesian is not None:
            # The same rule on the log evidence, a sum over the m residuals.
            m = n_train * self._trainer.fn.n_outputs
            rules.append(EvidencePlateau(float(self.tol) * m, int(patience)))
        return {
            "rules": rules,
            "tol": float(self.tol) if rule else None,
            "patience": int(patience) if rule else None,
            "validation": None
            if validation is None
            else functools.partial(self._validation_score, validation),
            "restore_best": True,
            "ftol": None,
            "xtol": None,
            "gtol": None,
        }

    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        """Train on ``(X, y)``: ``max_iter`` epochs, or one with ``incremental``."""
        # Size TensorFlow's thread pools to this process's CPU share (e.g. in
        # joblib or Dask workers) before the first fit starts its runtime.
        configure_tensorflow_threads()
        first_call = self._check_fit_call(incremental)
        X, y, targets, sample_weight, stratify = self._training_data(
            X, y, sample_weight, first_call, incremental, classes
        )
        rng = check_random_state(self.random_state)
        init_seed, split_seed, shuffle_seed = (
            int(rng.randint(_INT32_MAX)) for _ in range(3)
        )
        train, validation = self._split(
            X, y, targets, sample_weight, stratify, split_seed
        )
        if not incremental:
            self.bayesian_ = self._bayesian_enabled(*train.X.shape)
        elif first_call:  # partial_fit: "auto" means off
            self.bayesian_ = self.bayesian != "auto" and bool(self.bayesian)
        # Restarts only when a new network is created by fit.
        n_starts = int(self.n_init) if first_call and not incremental else 1
        best, scores = None, []
        for start in range(n_starts):
            if start:  # the first start draws exactly what a single fit does
                init_seed = int(rng.randint(_INT32_MAX))
            history = self._train_start(
                train, validation, init_seed, rng, shuffle_seed, first_call, incremental
            )
            if n_starts > 1:
                scores.append(self._restart_score(history, train))
                if self.verbose:
                    print(f"Start {start + 1}/{n_starts}: score = {scores[-1]:.8g}")
                if best is None or scores[-1] > scores[best[0]]:
                    best = (start, self.model_, self._trainer, history)
        if best is not None:
            start, self.model_, self._trainer, history = best
        if first_call:
            self.best_init_ = 0 if best is None else start
            self.init_scores_ = scores or None
        self._record(history, n_train=len(train.X))
        self._check_finite()
        if not incremental:
            self._report_stop(n_train=len(train.X))
        return self

    def _train_start(
        self, train, validation, init_seed, rng, shuffle_seed, first_call, incremental
    ):
        """One start: (re)build and initialise the network on a first call,
        train it; return the engine's record."""
        self._start(
            train.X.shape[1], init_seed, first_call=first_call, incremental=incremental
        )
        if first_call and self.weight_init == "data":
            # Spread the hidden units over the training inputs (without the
            # validation set), weighted as in the objective.
            init_from_data(
                self.model_,
                train.X,
                seed=int(rng.randint(_INT32_MAX)),
                sample_weight=train.sample_weight,
            )
        return self._train(train, validation, incremental, shuffle_seed)

    def _restart_score(self, history, train) -> float:
        """How good the start just trained is (``n_init``), higher is better.

        With early stopping: its best validation score (its weights are
        those of that epoch); with Bayesian regularization: its log
        evidence (MacKay's criterion for comparing the minima a network
        lands in; the lowest training loss would pick the least
        regularized); else minus its final training loss (the data term,
        without the ``alpha`` penalty). Non-finite scores count as
        ``-inf``. This is the one place that ranks starts.
        """
        state = getattr(self._trainer, "bayesian", None)
        if state is not None:
            score = state.log_evidence
        elif self.early_stopping:
            scores = history.history["validation_score"]
            score = (
                scores[history.best_epoch]
                if history.best_epoch is not None
                else -np.inf
            )
        else:
            score = -self._trainer.evaluate(train.X, train.y, train.sample_weight)
        return float(score) if np.isfinite(score) else -np.inf

    def _check_fit_call(self, incremental: bool) -> bool:
        """Check the parameters for this call; return whether it starts afresh."""
        self._hidden_units()
        self._check_damping_bounds()
        self._check_bayesian()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True.")
        fitted = hasattr(self, "model_")
        first_call = not fitted or not (incremental or self.warm_start)
        if not first_call and self._architecture() != self._architecture_:
            raise ValueError(
                "Continuing training (warm_start=True or partial_fit) needs the "
                "network fitted before: hidden, activation and dtype must not "
                f"change. Fitted with {self._architecture_}, got "
                f"{self._architecture()}."
            )
        if not first_call and incremental:
            self._check_same_groups()
        return first_call

    def _check_same_groups(self) -> None:
        """``partial_fit`` continues the weight precisions of Bayesian
        regularization fitted before (also after unpickling): their groups
        (``bayesian_groups``) must not change."""
        trainer = getattr(self, "_trainer", None)
        if trainer is not None:
            state = trainer.bayesian
        else:
            state = self.__dict__.get("_bayesian_state")
        if state is None:
            return
        fitted = "single" if state.groups is None else "layer"
        if fitted != self.bayesian_groups:
            raise ValueError(
                "partial_fit continues the Bayesian regularization fitted "
                "before, whose weight precisions are grouped by "
                f"bayesian_groups={fitted!r}; it cannot change. Fit afresh "
                f"(fit) to use the new value. Received: "
                f"bayesian_groups={self.bayesian_groups!r}"
            )

    #: Whether the estimator offers Bayesian regularization (``bayesian``).
    _BAYESIAN_SUPPORTED = True

    def _check_bayesian(self) -> None:
        """Refuse ``bayesian=True`` with what it does not support (yet);
        ``"auto"`` never raises (it is off where it cannot be on)."""
        if self.bayesian == "auto" or not self.bayesian:
            return
        if not self._BAYESIAN_SUPPORTED:
            raise ValueError(
                f"Bayesian regularization is not supported yet by "
                f"{type(self).__name__} (the evidence framework for "
                "classification is not built). Received: bayesian=True"
            )
        refused = {
            "solver": self.solver == "cg",
            "early_stopping": self.early_stopping,
        }
        for name, bad in refused.items():
            if bad:
                raise ValueError(
                    "bayesian=True needs the direct solver and no early "
                    "stopping (the evidence replaces it); it does "
                    f"not support {name}={getattr(self, name)!r} yet. Received: "
                    f"{name}={getattr(self, name)!r}"
                )

    def _training_data(self, X, y, sample_weight, first_call, incremental, classes):
        """Validated ``X`` (in ``dtype``) and ``y``, the encoded targets, the
        sample weights and the labels to stratify a validation split on."""
        X, y = self._validate_input(X, y, reset=first_call)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        targets, sample_weight, stratify = self._encode_targets(
            y,
            sample_weight,
            first_call=first_call,
            incremental=incremental,
            classes=classes,
        )
        with np.errstate(over="ignore"):
            X = np.asarray(X, dtype=self.dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError(
                f"X contains values too large for dtype={self.dtype!r}. Scale the "
                "data (e.g. with sklearn.preprocessing.StandardScaler) or use "
                "dtype='float64'."
            )
        return X, y, targets, sample_weight, stratify

    def _start(self, n_features: int, seed: int, *, first_call, incremental) -> None:
        """Build the network on a first call; restart the schedule and the
        records unless ``partial_fit`` continues (``warm_start`` keeps the
        weights and ``t_``)."""
        if first_call:
            self.model_ = build_network(
                n_features,
                self.n_outputs_,
                hidden=self._hidden_units(),
                activation=self.activation,
                dtype=self.dtype,
                seed=seed,
            )
            self._architecture_ = self._architecture()
            self.t_ = 0
        if first_call or not incremental:
            self._trainer = None
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.damping_curve_ = []
            self.best_loss_ = np.inf
            self.history_ = TrainingHistory()

    def _split(self, X, y, targets, sample_weight, stratify, seed: int):
        """``(train, validation)`` samples; ``validation`` is ``None``
        without early stopping. Training weights are rescaled to mean 1."""
        if self.early_stopping:
            idx_train, idx_val = self._validation_split(X.shape[0], stratify, seed)
            train = _Samples(
                X[idx_train], targets[idx_train], _take(sample_weight, idx_train)
            )
            validation = _Samples(X[idx_val], y[idx_val], _take(sample_weight, idx_val))
        else:
            train, validation = _Samples(X, targets, sample_weight), None
        return train._replace(sample_weight=_relative(train.sample_weight)), validation

    def _train(self, train, validation, incremental: bool, seed: int):
        """Run the engine's :meth:`Trainer.fit` on the training samples."""
        if self._trainer is None:
            initial = None
            if incremental and self.damping_curve_:
                initial = self.damping_curve_[-1]
            self._trainer = self._make_trainer(initial)
            # An unpickled estimator continues the evidence's hyperparameters
            # too (partial_fit after a Bayesian-regularized fit).
            saved = self.__dict__.pop("_bayesian_state", None)
            if incremental and saved is not None and self._trainer.bayesian is not None:
                self._trainer.bayesian = saved
        batch_size = self._batch_size(len(train.X))
        epochs = 1 if incremental else int(self.max_iter)
        callbacks, step_callbacks = self._progress(epochs, len(train.X), batch_size)
        history = self._trainer.fit(
            train.X,
            train.y,
            epochs=epochs,
            batch_size=batch_size,
            sample_weight=train.sample_weight,
            shuffle=batch_size is not None,
            seed=seed,
            callbacks=callbacks,
            step_callbacks=step_callbacks,
            **self._stopping_options(
                validation, n_train=len(train.X), incremental=incremental
            ),
        )
        for progress in (*callbacks, *step_callbacks):
            getattr(progress, "close", lambda: None)()
        return history

    def _progress(self, epochs: int, n_train: int, batch_size: int | None):
        """Epoch and step callbacks that show progress (``verbose``).

        ``verbose=1``: a line per epoch. ``verbose>=2``: a progress bar over
        the steps of each mini-batch epoch (the epochs then run step by
        step, see :meth:`Trainer.fit`), or over the epochs when an epoch is
        one full-batch step.
        """
        if not self.verbose:
            return [], []
        if self.verbose < 2:
            return [_EpochLines(self.n_iter_ + 1)], []
        if batch_size is None:
            return [EpochProgress(epochs)], []
        return [], [StepProgress(math.ceil(n_train / batch_size), epochs)]

    def _validation_score(self, validation) -> float:
        """Score (higher is better) of the current network on ``validation``."""
        outputs = forward(self.model_, validation.X)
        return float(
            self._score_outputs(outputs, validation.y, validation.sample_weight)
        )

    def _record(self, history, *, n_train: int) -> None:
        """Fitted attributes from the engine's record of the epochs."""
        losses = history.history["loss"]
        self.n_iter_ += len(losses)
        self.t_ += n_train * len(losses)
        self.loss_curve_.extend(losses)
        self.damping_curve_.extend(history.history["damping"])
        self.best_loss_ = min([self.best_loss_, *losses])
        # Epochs numbered since the last fit, as n_iter_ counts them.
        history.epoch = list(range(len(self.history_.epoch), self.n_iter_))
        self.history_.extend(history)
        if self.early_stopping:
            self.validation_scores_ = list(history.history["validation_score"])
            self.best_validation_score_ = max([-np.inf, *self.validation_scores_])
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        self.stop_reason_ = history.stop_reason

    #: Fitted attributes of Bayesian regularization, removed by a fit without it.
    _BAYESIAN_ATTRIBUTES: tuple = ("alpha_", "gamma_", "gammas_", "log_evidence_")

    def _record_precisions(self, state) -> None:
        """``alpha_``, ``gamma_`` and ``gammas_`` from the evidence ``state``
        (:class:`~sklearn_lm.engine.bayesian.BayesianRegularization`) at the
        end of a fit, float64: ``alpha_`` a float with one precision
        (``bayesian_groups="single"``), else an array of one per group with
        ``gammas_`` the groups' ``gamma_g``. With ``state=None`` (a fit
        without Bayesian regularization) the attributes of an earlier fit
        (``_BAYESIAN_ATTRIBUTES``) are removed."""
        if state is None:
            for name in self._BAYESIAN_ATTRIBUTES:
                self.__dict__.pop(name, None)
            return
        if state.groups is None:
            self.alpha_ = float(state.alpha)
            self.__dict__.pop("gammas_", None)
        else:
            self.alpha_ = np.array(state.alpha, np.float64)
            self.gammas_ = np.array(state.gammas, np.float64)
        self.gamma_ = float(state.gamma)

    def _check_finite(self) -> None:
        if self.stop_reason_ is Status.NON_FINITE or not all(
            np.all(np.isfinite(w)) for w in self.model_.get_weights()
        ):
            raise ValueError(
                "Training produced a non-finite loss or non-finite weights. The "
                "input data may contain very large values; scale it, e.g. with "
                "sklearn.preprocessing.StandardScaler."
            )

    def _report_stop(self, *, n_train: int) -> None:
        """Say why :meth:`fit` stopped; warn when it did not converge."""
        if self.verbose and self.history_.stop_message is not None:
            print(f"{self.history_.stop_message} Stopping.")
        elif self.verbose and self.stop_reason_ is Status.NO_IMPROVEMENT:
            what = "Validation score" if self.early_stopping else "Training loss"
            patience = self._patience(full_batch=self._batch_size(n_train) is None)
            print(
                f"{what} did not improve more than tol={self.tol} for "
                f"{patience} consecutive epochs. Stopping."
            )
        elif self.verbose and self.stop_reason_ is Status.DAMPING_MAX:
            print(
                f"Damping reached damping_max={self.damping_max}: no step "
                "reduces the loss any more. Stopping."
            )
        if not self.stop_reason_.converged:
            warnings.warn(
                f"{type(self).__name__}: the maximum number of epochs "
                f"(max_iter={self.max_iter}) was reached and the optimization "
                "has not converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _validation_split(self, n_samples: int, stratify, seed: int):
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_val < 2 or n_samples - n_val < 1:
            raise ValueError(
                "early_stopping=True sets aside a validation set of "
                f"validation_fraction={self.validation_fraction} of the samples; "
                "it needs at least 2 validation samples and 1 training sample, "
                f"but got n_samples={n_samples}. Increase validation_fraction or "
                "the number of samples, or set early_stopping=False."
            )
        if stratify is not None:
            _, counts = np.unique(stratify, return_counts=True)
            if (
                counts.min() < 2
                or n_val < len(counts)
                or n_samples - n_val < len(counts)
            ):
                stratify = None
        from sklearn.model_selection import train_test_split

        return train_test_split(
            np.arange(n_samples),
            test_size=n_val,
            random_state=seed,
            stratify=stratify,
        )

    # ------------------------------------------------------------------
    # Prediction helpers
    # ------------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """Raw network outputs (float64) of validated ``X``."""
        return forward(self.model_, X)

    def _check_fitted(self) -> None:
        check_is_fitted(self, "model_")

    # ------------------------------------------------------------------
    # Pickling and tags
    # ------------------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())
        trainer = state.pop("_trainer", None)
        if trainer is not None:
            # The hyperparameters of Bayesian regularization (alpha, beta),
            # which partial_fit continues from; kept as such when the
            # estimator was unpickled and has not trained since.
            state.pop("_bayesian_state", None)
            if trainer.bayesian is not None:
                state["_bayesian_state"] = trainer.bayesian
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state"] = {
                "config": keras.saving.serialize_keras_object(model),
                "weights": [np.array(w, copy=True) for w in model.get_weights()],
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_model_state", None)
        if saved is not None:
            # Building the model starts TensorFlow: size its thread pools first
            # (an unpickled estimator in a joblib worker may never call fit).
            configure_tensorflow_threads()
            model = keras.saving.deserialize_keras_object(saved["config"])
            model.set_weights(saved["weights"])
            state["model_"] = model
            state["_trainer"] = None
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        return tags
