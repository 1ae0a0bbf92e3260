"""The stopping rules of Trainer.fit and LMModel, each giving its Status."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import sklearn_lm.engine as engine
from sklearn_lm.engine import LMModel, Status, StepConfig, Trainer, damping
from sklearn_lm.engine.stopping import EpochEnd, EvidencePlateau, NoImprovement

RNG = np.random.default_rng(0)


#: Trainer.fit's convergence tests off, for tests of the other rules.
NO_CONVERGENCE_TESTS = {"ftol": None, "xtol": None, "gtol": None}


def _linear(n_in, dtype="float64"):
    return keras.Sequential(
        [keras.Input((n_in,), dtype=dtype), keras.layers.Dense(1, dtype=dtype)]
    )


def _mlp(seed=0, hidden=10):
    """A float64 1-hidden-10-1 tanh network with seeded Glorot kernels."""
    init = keras.initializers.GlorotUniform
    dense = functools.partial(keras.layers.Dense, dtype="float64")
    return keras.Sequential(
        [
            keras.Input((1,), dtype="float64"),
            dense(hidden, "tanh", kernel_initializer=init(seed)),
            dense(1, kernel_initializer=init(seed + 1)),
        ]
    )


def _weights(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


class _Singular(damping.Damping):
    """Damping that adds nothing: with zero inputs J^T J alone is singular."""

    def diagonal(self, curvature_diagonal):
        return tf.zeros_like(curvature_diagonal)


def _first_stop(values, tol, patience):
    """Reference: the 1-based epoch after which the no-improvement rule fires
    (higher values are better), recomputing the best of all earlier values
    at every epoch; None if it never fires."""
    run = 0
    for k, value in enumerate(values):
        best_before = max(values[:k], default=-np.inf)
        run = run + 1 if value < best_before + tol else 0
        if run >= patience:
            return k + 1
    return None


# ---------------------------------------------------------------------------
# The no-improvement rule
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_no_improvement_counts_like_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    values = list(np.cumsum(rng.normal(0.0, 1.0, 60)))
    tol, patience = 0.3, 3
    rule = NoImprovement(tol, patience)
    stopped = None
    for k, value in enumerate(values):
        rule.update(value, k)
        if rule.fired:
            stopped = k + 1
            break
    assert stopped == _first_stop(values, tol, patience)
    seen = values[: stopped or len(values)]
    assert rule.best == max(seen)
    assert rule.best_index == int(np.argmax(seen))


@pytest.mark.parametrize("seed", range(3))
def test_evidence_plateau_fires_like_the_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    values = list(np.cumsum(rng.normal(0.2, 1.0, 80)))
    rule = EvidencePlateau(tol=0.5, patience=3)
    stopped = None
    for k, value in enumerate(values):
        if rule.fired(EpochEnd(None, k, k, {"log_evidence": value}, None, 0.0)):
            stopped = k + 1
            break
    assert stopped == _first_stop(values, 0.5, 3)
    assert rule.status is Status.NO_IMPROVEMENT and "0.5 nats" in rule.message


def test_evidence_plateau_needs_finite_evidence():
    rule = EvidencePlateau(tol=1.0, patience=1)
    end = functools.partial(EpochEnd, None, 0, 0, step=None, elapsed=0.0)
    # Records without a finite log evidence never fire, and reset the count.
    assert not rule.fired(end({"loss": 1.0}))
    assert not rule.fired(end({"log_evidence": -10.0}))
    assert not rule.fired(end({"log_evidence": float("nan")}))
    assert rule.fired(end({"log_evidence": -10.5}))
    with pytest.raises(ValueError, match="patience"):
        EvidencePlateau(tol=1.0, patience=0)


def test_no_improvement_after_exactly_patience_epochs():
    """Linear least squares is solved by the first step; no later epoch
    lowers the loss by 1e-10, so training stops after 1 + patience epochs."""
    x = RNG.standard_normal((50, 3))
    y = x @ [1.0, -2.0, 0.5] + 0.3 + 0.01 * RNG.standard_normal(50)
    design = np.hstack([x, np.ones((50, 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    strategy = damping.Standard(initial=1e-10, min_value=1e-12, max_value=1e60)
    for patience in (1, 3):
        trainer = Trainer(_linear(3), "mse", strategy)
        # The convergence tests off: ftol would end the fit at epoch 2.
        history = trainer.fit(
            x, y, epochs=20, tol=1e-10, patience=patience, **NO_CONVERGENCE_TESTS
        )
        assert history.stop_reason is Status.NO_IMPROVEMENT
        assert history.stop_reason.converged
        assert len(history.epoch) == 1 + patience
        np.testing.assert_allclose(
            history.history["loss"][0], np.mean(residual**2), rtol=1e-8
        )
    # With tol=0 an unchanged loss counts as an improvement: all epochs run.
    history = Trainer(_linear(3), "mse", strategy).fit(
        x, y, epochs=6, tol=0.0, patience=1, **NO_CONVERGENCE_TESTS
    )
    assert history.stop_reason is Status.MAX_EPOCHS
    assert len(history.epoch) == 6


def test_default_is_all_epochs_with_a_record():
    x = np.linspace(-1, 1, 40)[:, None]
    history = Trainer(_mlp(), "mse").fit(x, x**2, epochs=4)
    assert history.stop_reason is Status.MAX_EPOCHS
    assert not history.stop_reason.converged
    assert history.message == "completed the requested epochs"
    assert sorted(history.history) == ["attempts", "damping", "loss", "time"]
    assert all(len(v) == 4 for v in history.history.values())
    assert all(t > 0 for t in history.history["time"])
    assert history.best_epoch == int(np.argmin(history.history["loss"]))


def test_time_limit_zero_stops_after_one_epoch():
    x = np.linspace(-1, 1, 40)[:, None]
    history = Trainer(_mlp(), "mse").fit(x, x**2, epochs=5, time_limit=0)
    assert history.stop_reason is Status.TIME_LIMIT
    assert not history.stop_reason.converged
    assert len(history.epoch) == 1


# ---------------------------------------------------------------------------
# A validation score
# ---------------------------------------------------------------------------
def _validation_setup():
    """Training moves the outputs from about 0 to x**2 in damped steps, so
    minus the error to 0.5 x**2 rises, then falls: its best epoch is inside."""
    x = np.linspace(-1, 1, 64)[:, None]
    model = _mlp(seed=3)

    def score():
        return -float(np.mean((model(x).numpy() - 0.5 * x**2) ** 2))

    return x, model, score


@pytest.mark.parametrize("restore_best", [True, False])
def test_validation_restores_the_weights_of_the_best_epoch(restore_best):
    x, model, score = _validation_setup()
    seen = []
    history = Trainer(model, "mse", learning_rate=0.2).fit(
        x,
        x**2,
        epochs=12,
        validation=score,
        restore_best=restore_best,
        callbacks=[lambda epoch, logs: seen.append(_weights(model))],
    )
    scores = history.history["validation_score"]
    assert len(scores) == 12 and history.stop_reason is Status.MAX_EPOCHS
    best = history.best_epoch
    assert best == int(np.argmax(scores)) and 0 < best < 11
    kept = seen[best] if restore_best else seen[-1]
    for now, then in zip(_weights(model), kept, strict=True):
        np.testing.assert_array_equal(now, then)
    # The score recomputed on the weights the model now holds.
    assert score() == (scores[best] if restore_best else scores[-1])


def test_validation_score_drives_no_improvement():
    x, model, score = _validation_setup()
    patience = 2
    history = Trainer(model, "mse", learning_rate=0.2).fit(
        x, x**2, epochs=30, validation=score, tol=0.0, patience=patience
    )
    scores = history.history["validation_score"]
    assert history.stop_reason is Status.NO_IMPROVEMENT
    assert len(scores) == _first_stop(scores, 0.0, patience)
    assert score() == max(scores)


def test_stopping_arguments_are_checked():
    x = np.zeros((5, 1))
    trainer = Trainer(_mlp())
    with pytest.raises(ValueError, match="Received: patience=0"):
        trainer.fit(x, x, patience=0)
    with pytest.raises(ValueError, match="Received: tol=-1"):
        trainer.fit(x, x, tol=-1)
    with pytest.raises(ValueError, match="Received: time_limit=-1"):
        trainer.fit(x, x, time_limit=-1)
    with pytest.raises(TypeError, match="Received: validation=0.5"):
        trainer.fit(x, x, validation=0.5)


# ---------------------------------------------------------------------------
# Stops reported by the steps
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [None, 4], ids=["full", "compiled_epoch"])
def test_non_finite_loss_stops(batch_size):
    x = np.linspace(-1, 1, 20)[:, None]
    x[9] = np.nan
    history = Trainer(_mlp(), "mse").fit(
        x, np.ones(20), epochs=5, batch_size=batch_size, shuffle=False
    )
    assert history.stop_reason is Status.NON_FINITE
    assert len(history.epoch) == 1
    # Mini-batches: the epoch ends at the batch holding the NaN (the third).
    assert history.n_steps == (1 if batch_size is None else 3)


@pytest.mark.parametrize("batch_size", [None, 5], ids=["full", "compiled_epoch"])
def test_damping_at_its_maximum_stops(batch_size):
    model = keras.Sequential(
        [keras.Input((2,), dtype="float64"), keras.layers.Dense(2, dtype="float64")]
    )
    trainer = Trainer(model, "mse", _Singular(initial=1.0, max_value=100.0))
    x = np.zeros((10, 2))
    y = RNG.standard_normal((10, 2))
    history = trainer.fit(
        x, y, epochs=5, batch_size=batch_size, shuffle=False, **NO_CONVERGENCE_TESTS
    )
    assert history.stop_reason is Status.DAMPING_MAX and history.stop_reason.converged
    assert trainer.damping_value == 100.0


# ---------------------------------------------------------------------------
# LMModel
# ---------------------------------------------------------------------------
def test_lmmodel_stop_status():
    x = np.zeros((10, 2))
    y = RNG.standard_normal((10, 2))
    net = keras.Sequential(
        [keras.Input((2,), dtype="float64"), keras.layers.Dense(2, dtype="float64")]
    )
    lm = LMModel(net)
    lm.compile(loss="mse", damping=_Singular(initial=1.0, max_value=100.0))
    assert lm.stop_status is None
    history = lm.fit(x, y, epochs=20, batch_size=10, verbose=0)
    assert lm.stop_status is Status.DAMPING_MAX and lm.damping_exhausted
    assert len(history.history["loss"]) < 20

    lm = LMModel(_mlp())
    lm.compile(loss="mse")
    lm.fit(np.linspace(-1, 1, 20)[:, None], np.ones(20), epochs=2, verbose=0)
    assert lm.stop_status is Status.MAX_EPOCHS and not lm.damping_exhausted

    def stop(epoch, logs):
        lm.stop_training = True

    cb = keras.callbacks.LambdaCallback(on_epoch_end=stop)
    history = lm.fit(np.ones((8, 1)), np.ones(8), epochs=5, callbacks=[cb], verbose=0)
    assert lm.stop_status is Status.CALLBACK
    assert len(history.history["loss"]) == 1


# ---------------------------------------------------------------------------
# Step options and deprecated names
# ---------------------------------------------------------------------------
def test_unknown_step_option_is_named():
    with pytest.raises(TypeError, match="learnin_rate") as error:
        Trainer(_mlp(), learnin_rate=0.5)
    for name in StepConfig.option_names():
        assert name in str(error.value)
    with pytest.raises(TypeError, match="Received: geodesics=False"):
        LMModel(_mlp()).compile(loss="mse", geodesics=False)


def test_step_options_reach_the_configuration():
    trainer = Trainer(_mlp(), "mse", learning_rate=0.5, l2=0.1, solver="cg")
    expected = StepConfig(loss="mse", learning_rate=0.5, l2=0.1, solver="cg")
    assert trainer.config.key() == expected.for_model(trainer.fn).key()
    assert trainer.config.key() != StepConfig(loss="mse").key()


def test_deprecated_names_warn():
    with pytest.warns(DeprecationWarning, match="TrainingHistory"):
        from sklearn_lm.engine import History
    assert History is engine.TrainingHistory
    with pytest.warns(DeprecationWarning, match="STOP_MESSAGES"):
        messages = engine.STOP_MESSAGES
    assert messages[None] == Status.MAX_EPOCHS.message
    assert messages["damping_max"] == Status.DAMPING_MAX.message
    with pytest.warns(DeprecationWarning):
        from sklearn_lm.engine.loop import History as LoopHistory
    assert LoopHistory is engine.TrainingHistory
    with pytest.raises(AttributeError, match="no attribute 'Histories'"):
        engine.Histories  # noqa: B018


# ---------------------------------------------------------------------------
# Rules given to fit
# ---------------------------------------------------------------------------
class _LossBelow(engine.stopping.StoppingRule):
    """Stop once the training loss is below a target."""

    message = "the training loss reached the target"

    def __init__(self, target):
        self.target = target
        self.seen = []

    def fired(self, end):
        self.seen.append((end.epoch, end.position, end.logs["loss"]))
        return end.logs["loss"] < self.target


def test_a_rule_given_to_fit_stops_with_its_status_and_message():
    x = np.linspace(-1, 1, 200)[:, None]
    y = np.sinc(3 * x)
    full = Trainer(_mlp(), "mse").fit(x, y, epochs=30)
    losses = full.history["loss"]
    target = losses[5] * 1.000001  # first reached after the sixth epoch
    expected = next(i for i, v in enumerate(losses) if v < target) + 1
    rule = _LossBelow(target)
    history = Trainer(_mlp(), "mse").fit(x, y, epochs=30, rules=[rule])
    assert history.stop_reason is Status.CALLBACK
    assert history.message == "the training loss reached the target"
    assert len(history.history["loss"]) == expected == len(rule.seen)
    np.testing.assert_allclose(history.history["loss"], losses[:expected])
    assert [p for _, p, _ in rule.seen] == list(range(expected))


def test_rules_must_be_stopping_rules():
    with pytest.raises(TypeError, match="rules must be StoppingRule instances"):
        Trainer(_mlp(), "mse").fit(np.ones((4, 1)), np.ones(4), rules=[len])
