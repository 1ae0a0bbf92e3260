"""Settings of a benchmark run: budgets, sizes, seeds and threads.

This module imports nothing heavy, so that the parent process stays small and
the child processes can set their thread counts before NumPy or TensorFlow
are loaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

__all__ = ["Settings", "make_settings", "thread_environment", "TASKS", "THRESHOLDS"]

#: Task names, in the order they run and appear in the report.
TASKS = ("sinc", "friedman1", "digits", "scale")

#: Training MSE levels whose first crossing is timed on the sinc task.
THRESHOLDS = (1e-3, 1e-5, 1e-7)


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides the code.

    Attributes
    ----------
    quick : bool
        Short budgets and a smaller scale task, for development.
    seeds : int
        Seeds per contender; medians over seeds are reported.
    threads : int
        Threads every contender may use (BLAS, OpenMP and TensorFlow's intra-
        and inter-op pools alike).
    sinc_budget_s : float
        Wall-time budget of each sinc run.
    fit_cap_s : float
        Safety cap on the fits of friedman1 and digits: a contender still
        training after this long is stopped at its next epoch boundary.
    scale_samples : int
        Samples of the scale task.
    scale_budget_s : float
        Wall-time budget of each scale run.
    scale_max_steps : int
        At most this many full-batch steps (or iterations) on the scale task.
    skip_steps : int
        Steps left out at the start when taking the median step time.
    refine_bisections : int
        Bisections of ``max_iter`` that locate where scikit-learn's L-BFGS
        crosses each MSE threshold (its runs are separate fits).
    worker_timeout_s : float
        A child process still running after this long is killed; its row
        then reads ``fails: timed out``.
    """

    quick: bool
    seeds: int
    threads: int
    sinc_budget_s: float
    fit_cap_s: float
    scale_samples: int
    scale_budget_s: float
    scale_max_steps: int
    skip_steps: int
    refine_bisections: int
    worker_timeout_s: float

    def budget(self, task: str) -> float:
        """Wall-time budget (sinc, scale) or safety cap (the others) of a task."""
        if task == "sinc":
            return self.sinc_budget_s
        if task == "scale":
            return self.scale_budget_s
        return self.fit_cap_s

    def to_dict(self) -> dict:
        """The settings as a JSON-serialisable dictionary."""
        return asdict(self)


def make_settings(
    quick: bool = False, seeds: int | None = None, threads: int | None = None
) -> Settings:
    """Return the settings of a full (default) or quick run.

    Parameters
    ----------
    quick : bool, default=False
        One seed, short budgets, a scale task of 10**5 samples.
    seeds : int, optional
        Overrides the number of seeds (3 for a full run, 1 for a quick one).
    threads : int, optional
        Overrides the thread count (default: the number of CPUs available).

    Returns
    -------
    Settings
    """
    if threads is None:
        threads = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    if quick:
        return Settings(
            quick=True,
            seeds=seeds or 1,
            threads=threads,
            sinc_budget_s=5.0,
            fit_cap_s=30.0,
            scale_samples=100_000,
            scale_budget_s=6.0,
            scale_max_steps=5,
            skip_steps=2,
            refine_bisections=1,
            worker_timeout_s=180.0,
        )
    return Settings(
        quick=False,
        seeds=seeds or 3,
        threads=threads,
        sinc_budget_s=20.0,
        fit_cap_s=300.0,
        scale_samples=1_000_000,
        scale_budget_s=30.0,
        scale_max_steps=20,
        skip_steps=3,
        refine_bisections=3,
        worker_timeout_s=900.0,
    )


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that pin every thread pool to ``threads``.

    TensorFlow's pools are pinned again with ``tf.config.threading`` in the
    child (see :mod:`benchmarks.worker`); the variables cover OpenMP, the BLAS
    libraries behind NumPy and SciPy, TensorFlow's own defaults and the
    thread setting sklearn_lm's estimators read.
    """
    n = str(int(threads))
    return {
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "BLIS_NUM_THREADS": n,
        "VECLIB_MAXIMUM_THREADS": n,
        "NUMEXPR_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
        "SKLEARN_LM_NUM_THREADS": n,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
        "PYTHONHASHSEED": "0",
    }
