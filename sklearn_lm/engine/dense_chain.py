"""The closed form of a chain of ``Dense`` layers, and the choice of a model function.

:class:`DenseChain` gives the outputs, the Jacobian, the directional
curvature and the products with the Jacobian of a plain chain of
``keras.layers.Dense`` layers with elementwise activations (the networks the
estimators build), from one forward pass per layer and the activations'
derivatives (:mod:`sklearn_lm.engine.activations`). It back-propagates ``k``
output sensitivities at once; the cost of a Jacobian is about ``k + 1``
forward passes.

:func:`model_function` chooses it for a model that qualifies and whose own
outputs it reproduces, and
:class:`~sklearn_lm.engine.autodiff.AutodiffFunction` otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .activations import ACTIVATIONS, ALIASES, activation_name
from .autodiff import AutodiffFunction
from .functions import Capabilities, ModelFunction
from .layerwise import LayerwiseProducts
from .products import row_layout, transposed_product
from .signature import _has_outputs

__all__ = ["DenseChain", "model_function"]

_MODES = ("auto", "dense", "reverse", "forward")


class _Pass(NamedTuple):
    """One ``Dense`` layer of a forward pass: ``outputs = phi(inputs @ kernel + b)``.

    ``slope`` and ``bend`` are ``phi'`` and ``phi''`` at the pre-activation,
    ``None`` for the identity (and ``bend`` wherever ``phi''`` vanishes, or
    where ``bend_ratio`` stands for it);
    use :meth:`times_slope` and :meth:`bend_term`, which avoid forming them
    where the activation allows. ``augmented`` is ``inputs`` with a column of
    ones, where the caller prepared it (:meth:`DenseChain.prepare_inputs`),
    else ``None``. ``pre`` is the pre-activation, ``activation`` the name of
    ``phi``, ``bend_ratio`` is ``phi'' / phi'`` where that is simple (else
    ``None``).
    """

    inputs: tf.Tensor
    outputs: tf.Tensor
    kernel: tf.Tensor
    slope: tf.Tensor | None
    bend: tf.Tensor | None
    augmented: tf.Tensor | None = None
    pre: tf.Tensor | None = None
    activation: str = "linear"
    bend_ratio: tf.Tensor | None = None

    def times_slope(self, t: tf.Tensor) -> tf.Tensor:
        """``phi'(z) * t`` for ``t`` of shape ``(N, u)`` or ``(N, q, u)``."""
        if self.slope is None:
            return t
        fused = ACTIVATIONS[self.activation].slope_times
        rows = t.shape.rank == 3
        if fused is not None and (not rows or t.shape[1] == 1):
            z, a = self.pre, self.outputs
            if rows:
                z, a = tf.expand_dims(z, 1), tf.expand_dims(a, 1)
            return fused(z, a, t)
        return t * (self.slope[:, None, :] if rows else self.slope)

    def bend_term(self, z1: tf.Tensor, a1: tf.Tensor) -> tf.Tensor | None:
        """``phi''(z) * z1**2`` given ``a1 = phi'(z) * z1``; ``None`` if zero."""
        if self.bend_ratio is not None:
            return self.bend_ratio * z1 * a1
        return None if self.bend is None else self.bend * tf.square(z1)


class _Prepared(NamedTuple):
    """Inputs of a :class:`DenseChain` and, for its first layer, the same
    inputs with a column of ones (see :meth:`DenseChain.prepare_inputs`)."""

    inputs: tf.Tensor
    augmented: tf.Tensor


