"""A Keras model seen as a function of one flat weight vector.

The step works on ``w``, the concatenation of ``model.trainable_variables``
(each flattened in row-major order), in the model's dtype. Two
implementations share one interface (:class:`ModelFunction`):

* :class:`~sklearn_lm.engine.dense_chain.DenseChain` -- closed-form outputs
  and Jacobian for a plain chain of ``keras.layers.Dense`` layers with
  elementwise activations (the networks the estimators build).
  Back-propagates ``k`` output sensitivities at once; the cost of a Jacobian
  is about ``k + 1`` forward passes.
* :class:`~sklearn_lm.engine.autodiff.AutodiffFunction` -- any Keras model,
  through ``model.stateless_call``. The Jacobian is computed per sample and
  vectorised with ``tf.vectorized_map`` in reverse mode (``k`` backward
  passes per sample) or, when the model has fewer weights than outputs per
  sample, in forward mode (one forward pass per weight). This avoids the
  batch-by-batch intermediates of a whole-batch ``tape.jacobian``.

What an implementation offers beyond the interface is declared in its
:class:`Capabilities`, read by the step (never probed with ``hasattr``).
:func:`~sklearn_lm.engine.dense_chain.model_function` chooses the
implementation for a model.

Models are evaluated in inference mode (``training=False``): LM compares
losses between attempts, which a random layer such as dropout would spoil.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .signature import model_signature

try:  # the class of a plain (not distributed) TensorFlow variable
    from tensorflow.python.ops.resource_variable_ops import (
        ResourceVariable as _RESOURCE_VARIABLE,
    )
except ImportError:  # pragma: no cover - other TensorFlow layouts
    _RESOURCE_VARIABLE = None

__all__ = ["Capabilities", "ModelFunction"]


@dataclass(frozen=True)
class Capabilities:
    """What a :class:`ModelFunction` offers beyond its interface.

    Each field says whether the methods it names are implemented; where it
    is ``False`` they raise ``NotImplementedError`` and the step uses the
    general path (Jacobian rows, or automatic differentiation).

    Attributes
    ----------
    closed_form : bool
        Outputs, Jacobian and curvature are closed forms of a chain of
        ``Dense`` layers, not automatic differentiation.
    layerwise_gauss_newton : bool
        :meth:`~ModelFunction.structured_width`,
        :meth:`~ModelFunction.gauss_newton` and
        :meth:`~ModelFunction.transpose_times`: ``J^T F^T F J`` and
        ``J^T F^T r`` summed layer by layer, without the rows ``F J``.
    weighted_rows : bool
        :meth:`~ModelFunction.weighted_rows`: the rows ``[F J | e]`` from
        back-propagated ``F``.
    gauss_newton_diagonal : bool
        :meth:`~ModelFunction.gauss_newton_diagonal`: ``diag(J^T F^T F J)``
        without forming ``F J``.
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
        What the class offers beyond this interface (class attribute; none
        here).
    """

    capabilities = Capabilities()

    def __init__(self, model: keras.Model):
        self.model = model
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.n_params = int(sum(self.sizes))
        self.dtype = tf.as_dtype(self.variables[0].dtype)
        self._input_dtype, self.n_outputs = model_signature(model)
        self.key = None

    @property
    def input_dtype(self) -> tf.DType:
        """The dtype inputs are cast to before they are evaluated.

        Here the dtype the model declares for its input
        (:func:`~sklearn_lm.engine.signature.model_signature`):
        ``keras.Input(dtype=...)`` of a functional model, never Keras'
        global dtype policy, so a float64 model keeps float64 inputs
        whatever ``floatx`` is. A closed form evaluates in
        the model's dtype.
        """
        return self._input_dtype

    # -- weights <-> variables -------------------------------------------------
    def get_weights(self) -> tf.Tensor:
        """Current weights of the model as one flat vector, in the model's dtype.

        Eagerly, the variables are read to the host and joined there (one
        tensor op, against one reshape op per variable plus a concatenation);
        inside a graph, by TensorFlow ops.
        """
        if not tf.executing_eagerly():
            return tf.concat([tf.reshape(v.value, [-1]) for v in self.variables], 0)
        parts = [np.asarray(v.value).reshape(-1) for v in self.variables]
        if not parts:
            return tf.zeros([0], self.dtype)
        return tf.constant(np.concatenate(parts))

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
        raise self._missing("outputs")

    def outputs_and_jacobian(self, w: tf.Tensor, x: tf.Tensor):
        """Return ``(z, J)``: outputs ``(N, k)`` and Jacobian ``(N, k, n)``."""
        raise self._missing("outputs_and_jacobian")

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
        mode. :class:`~sklearn_lm.engine.dense_chain.DenseChain` overrides it
        with a closed form, which is
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
        sum in float64 (:func:`~sklearn_lm.engine.products.transposed_product`): for
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

    # -- declared capabilities (see Capabilities) -------------------------------
    def structured_width(self) -> int:
        """Values per sample held by :meth:`gauss_newton`'s largest product.

        Offered where ``capabilities.layerwise_gauss_newton``.
        """
        raise self._missing("structured_width", "layerwise_gauss_newton")

    def gauss_newton(self, state, f: tf.Tensor, e: tf.Tensor):
        """``(J^T F^T F J, J^T F^T e)`` in float64, without forming ``F J``.

        For the forward pass ``state`` of :meth:`outputs_and_state`, the
        factor ``F (N, q, k)`` and the residuals ``e (N, q)``. Offered where
        ``capabilities.layerwise_gauss_newton``.
        """
        raise self._missing("gauss_newton", "layerwise_gauss_newton")

    def transpose_times(self, state, f: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        """``J^T F^T r`` (float64, ``(n,)``) for rows ``r (N, q)``.

        Offered where ``capabilities.layerwise_gauss_newton``.
        """
        raise self._missing("transpose_times", "layerwise_gauss_newton")

    def weighted_rows(self, state, f: tf.Tensor, e: tf.Tensor) -> tf.Tensor:
        """The rows ``[F J | e]``, ``(N q, n + 1)`` in the model's dtype.

        Offered where ``capabilities.weighted_rows``.
        """
        raise self._missing("weighted_rows", "weighted_rows")

    def gauss_newton_diagonal(self, state, f: tf.Tensor) -> tf.Tensor:
        """``diag(J^T F^T F J)`` (float64, ``(n,)``) without forming ``F J``.

        Offered where ``capabilities.gauss_newton_diagonal``.
        """
        raise self._missing("gauss_newton_diagonal", "gauss_newton_diagonal")

    def _missing(self, method: str, capability: str | None = None):
        reason = (
            "it is abstract"
            if capability is None
            else f"its capabilities.{capability} is False"
        )
        return NotImplementedError(
            f"{type(self).__name__} does not implement {method}(): {reason}. "
            f"Received: capabilities={self.capabilities}"
        )
