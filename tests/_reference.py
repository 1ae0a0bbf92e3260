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
