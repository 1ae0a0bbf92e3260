"""Elementwise activations of ``Dense`` layers: one table for the package.

For each activation ``phi`` that the estimators accept, :data:`ACTIVATIONS`
holds an :class:`Activation`: ``phi`` in TensorFlow (the op that
``keras.activations`` runs, so that the closed form of
:class:`~sklearn_lm.engine.dense_chain.DenseChain` reproduces a Keras model),
its first and second derivatives for the closed-form Jacobian and curvature,
and ``phi`` in float64 NumPy for :func:`sklearn_lm.network.forward`.

The derivatives are functions of the pre-activation ``z`` and of the
activation ``a = phi(z)``, which the forward pass has already computed
(``sigma`` is the logistic function, ``Phi`` and ``varphi`` the standard
normal distribution function and density, ``s`` and ``alpha`` the SELU
constants):

* ``linear``: ``phi = z``, ``phi' = 1``, ``phi'' = 0``;
* ``tanh``: ``phi = tanh z``, ``phi' = 1 - a^2``, ``phi'' = -2 a phi'``;
* ``sigmoid``: ``phi = sigma(z)``, ``phi' = a (1 - a)``,
  ``phi'' = (1 - 2 a) phi'``;
* ``relu``: ``phi = max(z, 0)``, ``phi' = [z > 0]``, ``phi'' = 0``;
* ``elu``: ``phi = z; e^z - 1``, ``phi' = 1; a + 1``, ``phi'' = 0; a + 1``;
* ``selu``: ``phi = s z; s alpha (e^z - 1)``, ``phi' = s; a + s alpha``,
  ``phi'' = 0; a + s alpha``;
* ``softplus``: ``phi = log(1 + e^z)``, ``phi' = sigma(z)``,
  ``phi'' = sigma(z) (1 - sigma(z))``;
* ``softsign``: ``phi = z / (1 + |z|)``, ``phi' = 1 / (1 + |z|)^2``,
  ``phi'' = -2 sign(z) / (1 + |z|)^3``;
* ``gelu``: ``phi = z Phi(z)``, ``phi' = Phi(z) + z varphi(z)``,
  ``phi'' = varphi(z) (2 - z^2)``;
* ``silu``: ``phi = z sigma(z)``, ``phi' = sigma (1 + z (1 - sigma))``,
  ``phi'' = sigma (1 - sigma) (2 + z (1 - 2 sigma))`` with ``sigma = sigma(z)``.

(``x; y``: ``x`` for ``z > 0``, ``y`` otherwise.) ``gelu`` is the exact form
(``approximate=False``), the default of ``keras.activations.gelu``: its
derivatives are those of ``tf.nn.gelu``, which rounds ``1 / sqrt(2)`` to
float32 inside ``Phi`` (a relative difference below ``1e-6`` in float64).
``swish`` is Keras' other name for ``silu`` (:data:`ALIASES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

__all__ = ["ACTIVATIONS", "ALIASES", "Activation", "activation_name"]

#: The constants of SELU (Klambauer et al., 2017), as in ``tf.nn.selu``.
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_SELU_SLOPE = SELU_SCALE * SELU_ALPHA  # phi'(0-) = s alpha
# tf.nn.gelu computes Phi(z) as erfc(-c z) / 2 with c = 1 / sqrt(2) cast from
# a Python float through float32; the derivatives below are those of that
# function: phi' = Phi + k z e^(-c^2 z^2), phi'' = k e^(-c^2 z^2) (2 - 2 c^2 z^2)
# with k = c / sqrt(pi) (= varphi(0) and varphi(z) when c^2 = 1/2).
_GELU_C = float(np.float32(1.0 / math.sqrt(2.0)))
_GELU_K = _GELU_C / math.sqrt(math.pi)


class Activation(NamedTuple):
    """One activation ``phi`` and what the engine and ``network.py`` use of it.

    Attributes
    ----------
    name : str
        The Keras name.
    forward : callable or None
        ``z -> phi(z)`` on TensorFlow tensors; ``None`` for the identity.
    slope : callable or None
        ``(z, a) -> phi'(z)`` with ``a = phi(z)``; ``None`` for the identity.
    bend : callable or None
        ``(z, a) -> phi''(z)``; ``None`` where ``phi''`` is zero everywhere
        or where :attr:`bend_ratio` stands for it.
    numpy : callable
        ``z -> phi(z)`` on float64 NumPy arrays.
    bend_ratio : callable or None
        ``(z, a) -> phi''(z) / phi'(z)`` where that is simple: the curvature
        term ``phi''(z) z1^2`` is then ``ratio * z1 * a1`` with
        ``a1 = phi'(z) z1``, which is already computed.
    slope_times : callable or None
        ``(z, a, t) -> phi'(z) * t`` in one fused op, the activation's
        gradient kernel (``TanhGrad``, ``SigmoidGrad``, ``ReluGrad``), for
        ``t`` shaped like ``a``; ``None`` where there is none.
    """

    name: str
    forward: Callable | None
    slope: Callable | None
    bend: Callable | None
    numpy: Callable[[np.ndarray], np.ndarray]
    bend_ratio: Callable | None = None
    slope_times: Callable | None = None


# -- float64 NumPy forms -------------------------------------------------------
# SciPy (installed with scikit-learn) is imported on first use, so that the
# engine itself imports without it.
def _expit(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(z)


def _np_linear(z: np.ndarray) -> np.ndarray:
    return z


def _np_relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _np_elu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


def _np_selu(z: np.ndarray) -> np.ndarray:
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))


def _np_softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _np_softsign(z: np.ndarray) -> np.ndarray:
    return z / (1.0 + np.abs(z))


def _np_gelu(z: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))


def _np_silu(z: np.ndarray) -> np.ndarray:
    return z * _expit(z)


# -- TensorFlow derivatives that need more than one line -----------------------
def _softsign_slope(z, a):
    return tf.square(1.0 / (1.0 + tf.abs(z)))


def _softsign_bend(z, a):
    inverse = 1.0 / (1.0 + tf.abs(z))
    return -2.0 * tf.sign(z) * inverse * tf.square(inverse)


def _gelu_slope(z, a):
    cdf = 0.5 * tf.math.erfc(-_GELU_C * z)
    return cdf + _GELU_K * z * tf.exp(-tf.square(_GELU_C * z))


def _gelu_bend(z, a):
    square = tf.square(_GELU_C * z)
    return _GELU_K * tf.exp(-square) * (2.0 - 2.0 * square)


def _selu_slope(z, a):
    return tf.where(z > 0, tf.constant(SELU_SCALE, a.dtype), a + _SELU_SLOPE)


def _selu_bend(z, a):
    return tf.where(z > 0, tf.zeros_like(a), a + _SELU_SLOPE)


_SILU = Activation(
    "silu",
    tf.nn.silu,
    lambda z, a: tf.sigmoid(z) * (1.0 + z * (1.0 - tf.sigmoid(z))),
    lambda z, a: (
        tf.sigmoid(z) * (1.0 - tf.sigmoid(z)) * (2.0 + z * (1.0 - 2.0 * tf.sigmoid(z)))
    ),
    _np_silu,
)

#: Every activation the estimators accept, by its Keras name.
ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation("linear", None, None, None, _np_linear),
    "tanh": Activation(
        "tanh",
        tf.tanh,
        lambda z, a: 1.0 - tf.square(a),
        None,
        np.tanh,
        bend_ratio=lambda z, a: -2.0 * a,
        slope_times=lambda z, a, t: tf.raw_ops.TanhGrad(y=a, dy=t),
    ),
    "sigmoid": Activation(
        "sigmoid",
        tf.sigmoid,
        lambda z, a: a * (1.0 - a),
        None,
        _expit,
        bend_ratio=lambda z, a: 1.0 - 2.0 * a,
        slope_times=lambda z, a, t: tf.raw_ops.SigmoidGrad(y=a, dy=t),
    ),
    "relu": Activation(
        "relu",
        tf.nn.relu,
        lambda z, a: tf.cast(z > 0, a.dtype),
        None,
        _np_relu,
        slope_times=lambda z, a, t: tf.raw_ops.ReluGrad(gradients=t, features=z),
    ),
    "elu": Activation(
        "elu",
        tf.nn.elu,
        lambda z, a: tf.where(z > 0, tf.ones_like(a), a + 1.0),
        lambda z, a: tf.where(z > 0, tf.zeros_like(a), a + 1.0),
        _np_elu,
    ),
    "selu": Activation("selu", tf.nn.selu, _selu_slope, _selu_bend, _np_selu),
    "softplus": Activation(
        "softplus",
        tf.nn.softplus,
        lambda z, a: tf.sigmoid(z),
        lambda z, a: tf.sigmoid(z) * (1.0 - tf.sigmoid(z)),
        _np_softplus,
    ),
    "softsign": Activation(
        "softsign", tf.nn.softsign, _softsign_slope, _softsign_bend, _np_softsign
    ),
    "gelu": Activation(
        "gelu",
        lambda z: tf.nn.gelu(z, approximate=False),
        _gelu_slope,
        _gelu_bend,
        _np_gelu,
    ),
    "silu": _SILU,
}

#: Other Keras names of activations of :data:`ACTIVATIONS`.
ALIASES = {"swish": "silu"}


def activation_name(activation) -> str | None:
    """The name in :data:`ACTIVATIONS` of a Keras activation, else ``None``.

    Parameters
    ----------
    activation : callable
        An activation as Keras layers hold it (``layer.activation``). Aliases
        (:data:`ALIASES`) give the name they stand for; a function that Keras
        serialises as a dictionary gives the name in its ``config``.

    Returns
    -------
    str or None
        A key of :data:`ACTIVATIONS`; ``None`` for an activation the table
        does not have (or that Keras cannot serialise, such as a NumPy
        ufunc).
    """
    try:
        name = keras.activations.serialize(activation)
    except (ValueError, TypeError, AttributeError):
        return None
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str):
        return None
    name = ALIASES.get(name, name)
    return name if name in ACTIVATIONS else None
