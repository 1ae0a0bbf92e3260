"""The activation table against Keras' own activations and TensorFlow's
automatic differentiation of them."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm import network
from sklearn_lm.engine.activations import ACTIVATIONS, ALIASES, activation_name

# Points away from 0, where relu, elu, selu and softsign have a kink.
_Z = np.concatenate([np.linspace(-6.0, -0.05, 40), np.linspace(0.05, 6.0, 40)])


def _keras(name):
    return keras.activations.get(name)


def test_the_table_has_every_activation_the_estimators_accept():
    assert list(ACTIVATIONS) == list(network.ACTIVATIONS)
    assert set(network.ACTIVATIONS) == {
        "linear",
        "tanh",
        "sigmoid",
        "relu",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "gelu",
        "silu",
    }
    assert ALIASES == {"swish": "silu"}
    for name, phi in ACTIVATIONS.items():
        assert phi.name == name
        assert network.ACTIVATIONS[name] is phi.numpy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_tensorflow_forward_is_the_keras_activation(name, dtype):
    z = tf.constant(_Z, dtype)
    phi = ACTIVATIONS[name]
    ours = z if phi.forward is None else phi.forward(z)
    np.testing.assert_array_equal(ours.numpy(), _keras(name)(z).numpy())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_numpy_forward_matches_keras_in_float64(name):
    expected = _keras(name)(tf.constant(_Z)).numpy()
    ours = ACTIVATIONS[name].numpy(_Z.copy())
    assert ours.dtype == np.float64
    # NumPy's gelu is the exact one (see test_gelu_is_the_exact_form).
    rtol = 1e-6 if name == "gelu" else 1e-14
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=1e-15)


def test_gelu_is_the_exact_form():
    """Keras' default gelu (erf), not the tanh approximation."""
    z = tf.constant(_Z)
    ours = ACTIVATIONS["gelu"].forward(z).numpy()
    approximate = keras.activations.gelu(z, approximate=True).numpy()
    assert np.abs(ours - approximate).max() > 1e-4
    exact = [0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in _Z]
    # tf.nn.gelu rounds 1 / sqrt(2) to float32.
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-15)


def _autodiff_derivatives(name, z, h=1e-5):
    """``phi'`` of the Keras activation by TensorFlow's automatic
    differentiation, and ``phi''`` by central differences of it (TensorFlow
    has no second derivative of softsign)."""

    def first(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            a = _keras(name)(z)
        return tape.gradient(a, z, unconnected_gradients="zero").numpy()

    second = (first(z + h) - first(z - h)) / (2.0 * h)
    return first(z), second


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivatives_match_automatic_differentiation(name):
    z = tf.constant(_Z)
    phi = ACTIVATIONS[name]
    a = z if phi.forward is None else phi.forward(z)
    first, second = _autodiff_derivatives(name, z)
    slope = np.ones_like(_Z) if phi.slope is None else phi.slope(z, a).numpy()
    if phi.bend is not None:
        bend = phi.bend(z, a).numpy()
    elif phi.bend_ratio is not None:
        bend = phi.bend_ratio(z, a).numpy() * slope
    else:
        bend = np.zeros_like(_Z)
    np.testing.assert_allclose(slope, first, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bend, second, rtol=1e-8, atol=1e-9)
    assert phi.bend is None or phi.bend_ratio is None


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu"])
def test_fused_slope_products(name):
    phi = ACTIVATIONS[name]
    z = tf.constant(_Z)
    a = phi.forward(z)
    t = tf.constant(np.random.default_rng(0).standard_normal(_Z.shape))
    np.testing.assert_allclose(
        phi.slope_times(z, a, t).numpy(),
        (phi.slope(z, a) * t).numpy(),
        rtol=1e-14,
        atol=1e-15,
    )


def test_only_tanh_sigmoid_and_relu_have_fused_slope_products():
    fused = {name for name, phi in ACTIVATIONS.items() if phi.slope_times}
    assert fused == {"tanh", "sigmoid", "relu"}


@pytest.mark.parametrize("name", [*ACTIVATIONS, "swish"])
def test_activation_name_of_a_layer(name):
    layer = keras.layers.Dense(2, activation=name)
    assert activation_name(layer.activation) == ALIASES.get(name, name)


def test_activation_name_of_other_activations():
    assert activation_name(keras.activations.get("hard_sigmoid")) is None
    assert activation_name(keras.activations.get("mish")) is None
    assert activation_name(np.tanh) is None
