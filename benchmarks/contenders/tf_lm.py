"""The earlier TensorFlow LM package, ``tf-levenberg-marquardt`` 1.0.3.

It is not a dependency of sklearn_lm; install it on its own with
``pip install --no-deps tf-levenberg-marquardt==1.0.3``. Without it the
contender is skipped.

Set-up as in the package's README and curve-fitting example: the network is
wrapped in ``tf_levenberg_marquardt.model.ModelWrapper``, compiled with
``optimizer=SGD(learning_rate)`` and the package's loss, and fitted on a
``tf.data.Dataset`` that is shuffled once, batched, cached and prefetched.
Hook: a Keras callback at the end of each epoch (with mini-batches the
full-data loss is evaluated with the clock paused on the sinc task).
"""

from __future__ import annotations

import math

import numpy as np

from ..clock import Recorder
from ..config import Settings
from ..tasks import Task
from ._common import (
    epoch_stop_reason,
    keras_network,
    keras_outputs,
    scores,
    task_targets,
)

__all__ = ["tf_lm"]


def tf_lm(
    task: Task,
    seed: int,
    settings: Settings,
    rec: Recorder,
    batch_size: int | None = 1000,
    epochs: int | None = None,
    learning_rate: float = 1.0,
) -> dict:
    """Train with ``tf_levenberg_marquardt.model.ModelWrapper.fit``.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.
    batch_size : int or None, default=1000
        ``None`` for one batch of all samples.
    epochs : int, optional
        Fixed number of epochs; by default until the budget is spent (or,
        on the scale task, the step cap).
    learning_rate : float, default=1.0
        Of the ``SGD`` optimiser that applies the LM update.

    Returns
    -------
    dict
        ``n_iter`` (epochs), ``attempts``, ``stop_reason``, ``batch_rows`` and
        scores.
    """
    import keras
    import tensorflow as tf
    import tf_levenberg_marquardt as tflm

    keras.utils.set_random_seed(seed)
    model = keras_network(task, seed)
    x = task.x_train.astype(np.float32)
    y = task_targets(task)
    n = len(x)
    size = n if batch_size is None else min(batch_size, n)
    steps = math.ceil(n / size)
    open_ended = epochs is None
    if open_ended:
        epochs = settings.scale_max_steps if task.name == "scale" else 10**9
    attempts: list[float] = []

    def full_mse() -> float:
        return float(
            np.mean((keras_outputs(model, task.x_train)[:, 0] - task.y_train) ** 2)
        )

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            attempts.append(float(logs.get("attempts", np.nan)))
            if open_ended and steps > 1:
                spent = rec.record_evaluated(full_mse, steps)
            else:
                spent = rec.record(float(logs["loss"]), steps)
            if spent:
                self.model.stop_training = True

    if task.kind == "classification":
        loss = tflm.loss.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = tflm.loss.MeanSquaredError()
    rec.start()
    data = tf.data.Dataset.from_tensor_slices((x, y))
    data = data.shuffle(n, seed=seed).batch(size).cache().prefetch(tf.data.AUTOTUNE)
    wrapper = tflm.model.ModelWrapper(model)
    wrapper.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss=loss
    )
    history = wrapper.fit(data, epochs=epochs, verbose=0, callbacks=[Record()])
    rec.stop()
    done = len(history.history.get("loss", []))
    skip = min(settings.skip_steps, max(len(attempts) - 1, 0))
    test = keras_outputs(model, task.x_test) if task.x_test is not None else None
    return {
        "n_iter": done,
        "attempts": float(np.nanmean(attempts[skip:])) if attempts else None,
        "stop_reason": epoch_stop_reason(done, epochs, open_ended),
        "batch_rows": size,
        **scores(task, keras_outputs(model, task.x_train), test),
    }
