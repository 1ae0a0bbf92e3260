"""Independent references shared by the engine tests."""

import numpy as np
import tensorflow as tf


def finite_difference_jacobian(fn, w, x, h=1e-6):
    """``(N, k, n)`` Jacobian of ``fn.outputs`` in ``w`` by central differences."""
    w = w.numpy()
    cols = []
    for j in range(w.size):
        e = np.zeros_like(w)
        e[j] = h
        plus = fn.outputs(tf.constant(w + e), x).numpy()
        minus = fn.outputs(tf.constant(w - e), x).numpy()
        cols.append((plus - minus) / (2 * h))
    return np.stack(cols, axis=-1)


def flat_weights(model):
    """The weights of a Keras ``model`` as one flat NumPy vector."""
    return np.concatenate([w.ravel() for w in model.get_weights()])


def set_flat_weights(model, flat):
    """Set the weights of ``model`` from one flat vector (:func:`flat_weights`)."""
    weights, start = [], 0
    for w in model.get_weights():
        weights.append(flat[start : start + w.size].reshape(w.shape))
        start += w.size
    model.set_weights(weights)


def model_jacobian(model, X, h=1e-6):
    """``(N, k, n)``: d outputs / d weights of a Keras ``model`` by central
    differences of the NumPy forward pass (:func:`sklearn_lm.network.forward`)."""
    from sklearn_lm.network import forward

    w0 = flat_weights(model)
    columns = []
    for j in range(w0.size):
        step = np.zeros_like(w0)
        step[j] = h
        set_flat_weights(model, w0 + step)
        up = forward(model, X)
        set_flat_weights(model, w0 - step)
        columns.append((up - forward(model, X)) / (2 * h))
    set_flat_weights(model, w0)
    return np.stack(columns, axis=-1)
