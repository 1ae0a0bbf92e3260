"""One LM step against a NumPy solve of the same damped system."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from _python import run_python

from sklearn_lm.engine import Trainer, damping, losses

RNG = np.random.default_rng(0)


def _model(n_in=2, hidden=4, n_out=2, dtype="float64", seed=0):
    return keras.Sequential(
        [
            keras.Input((n_in,), dtype=dtype),
            keras.layers.Dense(
                hidden,
                "tanh",
                dtype=dtype,
                kernel_initializer=keras.initializers.GlorotUniform(seed),
            ),
            keras.layers.Dense(
                n_out,
                dtype=dtype,
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def _numpy_jacobian(model, x, h=1e-6):
    """Residual Jacobian (rows = sample-major outputs) by central differences."""
    variables = model.trainable_variables
    w0 = np.concatenate([v.numpy().ravel() for v in variables])

    def outputs(w):
        start = 0
        for v in variables:
            size = int(np.prod(v.shape))
            v.assign(w[start : start + size].reshape(v.shape))
            start += size
        return model(x).numpy().ravel()

    cols = []
    for j in range(w0.size):
        e = np.zeros_like(w0)
        e[j] = h
        cols.append((outputs(w0 + e) - outputs(w0 - e)) / (2 * h))
    z = outputs(w0)
    return w0, z, np.stack(cols, axis=1)


@pytest.mark.parametrize("n_samples", [20, 3])  # normal form, then Gram form
@pytest.mark.parametrize("kind", ["standard", "fletcher"])
def test_step_matches_numpy_solve(n_samples, kind):
    model = _model()
    x = RNG.standard_normal((n_samples, 2))
    y = RNG.standard_normal((n_samples, 2))
    w0, z, jac = _numpy_jacobian(model, x)
    r = z - y.ravel()
    m = r.size
    assert (m >= w0.size) == (n_samples == 20)
    lam = 0.3
    hess = jac.T @ jac / m
    d = np.ones(w0.size) if kind == "standard" else np.diag(hess)
    delta = np.linalg.solve(hess + lam * np.diag(d), jac.T @ r / m)
    trainer = Trainer(
        model,
        "mse",
        damping.get(kind, initial=lam, min_value=1e-12, max_value=1e3),
        geodesic=False,
    )
    logs = trainer.train_step(x, y)
    new_w = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    if logs["accepted"]:
        np.testing.assert_allclose(new_w, w0 - delta, rtol=1e-6, atol=1e-9)
        assert np.mean((model(x).numpy() - y) ** 2) < np.mean(r**2)
    else:  # pragma: no cover - the data are chosen so that the first try is accepted
        pytest.fail("the first LM step was rejected")
    assert logs["attempts"] == 1
    assert logs["damping"] == pytest.approx(lam * 0.1)


def _numpy_outputs(model, w, x):
    start = 0
    for v in model.trainable_variables:
        size = int(np.prod(v.shape))
        v.assign(w[start : start + size].reshape(v.shape))
        start += size
    return model(x).numpy().ravel()


@pytest.mark.parametrize("n_samples", [20, 3])  # normal form, then Gram form
@pytest.mark.parametrize("kind", ["standard", "fletcher"])
@pytest.mark.parametrize("weighted", [False, True])
def test_geodesic_step_matches_numpy(n_samples, kind, weighted):
    """``w + v + a/2``: ``a`` from second central differences of the outputs."""
    model = _model(seed=7)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_samples, 2))
    y = 2.0 * rng.standard_normal((n_samples, 2))
    sw = rng.uniform(0.5, 2.0, n_samples) if weighted else np.ones(n_samples)
    w0, z, jac = _numpy_jacobian(model, x)
    root = np.repeat(np.sqrt(sw), 2)
    r = (z - y.ravel()) * root
    jw = jac * root[:, None]
    m = r.size
    lam = 0.5
    hess = jw.T @ jw / m
    d = np.ones(w0.size) if kind == "standard" else np.diag(hess)
    system = hess + lam * np.diag(d)
    v = -np.linalg.solve(system, jw.T @ r / m)
    h = 1e-4
    zvv = (
        _numpy_outputs(model, w0 + h * v, x)
        - 2 * _numpy_outputs(model, w0, x)
        + _numpy_outputs(model, w0 - h * v, x)
    ) / h**2
    a = -np.linalg.solve(system, jw.T @ (zvv * root) / m)
    ratio = 2 * np.linalg.norm(a) / np.linalg.norm(v)
    assert 0.05 < ratio <= 5.0  # the acceleration counts, and is used below
    _numpy_outputs(model, w0, x)  # restore the weights
    trainer = Trainer(
        model,
        "mse",
        damping.get(kind, initial=lam, min_value=1e-12, max_value=1e3),
        geodesic=True,
        geodesic_ratio=5.0,
    )
    logs = trainer.train_step(x, y, sample_weight=sw)
    assert logs["accepted"] and logs["attempts"] == 1
    new_w = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    np.testing.assert_allclose(new_w, w0 + v + 0.5 * a, rtol=1e-6, atol=1e-8)
    assert not np.allclose(new_w, w0 + v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("loss", "n_out", "dtype"),
    [
        ("mse", 1, "float64"),  # Jacobian rows, F = identity
        ("mse", 2, "float64"),  # layer-by-layer products
        ({"from_logits": True, "gauss_newton": False}, 3, "float64"),  # rows, F
        ({"from_logits": True}, 3, "float64"),  # layer-by-layer products, F
        ("mse", 1, "float32"),
    ],
)
def test_chunked_geodesic_step_matches_one_chunk(loss, n_out, dtype):
    """Chunks of 7 samples, two at a time, give the step of a single chunk."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 2)).astype(dtype)
    if isinstance(loss, dict):
        loss = losses.get("categorical_crossentropy", **loss)
        y = np.eye(n_out)[rng.integers(0, n_out, 40)]
    else:
        y = 2.0 * rng.standard_normal((40, n_out))
    sw = rng.uniform(0.5, 2.0, 40)
    steps = []
    for chunk_size in (None, 7):
        model = _model(n_out=n_out, dtype=dtype, seed=7)
        trainer = Trainer(
            model,
            loss,
            damping.Standard(initial=0.5),
            geodesic=True,
            geodesic_ratio=5.0,
            chunk_size=chunk_size,
        )
        logs = trainer.train_step(x, y, sample_weight=sw)
        assert logs["accepted"]
        steps.append(np.concatenate([v.numpy().ravel() for v in model.weights]))
    w0 = np.concatenate(
        [v.numpy().ravel() for v in _model(n_out=n_out, seed=7).weights]
    )
    tol = 1e-9 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(steps[1], steps[0], rtol=0, atol=tol * np.abs(w0).max())
    assert not np.allclose(steps[0], w0.astype(dtype))


