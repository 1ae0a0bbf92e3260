"""The Markdown page: machine, settings, tables, ratios and targets."""

from __future__ import annotations

import math

from .config import THRESHOLDS
from .contenders import Contender
from .costmodel import lm_step_flops

__all__ = ["render", "PRIMARY", "evaluate_targets"]

#: The sklearn_lm contender that ratios are taken against, per task.
PRIMARY = {
    "sinc": "lm-trainer",
    "friedman1": "lm-regressor",
    "digits": "lm-classifier",
    "scale": "lm-trainer",
}

_TASK_TITLES = {
    "sinc": "sinc curve fit (20 000 points, 1-20-1 tanh, 61 weights, full batch, MSE)",
    "friedman1": "friedman1 regression (5000 samples, noise 1.0, 10-20-1 tanh)",
    "digits": "digits classification (1797 images, 64-20-10 tanh)",
    "scale": "scale: full-batch sinc fit of a 1-20-1 network",
}


# -- formatting -------------------------------------------------------------------
def _level(threshold: float) -> str:
    """``1e-07`` -> ``1e-7``."""
    mantissa, exponent = f"{threshold:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _num(value, fmt: str = ".3g", missing: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, fmt)


def _time(seconds, reached: int, seeds: int, budget: float) -> str:
    partial = f" ({reached}/{seeds} seeds)" if 0 < reached < seeds else ""
    if seconds is None:
        return "n/a"
    if math.isfinite(seconds):
        return f"{seconds:.2f} s{partial}"
    return f"> {budget:g} s{partial}"


def _ratio(kind: str, value) -> str:
    if kind == "value":
        return f"{value:.2f}"
    if kind == "at_most":
        return f"≤ {value:.2f}"
    if kind == "at_least":
        return f"≥ {value:.2f}"
    return "—"


def _mib(peak, growth) -> str:
    if peak is None:
        return "n/a"
    return f"{peak:.0f} (+{growth:.0f})" if growth is not None else f"{peak:.0f}"


def _flops(s: dict) -> str:
    if s.get("gflops") is None:
        return "n/a"
    return f"{s['gflops']:.2f} ({100 * s['machine_fraction']:.1f} %)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _failed(s: dict) -> str | None:
    if s.get("status") == "ok":
        return None
    return f"{s.get('status')}: {s.get('error') or 'no result'}"


def _ratio_time(ours: dict, theirs: dict, thr: str, budget: float) -> tuple:
    from .summary import ratio

    if ours.get("status") != "ok" or theirs.get("status") != "ok":
        return "none", None
    return ratio(ours["time_to"][thr], theirs["time_to"][thr], budget)


# -- sections ---------------------------------------------------------------------
def _header(meta: dict) -> list[str]:
    s = meta["settings"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated on {meta['date']} by `{meta['command']}` "
        f"(run time {_num(meta.get('duration_min'), '.1f', '?')} min).",
        "",
    ]
    if meta.get("rerendered"):
        lines += [f"Page rebuilt from the raw results by `{meta['rerendered']}`.", ""]
    if s["quick"]:
        lines += [
            "> **Quick run** (`--quick`): one seed, short budgets and a small "
            "scale task. Use it to check that everything runs, not for numbers.",
            "",
        ]
    lines += [
        "## Machine and versions",
        "",
        f"- CPU: {meta['cpu']}; {meta['nproc']} CPUs available to the process",
        f"- threads per contender: {s['threads']} (OpenMP/BLAS variables and "
        "TensorFlow's intra- and inter-op pools alike); contenders run one at a "
        "time, each in a fresh process",
        f"- seeds: {s['seeds']} (medians reported); budgets: sinc "
        f"{s['sinc_budget_s']:g} s, scale {s['scale_budget_s']:g} s or "
        f"{s['scale_max_steps']} steps, friedman1/digits cap {s['fit_cap_s']:g} s",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
    ]
    return lines


