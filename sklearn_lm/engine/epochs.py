"""The epoch loop of :meth:`Trainer.fit <sklearn_lm.engine.Trainer.fit>`.

:class:`EpochLoop` runs epochs over arrays (one step per epoch on the whole
data, or a compiled epoch of shuffled mini-batches) or over a source of
batches (:mod:`sklearn_lm.engine.data`), records each epoch in a
:class:`~sklearn_lm.engine.history.TrainingHistory` and stops by the rules of
:mod:`sklearn_lm.engine.stopping`. How the steps run is the subclass's
(:class:`~sklearn_lm.engine.Trainer`): :meth:`EpochLoop._steps` and
:meth:`EpochLoop._array_epoch`.
"""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import keras
import numpy as np

from . import data
from .config import check_number
from .history import TrainingHistory, epoch_line
from .stopping import ConvergenceTests, StepMeasures, StoppingRule, StoppingRules

__all__ = ["EpochLoop"]

Callback = Callable[[int, dict], Any]


def _each(callbacks: Iterable[Callback] | None) -> Callback | None:
    """One callable calling every callback in ``callbacks`` (``None`` if none)."""
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(
                "step_callbacks must be callables called as callback(step, logs). "
                f"Received: step_callbacks=[..., {callback!r}, ...]"
            )
    if not callbacks:
        return None

    def call(index: int, logs: dict) -> None:
        for callback in callbacks:
            callback(index, logs)

    return call


