"""A stopwatch that records the training loss against wall time.

The clock starts at the beginning of a fit (see :meth:`Recorder.start`) and
includes everything a user waits for from then on: building optimiser and
trainer objects, graph tracing and compilation, and the training steps.
Measurements that the contender would not do on its own (a full-data loss
evaluated after a mini-batch epoch) run with the clock paused, so they do not
count.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

__all__ = ["Recorder", "BudgetReached", "peak_rss_kib"]


def peak_rss_kib() -> int:
    """Peak resident set size of this process so far (``ru_maxrss``, KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class BudgetReached(Exception):
    """Raised from inside a contender's own hook to stop it at the budget."""


class Recorder:
    """Record ``(elapsed seconds, loss, steps)`` during one fit.

    Parameters
    ----------
    budget_s : float or None
        Wall-time budget; :meth:`record` returns ``True`` once it is spent.

    Attributes
    ----------
    trace : list of tuple
        ``(elapsed, loss, steps)`` per record, where ``steps`` counts the
        parameter updates since the previous record (0 for a record that is
        only a loss, such as a trial point of SciPy's LM). Points added with
        :meth:`add` come from separate fits and carry that fit's updates.
    end_s : float or None
        Elapsed time when the fit returned (:meth:`stop`).
    rss_start_kib : int or None
        Peak resident memory of the process when the clock started.
    """

    def __init__(self, budget_s: float | None = None):
        self.budget_s = budget_s
        self.trace: list[tuple[float, float, int]] = []
        self.end_s: float | None = None
        self.rss_start_kib: int | None = None
        self._t0: float | None = None
        self._paused = 0.0

    def start(self) -> None:
        """Start the clock (call right before the contender's fit begins).

        Also notes the process's peak resident memory so far, so that the
        memory used by the fit itself can be told from imports and data.
        """
        self.rss_start_kib = peak_rss_kib()
        self._t0 = time.perf_counter()
        self._paused = 0.0

    def elapsed(self) -> float:
        """Seconds since :meth:`start`, minus paused time."""
        if self._t0 is None:
            raise RuntimeError("Recorder.start() was not called.")
        return time.perf_counter() - self._t0 - self._paused

    def over_budget(self) -> bool:
        """Whether the budget is spent."""
        return self.budget_s is not None and self.elapsed() >= self.budget_s

    def record(self, loss: float, steps: int = 1) -> bool:
        """Record ``loss`` now; return whether the budget is spent."""
        now = self.elapsed()
        self.trace.append((now, float(loss), int(steps)))
        return self.budget_s is not None and now >= self.budget_s

    def record_evaluated(self, evaluate: Callable[[], float], steps: int = 1) -> bool:
        """Record the loss computed by ``evaluate()``, with the clock paused.

        The time stamp is taken before ``evaluate`` runs.
        """
        now = self.elapsed()
        begin = time.perf_counter()
        loss = float(evaluate())
        self._paused += time.perf_counter() - begin
        self.trace.append((now, loss, int(steps)))
        return self.budget_s is not None and now >= self.budget_s

    def add(self, elapsed: float, loss: float, steps: int) -> None:
        """Add a point timed elsewhere (e.g. the end of a separate fit)."""
        self.trace.append((float(elapsed), float(loss), int(steps)))

    def stop(self) -> float:
        """Stop the clock at the end of the fit and return the elapsed time."""
        self.end_s = self.elapsed()
        return self.end_s

    def to_dict(self) -> dict:
        """Trace and end time, JSON-serialisable."""
        return {
            "trace": [list(t) for t in self.trace],
            "end_s": self.end_s,
            "rss_start_kib": self.rss_start_kib,
        }
