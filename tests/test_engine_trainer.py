"""The training loop and the Keras-fit wrapper."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm.engine import LMModel, Trainer, damping, losses

RNG = np.random.default_rng(0)


def _linear(n_in, n_out=1, dtype="float64"):
    return keras.Sequential(
        [keras.Input((n_in,), dtype=dtype), keras.layers.Dense(n_out, dtype=dtype)]
    )


def _mlp(n_in=1, hidden=10, n_out=1, dtype="float64", seed=0):
    return keras.Sequential(
        [
            keras.Input((n_in,), dtype=dtype),
            keras.layers.Dense(
                hidden,
                "tanh",
                dtype=dtype,
                kernel_initializer=keras.initializers.GlorotUniform(seed),
            ),
            keras.layers.Dense(
                n_out,
                dtype=dtype,
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            ),
        ]
    )


def _weights(model):
    return [v.numpy() for v in model.trainable_variables]


def test_linear_least_squares_is_solved_in_one_step():
    x = RNG.standard_normal((50, 3))
    y = x @ [1.0, -2.0, 0.5] + 0.3 + 0.01 * RNG.standard_normal(50)
    model = _linear(3)
    Trainer(model, "mse", damping.Standard(initial=1e-10, min_value=1e-12)).fit(x, y)
    coef, intercept = _weights(model)
    design = np.hstack([x, np.ones((50, 1))])
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[coef.ravel(), intercept], expected, rtol=1e-7)


def test_l2_penalty_gives_the_ridge_solution():
    """Minimise mean((Xw + b - y)^2) + a |w|^2: closed form with unpenalised b."""
    x = RNG.standard_normal((40, 4))
    y = RNG.standard_normal(40)
    a = 0.3
    model = _linear(4)
    Trainer(model, "mse", l2=a).fit(x, y, epochs=20)
    coef, intercept = _weights(model)
    n = len(x)
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.diag([a * n] * 4 + [0.0])
    expected = np.linalg.solve(design.T @ design + penalty, design.T @ y)
    np.testing.assert_allclose(np.r_[coef.ravel(), intercept], expected, rtol=1e-8)


def test_sample_weights_equal_repeated_samples():
    x = RNG.standard_normal((30, 2))
    y = np.sin(x[:, :1]) + x[:, 1:] ** 2
    counts = RNG.integers(1, 4, 30)
    a, b = _mlp(2, seed=1), _mlp(2, seed=1)
    # Losses are divided by the number of samples (as Keras does), so weights
    # with mean 1 make the weighted loss equal the repeated-samples loss.
    weights = counts * len(counts) / counts.sum()
    Trainer(a, "mse").fit(x, y, sample_weight=weights, epochs=5)
    Trainer(b, "mse").fit(np.repeat(x, counts, 0), np.repeat(y, counts, 0), epochs=5)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-9)


def test_minibatches_with_a_smaller_last_batch_and_reproducible_shuffling():
    x = np.linspace(-1, 1, 103)[:, None]
    y = x**3
    runs = []
    for _ in range(2):
        model = _mlp(seed=2)
        trainer = Trainer(model, "mse")
        history = trainer.fit(x, y, epochs=3, batch_size=25, seed=7)
        assert history.n_steps == 3 * 5
        runs.append(_weights(model))
        assert history.history["loss"][-1] < history.history["loss"][0]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dataset_input_matches_arrays():
    x = np.linspace(-1, 1, 64)[:, None]
    y = np.cos(3 * x)
    a, b = _mlp(seed=3), _mlp(seed=3)
    Trainer(a, "mse").fit(x, y, epochs=4, batch_size=16, shuffle=False)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    Trainer(b, "mse").fit(dataset, epochs=4)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-10)
    with pytest.raises(ValueError, match="With a dataset or a generator"):
        Trainer(b).fit(dataset, batch_size=3)


def test_generator_function_and_pydataset_match_arrays():
    x = np.linspace(-1, 1, 60)[:, None]
    y = np.cos(3 * x)

    def batches():
        for start in range(0, 60, 20):
            yield x[start : start + 20], y[start : start + 20]

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return x[20 * i : 20 * i + 20], y[20 * i : 20 * i + 20]

    models = [_mlp(seed=8) for _ in range(3)]
    Trainer(models[0], "mse").fit(x, y, epochs=3, batch_size=20, shuffle=False)
    Trainer(models[1], "mse").fit(batches, epochs=3)
    Trainer(models[2], "mse").fit(Batches(), epochs=3)
    for other in models[1:]:
        for wa, wb in zip(_weights(models[0]), _weights(other), strict=True):
            np.testing.assert_allclose(wa, wb, rtol=1e-10)
    with pytest.raises(ValueError, match="must yield"):
        Trainer(models[1]).fit(lambda: iter([x[:5]]))


def test_callbacks_can_stop_and_see_written_weights():
    x = np.linspace(-1, 1, 50)[:, None]
    model = _mlp(seed=4)
    seen = []

    def callback(epoch, logs):
        seen.append((epoch, _weights(model)[0].copy(), logs["loss"]))
        return epoch == 2

    history = Trainer(model, "mse").fit(x, x**2, epochs=10, callbacks=[callback])
    assert history.stop_reason == "callback" and len(seen) == 3
    assert not np.array_equal(seen[0][1], seen[2][1])
    np.testing.assert_array_equal(seen[-1][1], _weights(model)[0])


def test_errors_name_the_argument():
    model = _mlp()
    x = np.zeros((5, 1))
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        Trainer(model, learning_rate=0)
    with pytest.raises(ValueError, match="Received: max_attempts=0"):
        Trainer(model, max_attempts=0)
    with pytest.raises(ValueError, match="y must have 1 columns"):
        Trainer(model).fit(x, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="same number of samples"):
        Trainer(model).fit(x, np.zeros(4))
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        Trainer(model).fit(x, np.zeros(5), batch_size=0)


def test_memory_check_happens_before_allocating():
    model = _mlp(n_in=1, hidden=50)
    trainer = Trainer(model, memory_limit=1000)
    with pytest.raises(ValueError, match="normal equations need about"):
        trainer.fit(np.zeros((500, 1)), np.zeros(500))
    # A small batch uses the Gram form, which needs no n x n matrix.
    trainer.fit(np.zeros((500, 1)), np.zeros(500), batch_size=10, epochs=1)


def test_lmmodel_uses_keras_fit_with_callbacks_and_validation():
    x = np.linspace(-1, 1, 200)[:, None].astype("float32")
    y = np.sin(3 * x)
    net = _mlp(dtype="float32", seed=6)
    lm = LMModel(net)
    lm.compile(
        loss="mse",
        damping=damping.Fletcher(update="gain_ratio"),
        metrics=["mean_absolute_error"],
    )
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))
    history = lm.fit(
        x,
        y,
        epochs=8,
        batch_size=50,
        validation_data=(x[::3], y[::3]),
        callbacks=[cb],
        verbose=0,
    )
    h = history.history
    assert set(h) >= {"loss", "damping", "attempts", "mean_absolute_error", "val_loss"}
    assert len(h["loss"]) == 8 and len(seen) == 8
    assert h["loss"][-1] < 0.1 * h["loss"][0]
    mse = float(np.mean((net.predict(x, verbose=0) - y) ** 2))
    val_mse = float(np.mean((net.predict(x[::3], verbose=0) - y[::3]) ** 2))
    np.testing.assert_allclose(h["val_loss"][-1], val_mse, rtol=1e-4)
    assert mse < 0.1 * h["loss"][0]
    assert all(a >= 1 for a in h["attempts"])


@pytest.mark.slow
def test_sinc_curve_fit_reaches_1e7():
    # float64: at 1e-7 the float32 round-off of J^T J limits the steps.
    x = np.linspace(-1, 1, 20000)[:, None]
    y = np.sinc(10 * x)
    model = keras.Sequential(
        [
            keras.Input((1,), dtype="float64"),
            keras.layers.Dense(
                20,
                "tanh",
                kernel_initializer=keras.initializers.GlorotUniform(0),
                dtype="float64",
            ),
            keras.layers.Dense(
                1,
                kernel_initializer=keras.initializers.GlorotUniform(1),
                dtype="float64",
            ),
        ]
    )
    trainer = Trainer(model, "mse", damping.Fletcher(update="gain_ratio"))
    history = trainer.fit(
        x,
        y,
        epochs=600,
        callbacks=[lambda epoch, logs: logs["loss"] < 1e-7],
    )
    assert history.stop_reason == "callback", history
    mse = float(np.mean((model.predict(x, verbose=0, batch_size=20000) - y) ** 2))
    assert mse < 1e-7


@pytest.mark.slow
def test_classification_beats_adam_in_far_fewer_epochs():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    train, test = slice(0, 1400), slice(1400, None)

    def net():
        return keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(
                    20, "tanh", kernel_initializer=keras.initializers.GlorotUniform(0)
                ),
                keras.layers.Dense(
                    10, kernel_initializer=keras.initializers.GlorotUniform(1)
                ),
            ]
        )

    lm_net = net()
    Trainer(
        lm_net, losses.SparseCategoricalCrossentropy(from_logits=True), l2=1e-4
    ).fit(x[train], y[train], epochs=25)
    lm_acc = np.mean(np.argmax(lm_net.predict(x[test], verbose=0), 1) == y[test])

    adam_net = net()
    adam_net.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    adam_net.fit(x[train], y[train], epochs=250, batch_size=1400, verbose=0)
    adam_acc = np.mean(np.argmax(adam_net.predict(x[test], verbose=0), 1) == y[test])
    assert lm_acc >= adam_acc - 0.005, (lm_acc, adam_acc)
    assert lm_acc > 0.9


def test_compiled_steps_are_shared_between_same_shaped_fits():
    """Grid searches over the initial damping must not trace again."""
    x = np.linspace(-1, 1, 40)[:, None]
    a = Trainer(_mlp(seed=1), "mse", damping.Standard(initial=1e-3))
    b = Trainer(_mlp(seed=2), "mse", damping.Standard(initial=1.0))
    c = Trainer(_mlp(seed=2), "mse", damping.Standard(initial=1.0, decrease=0.5))
    fa = a._functions(*a._prepare(x, x, None)[:2])
    fb = b._functions(*b._prepare(x, x, None)[:2])
    fc = c._functions(*c._prepare(x, x, None)[:2])
    assert fa.step is fb.step and fa.epoch is fb.epoch
    assert fc.step is not fa.step


def test_crossentropy_on_a_conv_model_with_softmax_outputs():
    """The autodiff path with a non-Dense model and probability outputs."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((60, 5, 5, 1)).astype("float32")
    y = (x[:, 2, 2, 0] > 0).astype("int32") + (x[:, 0, 0, 0] > 1).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((5, 5, 1)),
            keras.layers.Conv2D(2, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    trainer = Trainer(model, "sparse_categorical_crossentropy")
    before = trainer.evaluate(x, y)
    history = trainer.fit(x, y, epochs=5)
    reference = float(keras.losses.SparseCategoricalCrossentropy()(y, model(x)))
    np.testing.assert_allclose(trainer.evaluate(x, y), reference, rtol=1e-5)
    assert history.history["loss"][-1] < 0.5 * before
