"""Covariance of the fitted weights, as ``scipy.optimize.curve_fit`` gives it.

At weights ``w`` fitted by least squares, the linearised model gives the
covariance of the weight vector

.. math::

    C = \\sigma^2 (J^T W J)^{-1}, \\qquad
    \\sigma^2 = \\frac{\\sum_i w_i \\lVert r_i \\rVert^2}{m - n},

where ``r_i`` are the residuals of sample ``i`` (``q`` per sample), ``J``
their Jacobian with respect to the ``n`` weights (``m = N q`` rows), ``W``
the sample weights on the diagonal and ``sigma^2`` the residual variance
estimated from the sum of squared residuals (SSR). Sample weights act as
``curve_fit``'s ``sigma = 1 / sqrt(sample_weight)``: the residuals and the
rows of ``J`` are multiplied by ``sqrt(w_i)``. With ``absolute_sigma=True``
the weights are taken as exact inverse variances and ``C = (J^T W J)^{-1}``.

``J^T W J`` is accumulated in float64 over chunks of rows, from the model's
Jacobian (:meth:`ModelFunction.outputs_and_jacobian`) and the loss's
linearisation (``J = F J_model``, with ``F = dr/dz``; ``F = I`` for the mean
squared error, whose residuals are outputs minus targets). It is inverted
after scaling to a unit diagonal, ``S = D^{-1/2} J^T W J D^{-1/2}`` with
``D = diag(J^T W J)``: the scaling makes the result independent of the
units of the weights, and the inverse as accurate as the conditioning of
``S`` (not of ``J^T W J``) allows. A well-conditioned ``S`` is inverted from
its Cholesky factor, any other by its eigendecomposition.

When ``J^T W J`` is singular -- an eigenvalue of ``S`` at most
``eps * max(m, n)`` times the largest, a weight the residuals do not depend
on, or no more residuals than weights without ``absolute_sigma`` -- every
entry is ``inf`` and a :class:`CovarianceWarning` is issued, as
``curve_fit`` (``method="lm"``) does.

For the cross-entropies in their generalised Gauss-Newton form
(``loss.curvature_scale == 1``), ``J^T F^T W F J`` is the Fisher information
of the log-likelihood; its inverse is the covariance and there is no
``sigma^2`` to estimate (``absolute_sigma`` has no effect).
"""

from __future__ import annotations

import collections
import warnings
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from scipy.linalg import lapack

from . import losses as losses_module

__all__ = ["parameter_covariance", "ParameterCovariance", "CovarianceWarning"]

_F64 = tf.float64
#: Bytes of float64 Jacobian rows per chunk when ``chunk_size`` is not given.
CHUNK_BYTES = 32 * 2**20


class CovarianceWarning(RuntimeWarning):
    """The covariance could not be estimated (it is returned as ``inf``)."""


class ParameterCovariance(NamedTuple):
    """What :func:`parameter_covariance` returns.

    Attributes
    ----------
    covariance : ndarray of shape (n, n)
        Covariance of the weight vector (float64); all ``inf`` when it could
        not be estimated.
    standard_errors : ndarray of shape (n,)
        ``sqrt(diag(covariance))``.
    sigma2 : float
        The factor applied to ``(J^T W J)^{-1}``: ``SSR / (m - n)``, or 1
        with ``absolute_sigma`` (and for likelihood losses).
    ssr : float
        Sum of squared (weighted) residuals ``sum_i w_i |r_i|^2``.
    dof : int
        Degrees of freedom ``m - n`` (``m`` residuals, ``n`` weights).
    """

    covariance: np.ndarray
    standard_errors: np.ndarray
    sigma2: float
    ssr: float
    dof: int


