"""Peak memory of Levenberg-Marquardt training on a million samples.

Usage::

    python -m benchmarks.bench_memory [--quick] [--samples N] [--epochs N]
                                      [--out FILE]

Four runs of the engine's :class:`~sklearn_lm.engine.Trainer` on a 1-20-1
tanh network (61 weights, float32) fitted to ``sinc(10 x)``, each in a fresh
Python process whose peak resident memory (``ru_maxrss``) is read at the end,
with the peak of TensorFlow's CPU allocator where it keeps statistics (oneDNN
builds: the tensors alone, without the allocator's pool of freed blocks):

* ``baseline``: TensorFlow, Keras and the engine loaded, one step on 1000
  samples -- what every run pays before the data matter;
* ``full batch``: every step on all samples (``10**6``; ``10**5`` with
  ``--quick``). The normal equations are accumulated over chunks of rows, two
  chunks at a time, so the step needs at most about
  :func:`~sklearn_lm.engine.memory.step_memory_bytes`: ``24 n**2 + 2 * chunk *
  2 * q * (n + 1) * itemsize`` bytes for ``n`` weights and ``q`` residuals
  per sample, whatever the number of samples, plus the data as the step
  reads them (``N * (d * itemsize + 8 * (k + 1))``);
* the same with a third of the default ``chunk_size``;
* ``mini-batches from a generator``: the same number of samples per epoch,
  produced batch by batch by a Python generator behind
  ``tf.data.Dataset.from_generator`` and never held in memory together.

The Markdown table is printed and written to ``docs/benchmarks_memory.md``.
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

__all__ = ["main", "child"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks_memory.md"
_MARK = "BENCH_MEMORY_RESULT "
HIDDEN = 20
STREAM_BATCH = 10_000
#: A third of the default chunk of this network.
SMALL_CHUNK = 45_000
TARGET_BYTES = 1.2e9


def _sinc_data(rng, n: int):
    import numpy as np

    x = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    y = np.sinc(10.0 * x).astype(np.float32)
    return x, y


def _allocator_peak_bytes() -> int | None:
    """Peak of TensorFlow's CPU allocator, where it keeps statistics.

    oneDNN builds (the default on x86 Linux) allocate tensors from a pool that
    counts them; other builds raise ``ValueError``.
    """
    import tensorflow as tf

    try:
        return int(tf.config.experimental.get_memory_info("CPU:0")["peak"])
    except ValueError:
        return None


def _peak_rss_bytes() -> int:
    import resource

    # Linux reports kilobytes (macOS bytes; this benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(config: dict) -> dict:
    """Run one scenario in this (fresh) process and return its measurements."""
    import keras
    import numpy as np
    import tensorflow as tf

    from sklearn_lm.engine import Trainer
    from sklearn_lm.engine.memory import step_memory_bytes

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(HIDDEN, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    trainer = Trainer(model, loss="mse", chunk_size=config.get("chunk_size"))
    n_params = trainer.fn.n_params
    itemsize = trainer.fn.dtype.size
    q = 1  # mean squared error, one output: one residual per sample
    rng = np.random.default_rng(0)
    scenario = config["scenario"]
    n = config.get("samples", 1000)
    epochs = config.get("epochs", 1)

    start = time.perf_counter()
    if scenario == "baseline":
        x, y = _sinc_data(rng, 1000)
        history = trainer.fit(x, y, epochs=1)
        batch_rows = 1000
    elif scenario == "full":
        x, y = _sinc_data(rng, n)
        history = trainer.fit(x, y, epochs=epochs)
        batch_rows = n
    elif scenario == "stream":
        n_batches = -(-n // STREAM_BATCH)

        def batches():
            # A fresh generator for each epoch; each batch is made on demand.
            local = np.random.default_rng(1)
            for i in range(n_batches):
                size = min(STREAM_BATCH, n - i * STREAM_BATCH)
                yield _sinc_data(local, size)

        spec = tf.TensorSpec([None, 1], tf.float32)
        dataset = tf.data.Dataset.from_generator(
            batches, output_signature=(spec, spec)
        ).prefetch(1)
        history = trainer.fit(dataset, epochs=epochs)
        batch_rows = STREAM_BATCH
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    elapsed = time.perf_counter() - start

    chunk = trainer.chunk_size
    return {
        "scenario": scenario,
        "label": config["label"],
        "samples": 1000 if scenario == "baseline" else n,
        "epochs": len(history.epoch),
        "steps": history.n_steps,
        "seconds": elapsed,
        "loss": history.history["loss"][-1],
        "stop_reason": history.stop_reason,
        "n_params": n_params,
        "chunk_size": chunk,
        "chunks_per_step": -(-batch_rows // chunk),
        # Inputs in the model's dtype, targets and sample weights in float64.
        "bound_bytes": step_memory_bytes(
            n_params,
            q,
            itemsize,
            batch_rows,
            chunk,
            data_bytes_per_sample=itemsize + 8 * (1 + 1),
        ),
        "peak_rss_bytes": _peak_rss_bytes(),
        "allocator_peak_bytes": _allocator_peak_bytes(),
    }


# -- parent process --------------------------------------------------------------


def _scenarios(samples: int, epochs: int) -> list[dict]:
    common = {"samples": samples, "epochs": epochs}
    return [
        {"scenario": "baseline", "label": "baseline (runtime loaded, 1000 samples)"},
        {"scenario": "full", "label": "full batch, default chunk_size", **common},
        {
            "scenario": "full",
            "label": f"full batch, chunk_size={SMALL_CHUNK:,}",
            "chunk_size": SMALL_CHUNK,
            **common,
        },
        {
            "scenario": "stream",
            "label": f"mini-batches of {STREAM_BATCH:,} from a generator",
            **common,
        },
    ]


def _run(config: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    code = (
        "import json, sys\n"
        "from benchmarks.bench_memory import child, _MARK\n"
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
            f"scenario {config['scenario']!r} failed (exit {proc.returncode}):\n"
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


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def _allocator(result: dict) -> str:
    peak = result.get("allocator_peak_bytes")
    return "n/a" if peak is None else _mib(peak)


def render(results: list[dict], meta: dict) -> str:
    """Markdown page of the measurements."""
    base = next(r for r in results if r["scenario"] == "baseline")
    lines = [
        "# Memory of large-data training",
        "",
        f"Produced by `python -m benchmarks.bench_memory"
        f"{' --quick' if meta['quick'] else ''}` on {meta['date']}.",
        "",
        f"- Machine: {meta['cpus']} CPUs, {meta['memory_gib']:.0f} GiB, "
        f"{meta['system']}; Python {meta['python']}.",
        f"- Network: 1-{HIDDEN}-1 tanh, {base['n_params']} weights, float32; "
        "loss: mean squared error; data: `x ~ U(-1, 1)`, `y = sinc(10 x)`.",
        "- Each row is a fresh process; peak memory is its "
        "`getrusage(RUSAGE_SELF).ru_maxrss`.",
        "- Bound (`sklearn_lm.engine.memory.step_memory_bytes`): `24 n^2 + "
        "k * rows * 2 * q * (n + 1) * itemsize + N * (itemsize + 16)` bytes "
        "for one step, with `rows = min(batch, chunk_size)` and `k = "
        "min(2, chunks)` chunks at once: the float64 normal equations; each "
        "chunk's rows `[F J | e]` and one array of their size; the inputs "
        "(model dtype), targets and sample weights (float64) of the batch.",
        f"- Load when starting: `{meta['uptime_start']}`.",
        f"- Load when done: `{meta['uptime_end']}`.",
        "",
        "| Run | Samples per epoch | Epochs (steps) | Chunks per step "
        "| Peak RSS (MiB) | Above baseline (MiB) | Allocator peak (MiB) "
        "| Bound (MiB) | Time (s) | Final loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['samples']:,} "
            f"| {r['epochs']} ({r['steps']}) | {r['chunks_per_step']} "
            f"| {_mib(r['peak_rss_bytes'])} "
            f"| {_mib(r['peak_rss_bytes'] - base['peak_rss_bytes'])} "
            f"| {_allocator(r)} "
            f"| {_mib(r['bound_bytes'])} | {r['seconds']:.1f} | {r['loss']:.3g} |"
        )
    full = [r for r in results if r["scenario"] == "full"]
    ratios = ", ".join(
        f"{(r['peak_rss_bytes'] - base['peak_rss_bytes']) / r['bound_bytes']:.1f}x"
        for r in full
    )
    allocator = ", ".join(
        f"{r['allocator_peak_bytes'] / r['bound_bytes']:.2f}x"
        for r in full
        if r.get("allocator_peak_bytes") is not None
    )
    worst = max(r["peak_rss_bytes"] for r in results)
    verdict = "below" if worst < TARGET_BYTES else "ABOVE"
    lines += [
        "",
        f"Largest peak: {worst / 1e9:.2f} GB, {verdict} the "
        f"{TARGET_BYTES / 1e9:.1f} GB target. Default chunk size: "
        f"{base['chunk_size']:,} samples (two chunks in flight hold at most "
        "128 MiB by the bound).",
        "",
        "Full batch, the memory above the baseline was "
        f"{ratios} the bound. The bound counts the tensors a step holds at "
        "its peak; TensorFlow's allocator, which counts them, peaked at "
        f"{allocator or 'n/a'} the bound (`Allocator peak`, where the build "
        "keeps statistics). The rest of the process's peak is the allocator's "
        "pool: freed blocks are kept for reuse, not returned to the system, "
        "and not every free block fits the next request. A smaller "
        "`chunk_size` lowers the chunk term in proportion.",
        "",
        "Times include tracing the compiled step and depend on the load above.",
        "",
    ]
    return "\n".join(lines)


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the four scenarios, print the table and write the Markdown page."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_memory",
        description="Peak memory of full-batch and streamed LM training.",
    )
    parser.add_argument("--quick", action="store_true", help="10**5 samples")
    parser.add_argument("--samples", type=int, default=None, help="default 10**6")
    parser.add_argument("--epochs", type=int, default=None, help="default 3 (2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    samples = args.samples or (100_000 if args.quick else 1_000_000)
    epochs = args.epochs or (2 if args.quick else 3)
    timeout = 900.0 if args.quick else 3600.0
    meta = {
        "quick": args.quick,
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uptime_start": _uptime(),
    }
    print(meta["uptime_start"], flush=True)
    results = []
    for config in _scenarios(samples, epochs):
        result = _run(config, timeout)
        results.append(result)
        print(
            f"{config['label']}: peak {_mib(result['peak_rss_bytes'])} MiB, "
            f"{result['seconds']:.1f} s, loss {result['loss']:.3g}",
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