class EpochLoop(abc.ABC):
    """Epochs of LM steps with stopping rules and a record: ``fit``.

    Subclasses hold the model and run the steps.

    Attributes
    ----------
    model : keras.Model
        The model trained; it holds the weights after every epoch.
    fn : ModelFunction
        The model as a function of one flat weight vector.
    """

    model: keras.Model
    fn: Any
    #: Epochs run over the object's life (callbacks get this index).
    _epochs_done: int

    @property
    @abc.abstractmethod
    def damping_value(self) -> float:
        """The current damping factor lambda."""

    @abc.abstractmethod
    def _prepare(self, x, y, sample_weight) -> tuple:
        """Tensors ``(x, y, sample_weight)`` of arrays, checked."""

    @abc.abstractmethod
    def _check_memory(self, batch_rows: int) -> None:
        """Raise before allocating when batches of ``batch_rows`` do not fit."""

    @abc.abstractmethod
    def _steps(self, batches, w, on_step=None) -> tuple:
        """Steps over prepared ``batches`` from weights ``w`` (``None``: the
        model's variables): ``(w, losses, attempts, status, last)`` with
        ``last`` the last step's result; each step's logs go to
        ``on_step(index, logs)`` when given."""

    @abc.abstractmethod
    def _array_epoch(self, x, y, sw, size, shuffle, rng, w, on_step=None) -> tuple:
        """An epoch of mini-batches of ``size`` samples, compiled as one graph
        (step by step with ``on_step``): ``(w, losses, attempts, status,
        last)``."""

    #: Whether every epoch must be one step on all the data, given as arrays
    #: (Bayesian regularization).
    _full_batch_only = False

    def _epoch_logs(self) -> dict[str, float]:
        """More entries of an epoch's record (none here)."""
        return {}

    def _after_fit(self, history: TrainingHistory) -> None:
        """Work after the last epoch, the best weights restored (none here)."""
        return None

    def fit(
        self,
        x,
        y=None,
        *,
        epochs: int = 1,
        batch_size: int | None = None,
        sample_weight=None,
        shuffle: bool = True,
        seed: int | None = None,
        callbacks: Iterable[Callback] | None = None,
        verbose: int = 0,
        tol: float | None = None,
        patience: int | None = None,
        validation: Callable[[], float] | None = None,
        restore_best: bool = True,
        time_limit: float | None = None,
        rules: Iterable[StoppingRule] | None = None,
        step_callbacks: Iterable[Callback] | None = None,
        ftol: float | None = 1e-14,
        xtol: float | None = 1e-10,
        gtol: float | None = 1e-10,
    ) -> TrainingHistory:
        """Train for ``epochs`` passes over the data, or until a rule stops it.

        The stopping rules, their order and their statuses are those of
        :mod:`sklearn_lm.engine.stopping`: a non-finite loss, the
        convergence tests (``ftol``, ``xtol``, ``gtol``; full-batch epochs
        over arrays only), no improvement (``tol``, ``patience``), lambda at
        its maximum, a callback, the time limit; else all ``epochs`` run
        (``Status.MAX_EPOCHS``).

        Parameters
        ----------
        x : array-like, tf.data.Dataset, keras.utils.PyDataset or callable
            Inputs; or a source of ``(x, y)`` or ``(x, y, sample_weight)``
            batches: a ``tf.data.Dataset``, a ``keras.utils.PyDataset``, or a
            function returning a fresh iterable of batches for each epoch (for
            example a generator function), for data that does not fit in
            memory. With a source of batches, ``y``, ``batch_size`` and
            ``sample_weight`` must be left at their defaults.
        y : array-like, optional
            Targets (see the loss for the expected layout).
        epochs : int, default=1
        batch_size : int, optional
            Samples per step; ``None`` means the whole data set (full batch).
        sample_weight : array-like of shape (n_samples,), optional
        shuffle : bool, default=True
            Shuffle samples before each epoch (mini-batches only).
        seed : int, optional
            Seed of the shuffling.
        callbacks : list of callables, optional
            Each is called as ``callback(epoch, logs)`` after every epoch;
            returning ``True`` stops training (``Status.CALLBACK``). ``logs``
            holds the epoch's record (see :class:`TrainingHistory`) and
            ``"steps"``.
        verbose : int, default=0
            ``1`` prints one line per epoch.
        tol : float, optional
            The no-improvement rule (``Status.NO_IMPROVEMENT``): an epoch
            improves when its loss is at most the lowest loss so far minus
            ``tol`` (with ``validation``: when its score is at least the best
            so far plus ``tol``), and training stops after ``patience``
            epochs in a row without improvement. The rule is on when ``tol``
            or ``patience`` is given; ``tol`` then defaults to 0 and
            ``patience`` to 1. See
            :class:`~sklearn_lm.engine.stopping.NoImprovement`.
        patience : int, optional
            See ``tol``.
        validation : callable, optional
            ``validation()`` returns a score of the model's current weights,
            higher is better (for example minus a validation loss). It is
            called after every epoch, recorded as ``"validation_score"``, and
            is then what ``tol`` and ``patience`` watch and what decides
            ``best_epoch``.
        restore_best : bool, default=True
            With ``validation``: set the weights of the best-scoring epoch
            back when training stops, whatever stopped it.
        time_limit : float, optional
            Seconds after which training stops (``Status.TIME_LIMIT``),
            checked after each epoch: at least one epoch runs.
        rules : list of StoppingRule, optional
            More stopping rules (:class:`~sklearn_lm.engine.stopping.StoppingRule`),
            checked after the built-in ones, in order.
        step_callbacks : list of callables, optional
            Each is called as ``callback(step, logs)`` after every LM step,
            with ``step`` its index in the epoch (from 0) and ``logs`` its
            ``loss`` (objective after the step), ``initial_loss``,
            ``damping``, ``attempts`` and ``accepted`` (see
            :meth:`~sklearn_lm.engine.Trainer.train_step`); the return value
            is ignored. A full-batch epoch is one step. With step callbacks,
            mini-batch epochs over arrays run one compiled step per batch
            instead of one compiled graph per epoch: the same steps on the
            same batches, plus a call from Python and a read-back of the
            logs per step.
        ftol, xtol, gtol : float or None, default=1e-14, 1e-10, 1e-10
            The convergence tests of ``scipy.optimize.least_squares``
            (``Status.FTOL``, ``Status.XTOL``, ``Status.GTOL``), applied
            after each full-batch epoch over arrays (not to mini-batch
            epochs nor to datasets): the actual and predicted relative
            reductions of the loss by the step are at most ``ftol``; the
            step is at most ``xtol * (xtol + ||w||)``; the largest cosine
            between a Jacobian column and the residual vector (for other
            losses, the scaled gradient) is at most ``gtol``. ``None``
            turns a test off. See
            :class:`~sklearn_lm.engine.stopping.ConvergenceTests`. SciPy's
            default is 1e-8; these values stop a converged float64 fit a
            step or more earlier (median 11.5 steps and 20 attempts instead
            of 16 and 40 on the NIST StRD problems) without costing digits
            (``docs/benchmarks_nist.md``); a looser ``ftol`` (1e-10) did.
            A float32 model rarely meets ``ftol``: its fit ends by ``xtol``
            or by lambda at its maximum. The estimators do not use these
            tests.

        Returns
        -------
        TrainingHistory
        """
        check_number("epochs", epochs, 0, integer=True)
        rules = StoppingRules(
            tol=tol,
            patience=patience,
            validation=validation,
            restore_best=restore_best,
            time_limit=time_limit,
            callbacks=callbacks,
            rules=rules,
            convergence=ConvergenceTests(ftol, xtol, gtol),
        )
        epoch_results = self._epochs(
            x, y, batch_size, sample_weight, shuffle, seed, _each(step_callbacks)
        )
        history = TrainingHistory()
        for position in range(epochs):
            started = time.perf_counter()
            losses, attempts, step, measures = next(epoch_results)
            history.n_steps += len(losses)
            finite = [v for v in losses if np.isfinite(v)]
            logs = {
                "loss": float(np.mean(finite)) if finite else float("nan"),
                "damping": self.damping_value,
                "attempts": float(np.mean(attempts)) if losses else 0.0,
                "steps": len(losses),
            }
            logs.update(self._epoch_logs())
            rules.score(logs)
            logs["time"] = time.perf_counter() - started
            history.record(self._epochs_done, logs)
            if verbose:
                print(epoch_line(self._epochs_done + 1, logs), flush=True)
            self._epochs_done += 1
            status = rules.after_epoch(
                self.model, self._epochs_done - 1, position, logs, step, measures
            )
            if status is not None:
                history.stop_reason = status
                history.stop_message = rules.message
                break
        history.best_epoch = rules.best_position
        rules.restore(self.model)
        self._after_fit(history)
        return history

    def _epochs(self, x, y, batch_size, sample_weight, shuffle, seed, on_step=None):
        """Check the data; return an iterator over epochs of training on it.

        Each ``next`` runs one epoch, writes the weights to the model and
        gives ``(losses, attempts, status, measures)``: one entry per step,
        the steps' :class:`Status` (``None`` to go on) and, for a full-batch
        epoch over arrays, the step's
        :class:`~sklearn_lm.engine.stopping.StepMeasures` (else ``None``).
        """
        in_place = self.fn.variable_handles() is not None
        full_batch_only = self._full_batch_only
        if full_batch_only and data.is_stream(x):
            raise ValueError(
                "bayesian=True needs the data as arrays, trained in full "
                "batches; a source of batches is not supported with it. "
                f"Received: x={type(x).__name__}"
            )
        if data.is_stream(x):
            data.check_stream_arguments(y, batch_size, sample_weight)
            return self._epoch_results(
                functools.partial(self._dataset_epoch, x, on_step=on_step),
                in_place,
                full_batch=False,
            )
        xt, yt, swt = self._prepare(x, y, sample_weight)
        n = int(xt.shape[0])
        if n == 0:
            raise ValueError("x must contain at least one sample. Received: 0")
        if batch_size is not None:
            check_number("batch_size", batch_size, 1, integer=True)
        size = n if batch_size is None else min(int(batch_size), n)
        if full_batch_only and size < n:
            raise ValueError(
                "bayesian=True needs full-batch steps; mini-batches are not "
                f"supported with it yet. Received: batch_size={batch_size!r}"
            )
        self._check_memory(size)
        rng = np.random.default_rng(seed)
        if size >= n:
            run = functools.partial(self._steps, [(xt, yt, swt)], on_step=on_step)
        else:
            # Mini-batch epochs over arrays keep the weights a tensor during
            # an epoch (one graph per epoch) and write them at its end.
            run = functools.partial(
                self._array_epoch, xt, yt, swt, size, shuffle, rng, on_step=on_step
            )
            in_place = False
        return self._epoch_results(run, in_place, full_batch=size >= n)

    def _epoch_results(self, run, in_place: bool, full_batch: bool) -> Iterator[tuple]:
        """Endless epochs of ``run(w) -> (w, losses, attempts, status, last)``.

        ``last`` is the last step's result (``None`` for a compiled
        mini-batch epoch); its measures are given for ``full_batch`` epochs.

        In place, the steps read and write the model's variables inside their
        graphs (``w`` is None). Otherwise the weights stay a tensor during an
        epoch and are written to the model at its end, before callbacks see
        it.
        """
        w = None if in_place else self.fn.get_weights()
        while True:
            w, losses, attempts, status, last = run(w)
            if not in_place:
                self.fn.set_weights(w)
            if not losses and status is None:
                raise ValueError("The dataset yielded no batches.")
            measures = (
                StepMeasures.of(last) if full_batch and last is not None else None
            )
            yield losses, attempts, status, measures

    def _dataset_epoch(self, dataset, w, on_step=None):
        batches = self._dataset_batches(data.epoch_batches(dataset))
        result = self._steps(batches, w, on_step)
        if isinstance(dataset, keras.utils.PyDataset):
            dataset.on_epoch_end()
        return result

    def _dataset_batches(self, batches):
        checked = False
        for element in data.batch_tuples(batches):
            xb, yb, swb = self._prepare(*element)
            if not checked:
                self._check_memory(int(xb.shape[0]))
                checked = True
            yield xb, yb, swb