def parameter_covariance(
    fn: Any,
    loss: str | losses_module.Loss,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    absolute_sigma: bool = False,
    chunk_size: int | None = None,
) -> ParameterCovariance:
    """Covariance of the weights at their current values (see the module doc).

    Parameters
    ----------
    fn : ModelFunction
        The model as a function of its flat weight vector (``Trainer.fn``);
        the covariance is taken at ``fn.get_weights()``.
    loss : str or losses.Loss
        The loss the weights were fitted with (:func:`losses.get`).
    x : array-like or tf.Tensor
        Inputs, shape ``(N, ...)``.
    y : array-like or tf.Tensor
        Targets, as for training.
    sample_weight : array-like of shape (N,), optional
        Non-negative weights ``w_i``; ``curve_fit``'s ``sigma`` is
        ``1 / sqrt(w_i)``.
    absolute_sigma : bool, default=False
        ``False``: scale ``(J^T W J)^{-1}`` by ``sigma^2 = SSR / (m - n)``
        (``curve_fit``'s default). ``True``: the weights are exact inverse
        variances, no scaling.
    chunk_size : int, optional
        Samples per chunk of Jacobian rows; by default about 32 MiB of
        float64 rows.

    Returns
    -------
    ParameterCovariance
        ``(covariance, standard_errors, sigma2, ssr, dof)``.

    Warns
    -----
    CovarianceWarning
        When ``J^T W J`` is singular, or ``m <= n`` without
        ``absolute_sigma``: the covariance is then all ``inf``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sklearn_lm.engine import Trainer
    >>> from sklearn_lm.engine.covariance import parameter_covariance
    >>> x = np.linspace(0.0, 1.0, 20)[:, None]
    >>> y = 2.0 * x + 1.0 + 0.1 * np.cos(40.0 * x)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> trainer = Trainer(model, loss="mse")
    >>> _ = trainer.fit(x, y, epochs=5)
    >>> cov = parameter_covariance(trainer.fn, "mse", x, y)
    >>> cov.covariance.shape, cov.dof
    ((2, 2), 18)
    """
    if not isinstance(absolute_sigma, bool | np.bool_):
        raise TypeError(
            "absolute_sigma must be a bool. Received: "
            f"absolute_sigma={absolute_sigma!r}"
        )
    loss = losses_module.get(loss)
    x, y, sw = _prepare(fn, loss, x, y, sample_weight)
    n = int(fn.n_params)
    rows, q = int(x.shape[0]), loss.residuals_per_sample(int(fn.n_outputs))
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BYTES // (8 * q * n))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise TypeError(
            f"chunk_size must be an int. Received: chunk_size={chunk_size!r}"
        )
    elif chunk_size < 1:
        raise ValueError(
            f"chunk_size must be >= 1. Received: chunk_size={chunk_size!r}"
        )
    normal, ssr = _normal_matrix(fn, loss, x, y, sw, int(chunk_size))
    m = rows * q
    likelihood = loss.curvature_scale == 1.0
    inverse, rank = _scaled_inverse(normal, tol=np.finfo(np.float64).eps * max(m, n))
    sigma2, problem = 1.0, None
    if inverse is None:
        problem = (
            f"J^T J is singular (numerical rank {rank} of {n} weights): some "
            "combinations of weights do not change the residuals"
        )
    elif not (absolute_sigma or likelihood):
        if m > n:
            sigma2 = ssr / (m - n)
        else:
            problem = (
                f"there are no more residuals ({m}) than weights ({n}), so "
                "sigma^2 = SSR / (m - n) is undefined"
            )
    if problem is not None:
        warnings.warn(
            f"The covariance of the weights could not be estimated: {problem}. "
            "It is returned as inf.",
            CovarianceWarning,
            stacklevel=2,
        )
        covariance = np.full((n, n), np.inf)
    else:
        covariance = sigma2 * inverse
    return ParameterCovariance(
        covariance=covariance,
        standard_errors=np.sqrt(np.diag(covariance)),
        sigma2=float(sigma2),
        ssr=float(ssr),
        dof=m - n,
    )


def _prepare(fn, loss, x, y, sample_weight):
    """Tensors ``x`` (float inputs in the model's input dtype), ``y``, ``sw (N,)``."""
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating and x.dtype != fn.input_dtype:
        x = tf.cast(x, fn.input_dtype)
    y = loss.prepare_targets(y)
    if not loss.sparse_targets and y.shape.rank == 1:
        y = tf.reshape(y, [-1, 1])
    n_rows = int(x.shape[0])
    if int(y.shape[0]) != n_rows:
        raise ValueError(
            "x and y must have the same number of samples. Received: "
            f"x.shape[0]={n_rows}, y.shape[0]={int(y.shape[0])}"
        )
    if sample_weight is None:
        return x, y, tf.ones([n_rows], _F64)
    sw = tf.reshape(tf.cast(tf.convert_to_tensor(sample_weight), _F64), [-1])
    if int(sw.shape[0]) != n_rows or not bool(tf.reduce_all(sw >= 0.0)):
        raise ValueError(
            f"sample_weight must hold {n_rows} non-negative numbers. Received: "
            f"sample_weight with shape {tuple(sw.shape)}"
        )
    return x, y, sw


#: Compiled passes over chunks of rows, least recently used first.
_PASSES: collections.OrderedDict = collections.OrderedDict()
_PASSES_SIZE = 32


def cached_pass(key, make, *keep):
    """``make()``, a compiled pass, made once per ``key`` and kept (least
    recently used, 32 entries); ``key`` None: made anew.

    The key holds the model function's architecture key
    (:attr:`~sklearn_lm.engine.functions.ModelFunction.key`, ``None`` for a
    model that is not shared), and the pass takes the weights as an input,
    so one trace serves every model of that architecture and every call:
    repeated ``predict(return_std=True)`` calls do not trace again. ``keep``:
    objects kept alive with the pass (those whose identity is in the key).
    """
    if key is None:
        return make()
    if key in _PASSES:
        _PASSES.move_to_end(key)
        return _PASSES[key][0]
    function = make()
    _PASSES[key] = (function, keep)
    while len(_PASSES) > _PASSES_SIZE:
        _PASSES.popitem(last=False)
    return function


