"""Jacobians against central finite differences in float64."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from _reference import finite_difference_jacobian

from sklearn_lm.engine import model_function
from sklearn_lm.engine.autodiff import AutodiffFunction
from sklearn_lm.engine.dense_chain import DenseChain
from sklearn_lm.network import ACTIVATIONS


def _dense_model(dtype="float64", seed=0):
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    bias = lambda i: keras.initializers.RandomNormal(seed=seed + 10 + i)  # noqa: E731
    return keras.Sequential(
        [
            keras.Input((3,), dtype=dtype),
            keras.layers.Dense(
                5,
                "tanh",
                kernel_initializer=init(0),
                dtype=dtype,
                bias_initializer=bias(0),
            ),
            keras.layers.Dense(
                4,
                "sigmoid",
                kernel_initializer=init(1),
                dtype=dtype,
                bias_initializer=bias(1),
            ),
            keras.layers.Dense(3, "softplus", kernel_initializer=init(2), dtype=dtype),
            keras.layers.Dense(2, kernel_initializer=init(3), dtype=dtype),
        ]
    )


def _conv_model(seed=0):
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    inputs = keras.Input((6, 6, 1), dtype="float64")
    h = keras.layers.Conv2D(
        2, 3, activation="tanh", kernel_initializer=init(0), dtype="float64"
    )(inputs)
    h = keras.layers.Flatten(dtype="float64")(h)
    outputs = keras.layers.Dense(3, kernel_initializer=init(1), dtype="float64")(h)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("mode", ["dense", "reverse", "forward"])
def test_dense_model_jacobian_matches_finite_differences(mode):
    model = _dense_model()
    fn = model_function(model, mode)
    assert isinstance(fn, DenseChain if mode == "dense" else AutodiffFunction)
    x = tf.constant(np.random.default_rng(1).standard_normal((6, 3)))
    w = fn.get_weights()
    z, jac = fn.outputs_and_jacobian(w, x)
    np.testing.assert_allclose(z.numpy(), model(x).numpy(), atol=1e-12)
    np.testing.assert_allclose(
        jac.numpy(), finite_difference_jacobian(fn, w, x), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_conv_model_jacobian_matches_finite_differences(mode):
    model = _conv_model()
    fn = model_function(model, mode)
    x = tf.constant(np.random.default_rng(2).standard_normal((4, 6, 6, 1)))
    w = fn.get_weights()
    _, jac = fn.outputs_and_jacobian(w, x)
    assert jac.shape == (4, 3, fn.n_params)
    np.testing.assert_allclose(
        jac.numpy(), finite_difference_jacobian(fn, w, x), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("kind", ["dense", "reverse", "conv"])
def test_directional_curvature_matches_second_differences(kind, with_state):
    """``d^2 z(w + t v)/dt^2`` against a central second difference in float64.

    ``with_state`` passes the forward pass kept by ``linearization``, whose
    Jacobian is also checked against finite differences.
    """
    model = _conv_model() if kind == "conv" else _dense_model()
    fn = model_function(model, "reverse" if kind == "conv" else kind)
    rng = np.random.default_rng(3)
    shape = (7, *model.inputs[0].shape[1:])
    x = tf.constant(rng.standard_normal(shape))
    w = fn.get_weights()
    v = tf.constant(rng.standard_normal(fn.n_params))

    @tf.function(input_signature=[tf.TensorSpec([None, *shape[1:]], tf.float64)])
    def curvature(x):  # unknown batch size, as in the compiled step
        if not with_state:
            return fn.outputs_and_curvature(w, v, x), None
        z0, jac, state = fn.linearization(w, x)
        return fn.outputs_and_curvature(w, v, x, state), (z0, jac)

    (z, zvv), linear = curvature(x)
    if with_state:
        np.testing.assert_allclose(
            linear[1].numpy(),
            finite_difference_jacobian(fn, w, x),
            rtol=1e-6,
            atol=1e-8,
        )
        np.testing.assert_allclose(linear[0].numpy(), fn.outputs(w, x).numpy())

    def second_difference(h):
        return (
            fn.outputs(w + h * v, x) - 2 * fn.outputs(w, x) + fn.outputs(w - h * v, x)
        ).numpy() / h**2

    # Richardson extrapolation cancels the O(h^2) truncation error, so that
    # a step large enough to keep round-off small (about 1e-7 here) can be used.
    expected = (4 * second_difference(5e-4) - second_difference(1e-3)) / 3
    np.testing.assert_allclose(z.numpy(), fn.outputs(w, x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(zvv.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 1e-2


def _two_hidden_layers(activation):
    """Two hidden layers of ``activation`` and a linear output, float64."""
    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((3,), dtype="float64"),
            keras.layers.Dense(
                6,
                activation,
                dtype="float64",
                kernel_initializer=init(1),
                bias_initializer="random_normal",
            ),
            keras.layers.Dense(
                5,
                activation,
                dtype="float64",
                kernel_initializer=init(2),
                bias_initializer="random_normal",
            ),
            keras.layers.Dense(2, dtype="float64", kernel_initializer=init(3)),
        ]
    )


def _closed_form_at_a_point(activation):
    """The model, its closed form, inputs, weights and a direction."""
    model = _two_hidden_layers(activation)
    fn = model_function(model, "dense")
    assert isinstance(fn, DenseChain)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal((9, 3)))
    v = tf.constant(rng.standard_normal(fn.n_params))
    return model, fn, x, fn.get_weights(), v


@pytest.mark.parametrize("activation", [*ACTIVATIONS, "swish"])
def test_dense_jacobian_closed_form_for_each_activation(activation):
    """Jacobian and ``J v`` of the closed form against central differences."""
    model, fn, x, w, v = _closed_form_at_a_point(activation)
    z, jac = fn.outputs_and_jacobian(w, x)
    expected = finite_difference_jacobian(fn, w, x)
    np.testing.assert_allclose(z.numpy(), model(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(jac.numpy(), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        fn.jvp(w, v, x).numpy(), expected @ v.numpy(), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dense_curvature_closed_form_for_each_activation(activation):
    model, fn, x, w, v = _closed_form_at_a_point(activation)
    z, zvv = fn.outputs_and_curvature(w, v, x)
    z_state, zvv_state = fn.outputs_and_curvature(w, v, x, fn.linearization(w, x)[2])
    np.testing.assert_allclose(zvv_state.numpy(), zvv.numpy(), rtol=1e-12)
    np.testing.assert_allclose(z_state.numpy(), z.numpy(), rtol=1e-12)

    def second_difference(h):
        return (
            fn.outputs(w + h * v, x) - 2 * fn.outputs(w, x) + fn.outputs(w - h * v, x)
        ).numpy() / h**2

    # Richardson extrapolation cancels the O(h^2) truncation error, so that
    # a step large enough to keep round-off small (about 1e-7 here) can be used.
    expected = (4 * second_difference(5e-4) - second_difference(1e-3)) / 3
    np.testing.assert_allclose(z.numpy(), model(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(zvv.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_auto_picks_closed_form_only_for_dense_chains():
    assert isinstance(model_function(_dense_model()), DenseChain)
    assert isinstance(model_function(_conv_model()), AutodiffFunction)
    with pytest.raises(ValueError, match="jacobian='dense' needs"):
        model_function(_conv_model(), "dense")
    with pytest.raises(ValueError, match="Received: jacobian='sideways'"):
        model_function(_dense_model(), "sideways")


def test_weights_round_trip_and_penalty_mask():
    model = _dense_model()
    fn = model_function(model)
    w = fn.get_weights().numpy()
    fn.set_weights(tf.constant(w * 2))
    np.testing.assert_allclose(fn.get_weights().numpy(), w * 2)
    expected = np.concatenate(
        [
            np.full(v.numpy().size, float(v.numpy().ndim >= 2))
            for v in model.trainable_variables
        ]
    )
    np.testing.assert_array_equal(fn.penalty_mask(), expected)


def test_unbuilt_model_is_rejected():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="must be built"):
        model_function(model)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layerwise_gauss_newton_matchesfinite_difference_jacobian(dtype):
    """``J^T F^T F J`` and ``J^T F^T e`` summed layer by layer, without ``F J``."""
    model = keras.Sequential(
        [
            keras.Input((5,), dtype=dtype),
            keras.layers.Dense(
                4, "tanh", dtype=dtype, bias_initializer="random_normal"
            ),
            keras.layers.Dense(3, "sigmoid", dtype=dtype, use_bias=False),
            keras.layers.Dense(3, dtype=dtype, bias_initializer="random_normal"),
        ]
    )
    fn = model_function(model, "dense")
    rng = np.random.default_rng(5)
    # more rows than one float32 block, so that blocks are summed
    x = tf.constant(rng.standard_normal((700, 5)), dtype=dtype)
    f = rng.standard_normal((700, 2, 3))
    e = rng.standard_normal((700, 2))
    w = fn.get_weights()
    rows = _weighted_fd_rows(model, w, x, f).reshape(-1, fn.n_params)
    _, state = fn.outputs_and_state(w, x)
    h, g = fn.gauss_newton(state, tf.constant(f), tf.constant(e))
    back = fn.transpose_times(state, tf.constant(f), tf.constant(e))
    assert h.dtype == g.dtype == back.dtype == tf.float64
    tol = 1e-6 if dtype == "float64" else 2e-5
    scale = np.abs(rows.T @ rows).max()
    np.testing.assert_allclose(h.numpy(), rows.T @ rows, atol=tol * scale)
    expected = rows.T @ e.ravel()
    np.testing.assert_allclose(g.numpy(), expected, atol=tol * np.abs(expected).max())
    np.testing.assert_allclose(back.numpy(), g.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weighted_rows_matchfinite_difference_jacobian(dtype):
    """``[F J | e]`` from back-propagated ``F``, against ``F`` times the FD ``J``."""
    model = keras.Sequential(
        [
            keras.Input((3,), dtype=dtype),
            keras.layers.Dense(4, "tanh", dtype=dtype, bias_initializer="ones"),
            keras.layers.Dense(2, dtype=dtype, use_bias=False),
        ]
    )
    fn = model_function(model, "dense")
    rng = np.random.default_rng(7)
    x = tf.constant(rng.standard_normal((9, 3)), dtype=dtype)
    f = rng.standard_normal((9, 3, 2))
    e = rng.standard_normal((9, 3))
    w = fn.get_weights()
    expected = np.concatenate(
        [_weighted_fd_rows(model, w, x, f), e[:, :, None]], axis=-1
    ).reshape(-1, fn.n_params + 1)
    _, state = fn.outputs_and_state(w, x)
    rows = fn.weighted_rows(state, tf.constant(f), tf.constant(e))
    assert rows.dtype == fn.dtype and rows.shape == (27, fn.n_params + 1)
    tol = 1e-8 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(rows.numpy(), expected, atol=tol)


def _weighted_fd_rows(model, w, x, f):
    """``F J`` (N, q, n) with ``J`` from central differences on a float64 copy."""
    fn64 = model_function(_cast_model(model), "dense")
    jac = finite_difference_jacobian(
        fn64, tf.cast(w, tf.float64), tf.cast(x, tf.float64)
    )
    return np.einsum("cqk,ckn->cqn", f, jac)


def _cast_model(model):
    """A float64 copy of a Dense chain with the same weights."""
    copy = keras.Sequential(
        [keras.Input(model.inputs[0].shape[1:], dtype="float64")]
        + [
            keras.layers.Dense(
                layer.units, layer.activation, use_bias=layer.use_bias, dtype="float64"
            )
            for layer in model.layers
        ]
    )
    for ours, theirs in zip(copy.weights, model.weights, strict=True):
        ours.assign(np.asarray(theirs.numpy(), dtype=np.float64))
    return copy


@pytest.mark.parametrize("n_inputs, first_bias", [(2, True), (6, True), (3, False)])
def test_prepared_inputs_give_the_same_values_and_derivatives(n_inputs, first_bias):
    """``prepare_inputs`` (the first layer's bias inside its matrix product)."""
    init = keras.initializers.RandomNormal(seed=4)
    model = keras.Sequential(
        [
            keras.Input((n_inputs,), dtype="float64"),
            keras.layers.Dense(
                5, "tanh", use_bias=first_bias, bias_initializer=init, dtype="float64"
            ),
            keras.layers.Dense(2, bias_initializer=init, dtype="float64"),
        ]
    )
    fn = model_function(model, "dense")
    rng = np.random.default_rng(9)
    x = tf.constant(rng.standard_normal((8, n_inputs)))
    prepared = fn.prepare_inputs(x)
    assert (prepared is x) == (not first_bias)
    w = fn.get_weights()
    v = tf.constant(rng.standard_normal(fn.n_params))
    f = tf.constant(rng.standard_normal((8, 3, 2)))
    e = tf.constant(rng.standard_normal((8, 3)))

    z, jac, state = fn.linearization(w, prepared)
    np.testing.assert_allclose(z.numpy(), model(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        jac.numpy(), finite_difference_jacobian(fn, w, x), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        fn.outputs(w, prepared).numpy(), model(x).numpy(), rtol=1e-12
    )
    _, raw_state = fn.outputs_and_state(w, x)
    for got, want in [
        (
            fn.outputs_and_curvature(w, v, prepared, state)[1],
            fn.outputs_and_curvature(w, v, x, raw_state)[1],
        ),
        (
            fn.outputs_and_curvature(w, v, prepared)[1],
            fn.outputs_and_curvature(w, v, x)[1],
        ),
        (fn.weighted_rows(state, f, e), fn.weighted_rows(raw_state, f, e)),
        (fn.gauss_newton(state, f, e)[0], fn.gauss_newton(raw_state, f, e)[0]),
        (fn.transpose_times(state, f, e), fn.transpose_times(raw_state, f, e)),
    ]:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
