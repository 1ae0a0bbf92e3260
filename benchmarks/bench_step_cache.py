"""What the on-disk cache of compiled steps saves: first fits and a grid search.

Usage::

    python -m benchmarks.bench_step_cache [--repeats 3] [--out FILE]

Every measurement runs in a fresh Python process (import excluded from the
times), in three modes, alternated within each repeat:

* ``off``: ``SKLEARN_LM_NO_CACHE=1``, every graph is traced (the behaviour
  without the cache);
* ``cold``: an empty cache directory, every graph is traced and written;
* ``warm``: a cache directory filled by an earlier, untimed process, every
  graph is loaded.

Workloads:

* first fit: ``make_pipeline(StandardScaler(), estimator)`` with
  ``hidden=(20,)``, ``random_state=0`` on all of ``load_breast_cancer``,
  ``load_digits`` (:class:`~sklearn_lm.LMClassifier`) and ``load_diabetes``
  (:class:`~sklearn_lm.LMRegressor`);
* grid search: ``GridSearchCV(make_pipeline(StandardScaler(),
  LMRegressor(random_state=0)), {"lmregressor__hidden": [(5,), (10,), (20,),
  (40,)]}, cv=5)`` on ``load_diabetes``, with ``n_jobs=1`` and ``n_jobs=2``
  (joblib's worker processes import the library and find the cache too:
  their import is part of the time).

Each child also reports the time of the first call of every compiled
function (trace or load, plus graph instantiation and the first run: what a
cache or a width-independent graph could save; ``n_jobs=1`` only) and a
digest of the fitted weights, which must agree across modes.

The Markdown report (medians, the load average before and after the run,
the command) is printed and written to ``docs/benchmarks_step_cache.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from .child import run_marked

__all__ = ["main", "child"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_step_cache.md"
_MARK = "BENCH_STEP_CACHE_RESULT "
MODES = ["off", "cold", "warm"]
WORKLOADS = ["fit:breast_cancer", "fit:digits", "fit:diabetes", "grid:1", "grid:2"]


# -- child process ---------------------------------------------------------------
def child(workload: str) -> dict:
    """Run one workload in this (fresh) process; return its measurements."""
    import hashlib

    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_lm import LMClassifier, LMRegressor
    from sklearn_lm.engine import compile as compile_module

    first_calls = []
    call = compile_module._Concrete.__call__

    def timed(self, *args):
        if self._concrete is not None:
            return call(self, *args)
        start = time.perf_counter()
        try:
            return call(self, *args)
        finally:
            first_calls.append(time.perf_counter() - start)

    compile_module._Concrete.__call__ = timed
    kind, arg = workload.split(":")
    if kind == "fit":
        X, y = getattr(datasets, f"load_{arg}")(return_X_y=True)
        cls = LMRegressor if arg == "diabetes" else LMClassifier
        model = make_pipeline(StandardScaler(), cls(hidden=(20,), random_state=0))
        fitted = model
    else:
        X, y = datasets.load_diabetes(return_X_y=True)
        model = GridSearchCV(
            make_pipeline(StandardScaler(), LMRegressor(random_state=0)),
            {"lmregressor__hidden": [(5,), (10,), (20,), (40,)]},
            cv=5,
            n_jobs=int(arg),
        )
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    if kind == "grid":
        fitted = model.best_estimator_
    weights = np.concatenate([w.ravel() for w in fitted[-1].model_.get_weights()])
    return {
        "seconds": seconds,
        "first_calls": len(first_calls),
        "first_call_seconds": sum(first_calls),
        "digest": hashlib.sha256(weights.tobytes()).hexdigest()[:16],
    }


def _run_child(workload: str, mode: str, cache: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    if mode == "off":
        env["SKLEARN_LM_NO_CACHE"] = "1"
    else:
        env.pop("SKLEARN_LM_NO_CACHE", None)
        env["SKLEARN_LM_CACHE_DIR"] = cache
    code = (
        "import json, sys; from benchmarks.bench_step_cache import child; "
        f"print({_MARK!r} + json.dumps(child(sys.argv[1])))"
    )
    return run_marked(
        code, [workload], mark=_MARK, env=env, cwd=ROOT, what=f"{workload} ({mode})"
    )


# -- parent ------------------------------------------------------------------------
def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; print and write the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workloads", nargs="*", default=WORKLOADS)
    args = parser.parse_args(argv)
    started, load_before = time.perf_counter(), _load()
    results = {(w, m): [] for w in args.workloads for m in MODES}
    with tempfile.TemporaryDirectory() as root:
        warm = str(Path(root) / "warm")
        for workload in args.workloads:  # fill the warm cache, untimed
            _run_child(workload, "cold", warm)
        for r in range(args.repeats):
            for workload in args.workloads:
                for mode in MODES:
                    cold = str(Path(root) / f"cold-{r}-{workload.replace(':', '-')}")
                    res = _run_child(workload, mode, warm if mode == "warm" else cold)
                    results[workload, mode].append(res)
                    print(workload, mode, res, flush=True)

    def med(workload, mode, field, scale=1000.0):
        return statistics.median(x[field] for x in results[workload, mode]) * scale

    lines = [
        "# On-disk cache of compiled steps",
        "",
        f"Generated by `python -m benchmarks.bench_step_cache --repeats "
        f"{args.repeats}` on {dt.date.today()} ({platform.platform()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs); medians of "
        f"{args.repeats} fresh processes per number, modes alternated; "
        f"{time.perf_counter() - started:.0f} s in all.",
        f"Load average (1/5/15 min): {load_before} before the run, {_load()} after.",
        "",
        "`off`: no cache (every graph traced); `cold`: empty cache (traced and "
        "written); `warm`: filled cache (loaded). Times in ms, import excluded; "
        "`first calls` is the time of the first call of each compiled function "
        "(trace or load, graph instantiation, first run), their count in "
        "brackets (not seen inside joblib's workers for `n_jobs=2`).",
        "",
        "| workload | off | cold | warm | warm / off | first calls, off "
        "| first calls, warm | same weights |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for w in args.workloads:
        digests = {x["digest"] for m in MODES for x in results[w, m]}
        off, cold, warm_ms = (med(w, m, "seconds") for m in MODES)
        counts = [results[w, m][0]["first_calls"] for m in ("off", "warm")]
        lines.append(
            f"| {w} | {off:.0f} | {cold:.0f} | {warm_ms:.0f} | {warm_ms / off:.2f} "
            f"| {med(w, 'off', 'first_call_seconds'):.0f} ({counts[0]}) "
            f"| {med(w, 'warm', 'first_call_seconds'):.0f} ({counts[1]}) "
            f"| {'yes' if len(digests) == 1 else 'NO'} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.write_text(report)
    return report


if __name__ == "__main__":
    main()
