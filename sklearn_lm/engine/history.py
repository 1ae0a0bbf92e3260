"""The record of one :meth:`Trainer.fit <sklearn_lm.engine.Trainer.fit>` call."""

from __future__ import annotations

import math
import warnings
from typing import Any

from .status import Status

__all__ = ["TrainingHistory"]

#: Per-epoch entries that every history has (``"validation_score"`` is
#: recorded too when the fit scores a validation set).
RECORDED = ("loss", "damping", "attempts", "time")
#: Entries recorded when the fit produces them: a validation score, and the
#: hyperparameters of Bayesian regularization.
OPTIONAL = (
    "validation_score",
    "alpha",
    "beta",
    "noise_variance",
    "gamma",
    "log_evidence",
)


def _is_group_entry(name: str) -> bool:
    """Whether ``name`` is a per-group entry, ``alpha_<g>`` or ``gamma_<g>``."""
    head, _, index = name.partition("_")
    return head in ("alpha", "gamma") and index.isdigit()


class TrainingHistory:
    """What :meth:`Trainer.fit <sklearn_lm.engine.Trainer.fit>` did.

    Attributes
    ----------
    history : dict of str to list of float
        Per epoch: ``"loss"`` (mean over the epoch's steps of the training
        objective after each step), ``"damping"`` (lambda at the end of the
        epoch), ``"attempts"`` (mean attempts per step), ``"time"`` (wall
        time of the epoch in seconds: its steps and, if any, the validation
        score) and, when ``fit`` was given a ``validation`` callable,
        ``"validation_score"``. With Bayesian regularization
        (:mod:`sklearn_lm.engine.bayesian`) also ``"alpha"`` (weight
        precision), ``"beta"`` (noise precision), ``"noise_variance"``
        (``1 / beta``), ``"gamma"`` (effective number of penalised weights)
        and ``"log_evidence"``, after the epoch's last accepted step (with
        the normal matrix of that step's start, see
        :mod:`~sklearn_lm.engine.bayesian`; the last record holds the values
        at the final weights; the noise in the units of the training
        targets; no ``"beta"`` and
        ``"noise_variance"`` for the cross-entropies, whose ``beta`` is 1);
        with one precision per group of weights (``bayesian_groups``),
        ``"alpha_0"``, ``"alpha_1"``, ... and ``"gamma_0"``, ``"gamma_1"``,
        ... per group in place of ``"alpha"``. Each list converts directly
        into a column of a ``pandas.DataFrame(history.history)``.
    epoch : list of int
        Epoch indices, counted over the trainer's whole life.
    stop_reason : Status
        Why training stopped; :attr:`Status.MAX_EPOCHS
        <sklearn_lm.engine.status.Status.MAX_EPOCHS>` when all the requested
        epochs ran.
    best_epoch : int or None
        Position, in the per-epoch lists, of the epoch with the best
        monitored quantity: the highest validation score with a
        ``validation`` callable, else the lowest loss (the first of equals).
        ``None`` when no epoch ran (or all its values are NaN).
    n_steps : int
        LM steps taken in this call.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {name: [] for name in RECORDED}
        self.epoch: list[int] = []
        self.stop_reason: Status = Status.MAX_EPOCHS
        #: The message of a :class:`~sklearn_lm.engine.stopping.StoppingRule`
        #: that stopped training, when it has its own (else ``None``).
        self.stop_message: str | None = None
        self.best_epoch: int | None = None
        self.n_steps = 0

    def record(self, epoch: int, logs: dict[str, Any]) -> None:
        """Append epoch ``epoch``'s entries of ``logs`` (see :attr:`history`)."""
        self.epoch.append(epoch)
        for name in (*RECORDED, *OPTIONAL, *filter(_is_group_entry, logs)):
            if name in logs:
                self.history.setdefault(name, []).append(float(logs[name]))

    @property
    def message(self) -> str:
        """Why training stopped, in words: the stopping rule's own message,
        or :attr:`stop_reason`'s."""
        return self.stop_message or self.stop_reason.message

    def _monitored(self, position: int | None) -> float:
        """The value that decides :attr:`best_epoch` at ``position``
        (higher is better): the validation score, else minus the loss."""
        if position is None:
            return -math.inf
        if "validation_score" in self.history:
            return self.history["validation_score"][position]
        return -self.history["loss"][position]

    def extend(self, other: TrainingHistory) -> None:
        """Append the epochs of ``other``, a later fit of the same model.

        The per-epoch lists and :attr:`epoch` grow, :attr:`n_steps` adds up,
        :attr:`stop_reason` and :attr:`stop_message` become ``other``'s and
        :attr:`best_epoch` points at the better of the two best epochs (the
        earlier one of equals).
        """
        offset = len(self.epoch)
        best = self._monitored(self.best_epoch)
        self.epoch.extend(other.epoch)
        for name, values in other.history.items():
            self.history.setdefault(name, []).extend(values)
        self.n_steps += other.n_steps
        self.stop_reason = other.stop_reason
        self.stop_message = other.stop_message
        if other.best_epoch is not None and other._monitored(other.best_epoch) > best:
            self.best_epoch = offset + other.best_epoch

    def to_dataframe(self):
        """The per-epoch record as a ``pandas.DataFrame``, one row per epoch.

        Columns are the entries of :attr:`history` (``loss``, ``damping``,
        ``attempts``, ``time`` and, when recorded, ``validation_score``),
        indexed by :attr:`epoch` (named ``"epoch"``).

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            When pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as error:
            raise ImportError(
                "TrainingHistory.to_dataframe needs pandas, which is not "
                "installed; install it with `pip install pandas`."
            ) from error
        index = pd.Index(self.epoch, name="epoch")
        return pd.DataFrame(
            {name: list(values) for name, values in self.history.items()},
            index=index,
        )

    def __repr__(self) -> str:
        last = self.history["loss"][-1] if self.history["loss"] else None
        return (
            f"TrainingHistory(epochs={len(self.epoch)}, steps={self.n_steps}, "
            f"loss={last}, stop_reason={self.stop_reason.value!r})"
        )


def epoch_line(number: int, logs: dict[str, Any]) -> str:
    """The line ``Trainer.fit(verbose=1)`` prints for epoch ``number`` (from 1)."""
    line = (
        f"Epoch {number}: loss={logs['loss']:.6g} "
        f"damping={logs['damping']:.3g} attempts={logs['attempts']:.2f}"
    )
    if "validation_score" in logs:
        line += f" validation_score={logs['validation_score']:.6g}"
    return line


def _stop_messages() -> dict:
    messages: dict = {None: Status.MAX_EPOCHS.message}
    messages.update({status: status.message for status in Status})
    return messages


#: Deprecated names: (replacement in words, value).
_DEPRECATED = {
    "History": ("TrainingHistory", TrainingHistory),
    "STOP_MESSAGES": ("Status(...).message", _stop_messages()),
}


def deprecated_attribute(module: str, name: str) -> Any:
    """A deprecated name of ``module``, with a ``DeprecationWarning``.

    For a module's ``__getattr__``; other names raise ``AttributeError``.
    """
    if name not in _DEPRECATED:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    replacement, value = _DEPRECATED[name]
    warnings.warn(
        f"{module}.{name} is deprecated; use {replacement} instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return value
