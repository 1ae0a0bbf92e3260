"""Any built Keras model: float64 kept, subclassed models, one input and output."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import nist
from sklearn_lm.engine import LMModel, Trainer


class Quadratic(keras.layers.Layer):
    """``b0 x^2 + b1 x`` with float64 weights."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float64", **kwargs)

    def build(self, input_shape):
        self.b = self.add_weight(shape=(2,), initializer="zeros", dtype="float64")
        self.b.assign([1.0, 1.0])

    def call(self, x):
        return self.b[0] * x * x + self.b[1] * x


class Subclassed(keras.Model):
    """A NIST model written as a subclassed model (``call`` without training)."""

    def __init__(self, problem, start):
        super().__init__(dtype="float64")
        self.parameters = nist.parameters_layer()(problem.name, start)

    def call(self, x):
        return self.parameters(x)


def test_float64_inputs_are_not_cut_to_float32():
    assert keras.config.floatx() == "float32"  # no global switch
    inputs = keras.Input((1,), dtype="float64")
    trainer = Trainer(keras.Model(inputs, Quadratic()(inputs)))
    assert trainer.fn.input_dtype == tf.float64
    # In float32 every one of these inputs would be 1.0.
    x = 1.0 + 1e-9 * np.arange(1, 51, dtype=np.float64)[:, None]
    ours = trainer.fn.outputs(trainer.fn.get_weights(), tf.constant(x)).numpy()
    np.testing.assert_allclose(ours, x * x + x, rtol=1e-13, atol=0)
    _, jac = trainer.fn.outputs_and_jacobian(trainer.fn.get_weights(), x)
    np.testing.assert_allclose(jac.numpy()[:, 0], np.hstack([x * x, x]), rtol=1e-13)


def test_float64_data_given_to_a_float32_model_is_cast_to_float32():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    trainer = Trainer(model, jacobian="reverse")
    x, _, _ = trainer._prepare(np.ones((3, 1)), np.ones(3), None)
    assert trainer.fn.input_dtype == tf.float32 and x.dtype == tf.float32


def test_a_subclassed_model_fits_like_the_functional_one():
    problem = nist.load("Misra1a")
    start = problem.starts[1]
    sub = Subclassed(problem, start)
    sub(problem.x[:1])
    # Keras builds a subclassed model's layers in a stateless scope, where the
    # layer's assignment of its start is lost: set it again.
    sub.parameters.b.assign(np.asarray(start, dtype=np.float64))
    functional = nist.keras_model(problem, start)
    fitted = []
    for model in (sub, functional):
        trainer = Trainer(model, loss="mse")
        assert trainer.fn.n_outputs == 1 and trainer.fn.input_dtype == tf.float64
        trainer.fit(problem.x, problem.y[:, None], epochs=100)
        fitted.append(trainer.fn.get_weights().numpy())
    np.testing.assert_allclose(fitted[0], fitted[1], rtol=1e-9)
    assert nist.log_relative_error(fitted[0], problem.certified) >= 6.0


def _two_inputs():
    a, b = keras.Input((1,)), keras.Input((1,))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], out)


def _two_outputs():
    a = keras.Input((1,))
    return keras.Model(a, [keras.layers.Dense(1)(a), keras.layers.Dense(1)(a)])


@pytest.mark.parametrize(
    "make, what", [(_two_inputs, "2 inputs"), (_two_outputs, "2 outputs")]
)
@pytest.mark.parametrize("entry", [Trainer, LMModel])
def test_several_inputs_or_outputs_are_refused(make, what, entry):
    with pytest.raises(ValueError, match=f"one input and one output.*{what}"):
        entry(make())


def test_an_unbuilt_subclassed_model_is_refused():
    problem = nist.load("Misra1a")
    model = Subclassed(problem, problem.starts[0])
    model.parameters.build((None, 1))  # weights exist, the model was never called
    with pytest.raises(ValueError, match="must be built"):
        Trainer(model)
