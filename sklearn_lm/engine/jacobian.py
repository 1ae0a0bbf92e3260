"""A Keras model seen as a function of one flat weight vector.

The step works on ``w``, the concatenation of ``model.trainable_variables``
(each flattened in row-major order), in the model's dtype. Two
implementations share one interface (:class:`ModelFunction`):

* :class:`DenseChain` -- closed-form outputs and Jacobian for a plain chain of
  ``keras.layers.Dense`` layers with elementwise activations (the networks the
  estimators build). Back-propagates ``k`` output sensitivities at once; the
  cost of a Jacobian is about ``k + 1`` forward passes.
* :class:`AutodiffFunction` -- any Keras model, through
  ``model.stateless_call``. The Jacobian is computed per sample and
  vectorised with ``tf.vectorized_map`` in reverse mode (``k`` backward
  passes per sample) or, when the model has fewer weights than outputs per
  sample, in forward mode (one forward pass per weight). This avoids the
  batch-by-batch intermediates of a whole-batch ``tape.jacobian``.

Models are evaluated in inference mode (``training=False``): LM compares
losses between attempts, which a random layer such as dropout would spoil.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from .products import cross

try:  # the class of a plain (not distributed) TensorFlow variable
    from tensorflow.python.ops.resource_variable_ops import (
        ResourceVariable as _RESOURCE_VARIABLE,
    )
except ImportError:  # pragma: no cover - other TensorFlow layouts
    _RESOURCE_VARIABLE = None

__all__ = [
    "Capabilities",
    "ModelFunction",
    "DenseChain",
    "AutodiffFunction",
    "model_function",
]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """The optional methods a model function offers, declared by its class.

    Parameters
    ----------
    closed_form : bool, default=False
        Outputs, Jacobian and curvature are written in closed form.
    layerwise_gauss_newton : bool, default=False
        ``structured_width``, ``gauss_newton`` and ``transpose_times``: the
        Gauss-Newton products summed layer by layer, without Jacobian rows.
    weighted_rows : bool, default=False
        ``weighted_rows``: the rows ``[F J | e]`` written in one pass.
    gauss_newton_diagonal : bool, default=False
        ``gauss_newton_diagonal``: ``diag(J^T F^T F J)`` without the rows.
    """

    closed_form: bool = False
    layerwise_gauss_newton: bool = False
    weighted_rows: bool = False
    gauss_newton_diagonal: bool = False


class ModelFunction:
    """Outputs and output Jacobian of a model as functions of flat weights.

    Attributes
    ----------
    n_params : int
        Length of the weight vector ``w``.
    n_outputs : int
        Outputs per sample, ``k``.
    dtype : tf.DType
        The model's variable dtype, used for ``w`` and for Jacobians.
    key : tuple or None
        A hashable description of the function: two models with equal keys
        compute the same function of ``w``, so compiled steps can be shared
        between them. ``None`` means no sharing.
    capabilities : Capabilities
        The optional methods this class offers.
    """

    capabilities = Capabilities()

    def __init__(self, model: keras.Model):
        self.model = model
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.n_params = int(sum(self.sizes))
        self.dtype = tf.as_dtype(self.variables[0].dtype)
        self.n_outputs = (
            int(np.prod(model.outputs[0].shape[1:])) if _has_outputs(model) else 0
        )
        self.key = None

    # -- weights <-> variables -------------------------------------------------
    def get_weights(self) -> tf.Tensor:
        """Current weights of the model as one flat vector."""
        return tf.concat([tf.reshape(v.value, [-1]) for v in self.variables], axis=0)

    def set_weights(self, w: tf.Tensor) -> None:
        """Write a flat weight vector back into the model's variables.

        Eagerly, the vector is copied to the host once and each part is
        written with one assignment op per variable (about 0.1 ms for a small
        network, against about 0.8 ms through ``keras.Variable.assign``'s
        checks); variables that are not plain TensorFlow variables, and calls
        inside a graph, go through ``keras.Variable.assign``.
        """
        if not tf.executing_eagerly():
            for v, part in zip(self.variables, self.unflatten(w), strict=True):
                v.assign(tf.cast(part, v.dtype))
            return
        values = np.asarray(w)
        start = 0
        for v, shape, size in zip(self.variables, self.shapes, self.sizes, strict=True):
            part = values[start : start + size].reshape(shape)
            start += size
            target = getattr(v, "value", None)
            if type(target) is _RESOURCE_VARIABLE:
                tf.raw_ops.AssignVariableOp(
                    resource=target.handle,
                    value=tf.constant(part, dtype=target.dtype),
                )
            else:
                v.assign(part.astype(tf.as_dtype(v.dtype).as_numpy_dtype))

    def variable_handles(self) -> list[tf.Tensor] | None:
        """Resource handles of the model's variables, in the order of ``w``.

        They let a compiled graph read and write the variables it was not
        traced with (:meth:`read_handles`, :meth:`write_handles`), so one
        graph serves every model of the same architecture.

        Returns
        -------
        list of tf.Tensor or None
            One scalar ``tf.resource`` tensor per variable; ``None`` unless
            every variable is a plain TensorFlow variable of the model's
            dtype (a distributed or mixed-precision variable, for example,
            is not).
        """
        handles = []
        for v in self.variables:
            target = getattr(v, "value", None)
            if type(target) is not _RESOURCE_VARIABLE or target.dtype != self.dtype:
                return None
            handles.append(target.handle)
        return handles

    def read_handles(self, handles) -> tf.Tensor:
        """The flat weights, read through :meth:`variable_handles` (in a graph).

        Parameters
        ----------
        handles : sequence of tf.Tensor
            The handles of :meth:`variable_handles` (or graph inputs that
            receive them).

        Returns
        -------
        tf.Tensor
            ``(n_params,)`` in the model's dtype.
        """
        parts = [
            tf.raw_ops.ReadVariableOp(resource=h, dtype=self.dtype) for h in handles
        ]
        return tf.concat([tf.reshape(p, [-1]) for p in parts], axis=0)

    def write_handles(self, handles, w: tf.Tensor) -> None:
        """Write the flat weights ``w`` through :meth:`variable_handles` (in a graph).

        Parameters
        ----------
        handles : sequence of tf.Tensor
            As for :meth:`read_handles`.
        w : tf.Tensor
            ``(n_params,)`` in the model's dtype.
        """
        for h, part in zip(handles, self.unflatten(w), strict=True):
            tf.raw_ops.AssignVariableOp(resource=h, value=part)

    def unflatten(self, w: tf.Tensor) -> list[tf.Tensor]:
        """The parts of ``w`` in the variables' shapes."""
        parts = tf.split(w, self.sizes)
        return [
            p if len(s) == 1 else tf.reshape(p, s)
            for p, s in zip(parts, self.shapes, strict=True)
        ]

    def penalty_mask(self) -> np.ndarray:
        """1.0 for entries of kernels (variables with ``ndim >= 2``), else 0.0."""
        return np.concatenate(
            [
                np.full(size, float(len(s) >= 2))
                for s, size in zip(self.shapes, self.sizes, strict=True)
            ]
        )

    # -- the maths ---------------------------------------------------------------
    def prepare_inputs(self, x: tf.Tensor):
        """``x`` in the form the methods below evaluate fastest.

        The result may be passed as ``x`` to :meth:`outputs`,
        :meth:`linearization`, :meth:`outputs_and_jacobian` and
        :meth:`outputs_and_curvature`, in the graph (or eager context) where
        it was made, when the same inputs are evaluated several times (as the
        attempts of one step do). This default returns ``x``.
        """
        return x

    def outputs(self, w: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        """Model outputs ``(N, k)`` at weights ``w``."""
        raise NotImplementedError

    def outputs_and_jacobian(self, w: tf.Tensor, x: tf.Tensor):
        """Return ``(z, J)``: outputs ``(N, k)`` and Jacobian ``(N, k, n)``."""
        raise NotImplementedError

    def linearization(self, w: tf.Tensor, x: tf.Tensor):
        """Return ``(z, J, state)``: :meth:`outputs_and_jacobian` plus a state.

        ``state`` holds intermediate values of the forward pass that
        :meth:`outputs_and_curvature` can reuse at the same ``w`` and ``x``
        (``None`` when there are none: this default).
        """
        z, jac = self.outputs_and_jacobian(w, x)
        return z, jac, None

    def outputs_and_curvature(
        self, w: tf.Tensor, v: tf.Tensor, x: tf.Tensor, state=None
    ):
        """Return ``(z, z_vv)``: outputs and ``d^2 z(w + t v) / dt^2`` at ``t=0``.

        Both ``(N, k)`` in the model's dtype, exact up to rounding. This
        default works for any differentiable model: the directional
        derivative ``J v`` is formed by reverse mode twice (the transpose of
        a vector-Jacobian product) and differentiated once more in forward
        mode. :class:`DenseChain` overrides it with a closed form, which is
        cheaper to run and to compile.

        ``state`` is the third result of :meth:`linearization` at the same
        ``w`` and ``x``, or ``None``; this default does not use it.
        """
        zero = tf.UnconnectedGradients.ZERO
        with tf.autodiff.ForwardAccumulator(w, v) as outer:
            with tf.GradientTape(watch_accessed_variables=False) as outer_tape:
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(w)
                    z = self.outputs(w, x)
                u = tf.zeros_like(z)
                outer_tape.watch(u)
                vjp = tape.gradient(
                    z, w, output_gradients=u, unconnected_gradients=zero
                )
            jv = outer_tape.gradient(
                vjp, u, output_gradients=v, unconnected_gradients=zero
            )
        return z, outer.jvp(jv, unconnected_gradients=zero)

    # -- products with the Jacobian (used by the conjugate-gradient solver) ----
    def outputs_and_state(self, w: tf.Tensor, x: tf.Tensor):
        """Return ``(z, state)``: outputs ``(N, k)`` and a forward-pass state.

        ``state`` may be passed to :meth:`jvp`, :meth:`vjp` and
        :meth:`outputs_and_curvature` at the same ``w`` and ``x``. This
        default keeps none (``None``).
        """
        return self.outputs(w, x), None

    def jvp(self, w: tf.Tensor, v: tf.Tensor, x: tf.Tensor, state=None) -> tf.Tensor:
        """``J v``: derivative of the outputs along ``v``, ``(N, k)``.

        In the model's dtype. This default uses forward-mode automatic
        differentiation (one forward pass); ``state`` is not used.
        """
        with tf.autodiff.ForwardAccumulator(w, tf.cast(v, w.dtype)) as acc:
            z = self.outputs(w, x)
        return acc.jvp(z, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def vjp(
        self,
        w: tf.Tensor,
        u: tf.Tensor,
        x: tf.Tensor,
        state=None,
        *,
        precise: bool = True,
    ) -> tf.Tensor:
        """``J^T u`` for output cotangents ``u (N, k)``: an ``(n,)`` vector, float64.

        This default uses reverse-mode automatic differentiation (one forward
        and one backward pass, in the model's dtype); ``state`` and
        ``precise`` are not used. ``precise=False`` allows a model function
        to sum over samples in the model's dtype where it would otherwise
        sum in float64 (:func:`~sklearn_lm.engine.products.cross`): for
        products whose rounding does not matter, such as those inside the
        conjugate-gradient iterations.
        """
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(w)
            z = self.outputs(w, x)
        grad = tape.gradient(
            z,
            w,
            output_gradients=tf.cast(u, z.dtype),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return tf.cast(grad, tf.float64)


def _has_outputs(model) -> bool:
    try:
        return bool(model.outputs)
    except (AttributeError, ValueError):
        return False


_DERIVATIVES = {
    # activation name -> derivative as a function of (pre-activation, activation)
    "linear": None,
    "tanh": lambda z, a: 1.0 - tf.square(a),
    "sigmoid": lambda z, a: a * (1.0 - a),
    "relu": lambda z, a: tf.cast(z > 0, a.dtype),
    "softplus": lambda z, a: tf.sigmoid(z),
    "elu": lambda z, a: tf.where(z > 0, tf.ones_like(a), a + 1.0),
    "swish": lambda z, a: tf.sigmoid(z) * (1.0 + z * (1.0 - tf.sigmoid(z))),
    "silu": lambda z, a: tf.sigmoid(z) * (1.0 + z * (1.0 - tf.sigmoid(z))),
}
_SECOND_DERIVATIVES = {
    # activation name -> second derivative as a function of (pre-activation,
    # activation); None where it is zero everywhere. tanh and sigmoid are
    # absent: their second derivative is written through _BEND_RATIOS.
    "linear": None,
    "relu": None,
    "softplus": lambda z, a: tf.sigmoid(z) * (1.0 - tf.sigmoid(z)),
    "elu": lambda z, a: tf.where(z > 0, tf.zeros_like(a), a + 1.0),
    "swish": lambda z, a: (
        tf.sigmoid(z) * (1.0 - tf.sigmoid(z)) * (2.0 + z * (1.0 - 2.0 * tf.sigmoid(z)))
    ),
    "silu": lambda z, a: (
        tf.sigmoid(z) * (1.0 - tf.sigmoid(z)) * (2.0 + z * (1.0 - 2.0 * tf.sigmoid(z)))
    ),
}

_FORWARD = {
    "linear": None,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "softplus": tf.nn.softplus,
    "elu": tf.nn.elu,
    "swish": tf.nn.silu,
    "silu": tf.nn.silu,
}

# Products with phi' in one pass, by the gradient kernels of the activations:
# (pre-activation z, activation a, t) -> phi'(z) * t, for t shaped like a.
_SLOPE_TIMES = {
    "tanh": lambda z, a, t: tf.raw_ops.TanhGrad(y=a, dy=t),
    "sigmoid": lambda z, a, t: tf.raw_ops.SigmoidGrad(y=a, dy=t),
    "relu": lambda z, a, t: tf.raw_ops.ReluGrad(gradients=t, features=z),
}
# phi''(z) / phi'(z) as a function of (z, a), for the activations where it is
# simple: phi''(z) * z1**2 is then this ratio * z1 * a1 with a1 = phi'(z) * z1.
_BEND_RATIOS = {
    "tanh": lambda z, a: -2.0 * a,
    "sigmoid": lambda z, a: 1.0 - 2.0 * a,
}


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
        fused = _SLOPE_TIMES.get(self.activation)
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


class DenseChain(ModelFunction):
    """Closed-form function of a chain of ``Dense`` layers.

    Use :func:`model_function`, which checks that a model qualifies (and that
    this closed form reproduces the model's own outputs) before choosing it.
    """

    capabilities = Capabilities(True, True, True, True)

    def __init__(self, model: keras.Model, layers: list):
        super().__init__(model)
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.layers = []
        for layer in layers:
            kernel_i = index[id(layer.kernel)]
            bias_i = index[id(layer.bias)] if layer.use_bias else None
            name = _activation_name(layer.activation)
            self.layers.append((kernel_i, bias_i, name))
        self.n_outputs = int(layers[-1].units)
        self.key = (
            "dense",
            self.dtype.name,
            tuple(self.shapes),
            tuple(self.layers),
        )

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
            return tf.matmul(x.augmented, tf.concat([kernel, bias[None]], axis=0))
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
            a_next = z if _FORWARD[act] is None else _FORWARD[act](z)
            if keep:
                # Derivatives a caller does not use are pruned from the graph.
                slope, bend = _DERIVATIVES[act], _SECOND_DERIVATIVES.get(act)
                ratio = _BEND_RATIOS.get(act)
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
        return self._weight_vector(
            cross(b, d)
            if precise
            else tf.cast(tf.matmul(b, d, transpose_a=True), tf.float64)
            for b, d in zip(self._inputs(state), self._deltas(state, u), strict=True)
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
                z1 = tf.matmul(augmented, tf.concat([d_kernel, d_bias[None]], 0))
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

    # -- Gauss-Newton products layer by layer ----------------------------------
    # Row r of sample c of the weighted Jacobian F J has, for the kernel of
    # layer l, the entries a_l[c, i] * D_l[c, r, j] (input i, unit j) and, for
    # its bias, D_l[c, r, j], where D_l = F d(out)/d(pre-activation of l).
    # With the input extended by a 1 for the bias (b_l = [a_l, 1]), the block
    # of J^T F^T F J between layers l and m is
    #     sum_c kron(b_l[c] b_m[c]^T, D_l[c]^T D_m[c]),
    # one matrix product of (d_l+1)(d_m+1) by u_l u_m values per sample: in
    # all about 2 N n^2 flops instead of the 2 N q n^2 of the Jacobian rows.
    def outputs_and_state(self, w, x):
        """Outputs ``(N, k)`` and the forward pass that the products use."""
        return self._forward(w, x, keep=True)

    def structured_width(self) -> int:
        """Values per sample held by :meth:`gauss_newton`'s largest product."""
        dims = [self._dims(pos) for pos in range(len(self.layers))]
        return max(bl * bm + ul * um for bl, ul in dims for bm, um in dims)

    def _dims(self, pos):
        kernel_i, bias_i, _ = self.layers[pos]
        d, u = self.shapes[kernel_i]
        return d + (bias_i is not None), u

    def _deltas(self, trace, f):
        """``D_l = F d(out)/d(pre-activation)`` per layer, ``(N, q, u_l)``.

        ``f`` may also be one cotangent per sample, ``(N, k)``; the
        sensitivities are then ``(N, u_l)``.
        """
        deltas = [None] * len(self.layers)
        delta = tf.cast(f, self.dtype)
        rows = delta.shape.rank == 3
        for pos in range(len(self.layers) - 1, -1, -1):
            layer = trace[pos]
            delta = layer.times_slope(delta)
            deltas[pos] = delta
            if pos > 0 and rows:
                delta = self._back_rows(delta, layer.kernel)
            elif pos > 0:
                delta = tf.matmul(delta, layer.kernel, transpose_b=True)
        return deltas

    @staticmethod
    def _back_rows(delta, kernel):
        """``delta (N, q, u) @ kernel^T`` for ``kernel (i, u)``: ``(N, q, i)``.

        One matrix product over the ``N q`` rows: faster here than a batched
        contraction or, for ``u == 1``, a broadcast product.
        """
        shape = tf.shape(delta)
        flat = tf.matmul(
            tf.reshape(delta, [-1, kernel.shape[1]]), kernel, transpose_b=True
        )
        return tf.reshape(flat, [shape[0], shape[1], kernel.shape[0]])

    def _weight_vector(self, blocks):
        """One ``(n,)`` vector, in the order of the weights, from one
        ``(d_l + 1, u_l)`` block per layer (inputs with the bias row, units)."""
        vec = tf.concat([tf.reshape(block, [-1]) for block in blocks], axis=0)
        index = self._flat_order()
        return vec if index is None else tf.gather(vec, index)

    def _inputs(self, trace):
        """Layer inputs, with a column of ones where the layer has a bias."""
        out = []
        for pos, (_, bias_i, _) in enumerate(self.layers):
            a = trace[pos].inputs
            if trace[pos].augmented is not None:
                a = trace[pos].augmented
            elif bias_i is not None:
                a = tf.concat([a, tf.ones_like(a[:, :1])], axis=1)
            out.append(a)
        return out

    def _flat_order(self):
        """Concatenate per-layer ``[kernel, bias]`` parts in variable order."""
        offsets = np.cumsum([0, *self.sizes])
        order = []
        for kernel_i, bias_i, _ in self.layers:
            for i in (kernel_i, bias_i):
                if i is not None:
                    order.extend(range(offsets[i], offsets[i + 1]))
        index = np.argsort(order)
        return None if np.array_equal(index, np.arange(self.n_params)) else index

    def transpose_times(self, state, f, r):
        """``J^T F^T r`` (float64) for rows ``r (N, q)`` and factor ``F (N, q, k)``.

        ``state`` is the forward pass of :meth:`outputs_and_state`. Sums over
        samples use :func:`~sklearn_lm.engine.products.cross`.
        """
        deltas = self._deltas(state, f)
        r = tf.cast(r, self.dtype)
        return self._weight_vector(
            cross(b, tf.einsum("cqu,cq->cu", d, r))
            for b, d in zip(self._inputs(state), deltas, strict=True)
        )

    def gauss_newton_diagonal(self, state, f):
        """``diag(J^T F^T F J)`` (float64, ``(n,)``) without forming ``F J``.

        The entry of input ``i`` and unit ``j`` of a layer is
        ``sum_c b[c, i]**2 sum_r D[c, r, j]**2`` (see :meth:`gauss_newton`):
        one product of ``(N, d + 1)`` by ``(N, u)`` values per layer.
        """
        deltas = self._deltas(state, f)
        return self._weight_vector(
            cross(tf.square(b), tf.reduce_sum(tf.square(d), axis=1))
            for b, d in zip(self._inputs(state), deltas, strict=True)
        )

    def gauss_newton(self, state, f, e):
        """``(J^T F^T F J, J^T F^T e)`` in float64, without forming ``F J``.

        Parameters
        ----------
        state
            The forward pass of :meth:`outputs_and_state`.
        f : tf.Tensor
            ``(N, q, k)`` factor of the loss (rows already weighted).
        e : tf.Tensor
            ``(N, q)`` residuals (weighted).

        Returns
        -------
        tuple of tf.Tensor
            ``(n, n)`` and ``(n,)``, float64, in the order of the weights.
        """
        deltas = self._deltas(state, f)
        inputs = self._inputs(state)
        dims = [self._dims(pos) for pos in range(len(self.layers))]
        n_rows = tf.shape(e)[0]
        count = len(self.layers)
        rows = [[None] * count for _ in range(count)]
        for lo in range(count):
            for hi in range(lo, count):
                (bl, ul), (bm, um) = dims[lo], dims[hi]
                inner = tf.einsum("cqj,cqk->cjk", deltas[lo], deltas[hi])
                outer = inputs[lo][:, :, None] * inputs[hi][:, None, :]
                prod = cross(
                    tf.reshape(outer, [n_rows, bl * bm]),
                    tf.reshape(inner, [n_rows, ul * um]),
                )
                prod = tf.transpose(tf.reshape(prod, [bl, bm, ul, um]), [0, 2, 1, 3])
                rows[lo][hi] = tf.reshape(prod, [bl * ul, bm * um])
                if hi != lo:
                    rows[hi][lo] = tf.transpose(rows[lo][hi])
        h = tf.concat([tf.concat(row, axis=1) for row in rows], axis=0)
        e = tf.cast(e, self.dtype)
        g = self._weight_vector(
            cross(b, tf.einsum("cqu,cq->cu", d, e))
            for b, d in zip(inputs, deltas, strict=True)
        )
        index = self._flat_order()
        if index is not None:
            h = tf.gather(tf.gather(h, index, axis=0), index, axis=1)
        return h, g

    def _row_blocks(self, trace, f):
        """Blocks of ``F J`` per variable, ``(N, q, size)`` each, in order."""
        deltas = self._deltas(trace, f)
        blocks: list[tf.Tensor | None] = [None] * len(self.variables)
        for pos, (kernel_i, bias_i, _) in enumerate(self.layers):
            delta = deltas[pos]
            block = trace[pos].inputs[:, None, :, None] * delta[:, :, None, :]
            shape = tf.shape(block)
            blocks[kernel_i] = tf.reshape(block, [shape[0], shape[1], -1])
            if bias_i is not None:
                blocks[bias_i] = delta
        return blocks

    def weighted_rows(self, state, f, e):
        """The rows ``[F J | e]``, ``(N q, n + 1)`` in the model's dtype.

        ``F J`` comes from back-propagating ``F (N, q, k)`` (rows already
        weighted) through the forward pass ``state`` of
        :meth:`outputs_and_state`, so the weights and ``F`` cost a pass over
        ``N q u`` sensitivities rather than over the ``N q n`` rows; the
        residuals ``e (N, q)`` are the last column.
        """
        blocks = self._row_blocks(state, f)
        rows = tf.concat([*blocks, tf.cast(e, self.dtype)[:, :, None]], axis=-1)
        return tf.reshape(rows, [-1, self.n_params + 1])

    def _jacobian(self, out, trace):
        k = self.n_outputs
        eye = tf.eye(k, dtype=self.dtype)[None]
        eye = tf.broadcast_to(eye, [tf.shape(out)[0], k, k])
        return tf.concat(self._row_blocks(trace, eye), axis=-1)


class AutodiffFunction(ModelFunction):
    """Any Keras model, differentiated per sample with ``tf.vectorized_map``.

    Parameters
    ----------
    model : keras.Model
        A built model with a single input and a single output tensor.
    mode : {"auto", "reverse", "forward"}, default="auto"
        ``"auto"`` picks forward mode when the model has fewer weights than
        outputs per sample, reverse mode otherwise.
    """

    def __init__(self, model: keras.Model, mode: str = "auto"):
        super().__init__(model)
        if mode == "auto":
            mode = "forward" if self.n_params < self.n_outputs else "reverse"
        self.mode = mode

    def _call(self, w, x):
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        out, _ = self.model.stateless_call(
            self.unflatten(w), non_trainable, x, training=False
        )
        return tf.reshape(out, [-1, self.n_outputs])

    def outputs(self, w, x):
        return self._call(w, tf.cast(x, self.model.input_dtype))

    def outputs_and_jacobian(self, w, x):
        x = tf.cast(x, self.model.input_dtype)
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


def _activation_name(activation) -> str | None:
    try:
        name = keras.activations.serialize(activation)
    except (ValueError, TypeError):
        return None
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    return name if name in _DERIVATIVES else None


def _dense_layers(model: keras.Model) -> list | None:
    """The Dense layers of ``model`` if it is a plain chain of them, else None."""
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not layers or not all(type(layer) is keras.layers.Dense for layer in layers):
        return None
    if any(_activation_name(layer.activation) is None for layer in layers):
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
    """Choose the :class:`ModelFunction` for ``model``.

    Parameters
    ----------
    model : keras.Model
        A built Keras model with one input and one output.
    jacobian : {"auto", "dense", "reverse", "forward"}, default="auto"
        ``"auto"`` uses the closed form when the model is a chain of ``Dense``
        layers whose outputs it reproduces, else ``AutodiffFunction("auto")``.

    Returns
    -------
    ModelFunction
    """
    if jacobian not in ("auto", "dense", "reverse", "forward"):
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
            if _reproduces(chain, model):
                return chain
        if jacobian == "dense":
            raise ValueError(
                "jacobian='dense' needs a model that is a plain chain of "
                "keras.layers.Dense layers with elementwise activations "
                f"({sorted(_DERIVATIVES)}). Received: model={model.name!r}"
            )
        jacobian = "auto"
    return AutodiffFunction(model, mode=jacobian)


def _reproduces(chain: DenseChain, model: keras.Model) -> bool:
    """Check the closed form against the model itself on a random batch."""
    n_in = int(model.inputs[0].shape[-1]) if _has_outputs(model) else None
    if n_in is None or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    probe = np.random.default_rng(0).standard_normal((3, n_in))
    probe = tf.constant(probe, dtype=chain.dtype)
    ours = chain.outputs(chain.get_weights(), probe).numpy()
    theirs = np.asarray(model(probe, training=False))
    tol = 1e-4 if chain.dtype != tf.float64 else 1e-10
    return theirs.shape == ours.shape and np.allclose(ours, theirs, rtol=tol, atol=tol)
