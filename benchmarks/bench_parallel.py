"""Grid search in parallel: wall time with ``n_jobs=1`` and ``n_jobs=2``.

Usage::

    python -m benchmarks.bench_parallel [--quick] [--repeats N] [--n-jobs N]
                                        [--out FILE]

A ``GridSearchCV`` of 8 candidates (``hidden`` x ``damping`` x ``batch_size``
of an :class:`~sklearn_lm.estimators.LMRegressor` on ``make_friedman1``) runs
in four settings, each in a fresh Python process:

* ``n_jobs=1`` with TensorFlow's default thread pools (the baseline);
* ``n_jobs=1`` with one TensorFlow thread, to show what intra-op parallelism
  brings to networks this small;
* ``n_jobs=N`` with TensorFlow's pools sized by
  :func:`sklearn_lm._threads.configure_tensorflow_threads` (joblib sets
  ``OMP_NUM_THREADS = cpu_count // n_jobs`` in its workers);
* ``n_jobs=N`` with TensorFlow's default pools in every worker
  (``SKLEARN_LM_NUM_THREADS=0``): the oversubscribed case.

The joblib workers are started, and TensorFlow imported in them, before the
clock starts: the time measured is that of ``search.fit`` alone (the start-up
is reported beside it). Repeats are interleaved and the fastest is reported.
The Markdown table is printed and written to ``docs/benchmarks_parallel.md``
with the load averages seen, as other processes on the machine change the
timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_parallel.md"
_MARK = "BENCH_PARALLEL_RESULT "
# Variables a setting controls; removed from the inherited environment first.
_THREAD_VARS = (
    "SKLEARN_LM_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def _sizes(quick: bool) -> dict:
    if quick:
        return {"n_samples": 600, "cv": 3, "max_iter": 15, "batch": 150}
    return {"n_samples": 2000, "cv": 5, "max_iter": 60, "batch": 250}


def _settings(n_jobs: int) -> list[dict]:
    return [
        {
            "key": "sequential",
            "label": "n_jobs=1, TensorFlow defaults",
            "n_jobs": 1,
            "env": {},
        },
        {
            "key": "sequential-1",
            "label": "n_jobs=1, 1 TensorFlow thread",
            "n_jobs": 1,
            "env": {"SKLEARN_LM_NUM_THREADS": "1"},
        },
        {
            "key": "parallel",
            "label": f"n_jobs={n_jobs}, TensorFlow threads configured",
            "n_jobs": n_jobs,
            "env": {},
        },
        {
            "key": "parallel-default",
            "label": f"n_jobs={n_jobs}, TensorFlow defaults in workers",
            "n_jobs": n_jobs,
            "env": {"SKLEARN_LM_NUM_THREADS": "0"},
        },
    ]


# -- child process ---------------------------------------------------------------


def _process_threads() -> int:
    """OS threads of this process (Linux), or -1."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _probe(pause: float) -> dict:
    """Load TensorFlow (without starting its runtime) and describe this process.

    Returns the process id, its CPU time so far, TensorFlow's thread settings
    and the number of OS threads.
    """
    import tensorflow as tf

    import sklearn_lm.estimators  # noqa: F401

    time.sleep(pause)  # keep this worker busy so that the others get a task
    times = os.times()
    return {
        "pid": os.getpid(),
        "cpu_s": times.user + times.system,
        "intra": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter": tf.config.threading.get_inter_op_parallelism_threads(),
        "os_threads": _process_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def _probe_all(n_jobs: int) -> list[dict]:
    if n_jobs == 1:
        return [_probe(0.0)]
    from joblib import Parallel, delayed

    # Same n_jobs and environment as the search: joblib reuses these workers.
    with Parallel(n_jobs=n_jobs) as parallel:
        return parallel(delayed(_probe)(1.0) for _ in range(n_jobs))


def _regressor_class():
    """``LMRegressor`` whose ``fit`` sizes TensorFlow's pools first.

    This is what the estimators do themselves once they call
    :func:`~sklearn_lm._threads.configure_tensorflow_threads`; the subclass
    makes the benchmark independent of whether they do.
    """
    cls = globals().get("ThreadAwareLMRegressor")
    if cls is not None:
        return cls
    from sklearn_lm._threads import configure_tensorflow_threads
    from sklearn_lm.estimators import LMRegressor

    class ThreadAwareLMRegressor(LMRegressor):
        def fit(self, X, y, sample_weight=None):
            configure_tensorflow_threads()
            return super().fit(X, y, sample_weight)

    # Found as benchmarks.bench_parallel.ThreadAwareLMRegressor when joblib's
    # workers unpickle it (through the module __getattr__ below).
    ThreadAwareLMRegressor.__module__ = __name__
    ThreadAwareLMRegressor.__qualname__ = "ThreadAwareLMRegressor"
    globals()["ThreadAwareLMRegressor"] = ThreadAwareLMRegressor
    return ThreadAwareLMRegressor


def __getattr__(name: str):
    # Importing this module does not import TensorFlow (the parent process only
    # starts children); the estimator class is made on first access.
    if name == "ThreadAwareLMRegressor":
        return _regressor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def child(config: dict) -> dict:
    """Run one setting in this process and return its measurements."""
    import warnings

    import numpy as np
    from sklearn.datasets import make_friedman1
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    # Epochs are fixed (no early stop) so that every setting does the same
    # work; the resulting warning is expected. scikit-learn passes the
    # filter on to its workers.
    warnings.simplefilter("ignore", ConvergenceWarning)
    regressor = _regressor_class()
    sizes = config["sizes"]
    n_jobs = config["n_jobs"]
    X, y = make_friedman1(n_samples=sizes["n_samples"], noise=0.5, random_state=0)
    grid = {
        "hidden": [(10,), (20,)],
        "damping": [1e-3, 1e-1],
        "batch_size": [None, sizes["batch"]],
    }
    estimator = regressor(
        max_iter=sizes["max_iter"],
        tol=0.0,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    load_before = os.getloadavg()
    start = time.perf_counter()
    before = _probe_all(n_jobs)
    startup = time.perf_counter() - start

    search = GridSearchCV(
        estimator, grid, cv=sizes["cv"], n_jobs=n_jobs, refit=False, error_score="raise"
    )
    cpu_start = time.process_time()
    start = time.perf_counter()
    search.fit(X, y)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    load_after = os.getloadavg()

    after = _probe_all(n_jobs)
    if n_jobs > 1:
        cpu_before = {p["pid"]: p["cpu_s"] for p in before}
        reused = {p["pid"] for p in after} == set(cpu_before)
        if reused:
            cpu += sum(p["cpu_s"] - cpu_before[p["pid"]] for p in after)
        else:
            cpu = float("nan")
    return {
        "key": config["key"],
        "n_jobs": n_jobs,
        "wall_s": wall,
        "cpu_s": cpu,
        "startup_s": startup,
        "n_fits": len(search.cv_results_["params"]) * sizes["cv"],
        "scores": search.cv_results_["mean_test_score"].tolist(),
        "probes": after,
        "load_before": load_before,
        "load_after": load_after,
    }


# -- parent process --------------------------------------------------------------


def _run_setting(setting: dict, sizes: dict, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    env.update(setting["env"])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    config = dict(setting, sizes=sizes)
    code = (
        "import json, sys\n"
        "from benchmarks.bench_parallel import child, _MARK\n"
        "print(_MARK + json.dumps(child(json.loads(sys.argv[1]))), flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"setting {setting['key']!r} failed (exit {proc.returncode}):\n"
            f"{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len(_MARK) :])


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _threads_column(result: dict) -> str:
    probe = result["probes"][0]
    if probe["intra"] == 0:
        return "defaults"
    return f"{probe['intra']} intra + {probe['inter']} inter"


def _versions() -> str:
    import importlib.metadata as md

    names = ("tensorflow-cpu", "tensorflow", "keras", "scikit-learn", "joblib")
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            continue
    return ", ".join(found)


def render(results: dict, meta: dict) -> str:
    """Markdown page of the best-of-repeats results."""
    base = min(r["wall_s"] for r in results["sequential"])
    base_scores = results["sequential"][0]["scores"]
    lines = [
        "# Parallel grid search",
        "",
        f"Produced by `python -m benchmarks.bench_parallel"
        f"{' --quick' if meta['quick'] else ''}` on {meta['date']}.",
        "",
        f"- Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['system']}.",
        f"- Software: Python {meta['python']}, {meta['versions']}.",
        f"- Work: `GridSearchCV` of 8 candidates x {meta['sizes']['cv']} folds "
        f"= {results['sequential'][0]['n_fits']} fits of `LMRegressor` "
        f"(float32, {meta['sizes']['max_iter']} epochs each) on "
        f"`make_friedman1` with {meta['sizes']['n_samples']} samples; grid "
        f"`hidden` in {{(10,), (20,)}} x `damping` in {{1e-3, 1e-1}} x "
        f"`batch_size` in {{None, {meta['sizes']['batch']}}}.",
        f"- Time of `search.fit` only, best of {meta['repeats']} interleaved "
        "repeat(s); joblib's workers were started and had imported TensorFlow "
        "before (that start-up is the last column).",
        f"- Load when starting: `{meta['uptime_start']}`.",
        f"- Load when done: `{meta['uptime_end']}`.",
        "",
        "| Setting | TF threads per process | OS threads per process "
        "| `search.fit` (s) | Speed-up | CPU time (s) | Worker start-up (s) "
        "| 1-min load at start |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for setting in meta["settings"]:
        runs = results[setting["key"]]
        best = min(runs, key=lambda r: r["wall_s"])
        os_threads = sorted({p["os_threads"] for p in best["probes"]})
        lines.append(
            f"| {setting['label']} | {_threads_column(best)} "
            f"| {', '.join(map(str, os_threads))} "
            f"| {best['wall_s']:.1f} | {base / best['wall_s']:.2f}x "
            f"| {best['cpu_s']:.1f} | {best['startup_s']:.1f} "
            f"| {best['load_before'][0]:.2f} |"
        )
    worst = 0.0
    for runs in results.values():
        for run in runs:
            diff = max(
                abs(a - b) for a, b in zip(run["scores"], base_scores, strict=True)
            )
            worst = max(worst, diff)
    all_walls = "; ".join(
        f"{s['key']}: " + ", ".join(f"{r['wall_s']:.1f}" for r in results[s["key"]])
        for s in meta["settings"]
    )
    if worst == 0.0:
        agreement = "the scores are identical in every setting."
    else:
        agreement = (
            f"{worst:.1e} (float32 sums run in another order with other thread counts)."
        )
    lines += [
        "",
        "Speed-up is relative to the first row. CPU time is the user + system "
        "time of the main process and of joblib's workers during `search.fit`; "
        "it depends less on other load than wall time, and it shows the "
        "threads' overhead. OS threads are counted per process after the "
        "search (Python, joblib and TensorFlow threads together). All runs' "
        "wall times: " + all_walls + " s.",
        "",
        "Largest difference of a candidate's mean cross-validation R^2 from the "
        "first row: " + agreement,
        "",
        "The load averages count every runnable thread on the machine, this "
        "benchmark's own included (1 to 2 busy processes). A load above the "
        "number of CPUs means other work shared the cores during the "
        "measurement: wall times and speed-ups are then noisy (either way), "
        "CPU times less so.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the Markdown page."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_parallel",
        description="Grid search with n_jobs=1 against n_jobs=N.",
    )
    parser.add_argument("--quick", action="store_true", help="a small grid search")
    parser.add_argument("--repeats", type=int, default=None, help="default 2 (1)")
    parser.add_argument("--n-jobs", type=int, default=2, help="default 2")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    sizes = _sizes(args.quick)
    settings = _settings(args.n_jobs)
    timeout = 900.0 if args.quick else 3600.0
    meta = {
        "quick": args.quick,
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": _versions(),
        "sizes": sizes,
        "repeats": repeats,
        "settings": settings,
        "uptime_start": _uptime(),
    }
    print(meta["uptime_start"], flush=True)
    results: dict[str, list[dict]] = {s["key"]: [] for s in settings}
    for repeat in range(repeats):
        for setting in settings:
            result = _run_setting(setting, sizes, timeout)
            results[setting["key"]].append(result)
            print(
                f"[{repeat + 1}/{repeats}] {setting['label']}: "
                f"{result['wall_s']:.1f} s, CPU {result['cpu_s']:.1f} s "
                f"(start-up {result['startup_s']:.1f} s, "
                f"load {result['load_before'][0]:.2f})",
                flush=True,
            )
    meta["uptime_end"] = _uptime()
    page = render(results, meta)
    print()
    print(page)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