class DenseChain(LayerwiseProducts, ModelFunction):
    """Closed-form function of a chain of ``Dense`` layers.

    Use :func:`model_function`, which checks that a model qualifies (and that
    this closed form reproduces the model's own outputs) before choosing it.
    The Gauss-Newton products layer by layer come from
    :class:`~sklearn_lm.engine.layerwise.LayerwiseProducts`.
    """

    capabilities = Capabilities(
        closed_form=True,
        layerwise_gauss_newton=True,
        weighted_rows=True,
        gauss_newton_diagonal=True,
    )

    def __init__(self, model: keras.Model, layers: list):
        super().__init__(model)
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.layers = []
        for layer in layers:
            kernel_i = index[id(layer.kernel)]
            bias_i = index[id(layer.bias)] if layer.use_bias else None
            name = activation_name(layer.activation)
            self.layers.append((kernel_i, bias_i, name))
        self.n_outputs = int(layers[-1].units)
        self.key = (
            "dense",
            self.dtype.name,
            tuple(self.shapes),
            tuple(self.layers),
        )

    @property
    def input_dtype(self) -> tf.DType:
        """The model's dtype: the closed form evaluates in it."""
        return self.dtype

    def prepare_inputs(self, x):
        """``x`` in the model's dtype, with a column of ones for the first layer.

        The first layer's bias is then added by its matrix product (the
        kernel with the bias as one more row): one pass over the
        ``(N, units)`` pre-activations fewer in every evaluation. Returns
        ``x`` unchanged when the first layer has no bias.
        """
        if isinstance(x, _Prepared) or self.layers[0][1] is None:
            return x
        x = tf.cast(x, self.dtype)
        d = self.shapes[self.layers[0][0]][0]
        if d > 4:
            return _Prepared(x, tf.concat([x, tf.ones_like(x[:, :1])], axis=1))
        # Narrow rows are concatenated row by row (slow for many short rows):
        # x [I | 0] + [0 ... 0 1] writes the same matrix in two vector passes.
        eye = tf.constant(np.eye(d, d + 1), self.dtype)
        unit = tf.constant(np.eye(1, d + 1, d)[0], self.dtype)
        return _Prepared(x, tf.matmul(x, eye) + unit)

    def _first_product(self, x, kernel, bias):
        """``x @ kernel + bias`` for the first layer (``bias`` may be None)."""
        if isinstance(x, _Prepared):
            return tf.matmul(
                x.augmented, tf.concat([kernel, tf.expand_dims(bias, 0)], axis=0)
            )
        z = tf.matmul(x, kernel)
        return z if bias is None else z + bias

    def _forward(self, w, x, keep):
        """Outputs and, with ``keep``, one :class:`_Pass` per layer."""
        params = self.unflatten(w)
        prepared = x if isinstance(x, _Prepared) else None
        a = tf.cast(x, self.dtype) if prepared is None else prepared.inputs
        trace = []
        for pos, (kernel_i, bias_i, act) in enumerate(self.layers):
            kernel = params[kernel_i]
            bias = None if bias_i is None else params[bias_i]
            if pos == 0:
                z = self._first_product(x if prepared else a, kernel, bias)
            else:
                z = tf.matmul(a, kernel)
                if bias is not None:
                    z = z + bias
            phi = ACTIVATIONS[act]
            a_next = z if phi.forward is None else phi.forward(z)
            if keep:
                # Derivatives a caller does not use are pruned from the graph.
                slope, bend, ratio = phi.slope, phi.bend, phi.bend_ratio
                trace.append(
                    _Pass(
                        a,
                        a_next,
                        kernel,
                        None if slope is None else slope(z, a_next),
                        None if bend is None else bend(z, a_next),
                        prepared.augmented if prepared and pos == 0 else None,
                        z,
                        act,
                        None if ratio is None else ratio(z, a_next),
                    )
                )
            a = a_next
        return a, trace

    def outputs(self, w, x):
        return self._forward(w, x, keep=False)[0]

    def linearization(self, w, x):
        out, trace = self._forward(w, x, keep=True)
        return out, self._jacobian(out, trace), trace

    def outputs_and_curvature(self, w, v, x, state=None):
        """Closed form: value, first and second derivative along ``v`` together.

        Per layer ``z = a W + b`` gives ``z' = a' W + a W' + b'`` and
        ``z'' = a'' W + 2 a' W'``; the activation gives ``a' = phi'(z) z'``
        and ``a'' = phi''(z) z'^2 + phi'(z) z''``. ``state`` (the forward
        pass kept by :meth:`linearization`, with ``phi'`` and ``phi''`` of
        every layer) saves a forward pass; without it one is run first.
        """
        out, _, second = self._directional(w, v, x, state, second=True)
        return out, tf.zeros_like(out) if second is None else second

    def jvp(self, w, v, x, state=None):
        """Closed form of ``J v`` (the first derivative of
        :meth:`outputs_and_curvature`), reusing ``state`` when given."""
        return self._directional(w, v, x, state, second=False)[1]

    def vjp(self, w, u, x, state=None, *, precise=True):
        """``J^T u`` by back-propagation through ``state`` (run when ``None``).

        Sums over samples are float64 as in :meth:`transpose_times`, or, with
        ``precise=False``, one matrix product per layer in the model's dtype
        (float32 models: 11-17 % less time per conjugate-gradient step on
        ``load_digits``).
        """
        if state is None:
            _, state = self._forward(w, x, keep=True)
        inputs = self._inputs(state)
        layout = row_layout(inputs[0]) if precise else None
        return self._weight_vector(
            transposed_product(b, d, layout)
            if precise
            else tf.cast(tf.matmul(b, d, transpose_a=True), tf.float64)
            for b, d in zip(inputs, self._deltas(state, u), strict=True)
        )

    def _directional(self, w, v, x, state, second):
        """Outputs and their first (and, with ``second``, second) derivative
        along ``v``; a second derivative that vanishes is ``None``."""
        tangents = self.unflatten(tf.cast(v, self.dtype))
        if state is None:
            _, state = self._forward(w, x, keep=True)
        # First and second derivative of each layer's input; None stands for
        # zero (the input, and second derivatives that vanish): fewer passes.
        a1 = a2 = None
        for pos, (kernel_i, bias_i, _) in enumerate(self.layers):
            layer = state[pos]
            inputs, kernel, augmented = layer.inputs, layer.kernel, layer.augmented
            d_kernel = tangents[kernel_i]
            d_bias = None if bias_i is None else tangents[bias_i]
            if augmented is not None:  # the first layer, inputs prepared
                d_aug = tf.concat([d_kernel, tf.expand_dims(d_bias, 0)], 0)
                z1 = tf.matmul(augmented, d_aug)
                d_bias = None
            else:
                z1 = tf.matmul(inputs, d_kernel)
            z2 = None
            if a1 is not None:
                z1 = z1 + tf.matmul(a1, kernel)
                if second:
                    z2 = tf.matmul(a1, 2.0 * d_kernel)
                    if a2 is not None:
                        z2 = z2 + tf.matmul(a2, kernel)
            if d_bias is not None:
                z1 = z1 + d_bias
            a1 = layer.times_slope(z1)
            if layer.slope is None:
                a2 = z2
                continue
            a2 = None if z2 is None else layer.times_slope(z2)
            term = layer.bend_term(z1, a1) if second else None
            if term is not None:
                a2 = term if a2 is None else a2 + term
        return state[-1].outputs, a1, a2

    def outputs_and_jacobian(self, w, x):
        out, trace = self._forward(w, x, keep=True)
        return out, self._jacobian(out, trace)

    def outputs_and_state(self, w, x):
        """Outputs ``(N, k)`` and the forward pass that the products use."""
        return self._forward(w, x, keep=True)

    def _jacobian(self, out, trace):
        k = self.n_outputs
        eye = tf.constant(np.eye(k)[None], self.dtype)
        # out is (N, k): the identity for every sample is (N, k, k).
        eye = tf.broadcast_to(eye, tf.concat([tf.shape(out), [k]], axis=0))
        return tf.concat(self._row_blocks(trace, eye), axis=-1)


