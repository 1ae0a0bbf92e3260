"""Damped least-squares solves, in float64, that never raise.

:func:`normal_solver` and :func:`gram_solver` factor a damped system once
and return a function that solves it for any right-hand side, returning
``(delta, ok)``. :func:`cg_solver` solves the same normal system inexactly,
by conjugate gradients on curvature-vector products, without forming it.
``ok`` is False when the Cholesky factorisation
failed (the factor then holds NaNs) or the step is not finite; ``delta``
is then zero. The caller treats that as a rejected attempt and raises the
damping.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

__all__ = [
    "add_to_diagonal",
    "normal_solver",
    "gram_solver",
    "cg_solver",
]


def _all_finite(t: tf.Tensor) -> tf.Tensor:
    return tf.reduce_all(tf.math.is_finite(t))


def add_to_diagonal(matrix: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """``matrix + diag(values)`` without forming the ``n x n`` diagonal matrix.

    ``values`` is an ``(n,)`` vector or a scalar added to every diagonal entry.
    """
    return tf.linalg.set_diag(matrix, tf.linalg.diag_part(matrix) + values)


def _factor(matrix: tf.Tensor):
    """Cholesky factor of ``matrix`` and whether it succeeded.

    A failed factor holds NaNs; the solves below then return zeros and
    ``ok = False``. TensorFlow's CPU kernel logs a warning whenever a
    factorisation fails, so a matrix whose diagonal is not finite and
    positive (a column of ``J`` that vanishes, with no damping on it, or
    non-finite values) is not factored at all: its attempt is rejected
    silently.
    """
    diag = tf.linalg.diag_part(matrix)
    plausible = tf.reduce_all(diag > 0.0) & tf.reduce_all(tf.math.is_finite(diag))
    chol = tf.cond(
        plausible,
        lambda: tf.linalg.cholesky(matrix),
        lambda: tf.fill(tf.shape(matrix), tf.constant(np.nan, matrix.dtype)),
    )
    return chol, _all_finite(chol)


def _back_substitute(chol: tf.Tensor, ok: tf.Tensor, rhs: tf.Tensor):
    sol = tf.squeeze(tf.linalg.cholesky_solve(chol, tf.expand_dims(rhs, 1)), 1)
    ok = tf.logical_and(ok, _all_finite(sol))
    return tf.where(ok, sol, tf.zeros_like(sol)), ok


def normal_solver(
    curvature: tf.Tensor, diagonal: tf.Tensor, lam: tf.Tensor
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """Factor ``curvature + lam * diag(diagonal)`` once, solve for any rhs.

    Parameters
    ----------
    curvature : tf.Tensor
        ``(n, n)`` symmetric positive semi-definite, float64.
    diagonal : tf.Tensor
        ``(n,)`` positive damping diagonal ``d``, float64.
    lam : tf.Tensor
        Damping factor, float64 scalar.

    Returns
    -------
    callable
        ``solve(rhs) -> (delta, ok)`` for ``rhs`` of shape ``(n,)``.
    """
    chol, ok = _factor(add_to_diagonal(curvature, lam * diagonal))
    return lambda rhs: _back_substitute(chol, ok, rhs)


def gram_solver(
    jac: tf.Tensor, diagonal: tf.Tensor, lam: tf.Tensor, normaliser: tf.Tensor
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """Factor the ``m x m`` Gram system once; solve for any residual rows.

    With ``H = J^T J / normaliser`` and ``g = J^T e / normaliser``, the
    solution of ``(H + lam diag(d)) delta = g`` is
    ``delta = D^-1/2 J'^T (J' J'^T + lam * normaliser * I)^-1 e`` with
    ``J' = J D^-1/2`` -- an ``m x m`` system, cheaper when ``m < n``.

    Parameters
    ----------
    jac : tf.Tensor
        ``(m, n)`` float64.
    diagonal, lam
        As in :func:`normal_solver`.
    normaliser : tf.Tensor
        float64 scalar.

    Returns
    -------
    callable
        ``solve(residuals) -> (delta, ok)`` for residual rows ``e`` of shape
        ``(m,)``.
    """
    inv_sqrt_d = tf.math.rsqrt(diagonal)
    scaled = jac * inv_sqrt_d[None, :]
    gram = tf.matmul(scaled, scaled, transpose_b=True)
    chol, ok = _factor(add_to_diagonal(gram, lam * normaliser))

    def solve(residuals):
        alpha, good = _back_substitute(chol, ok, residuals)
        delta = inv_sqrt_d * tf.linalg.matvec(scaled, alpha, transpose_a=True)
        good = tf.logical_and(good, _all_finite(delta))
        return tf.where(good, delta, tf.zeros_like(delta)), good

    return solve


def cg_solver(
    curvature_times: Callable[[tf.Tensor], tf.Tensor],
    diagonal: tf.Tensor,
    lam: tf.Tensor,
    max_iter: int,
    rtol: float,
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """Inexact solves of ``(H + lam * diag(d)) delta = rhs`` by conjugate gradients.

    ``H`` is never formed: each iteration costs one ``curvature_times(v) =
    H v``. Iteration stops after ``max_iter`` products, or when the residual
    norm is at most ``rtol`` times the right-hand side's, or when a direction
    of non-positive curvature appears (then the last iterate is kept). Every
    iterate of conjugate gradients started from zero decreases the quadratic
    model, so a truncated solve is still a descent step, shorter than the
    exact one.

    Parameters
    ----------
    curvature_times : callable
        ``v (n,) -> H v (n,)``, float64, for symmetric positive
        semi-definite ``H``.
    diagonal : tf.Tensor
        ``(n,)`` positive damping diagonal ``d``, float64.
    lam : tf.Tensor
        Damping factor, float64 scalar.
    max_iter : int
        Most curvature products per solve.
    rtol : float
        Relative residual at which iteration stops.

    Returns
    -------
    callable
        ``solve(rhs) -> (delta, ok)``, float64; ``ok`` is False (and
        ``delta`` zero) when the result is not finite or no iteration made
        progress.
    """
    damp = lam * diagonal

    def times(v):
        return curvature_times(v) + damp * v

    def solve(rhs):
        rhs = tf.convert_to_tensor(rhs, tf.float64)
        rr = tf.reduce_sum(rhs * rhs)
        limit = tf.constant(float(rtol) ** 2, tf.float64) * rr

        def cond(i, x, r, p, rr, done):
            return tf.logical_and(i < max_iter, tf.logical_not(done))

        def body(i, x, r, p, rr, done):
            ap = times(p)
            pap = tf.reduce_sum(p * ap)
            usable = tf.logical_and(pap > 0.0, tf.math.is_finite(pap))
            alpha = tf.where(usable, rr / tf.where(usable, pap, 1.0), 0.0)
            x = x + alpha * p
            r = r - alpha * ap
            rr_next = tf.reduce_sum(r * r)
            p = r + rr_next / rr * p
            done = tf.logical_or(tf.logical_not(usable), rr_next <= limit)
            return i + 1, x, r, p, rr_next, done

        init = (tf.constant(0), tf.zeros_like(rhs), rhs, rhs, rr, rr <= limit)
        _, x, _, _, _, _ = tf.while_loop(cond, body, init)
        ok = _all_finite(x) & tf.reduce_any(x != 0.0)
        return tf.where(ok, x, tf.zeros_like(x)), ok

    return solve
