"""The model-function interface: which implementation each model gets, the
declared capabilities, and the former import path."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm.engine import Trainer, jacobian, model_function
from sklearn_lm.engine.autodiff import AutodiffFunction
from sklearn_lm.engine.dense_chain import DenseChain
from sklearn_lm.engine.functions import Capabilities, ModelFunction
from sklearn_lm.network import ACTIVATIONS, build_network

_FIELDS = {
    "closed_form",
    "layerwise_gauss_newton",
    "weighted_rows",
    "gauss_newton_diagonal",
}
# The methods each capability stands for, with arguments that reach them.
_METHODS = {
    "layerwise_gauss_newton": ["structured_width", "gauss_newton", "transpose_times"],
    "weighted_rows": ["weighted_rows"],
    "gauss_newton_diagonal": ["gauss_newton_diagonal"],
}


def _conv_model():
    inputs = keras.Input((4, 4, 1), dtype="float64")
    h = keras.layers.Conv2D(2, 3, activation="tanh", dtype="float64")(inputs)
    h = keras.layers.Flatten(dtype="float64")(h)
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(h))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_accepted_activation_takes_the_closed_form(activation, dtype):
    """No activation the estimators accept falls back to autodiff, and the
    closed form is what ``"auto"`` picks (it reproduces the model's outputs)."""
    model = build_network(3, 2, hidden=(4,), activation=activation, dtype=dtype, seed=0)
    fn = model_function(model)
    assert type(fn) is DenseChain
    assert fn.layers[0][2] == activation
    out = build_network(
        3, 2, hidden=(4,), output_activation=activation, dtype=dtype, seed=1
    )
    assert type(model_function(out)) is DenseChain


@pytest.mark.parametrize("activation", ["selu", "softsign", "gelu"])
def test_geodesic_steps_on_the_new_closed_forms(activation):
    """Steps with the geodesic term train these networks (softsign ones
    failed on autodiff: TensorFlow has no second derivative of softsign)."""
    model = build_network(3, 1, hidden=(4,), activation=activation, seed=0)
    trainer = Trainer(model, geodesic=True)
    x = np.random.default_rng(0).standard_normal((40, 3)).astype("float32")
    y = np.sin(x).sum(axis=1, keepdims=True)
    logs = [trainer.train_step(x, y) for _ in range(5)]
    assert np.isfinite(logs[-1]["loss"])
    assert logs[-1]["loss"] < logs[0]["initial_loss"]


def test_swish_is_the_closed_form_of_silu():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, "swish"), keras.layers.Dense(1)]
    )
    fn = model_function(model)
    assert type(fn) is DenseChain
    assert fn.layers[0][2] == "silu"


def test_capabilities_are_a_frozen_dataclass_of_four_flags():
    assert {f.name for f in dataclasses.fields(Capabilities)} == _FIELDS
    assert Capabilities() == Capabilities(**dict.fromkeys(_FIELDS, False))
    with pytest.raises(dataclasses.FrozenInstanceError):
        Capabilities().closed_form = True


def test_declared_capabilities():
    dense = model_function(build_network(3, 2, hidden=(4,), dtype="float64", seed=0))
    auto = model_function(_conv_model())
    assert isinstance(auto, AutodiffFunction)
    assert dense.capabilities == Capabilities(**dict.fromkeys(_FIELDS, True))
    assert auto.capabilities == Capabilities()
    assert ModelFunction.capabilities == Capabilities()
    # Reverse and forward mode of a Dense chain are autodiff too.
    model = build_network(3, 2, hidden=(4,), dtype="float64", seed=0)
    for mode in ("reverse", "forward"):
        assert model_function(model, mode).capabilities == Capabilities()