def _dense_layers(model: keras.Model) -> list | None:
    """The Dense layers of ``model`` if it is a plain chain of them, else None."""
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not layers or not all(type(layer) is keras.layers.Dense for layer in layers):
        return None
    if any(activation_name(layer.activation) is None for layer in layers):
        return None
    if any(getattr(layer, "lora_enabled", False) for layer in layers):
        return None
    owned = [v for layer in layers for v in layer.trainable_variables]
    if {id(v) for v in owned} != {id(v) for v in model.trainable_variables}:
        return None
    if model.non_trainable_variables:
        return None
    dtypes = {layer.compute_dtype for layer in layers} | {
        v.dtype for v in model.trainable_variables
    }
    if len(dtypes) != 1:
        return None
    return layers


def model_function(model: keras.Model, jacobian: str = "auto") -> ModelFunction:
    """Choose the :class:`~sklearn_lm.engine.functions.ModelFunction` for
    ``model``.

    Parameters
    ----------
    model : keras.Model
        A built Keras model with one input and one output.
    jacobian : {"auto", "dense", "reverse", "forward"}, default="auto"
        ``"auto"`` uses the closed form (:class:`DenseChain`) when the model
        is a chain of ``Dense`` layers whose outputs it reproduces, else
        ``AutodiffFunction("auto")``
        (:class:`~sklearn_lm.engine.autodiff.AutodiffFunction`).

    Returns
    -------
    ModelFunction
    """
    if jacobian not in _MODES:
        raise ValueError(
            "jacobian must be one of 'auto', 'dense', 'reverse', 'forward'. "
            f"Received: jacobian={jacobian!r}"
        )
    if not model.built or not model.trainable_variables:
        raise ValueError(
            "The model must be built and have trainable weights. Call it on a "
            "batch or build it with keras.Input first. "
            f"Received: model={model.name!r}"
        )
    if jacobian in ("auto", "dense"):
        layers = _dense_layers(model)
        if layers is not None:
            chain = DenseChain(model, layers)
            if _reproduces(chain, model, layers):
                return chain
        if jacobian == "dense":
            raise ValueError(
                "jacobian='dense' needs a model that is a plain chain of "
                "keras.layers.Dense layers with elementwise activations "
                f"({sorted([*ACTIVATIONS, *ALIASES])}). Received: model={model.name!r}"
            )
        jacobian = "auto"
    return AutodiffFunction(model, mode=jacobian)