def _definitions() -> list[str]:
    return [
        "## How the numbers are taken",
        "",
        "- **Clock**: starts when the fit starts -- data are NumPy arrays and the "
        "network (with its initial weights) exists; everything after counts: "
        "optimiser/trainer objects, conversion to tensors, graph tracing and "
        "compilation, the steps. Loss evaluations a contender would not do on "
        "its own (full-data MSE after a mini-batch epoch) run with the clock "
        "paused.",
        "- **Hooks**: sklearn_lm `Trainer.train_step` in a loop (its result holds "
        "the loss); `Trainer.fit` callback for mini-batches; the estimators' "
        "`verbose=1` line per epoch, time-stamped; Keras `on_epoch_end`; SciPy: a "
        "wrapper of the residual function; MLP adam: `partial_fit` per epoch; "
        "MLP lbfgs: separate fits with growing `max_iter` (each point is a whole "
        "fit; crossings located by bisection of `max_iter`).",
        "- **Initial weights**: the Keras contenders and SciPy start from the "
        "same Glorot-uniform weights per seed; the estimators (ours and "
        "scikit-learn's) draw their own from `random_state=seed`.",
        "- **Time to t**: first record with training MSE <= t; `> B s` = not "
        "reached within the budget B. **Step**: median time per parameter update "
        "after the first few. **Overhead**: first record's time minus the median "
        "step time (tracing, compilation). **Peak RSS**: `ru_maxrss` of the "
        "child process, with its growth during the fit in parentheses.",
        "- **Ratios** are our time / their time (below 1: we are faster). `≤ x`: "
        "they did not reach the level within the budget, so the true ratio is "
        "at most x; `≥ x`: we did not reach it.",
        "",
    ]


def _costmodel(rates: dict | None) -> list[str]:
    lines = ["## Cost model", ""]
    if not rates:
        return lines + ["The matrix-product measurement failed.", ""]
    m, n = rates["shape"]
    lines += [
        f"Rate of `J^T J` for J of shape ({m} x {n}), GFLOP/s = 2 m n² / time "
        "(median of repeated runs; measured at the start and at the end of the "
        "run, the higher of the two):",
        "",
    ]
    lines += _table(
        ["library", "float32", "float64"],
        [
            [
                "NumPy",
                _num(rates.get("numpy_float32"), ".1f"),
                _num(rates.get("numpy_float64"), ".1f"),
            ],
            [
                "TensorFlow",
                _num(rates.get("tf_float32"), ".1f"),
                _num(rates.get("tf_float64"), ".1f"),
            ],
            [
                "TensorFlow, blocks of at most 512 rows summed in float64 "
                "(the engine's form)",
                _num(rates.get("tf_float32_blocked"), ".1f"),
                "n/a",
            ],
        ],
    )
    flops = lm_step_flops(m, n)
    lines += [
        "FLOPs of one LM step with m samples, q residual rows per sample, n "
        "weights and a attempts: `2F + 2mqn(n+2) + a(n³/3 + 2n² + F)` with "
        "`F = 2mn` (forward pass; Jacobian = forward + one multiply-add per "
        "entry; J^T J and J^T e; per attempt a Cholesky solve and the trial "
        "loss). For sinc (m=20000, n=61, q=1, a=1): "
        f"{flops / 1e6:.0f} MFLOP, i.e. "
        f"{1e3 * flops / (rates['tf_float32'] * 1e9):.1f} ms at the TensorFlow "
        "float32 rate. The fraction of the machine is these "
        "FLOPs per median step time over the rate of the library/precision the "
        "contender's J^T J runs in (TensorFlow float32 for sklearn_lm and "
        "tf-levenberg-marquardt, NumPy float64 for SciPy).",
        "",
    ]
    return lines


def _settings_table(contenders: list[Contender]) -> list[str]:
    return _table(
        ["contender", "settings"],
        [[c.label + (" (ours)" if c.ours else ""), c.setting] for c in contenders],
    )


def _sinc(task, contenders, summaries, settings) -> list[str]:
    budget = settings["sinc_budget_s"]
    thr = [repr(t) for t in THRESHOLDS]
    rows = []
    for c in contenders:
        s = summaries[c.key]
        failed = _failed(s)
        if failed:
            rows.append([c.label, failed] + [""] * 8)
            continue
        rows.append(
            [c.label + (" (ours)" if c.ours else "")]
            + [_time(s["time_to"][t], s["reached"][t], s["ok"], budget) for t in thr]
            + [
                _num(s["loss_at_budget"], ".2e", "no record yet"),
                _num(
                    None if s["step_time_s"] is None else 1e3 * s["step_time_s"], ".2f"
                ),
                _num(s["overhead_s"], ".2f"),
                _num(s["updates"], ".0f"),
                _mib(s["rss_peak_mib"], s["rss_fit_mib"]),
                _flops(s),
            ]
        )
    lines = _table(
        ["contender"]
        + [f"time to {_level(float(t))}" for t in thr]
        + [
            f"MSE at {budget:g} s",
            "step (ms)",
            "overhead (s)",
            "updates",
            "peak RSS MiB (fit)",
            "GFLOP/s (% machine)",
        ],
        rows,
    )
    lines += _sinc_ratios(contenders, summaries, budget)
    return lines


