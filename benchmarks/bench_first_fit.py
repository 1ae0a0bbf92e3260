"""Where the time of a first fit goes: import, build, trace, first call, steps.

Usage::

    python -m benchmarks.bench_first_fit [--repeats 3] [--out FILE]
        [--datasets NAME ...] [--baseline DIR] [--cache {off,warm}]
        [--pycache-prefix DIR]

Every measurement runs in a fresh Python process; each number is the median
over ``--repeats`` processes (3 by default).

``--baseline DIR`` measures another source tree too (a checkout of an earlier
version: the directory holding its ``sklearn_lm`` package), with this file's
measuring code: each process of this tree is followed by the same one of the
baseline, so that both see the same load, and the report adds a before/after
table. ``--datasets`` measures a subset of the fits. ``--pycache-prefix DIR``
runs every process with ``PYTHONPYCACHEPREFIX=DIR`` and bytecode writing on,
so that all modules, the measured trees' included, load from cached bytecode
as after an install (the first process fills ``DIR``; without the option the
processes inherit the environment, where ``PYTHONDONTWRITEBYTECODE`` makes a
source tree compile its modules at every import).

* Imports: ``import tensorflow``, ``import keras``, ``import sklearn_lm`` and
  ``import sklearn.neural_network``, each alone in a fresh process, timed by
  ``time.perf_counter`` around the ``import`` statement (wall time, with
  ``KERAS_BACKEND=tensorflow``), after one untimed process that imports them
  all so that every timed import finds the files cached; and
  ``import sklearn_lm`` after an untimed ``import tensorflow, keras`` in the
  same process, what the package adds to them (more precise than the
  difference of two fresh processes, each varying by about 0.1 s).
* Fits, import excluded: ``make_pipeline(StandardScaler(), estimator)`` with
  ``hidden=(20,)`` and ``random_state=0``, on a 75/25 split
  (``random_state=0``) of ``load_breast_cancer`` and ``load_digits``
  (:class:`~sklearn_lm.LMClassifier`) and ``load_diabetes``
  (:class:`~sklearn_lm.LMRegressor`). Everything is imported and the data are
  loaded before the clock starts. The library's own steps are timed from
  outside, by wrapping them in the child process (the library is not
  changed): ``configure_tensorflow_threads``, ``build_network``,
  ``init_from_data``, ``Trainer.__init__`` and the ``model_function`` it
  calls, ``compiled_step`` (making the ``tf.function`` objects or finding them
  in the cache), and every compiled function
  (``sklearn_lm.engine.compile._Concrete``): its tracing
  (``get_concrete_function``), its first call (graph instantiation and the
  first run) and its later calls, plus the Python of ``Trainer.fit`` and
  ``forward``. Times are exclusive (a wrapped step nested in another is
  subtracted from it); ``rest`` is the fit's wall time minus all of them
  (input validation, target encoding, the estimator's own bookkeeping). A
  second fit of a new, identical pipeline follows in the same process. The
  nodes of the graphs each fit traces (their loop and branch functions
  included) are counted too, and the CPU time of the tracing thread
  (``time.thread_time``), which a loaded machine disturbs less than the
  wall time.
* Import and first fit together: a fresh process runs what a user's script
  does, ``import sklearn_lm``, then the scikit-learn imports, loading and
  splitting the data, and the first fit (no wrapping), timed from before the
  first import to the end of the fit; a cost moved from the import to the
  fit does not change it.
* scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` (``solver="lbfgs"``,
  ``hidden_layer_sizes=(20,)``, ``random_state=0``, other settings default)
  in the same pipeline on the same split, in its own fresh process.

``--cache warm`` measures the fits of a later session instead: each tree
gets a disk cache of compiled graphs of its own
(``SKLEARN_LM_CACHE_DIR``), filled by one untimed fit per data set, and the
timed fits load their graphs from it (the load is part of each graph's
first call; nothing is traced). By default (``--cache off``) every graph is
traced.

The Markdown report (tables, the load average before and after the run, the
command) is printed and written to ``docs/benchmarks_first_fit.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "child"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_first_fit.md"
_MARK = "BENCH_FIRST_FIT_RESULT "

IMPORTS = ["tensorflow", "keras", "sklearn_lm", "sklearn.neural_network"]
#: ``import sklearn_lm`` timed after these, untimed, in the same process: what
#: the package adds to them, without their variation from process to process.
_AFTER = ["tensorflow", "keras"]
_INCREMENT = "sklearn_lm after tensorflow, keras"
DATASETS = ["breast_cancer", "digits", "diabetes"]
#: Imported too by the untimed first process (bytecode cached, files read).
_WARM = [
    "sklearn.datasets",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
]
#: Phases in the order of the table.
PHASES = [
    "configure_tensorflow_threads",
    "build_network",
    "init_from_data",
    "model_function",
    "Trainer.__init__ (rest)",
    "compiled_step (make or find)",
    "trace (get_concrete_function)",
    "first call (instantiate + run)",
    "later calls",
    "Trainer.fit loop (Python)",
    "forward",
    "rest of fit",
]


# -- child process ---------------------------------------------------------------
class _Timers:
    """Exclusive wall times of nested wrapped calls, by phase."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._stack: list[float] = []  # time spent in children, per open frame
        self.graph_nodes = 0  # nodes of the graphs traced (not timed)
        self.trace_cpu = 0.0  # CPU time of the tracing thread

    def add(self, phase: str, seconds: float, count: bool = True) -> None:
        self.totals[phase] = self.totals.get(phase, 0.0) + seconds
        if count:
            self.counts[phase] = self.counts.get(phase, 0) + 1

    def run(self, phase: str, function, *args, **kwargs):
        self._stack.append(0.0)
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            children = self._stack.pop()
            self.add(phase, elapsed - children)
            if self._stack:
                self._stack[-1] += elapsed

    def wrap(self, phase: str, function):
        def wrapper(*args, **kwargs):
            return self.run(phase, function, *args, **kwargs)

        return wrapper

    def reset(self) -> None:
        self.totals.clear()
        self.counts.clear()
        self.graph_nodes = 0
        self.trace_cpu = 0.0


