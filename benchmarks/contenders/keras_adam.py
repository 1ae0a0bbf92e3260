"""Keras' Adam on the identical Keras network.

Hook: a ``keras.callbacks.Callback`` whose ``on_epoch_end`` records the loss.
With full batches, the epoch's ``logs["loss"]`` is the full-data loss (at the
weights before the epoch's single update) and is used as is. With
mini-batches, on the optimisation tasks (sinc, scale), the full-data loss is
evaluated after each epoch with the clock paused; on friedman1 and digits the
epoch's mean mini-batch loss from ``logs`` is recorded (only plotted).
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

__all__ = ["adam"]


def adam(
    task: Task,
    seed: int,
    settings: Settings,
    rec: Recorder,
    batch_size: int | None = None,
    epochs: int | None = None,
    learning_rate: float = 1e-2,
) -> dict:
    """Train with ``keras.optimizers.Adam`` through ``model.fit``.

    Parameters
    ----------
    task, seed, settings, rec
        See :mod:`benchmarks.contenders`.
    batch_size : int, optional
        ``None`` for full batches.
    epochs : int, optional
        Fixed number of epochs; by default train until the budget is spent
        (or, on the scale task, for the step cap).
    learning_rate : float, default=1e-2

    Returns
    -------
    dict
        ``n_iter`` (epochs), ``stop_reason``, ``batch_rows`` and scores.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = keras_network(task, seed)
    x = task.x_train.astype(np.float32)
    y = task.y_train.astype(np.float32).reshape(-1, 1)
    if task.kind == "classification":
        y = task_targets(task)
    n = len(x)
    size = n if batch_size is None else min(batch_size, n)
    steps = math.ceil(n / size)
    open_ended = epochs is None
    if open_ended:
        epochs = settings.scale_max_steps if task.name == "scale" else 10**9

    def full_mse() -> float:
        return float(
            np.mean((keras_outputs(model, task.x_train)[:, 0] - task.y_train) ** 2)
        )

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if open_ended and steps > 1:
                spent = rec.record_evaluated(full_mse, steps)
            else:
                spent = rec.record(float(logs["loss"]), steps)
            if spent:
                self.model.stop_training = True

    if task.kind == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = "mse"
    rec.start()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss
    )
    history = model.fit(
        x,
        y,
        batch_size=size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[Record()],
    )
    rec.stop()
    done = len(history.history.get("loss", []))
    test = keras_outputs(model, task.x_test) if task.x_test is not None else None
    return {
        "n_iter": done,
        "stop_reason": epoch_stop_reason(done, epochs, open_ended),
        "batch_rows": size,
        **scores(task, keras_outputs(model, task.x_train), test),
    }
