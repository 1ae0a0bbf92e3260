"""network.forward (float64 NumPy) against the Keras model it evaluates."""

import keras
import numpy as np
import pytest

from sklearn_lm.network import ACTIVATIONS, build_network, forward


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_matches_the_keras_model_in_float64(activation):
    model = build_network(
        3,
        2,
        hidden=(5, 4),
        activation=activation,
        output_activation=activation,
        dtype="float64",
        seed=0,
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape) for w in model.get_weights()])
    X = 2.0 * rng.standard_normal((20, 3))
    expected = keras.ops.convert_to_numpy(model(X, training=False))
    # tf.nn.gelu rounds 1 / sqrt(2) to float32; NumPy's gelu does not.
    tol = 1e-6 if activation == "gelu" else 1e-12
    out = forward(model, X)
    assert out.dtype == np.float64 and out.shape == (20, 2)
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_forward_calls_keras_for_other_models():
    inputs = keras.Input((3,), dtype="float64")
    hidden = keras.layers.Dense(4, "tanh", dtype="float64")(inputs)
    outputs = keras.layers.Dense(2, dtype="float64")(
        keras.layers.LayerNormalization(dtype="float64")(hidden)
    )
    model = keras.Model(inputs, outputs)
    X = np.random.default_rng(1).standard_normal((6, 3))
    np.testing.assert_array_equal(
        forward(model, X), keras.ops.convert_to_numpy(model(X, training=False))
    )
