"""Cross-entropies, with the generalised Gauss-Newton linearisation.

With ``gauss_newton=True`` the curvature on the logits is ``H = diag(p) -
p p^T`` (softmax) or ``p (1 - p)`` (sigmoid), written as ``F^T F`` with the
factors of :meth:`_CrossentropyBase.linearize`; with ``gauss_newton=False``
the square root of the per-sample loss is the one residual.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .base import _F64, LogitsResidualLoss, Loss

__all__ = [
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "SquaredCategoricalCrossentropy",
]

#: Probabilities are kept in ``[_P_MIN, 1 - _P_MIN]`` inside the linearisations.
_P_MIN = 1e-12


def _eps() -> float:
    return float(keras.config.epsilon())


def _probabilities(y_pred, from_logits: bool, softmax: bool):
    """Probabilities in float64, clipped like Keras does for probability inputs."""
    z = tf.cast(y_pred, _F64)
    if from_logits:
        return tf.nn.softmax(z, axis=-1) if softmax else tf.sigmoid(z)
    if softmax:
        z = z / tf.reduce_sum(z, axis=-1, keepdims=True)
    return tf.clip_by_value(z, _eps(), 1.0 - _eps())


class _CrossentropyBase(Loss):
    """Shared linearisations of the cross-entropies.

    With ``gauss_newton=True`` (the default) the step uses the generalised
    Gauss-Newton curvature of the cross-entropy on the logits; with
    ``gauss_newton=False`` it uses the square root of the per-sample loss as
    a single residual (``q = 1``), as earlier LM implementations did.
    """

    _softmax = True

    def __init__(self, from_logits: bool = False, gauss_newton: bool = True):
        self.from_logits = bool(from_logits)
        self.gauss_newton = bool(gauss_newton)
        self.curvature_scale = 1.0 if self.gauss_newton else 2.0

    def get_config(self):
        return {"from_logits": self.from_logits, "gauss_newton": self.gauss_newton}

    def residuals_per_sample(self, n_outputs):
        return n_outputs if self.gauss_newton else 1

    def _one_hot(self, y_true, n_outputs):
        return tf.cast(y_true, _F64)

    def linearize(self, y_true, y_pred):
        if not self.gauss_newton:
            return self._sqrt_linearize(y_true, y_pred)
        k = int(y_pred.shape[-1])
        y = self._one_hot(y_true, k)
        p_raw = _probabilities(y_pred, self.from_logits, self._softmax)
        p = tf.clip_by_value(p_raw, _P_MIN, 1.0 - _P_MIN)
        if self._softmax:
            s = tf.sqrt(p)
            # Curvature on the logits: H = diag(p) - p p^T = A A^T with
            # A = diag(s) - p s^T, so F = A^T and F^T e = p - y for
            # e = (p - y) / s (this uses sum(p) == sum(y) == 1).
            p_row = tf.expand_dims(p, 1)
            f = tf.linalg.diag(s) - tf.expand_dims(s, 2) * p_row
            e = (p - y) / s
            if not self.from_logits:
                # Probability outputs: logits = log(p), so dlogits/dp = 1/p.
                f = f / p_row
        else:
            v = tf.sqrt(p * (1.0 - p))
            e = (p - y) / v
            f = tf.linalg.diag(v if self.from_logits else 1.0 / v)
        return e, f

    def curvature_times(self, y_true, y_pred):
        """Closed forms of ``F^T F u`` for :meth:`linearize`'s ``F``.

        Softmax: ``p * u - (2 - sum(p)) p (p . u)`` (``diag(p) - p p^T`` up to
        the clipping of ``p``); sigmoid: ``p (1 - p) u``; with probability
        outputs, divided by ``p`` on both sides (respectively ``p (1 - p)``).
        ``None`` without ``gauss_newton``.
        """
        if not self.gauss_newton:
            return None
        p = _probabilities(y_pred, self.from_logits, self._softmax)
        p = tf.clip_by_value(p, _P_MIN, 1.0 - _P_MIN)
        if not self._softmax:
            v = p * (1.0 - p)
            scale = v if self.from_logits else 1.0 / v
            return lambda u: scale * u
        rank_one = 2.0 - tf.reduce_sum(p, axis=-1, keepdims=True)

        def times(u):
            if not self.from_logits:
                u = u / p
            out = p * u - rank_one * p * tf.reduce_sum(p * u, axis=-1, keepdims=True)
            return out if self.from_logits else out / p

        return times

    def _sqrt_linearize(self, y_true, y_pred):
        z = tf.cast(y_pred, _F64)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            loss = self.sample_losses(y_true, z)
        grad = tape.gradient(loss, z)
        r = tf.sqrt(tf.maximum(loss, 0.0))
        jac = grad / (2.0 * tf.maximum(r, 1e-150))[:, None]
        return r[:, None], jac[:, None, :]


class CategoricalCrossentropy(_CrossentropyBase):
    """Categorical cross-entropy with one-hot (or probability) targets.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits (else probabilities, e.g. softmax).
    gauss_newton : bool, default=True
        Use the generalised Gauss-Newton step (curvature ``diag(p) - p p^T``
        on the logits, ``q = k`` rows per sample). ``False`` uses the square
        root of the per-sample loss as one residual.
    """

    def sample_losses(self, y_true, y_pred):
        y = self._one_hot(y_true, int(y_pred.shape[-1]))
        z = tf.cast(y_pred, _F64)
        if self.from_logits:
            return -tf.reduce_sum(y * tf.nn.log_softmax(z, axis=-1), axis=-1)
        p = _probabilities(z, False, True)
        return -tf.reduce_sum(y * tf.math.log(p), axis=-1)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class targets, shape ``(N,)``.

    Parameters are those of :class:`CategoricalCrossentropy`.
    """

    sparse_targets = True

    def _one_hot(self, y_true, n_outputs):
        return tf.one_hot(tf.reshape(y_true, [-1]), n_outputs, dtype=_F64)


class BinaryCrossentropy(_CrossentropyBase):
    """Binary cross-entropy per output (sigmoid), averaged over outputs.

    Targets are 0/1 arrays shaped like the outputs. Parameters are those of
    :class:`CategoricalCrossentropy`; the Gauss-Newton curvature per output
    is ``p (1 - p)``.
    """

    _softmax = False

    def output_normaliser(self, n_outputs):
        return n_outputs if self.gauss_newton else 1

    def sample_losses(self, y_true, y_pred):
        z = tf.cast(y_pred, _F64)
        y = tf.reshape(tf.cast(y_true, _F64), tf.shape(z))
        if self.from_logits:
            per_output = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)
        else:
            p = _probabilities(z, False, False)
            per_output = -(y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
        if self.gauss_newton:
            return tf.reduce_sum(per_output, axis=-1)
        return tf.reduce_mean(per_output, axis=-1)


class SquaredCategoricalCrossentropy(LogitsResidualLoss):
    """The square of the categorical cross-entropy, one residual per sample.

    ``r_i = CE_i`` (one-hot targets), so ``value = mean(CE**2)``. It pushes
    hardest on the worst-classified samples.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits.
    """

    def residuals(self, y_true, y_pred):
        ce = CategoricalCrossentropy(self.from_logits, gauss_newton=False)
        return ce.sample_losses(y_true, y_pred)[:, None]
