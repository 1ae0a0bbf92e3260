"""Run a Python snippet in a fresh interpreter (for process-wide settings)."""

import subprocess
import sys


def run_python(script: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``script`` with ``env``; fail the test if it exits non-zero."""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
