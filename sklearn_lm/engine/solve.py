"""Damped least-squares solves, in float64, that never raise.

Both functions return ``(delta, ok)``. ``ok`` is False when the Cholesky
factorisation failed (TensorFlow then returns NaNs) or the step is not
finite; ``delta`` is then zero. The caller treats that as a rejected attempt
and raises the damping.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["solve_normal", "solve_gram"]


def _all_finite(t: tf.Tensor) -> tf.Tensor:
    return tf.reduce_all(tf.math.is_finite(t))


def _cholesky_solve(matrix: tf.Tensor, rhs: tf.Tensor):
    chol = tf.linalg.cholesky(matrix)
    ok = _all_finite(chol)
    eye = tf.eye(tf.shape(matrix)[0], dtype=matrix.dtype)
    chol = tf.where(ok, chol, eye)
    sol = tf.linalg.cholesky_solve(chol, rhs[:, None])[:, 0]
    ok = tf.logical_and(ok, _all_finite(sol))
    return tf.where(ok, sol, tf.zeros_like(sol)), ok


def solve_normal(curvature, rhs, diagonal, lam):
    """Solve ``(curvature + lam * diag(diagonal)) delta = rhs``.

    Parameters
    ----------
    curvature : tf.Tensor
        ``(n, n)`` symmetric positive semi-definite, float64.
    rhs : tf.Tensor
        ``(n,)`` float64.
    diagonal : tf.Tensor
        ``(n,)`` positive damping diagonal ``d``, float64.
    lam : tf.Tensor
        Damping factor, float64 scalar.
    """
    return _cholesky_solve(curvature + tf.linalg.diag(lam * diagonal), rhs)


def solve_gram(jac, residuals, diagonal, lam, normaliser):
    """Solve the same damped system through the ``m x m`` Gram matrix.

    With ``H = J^T J / normaliser`` and ``g = J^T e / normaliser``, the
    solution of ``(H + lam diag(d)) delta = g`` is
    ``delta = D^-1/2 J'^T (J' J'^T + lam * normaliser * I)^-1 e`` with
    ``J' = J D^-1/2`` -- an ``m x m`` system, cheaper when ``m < n``.

    Parameters
    ----------
    jac : tf.Tensor
        ``(m, n)`` float64.
    residuals : tf.Tensor
        ``(m,)`` float64.
    diagonal, lam
        As in :func:`solve_normal`.
    normaliser : tf.Tensor
        float64 scalar.
    """
    inv_sqrt_d = tf.math.rsqrt(diagonal)
    scaled = jac * inv_sqrt_d[None, :]
    gram = tf.matmul(scaled, scaled, transpose_b=True)
    gram = gram + tf.linalg.diag(tf.fill([tf.shape(gram)[0]], lam * normaliser))
    alpha, ok = _cholesky_solve(gram, residuals)
    delta = inv_sqrt_d * tf.linalg.matvec(scaled, alpha, transpose_a=True)
    ok = tf.logical_and(ok, _all_finite(delta))
    return tf.where(ok, delta, tf.zeros_like(delta)), ok
