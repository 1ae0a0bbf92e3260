"""The loss interface of the engine: :class:`Loss` and :class:`ResidualLoss`.

See :mod:`sklearn_lm.engine.losses` for the form every loss takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["Loss", "ResidualLoss", "LogitsResidualLoss"]

_F64 = tf.float64


class Loss:
    """Base class of the losses the engine trains with.

    Subclasses implement :meth:`sample_losses` and :meth:`linearize`; the
    engine never calls anything else. A custom least-squares loss is easiest
    written as a :class:`ResidualLoss`, which only needs :meth:`residuals`.

    Attributes
    ----------
    curvature_scale : float
        ``s`` in the module docstring: 2 for residual-form losses, 1 for
        generalised Gauss-Newton ones.
    sparse_targets : bool
        Whether targets are integer class indices (then they are passed to the
        loss as ``int32``), rather than arrays shaped like the outputs.
    """

    curvature_scale: float = 2.0
    sparse_targets: bool = False

    def output_normaliser(self, n_outputs: int) -> int:
        """Return ``c``, the per-sample normaliser of the loss value."""
        return 1

    def residuals_per_sample(self, n_outputs: int) -> int:
        """Return ``q``, the length of ``e_i`` for a model with ``n_outputs``."""
        raise NotImplementedError

    def sample_losses(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Per-sample losses ``l_i`` in float64, shape ``(N,)``."""
        raise NotImplementedError

    def linearize(
        self, y_true: tf.Tensor, y_pred: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Return ``(e, F)``: shapes ``(N, q)`` and ``(N, q, k)`` (float64).

        ``F`` may be ``None``, meaning the identity (``q == k``).
        """
        raise NotImplementedError

    def curvature_times(
        self, y_true: tf.Tensor, y_pred: tf.Tensor
    ) -> Callable[[tf.Tensor], tf.Tensor] | None:
        """``u -> F^T F u`` for output vectors ``u (N, k)``, or ``None``.

        The conjugate-gradient solver applies the curvature of the loss on
        the outputs once per iteration. A loss whose ``F^T F`` has a cheap
        closed form returns it here (float64 in and out, ``F`` as returned by
        :meth:`linearize` at the same arguments); ``None`` (this default)
        makes the solver form ``F^T F`` from :meth:`linearize`.
        """
        return None

    def __call__(self, y_true, y_pred, sample_weight=None) -> tf.Tensor:
        """The loss value (float64 scalar), reduced like Keras' losses."""
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = self.prepare_targets(y_true)
        per_sample = self.sample_losses(y_true, y_pred)
        if sample_weight is not None:
            per_sample = per_sample * tf.reshape(tf.cast(sample_weight, _F64), [-1])
        n = tf.cast(tf.shape(per_sample)[0], _F64)
        c = self.output_normaliser(int(y_pred.shape[-1]))
        return tf.reduce_sum(per_sample) / (n * c)

    def prepare_targets(self, y_true) -> tf.Tensor:
        """Convert targets to the tensor layout :meth:`sample_losses` expects."""
        if self.sparse_targets:
            y = tf.convert_to_tensor(y_true)
            return tf.cast(tf.reshape(y, [-1]), tf.int32)
        return tf.cast(tf.convert_to_tensor(y_true), _F64)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; used to share compiled steps between fits."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ResidualLoss(Loss):
    """A least-squares loss ``l_i = sum_j r_ij**2`` given by its residuals.

    Subclasses implement :meth:`residuals`; the Jacobian ``F = dr/dz`` is
    obtained by automatic differentiation (per sample, vectorised), unless a
    subclass provides a closed form in :meth:`residual_jacobian`.
    """

    curvature_scale = 2.0

    def residuals(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Residuals ``r``, shape ``(N, q)``, float64, from float64 ``y_pred``."""
        raise NotImplementedError

    def residuals_per_sample(self, n_outputs: int) -> int:
        return 1

    def residual_jacobian(self, y_true, y_pred, r) -> tf.Tensor | None:
        """Closed-form ``dr/dz`` (``(N, q, k)``), or ``None`` for autodiff."""
        return None

    def sample_losses(self, y_true, y_pred):
        r = self.residuals(y_true, tf.cast(y_pred, _F64))
        return tf.reduce_sum(tf.square(r), axis=-1)

    def linearize(self, y_true, y_pred):
        z = tf.cast(y_pred, _F64)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            r = self.residuals(y_true, z)
        jac = self.residual_jacobian(y_true, z, r)
        if jac is None:
            jac = tape.batch_jacobian(r, z)
        return r, jac


class LogitsResidualLoss(ResidualLoss):
    """A :class:`ResidualLoss` of class outputs that may be logits.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits.
    """

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}
