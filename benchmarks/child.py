"""Run Python code in a fresh process and read back its result.

The benchmarks that time things in fresh processes (first fits, the disk
cache, cross-validation) run a snippet that prints one line: a marker
followed by the JSON of its result. :func:`run_marked` starts the process
and returns that result, or raises with the end of the process's standard
error when the line is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

__all__ = ["run_marked"]


def run_marked(
    code: str, args: list[str], *, mark: str, env: dict, cwd: Path, what: str
) -> dict:
    """Run ``python -c code *args`` and return the JSON after ``mark``.

    Parameters
    ----------
    code : str
        The program; it prints ``mark`` followed by a JSON document.
    args : list of str
        Its arguments (``sys.argv[1:]``).
    mark : str
        The prefix of the result line.
    env : dict
        The process's environment.
    cwd : Path
        Its working directory.
    what : str
        What it runs, for the error message.

    Raises
    ------
    RuntimeError
        If no line starts with ``mark``.
    """
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(mark):
            return json.loads(line[len(mark) :])
    raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