def _graph_nodes(concrete) -> int:
    """Nodes of a traced function's graph, those of its loop and branch
    functions included."""
    graph_def = concrete.graph.as_graph_def()
    return len(graph_def.node) + sum(
        len(f.node_def) for f in graph_def.library.function
    )


def _install(timers: _Timers, warm: bool = False) -> None:
    """Wrap the library's steps with timers (in this process only).

    ``warm``: compiled functions come from the on-disk cache (their first
    call loads the graph, instantiates and runs it); else every graph is
    traced, bypassing the cache.
    """
    from sklearn_lm.engine import _call_options, loop
    from sklearn_lm.engine import compile as compile_module
    from sklearn_lm.estimators import _base

    for name in ("configure_tensorflow_threads", "build_network", "init_from_data"):
        setattr(_base, name, timers.wrap(name, getattr(_base, name)))
    _base.forward = timers.wrap("forward", _base.forward)
    loop.model_function = timers.wrap("model_function", loop.model_function)
    loop.compiled_step = timers.wrap("compiled_step (make or find)", loop.compiled_step)
    init = loop.Trainer.__init__
    loop.Trainer.__init__ = timers.wrap("Trainer.__init__ (rest)", init)
    loop.Trainer.fit = timers.wrap("Trainer.fit loop (Python)", loop.Trainer.fit)

    library_call = compile_module._Concrete.__call__

    def call_warm(self, *args):
        phase = "later calls"
        if self._concrete is None:
            phase = "first call (instantiate + run)"
        return timers.run(phase, library_call, self, *args)

    def call(self, *args):
        if self._concrete is None:
            cpu = time.thread_time()
            self._concrete = timers.run(
                "trace (get_concrete_function)", self.function.get_concrete_function
            )
            timers.trace_cpu += time.thread_time() - cpu
            timers.graph_nodes += _graph_nodes(self._concrete)
            phase = "first call (instantiate + run)"
        else:
            phase = "later calls"
        return timers.run(phase, _call_options.call, self._concrete, args)

    compile_module._Concrete.__call__ = call_warm if warm else call


