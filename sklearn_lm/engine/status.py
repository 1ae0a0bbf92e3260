"""Why training stopped: one vocabulary for the whole library.

Every stop reason is decided inside the engine (:mod:`sklearn_lm.engine.stopping`
and the compiled epoch of :mod:`sklearn_lm.engine.step`) and reported as a
:class:`Status`. :class:`~sklearn_lm.engine.Trainer` returns it on its
history, :class:`~sklearn_lm.engine.LMModel` keeps it as ``stop_status``, and
both estimators expose it as the fitted attribute ``stop_reason_``, from
which they also decide whether to issue a ``ConvergenceWarning``.

A :class:`Status` is a ``str``: ``Status.DAMPING_MAX == "damping_max"``, so it
prints, compares and serialises as its value.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "GRAPH_CODES", "from_graph_code"]


class Status(str, enum.Enum):
    """Why a fit stopped.

    Attributes
    ----------
    message : str
        The reason in words.
    converged : bool
        Whether the stop means the optimisation has nothing more to do (no
        ``ConvergenceWarning``): ``False`` only for :attr:`MAX_EPOCHS` and
        :attr:`TIME_LIMIT` (stopped by a budget) and :attr:`NON_FINITE`
        (failed).
    """

    #: The requested number of epochs ran without another rule stopping.
    MAX_EPOCHS = "max_epochs"
    #: The monitored quantity (training loss, or a validation score) did not
    #: improve by more than ``tol`` for ``patience`` consecutive epochs.
    NO_IMPROVEMENT = "no_improvement"
    #: A step was rejected with the damping factor at its maximum.
    DAMPING_MAX = "damping_max"
    #: The loss at the current weights is not finite.
    NON_FINITE = "non_finite"
    #: The relative reduction of the loss, actual and predicted, is at most
    #: ``ftol`` (:class:`~sklearn_lm.engine.stopping.ConvergenceTests`).
    FTOL = "ftol"
    #: The step is at most ``xtol (xtol + ||w||)``.
    XTOL = "xtol"
    #: The largest cosine between a Jacobian column and the residuals (the
    #: scaled gradient) is at most ``gtol``.
    GTOL = "gtol"
    #: A callback asked to stop.
    CALLBACK = "callback"
    #: The time budget of the fit ran out.
    TIME_LIMIT = "time_limit"

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def converged(self) -> bool:
        return self not in (Status.MAX_EPOCHS, Status.TIME_LIMIT, Status.NON_FINITE)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


_MESSAGES = {
    Status.MAX_EPOCHS: "completed the requested epochs",
    Status.NO_IMPROVEMENT: (
        "the monitored quantity did not improve by more than tol for "
        "patience consecutive epochs"
    ),
    Status.DAMPING_MAX: (
        "the damping factor reached its maximum: no step along the damped "
        "Gauss-Newton direction lowers the loss any more"
    ),
    Status.NON_FINITE: "the loss is not finite at the current weights",
    Status.FTOL: (
        "converged: the actual and predicted relative reductions of the loss "
        "are at most ftol"
    ),
    Status.XTOL: "converged: the step is at most xtol * (xtol + ||w||)",
    Status.GTOL: (
        "converged: the largest cosine between a Jacobian column and the "
        "residuals is at most gtol"
    ),
    Status.CALLBACK: "a callback asked to stop",
    Status.TIME_LIMIT: "the time budget ran out",
}


#: The stop codes that compiled graphs return, by position: 0 means "go on".
GRAPH_CODES = (None, Status.NON_FINITE, Status.DAMPING_MAX)


def from_graph_code(code: int) -> Status | None:
    """The :class:`Status` of a compiled step's or epoch's integer stop code.

    Parameters
    ----------
    code : int
        An index into :data:`GRAPH_CODES`.

    Returns
    -------
    Status or None
        ``None`` for 0 (no reason to stop).
    """
    return GRAPH_CODES[int(code)]
