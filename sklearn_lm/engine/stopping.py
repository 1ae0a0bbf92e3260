"""When :meth:`Trainer.fit <sklearn_lm.engine.Trainer.fit>` stops.

Every stopping rule of the engine's loop is here, each deciding a
:class:`~sklearn_lm.engine.status.Status`. After each epoch (its record
written, the model holding its weights) the rules are checked in this order,
and the first that fires ends training:

1. :attr:`~Status.NON_FINITE`: a step met a non-finite loss;
2. :attr:`~Status.FTOL`, :attr:`~Status.XTOL`, :attr:`~Status.GTOL`: the
   convergence tests of ``scipy.optimize.least_squares`` on the epoch's step
   (:class:`ConvergenceTests`), for full-batch epochs over arrays only: a
   mini-batch step sees one batch, so its reductions say nothing of the
   whole objective, and mini-batch epochs do not apply them;
3. :attr:`~Status.NO_IMPROVEMENT`: the monitored quantity did not improve
   for ``patience`` epochs (:class:`NoImprovement`);
4. :attr:`~Status.DAMPING_MAX`: a step was rejected with lambda at its
   maximum;
5. :attr:`~Status.CALLBACK`: a callback returned ``True``;
6. :attr:`~Status.TIME_LIMIT`: ``time_limit`` seconds have passed since the
   fit started.

Rules 1 and 4 come from the steps themselves (the ``stop`` code of every
step, decided by :func:`sklearn_lm.engine.search.stop_code`, an index into
:data:`~sklearn_lm.engine.status.GRAPH_CODES`). When none fires
after the last requested epoch, the status is :attr:`~Status.MAX_EPOCHS`.

More rules are :class:`StoppingRule` objects given to ``fit`` as ``rules``:
checked after these, in order. A new rule is one such class (with its
test); a new *reason* is also one member of
:class:`~sklearn_lm.engine.status.Status`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from .config import check_number
from .status import Status

__all__ = [
    "ConvergenceTests",
    "EpochEnd",
    "EvidencePlateau",
    "NoImprovement",
    "StepMeasures",
    "StoppingRule",
    "StoppingRules",
]

Callback = Callable[[int, dict], Any]


class EpochEnd(NamedTuple):
    """What a stopping rule sees after an epoch.

    Attributes
    ----------
    model : keras.Model
        The model, holding the epoch's weights.
    epoch : int
        The epoch's index over the trainer's life.
    position : int
        The epoch's position in this fit (0 for the first).
    logs : dict
        The epoch's record (``"loss"``, ``"damping"``, ``"attempts"``,
        ``"steps"``, and ``"validation_score"`` with validation).
    step : Status or None
        What the epoch's steps reported (their ``stop`` codes).
    elapsed : float
        Seconds since the fit started.
    """

    model: Any
    epoch: int
    position: int
    logs: dict
    step: Status | None
    elapsed: float


class StoppingRule:
    """A reason to stop training, checked after every epoch.

    Subclasses implement :meth:`fired`; :meth:`Trainer.fit
    <sklearn_lm.engine.Trainer.fit>` checks the rules given as ``rules``
    after its built-in ones, in order. A rule reports :attr:`status` (a
    member of the library's :class:`~sklearn_lm.engine.status.Status`
    vocabulary, :attr:`Status.CALLBACK` unless it sets another) and
    :attr:`message`, which the history keeps.

    Attributes
    ----------
    status : Status
        Why training stopped when the rule fires.
    message : str or None
        The reason in words; ``None`` uses ``status.message``.
    """

    status: Status = Status.CALLBACK
    message: str | None = None

    def fired(self, end: EpochEnd) -> bool:
        """Whether training stops after the epoch described by ``end``."""
        raise NotImplementedError


class NoImprovement:
    """Epochs without improvement of a quantity for which higher is better.

    For values ``v_1, v_2, ...`` the best so far is
    ``b_k = max(b_{k-1}, v_k)`` with ``b_0 = -inf``. Epoch ``k`` improves
    when ``v_k >= b_{k-1} + tol``; the count of consecutive epochs without
    improvement ``c_k`` is ``c_{k-1} + 1`` otherwise, ``0`` if it improves,
    and the rule fires once ``c_k >= patience``. For a loss (``v = -loss``)
    an epoch improves when its loss is at most the lowest so far minus
    ``tol``. A NaN value compares false, so it does not count as an epoch
    without improvement.

    Parameters
    ----------
    tol : float, default=0.0
        Smallest improvement that counts.
    patience : int or None, default=None
        Epochs without improvement that fire the rule; ``None`` never fires
        (the best value is still tracked).
    """

    def __init__(self, tol: float = 0.0, patience: int | None = None):
        self.tol = tol
        self.patience = patience
        self.best = -math.inf
        self.best_index: int | None = None
        self.count = 0

    def update(self, value: float, index: int) -> bool:
        """Count epoch ``index`` with ``value``; return whether it is a new best."""
        if value < self.best + self.tol:
            self.count += 1
        else:
            self.count = 0
        if value > self.best:
            self.best, self.best_index = value, index
            return True
        return False

    @property
    def fired(self) -> bool:
        """Whether ``patience`` epochs in a row did not improve."""
        return self.patience is not None and self.count >= self.patience


class EvidencePlateau(StoppingRule):
    """Stops when the log evidence of Bayesian regularization levels off.

    With Bayesian regularization (:mod:`sklearn_lm.engine.bayesian`) each
    epoch's record holds ``"log_evidence"``, ``ln p(D | alpha, beta)``,
    MacKay's criterion for the weights and hyperparameters. The objective
    the steps minimise moves with ``alpha`` and ``beta``, so its loss keeps
    falling by small amounts while they converge; the evidence says when
    that no longer matters. The rule is :class:`NoImprovement` on the log
    evidence: an epoch improves when it rises by at least ``tol`` nats above
    the best so far, and the rule fires after ``patience`` epochs in a row
    without improvement. A record without a finite log evidence (no
    Bayesian regularization, a failed factorisation) resets the count.

    Parameters
    ----------
    tol : float
        Smallest rise of the log evidence (in nats) that counts. The
        estimators pass their ``tol`` times the number of residuals ``m``
        (samples times outputs): the loss rule's ``tol`` is per sample, and
        the evidence is a sum over the residuals.
    patience : int
        Epochs without improvement that fire the rule.

    Examples
    --------
    >>> from sklearn_lm.engine.stopping import EpochEnd, EvidencePlateau
    >>> rule = EvidencePlateau(tol=0.1, patience=2)
    >>> [rule.fired(EpochEnd(None, k, k, {"log_evidence": v}, None, 0.0))
    ...  for k, v in enumerate([-50.0, -40.0, -39.95, -39.99])]
    [False, False, False, True]
    """

    status = Status.NO_IMPROVEMENT

    def __init__(self, tol: float, patience: int):
        check_number("tol", tol, 0.0)
        check_number("patience", patience, 1, integer=True)
        self.tol = float(tol)
        self.patience = int(patience)
        self.message = (
            f"The log evidence did not rise by at least {self.tol:.3g} nats "
            f"for {self.patience} epochs."
        )
        self._monitor = NoImprovement(self.tol, self.patience)

    def fired(self, end: EpochEnd) -> bool:
        value = end.logs.get("log_evidence")
        if value is None or not math.isfinite(value):
            self._monitor.count = 0
            return False
        self._monitor.update(float(value), end.position)
        return self._monitor.fired


class StepMeasures(NamedTuple):
    """What the convergence tests read from a step, as floats.

    The fields of the same names of
    :class:`~sklearn_lm.engine.search.StepResult` (see
    :mod:`sklearn_lm.engine.search` for their definitions).
    """

    actual_reduction: float
    predicted_reduction: float
    step_norm: float
    weight_norm: float
    gradient_cosine: float

    @classmethod
    def of(cls, result) -> StepMeasures:
        """The measures of a :class:`~sklearn_lm.engine.search.StepResult`."""
        return cls(*(float(getattr(result, name)) for name in cls._fields))


class ConvergenceTests:
    """MINPACK's convergence tests, as ``scipy.optimize.least_squares`` has them.

    For the last attempt of a full-batch step, with ``a`` and ``p`` its
    actual and predicted relative reductions of the objective, ``dw`` its
    move, ``w`` the weights before it and ``gamma`` the largest scaled
    gradient at ``w`` (:mod:`sklearn_lm.engine.search`):

    * :attr:`Status.FTOL` when ``|a| <= ftol``, ``p <= ftol`` and
      ``a <= 2 p`` (the relative reduction of the cost is below ``ftol``,
      and the quadratic model agrees with it);
    * :attr:`Status.XTOL` when ``||dw|| <= xtol (xtol + ||w||)``;
    * :attr:`Status.GTOL` when ``gamma <= gtol``. For a least-squares loss
      without L2 term ``gamma`` is MINPACK's largest ``|cos|`` of the angle
      between a Jacobian column and the residual vector; otherwise it is the
      gradient scaled by the curvature and the loss,
      ``max_j |g_j| / sqrt(H_jj L)``.

    MINPACK's ``xtol`` compares the trust-region radius rather than the step
    with ``||w||``; LM's step is that radius once ``lambda`` is large. A
    tolerance of ``None`` (or 0 for ``ftol`` and ``xtol``) turns its test
    off.

    Parameters
    ----------
    ftol, xtol, gtol : float or None
    """

    def __init__(
        self,
        ftol: float | None = None,
        xtol: float | None = None,
        gtol: float | None = None,
    ):
        self.ftol = None if ftol is None else check_number("ftol", ftol, 0)
        self.xtol = None if xtol is None else check_number("xtol", xtol, 0)
        self.gtol = None if gtol is None else check_number("gtol", gtol, 0)

    def check(self, m: StepMeasures | None) -> Status | None:
        """The status of the first test that fires (in the order above), or None."""
        if m is None:
            return None
        if (
            self.ftol
            and abs(m.actual_reduction) <= self.ftol
            and m.predicted_reduction <= self.ftol
            and m.actual_reduction <= 2.0 * m.predicted_reduction
        ):
            return Status.FTOL
        if self.xtol and m.step_norm <= self.xtol * (self.xtol + m.weight_norm):
            return Status.XTOL
        if self.gtol is not None and m.gradient_cosine <= self.gtol:
            return Status.GTOL
        return None


class StoppingRules:
    """The stopping rules of one fit, checked after every epoch.

    Parameters
    ----------
    tol : float, optional
        Smallest improvement of the monitored quantity (see
        :class:`NoImprovement`). The no-improvement rule is on when ``tol``
        or ``patience`` is given; ``tol`` then defaults to 0.
    patience : int, optional
        Epochs in a row without improvement that stop training (default 1
        when only ``tol`` is given).
    validation : callable, optional
        ``validation()`` returns a score of the model's current weights,
        higher is better (for example minus a validation loss). Called after
        every epoch; when given it is the monitored quantity, else minus the
        training loss is.
    restore_best : bool, default=True
        With ``validation``: give the model back the weights of the epoch
        with the best score when training ends (:meth:`restore`).
    time_limit : float, optional
        Seconds after which training stops (checked after each epoch, so at
        least one epoch runs).
    callbacks : iterable of callables, optional
        ``callback(epoch, logs)`` after each epoch; ``True`` stops training.
    rules : iterable of StoppingRule, optional
        More rules, checked after the built-in ones, in order.
    convergence : ConvergenceTests, optional
        The convergence tests, applied to the epochs whose step measures are
        given (full-batch epochs); by default none.
    """

    def __init__(
        self,
        *,
        tol: float | None = None,
        patience: int | None = None,
        validation: Callable[[], float] | None = None,
        restore_best: bool = True,
        time_limit: float | None = None,
        callbacks: Iterable[Callback] | None = None,
        rules: Iterable[StoppingRule] | None = None,
        convergence: ConvergenceTests | None = None,
    ):
        self.convergence = convergence or ConvergenceTests()
        if tol is not None:
            tol = check_number("tol", tol, 0)
        if patience is not None:
            patience = check_number("patience", patience, 1, integer=True)
        elif tol is not None:
            patience = 1
        if validation is not None and not callable(validation):
            raise TypeError(
                "validation must be a callable returning a score. "
                f"Received: validation={validation!r}"
            )
        if not isinstance(restore_best, bool | np.bool_):
            raise TypeError(
                f"restore_best must be a bool. Received: restore_best={restore_best!r}"
            )
        if time_limit is not None:
            time_limit = check_number("time_limit", time_limit, 0)
        self.monitor = NoImprovement(tol or 0.0, patience)
        self.validation = validation
        self.restore_best = bool(restore_best) and validation is not None
        self.time_limit = time_limit
        self.callbacks = list(callbacks or [])
        self.rules = list(rules or [])
        for rule in self.rules:
            if not isinstance(rule, StoppingRule):
                raise TypeError(
                    "rules must be StoppingRule instances. "
                    f"Received: rules=[..., {rule!r}, ...]"
                )
        #: The message of the rule that stopped training (``None``: the
        #: status's own).
        self.message: str | None = None
        self._started = time.perf_counter()
        self._best_weights: list | None = None

    def score(self, logs: dict[str, Any]) -> None:
        """Add the epoch's ``"validation_score"`` to ``logs`` (with validation)."""
        if self.validation is not None:
            logs["validation_score"] = float(self.validation())

    def after_epoch(
        self,
        model,
        epoch: int,
        position: int,
        logs: dict[str, Any],
        step: Status | None,
        measures: StepMeasures | None = None,
    ) -> Status | None:
        """Why training stops after this epoch, or ``None`` to go on.

        Parameters
        ----------
        model : keras.Model
            The model, holding the epoch's weights.
        epoch : int
            The epoch's index over the trainer's life (given to callbacks).
        position : int
            The epoch's position in this fit (0 for the first).
        logs : dict
            The epoch's record (``"loss"``, and ``"validation_score"`` with
            validation), given to callbacks.
        step : Status or None
            What the epoch's steps reported (their ``stop`` codes).
        measures : StepMeasures, optional
            The epoch's step, for the convergence tests (full-batch epochs).
        """
        if self.validation is None:
            value = -logs["loss"]
        else:
            value = logs["validation_score"]
        if self.monitor.update(value, position) and self.restore_best:
            self._best_weights = [np.array(w, copy=True) for w in model.get_weights()]
        asked = [bool(callback(epoch, logs)) for callback in self.callbacks]
        converged = self.convergence.check(measures)
        fired = (
            (step is Status.NON_FINITE, Status.NON_FINITE),
            (converged is not None, converged),
            (self.monitor.fired, Status.NO_IMPROVEMENT),
            (step is Status.DAMPING_MAX, Status.DAMPING_MAX),
            (any(asked), Status.CALLBACK),
            (self._out_of_time(), Status.TIME_LIMIT),
        )
        status = next((status for rule, status in fired if rule), None)
        if status is not None or not self.rules:
            return status
        end = EpochEnd(
            model, epoch, position, logs, step, time.perf_counter() - self._started
        )
        for rule in self.rules:
            if rule.fired(end):
                self.message = rule.message
                return rule.status
        return None

    def _out_of_time(self) -> bool:
        if self.time_limit is None:
            return False
        return time.perf_counter() - self._started >= self.time_limit

    @property
    def best_position(self) -> int | None:
        """Position in this fit of the epoch with the best monitored value."""
        return self.monitor.best_index

    def restore(self, model) -> None:
        """Set the weights of the best-scoring epoch (``restore_best``)."""
        if self._best_weights is not None:
            model.set_weights(self._best_weights)