def _data(name: str):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)
    return X_train, y_train


def _pipeline(kind: str, name: str):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "lm":
        from sklearn_lm import LMClassifier, LMRegressor

        cls = LMRegressor if name == "diabetes" else LMClassifier
        est = cls(hidden=(20,), random_state=0)
    else:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if name == "diabetes" else MLPClassifier
        est = cls(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0)
    return make_pipeline(StandardScaler(), est)


def _timed_fit(kind: str, name: str, X, y, timers: _Timers | None) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    pipe = _pipeline(kind, name)
    if timers is not None:
        timers.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        pipe.fit(X, y)
        total = time.perf_counter() - started
    result = {"total": total, "n_iter": int(pipe[-1].n_iter_)}
    if timers is not None:
        phases = dict(timers.totals)
        phases["rest of fit"] = total - sum(phases.values())
        result["phases"] = phases
        result["counts"] = dict(timers.counts)
        result["graph_nodes"] = timers.graph_nodes
        result["trace_cpu"] = timers.trace_cpu
    return result


def child(job: dict) -> dict:
    """One measurement in this (fresh) process: an import or a fit."""
    if job["what"] == "import":
        for module in job.get("after", []):
            __import__(module)
        started = time.perf_counter()
        __import__(job["module"])
        return {"total": time.perf_counter() - started}
    if job["what"] == "warm":
        for module in [*IMPORTS, *_AFTER, *_WARM]:
            __import__(module)
        return {}
    if job["what"] == "total":
        import warnings

        if job.get("cache") != "warm":  # every graph traced, as in the "lm" job
            os.environ["SKLEARN_LM_NO_CACHE"] = "1"
        started = time.perf_counter()
        import sklearn_lm  # noqa: F401

        X, y = _data(job["data"])
        pipe = _pipeline("lm", job["data"])
        imported = time.perf_counter() - started
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X, y)
        return {"total": time.perf_counter() - started, "import": imported}
    # Import everything and load the data before the clock starts.
    import sklearn.neural_network  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    X, y = _data(job["data"])
    if job["what"] == "mlp":
        return {"first": _timed_fit("mlp", job["data"], X, y, None)}
    import sklearn_lm  # noqa: F401

    timers = _Timers()
    _install(timers, warm=job.get("cache") == "warm")
    first = _timed_fit("lm", job["data"], X, y, timers)
    second = _timed_fit("lm", job["data"], X, y, timers)
    return {"first": first, "second": second}


#: ``--cache warm``: one disk-cache directory per measured tree.
_CACHE_DIRS: dict = {}

#: ``PYTHONPYCACHEPREFIX`` of the child processes (``--pycache-prefix``).
_PYCACHE_PREFIX: Path | None = None


def _spawn(job: dict, root: Path = ROOT) -> dict:
    """Run :func:`child` in a fresh process that imports ``sklearn_lm`` from
    ``root`` (this file's code measures, whichever tree is measured)."""
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
    }
    if job.get("cache") == "warm":
        env.pop("SKLEARN_LM_NO_CACHE", None)
        env["SKLEARN_LM_CACHE_DIR"] = _CACHE_DIRS.setdefault(
            str(root), tempfile.mkdtemp(prefix="bench-first-fit-cache-")
        )
    if _PYCACHE_PREFIX is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE_PREFIX)
    code = (
        "import importlib.util, json, sys; "
        "spec = importlib.util.spec_from_file_location('bench', sys.argv[2]); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(m._MARK + json.dumps(m.child(json.loads(sys.argv[1]))))"
    )
    # Imported here: a child loads this file alone, outside the package.
    from benchmarks.child import run_marked

    return run_marked(
        code,
        [json.dumps(job), str(Path(__file__).resolve())],
        mark=_MARK,
        env=env,
        cwd=root,
        what=f"child for {job}",
    )


# -- parent ----------------------------------------------------------------------
def _median(values) -> float:
    return statistics.median(values)


