"""Losses in the form the Levenberg-Marquardt step needs.

Every loss here is a mean over samples of a per-sample loss ``l_i``::

    value = sum_i w_i * l_i / (N * c)

with ``N`` the number of samples, ``w_i`` the sample weights and ``c`` the
loss's :attr:`Loss.output_normaliser` (the number of outputs for the mean
squared errors, 1 otherwise), exactly as Keras reduces its own losses.

For the step, a loss *linearises* itself around the model outputs ``z``: it
returns, per sample, a vector ``e_i`` (length ``q``, the residuals per sample)
and a matrix ``F_i`` (``q x k``, ``k`` outputs) such that

* the gradient of the loss is ``s / (N c) * sum_i J_i^T F_i^T e_i``,
* its (generalised) Gauss-Newton curvature is ``s / (N c) * sum_i J_i^T F_i^T F_i J_i``,

where ``J_i`` is the Jacobian of the model outputs for sample ``i`` and ``s``
is :attr:`Loss.curvature_scale`. For a residual-form loss (``l_i = |r_i|^2``)
``e_i = r_i``, ``F_i = dr_i/dz_i`` and ``s = 2``; then ``value ==
sum(w * r**2) / (N c)`` holds exactly. The cross-entropies also offer a
generalised Gauss-Newton form (``s = 1``) whose curvature on the logits is
``H = diag(p) - p p^T`` for softmax and ``p (1 - p)`` for sigmoid outputs.

All linearisation arithmetic is done in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

__all__ = [
    "Loss",
    "ResidualLoss",
    "MeanSquaredError",
    "ReducedOutputsMeanSquaredError",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "SquaredCategoricalCrossentropy",
    "CategoricalMeanSquaredError",
    "get",
]

_F64 = tf.float64
#: Probabilities are kept in ``[_P_MIN, 1 - _P_MIN]`` inside the linearisations.
_P_MIN = 1e-12


def _eps() -> float:
    return float(keras.config.epsilon())


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


class MeanSquaredError(ResidualLoss):
    """Mean squared error: residuals ``r = y_pred - y_true``, one per output.

    ``value = sum(w * r**2) / (N * k)``, the same as
    ``keras.losses.MeanSquaredError``.
    """

    def output_normaliser(self, n_outputs):
        return n_outputs

    def residuals_per_sample(self, n_outputs):
        return n_outputs

    def residuals(self, y_true, y_pred):
        return y_pred - tf.reshape(y_true, tf.shape(y_pred))

    def linearize(self, y_true, y_pred):
        return self.residuals(y_true, tf.cast(y_pred, _F64)), None


class ReducedOutputsMeanSquaredError(ResidualLoss):
    """Mean squared error with one residual per sample.

    ``r_i = sqrt(mean_k (y_pred - y_true)**2)``: the value equals the mean
    squared error, but the Jacobian has one row per sample instead of ``k``,
    which makes each step cheaper for models with many outputs.
    """

    def residuals(self, y_true, y_pred):
        diff = y_pred - tf.reshape(y_true, tf.shape(y_pred))
        return tf.sqrt(tf.reduce_mean(tf.square(diff), axis=-1, keepdims=True))

    def residual_jacobian(self, y_true, y_pred, r):
        diff = y_pred - tf.reshape(y_true, tf.shape(y_pred))
        k = tf.cast(tf.shape(y_pred)[-1], _F64)
        safe = tf.maximum(r, 1e-150)
        return (diff / (k * safe))[:, None, :]


def _probabilities(y_pred, from_logits: bool, softmax: bool):
    """Probabilities in float64, clipped like Keras does for probability inputs."""
    z = tf.cast(y_pred, _F64)
    if from_logits:
        return tf.nn.softmax(z, axis=-1) if softmax else tf.sigmoid(z)
    if softmax:
        z = z / tf.reduce_sum(z, axis=-1, keepdims=True)
    return tf.clip_by_value(z, _eps(), 1.0 - _eps())


class _CrossentropyBase(Loss):
    """Shared linearisations of the cross-entropies.

    With ``gauss_newton=True`` (the default) the step uses the generalised
    Gauss-Newton curvature of the cross-entropy on the logits; with
    ``gauss_newton=False`` it uses the square root of the per-sample loss as
    a single residual (``q = 1``), as earlier LM implementations did.
    """

    _softmax = True

    def __init__(self, from_logits: bool = False, gauss_newton: bool = True):
        self.from_logits = bool(from_logits)
        self.gauss_newton = bool(gauss_newton)
        self.curvature_scale = 1.0 if self.gauss_newton else 2.0

    def get_config(self):
        return {"from_logits": self.from_logits, "gauss_newton": self.gauss_newton}

    def residuals_per_sample(self, n_outputs):
        return n_outputs if self.gauss_newton else 1

    def _one_hot(self, y_true, n_outputs):
        return tf.cast(y_true, _F64)

    def linearize(self, y_true, y_pred):
        if not self.gauss_newton:
            return self._sqrt_linearize(y_true, y_pred)
        k = int(y_pred.shape[-1])
        y = self._one_hot(y_true, k)
        p_raw = _probabilities(y_pred, self.from_logits, self._softmax)
        p = tf.clip_by_value(p_raw, _P_MIN, 1.0 - _P_MIN)
        if self._softmax:
            s = tf.sqrt(p)
            # Curvature on the logits: H = diag(p) - p p^T = A A^T with
            # A = diag(s) - p s^T, so F = A^T and F^T e = p - y for
            # e = (p - y) / s (this uses sum(p) == sum(y) == 1).
            f = tf.linalg.diag(s) - s[:, :, None] * p[:, None, :]
            e = (p - y) / s
            if not self.from_logits:
                # Probability outputs: logits = log(p), so dlogits/dp = 1/p.
                f = f / p[:, None, :]
        else:
            v = tf.sqrt(p * (1.0 - p))
            e = (p - y) / v
            f = tf.linalg.diag(v if self.from_logits else 1.0 / v)
        return e, f

    def curvature_times(self, y_true, y_pred):
        """Closed forms of ``F^T F u`` for :meth:`linearize`'s ``F``.

        Softmax: ``p * u - (2 - sum(p)) p (p . u)`` (``diag(p) - p p^T`` up to
        the clipping of ``p``); sigmoid: ``p (1 - p) u``; with probability
        outputs, divided by ``p`` on both sides (respectively ``p (1 - p)``).
        ``None`` without ``gauss_newton``.
        """
        if not self.gauss_newton:
            return None
        p = _probabilities(y_pred, self.from_logits, self._softmax)
        p = tf.clip_by_value(p, _P_MIN, 1.0 - _P_MIN)
        if not self._softmax:
            v = p * (1.0 - p)
            scale = v if self.from_logits else 1.0 / v
            return lambda u: scale * u
        rank_one = 2.0 - tf.reduce_sum(p, axis=-1, keepdims=True)

        def times(u):
            if not self.from_logits:
                u = u / p
            out = p * u - rank_one * p * tf.reduce_sum(p * u, axis=-1, keepdims=True)
            return out if self.from_logits else out / p

        return times

    def _sqrt_linearize(self, y_true, y_pred):
        z = tf.cast(y_pred, _F64)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            loss = self.sample_losses(y_true, z)
        grad = tape.gradient(loss, z)
        r = tf.sqrt(tf.maximum(loss, 0.0))
        jac = grad / (2.0 * tf.maximum(r, 1e-150))[:, None]
        return r[:, None], jac[:, None, :]


class CategoricalCrossentropy(_CrossentropyBase):
    """Categorical cross-entropy with one-hot (or probability) targets.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits (else probabilities, e.g. softmax).
    gauss_newton : bool, default=True
        Use the generalised Gauss-Newton step (curvature ``diag(p) - p p^T``
        on the logits, ``q = k`` rows per sample). ``False`` uses the square
        root of the per-sample loss as one residual.
    """

    def sample_losses(self, y_true, y_pred):
        y = self._one_hot(y_true, int(y_pred.shape[-1]))
        z = tf.cast(y_pred, _F64)
        if self.from_logits:
            return -tf.reduce_sum(y * tf.nn.log_softmax(z, axis=-1), axis=-1)
        p = _probabilities(z, False, True)
        return -tf.reduce_sum(y * tf.math.log(p), axis=-1)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class targets, shape ``(N,)``.

    Parameters are those of :class:`CategoricalCrossentropy`.
    """

    sparse_targets = True

    def _one_hot(self, y_true, n_outputs):
        return tf.one_hot(tf.reshape(y_true, [-1]), n_outputs, dtype=_F64)


