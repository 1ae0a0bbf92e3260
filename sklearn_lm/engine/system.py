r"""The damped Gauss-Newton system of one batch.

For a batch of ``N`` samples with ``q`` residual rows each, weighted rows
``Jhat`` (``N q x n``) and residuals ``e`` (:mod:`sklearn_lm.engine.rows`), a
step solves

.. math::

    (H + \lambda \operatorname{diag}(d)) \delta = g, \qquad
    H = \frac{\hat J^T \hat J}{N c} + a \operatorname{diag}(m), \qquad
    g = \frac{\hat J^T e}{N c} + a\, m \odot w,

where ``c`` is the loss's output normaliser, ``a = 2 l2 / s`` with ``s`` the
loss's curvature scale, ``m`` masks the kernels (the L2 penalty's weights),
and ``d`` is the damping strategy's diagonal
(:meth:`~sklearn_lm.engine.damping.Damping.diagonal`, from ``diag(H)``). The
new weights are ``w - lr * delta``.

A *system* is built once per batch and then solved for every ``lambda`` the
search tries (:mod:`sklearn_lm.engine.search`). Three kinds share the
interface of :class:`System`:

* :class:`NormalSystem` -- forms ``H`` (``n x n``, float64, accumulated over
  chunks of samples) and factors ``H + lambda diag(d)`` by Cholesky;
* :class:`GramSystem` -- when ``N q < n`` and ``l2 == 0``, the same solution
  from the ``N q x N q`` Gram matrix: with ``J' = Jhat D^{-1/2}``,
  ``delta = D^{-1/2} J'^T (J' J'^T + lambda N c I)^{-1} e``
  (:func:`~sklearn_lm.engine.solve.gram_solver`);
* :class:`~sklearn_lm.engine.cg_system.CGSystem` -- conjugate gradients on
  Gauss-Newton-vector products, forming neither ``H`` nor ``Jhat``.

:func:`choose_form` is the one rule that picks the normal or the Gram form
for a batch size.
"""

from __future__ import annotations

import tensorflow as tf

from .solve import add_to_diagonal, gram_solver, normal_solver

__all__ = [
    "System",
    "NormalSystem",
    "GramSystem",
    "choose_form",
    "gram_applies",
    "penalty_diagonal",
]

_F64 = tf.float64


def gram_applies(n_rows, rows_per_sample: int, n_params: int, l2: float):
    """Whether a batch of ``n_rows`` samples is solved in the Gram form.

    True when there is no L2 penalty and fewer residual rows than weights,
    ``n_rows * rows_per_sample < n_params``: the ``(N q) x (N q)`` Gram
    system is then smaller than the ``n x n`` normal equations.

    Parameters
    ----------
    n_rows : int or tf.Tensor
        Samples in the batch; an int32 scalar tensor inside a graph.
    rows_per_sample : int
    n_params : int
    l2 : float

    Returns
    -------
    bool or tf.Tensor
        A boolean tensor when ``n_rows`` is one and ``l2 == 0``.
    """
    return l2 == 0 and n_rows * rows_per_sample < n_params


def choose_form(
    n_rows: int, rows_per_sample: int, n_params: int, l2: float, form: str = "auto"
) -> str:
    """The system a direct solve forms for a batch of ``n_rows`` samples.

    Parameters
    ----------
    n_rows, rows_per_sample, n_params, l2
        As for :func:`gram_applies`; ``n_rows`` an int.
    form : {"auto", "normal", "gram"}, default="auto"
        The configured form (:attr:`StepConfig.form`); a fixed form is
        returned unchanged.

    Returns
    -------
    {"normal", "gram"}

    Examples
    --------
    >>> choose_form(10, 1, 61, 0.0), choose_form(100, 1, 61, 0.0)
    ('gram', 'normal')
    >>> choose_form(10, 1, 61, 1e-4)  # the Gram form has no L2 term
    'normal'
    """
    if form != "auto":
        return form
    return "gram" if gram_applies(n_rows, rows_per_sample, n_params, l2) else "normal"


def penalty_diagonal(l2: float, curvature_scale: float, mask: tf.Tensor):
    """``a * m`` with ``a = 2 l2 / s``: the L2 term's curvature, or ``None``.

    The penalty ``l2 sum(m w^2)`` has curvature ``2 l2 m``; dividing by the
    loss's curvature scale ``s`` puts it in the units of ``H`` (the data
    term's Gauss-Newton matrix is ``s Jhat^T Jhat / (N c)``).
    """
    if l2 == 0.0:
        return None
    return 2.0 * l2 / curvature_scale * mask


