"""Train any Keras model by LM through Keras' own ``fit``."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from . import covariance
from . import damping as damping_module
from . import losses as losses_module
from .config import StepConfig
from .dense_chain import model_function
from .signature import model_signature
from .status import Status, from_graph_code
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


class _StopOnStepStatus(keras.callbacks.Callback):
    """Ends Keras' ``fit`` once a step reported a reason to stop."""

    def on_train_batch_end(self, batch, logs=None):
        if self.model._step_status() is not None:
            self.model.stop_training = True


class LMModel(keras.Model):
    """Wrap a Keras model so that ``fit`` trains it by Levenberg-Marquardt.

    Everything else is Keras' own: callbacks, the progress bar,
    ``validation_data``, ``keras.callbacks.History``. The wrapped model's
    weights are updated in place; predict with either object. Training also
    stops when a step reports a reason to (a non-finite loss, or lambda at
    its maximum), recorded in :attr:`stop_status`.

    Parameters
    ----------
    model : keras.Model
        A built model with one input and one output, as for
        :class:`~sklearn_lm.engine.Trainer` (several inputs or outputs raise
        ``ValueError``). Keras' ``fit`` casts NumPy float arrays to
        ``keras.config.floatx()``: to train a float64 model on float64 data
        without changing ``floatx``, pass a ``tf.data.Dataset`` of float64
        tensors (or use :class:`~sklearn_lm.engine.Trainer`). The
        convergence tests of ``Trainer.fit`` (``ftol``, ``xtol``, ``gtol``)
        are not applied here.
    **kwargs
        Passed to ``keras.Model``.

    Attributes
    ----------
    config : StepConfig
        The step settings (after :meth:`compile`).
    stop_status : Status or None
        Why the last ``fit`` stopped (``None`` before one ends):
        ``Status.DAMPING_MAX`` or ``Status.NON_FINITE`` when a step stopped
        it, ``Status.CALLBACK`` when a Keras callback set
        ``stop_training``, else ``Status.MAX_EPOCHS``.

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
    >>> lm.stop_status
    <Status.MAX_EPOCHS: 'max_epochs'>
    """

    def __init__(self, model: keras.Model, **kwargs: Any):
        super().__init__(**kwargs)
        model_signature(model)  # one input and one output, or ValueError
        self.network = model
        self._lm = None
        self._fit_status: Status | None = None
        self.damping_tracker = _LastValue("damping")
        self.attempts_tracker = keras.metrics.Mean(name="attempts", dtype="float64")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def compile(
        self,
        loss: str | losses_module.Loss = "mse",
        damping: str | damping_module.Damping = "standard",
        *,
        jacobian: str = "auto",
        metrics: list | None = None,
        weighted_metrics: list | None = None,
        run_eagerly: bool = False,
        **step_options: Any,
    ) -> None:
        """Configure LM training.

        Parameters
        ----------
        loss, damping, jacobian
            As for :class:`~sklearn_lm.engine.Trainer`.
        metrics, weighted_metrics, run_eagerly
            As for ``keras.Model.compile``. No optimizer is used.
        **step_options
            Fields of :class:`~sklearn_lm.engine.config.StepConfig`
            (``learning_rate``, ``max_attempts``, ``l2``, ``chunk_size``,
            ``geodesic``, ``geodesic_ratio``, ``solver``, ``cg_max_iter``,
            ``cg_rtol``, ...), as for :class:`~sklearn_lm.engine.Trainer`.
            An unknown name raises ``TypeError``; ``bayesian=True`` raises
            ``ValueError`` (use :class:`~sklearn_lm.engine.Trainer`).
        """
        config = StepConfig.from_options(loss, damping, step_options)
        if config.bayesian:
            raise ValueError(
                "LMModel does not support bayesian=True yet (Keras' fit runs "
                "mini-batch steps); use sklearn_lm.engine.Trainer. Received: "
                "bayesian=True"
            )
        self.config = config
        self.lm_loss = config.loss
        self.lm_damping = config.damping
        self._fn = model_function(self.network, jacobian)
        self._lm = LMStep(self._fn, config.for_model(self._fn))
        self._lam = tf.Variable(
            self.lm_damping.initial, dtype=tf.float64, trainable=False
        )
        self._nu = tf.Variable(2.0, dtype=tf.float64, trainable=False)
        # The last step's stop code (an index into status.GRAPH_CODES).
        self._stop_code = tf.Variable(0, dtype=tf.int32, trainable=False)
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
        return self._step_status() is Status.DAMPING_MAX

    @property
    def stop_status(self) -> Status | None:
        """Why the last ``fit`` stopped; ``None`` before one ends."""
        return self._fit_status

    def _step_status(self) -> Status | None:
        """What the last step reported (``None``: go on)."""
        return from_graph_code(self._stop_code.numpy())

    def _prepare(self, x, y, sample_weight):
        # In the dtype the model declares for its input (ModelFunction).
        x = tf.cast(x, self._fn.input_dtype)
        y = self.lm_loss.prepare_targets(y)
        if not self.lm_loss.sparse_targets and y.shape.rank == 1:
            y = y[:, None]
        n = tf.shape(x)[0]
        if sample_weight is None:
            sw = tf.ones([n], tf.float64)
        else:
            sw = tf.reshape(tf.cast(sample_weight, tf.float64), [-1])
        return x, y, sw

    def parameter_covariance(
        self, x, y, sample_weight=None, *, absolute_sigma: bool = False
    ) -> covariance.ParameterCovariance:
        """Covariance of the weights (after :meth:`compile`); see
        :meth:`Trainer.parameter_covariance
        <sklearn_lm.engine.Trainer.parameter_covariance>`."""
        if self._lm is None:
            raise RuntimeError("Call LMModel.compile(...) before parameter_covariance.")
        return covariance.parameter_covariance(
            self._fn, self.lm_loss, x, y, sample_weight, absolute_sigma=absolute_sigma
        )

    def train_step(self, data):
        if self._lm is None:
            raise RuntimeError("Call LMModel.compile(...) before fit.")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y, sw = self._prepare(x, y, sample_weight)
        res = self._lm.step(self._fn.get_weights(), self._lam, self._nu, x, y, sw)
        self._fn.set_weights(res.weights)
        self._lam.assign(res.damping)
        self._nu.assign(res.nu)
        self._stop_code.assign(res.stop)
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
        """Keras' ``fit``; training also stops when a step reports a reason
        to (:attr:`stop_status`)."""
        if self._lm is None:
            raise RuntimeError("Call LMModel.compile(...) before fit.")
        self._fit_status = None
        self._stop_code.assign(0)
        callbacks = [*(callbacks or []), _StopOnStepStatus()]
        history = super().fit(*args, callbacks=callbacks, **kwargs)
        step = self._step_status()
        if step is not None:
            self._fit_status = step
        else:
            self._fit_status = (
                Status.CALLBACK if self.stop_training else Status.MAX_EPOCHS
            )
        return history
