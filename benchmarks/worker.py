"""Run one contender on one task with one seed, in a process of its own.

Usage: ``python -m benchmarks.worker SPEC.json``. The spec names the task,
contender, seed, settings and the file the result is written to (JSON).
Thread counts are set before NumPy or TensorFlow is imported; TensorFlow's
intra- and inter-op pools are pinned with ``tf.config.threading`` before its
first use. A failure is reported in the result (``status: "fails"``) rather
than as an exit status, so the parent can show why.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from .config import Settings, thread_environment

__all__ = ["main", "run_spec"]


def _pin_tensorflow(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def run_spec(spec: dict) -> dict:
    """Run what ``spec`` describes and return the result dictionary.

    Parameters
    ----------
    spec : dict
        ``kind`` (``"contender"`` or ``"costmodel"``), ``settings`` and, for
        a contender, ``task``, ``seed``, ``target``, ``options``, ``uses_tf``.

    Returns
    -------
    dict
        ``status`` (``"ok"`` or ``"fails"``), ``error`` on failure, the
        recorder's trace, ``rss_peak_kib`` and the contender's own results.
    """
    settings = Settings(**spec["settings"])
    os.environ.update(thread_environment(settings.threads))
    result: dict = {"status": "ok"}
    try:
        if spec.get("uses_tf", True):
            _pin_tensorflow(settings.threads)
        if spec["kind"] == "costmodel":
            from .costmodel import measure

            result["rates"] = measure()
        else:
            from .clock import Recorder
            from .contenders import load_function
            from .tasks import load_task

            task = load_task(spec["task"], settings.scale_samples)
            run = load_function(spec["target"])
            rec = Recorder(settings.budget(spec["task"]))
            try:
                result.update(run(task, spec["seed"], settings, rec, **spec["options"]))
            finally:
                result.update(rec.to_dict())
    except Exception as exc:  # reported in the result, not raised
        result["status"] = "fails"
        result["error"] = f"{type(exc).__name__}: {exc}".strip()
        result["traceback"] = traceback.format_exc(limit=8)
    from .clock import peak_rss_kib

    result["rss_peak_kib"] = peak_rss_kib()
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the spec file, run it, write the result file."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.worker SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        spec = json.load(fh)
    result = run_spec(spec)
    with open(spec["out"], "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