def _alternate(job: dict, roots: list[Path], repeats: int) -> list[list[dict]]:
    """``repeats`` results of ``job`` per tree, the trees taking turns."""
    runs: list[list[dict]] = [[] for _ in roots]
    for _ in range(repeats):
        for i, root in enumerate(roots):
            runs[i].append(_spawn(job, root))
    return runs


def _summary(lm: list[dict], mlp: list[dict] | None) -> dict:
    entry: dict = {}
    for which in ("first", "second"):
        runs = [r[which] for r in lm]
        entry[which] = {
            "total": _median([r["total"] for r in runs]),
            "n_iter": _median([r["n_iter"] for r in runs]),
            "graph_nodes": _median([r.get("graph_nodes", 0) for r in runs]),
            "trace_cpu": _median([r.get("trace_cpu", 0.0) for r in runs]),
            "phases": {
                p: _median([r["phases"].get(p, 0.0) for r in runs]) for p in PHASES
            },
            "counts": {
                p: _median([r["counts"].get(p, 0) for r in runs]) for p in PHASES
            },
        }
    if mlp is not None:
        entry["mlp"] = _median([r["first"]["total"] for r in mlp])
        entry["mlp_n_iter"] = _median([r["first"]["n_iter"] for r in mlp])
    return entry


def _totals(runs: list[dict]) -> dict:
    return {
        "total": _median([r["total"] for r in runs]),
        "import": _median([r["import"] for r in runs]),
    }


def run(
    repeats: int,
    datasets: list[str] | None = None,
    baseline: Path | None = None,
    cache: str = "off",
) -> dict:
    """Measure; with ``baseline``, ``results["baseline"]`` holds the same
    measurements (without scikit-learn's) of that tree. ``cache="warm"``:
    each tree's fits load their graphs from a disk cache of its own, filled
    by one untimed fit per data set first."""
    roots = [ROOT] if baseline is None else [ROOT, Path(baseline).resolve()]
    results: dict = {"imports": {}, "fits": {}, "totals": {}}
    if baseline is not None:
        results["baseline"] = {
            "imports": {},
            "fits": {},
            "totals": {},
            "root": str(roots[1]),
        }
    # One untimed import first, so that every timed one finds the files cached.
    for root in roots:
        _spawn({"what": "warm"}, root)
    for module in [*IMPORTS, _INCREMENT]:
        job = {"what": "import", "module": module}
        if module == _INCREMENT:
            job = {"what": "import", "module": "sklearn_lm", "after": _AFTER}
        runs = _alternate(job, roots, repeats)
        times = [_median([r["total"] for r in tree]) for tree in runs]
        results["imports"][module] = times[0]
        if baseline is not None:
            results["baseline"]["imports"][module] = times[1]
        print(f"import {module}: {times[0] * 1e3:.0f} ms", file=sys.stderr)
    for name in datasets or DATASETS:
        job = {"what": "lm", "data": name, "cache": cache}
        if cache == "warm":
            for root in roots:
                _spawn(job, root)
        total = {"what": "total", "data": name, "cache": cache}
        totals = _alternate(total, roots, repeats)
        results["totals"][name] = _totals(totals[0])
        if baseline is not None:
            results["baseline"]["totals"][name] = _totals(totals[1])
        lm = _alternate(job, roots, repeats)
        mlp = [_spawn({"what": "mlp", "data": name}) for _ in range(repeats)]
        entry = _summary(lm[0], mlp)
        results["fits"][name] = entry
        if baseline is not None:
            results["baseline"]["fits"][name] = _summary(lm[1], None)
        print(
            f"{name}: first {entry['first']['total'] * 1e3:.0f} ms, "
            f"second {entry['second']['total'] * 1e3:.0f} ms, "
            f"MLP {entry['mlp'] * 1e3:.0f} ms",
            file=sys.stderr,
        )
    return results


def _label(module: str) -> str:
    if module == _INCREMENT:
        return "`import sklearn_lm` after `import " + ", ".join(_AFTER) + "`"
    return f"`import {module}`"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}"


