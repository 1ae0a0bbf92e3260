"""Any Keras model as a function of its weights, by automatic differentiation.

:class:`AutodiffFunction` evaluates the model through
``model.stateless_call`` and computes its Jacobian per sample, vectorised with
``tf.vectorized_map``: in reverse mode (``k`` backward passes per sample) or,
when the model has fewer weights than outputs per sample, in forward mode (one
forward pass per weight). This avoids the batch-by-batch intermediates of a
whole-batch ``tape.jacobian``.
"""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf

from .functions import Capabilities, ModelFunction

__all__ = ["AutodiffFunction"]


class AutodiffFunction(ModelFunction):
    """Any Keras model, differentiated per sample with ``tf.vectorized_map``.

    Parameters
    ----------
    model : keras.Model
        A built model with a single input and a single output tensor
        (functional, ``Sequential`` or subclassed). Inputs are cast to
        :attr:`~sklearn_lm.engine.functions.ModelFunction.input_dtype`, the
        dtype the model declares for its input.
    mode : {"auto", "reverse", "forward"}, default="auto"
        ``"auto"`` picks forward mode when the model has fewer weights than
        outputs per sample, reverse mode otherwise.

    Notes
    -----
    Declares no :class:`~sklearn_lm.engine.functions.Capabilities`: the
    step forms the Jacobian rows ``F J`` from :meth:`outputs_and_jacobian`.
    The curvature, ``J v`` and ``J^T u`` are the automatic-differentiation
    defaults of :class:`~sklearn_lm.engine.functions.ModelFunction`.
    """

    capabilities = Capabilities()

    def __init__(self, model: keras.Model, mode: str = "auto"):
        super().__init__(model)
        if mode == "auto":
            mode = "forward" if self.n_params < self.n_outputs else "reverse"
        self.mode = mode
        # A subclassed model's call may not take ``training``.
        takes_training = "training" in inspect.signature(model.call).parameters
        self._call_options = {"training": False} if takes_training else {}

    def _call(self, w, x):
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        out, _ = self.model.stateless_call(
            self.unflatten(w), non_trainable, x, **self._call_options
        )
        return tf.reshape(out, [-1, self.n_outputs])

    def outputs(self, w, x):
        return self._call(w, tf.cast(x, self.input_dtype))

    def outputs_and_jacobian(self, w, x):
        x = tf.cast(x, self.input_dtype)
        z = self._call(w, x)
        if self.mode == "forward":
            basis = tf.eye(self.n_params, dtype=w.dtype)

            def column(tangent):
                with tf.autodiff.ForwardAccumulator(w, tangent) as acc:
                    out = self._call(w, x)
                return acc.jvp(out)

            jac = tf.transpose(tf.vectorized_map(column, basis), [1, 2, 0])
            return z, jac

        def row(x_one):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(w)
                out = self._call(w, x_one[None])[0]
            return tape.jacobian(out, w)

        return z, tf.vectorized_map(row, x)
