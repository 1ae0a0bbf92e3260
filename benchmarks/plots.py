"""Figures: training loss against wall time, one line per contender."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["plot_task"]

_TITLES = {
    "sinc": "sinc(10x), 20 000 points, 1-20-1 tanh: training MSE",
    "friedman1": "friedman1, 10-20-1 tanh: training loss (MSE)",
    "digits": "digits, 64-20-10 tanh: training loss (cross-entropy)",
    "scale": "sinc(10x), scale task, 1-20-1 tanh: training MSE",
}


def _representative(runs: list[dict]) -> dict | None:
    """The successful run with the median final loss (seeds differ)."""
    ok = [r for r in runs if r.get("status") == "ok" and r.get("trace")]
    if not ok:
        return None
    ok.sort(key=lambda r: r["trace"][-1][1])
    return ok[len(ok) // 2]


def plot_task(
    task: str,
    runs_by_contender: dict,
    labels: dict[str, str],
    ours: set[str],
    path: Path,
    thresholds: tuple[float, ...] = (),
    budget: float | None = None,
    memory: dict[str, tuple[float, float]] | None = None,
) -> Path | None:
    """Draw one task's loss-vs-time figure and save it as PNG.

    Parameters
    ----------
    task : str
    runs_by_contender : dict
        Contender key to its list of worker results (one per seed).
    labels : dict
        Contender key to the label shown in the legend.
    ours : set of str
        Keys drawn with solid thick lines.
    path : Path
        Output file.
    thresholds : tuple of float, optional
        Horizontal reference lines.
    budget : float, optional
        Vertical line at the budget.
    memory : dict, optional
        Contender key to ``(peak RSS, growth during the fit)`` in MiB; adds a
        bar chart next to the curves.

    Returns
    -------
    Path or None
        ``path``, or ``None`` when nothing could be drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = {k: _representative(v) for k, v in runs_by_contender.items()}
    chosen = {k: v for k, v in chosen.items() if v is not None}
    if not chosen:
        return None
    ncols = 2 if memory else 1
    fig, axes = plt.subplots(
        1, ncols, figsize=(7.5 * ncols, 4.8), layout="constrained", squeeze=False
    )
    ax = axes[0, 0]
    for key, run in chosen.items():
        trace = run["trace"]
        times = [max(t, 1e-3) for t, _, _ in trace]
        losses = [max(loss, 1e-16) for _, loss, _ in trace]
        style = {"lw": 2.2} if key in ours else {"lw": 1.3, "ls": "--"}
        if len(trace) == 1:
            ax.plot(times, losses, "o", label=labels[key])
        else:
            ax.plot(times, losses, label=labels[key], **style)
    for t in thresholds:
        ax.axhline(t, color="0.6", lw=0.8, ls=":")
    if budget:
        ax.axvline(budget, color="0.4", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time since the start of fit (s, log scale; tracing included)")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(_TITLES.get(task, task), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if memory:
        bar = axes[0, 1]
        keys = [k for k in memory if memory[k][0] is not None]
        base = [memory[k][0] - (memory[k][1] or 0.0) for k in keys]
        grow = [memory[k][1] or 0.0 for k in keys]
        ypos = range(len(keys))
        bar.barh(ypos, base, color="0.75", label="before the fit (imports, data)")
        bar.barh(ypos, grow, left=base, color="C3", label="growth during the fit")
        bar.set_yticks(list(ypos), [labels[k] for k in keys], fontsize=8)
        bar.invert_yaxis()
        bar.set_xlabel("peak resident memory (MiB, ru_maxrss)")
        bar.legend(fontsize=8)
        top = max((b + g for b, g in zip(base, grow, strict=True)), default=1.0)
        bar.set_xlim(0, top * 1.1 if math.isfinite(top) else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