def test_geodesic_acceleration_is_skipped_when_too_large():
    """With ``geodesic_ratio`` below ``2|a|/|v|`` the plain LM step is taken."""
    x = RNG.standard_normal((20, 2))
    y = RNG.standard_normal((20, 2))
    steps = []
    for kwargs in [{"geodesic": False}, {"geodesic": True, "geodesic_ratio": 1e-9}]:
        model = _model(seed=2)
        trainer = Trainer(model, "mse", damping.Standard(initial=0.3), **kwargs)
        trainer.train_step(x, y)
        steps.append(model.get_weights())
    for a, b in zip(*steps, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"geodesic": "yes"}, "geodesic must be a bool"),
        ({"geodesic_ratio": 0.0}, "geodesic_ratio must be a finite number > 0"),
    ],
)
def test_geodesic_arguments_are_validated(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Trainer(_model(), "mse", **kwargs)


def test_gram_and_normal_forms_give_the_same_step():
    """A batch with fewer residuals than weights, solved both ways."""
    x = RNG.standard_normal((3, 2))
    y = RNG.standard_normal((3, 2))
    steps = []
    for l2 in [0.0, 1e-300]:  # l2 > 0 forces the normal form (value is negligible)
        model = _model(seed=3)
        w0 = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
        Trainer(model, "mse", damping.Standard(initial=0.05), l2=l2).train_step(x, y)
        w1 = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
        steps.append(w1 - w0)
    np.testing.assert_allclose(steps[0], steps[1], rtol=1e-7, atol=1e-12)
    assert np.linalg.norm(steps[0]) > 0


class _Singular(damping.Damping):
    """Damping that adds nothing: J^T J alone is singular here."""

    def diagonal(self, curvature_diagonal):
        return tf.zeros_like(curvature_diagonal)


def test_singular_system_is_rejected_without_nan():
    model = _model(seed=5)
    x = np.zeros((10, 2))  # zero inputs: kernel columns of J vanish
    y = RNG.standard_normal((10, 2))
    before = [v.numpy().copy() for v in model.trainable_variables]
    trainer = Trainer(
        model, "mse", _Singular(initial=1.0, max_value=1e6), max_attempts=4
    )
    logs = trainer.train_step(x, y)
    assert not logs["accepted"]
    assert logs["attempts"] == 4
    assert logs["damping"] == pytest.approx(1e4)  # raised by 10 each attempt
    for b, v in zip(before, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())
    assert np.isfinite(logs["loss"])


_SILENT_SCRIPT = """
import numpy as np, keras, tensorflow as tf
from sklearn_lm.engine import Trainer, damping

class Singular(damping.Damping):
    def diagonal(self, curvature_diagonal):
        return tf.zeros_like(curvature_diagonal)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((2,)), keras.layers.Dense(3, "tanh"), keras.layers.Dense(2)]
)
trainer = Trainer(model, "mse", Singular(initial=1.0, max_value=1e6), max_attempts=3)
logs = trainer.train_step(np.zeros((10, 2)), np.ones((10, 2)))
print("RESULT", logs["accepted"], logs["attempts"])
"""


def test_rejected_factorisation_prints_nothing():
    """TensorFlow's own warnings shown (log level 0): a failed solve is silent."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", KERAS_BACKEND="tensorflow")
    proc = run_python(_SILENT_SCRIPT, env)
    assert "RESULT False 3" in proc.stdout
    assert "Cholesky" not in proc.stderr and "Cholesky" not in proc.stdout


def test_damping_max_is_a_stopping_reason():
    model = _model(seed=5)
    x = np.zeros((10, 2))
    y = RNG.standard_normal((10, 2))
    trainer = Trainer(model, "mse", _Singular(initial=1.0, max_value=100.0))
    # The convergence tests off: they would end this fit first.
    history = trainer.fit(x, y, epochs=5, ftol=None, xtol=None, gtol=None)
    assert history.stop_reason == "damping_max"
    assert "maximum" in history.message
    assert trainer.damping_value == 100.0


def test_gain_ratio_update_follows_nielsen():
    d = damping.Standard(initial=1.0, update="gain_ratio")
    lam, nu = d.accepted(
        tf.constant(1.0, tf.float64),
        tf.constant(8.0, tf.float64),
        tf.constant(0.75, tf.float64),
    )
    assert float(lam) == pytest.approx(1 - (2 * 0.75 - 1) ** 3)
    assert float(nu) == 2.0
    lam, nu = d.accepted(lam, nu, tf.constant(1.0, tf.float64))
    assert float(lam) == pytest.approx((1 - 0.125) / 3)
    lam, nu = d.rejected(tf.constant(1.0, tf.float64), tf.constant(2.0, tf.float64))
    assert (float(lam), float(nu)) == (2.0, 4.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"increase": 0.5}, "increase must be > 1"),
        ({"decrease": 2.0}, "decrease must be in"),
        ({"initial": -1.0}, "initial must be a positive"),
        ({"min_value": 1.0, "max_value": 0.5}, "min_value must be smaller"),
        ({"update": "sometimes"}, "update must be"),
        ({"initial": 1e20}, "initial must lie within"),
    ],
)
def test_damping_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        damping.Standard(**kwargs)


def test_layerwise_width_and_default_chunk_of_a_digits_network():
    """The layer-wise products are used, and sized, for several rows per sample."""
    from sklearn_lm.engine.jacobian import model_function
    from sklearn_lm.engine.memory import (
        CHUNK_BUDGET_BYTES,
        CHUNKS_IN_FLIGHT,
        layerwise_width,
    )

    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(20, "tanh"), keras.layers.Dense(10)]
    )
    fn = model_function(model, "dense")
    # Widest product: the first layer with itself, (64 + 1)^2 inputs times
    # 20^2 sensitivities, against 10 * 1510 Jacobian values per sample.
    assert layerwise_width(fn, 10) == 65 * 65 + 20 * 20
    assert layerwise_width(fn, 1) is None  # one row per sample: rows are formed
    trainer = Trainer(model, loss="sparse_categorical_crossentropy")
    # Two float32 arrays of the width per sample, in each chunk in flight.
    assert trainer.chunk_size == CHUNK_BUDGET_BYTES // (CHUNKS_IN_FLIGHT * 2 * 4625 * 4)
    assert trainer.chunk_size > 1797  # all of load_digits in one chunk


def test_graph_calls_skip_grappler_for_the_call_only():
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    from sklearn_lm.engine import _call_options

    def meta_optimizer_off():
        config = config_pb2.ConfigProto()
        options = context.context().function_call_options
        config.ParseFromString(options.config_proto_serialized)
        return config.graph_options.rewrite_options.disable_meta_optimizer

    seen = []

    def spy(value):
        seen.append(meta_optimizer_off())
        if value is None:
            raise RuntimeError("failed call")
        return value

    before = meta_optimizer_off()
    assert _call_options.call(spy, (3,)) == 3
    with pytest.raises(RuntimeError, match="failed call"):
        _call_options.call(spy, (None,))
    assert seen == [True, True]
    assert meta_optimizer_off() == before is False


def _weights(model):
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])


def _two_steps(x1, y1, x2, y2, *, handles=True, monkeypatch=None):
    model = _model(seed=3)
    trainer = Trainer(model, "mse", damping.Standard(initial=0.1), geodesic=False)
    if not handles:
        monkeypatch.setattr(trainer.fn, "variable_handles", lambda: None)
    trainer.train_step(x1, y1)
    second = x2() if callable(x2) else x2, y2() if callable(y2) else y2
    trainer.train_step(*second)
    return _weights(model)


def test_train_step_reuses_conversions_only_for_the_same_tensors():
    x = RNG.standard_normal((12, 2))
    y1 = RNG.standard_normal((12, 2))
    y2 = RNG.standard_normal((12, 2))
    expected = _two_steps(x, y1, x, y2)  # arrays: converted at every call
    # The data must matter: two steps on y1 end elsewhere.
    assert np.abs(_two_steps(x, y1, x, y1) - expected).max() > 1e-3
    xt, y1t, y2t = (tf.constant(a) for a in (x, y1, y2))
    np.testing.assert_allclose(_two_steps(xt, y1t, xt, y2t), expected, rtol=1e-12)
    # An array changed in place between calls is read again.
    changing = y1.copy()

    def changed():
        changing[...] = y2
        return changing

    np.testing.assert_allclose(
        _two_steps(x, changing, x, changed), expected, rtol=1e-12
    )


def test_train_step_without_variable_handles_gives_the_same_step(monkeypatch):
    """Variables other than plain TensorFlow ones are read and written eagerly."""
    x = RNG.standard_normal((12, 2))
    y1 = RNG.standard_normal((12, 2))
    y2 = RNG.standard_normal((12, 2))
    np.testing.assert_allclose(
        _two_steps(x, y1, x, y2, handles=False, monkeypatch=monkeypatch),
        _two_steps(x, y1, x, y2),
        rtol=1e-12,
    )