@pytest.mark.parametrize("capability", sorted(_METHODS))
def test_unsupported_methods_raise_not_implemented(capability):
    fn = model_function(_conv_model())
    x = tf.zeros((2, 4, 4, 1), tf.float64)
    _, state = fn.outputs_and_state(fn.get_weights(), x)
    f, e = tf.zeros((2, 1, 2), tf.float64), tf.zeros((2, 1), tf.float64)
    arguments = {
        "structured_width": (),
        "gauss_newton": (state, f, e),
        "transpose_times": (state, f, e),
        "weighted_rows": (state, f, e),
        "gauss_newton_diagonal": (state, f),
    }
    for method in _METHODS[capability]:
        match = f"AutodiffFunction does not implement {method}.*{capability}"
        with pytest.raises(NotImplementedError, match=match):
            getattr(fn, method)(*arguments[method])


def test_base_class_outputs_are_abstract():
    fn = ModelFunction(build_network(3, 1, hidden=(), dtype="float64", seed=0))
    w, x = fn.get_weights(), tf.zeros((2, 3), tf.float64)
    with pytest.raises(NotImplementedError, match="ModelFunction .* outputs()"):
        fn.outputs(w, x)
    with pytest.raises(NotImplementedError, match="outputs_and_jacobian"):
        fn.outputs_and_jacobian(w, x)


def test_declared_capabilities_are_the_methods_offered():
    """Where a capability is declared its methods run (on a Dense chain)."""
    fn = model_function(build_network(3, 2, hidden=(4,), dtype="float64", seed=0))
    x = tf.constant(np.random.default_rng(0).standard_normal((5, 3)))
    _, state = fn.outputs_and_state(fn.get_weights(), x)
    f = tf.constant(np.random.default_rng(1).standard_normal((5, 2, 2)))
    e = tf.zeros((5, 2), tf.float64)
    assert fn.structured_width() > 0
    assert fn.gauss_newton(state, f, e)[0].shape == (fn.n_params, fn.n_params)
    assert fn.transpose_times(state, f, e).shape == (fn.n_params,)
    assert fn.weighted_rows(state, f, e).shape == (10, fn.n_params + 1)
    assert fn.gauss_newton_diagonal(state, f).shape == (fn.n_params,)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_dtype(dtype):
    dense = model_function(build_network(3, 1, hidden=(2,), dtype=dtype, seed=0))
    assert dense.input_dtype == tf.as_dtype(dtype)
    # Autodiff evaluates in the dtype of the model's input, whatever its weights.
    inputs = keras.Input((3,), dtype="float64")
    outputs = keras.layers.Dense(1, dtype=dtype)(inputs)
    auto = model_function(keras.Model(inputs, outputs), "reverse")
    assert auto.input_dtype == tf.float64
    assert auto.dtype == tf.as_dtype(dtype)


def test_former_import_path_gives_the_same_objects():
    from sklearn_lm.engine import dense_chain

    assert jacobian.ModelFunction is ModelFunction
    assert jacobian.DenseChain is DenseChain
    assert jacobian.AutodiffFunction is AutodiffFunction
    assert jacobian.model_function is dense_chain.model_function is model_function
    assert set(jacobian.__all__) == {
        "ModelFunction",
        "DenseChain",
        "AutodiffFunction",
        "model_function",
    }


def test_the_closed_form_is_checked_once_per_sequential_architecture(monkeypatch):
    from sklearn_lm.engine import dense_chain

    checks = []
    compare = dense_chain._compare
    monkeypatch.setattr(dense_chain, "_CHECKED", {})
    monkeypatch.setattr(
        dense_chain, "_compare", lambda *args: checks.append(1) or compare(*args)
    )
    x = np.random.default_rng(1).standard_normal((7, 3)).astype("float32")
    cases = [(0, "tanh", (5,)), (1, "tanh", (5,)), (2, "tanh", (9,)), (3, "relu", (5,))]
    for seed, activation, hidden in cases:
        model = build_network(3, 2, hidden, activation=activation, seed=seed)
        fn = model_function(model)
        assert isinstance(fn, DenseChain)
        np.testing.assert_allclose(
            fn.outputs(fn.get_weights(), tf.constant(x)).numpy(),
            np.asarray(model(x)),
            rtol=1e-5,
            atol=1e-6,
        )
    # The second and third tanh networks (the third of another width) were
    # not checked again, and both still match Keras; the relu network was.
    assert len(checks) == 2
