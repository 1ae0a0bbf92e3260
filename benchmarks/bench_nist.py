"""The NIST StRD nonlinear regression problems: the engine against MINPACK.

Usage::

    python -m benchmarks.bench_nist [--variants NAME,...] [--problems NAME,...]
                                    [--max-steps N] [--out FILE] [--json FILE]

For each of the 27 problems of :mod:`benchmarks.nist` and each of NIST's two
starting points:

* ours: a float64 ``keras.Model`` whose weights are the problem's parameters
  (:func:`benchmarks.nist.keras_model`), trained by
  ``Trainer(model, loss="mse", damping=...)`` with the engine's other
  defaults, full batch (one LM step per epoch), at most ``--max-steps``
  steps (1000): ``fit(x, y, epochs=1000)``. The mean squared error has the
  same minimiser as the residual sum of squares;
* SciPy: ``scipy.optimize.least_squares(method="lm")`` (MINPACK) on the same
  data and formula in NumPy, twice: with its defaults (finite-difference
  Jacobian, ``ftol = xtol = gtol = 1e-8``, ``max_nfev = 100 n``); and as
  MINPACK does best, with the exact Jacobian (complex step,
  ``Problem.jacobian``), ``ftol = xtol = gtol = 1e-15`` and ``max_nfev =
  10000`` -- the reference. There ``nfev`` counts residual evaluations and
  ``njev`` Jacobians, as our attempts and steps do.

Reported per problem and start: the correct significant digits of the
parameters, ``LRE = min_i -log10(|b_i - c_i| / |c_i|)`` against the certified
values ``c`` (clipped to [0, 11]); our steps (Jacobians), attempts (loss
evaluations of trial steps) and stop reason; the step at which 6 digits were
first reached; the digits of the certified standard deviations matched by
:func:`sklearn_lm.engine.covariance.parameter_covariance` at our final
weights (``Trainer.parameter_covariance``); SciPy's ``nfev`` (and ``njev``).
A variant of ours is a damping strategy and the convergence tests of
``Trainer.fit`` (:data:`VARIANTS`; :mod:`benchmarks.damping_variants`); the
first is the engine's default.

The models are float64 by their own declarations
(:func:`benchmarks.nist.keras_model`); Keras' global ``floatx`` is left
alone.

The Markdown table is printed and written to ``docs/benchmarks_nist.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import nist

__all__ = ["main", "run_ours", "run_scipy", "VARIANTS", "summarise", "render"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_nist.md"
MAX_STEPS = 1000
#: Digits of the certified parameters that count as "solved".
DIGITS = 6.0
#: Digits of the certified standard deviations that count as matched.
SD_DIGITS = 4.0


def _engine(name: str, **kwargs) -> Callable:
    def make():
        from sklearn_lm.engine import damping

        return damping.get(name, **kwargs)

    return make


def _variant(name: str, **kwargs) -> Callable:
    def make():
        from . import damping_variants

        return getattr(damping_variants, name)(**kwargs)

    return make


_NO_TESTS = {"ftol": None, "xtol": None, "gtol": None}

#: Variants of ours compared: name -> (description, factory of the damping
#: argument, options of ``Trainer.fit``). The first is the engine's default.
VARIANTS: dict[str, tuple[str, Callable, dict]] = {
    "default": (
        "engine defaults: `H + lambda I`, lambda >= 1e-16, convergence tests "
        "ftol 1e-14, xtol 1e-10, gtol 1e-10",
        lambda: None,
        {},
    ),
    "no-tests": (
        "`H + lambda I`, lambda >= 1e-16, no convergence tests (ends when "
        "lambda reaches its maximum)",
        lambda: None,
        _NO_TESTS,
    ),
    "floor-1e-10": (
        "`H + lambda I`, lambda >= 1e-10 (the former default floor), no "
        "convergence tests",
        _engine("standard", min_value=1e-10),
        _NO_TESTS,
    ),
    "relative": (
        "`H + lambda max(diag H) I`, lambda >= 1e-15 "
        "(`benchmarks.damping_variants.Relative`), no convergence tests",
        _variant("Relative"),
        _NO_TESTS,
    ),
    "fletcher": (
        "`H + lambda diag(H)`, lambda >= 1e-10, no convergence tests",
        _engine("fletcher", min_value=1e-10),
        _NO_TESTS,
    ),
    "more": (
        "`H + lambda D`, D the running max of diag(H) (Moré, MINPACK), "
        "lambda >= 1e-10 (`benchmarks.damping_variants.More`), no convergence "
        "tests",
        _variant("More"),
        _NO_TESTS,
    ),
}


def run_ours(
    problem: nist.Problem,
    start: int,
    damping=None,
    max_steps: int = MAX_STEPS,
    fit_options: dict | None = None,
) -> dict:
    """Fit ``problem`` from NIST start ``start`` (0 or 1) with the engine."""

    from sklearn_lm.engine import Trainer

    model = nist.keras_model(problem, problem.starts[start])
    kwargs = {} if damping is None else {"damping": damping}
    began = time.perf_counter()
    trainer = Trainer(model, loss="mse", **kwargs)
    first_solved = []
    attempts = []

    def record(epoch: int, logs: dict) -> None:
        attempts.append(logs["attempts"] * logs["steps"])
        if not first_solved:
            b = trainer.fn.get_weights().numpy()
            if nist.log_relative_error(b, problem.certified) >= DIGITS:
                first_solved.append(epoch + 1)

    history = trainer.fit(
        problem.x,
        problem.y[:, None],
        epochs=max_steps,
        callbacks=[record],
        **(fit_options or {}),
    )
    seconds = time.perf_counter() - began
    b = trainer.fn.get_weights().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular J^T J gives inf: 0 digits
        cov = trainer.parameter_covariance(problem.x, problem.y)
    reason = history.stop_reason
    reason = getattr(reason, "value", reason) or "max_epochs"
    return {
        "digits": nist.log_relative_error(b, problem.certified),
        "sd_digits": nist.log_relative_error(cov.standard_errors, problem.certified_sd),
        "steps": int(history.n_steps),
        "attempts": int(round(sum(attempts))),
        "first_solved": first_solved[0] if first_solved else None,
        "stop": str(reason),
        "rss_ratio": problem.rss(b) / problem.certified_rss,
        "seconds": seconds,
    }


#: MINPACK's tightest useful tolerances (they must exceed machine epsilon).
TIGHT = 1e-15


def run_scipy(problem: nist.Problem, start: int, exact_jacobian: bool) -> dict:
    """``least_squares(method="lm")`` from NIST start ``start``.

    ``exact_jacobian=False``: SciPy's defaults. ``True``: the exact Jacobian,
    tolerances :data:`TIGHT` and ``max_nfev=10000``.
    """
    from scipy.optimize import least_squares

    options = {}
    if exact_jacobian:
        options = {"jac": problem.jacobian, "max_nfev": 10_000}
        options.update(ftol=TIGHT, xtol=TIGHT, gtol=TIGHT)
    began = time.perf_counter()
    with np.errstate(all="ignore"):
        res = least_squares(
            problem.residuals, problem.starts[start], method="lm", **options
        )
    return {
        "digits": nist.log_relative_error(res.x, problem.certified),
        "nfev": int(res.nfev),
        "njev": None if res.njev is None else int(res.njev),
        "status": int(res.status),
        "seconds": time.perf_counter() - began,
    }


# -- report -------------------------------------------------------------------------
#: Stop reasons, abbreviated in the per-problem table.
_STOPS = {
    "damping_max": "D",
    "max_epochs": "M",
    "non_finite": "N",
    "ftol": "F",
    "xtol": "X",
    "gtol": "G",
}
_SCIPY = (("scipy", "SciPy defaults"), ("scipy_exact", "MINPACK"))


def _median(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def summarise(rows: list[dict], variants: list[str]) -> dict:
    """Problem/starts with >= 6 digits and median effort, per method."""
    out = {}
    for key, _ in _SCIPY:
        runs = [r[key] for r in rows]
        out[key] = {
            "solved": sum(r["digits"] >= DIGITS for r in runs),
            "median_nfev": _median([r["nfev"] for r in runs]),
            "median_njev": _median([r["njev"] for r in runs if r["njev"]]),
        }
    for name in variants:
        runs = [r[name] for r in rows]
        firsts = [r["first_solved"] for r in runs if r["first_solved"] is not None]
        out[name] = {
            "solved": sum(r["digits"] >= DIGITS for r in runs),
            "sd_solved": sum(r["sd_digits"] >= SD_DIGITS for r in runs),
            "median_steps": _median([r["steps"] for r in runs]),
            "median_attempts": _median([r["attempts"] for r in runs]),
            "median_first_solved": _median(firsts),
            "max_steps_hit": sum(r["stop"] == "max_epochs" for r in runs),
            "seconds": sum(r["seconds"] for r in runs),
        }
    return out


def _digits(value: float, enough: float = DIGITS) -> str:
    return f"{value:.1f}" + ("" if value >= enough else " ✗")


def _g(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:g}"


def _header(meta: dict) -> list[str]:
    return [
        "# NIST StRD nonlinear regression: the engine against MINPACK",
        "",
        f"Produced by `python -m benchmarks.bench_nist{meta['args']}` on "
        f"{meta['date']} ({meta['cpus']} CPUs, {meta['system']}, "
        f"Python {meta['python']}, SciPy {meta['scipy']}).",
        "",
        "- Problems: the 27 NIST StRD nonlinear least-squares problems "
        "(`tests/data/nist/`), both NIST starting points; each a float64 "
        "`keras.Model` whose weights are the parameters.",
        '- Ours: `Trainer(model, loss="mse", damping=...)` and `fit(..., '
        "ftol=..., xtol=..., gtol=...)`, the other settings "
        f"at the engine's defaults, full batch, at most {meta['max_steps']} "
        "steps. *Steps* are LM steps (one Jacobian each), *attempts* the "
        "trial steps evaluated (one loss each); *step at 6 digits* is the "
        "first step whose parameters match 6 certified digits; *sd ≥ 4* counts "
        "the fits whose standard errors "
        "(`sklearn_lm.engine.covariance.parameter_covariance` at the final "
        "weights) match 4 digits of the certified standard deviations.",
        '- SciPy: `least_squares(method="lm")` (MINPACK). *SciPy defaults*: '
        "finite-difference Jacobian, tolerances 1e-8, `max_nfev = 100 n`. "
        "*MINPACK*: the exact Jacobian (complex step), `ftol = xtol = gtol = "
        "1e-15`, `max_nfev = 10000`; `nfev` counts residual evaluations, "
        "`njev` Jacobians.",
        "- Digits: `min_i -log10(|b_i - c_i| / |c_i|)` against the certified "
        "values `c`, clipped to [0, 11]; ✗ marks fewer than 6 (4 for standard "
        "deviations).",
        "",
    ]


def render(rows: list[dict], variants: list[str], meta: dict) -> str:
    """Markdown page: summary, then one row per problem and start."""
    total = len(rows)
    summary = summarise(rows, variants)
    lines = _header(meta) + [
        "## Summary",
        "",
        f"| Method | ≥ 6 digits (of {total}) | sd ≥ 4 digits | Median steps (njev) "
        "| Median attempts (nfev) | Median step at 6 digits | Stopped at max steps "
        "| Time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in _SCIPY:
        s = summary[key]
        lines.append(
            f"| {label} | {s['solved']} | — | {_g(s['median_njev'])} "
            f"| {_g(s['median_nfev'])} | — | — | — |"
        )
    for name in variants:
        s = summary[name]
        lines.append(
            f"| ours, {name} | {s['solved']} | {s['sd_solved']} "
            f"| {_g(s['median_steps'])} | {_g(s['median_attempts'])} "
            f"| {_g(s['median_first_solved'])} | {s['max_steps_hit']} "
            f"| {s['seconds']:.0f} |"
        )
    lines += ["", "Variants of ours (damping strategy and stopping):", ""]
    lines += [f"- `{name}`: {VARIANTS[name][0]}" for name in variants]
    lines += [
        "",
        "Notes: without convergence tests a converged fit ends when lambda "
        "reaches its maximum through rejected attempts (stop D): its last 2 to "
        "4 steps are those rejections; the tests (`Trainer.fit`'s `ftol`, "
        "`xtol`, `gtol`, as in `scipy.optimize.least_squares`) end it at the "
        "first step that meets one of them. *Step at 6 digits* does not count "
        "them (its median is over the "
        "fits that reach 6 digits). Lanczos1's certified residual sum of "
        "squares (1.4e-25) is below what float64 residuals of data of order 1 "
        "resolve, so its standard deviations (proportional to its square root) "
        "match about 3 digits at best.",
    ]
    lines += [
        "",
        "## Per problem",
        "",
        "SciPy: digits / nfev (njev). Ours: digits, sd digits / steps (step at 6 "
        "digits) and the stop reason: F, X, G the convergence tests ftol, xtol, "
        "gtol, D damping at its maximum, M the maximum number of steps, N a "
        "non-finite loss.",
        "",
    ]
    header = ["Problem", "Level", "Start"] + [label for _, label in _SCIPY]
    header += [f"ours, {name}" for name in variants]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["problem"], r["difficulty"], str(r["start"] + 1)]
        for key, _ in _SCIPY:
            njev = "" if r[key]["njev"] is None else f" ({r[key]['njev']})"
            cells.append(f"{_digits(r[key]['digits'])} / {r[key]['nfev']}{njev}")
        for name in variants:
            o = r[name]
            first = "" if o["first_solved"] is None else f" ({o['first_solved']})"
            cells.append(
                f"{_digits(o['digits'])}, {_digits(o['sd_digits'], SD_DIGITS)} / "
                f"{o['steps']}{first} {_STOPS.get(o['stop'], o['stop'])}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _summary_text(rows: list[dict], variants: list[str]) -> str:
    s = summarise(rows, variants)
    total = len(rows)
    out = []
    for key, label in _SCIPY:
        out.append(
            f"{label}: {s[key]['solved']}/{total} with >= 6 digits, "
            f"median nfev {_g(s[key]['median_nfev'])}, "
            f"median njev {_g(s[key]['median_njev'])}"
        )
    for name in variants:
        v = s[name]
        out.append(
            f"ours {name}: {v['solved']}/{total} with >= 6 digits "
            f"(sd >= 4 digits: {v['sd_solved']}), median steps "
            f"{_g(v['median_steps'])}, median attempts {_g(v['median_attempts'])}, "
            f"median step at 6 digits {_g(v['median_first_solved'])}, "
            f"{v['max_steps_hit']} at max steps, {v['seconds']:.0f} s"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated damping variants of ours, from {list(VARIANTS)}",
    )
    parser.add_argument("--problems", default=",".join(nist.NAMES))
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", type=Path, default=None, help="raw results")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    names = [p for p in args.problems.split(",") if p]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import scipy

    rows = []
    for name in names:
        problem = nist.load(name)
        for start in (0, 1):
            row = {
                "problem": name,
                "difficulty": problem.difficulty,
                "start": start,
                "scipy": run_scipy(problem, start, exact_jacobian=False),
                "scipy_exact": run_scipy(problem, start, exact_jacobian=True),
            }
            for variant in variants:
                _, damping, fit_options = VARIANTS[variant]
                row[variant] = run_ours(
                    problem, start, damping(), args.max_steps, fit_options
                )
            rows.append(row)
            brief = ", ".join(
                f"{v} {row[v]['digits']:.1f}/{row[v]['steps']}" for v in variants
            )
            print(
                f"{name} start {start + 1}: scipy {row['scipy']['digits']:.1f}/"
                f"{row['scipy']['nfev']}; {brief}",
                flush=True,
            )
    shown = [
        f" --{name.replace('_', '-')} {value}"
        for name, value in (
            ("variants", args.variants),
            ("problems", args.problems),
            ("max_steps", args.max_steps),
        )
        if value != parser.get_default(name)
    ]
    meta = {
        "args": "".join(shown),
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "scipy": scipy.__version__,
        "max_steps": args.max_steps,
    }
    page = render(rows, variants, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print()
    print(_summary_text(rows, variants))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