def _sinc_ratios(contenders, summaries, budget) -> list[str]:
    primary = summaries.get(PRIMARY["sinc"], {})
    if primary.get("status") != "ok":
        return ["No ratios: our primary contender did not run.", ""]
    thr = [repr(t) for t in THRESHOLDS]
    rows = []
    for c in contenders:
        if c.key == PRIMARY["sinc"]:
            continue
        s = summaries[c.key]
        if _failed(s):
            rows.append([c.label, "", "", "", "", _failed(s)])
            continue
        kinds = [_ratio_time(primary, s, t, budget) for t in thr]
        mse_ratio = None
        if primary["loss_at_budget"] and s["loss_at_budget"]:
            mse_ratio = primary["loss_at_budget"] / s["loss_at_budget"]
        behind = [
            f"time to {_level(float(t))}"
            for t, (k, v) in zip(thr, kinds, strict=True)
            if (k == "value" and v > 1) or k == "at_least"
        ]
        if mse_ratio is not None and mse_ratio > 1:
            behind.append(f"MSE at {budget:g} s")
        if c.ours:
            verdict = "(another sklearn_lm setting)"
        elif behind:
            verdict = "not ahead on: " + ", ".join(behind)
        else:
            verdict = "ahead"
        rows.append(
            [c.label + (" (ours)" if c.ours else "")]
            + [_ratio(k, v) for k, v in kinds]
            + [_num(mse_ratio, ".3g"), verdict]
        )
    head = [
        "**Ratios** against sklearn_lm Trainer (full batch): our time / their "
        "time, and our MSE / their MSE at the budget (below 1: ours is better).",
        "",
    ]
    return head + _table(
        ["contender"]
        + [f"time to {_level(float(t))}" for t in thr]
        + [f"MSE at {budget:g} s", "where we are not ahead"],
        rows,
    )


def _generalisation(task, contenders, summaries, settings) -> list[str]:
    score = "test R²" if task == "friedman1" else "test accuracy"
    loss = "train MSE" if task == "friedman1" else "train cross-entropy"
    primary = summaries.get(PRIMARY[task], {})
    rows, behind = [], []
    for c in contenders:
        s = summaries[c.key]
        failed = _failed(s)
        if failed:
            rows.append([c.label, failed] + [""] * 9)
            continue
        time_ratio = score_diff = None
        if c.key != PRIMARY[task] and primary.get("status") == "ok":
            time_ratio = primary["fit_time_s"] / s["fit_time_s"]
            score_diff = primary["test_score"] - s["test_score"]
            what = []
            if time_ratio > 1:
                what.append(f"{time_ratio:.2f}x its fit time")
            if score_diff < 0:
                what.append(f"{score} lower by {-score_diff:.4f}")
            if what and not c.ours:
                behind.append(f"- not ahead of {c.label}: " + ", ".join(what))
        notes = ", ".join(s.get("stop_reasons", []) + s.get("warnings", []))
        rows.append(
            [
                c.label + (" (ours)" if c.ours else ""),
                _num(s["test_score"], ".4f"),
                _num(s["final_loss"], ".4g"),
                _num(s["fit_time_s"], ".2f"),
                _num(s.get("repeat_fit_s"), ".2f", "n/a"),
                _num(s["n_iter"], ".0f"),
                _mib(s["rss_peak_mib"], s["rss_fit_mib"]),
                _flops(s),
                _num(time_ratio, ".2f", "—"),
                _num(score_diff, "+.4f", "—"),
                notes,
            ]
        )
    return (
        [
            "Fit time is the first fit in a fresh process and includes tracing; "
            "repeat fit is the median of three further, identical fits of "
            "clones in the same process, each after a full garbage collection "
            "(for sklearn_lm they reuse the compiled step, as the fits of a grid "
            "search or cross-validation do after the first). Ratios are "
            f"against {primary.get('label')} on the first fit (our time / their "
            "time; score difference ours − theirs).",
            "",
        ]
        + _table(
            [
                "contender",
                score,
                loss,
                "fit time (s)",
                "repeat fit (s)",
                "iterations/epochs",
                "peak RSS MiB (fit)",
                "GFLOP/s (% machine)",
                "time ratio",
                "score diff",
                "stopped by",
            ],
            rows,
        )
        + _behind_lines(behind, primary)
    )


