"""The on-disk cache of compiled step graphs (sklearn_lm.engine.step_cache)."""

import os
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from _python import run_python

import sklearn_lm.engine as engine
from sklearn_lm.engine import Trainer, losses, step_cache
from sklearn_lm.engine import compile as compile_module

RNG = np.random.default_rng(0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory for the test, and an empty in-memory cache."""
    monkeypatch.setattr(step_cache, "_explicit", step_cache._UNSET)
    monkeypatch.setattr(step_cache, "_max_bytes", step_cache.DEFAULT_MAX_BYTES)
    directory = tmp_path / "steps"
    engine.set_cache_dir(directory)
    compile_module._CACHE.clear()
    yield directory
    compile_module._CACHE.clear()


def _model(n_in=3, hidden=5, seed=0):
    return keras.Sequential(
        [
            keras.Input((n_in,), dtype="float64"),
            keras.layers.Dense(
                hidden,
                "tanh",
                dtype="float64",
                kernel_initializer=keras.initializers.GlorotUniform(seed),
            ),
            keras.layers.Dense(
                1,
                dtype="float64",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def _data(n=40, n_in=3):
    x = RNG.standard_normal((n, n_in))
    y = np.sin(x.sum(axis=1, keepdims=True))
    return x, y


def _fit(x, y, loss="mse", epochs=4, **kwargs):
    model = _model(n_in=x.shape[1])
    trainer = Trainer(model, loss, **kwargs)
    trainer.fit(x, y, epochs=epochs)
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])


def _functions():
    """The compiled functions in the in-memory cache, by name."""
    out = {}
    for compiled in compile_module._CACHE.values():
        for name, function in compiled._asdict().items():
            if function._concrete is not None:
                out.setdefault(name, []).append(function)
    return out


def _entries(directory):
    return sorted(directory.glob("*.tfstep"))


def test_loaded_step_gives_the_traced_weights_to_the_last_bit(cache, monkeypatch):
    x, y = _data()
    # The reference: the traced graph, with no cache at all.
    engine.set_cache_dir(None)
    reference = _fit(x, y, l2=1e-3)
    assert not cache.exists()
    # Traced again, and written.
    compile_module._CACHE.clear()
    engine.set_cache_dir(cache)
    written = _fit(x, y, l2=1e-3)
    assert len(_entries(cache)) == 1
    # Loaded (no trace) from the file.
    compile_module._CACHE.clear()
    loaded = _fit(x, y, l2=1e-3)
    (function,) = _functions()["step_variables"]
    assert isinstance(function._concrete, step_cache.LoadedFunction)
    assert function.function.experimental_get_tracing_count() == 0
    np.testing.assert_array_equal(written, reference)
    np.testing.assert_array_equal(loaded, reference)


def test_one_entry_per_architecture_and_configuration(cache):
    x, y = _data()
    _fit(x, y)
    _fit(x, y)  # the in-memory cache: no new entry
    _fit(x, y, l2=0.5)  # another configuration
    _fit(x[:, :2], y)  # another input width
    assert len(_entries(cache)) == 3


def test_loaded_function_keeps_captured_constants(cache):
    scale = tf.constant([1.5, -2.0, 0.25], tf.float64)  # captured by the graph
    spec = [tf.TensorSpec([None, 3], tf.float64)]
    function = tf.function(
        lambda v: tf.reduce_sum(v * scale, axis=1), input_signature=spec
    )
    concrete = function.get_concrete_function()
    assert len(concrete.captured_inputs) == 1
    assert step_cache.save("a key", concrete)
    loaded = step_cache.load("a key", spec)
    v = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(loaded(tf.constant(v)), v @ [1.5, -2.0, 0.25])
    # Another key, or no cache: a miss.
    assert step_cache.load("another key", spec) is None
    engine.set_cache_dir(None)
    assert step_cache.load("a key", spec) is None


def test_damaged_entry_is_a_miss_and_is_replaced(cache):
    x, y = _data()
    reference = _fit(x, y)
    (path,) = _entries(cache)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    compile_module._CACHE.clear()
    np.testing.assert_array_equal(_fit(x, y), reference)
    (function,) = _functions()["step_variables"]
    assert not isinstance(function._concrete, step_cache.LoadedFunction)
    # Traced and written again: the next fit loads it.
    compile_module._CACHE.clear()
    np.testing.assert_array_equal(_fit(x, y), reference)
    (function,) = _functions()["step_variables"]
    assert isinstance(function._concrete, step_cache.LoadedFunction)


def test_entry_that_fails_its_first_call_falls_back_to_a_trace(cache, monkeypatch):
    x, y = _data()
    reference = _fit(x, y)
    (path,) = _entries(cache)
    # Put a graph with another signature under the step's key.
    spec = [tf.TensorSpec([None], tf.float64)]
    other = tf.function(lambda v: 2.0 * v, input_signature=spec)
    key_of_step = {}
    entry_key = step_cache.entry_key

    def remember(name, *args):
        key = entry_key(name, *args)
        key_of_step[name] = key
        return key

    monkeypatch.setattr(step_cache, "entry_key", remember)
    compile_module._CACHE.clear()
    _fit(x, y)
    assert step_cache.save(key_of_step["step_variables"], other.get_concrete_function())
    compile_module._CACHE.clear()
    np.testing.assert_array_equal(_fit(x, y), reference)
    (function,) = _functions()["step_variables"]
    assert not isinstance(function._concrete, step_cache.LoadedFunction)
    assert path.exists()


def test_custom_loss_is_not_stored(cache):
    class Halved(losses.MeanSquaredError):
        pass

    x, y = _data()
    _fit(x, y, loss=Halved())
    assert _entries(cache) == []


def test_concurrent_writers_leave_one_whole_entry(cache):
    spec = [tf.TensorSpec([None], tf.float64)]
    concretes = [
        tf.function(lambda v: v + 1.0, input_signature=spec).get_concrete_function()
        for _ in range(4)
    ]
    results = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(step_cache.save("k", c)))
        for c in concretes
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4
    assert len(_entries(cache)) == 1
    assert [p for p in cache.iterdir() if p.suffix != ".tfstep"] == []
    loaded = step_cache.load("k", spec)
    np.testing.assert_array_equal(
        loaded(tf.constant([1.0, 2.0], tf.float64)), [2.0, 3.0]
    )


def test_eviction_removes_the_least_recently_used(cache):
    spec = [tf.TensorSpec([None], tf.float64)]
    concrete = tf.function(
        lambda v: v * v, input_signature=spec
    ).get_concrete_function()
    for i in range(3):
        assert step_cache.save(f"key {i}", concrete)
    paths = {i: cache / f"{step_cache._digest(f'key {i}')}.tfstep" for i in range(3)}
    size = paths[0].stat().st_size
    for i, path in paths.items():  # key 0 is the oldest...
        os.utime(path, (1000.0 + i, 1000.0 + i))
    step_cache.load("key 0", spec)  # ...until a hit refreshes it
    engine.set_cache_dir(cache, max_bytes=3 * size)
    assert step_cache.save("key 3", concrete)  # 4 entries: one must go
    assert not paths[1].exists()
    assert paths[0].exists() and paths[2].exists()
    assert sum(p.stat().st_size for p in _entries(cache)) <= 3 * size


def test_settings_and_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(step_cache, "_explicit", step_cache._UNSET)
    monkeypatch.delenv("SKLEARN_LM_NO_CACHE", raising=False)
    monkeypatch.delenv("SKLEARN_LM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name != "nt":
        assert engine.cache_dir() == tmp_path / "xdg" / "sklearn_lm" / "steps"
    monkeypatch.setenv("SKLEARN_LM_CACHE_DIR", str(tmp_path / "env"))
    assert engine.cache_dir() == tmp_path / "env"
    monkeypatch.setenv("SKLEARN_LM_NO_CACHE", "1")
    assert engine.cache_dir() is None
    monkeypatch.setenv("SKLEARN_LM_NO_CACHE", "0")
    assert engine.cache_dir() == tmp_path / "env"
    engine.set_cache_dir(tmp_path / "chosen")  # wins over the environment
    monkeypatch.setenv("SKLEARN_LM_NO_CACHE", "1")
    assert engine.cache_dir() == tmp_path / "chosen"
    engine.set_cache_dir(None)
    assert engine.cache_dir() is None
    with pytest.raises(TypeError, match="path must be"):
        engine.set_cache_dir(3)
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        engine.set_cache_dir(tmp_path, max_bytes=0)


_FRESH_SCRIPT = """
import numpy as np, keras
from sklearn_lm import LMRegressor
from sklearn_lm.engine import compile
rng = np.random.default_rng(0)
x = rng.standard_normal((60, 4))
y = np.tanh(x @ [1.0, -0.5, 0.25, 2.0])
est = LMRegressor(hidden=(6,), random_state=0, max_iter=5).fit(x, y)
(compiled,) = compile._CACHE.values()
kind = type(compiled.step_variables._concrete).__name__
w = np.concatenate([v.ravel() for v in est.model_.get_weights()])
print("RESULT", kind, w.tobytes().hex())
"""


@pytest.mark.slow
def test_a_second_process_loads_the_graph_and_fits_the_same(tmp_path):
    env = dict(os.environ, SKLEARN_LM_CACHE_DIR=str(tmp_path), SKLEARN_LM_NO_CACHE="")
    env["PYTHONWARNINGS"] = "ignore"
    first = run_python(_FRESH_SCRIPT, env).stdout.split("RESULT ")[1].split()
    second = run_python(_FRESH_SCRIPT, env).stdout.split("RESULT ")[1].split()
    assert first[0] == "ConcreteFunction" and second[0] == "LoadedFunction"
    assert first[1] == second[1]  # the same weights to the last bit
