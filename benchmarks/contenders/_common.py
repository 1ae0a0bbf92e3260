"""Code shared by the contenders: the Keras network and the scores."""

from __future__ import annotations

import numpy as np

from ..tasks import Task, glorot_weights

__all__ = [
    "repeat_fit",
    "keras_network",
    "keras_outputs",
    "scores",
    "task_targets",
    "epoch_stop_reason",
]


def keras_network(task: Task, seed: int, dtype: str = "float32"):
    """The task's tanh network as a ``keras.Sequential`` of ``Dense`` layers.

    Its weights are :func:`benchmarks.tasks.glorot_weights` for ``seed``, so
    every contender that accepts given weights starts from the same point.
    """
    import keras

    n_in, hidden, n_out = task.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(n_in,), dtype=dtype),
            keras.layers.Dense(hidden, activation="tanh", dtype=dtype),
            keras.layers.Dense(n_out, dtype=dtype),
        ]
    )
    model.set_weights([w.astype(dtype) for w in glorot_weights(task.layers, seed)])
    return model


def keras_outputs(model, x: np.ndarray, batch: int = 100_000) -> np.ndarray:
    """Model outputs in float64, computed in inference mode by slices."""
    import keras

    parts = []
    for start in range(0, len(x), batch):
        out = model(x[start : start + batch], training=False)
        parts.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64))
    return np.concatenate(parts)


def task_targets(task: Task, dtype: str = "float32"):
    """Training targets shaped for a Keras model: a column, or int labels."""
    if task.kind == "classification":
        return task.y_train.astype(np.int32)
    return task.y_train.astype(dtype).reshape(-1, 1)


def scores(task: Task, train_outputs: np.ndarray, test_outputs=None) -> dict:
    """Training loss and test score from raw network outputs.

    Regression: training MSE and test R^2. Classification (outputs are
    logits): training cross-entropy, training and test accuracy.
    """
    from sklearn.metrics import accuracy_score, log_loss, r2_score

    result: dict = {}
    if task.kind == "regression":
        pred = train_outputs.reshape(-1)
        result["train_loss"] = float(np.mean((pred - task.y_train) ** 2))
        if test_outputs is not None:
            result["test_score"] = float(r2_score(task.y_test, test_outputs.ravel()))
        return result
    shifted = train_outputs - train_outputs.max(axis=1, keepdims=True)
    proba = np.exp(shifted)
    proba /= proba.sum(axis=1, keepdims=True)
    labels = np.arange(train_outputs.shape[1])
    result["train_loss"] = float(log_loss(task.y_train, proba, labels=labels))
    result["train_accuracy"] = float(
        accuracy_score(task.y_train, train_outputs.argmax(axis=1))
    )
    if test_outputs is not None:
        result["test_score"] = float(
            accuracy_score(task.y_test, test_outputs.argmax(axis=1))
        )
    return result


def epoch_stop_reason(done: int, epochs: int, open_ended: bool) -> str:
    """Why an epoch-based fit ended: its epochs, the step cap, budget or cap."""
    if done >= epochs:
        return "max_steps" if open_ended else "epochs"
    return "budget" if open_ended else "time cap"


#: Further fits timed by :func:`repeat_fit` (their median is reported).
REPEAT_FITS = 3


def repeat_fit(est, task: Task) -> float:
    """Median wall time of further, identical fits of clones of ``est``.

    The fits run in the same process, :data:`REPEAT_FITS` of them, each after
    a full garbage collection, so that one collection triggered by earlier
    allocations does not decide the number. For sklearn_lm the clones have
    the same shapes and settings, so they reuse the compiled step of the
    first fit, as the fits of a grid search or cross-validation do after the
    first.
    """
    import gc
    import statistics
    import time
    import warnings

    from sklearn.base import clone

    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(REPEAT_FITS):
            again = clone(est).set_params(verbose=0)
            gc.collect()
            begin = time.perf_counter()
            again.fit(task.x_train, task.y_train)
            times.append(time.perf_counter() - begin)
    return statistics.median(times)