class BinaryCrossentropy(_CrossentropyBase):
    """Binary cross-entropy per output (sigmoid), averaged over outputs.

    Targets are 0/1 arrays shaped like the outputs. Parameters are those of
    :class:`CategoricalCrossentropy`; the Gauss-Newton curvature per output
    is ``p (1 - p)``.
    """

    _softmax = False

    def output_normaliser(self, n_outputs):
        return n_outputs if self.gauss_newton else 1

    def sample_losses(self, y_true, y_pred):
        z = tf.cast(y_pred, _F64)
        y = tf.reshape(tf.cast(y_true, _F64), tf.shape(z))
        if self.from_logits:
            per_output = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)
        else:
            p = _probabilities(z, False, False)
            per_output = -(y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
        if self.gauss_newton:
            return tf.reduce_sum(per_output, axis=-1)
        return tf.reduce_mean(per_output, axis=-1)


class SquaredCategoricalCrossentropy(ResidualLoss):
    """The square of the categorical cross-entropy, one residual per sample.

    ``r_i = CE_i`` (one-hot targets), so ``value = mean(CE**2)``. It pushes
    hardest on the worst-classified samples.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits.
    """

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def residuals(self, y_true, y_pred):
        ce = CategoricalCrossentropy(self.from_logits, gauss_newton=False)
        return ce.sample_losses(y_true, y_pred)[:, None]


class CategoricalMeanSquaredError(ResidualLoss):
    """Mean squared error between predicted probabilities and one-hot targets.

    ``r = softmax(z) - y`` with ``from_logits=True``, else ``r = z - y``.

    Parameters
    ----------
    from_logits : bool, default=False
        Whether the model outputs logits.
    """

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def output_normaliser(self, n_outputs):
        return n_outputs

    def residuals_per_sample(self, n_outputs):
        return n_outputs

    def residuals(self, y_true, y_pred):
        p = tf.nn.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        return p - tf.reshape(y_true, tf.shape(p))


_REGISTRY: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "reduced_outputs_mse": ReducedOutputsMeanSquaredError,
    "reduced_outputs_mean_squared_error": ReducedOutputsMeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "squared_categorical_crossentropy": SquaredCategoricalCrossentropy,
    "categorical_mse": CategoricalMeanSquaredError,
    "categorical_mean_squared_error": CategoricalMeanSquaredError,
}


def get(identifier: str | Loss, **kwargs: Any) -> Loss:
    """Return a :class:`Loss` from a name or an instance.

    Parameters
    ----------
    identifier : str or Loss
        One of the registered names (see ``ValueError`` message) or an
        instance, returned unchanged.
    **kwargs
        Constructor arguments (e.g. ``from_logits=True``) for a name.

    Returns
    -------
    Loss
    """
    if isinstance(identifier, Loss):
        if kwargs:
            raise ValueError(
                "Loss arguments can only be given with a loss name. "
                f"Received: loss={identifier!r}, kwargs={kwargs}"
            )
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()](**kwargs)
    raise ValueError(
        f"Unknown loss. Expected a sklearn_lm.engine.losses.Loss or one of "
        f"{sorted(_REGISTRY)}. Received: loss={identifier!r}"
    )
