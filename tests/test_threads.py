"""TensorFlow's thread pools follow the process's CPU share."""

import json
import os
import textwrap

import pytest
from _python import run_python

from sklearn_lm import _threads

_LIMIT_VARS = (_threads.ENV_VAR, "OMP_NUM_THREADS", *_threads._TF_VARS)

# Runs in a fresh interpreter, so that TensorFlow's runtime is not started yet.
_SCRIPT = textwrap.dedent(
    """
    import json
    import logging
    import warnings

    import tensorflow as tf

    from sklearn_lm import _threads

    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logging.getLogger("sklearn_lm").addHandler(handler)
    warnings.simplefilter("error")

    calls = []
    original = tf.config.threading.set_intra_op_parallelism_threads

    def counting(n):
        calls.append(n)
        return original(n)

    tf.config.threading.set_intra_op_parallelism_threads = counting

    out = {"before": tf.config.threading.get_intra_op_parallelism_threads()}
    out["first"] = _threads.configure_tensorflow_threads()
    out["intra"] = tf.config.threading.get_intra_op_parallelism_threads()
    out["inter"] = tf.config.threading.get_inter_op_parallelism_threads()
    out["second"] = _threads.configure_tensorflow_threads()
    out["set_calls"] = list(calls)

    # The runtime starts here; pools are sized from the settings above.
    float(tf.reduce_sum(tf.ones([4, 4])))
    # A call that would change the settings now finds the runtime running:
    # it must neither raise nor warn.
    _threads._done_in_pid = None
    tf.config.threading.set_intra_op_parallelism_threads = original
    import os
    os.environ[_threads.ENV_VAR] = "2" if out["intra"] != 2 else "3"
    out["after_start"] = _threads.configure_tensorflow_threads()
    out["intra_after_start"] = tf.config.threading.get_intra_op_parallelism_threads()
    out["log_levels"] = sorted({r.levelname for r in records})
    print("RESULT " + json.dumps(out))
    """
)


def _run(**env_vars):
    env = {k: v for k, v in os.environ.items() if k not in _LIMIT_VARS}
    env.update(env_vars)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = run_python(_SCRIPT, env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _check_common(out, expected):
    assert out["before"] == 0  # TensorFlow's default before the call
    assert out["first"] == expected
    assert out["intra"] == expected
    assert out["inter"] == expected
    # The second call is a no-op: same answer, TensorFlow not touched again.
    assert out["second"] == expected
    assert out["set_calls"] == [expected]
    # Once the runtime runs, nothing changes and nothing is raised or warned.
    assert out["after_start"] == expected
    assert out["intra_after_start"] == expected
    assert set(out["log_levels"]) <= {"DEBUG"}


def test_omp_num_threads_sets_tensorflow_threads():
    # What joblib's loky backend sets in a worker with n_jobs == cpu_count().
    out = _run(OMP_NUM_THREADS="1")
    _check_common(out, 1)


def test_explicit_variable_wins_over_omp_num_threads():
    out = _run(OMP_NUM_THREADS="1", SKLEARN_LM_NUM_THREADS="3")
    _check_common(out, 3)


# -- the decision alone, without TensorFlow ------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for name in _LIMIT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_threads, "_usable_cpus", lambda: None)
    return monkeypatch


def test_budget_without_limits_keeps_defaults(clean_env):
    assert _threads._thread_budget()[0] is None


@pytest.mark.parametrize(
    "omp, explicit, expected",
    [
        ("1", None, 1),
        ("4,2", None, 4),  # nested OpenMP levels: the outer one counts
        ("1", "2", 2),
        ("1", "0", None),  # 0 keeps TensorFlow's defaults
        ("0", None, None),
        ("many", None, None),
        (None, " 5 ", 5),
    ],
)
def test_budget_from_environment(clean_env, omp, explicit, expected):
    if omp is not None:
        clean_env.setenv("OMP_NUM_THREADS", omp)
    if explicit is not None:
        clean_env.setenv(_threads.ENV_VAR, explicit)
    assert _threads._thread_budget()[0] == expected


@pytest.mark.parametrize("name", _threads._TF_VARS)
def test_tensorflow_variables_are_left_to_tensorflow(clean_env, name):
    clean_env.setenv("OMP_NUM_THREADS", "1")
    clean_env.setenv(name, "4")
    assert _threads._thread_budget()[0] is None
    # ... unless sklearn_lm's own variable says otherwise.
    clean_env.setenv(_threads.ENV_VAR, "2")
    assert _threads._thread_budget()[0] == 2


def test_budget_from_cpu_limit(clean_env):
    clean_env.setattr(_threads, "_usable_cpus", lambda: 3)
    assert _threads._thread_budget() == (3, "the CPUs available to this process")


def test_invalid_explicit_value_is_logged_and_ignored(clean_env, caplog):
    clean_env.setenv(_threads.ENV_VAR, "two")
    clean_env.setenv("OMP_NUM_THREADS", "1")
    with caplog.at_level("WARNING", logger="sklearn_lm"):
        assert _threads._thread_budget()[0] == 1
    assert _threads.ENV_VAR in caplog.text


def test_usable_cpus_is_none_or_fewer_than_machine():
    usable = _threads._usable_cpus()
    assert usable is None or 1 <= usable < (os.cpu_count() or 1)
