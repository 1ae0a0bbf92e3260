"""Mean squared errors: one residual per output, or one per sample."""

from __future__ import annotations

import tensorflow as tf

from .base import _F64, LogitsResidualLoss, ResidualLoss

__all__ = [
    "MeanSquaredError",
    "ReducedOutputsMeanSquaredError",
    "CategoricalMeanSquaredError",
]


class MeanSquaredError(ResidualLoss):
    """Mean squared error: residuals ``r = y_pred - y_true``, one per output.

    ``value = sum(w * r**2) / (N * k)``, the same as
    ``keras.losses.MeanSquaredError``.
    """

    def output_normaliser(self, n_outputs):
        return n_outputs

    def residuals_per_sample(self, n_outputs):
        return n_outputs

    def residuals(self, y_true, y_pred):
        return y_pred - tf.reshape(y_true, tf.shape(y_pred))

    def linearize(self, y_true, y_pred):
        return self.residuals(y_true, tf.cast(y_pred, _F64)), None


class ReducedOutputsMeanSquaredError(ResidualLoss):
    """Mean squared error with one residual per sample.

    ``r_i = sqrt(mean_k (y_pred - y_true)**2)``: the value equals the mean
    squared error, but the Jacobian has one row per sample instead of ``k``,
    which makes each step cheaper for models with many outputs.
    """

    def residuals(self, y_true, y_pred):
        diff = y_pred - tf.reshape(y_true, tf.shape(y_pred))
        return tf.sqrt(tf.reduce_mean(tf.square(diff), axis=-1, keepdims=True))

    def residual_jacobian(self, y_true, y_pred, r):
        diff = y_pred - tf.reshape(y_true, tf.shape(y_pred))
        k = tf.cast(tf.shape(y_pred)[-1], _F64)
        safe = tf.maximum(r, 1e-150)
        return (diff / (k * safe))[:, None, :]


class CategoricalMeanSquaredError(LogitsResidualLoss):
    """Mean squared error between predicted probabilities and one-hot targets.

    ``r = softmax(z) - y`` with ``from_logits=True``, else ``r = z - y``.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits.
    """

    def output_normaliser(self, n_outputs):
        return n_outputs

    def residuals_per_sample(self, n_outputs):
        return n_outputs

    def residuals(self, y_true, y_pred):
        p = tf.nn.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        return p - tf.reshape(y_true, tf.shape(p))