def tables(results: dict) -> str:
    names = list(results["fits"])
    head = "| phase | " + " | ".join(f"{n}, 1st | {n}, 2nd" for n in names) + " |"
    lines = [
        "## Fit phases (ms, exclusive; calls in brackets)",
        "",
        head,
        "|---|" + "---:|" * (2 * len(names)),
    ]
    for phase in PHASES:
        cells = []
        for n in names:
            for which in ("first", "second"):
                r = results["fits"][n][which]
                count = r["counts"][phase]
                shown = f" ({count:.0f})" if count and phase != "rest of fit" else ""
                cells.append(_ms(r["phases"][phase]) + shown)
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    totals = []
    for n in names:
        for which in ("first", "second"):
            totals.append(f"**{_ms(results['fits'][n][which]['total'])}**")
    lines.append("| **total fit** | " + " | ".join(totals) + " |")
    epochs = []
    for n in names:
        for which in ("first", "second"):
            epochs.append(f"{results['fits'][n][which]['n_iter']:.0f}")
    lines.append("| epochs (`n_iter_`) | " + " | ".join(epochs) + " |")
    nodes = []
    for n in names:
        for which in ("first", "second"):
            nodes.append(f"{results['fits'][n][which]['graph_nodes']:.0f}")
    lines.append("| graph nodes traced | " + " | ".join(nodes) + " |")
    cpu = []
    for n in names:
        for which in ("first", "second"):
            cpu.append(_ms(results["fits"][n][which]["trace_cpu"]))
    lines.append("| trace, CPU time of the tracing thread | " + " | ".join(cpu) + " |")
    mlp = []
    for n in names:
        f = results["fits"][n]
        mlp += [f"{_ms(f['mlp'])} ({f['mlp_n_iter']:.0f} it.)", "-"]
    lines.append(
        "| scikit-learn MLP (lbfgs), fresh process | " + " | ".join(mlp) + " |"
    )
    lines.append("")
    lines.append("## Where each 100 ms of a first fit goes (share of the median)")
    lines.append("")
    lines.append("| phase | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for phase in PHASES:
        cells = []
        for n in names:
            r = results["fits"][n]["first"]
            cells.append(f"{100 * r['phases'][phase] / r['total']:.0f}")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("## Imports (ms, wall, `perf_counter` around `import`)")
    lines.append("")
    lines.append("| module | ms |")
    lines.append("|---|---:|")
    for module, seconds in results["imports"].items():
        lines.append(f"| {_label(module)} | {_ms(seconds)} |")
    lines += [
        "",
        "## Import and first fit together (ms, wall, fresh process)",
        "",
        "`import sklearn_lm`, the scikit-learn imports and the data, then the "
        "first fit; the first column is the part before the fit.",
        "",
        "| data | imports and data | total |",
        "|---|---:|---:|",
    ]
    for name, r in results["totals"].items():
        lines.append(f"| {name} | {_ms(r['import'])} | {_ms(r['total'])} |")
    if "baseline" in results:
        lines += ["", *_comparison(results)]
    return "\n".join(lines)


def _comparison(results: dict) -> list[str]:
    """Before (the baseline tree) and after (this tree), first fits and imports."""
    base = results["baseline"]
    names = list(results["fits"])
    lines = [
        "## Before and after: first fit (ms, medians, same run, alternating)",
        "",
        "Before: the source tree given as `--baseline`; after: this one.",
        "",
        "| phase | " + " | ".join(f"{n}, before | {n}, after" for n in names) + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]
    for phase in [*PHASES, "total"]:
        cells = []
        for n in names:
            for tree in (base, results):
                r = tree["fits"][n]["first"]
                value = r["total"] if phase == "total" else r["phases"][phase]
                cells.append(_ms(value))
        label = "**total fit**" if phase == "total" else phase
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [
        f"{tree['fits'][n]['first']['graph_nodes']:.0f}"
        for n in names
        for tree in (base, results)
    ]
    lines.append("| graph nodes traced | " + " | ".join(cells) + " |")
    cells = [
        _ms(tree["fits"][n]["first"]["trace_cpu"])
        for n in names
        for tree in (base, results)
    ]
    lines.append(
        "| trace, CPU time of the tracing thread | " + " | ".join(cells) + " |"
    )
    lines += [
        "",
        "Where each 100 ms of a first fit goes, before and after (share of "
        "the median total):",
        "",
        "| phase | " + " | ".join(f"{n}, before | {n}, after" for n in names) + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]
    for phase in PHASES:
        cells = []
        for n in names:
            for tree in (base, results):
                r = tree["fits"][n]["first"]
                cells.append(f"{100 * r['phases'][phase] / r['total']:.0f}")
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    lines += ["", "| import | before | after |", "|---|---:|---:|"]
    for module, seconds in results["imports"].items():
        before = _ms(base["imports"][module])
        lines.append(f"| {_label(module)} | {before} | {_ms(seconds)} |")
    lines += [
        "",
        "Import and first fit together (ms):",
        "",
        "| data | imports and data, before | after | total, before | after |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["totals"].items():
        b = base["totals"][name]
        lines.append(
            f"| {name} | {_ms(b['import'])} | {_ms(r['import'])} "
            f"| {_ms(b['total'])} | {_ms(r['total'])} |"
        )
    return lines


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another source tree (holding sklearn_lm/) to measure alongside",
    )
    parser.add_argument(
        "--cache",
        choices=["off", "warm"],
        default="off",
        help="off: every graph traced; warm: graphs loaded from the disk cache",
    )
    parser.add_argument(
        "--pycache-prefix",
        type=Path,
        default=None,
        help="PYTHONPYCACHEPREFIX of the processes (bytecode cached there)",
    )
    args = parser.parse_args(argv)
    global _PYCACHE_PREFIX
    _PYCACHE_PREFIX = args.pycache_prefix
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = run(args.repeats, args.datasets, args.baseline, args.cache)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    text = tables(results)
    print(text)

    def load(values) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    options = f"--repeats {args.repeats}"
    if args.cache != "off":
        options += f" --cache {args.cache}"
    if args.datasets:
        options += " --datasets " + " ".join(args.datasets)
    cache = ""
    if args.pycache_prefix is not None:
        options += " --pycache-prefix DIR2"
        cache = (
            " DIR2: a bytecode cache (`PYTHONPYCACHEPREFIX`), filled by the "
            "first process, so every module loads from cached bytecode."
        )
    baseline = ""
    if args.baseline is not None:
        options += " --baseline DIR"
        baseline = f" DIR: a checkout of commit {_commit(args.baseline)}."

    cache_note = (
        "Compiled graphs are loaded from a warm on-disk cache (one per tree, "
        "filled by an untimed fit first): the first call of each includes "
        "its load, and nothing is traced."
        if args.cache == "warm"
        else "Every graph is traced (the on-disk cache is bypassed)."
    )
    doc = "\n".join(
        [
            "# First-fit overhead",
            "",
            f"Generated by `python -m benchmarks.bench_first_fit {options}` on "
            f"{dt.date.today().isoformat()} ({platform.platform()}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs); "
            f"medians of {args.repeats} fresh processes per number; "
            f"{wall:.0f} s in all.{baseline}{cache}",
            f"Load average (1/5/15 min): {load(load_before)} before the run, "
            f"{load(load_after)} after.",
            "",
            "Phases are timed by wrapping the library's functions in the child "
            "process (see the module's docstring); times are exclusive, and "
            "`rest of fit` is the wall time of `pipeline.fit` minus the "
            "wrapped phases. Medians are taken per phase, so the phases need "
            "not add up exactly to the median total. The wall times of a "
            "machine shared with other work vary from run to run by tens of "
            "percent; the nodes of the traced graphs and the CPU time of the "
            "tracing thread vary less. " + cache_note,
            "",
            text,
            "",
        ]
    )
    if args.out:
        args.out.write_text(doc)
    return text


def _commit(path: Path) -> str:
    """The short commit hash of the checkout at ``path``, or ``"unknown"``."""
    proc = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
