"""TensorFlow thread pools sized to the share of the CPUs this process may use.

Process-based parallelism (joblib's ``loky`` backend behind ``n_jobs``, Dask
workers) runs several Python processes side by side. Each of them should use
only its share of the cores, and both joblib and Dask say what that share is
through ``OMP_NUM_THREADS`` and its siblings: joblib sets them to
``cpu_count() // n_jobs`` in its workers, Dask's nanny to 1. OpenMP and BLAS
libraries read those variables (threadpoolctl can change them later), but
TensorFlow's own intra-op and inter-op pools do not: left alone, every worker
starts as many threads as the machine has cores, and ``n_jobs`` workers
oversubscribe the CPUs ``n_jobs`` times over.

:func:`configure_tensorflow_threads` reads the share and passes it to
``tf.config.threading``. The estimators call it at the start of every fit.
"""

from __future__ import annotations

import logging
import os
import threading

__all__ = ["configure_tensorflow_threads", "ENV_VAR"]

#: Environment variable that sets TensorFlow's thread counts explicitly.
#: A positive integer is used for both pools; ``0`` keeps TensorFlow's defaults
#: even where ``OMP_NUM_THREADS`` or a CPU limit would set them.
ENV_VAR = "SKLEARN_LM_NUM_THREADS"

#: TensorFlow's own variables for its pool sizes; when set, they are left to it.
_TF_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
# Process id of the last call that finished, and what it decided. A forked
# child has a different id and decides again.
_done_in_pid: int | None = None
_result: int | None = None


def _parse_count(value: str) -> int | None:
    """Non-negative integer in ``value`` (first of a comma list), else ``None``."""
    first = value.split(",")[0].strip()
    try:
        count = int(first)
    except ValueError:
        return None
    return count if count >= 0 else None


def _usable_cpus() -> int | None:
    """CPUs this process may use when fewer than the machine has, else ``None``.

    The affinity mask (``taskset``, ``numactl``, batch schedulers) and CPU
    quotas of control groups (containers) both count; joblib's
    ``cpu_count`` reads both.
    """
    machine = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = machine
    try:
        import joblib

        usable = min(usable, int(joblib.cpu_count()))
    except Exception:  # joblib's probing must never break a fit
        _logger.debug("joblib.cpu_count() failed; using the affinity mask only.")
    return usable if 0 < usable < machine else None


def _thread_budget() -> tuple[int | None, str]:
    """Threads for each TensorFlow pool, and where the number comes from.

    ``None`` means "keep TensorFlow's defaults".
    """
    explicit = os.environ.get(ENV_VAR, "").strip()
    if explicit:
        count = _parse_count(explicit)
        if count is not None:
            return (count or None), ENV_VAR
        _logger.warning(
            "Ignoring %s=%r: expected a non-negative integer.", ENV_VAR, explicit
        )
    if any(os.environ.get(name, "").strip() for name in _TF_VARS):
        # TensorFlow reads these itself when its settings are left at 0.
        return None, " / ".join(_TF_VARS)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        count = _parse_count(omp)
        if count:
            return count, "OMP_NUM_THREADS"
        _logger.debug("Ignoring OMP_NUM_THREADS=%r: not a positive integer.", omp)
    usable = _usable_cpus()
    if usable is not None:
        return usable, "the CPUs available to this process"
    return None, "no limit found"


def configure_tensorflow_threads() -> int | None:
    """Size TensorFlow's thread pools to this process's share of the CPUs.

    The number of threads is, in order of precedence:

    1. ``SKLEARN_LM_NUM_THREADS`` when set (``0`` keeps TensorFlow's defaults);
    2. none, when TensorFlow's own ``TF_NUM_INTRAOP_THREADS`` or
       ``TF_NUM_INTEROP_THREADS`` is set: TensorFlow applies those itself;
    3. ``OMP_NUM_THREADS``, which joblib sets to ``cpu_count() // n_jobs`` in
       its worker processes and Dask sets to 1 in its workers;
    4. the CPUs available to the process (affinity mask, container CPU quota)
       when they are fewer than the machine has.

    If none applies -- a main process with no limits -- TensorFlow's defaults
    are kept. Otherwise the number is given to both
    ``tf.config.threading.set_intra_op_parallelism_threads`` and
    ``set_inter_op_parallelism_threads``.

    TensorFlow accepts these settings only until its runtime starts (the
    first tensor or variable is created). Later calls change nothing: the
    function then logs at debug level and returns the settings in force. It
    never raises and never warns, except for a log record when
    ``SKLEARN_LM_NUM_THREADS`` is not a non-negative integer.

    The decision is made once per process; further calls return at once.

    Returns
    -------
    int or None
        TensorFlow's intra-op thread count after the call, or ``None`` when it
        is left to TensorFlow (its default).

    Examples
    --------
    >>> from sklearn_lm._threads import configure_tensorflow_threads
    >>> threads = configure_tensorflow_threads()
    >>> threads is None or threads >= 1
    True
    """
    global _done_in_pid, _result
    pid = os.getpid()
    if _done_in_pid == pid:
        return _result
    with _lock:
        if _done_in_pid == pid:
            return _result
        try:
            _result = _apply(*_thread_budget())
        except Exception:  # a thread setting is never worth a failed fit
            _logger.debug("Could not configure TensorFlow's threads.", exc_info=True)
            _result = None
        _done_in_pid = pid
        return _result


def _apply(count: int | None, source: str) -> int | None:
    import tensorflow as tf

    threading_config = tf.config.threading
    if count is not None:
        try:
            # Setting the value already in force is accepted at any time.
            threading_config.set_intra_op_parallelism_threads(count)
            threading_config.set_inter_op_parallelism_threads(count)
        except RuntimeError:
            _logger.debug(
                "TensorFlow's runtime is already initialised; its thread pools "
                "keep their sizes (wanted %d from %s).",
                count,
                source,
            )
        else:
            _logger.debug("TensorFlow threads set to %d (from %s).", count, source)
    else:
        _logger.debug("TensorFlow threads left at their defaults (%s).", source)
    return threading_config.get_intra_op_parallelism_threads() or None