def _chunk_pass(fn, loss):
    """The compiled ``(J^T W J, SSR)`` of a chunk, for ``fn``'s architecture
    and ``loss`` (see :func:`cached_pass`)."""

    def make():
        @tf.function(reduce_retracing=True, autograph=False)
        def chunk(w, xc, yc, swc):
            z, jac = fn.outputs_and_jacobian(w, xc)
            e, f = loss.linearize(yc, z)  # (c, q), (c, q, k) or None
            jac = tf.cast(jac, _F64)
            if f is not None:
                jac = tf.einsum("cqk,ckn->cqn", f, jac)
            root = tf.sqrt(swc)
            rows = tf.reshape(jac * root[:, None, None], [-1, tf.shape(jac)[-1]])
            ssr = tf.reduce_sum(swc * tf.reduce_sum(tf.square(e), axis=-1))
            return tf.matmul(rows, rows, transpose_a=True), ssr

        return chunk

    from .config import _object_key

    key = None
    if fn.key is not None:
        key = ("normal", fn.key, _object_key(loss, losses_module))
    return cached_pass(key, make, loss)


def _normal_matrix(fn, loss, x, y, sw, chunk_size):
    """``(J^T W J, SSR)`` in float64, accumulated over chunks of rows."""
    w = fn.get_weights()
    chunk = _chunk_pass(fn, loss)
    n = int(fn.n_params)
    normal, ssr = np.zeros((n, n)), 0.0
    for start in range(0, int(x.shape[0]), chunk_size):
        stop = start + chunk_size
        part, part_ssr = chunk(w, x[start:stop], y[start:stop], sw[start:stop])
        normal += part.numpy()
        ssr += float(part_ssr)
    return normal, ssr


def _scaled_inverse(normal: np.ndarray, tol: float):
    """``(A^{-1}, rank)`` of a symmetric PSD ``A``, or ``(None, rank)`` if singular.

    ``A = D^{1/2} S D^{1/2}`` with ``D = diag(A)``, and ``S`` (unit diagonal)
    is inverted. ``A`` is singular when ``s_min <= tol * s_max`` for the
    eigenvalues ``s`` of ``S`` (or a diagonal entry is 0).

    A well-conditioned ``S`` is inverted from its Cholesky factor (LAPACK
    ``potrf``, ``potri``: about a fifth of the time of an eigendecomposition):
    when LAPACK's estimate of its reciprocal 1-norm condition number is above
    ``max(1e4 tol, 1e-8)``. For a symmetric matrix
    ``kappa_2 <= kappa_1``, and the estimate is within a small factor of
    the true ``1 / kappa_1``, so such an ``S`` is far from singular by the
    eigenvalue test. Otherwise ``S`` is inverted by its eigendecomposition
    ``S = V diag(s) V^T``, which also decides the rank. Float64.
    """
    diag = np.diag(normal)
    if not np.all(np.isfinite(normal)) or np.any(diag <= 0.0):
        return None, int(np.sum(diag > 0.0))
    scale = 1.0 / np.sqrt(diag)
    # In place where possible: a new n x n array costs about as much as a
    # Cholesky factorisation of that size; Fortran order, which LAPACK
    # factors without a copy.
    scaled = np.multiply(normal, scale, order="F")
    scaled *= scale[:, None]
    inverse = _cholesky_inverse(scaled, max(1e4 * tol, 1e-8))
    if inverse is None:
        scaled = np.multiply(normal, scale)
        scaled *= scale[:, None]
        scaled += scaled.T
        scaled *= 0.5
        values, vectors = np.linalg.eigh(scaled)
        rank = int(np.sum(values > tol * values[-1]))
        if rank < normal.shape[0]:
            return None, rank
        inverse = (vectors / values) @ vectors.T
        inverse += inverse.T
        inverse *= 0.5
    inverse *= np.outer(scale, scale)  # exactly symmetric
    return inverse, normal.shape[0]


def _cholesky_inverse(s: np.ndarray, min_rcond: float) -> np.ndarray | None:
    """``S^{-1}`` from ``S = L L^T`` (the lower triangle of ``S`` is read and
    ``S`` overwritten), or ``None`` when the factorisation fails or the
    estimated reciprocal condition number is at most ``min_rcond``."""
    anorm = float(np.max(np.sum(np.abs(s), axis=0)))  # S is symmetric
    chol, info = lapack.dpotrf(s, lower=1, clean=1, overwrite_a=1)
    if info != 0 or not np.all(np.isfinite(chol)):
        return None
    rcond, info = lapack.dpocon(chol, anorm, uplo="L")
    if info != 0 or not rcond > min_rcond:
        return None
    lower, info = lapack.dpotri(chol, lower=1, overwrite_c=1)  # upper stays 0
    if info != 0 or not np.all(np.isfinite(lower)):
        return None
    inverse = lower + lower.T
    inverse[np.diag_indices_from(inverse)] *= 0.5
    return inverse
