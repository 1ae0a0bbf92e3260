"""The training record (TrainingHistory) and the per-step callbacks of Trainer."""

import functools

import keras
import numpy as np
import pytest

from sklearn_lm.engine import Status, Trainer, TrainingHistory

RNG = np.random.default_rng(0)
X = np.linspace(-1, 1, 100)[:, None]
Y = np.sin(3 * X)


def _mlp(seed=0):
    init = keras.initializers.GlorotUniform
    dense = functools.partial(keras.layers.Dense, dtype="float64")
    return keras.Sequential(
        [
            keras.Input((1,), dtype="float64"),
            dense(6, "tanh", kernel_initializer=init(seed)),
            dense(1, kernel_initializer=init(seed + 1)),
        ]
    )


def _history(losses, scores=None, stop=Status.MAX_EPOCHS):
    history = TrainingHistory()
    for k, loss in enumerate(losses):
        logs = {"loss": loss, "damping": 0.1 * (k + 1), "attempts": 1, "time": 0.5}
        if scores is not None:
            logs["validation_score"] = scores[k]
        history.record(k, logs)
    history.n_steps = len(losses)
    history.stop_reason = stop
    history.best_epoch = (
        int(np.argmin(losses)) if scores is None else int(np.argmax(scores))
    )
    return history


def test_extend_appends_and_keeps_the_better_best_epoch():
    first = _history([3.0, 1.0, 2.0])
    first.extend(_history([0.5, 0.7], stop=Status.NO_IMPROVEMENT))
    assert first.history["loss"] == [3.0, 1.0, 2.0, 0.5, 0.7]
    assert first.history["time"] == [0.5] * 5
    assert first.epoch == [0, 1, 2, 0, 1]
    assert first.n_steps == 5
    assert first.stop_reason is Status.NO_IMPROVEMENT
    assert first.best_epoch == 3  # the lowest loss over both
    first.extend(_history([0.9]))
    assert first.best_epoch == 3


def test_extend_of_an_empty_history_copies_the_other():
    other = _history([1.0, 0.5], scores=[0.2, 0.1])
    history = TrainingHistory()
    history.extend(other)
    assert history.history == other.history
    assert history.best_epoch == 0  # the best validation score, not loss


def test_to_dataframe_has_one_row_per_epoch():
    pd = pytest.importorskip("pandas")
    history = _history([3.0, 1.0], scores=[0.1, 0.4])
    frame = history.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [0, 1] and frame.index.name == "epoch"
    assert set(frame.columns) == {
        "loss",
        "damping",
        "attempts",
        "time",
        "validation_score",
    }
    np.testing.assert_array_equal(frame["loss"], [3.0, 1.0])
    np.testing.assert_array_equal(frame["validation_score"], [0.1, 0.4])


def test_to_dataframe_without_pandas_names_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="needs pandas"):
        _history([1.0]).to_dataframe()


def test_fit_records_positive_epoch_times():
    trainer = Trainer(_mlp(), "mse")
    history = trainer.fit(X, Y, epochs=4)
    times = history.history["time"]
    assert len(times) == 4 and all(t > 0 for t in times)


class _Steps:
    def __init__(self):
        self.calls = []

    def __call__(self, step, logs):
        self.calls.append((step, dict(logs)))


def test_full_batch_epochs_call_step_callbacks_once_each():
    steps = _Steps()
    history = Trainer(_mlp(), "mse").fit(X, Y, epochs=3, step_callbacks=[steps])
    assert [s for s, _ in steps.calls] == [0, 0, 0]
    assert [logs["loss"] for _, logs in steps.calls] == history.history["loss"]
    assert [logs["damping"] for _, logs in steps.calls] == history.history["damping"]
    for _, logs in steps.calls:
        assert set(logs) == {"loss", "initial_loss", "damping", "attempts", "accepted"}


def test_mini_batch_epochs_step_by_step_match_the_compiled_epoch():
    """With step callbacks the epoch runs one compiled step per batch: the
    same batches and steps as the one-graph epoch."""
    reference = _mlp()
    expected = Trainer(reference, "mse").fit(X, Y, epochs=2, batch_size=30, seed=3)
    steps = _Steps()
    model = _mlp()
    history = Trainer(model, "mse").fit(
        X, Y, epochs=2, batch_size=30, seed=3, step_callbacks=[steps]
    )
    assert [s for s, _ in steps.calls] == [0, 1, 2, 3] * 2
    losses = [logs["loss"] for _, logs in steps.calls]
    np.testing.assert_allclose(
        history.history["loss"], [np.mean(losses[:4]), np.mean(losses[4:])]
    )
    np.testing.assert_allclose(
        history.history["loss"], expected.history["loss"], rtol=1e-10
    )
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def test_step_callbacks_must_be_callables():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(TypeError, match="step_callbacks must be callables"):
        Trainer(model, "mse").fit(np.ones((4, 1)), np.ones(4), step_callbacks=[1])
