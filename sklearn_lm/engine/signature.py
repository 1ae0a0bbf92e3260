"""What a built Keras model takes and gives: its input dtype and its outputs.

Functional and ``Sequential`` models declare their input and output tensors;
subclassed models do not, and are probed (:func:`model_signature`). The
engine trains models with one input and one output tensor and refuses
others here, when a :class:`~sklearn_lm.engine.Trainer` or
:class:`~sklearn_lm.engine.LMModel` is made.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["model_signature"]


def model_signature(model: keras.Model) -> tuple[tf.DType, int]:
    """``(input_dtype, n_outputs)`` of a built model with one input and one output.

    A functional or ``Sequential`` model declares both: the dtype of
    ``model.inputs[0]`` and the size of ``model.outputs[0]`` per sample. A
    subclassed model declares neither; its input dtype is then the model's
    own ``input_dtype`` (its dtype policy: pass ``dtype="float64"`` to its
    constructor for a float64 model) and its outputs are found by calling
    it on one row of zeros shaped as the input it was built with.

    Raises
    ------
    ValueError
        When the model has several inputs or outputs, or was never built
        (no input shape is known), naming what is missing.
    """
    inputs, outputs = _declared(model, "inputs"), _declared(model, "outputs")
    if inputs is not None and outputs is not None:
        _check_single("inputs", len(inputs), model)
        _check_single("outputs", len(outputs), model)
        n_outputs = int(np.prod(outputs[0].shape[1:]))
        return tf.as_dtype(inputs[0].dtype), n_outputs
    shapes = getattr(model, "_build_shapes_dict", None)
    if not shapes:
        raise ValueError(
            "The model must be built (called once on data, or model.build("
            "input_shape)) so that its input shape is known. Received: "
            f"model={model.name!r} ({type(model).__name__}) with no input shape"
        )
    _check_single("inputs", len(shapes), model)
    shape = tuple(shapes.values())[0]
    if isinstance(shape, dict) or any(isinstance(d, tuple | list) for d in shape):
        _check_single(
            "inputs", len(tf.nest.flatten(shape, expand_composites=False)), model
        )
    dtype = tf.as_dtype(model.input_dtype)
    probe = tf.zeros([1, *(1 if d is None else d for d in shape[1:])], dtype)
    outputs = tf.nest.flatten(model(probe, training=False))
    _check_single("outputs", len(outputs), model)
    return dtype, int(np.prod(outputs[0].shape[1:]))


def _has_outputs(model) -> bool:
    return _declared(model, "outputs") is not None


def _declared(model, name):
    try:
        value = getattr(model, name)
    except (AttributeError, ValueError):
        return None
    return list(value) if value else None


def _check_single(what: str, count: int, model) -> None:
    if count != 1:
        raise ValueError(
            f"The engine trains models with one input and one output tensor. "
            f"Received: model={model.name!r} with {count} {what}"
        )