def _behind_lines(behind: list[str], primary: dict) -> list[str]:
    if primary.get("status") != "ok":
        return ["No comparison: our contender did not run.", ""]
    if not behind:
        return ["We are ahead of every contender that ran.", ""]
    return ["Where we are not ahead:", "", *behind, ""]


def _scale(task, contenders, summaries, settings) -> list[str]:
    primary = summaries.get(PRIMARY[task], {})
    rows, behind = [], []
    for c in contenders:
        s = summaries[c.key]
        failed = _failed(s)
        if failed:
            rows.append([c.label, failed] + [""] * 8)
            continue
        step_ratio = mem_ratio = None
        if c.key != PRIMARY[task] and primary.get("status") == "ok":
            if primary["step_time_s"] and s["step_time_s"]:
                step_ratio = primary["step_time_s"] / s["step_time_s"]
            if primary["rss_fit_mib"] and s["rss_fit_mib"]:
                mem_ratio = primary["rss_fit_mib"] / s["rss_fit_mib"]
            what = []
            if step_ratio is not None and step_ratio > 1:
                what.append(f"{step_ratio:.2f}x its time per step")
            if mem_ratio is not None and mem_ratio > 1:
                what.append(f"{mem_ratio:.2f}x its memory growth")
            if what and not c.ours:
                behind.append(f"- not ahead of {c.label}: " + ", ".join(what))
        rows.append(
            [
                c.label + (" (ours)" if c.ours else ""),
                _num(s["updates"], ".0f"),
                _num(s["step_time_s"], ".3f"),
                _num(s["overhead_s"], ".2f"),
                _num(s["final_loss"], ".2e"),
                _mib(s["rss_peak_mib"], s["rss_fit_mib"]),
                _flops(s),
                _num(step_ratio, ".2f", "—"),
                _num(mem_ratio, ".2f", "—"),
            ]
        )
    intro = (
        f"{settings['scale_samples']:,} samples; each contender runs "
        f"{settings['scale_max_steps']} full-batch steps (iterations) or until "
        f"{settings['scale_budget_s']:g} s."
    )
    ratios = "Ratios: our step time / theirs and our memory growth / theirs."
    return (
        [f"{intro} {ratios}", ""]
        + _table(
            [
                "contender",
                "updates",
                "step (s)",
                "overhead (s)",
                "MSE at end",
                "peak RSS MiB (fit)",
                "GFLOP/s (% machine)",
                "step ratio",
                "memory ratio",
            ],
            rows,
        )
        + _behind_lines(behind, primary)
    )


# -- targets ----------------------------------------------------------------------
def _four_times_faster(sinc: dict, ours: float, key: str, budget: float):
    """Whether our time to ``key`` is at most a quarter of every other's."""
    if not math.isfinite(ours):
        return "we do not reach 1e-7", "NOT met"
    others = [s for s in sinc.values() if not s.get("ours") and s.get("status") == "ok"]
    reaching = [s for s in others if math.isfinite(s["time_to"][key])]
    slower = [
        f"{s['label']} ({s['time_to'][key]:.2f} s)"
        for s in reaching
        if ours > s["time_to"][key] / 4
    ]
    if slower:
        return "less than 4x faster than " + ", ".join(slower), "NOT met"
    if 4 * ours > budget and len(reaching) < len(others):
        return (
            "the others that reach it are >= 4x slower; those that do not would "
            f"need a budget of {4 * ours:.1f} s to show a 4x margin",
            "not measured",
        )
    return "at least 4x faster than every contender, within the budget", "met"


