"""From raw results to the numbers in the tables.

Definitions (per run, i.e. one contender, task and seed)
--------------------------------------------------------
time to ``t``
    Elapsed time of the first record whose training MSE is ``<= t``; the
    clock starts when the fit starts (tracing and compilation included, see
    :mod:`benchmarks.clock`). ``inf`` when not reached within the budget.
    Records are taken in trajectory order: chronological, except for
    scikit-learn's L-BFGS, whose points are separate fits ordered by
    ``max_iter``.
loss at budget
    Loss of the last record at or before the budget.
step time
    Median, over the records after the first ``skip_steps``, of the time
    between consecutive records divided by the parameter updates between
    them. For scikit-learn's L-BFGS (separate fits) it is the slope of fit
    time against iterations; for a single ``fit`` it is fit time divided by
    updates.
overhead
    Time of the first record minus the median step time times the updates it
    covers: mostly graph tracing and compilation for TensorFlow contenders.
peak RSS
    ``ru_maxrss`` of the child process; "fit" is its growth from the start
    of the fit (imports, data and network already in memory).

Across seeds the median of each number is reported; a time to threshold is
the median with unreached seeds counted as ``inf``.
"""

from __future__ import annotations

import math
from statistics import median

from .costmodel import lm_step_flops

__all__ = ["run_metrics", "aggregate", "ratio", "first_time"]


def first_time(trace: list, threshold: float) -> float:
    """Elapsed time of the first record with loss ``<= threshold`` (or inf)."""
    for elapsed, loss, _ in trace:
        if loss <= threshold:
            return float(elapsed)
    return math.inf


def _step_stats(trace: list, skip: int) -> tuple[float | None, float | None]:
    marks = [(t, s) for t, _, s in trace if s > 0]
    if not marks:
        return None, None
    per_step, previous = [], 0.0
    for elapsed, steps in marks:
        per_step.append((elapsed - previous) / steps)
        previous = elapsed
    if len(per_step) == 1:
        return per_step[0], None  # one record: step and overhead inseparable
    later = per_step[skip:] if len(per_step) > skip else per_step[1:]
    step = median(later)
    return step, max(marks[0][0] - marks[0][1] * step, 0.0)


def run_metrics(
    result: dict,
    *,
    rate: str | None,
    budget: float,
    skip: int,
    thresholds: tuple[float, ...],
    n_weights: int,
    rows_per_sample: int,
    rates: dict | None,
) -> dict:
    """Numbers of one run (see the module docstring).

    Parameters
    ----------
    result : dict
        What the worker returned.
    rate : str or None
        Key of ``rates`` that the contender's ``J^T J`` runs at (LM only).
    budget : float
        Wall-time budget of the task.
    skip : int
        Records left out at the start when taking the median step time.
    thresholds : tuple of float
    n_weights : int
        Weights of the network.
    rows_per_sample : int
        Residual rows per sample of the contender's LM step (cost model).
    rates : dict or None
        Result of :func:`benchmarks.costmodel.measure`.

    Returns
    -------
    dict
    """
    trace = list(result.get("trace") or [])  # in the order of the trajectory
    within = [loss for t, loss, _ in trace if t <= budget]
    step, overhead = _step_stats(trace, skip)
    if result.get("step_time_s") is not None:
        step = float(result["step_time_s"])
        overhead = result.get("overhead_s")
    peak = result.get("rss_peak_kib")
    start = result.get("rss_start_kib")
    out = {
        "time_to": {repr(t): first_time(trace, t) for t in thresholds},
        "loss_at_budget": within[-1] if within else None,
        "final_loss": result.get("train_loss"),
        "test_score": result.get("test_score"),
        "train_accuracy": result.get("train_accuracy"),
        "fit_time_s": result.get("end_s"),
        "repeat_fit_s": result.get("repeat_fit_s"),
        "step_time_s": step,
        "overhead_s": overhead,
        "updates": result.get("updates", sum(s for _, _, s in trace)),
        "n_iter": result.get("n_iter"),
        "attempts": result.get("attempts"),
        "rss_peak_mib": peak / 1024 if peak else None,
        "rss_fit_mib": (peak - start) / 1024 if peak and start else None,
        "gflops": None,
        "machine_fraction": None,
    }
    if rate and step and rates and result.get("batch_rows"):
        flops = lm_step_flops(
            int(result["batch_rows"]),
            n_weights,
            rows_per_sample,
            float(result.get("attempts") or 1.0),
        )
        out["gflops"] = flops / step / 1e9
        out["machine_fraction"] = out["gflops"] / rates[rate]
    return out


def _median_of(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return median(values) if values else None


def aggregate(runs: list[dict], metrics: list[dict]) -> dict:
    """Medians over seeds of the runs of one contender on one task.

    Parameters
    ----------
    runs : list of dict
        Worker results, one per seed.
    metrics : list of dict
        :func:`run_metrics` of the runs whose status is ``"ok"``.

    Returns
    -------
    dict
        ``status``, ``error`` (of the first failed or skipped run), ``seeds``
        (total) and ``ok`` (successful), ``reached`` (seeds that reached each
        threshold) and the medians.
    """
    failed = [r for r in runs if r.get("status") != "ok"]
    summary: dict = {
        "seeds": len(runs),
        "ok": len(metrics),
        "status": "ok" if metrics else (failed[0]["status"] if failed else "none"),
        "error": failed[0].get("error") if failed else None,
        "warnings": sorted({w for r in runs for w in r.get("warnings", [])}),
        "stop_reasons": sorted(
            {str(r.get("stop_reason")) for r in runs if r.get("status") == "ok"}
        ),
    }
    if not metrics:
        return summary
    keys = [k for k in metrics[0] if k != "time_to"]
    for k in keys:
        summary[k] = _median_of([m[k] for m in metrics])
    summary["time_to"] = {
        t: median([m["time_to"][t] for m in metrics]) for t in metrics[0]["time_to"]
    }
    summary["reached"] = {
        t: sum(math.isfinite(m["time_to"][t]) for m in metrics)
        for t in metrics[0]["time_to"]
    }
    return summary


def ratio(ours: float | None, theirs: float | None, budget: float) -> tuple:
    """Compare two times to a threshold.

    Returns
    -------
    tuple
        ``(kind, value)``: ``("value", ours / theirs)`` when both reached it;
        ``("at_most", ours / budget)`` when only we did (they need more than
        the budget); ``("at_least", budget / theirs)`` when only they did;
        ``("none", None)`` otherwise.
    """
    ours_ok = ours is not None and math.isfinite(ours)
    theirs_ok = theirs is not None and math.isfinite(theirs)
    if ours_ok and theirs_ok:
        return "value", ours / theirs
    if ours_ok:
        return "at_most", ours / budget
    if theirs_ok:
        return "at_least", budget / theirs
    return "none", None