class System:
    """A damped system of one batch, ready to be solved for any ``lambda``.

    Attributes
    ----------
    data_loss : tf.Tensor
        The normalised data loss at the batch's weights (no L2 term),
        float64.
    gradient : tf.Tensor
        ``g`` ``(n,)``, float64, the L2 term included.
    curvature_diagonal : tf.Tensor or None
        ``diag(H)`` ``(n,)``, float64, where the system forms it (for the
        convergence test on the gradient), else ``None``.
    """

    data_loss: tf.Tensor
    gradient: tf.Tensor
    curvature_diagonal: tf.Tensor | None = None

    def solve(self, lam):
        """Solve ``(H + lam diag(d)) delta = g``.

        Returns
        -------
        tuple
            ``(delta, ok, again)``: ``ok`` is False (and ``delta`` zero) when
            the solve failed; ``again(rhs) -> (delta, ok)`` solves the same
            damped system for another right-hand side given as
            :meth:`second_order` returns it.
        """
        raise NotImplementedError

    def curvature(self, move, lam):
        """``move^T H move`` for the undamped ``H``, where ``move`` is
        ``learning_rate * delta`` for the ``delta`` of :meth:`solve` at
        ``lam``."""
        raise NotImplementedError

    def second_order(self, v):
        """The geodesic right-hand side along ``v``, ``Jhat^T F z_vv / (N c)``,
        in the representation ``again`` of :meth:`solve` takes."""
        raise NotImplementedError

    def predicted_decrease(self, move, lam):
        """Decrease of the quadratic model for the step ``-move``:
        ``g^T move - move^T H move / 2`` (in units of ``H``)."""
        return tf.reduce_sum(self.gradient * move) - 0.5 * self.curvature(move, lam)


class NormalSystem(System):
    """The ``n x n`` normal equations, accumulated over chunks of samples.

    Parameters
    ----------
    rows : Linearization
        The batch's linearisation (:mod:`sklearn_lm.engine.rows`).
    damping : damping.Damping
        Gives the damping diagonal ``d`` from ``diag(H)``.
    w, x, y, sw : tf.Tensor
        Weights and the batch (``sw`` the sample weights, float64).
    norm : tf.Tensor
        ``N c``, float64.
    penalty : tf.Tensor or None
        :func:`penalty_diagonal`.

    Attributes
    ----------
    normal : tf.Tensor
        ``Jhat^T Jhat`` of the batch at ``w``, float64, unnormalised and
        without the L2 term (:meth:`LMStep.normal_matrix
        <sklearn_lm.engine.step.LMStep.normal_matrix>`'s matrix).
    """

    def __init__(self, rows, damping, w, x, y, sw, *, norm, penalty=None):
        h, g, loss_sum, rhs = rows.normal_stats(w, x, y, sw)
        # The data part before scaling, for Bayesian regularization's evidence.
        self.normal = h
        h = h / norm
        g = g / norm
        if penalty is not None:
            h = add_to_diagonal(h, penalty)
            g = g + penalty * tf.cast(w, _F64)
        self.hessian = h
        self.gradient = g
        self.curvature_diagonal = tf.linalg.diag_part(h)
        self.diagonal = damping.diagonal(self.curvature_diagonal)
        self.data_loss = loss_sum / norm
        self._rhs = rhs
        self._norm = norm

    def solve(self, lam):
        again = normal_solver(self.hessian, self.diagonal, lam)
        delta, ok = again(self.gradient)
        return delta, ok, again

    def curvature(self, move, lam):
        return tf.reduce_sum(move * tf.linalg.matvec(self.hessian, move))

    def second_order(self, v):
        return self._rhs(v) / self._norm


class GramSystem(System):
    """The ``(N q) x (N q)`` Gram form of the same system (no L2 term).

    Holds the float64 rows ``Jhat`` of the whole batch; its right-hand sides
    are residual rows (``e`` for the step itself).

    Parameters
    ----------
    rows, damping, w, x, y, sw, norm
        As for :class:`NormalSystem`.
    """

    def __init__(self, rows, damping, w, x, y, sw, *, norm):
        jac, e, loss_sum, _, curvature_rows = rows.rows_and_curvature(w, x, y, sw)
        self.jacobian = jac
        self.residuals = e
        self.gradient = tf.linalg.matvec(jac, e, transpose_a=True) / norm
        self.curvature_diagonal = tf.reduce_sum(tf.square(jac), axis=0) / norm
        self.diagonal = damping.diagonal(self.curvature_diagonal)
        self.data_loss = loss_sum / norm
        self._second_order = curvature_rows
        self._norm = norm

    def solve(self, lam):
        again = gram_solver(self.jacobian, self.diagonal, lam, self._norm)
        delta, ok = again(self.residuals)
        return delta, ok, again

    def curvature(self, move, lam):
        jac_move = tf.linalg.matvec(self.jacobian, move)
        return tf.reduce_sum(tf.square(jac_move)) / self._norm

    def second_order(self, v):
        return tf.reshape(self._second_order(v), [-1])
