"""Run the benchmarks and write ``docs/benchmarks.md`` and its figures.

Usage::

    python -m benchmarks.run [--quick] [--only TASK ...] [--seeds N]
                             [--threads N] [--contenders KEY ...] [--out DIR]
    python -m benchmarks.run --rerender RAW_DIR [--out DIR]

Every (task, seed, contender) runs in a fresh child process
(``python -m benchmarks.worker``), one at a time, with the same thread
settings. Raw results go to ``benchmarks/results/raw/<timestamp>/`` (not
tracked by git); the page goes to ``DIR/benchmarks.md`` and the figures to
``DIR/_static/benchmarks_<task>.png``. ``--rerender`` rebuilds the page and
figures from such a folder, e.g. after a change to the report's layout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from .config import TASKS, THRESHOLDS, Settings, make_settings, thread_environment
from .contenders import Contender, contenders_for

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "benchmarks" / "results" / "raw"
_DISTRIBUTIONS = (
    "sklearn-lm",
    "numpy",
    "scipy",
    "scikit-learn",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tf-levenberg-marquardt",
    "matplotlib",
)


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark sklearn_lm against the alternatives.",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, short budgets")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=TASKS,
        metavar="TASK",
        help=f"tasks to run (default: all of {', '.join(TASKS)})",
    )
    parser.add_argument("--seeds", type=int, help="seeds per contender")
    parser.add_argument("--threads", type=int, help="threads per contender")
    parser.add_argument(
        "--contenders",
        nargs="+",
        metavar="KEY",
        help="only these contender keys (e.g. lm-trainer scipy-lm)",
    )
    parser.add_argument("--out", default="docs", help="output folder (default: docs)")
    parser.add_argument(
        "--rerender",
        metavar="RAW_DIR",
        help="rebuild the page and figures from the raw results of an earlier run "
        "(a folder under benchmarks/results/raw/) without running anything",
    )
    return parser.parse_args(argv)


# -- machine ----------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


# -- child processes --------------------------------------------------------------
def _spawn(spec: dict, folder: Path, name: str, settings: Settings) -> dict:
    spec_path = folder / f"{name}.spec.json"
    spec["out"] = str(folder / f"{name}.json")
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.update(thread_environment(settings.threads))
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", str(spec_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=settings.worker_timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {
            "status": "fails",
            "error": f"timed out after {settings.worker_timeout_s:g} s",
        }
    (folder / f"{name}.stderr.txt").write_text(proc.stderr or "")
    try:
        return json.loads(Path(spec["out"]).read_text())
    except (OSError, json.JSONDecodeError):
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return {"status": "fails", "error": f"exit code {proc.returncode}: {tail[0]}"}


def _run_contender(c: Contender, task: str, seed: int, settings, folder) -> dict:
    if c.requires and importlib.util.find_spec(c.requires) is None:
        return {
            "status": "skipped",
            "error": f"{c.requires} is not installed (pip install --no-deps "
            "tf-levenberg-marquardt==1.0.3)",
        }
    spec = {
        "kind": "contender",
        "task": task,
        "seed": seed,
        "settings": settings.to_dict(),
        "target": c.target,
        "options": c.options,
        "uses_tf": c.uses_tf,
    }
    return _spawn(spec, folder, f"{task}-{c.key}-seed{seed}", settings)


def _progress(task, c, seed, result, took) -> str:
    status = result.get("status")
    text = f"[{task}] {c.key:<18} seed {seed}: {status} in {took:5.1f} s"
    if status != "ok":
        return f"{text} -- {result.get('error')}"
    trace = result.get("trace") or []
    if trace:
        text += f", last loss {trace[-1][1]:.3g} at {trace[-1][0]:.2f} s"
    if result.get("test_score") is not None:
        text += f", test score {result['test_score']:.4f}"
    return text


# -- main -------------------------------------------------------------------------
def _run_all(tasks, keys, settings: Settings, folder: Path) -> dict:
    """Run every (task, seed, contender); seeds outermost within a task."""
    raw: dict = {}
    for task in tasks:
        contenders = contenders_for(task, keys)
        raw[task] = {c.key: [] for c in contenders}
        for seed in range(settings.seeds):
            for c in contenders:
                begin = time.perf_counter()
                result = _run_contender(c, task, seed, settings, folder)
                raw[task][c.key].append(result)
                took = time.perf_counter() - begin
                print(_progress(task, c, seed, result, took), flush=True)
    return raw


def _summarise(task: str, contenders, runs: dict, settings, rates) -> dict:
    """Medians over seeds of every contender of one task."""
    from . import summary
    from .tasks import LAYERS, n_weights

    layers = LAYERS[task]
    per = {}
    for c in contenders:
        metrics = [
            summary.run_metrics(
                r,
                rate=c.rate,
                budget=settings.budget(task),
                skip=settings.skip_steps,
                thresholds=THRESHOLDS,
                n_weights=n_weights(layers),
                # The classifier's generalised Gauss-Newton products are
                # summed layer by layer, at the cost of one row per sample.
                rows_per_sample=1,
                rates=rates,
            )
            for r in runs[c.key]
            if r.get("status") == "ok"
        ]
        per[c.key] = summary.aggregate(runs[c.key], metrics)
    return per


def _figure(task, contenders, runs, per, settings, out: Path) -> Path | None:
    from . import plots

    memory = None
    if task == "scale":
        memory = {
            c.key: (per[c.key].get("rss_peak_mib"), per[c.key].get("rss_fit_mib"))
            for c in contenders
            if per[c.key].get("status") == "ok"
        }
    return plots.plot_task(
        task,
        runs,
        {c.key: c.label for c in contenders},
        {c.key for c in contenders if c.ours},
        out / "_static" / f"benchmarks_{task}.png",
        thresholds=THRESHOLDS if task == "sinc" else (),
        budget=settings.budget(task) if task in ("sinc", "scale") else None,
        memory=memory,
    )


def _load_raw(record: dict, folder: Path) -> dict:
    """Worker results of an earlier run, as :func:`_run_all` returns them."""
    raw: dict = {}
    for task in record["tasks"]:
        contenders = contenders_for(task, record["contenders"])
        raw[task] = {c.key: [] for c in contenders}
        for seed in range(record["settings"]["seeds"]):
            for c in contenders:
                path = folder / f"{task}-{c.key}-seed{seed}.json"
                result = (
                    json.loads(path.read_text())
                    if path.is_file()
                    else {"status": "fails", "error": f"no result file {path.name}"}
                )
                raw[task][c.key].append(result)
    return raw


def _write_outputs(record, settings, raw, rates, out: Path, folder: Path) -> None:
    """Summaries, figures, the Markdown page and ``summary.json``."""
    from . import report

    summaries, figures = {}, {}
    for task in record["tasks"]:
        contenders = contenders_for(task, record["contenders"])
        per = _summarise(task, contenders, raw[task], settings, rates)
        summaries[task] = (contenders, per)
        path = _figure(task, contenders, raw[task], per, settings, out)
        if path is not None:
            figures[task] = f"_static/{path.name}"
    page = report.render(record, rates, summaries, figures)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.md").write_text(page)
    medians = {task: per for task, (_, per) in summaries.items()}
    dump = {"meta": record, "rates": rates, "summaries": medians}
    (folder / "summary.json").write_text(json.dumps(dump, default=str, indent=1))
    print("\n" + page)
    print(f"wrote {out / 'benchmarks.md'} and {len(figures)} figure(s)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; see the module docstring."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parse(argv)
    known = {c.key for task in TASKS for c in contenders_for(task)}
    unknown = sorted(set(args.contenders or ()) - known)
    if unknown:
        print(
            f"unknown contender(s) {unknown}; known: {sorted(known)}", file=sys.stderr
        )
        return 2
    out = Path(args.out)

    if args.rerender:
        folder = Path(args.rerender)
        record = json.loads((folder / "run.json").read_text())
        settings = Settings(**record["settings"])
        rates = _best_rates(
            json.loads(path.read_text())
            for path in (folder / "costmodel.json", folder / "costmodel_end.json")
            if path.exists()
        )
        record["rerendered"] = " ".join(["python -m benchmarks.run", *argv])
        _write_outputs(record, settings, _load_raw(record, folder), rates, out, folder)
        return 0

    settings = make_settings(args.quick, args.seeds, args.threads)
    started = time.perf_counter()
    folder = RAW / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": " ".join(["python -m benchmarks.run", *argv]),
        "tasks": list(args.only or TASKS),
        "contenders": args.contenders,
        "cpu": _cpu_model(),
        "nproc": _usable_cpus(),
        "versions": _versions(),
        "settings": settings.to_dict(),
        "duration_min": None,
    }
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    print(f"{record['command']}\n{settings}\nraw results in {folder}", flush=True)

    spec = {"kind": "costmodel", "settings": settings.to_dict()}
    cost = _spawn(spec, folder, "costmodel", settings)
    print(
        f"[cost model] {cost.get('status')}: {cost.get('rates') or cost.get('error')}"
    )

    raw = _run_all(record["tasks"], args.contenders, settings, folder)
    # Measured again at the end: a busy moment of a shared machine must not
    # understate the rate (and so overstate every fraction of it).
    end = _spawn(spec, folder, "costmodel_end", settings)
    print(
        f"[cost model, end] {end.get('status')}: {end.get('rates') or end.get('error')}"
    )
    rates = _best_rates([cost, end])
    record["duration_min"] = (time.perf_counter() - started) / 60.0
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    _write_outputs(record, settings, raw, rates, out, folder)
    return 0


def _best_rates(results) -> dict | None:
    """The higher rate of each kind over the successful measurements."""
    best: dict | None = None
    for result in results:
        rates = result.get("rates") if result.get("status") == "ok" else None
        if not rates:
            continue
        if best is None:
            best = dict(rates)
            continue
        for key, value in rates.items():
            if isinstance(value, int | float) and key in best:
                best[key] = max(best[key], value)
    return best


if __name__ == "__main__":
    sys.exit(main())
