r"""The posterior of a Bayesian-regularized fit, and what it predicts.

The linearised Laplace (generalised linear model) posterior of the weights
has covariance ``A^{-1}`` (:func:`posterior_covariance`), with ``A`` the
Gauss-Newton Hessian of the objective of
:mod:`sklearn_lm.engine.bayesian`. The predictive variance of an output at
an input ``x`` is

.. math::

    \sigma^2(x) = \frac1\beta + g^T A^{-1} g, \qquad
    g = \frac{\partial \hat y(x)}{\partial w}

(:func:`predictive_variance` gives ``g^T A^{-1} g``); for a classifier the
variances of the logits moderate the probabilities
(:func:`moderated_probabilities`, MacKay's probit approximation).
Everything here is float64.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from . import losses as losses_module
from .evidence import _hessian, _one_blas_thread

__all__ = [
    "normal_matrix",
    "posterior_covariance",
    "predictive_variance",
    "moderated_probabilities",
]

_F64 = tf.float64
#: Bytes of float64 Jacobian per chunk in :func:`predictive_variance`.
_CHUNK_BYTES = 32 * 2**20


def normal_matrix(fn, x, y, sample_weight=None) -> tuple[np.ndarray, float]:
    """``(J^T S J, sum(s e^2))`` of the mean squared error at ``fn``'s weights.

    ``J`` is the Jacobian of the outputs (one residual per output), ``S``
    the sample weights; float64, accumulated over chunks of samples
    (:mod:`sklearn_lm.engine.covariance`).
    """
    from . import covariance

    loss = losses_module.get("mse")
    x, y, sw = covariance._prepare(fn, loss, x, y, sample_weight)
    n, k = int(fn.n_params), int(fn.n_outputs)
    size = max(1, covariance.CHUNK_BYTES // (8 * k * n))
    return covariance._normal_matrix(fn, loss, x, y, sw, size)


def posterior_covariance(
    normal: np.ndarray,
    mask: np.ndarray,
    alpha: float | np.ndarray,
    beta: float,
    shift: np.ndarray | None = None,
) -> np.ndarray | None:
    """``A^{-1}`` for ``A = beta J^T S J + alpha diag(p)``, or ``None``.

    ``alpha`` may be one entry per weight (``alpha_{g(j)}``, groups of
    weights: ``BayesianRegularization.weight_alpha``).

    Inverted after scaling to a unit diagonal, from a Cholesky factor or,
    when that is not well conditioned, an eigendecomposition
    (:mod:`sklearn_lm.engine.covariance`); ``None`` when ``A`` is singular:
    an eigenvalue of the scaled matrix at most ``eps * n`` times the largest
    (with ``alpha = 0``, some combination of weights does not change the
    outputs), or a diagonal entry that is not positive. With a ``shift``
    ``u`` (:func:`shift_direction`), the pseudo-inverse
    ``(A + u u^T)^{-1} - u u^T``: no variance along ``u``. Float64.
    """
    from .covariance import _scaled_inverse

    a = _hessian(normal, mask, alpha, beta, shift)
    with _one_blas_thread():
        inverse, _ = _scaled_inverse(a, tol=np.finfo(np.float64).eps * len(mask))
    if inverse is not None and shift is not None:
        inverse = inverse - np.outer(shift, shift)
    return inverse


def predictive_variance(fn, x, covariance: np.ndarray) -> np.ndarray:
    """``g^T C g`` for every sample and output, ``g = d z / d w``; float64.

    Parameters
    ----------
    fn : ModelFunction
        The model as a function of its weights, taken at ``fn.get_weights()``.
    x : array-like of shape (N, ...)
        Inputs.
    covariance : ndarray of shape (n, n)
        ``C``, for example :func:`posterior_covariance`.

    Returns
    -------
    ndarray of shape (N, k)
        Add the noise variance ``1 / beta`` for the predictive variance.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating and x.dtype != fn.dtype:
        x = tf.cast(x, fn.dtype)
    n, k = int(fn.n_params), int(fn.n_outputs)
    size = max(1, _CHUNK_BYTES // (8 * k * n))
    w = fn.get_weights()
    c = tf.constant(covariance, _F64)
    chunk = _variance_pass(fn)
    parts = [
        chunk(w, c, x[i : i + size]).numpy() for i in range(0, int(x.shape[0]), size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, k))


def _variance_pass(fn):
    """The compiled ``g^T C g`` of a chunk for ``fn``'s architecture, with
    the weights and ``C`` as inputs (one trace per architecture, see
    :func:`~sklearn_lm.engine.covariance.cached_pass`)."""
    from .covariance import cached_pass

    def make():
        @tf.function(reduce_retracing=True, autograph=False)
        def chunk(w, c, xc):
            _, jac = fn.outputs_and_jacobian(w, xc)
            jac = tf.cast(jac, _F64)
            return tf.reduce_sum(tf.einsum("ckn,nm->ckm", jac, c) * jac, axis=-1)

        return chunk

    return cached_pass(None if fn.key is None else ("variance", fn.key), make)


#: ``pi / 8``: the probit approximation's scale of the variance.
_PROBIT = math.pi / 8.0


def moderated_probabilities(
    logits: np.ndarray, variances: np.ndarray, kind: str
) -> np.ndarray:
    r"""Probabilities of Gaussian logits, by the probit approximation.

    With logit means ``mu`` and variances ``s^2`` (:func:`predictive_variance`
    with :func:`posterior_covariance`), MacKay's (1992b) moderated
    probability of a sigmoid output is

    .. math::

        p = \sigma(\kappa(s^2)\, \mu), \qquad
        \kappa(s^2) = (1 + \pi s^2 / 8)^{-1/2},

    which approximates ``E[sigmoid(z)]`` for ``z ~ N(mu, s^2)`` by matching
    the sigmoid to the normal distribution function. For a softmax, each
    logit's mean is scaled by its own ``kappa`` before the softmax,
    ``p_k \propto \exp(\kappa(s_k^2) \mu_k)`` -- the mean-field
    approximation of Lu, Ie and Sha (2020) to the Gaussian-softmax
    integral, which uses the diagonal of the logits' covariance only. A
    sigmoid's moderation never moves ``p`` across 1/2; a softmax's can
    change which class is the most probable (a confident logit with a large
    variance is shrunk more than a less confident, well-determined one).

    Parameters
    ----------
    logits : ndarray of shape (N, k)
        Means of the logits.
    variances : ndarray of shape (N, k)
        Their variances, ``>= 0`` (``inf`` gives ``kappa = 0``).
    kind : {"sigmoid", "softmax"}
        How probabilities follow from logits: per output, or across them.

    Returns
    -------
    ndarray of shape (N, k)
        Moderated probabilities, float64 (rows sum to 1 for ``"softmax"``).
    """
    from scipy.special import expit, softmax

    mu = np.asarray(logits, np.float64)
    kappa = 1.0 / np.sqrt(1.0 + _PROBIT * np.maximum(variances, 0.0))
    z = kappa * mu
    if kind == "softmax":
        return softmax(z, axis=-1)
    if kind == "sigmoid":
        return expit(z)
    raise ValueError(f"kind must be 'sigmoid' or 'softmax'. Received: kind={kind!r}")