#: Architectures of ``keras.Sequential`` chains that :func:`_reproduces`
#: found reproduced in this process.
_CHECKED: dict = {}


def _architecture(model: keras.Model, layers: list) -> tuple | None:
    """What decides how a ``keras.Sequential`` chain computes its outputs
    from its weights and inputs, or ``None`` for other models (whose
    topology may differ from the chain of their layers).

    The layer widths and the number of inputs are not part of it: a
    ``Dense`` layer computes ``activation(x W + b)`` whatever the shape of
    ``W``, so a network of other widths follows the same formula.
    """
    if type(model) is not keras.Sequential:
        return None
    return (model.dtype_policy.name,) + tuple(
        (
            bool(layer.use_bias),
            activation_name(layer.activation),
            layer.dtype_policy.name,
            getattr(layer, "quantization_mode", None),
        )
        for layer in layers
    )


def _reproduces(chain: DenseChain, model: keras.Model, layers: list) -> bool:
    """Check the closed form against the model itself on a random batch.

    A ``keras.Sequential`` chain of ``Dense`` layers passes once per
    architecture in a process (:func:`_architecture`): the same depth,
    activations, biases and dtype policies compute the same function of
    the weights, whatever the widths (a grid over hidden sizes, or data
    sets of other widths, checks once). Other models, and failures, are
    checked every time.
    """
    n_in = int(model.inputs[0].shape[-1]) if _has_outputs(model) else None
    if n_in is None or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    key = _architecture(model, layers)
    if key is not None and key in _CHECKED:
        return True
    result = _compare(chain, model, n_in)
    if key is not None and result:
        # Only a success is kept: a failure may come from the weights
        # (non-finite outputs), not from the architecture.
        _CHECKED[key] = True
    return result


def _compare(chain: DenseChain, model: keras.Model, n_in: int) -> bool:
    """The closed form's outputs against the model's on three random rows."""
    probe = np.random.default_rng(0).standard_normal((3, n_in))
    probe = tf.constant(probe, dtype=chain.dtype)
    ours = chain.outputs(chain.get_weights(), probe).numpy()
    theirs = np.asarray(model(probe, training=False))
    tol = 1e-4 if chain.dtype != tf.float64 else 1e-10
    return theirs.shape == ours.shape and np.allclose(ours, theirs, rtol=tol, atol=tol)
