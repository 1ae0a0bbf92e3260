r"""The damped system of one batch, solved by conjugate gradients.

Neither ``H`` nor the Jacobian rows are formed. The curvature enters through
Gauss-Newton-vector products,

.. math::

    H v = \frac{J^T F^T F J v}{N c} + a\, m \odot v,

each a Jacobian-vector product (:meth:`ModelFunction.jvp`, one forward pass),
the loss curvature ``F^T F`` per sample, and a vector-Jacobian product
(:meth:`ModelFunction.vjp`, one backward pass) over the whole batch: memory is
the forward pass of the batch (``O(N * sum of layer widths)`` values for a
:class:`~sklearn_lm.engine.dense_chain.DenseChain`) plus ``O(n)`` vectors.
:func:`~sklearn_lm.engine.solve.cg_solver` runs a few iterations of
conjugate gradients on them (an inexact, shorter step).

Conjugate gradients started from zero satisfy
``delta^T (H + lambda D) delta = g^T delta`` at every iterate, so the
curvature of a move ``lr * delta`` needs no further product:
``move^T H move = lr g^T move - lambda move^T D move``.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from . import damping as damping_module
from .solve import cg_solver
from .system import System

__all__ = ["CGSystem", "GaussNewtonProducts", "gauss_newton_products"]

_F64 = tf.float64


class GaussNewtonProducts(NamedTuple):
    """Weighted, unnormalised float64 quantities of a batch (see
    :func:`gauss_newton_products`)."""

    loss_sum: tf.Tensor
    gradient: tf.Tensor
    times: object
    diagonal: object
    second_order: object


def gauss_newton_products(rows, w, x, y, sw) -> GaussNewtonProducts:
    """Loss sum and closures for the conjugate-gradient solver.

    Returns ``(loss_sum, gradient, times, diagonal, second_order)`` where
    ``gradient`` is ``J^T F^T e``, ``times(v)`` is ``J^T F^T F J v``,
    ``diagonal()`` is ``diag(J^T F^T F J)`` and ``second_order(v)`` is
    ``J^T F^T F z_vv`` (all float64, weighted, not normalised). Only the
    forward pass of the whole batch is kept, never ``F J``.

    Parameters
    ----------
    rows : Linearization
        For the model function, the loss and, when the model function has
        no closed-form diagonal, the Jacobian rows chunk by chunk.
    w, x, y, sw : tf.Tensor
    """
    fn, loss = rows.fn, rows.loss
    z, state = fn.outputs_and_state(w, x)
    e, f = loss.linearize(y, z)
    root = tf.sqrt(sw)
    loss_sum = tf.reduce_sum(sw * loss.sample_losses(y, z))
    e = e * root[:, None]
    factor = None if f is None else f * root[:, None, None]

    # F^T F per sample (the weights included): the loss's closed form, or
    # formed once per step in the model's dtype, like the products it sits
    # between, and applied by one pass per product.
    closed_form = loss.curvature_times(y, z) if f is not None else None
    if f is None:
        hess = tf.cast(sw, fn.dtype)[:, None]
    elif closed_form is None:
        hess = tf.cast(tf.einsum("cqk,cql->ckl", factor, factor), fn.dtype)

    def curvature(jv):  # F^T F (J v), weighted: (N, k), in the model's dtype
        if closed_form is not None:
            out = closed_form(tf.cast(jv, _F64)) * sw[:, None]
            return tf.cast(out, fn.dtype)
        jv = tf.cast(jv, fn.dtype)
        if f is None:
            return hess * jv
        return tf.einsum("ckl,cl->ck", hess, jv)

    def times(v):
        # Rounding in the products only perturbs an inexact solve; the
        # gradient below keeps float64 sums.
        jv = fn.jvp(w, v, x, state)
        return fn.vjp(w, curvature(jv), x, state, precise=False)

    if f is None:
        gradient = fn.vjp(w, tf.cast(e * root[:, None], fn.dtype), x, state)
    else:
        gradient = fn.vjp(
            w, tf.cast(tf.einsum("cqk,cq->ck", factor, e), fn.dtype), x, state
        )

    def diagonal():
        if fn.capabilities.gauss_newton_diagonal:
            if f is None:
                eye = tf.eye(fn.n_outputs, dtype=_F64)[None]
                return fn.gauss_newton_diagonal(state, eye * root[:, None, None])
            return fn.gauss_newton_diagonal(state, factor)

        def body(xc, yc, swc):
            jac = rows.rows(w, xc, yc, swc, jac_dtype=fn.dtype)[0]
            return (tf.cast(tf.reduce_sum(tf.square(jac), axis=0), _F64),)

        init = (tf.zeros([fn.n_params], _F64),)
        return rows.reduce(x, y, sw, body, init)[0]

    def second_order(v):
        zvv = fn.outputs_and_curvature(w, tf.cast(v, fn.dtype), x, state)[1]
        return fn.vjp(w, curvature(zvv), x, state)

    return GaussNewtonProducts(loss_sum, gradient, times, diagonal, second_order)


class CGSystem(System):
    """The normal system of one batch, solved inexactly by conjugate gradients.

    Parameters
    ----------
    rows, damping, w, x, y, sw, norm, penalty
        As for :class:`~sklearn_lm.engine.system.NormalSystem`.
    learning_rate : float
        The step's learning rate (see :meth:`curvature`).
    max_iter : int
        Most conjugate-gradient iterations per solve.
    rtol : float
        Relative residual at which conjugate gradients stop.
    """

    def __init__(
        self,
        rows,
        damping,
        w,
        x,
        y,
        sw,
        *,
        norm,
        penalty=None,
        learning_rate,
        max_iter,
        rtol,
    ):
        products = gauss_newton_products(rows, w, x, y, sw)
        g = products.gradient / norm
        if penalty is not None:
            g = g + penalty * tf.cast(w, _F64)

        def times(v):
            out = products.times(v) / norm
            return out if penalty is None else out + penalty * v

        if damping_module.uses_curvature_diagonal(damping):
            h_diag = products.diagonal() / norm + (0.0 if penalty is None else penalty)
            self.curvature_diagonal = h_diag
            self.diagonal = damping.diagonal(h_diag)
        else:  # d = 1: the diagonal of H is not needed (nor traced)
            self.diagonal = tf.ones([rows.n_params], _F64)
        self.gradient = g
        self.data_loss = products.loss_sum / norm
        self._times = times
        self._products = products
        self._norm = norm
        self._learning_rate = tf.constant(learning_rate, _F64)
        self._max_iter = int(max_iter)
        self._rtol = float(rtol)

    def solve(self, lam):
        again = cg_solver(self._times, self.diagonal, lam, self._max_iter, self._rtol)
        delta, ok = again(self.gradient)
        return delta, ok, again

    def curvature(self, move, lam):
        # delta^T (H + lam D) delta = g^T delta at every iterate (module docstring).
        return self._learning_rate * tf.reduce_sum(
            self.gradient * move
        ) - lam * tf.reduce_sum(self.diagonal * move * move)

    def second_order(self, v):
        return self._products.second_order(v) / self._norm