def evaluate_targets(summaries: dict, settings: dict) -> list[tuple[str, str, str]]:
    """Check the project's targets.

    Returns
    -------
    list of tuple
        ``(target, measured, verdict)`` with verdict ``"met"``, ``"NOT met"``
        or ``"not measured"``.
    """
    out = []
    sinc = summaries.get("sinc")
    key = repr(1e-7)
    ours_ok = {
        k: s
        for k, s in (sinc or {}).items()
        if s.get("ours") and s.get("status") == "ok"
    }
    if ours_ok:
        budget = settings["sinc_budget_s"]
        # One row per sklearn_lm contender: the estimator (what users call)
        # and the bare engine settings are reported alike.
        for ours in ours_ok.values():
            t = ours["time_to"][key]
            out.append(
                (
                    f"sinc: MSE 1e-7 in under 2 s ({ours['label']})",
                    _time(t, ours["reached"][key], ours["ok"], budget),
                    "met" if t < 2.0 else "NOT met",
                )
            )
        best = min(ours_ok.values(), key=lambda s: s["time_to"][key])
        measured, verdict = _four_times_faster(sinc, best["time_to"][key], key, budget)
        out.append(
            (
                "sinc: >= 4x faster to 1e-7 than every other contender that "
                f"reaches it ({best['label']})",
                measured,
                verdict,
            )
        )
        for ours in ours_ok.values():
            fraction = ours.get("machine_fraction")
            if fraction is None:
                continue
            out.append(
                (
                    "sinc: one step at >= 25 % of the measured J^T J rate "
                    f"({ours['label']})",
                    f"{100 * fraction:.1f} %",
                    "met" if fraction >= 0.25 else "NOT met",
                )
            )
    else:
        out.append(("sinc targets", "not run", "not measured"))
    for task, metric, bound in (("friedman1", "test R²", 0.95), ("digits", None, None)):
        block = summaries.get(task)
        ours = (block or {}).get(PRIMARY[task], {})
        lbfgs = (block or {}).get("mlp-lbfgs", {})
        if not block or ours.get("status") != "ok":
            out.append((f"{task} targets", "not run", "not measured"))
            continue
        if bound is not None:
            out.append(
                (
                    f"{task}: {metric} >= {bound}",
                    f"{ours['test_score']:.4f}",
                    "met" if ours["test_score"] >= bound else "NOT met",
                )
            )
        if lbfgs.get("status") != "ok":
            out.append(
                (f"{task}: against L-BFGS", "L-BFGS did not run", "not measured")
            )
            continue
        if bound is None:
            out.append(
                (
                    f"{task}: test accuracy >= MLPClassifier(lbfgs)'s",
                    f"{ours['test_score']:.4f} vs {lbfgs['test_score']:.4f}",
                    "met" if ours["test_score"] >= lbfgs["test_score"] else "NOT met",
                )
            )
        ratio = ours["fit_time_s"] / lbfgs["fit_time_s"]
        out.append(
            (
                f"{task}: wall time within 2x of L-BFGS's",
                f"{ours['fit_time_s']:.2f} s vs {lbfgs['fit_time_s']:.2f} s "
                f"(ratio {ratio:.2f})",
                "met" if ratio <= 2.0 else "NOT met",
            )
        )
        if ours.get("repeat_fit_s") and lbfgs.get("repeat_fit_s"):
            again = ours["repeat_fit_s"] / lbfgs["repeat_fit_s"]
            out.append(
                (
                    f"{task}: repeat fit (compiled step reused) within 2x of "
                    "L-BFGS's repeat fit",
                    f"{ours['repeat_fit_s']:.2f} s vs {lbfgs['repeat_fit_s']:.2f} s "
                    f"(ratio {again:.2f})",
                    "met" if again <= 2.0 else "NOT met",
                )
            )
    return out


# -- page -------------------------------------------------------------------------
def render(meta: dict, rates: dict | None, tasks: dict, figures: dict) -> str:
    """The whole Markdown page.

    Parameters
    ----------
    meta : dict
        The run record: ``date``, ``command``, ``duration_min``, ``cpu``,
        ``nproc``, ``versions``, ``settings`` and, for a rebuilt page,
        ``rerendered``.
    rates : dict or None
        :func:`benchmarks.costmodel.measure` result.
    tasks : dict
        Task name to ``(contenders, summaries)``.
    figures : dict
        Task name to the figure's path relative to the page.

    Returns
    -------
    str
    """
    settings = meta["settings"]
    lines = _header(meta)
    summaries = {
        name: {
            c.key: {**s[c.key], "label": c.label, "ours": c.ours} for c in contenders
        }
        for name, (contenders, s) in tasks.items()
    }
    lines += ["## Targets", ""]
    lines += _table(
        ["target", "measured (medians)", "verdict"],
        [list(t) for t in evaluate_targets(summaries, settings)],
    )
    lines += _definitions()
    lines += _costmodel(rates)
    builders = {
        "sinc": _sinc,
        "friedman1": _generalisation,
        "digits": _generalisation,
        "scale": _scale,
    }
    for name, (contenders, _) in tasks.items():
        lines += [f"## {_TASK_TITLES[name]}", ""]
        lines += _settings_table(contenders)
        lines += builders[name](name, contenders, summaries[name], settings)
        if name in figures:
            lines += [f"![{name}]({figures[name]})", ""]
    return "\n".join(lines).rstrip() + "\n"
