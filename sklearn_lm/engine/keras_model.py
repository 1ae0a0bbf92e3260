"""Train any Keras model by LM through Keras' own ``fit``."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from . import damping as damping_module
from . import losses as losses_module
from .jacobian import model_function
from .step import LMStep

__all__ = ["LMModel"]


class _LastValue(keras.metrics.Metric):
    """A metric that reports the last value it was given (for lambda)."""

    def __init__(self, name: str):
        super().__init__(name=name, dtype="float64")
        self.value = self.add_variable(shape=(), initializer="zeros", dtype="float64")

    def update_state(self, value):
        self.value.assign(tf.cast(value, tf.float64))

    def result(self):
        return self.value

    def reset_state(self):
        # Keras resets metrics before validation; lambda is state, not a
        # running statistic, so the last value is kept.
        pass


class _StopAtMaxDamping(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model.damping_exhausted:
            self.model.stop_training = True


class LMModel(keras.Model):
    """Wrap a Keras model so that ``fit`` trains it by Levenberg-Marquardt.

    Everything else is Keras' own: callbacks, the progress bar,
    ``validation_data``, ``History``. The wrapped model's weights are updated
    in place; predict with either object.

    Parameters
    ----------
    model : keras.Model
        A built model with one input and one output.
    **kwargs
        Passed to ``keras.Model``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sklearn_lm.engine import LMModel
    >>> x = np.linspace(-1, 1, 128)[:, None].astype("float32")
    >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"),
    ...                         keras.layers.Dense(1)])
    >>> lm = LMModel(net)
    >>> lm.compile(loss="mse", damping="fletcher")
    >>> history = lm.fit(x, x**2, epochs=10, batch_size=128, verbose=0)
    >>> sorted(history.history)
    ['attempts', 'damping', 'loss']
    """

    def __init__(self, model: keras.Model, **kwargs: Any):
        super().__init__(**kwargs)
        self.network = model
        self._lm = None
        self.damping_tracker = _LastValue("damping")
        self.attempts_tracker = keras.metrics.Mean(name="attempts", dtype="float64")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compile(
        self,
        loss: str | losses_module.Loss = "mse",
        damping: str | damping_module.Damping = "standard",
        *,
        learning_rate: float = 1.0,
        max_attempts: int = 10,
        l2: float = 0.0,
        jacobian: str = "auto",
        chunk_size: int | None = None,
        geodesic: bool = True,
        geodesic_ratio: float = 0.75,
        solver: str = "direct",
        cg_max_iter: int = 5,
        cg_rtol: float = 1e-3,
        metrics: list | None = None,
        weighted_metrics: list | None = None,
        run_eagerly: bool = False,
    ) -> None:
        """Configure LM training.

        Parameters
        ----------
        loss, damping, learning_rate, max_attempts, l2, jacobian, chunk_size
            As for :class:`~sklearn_lm.engine.Trainer`.
        geodesic, geodesic_ratio, solver, cg_max_iter, cg_rtol
            As for :class:`~sklearn_lm.engine.Trainer`.
        metrics, weighted_metrics, run_eagerly
            As for ``keras.Model.compile``. No optimizer is used.
        """
        from .loop import Trainer  # validates arguments the same way

        checked = Trainer(
            self.network,
            loss,
            damping,
            learning_rate=learning_rate,
            max_attempts=max_attempts,
            l2=l2,
            jacobian=jacobian,
            chunk_size=chunk_size,
            geodesic=geodesic,
            geodesic_ratio=geodesic_ratio,
            solver=solver,
            cg_max_iter=cg_max_iter,
            cg_rtol=cg_rtol,
        )
        self.lm_loss = checked.loss
        self.lm_damping = checked.damping
        self._fn = model_function(self.network, jacobian)
        self._lm = LMStep(self._fn, checked.config)
        self._lam = tf.Variable(
            self.lm_damping.initial, dtype=tf.float64, trainable=False
        )
        self._nu = tf.Variable(2.0, dtype=tf.float64, trainable=False)
        self._exhausted = tf.Variable(False, trainable=False)
        super().compile(
            optimizer=None,
            loss=None,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            run_eagerly=run_eagerly,
            jit_compile=False,
        )

    @property
    def damping_value(self) -> float:
        """The current damping factor lambda."""
        return float(self._lam.numpy())

    @property
    def damping_exhausted(self) -> bool:
        """Whether the last step failed with lambda at its maximum."""
        return bool(self._exhausted.numpy())

    def _prepare(self, x, y, sample_weight):
        x = tf.cast(x, self._fn.dtype) if hasattr(self._fn, "layers") else x
        y = self.lm_loss.prepare_targets(y)
        if not self.lm_loss.sparse_targets and y.shape.rank == 1:
            y = y[:, None]
        n = tf.shape(x)[0]
        if sample_weight is None:
            sw = tf.ones([n], tf.float64)
        else:
            sw = tf.reshape(tf.cast(sample_weight, tf.float64), [-1])
        return x, y, sw

    def train_step(self, data):
        if self._lm is None:
            raise RuntimeError("Call LMModel.compile(...) before fit.")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y, sw = self._prepare(x, y, sample_weight)
        res = self._lm.step(self._fn.get_weights(), self._lam, self._nu, x, y, sw)
        self._fn.set_weights(res.weights)
        self._lam.assign(res.damping)
        self._nu.assign(res.nu)
        self._exhausted.assign(
            tf.logical_and(
                tf.logical_not(res.accepted), res.damping >= self.lm_damping.max_value
            )
        )
        self._loss_tracker.update_state(res.loss, sample_weight=tf.shape(x)[0])
        self.damping_tracker.update_state(res.damping)
        self.attempts_tracker.update_state(tf.cast(res.attempts, tf.float64))
        y_pred = self.network(x, training=False)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y, sw = self._prepare(x, y, sample_weight)
        y_pred = self.network(x, training=False)
        loss = self.lm_loss(y, y_pred, sw)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return {k: v for k, v in logs.items() if k not in ("damping", "attempts")}

    def fit(self, *args, callbacks=None, **kwargs):
        """Keras' ``fit``; training also stops when lambda reaches its maximum."""
        callbacks = list(callbacks or []) + [_StopAtMaxDamping()]
        return super().fit(*args, callbacks=callbacks, **kwargs)
