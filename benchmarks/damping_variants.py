"""Scale-aware damping strategies measured by :mod:`benchmarks.bench_nist`.

Each damped system is ``(H + lambda * diag(d)) delta = g`` with ``H`` the mean
Gauss-Newton curvature ``J^T J / N`` of the step; a strategy chooses ``d``
(:meth:`sklearn_lm.engine.damping.Damping.diagonal`). The engine's own
strategies are ``Standard`` (``d = 1``, ``lambda`` in ``[1e-10, 1e10]``) and
``Fletcher`` (``d = diag(H)``). The two here are written as any user would
write one, by subclassing :class:`~sklearn_lm.engine.damping.Damping`:

* :class:`Relative` -- ``d = max_i H_ii``: ``lambda`` is relative to the
  largest curvature, so its bounds (and its initial value, as in Nielsen's
  ``tau * max_i H_ii``) do not depend on the units of the data or weights.
* :class:`More` -- Moré's scaling, as MINPACK: ``d_i = max_{t <= k} H_ii^{(t)}``,
  the largest curvature of weight ``i`` seen so far in the fit.

They are measurements, not engine features: :class:`More` keeps its running
maximum in a variable of the instance (one instance per fit; the engine
compiles a strategy of a class outside its own module for that instance
alone, so states are never shared).
"""

from __future__ import annotations

import tensorflow as tf

from sklearn_lm.engine.damping import Damping

__all__ = ["Relative", "More"]

_F64 = tf.float64


class Relative(Damping):
    r"""Damping relative to the largest curvature.

    .. math::

        (H + \lambda \, \max_i H_{ii} \, I)\,\delta = g,

    with :math:`\lambda \in [\text{min\_value}, \text{max\_value}]`
    dimensionless: the floor on the damping is ``min_value * max_i H_ii``.
    Parameters as :class:`~sklearn_lm.engine.damping.Damping`, except
    ``min_value`` (default ``1e-15``).
    """

    def __init__(self, min_value: float = 1e-15, **kwargs):
        super().__init__(min_value=min_value, **kwargs)

    def diagonal(self, curvature_diagonal):
        scale = tf.reduce_max(curvature_diagonal)
        scale = tf.where(scale > 0.0, scale, tf.ones_like(scale))
        return tf.ones_like(curvature_diagonal) * scale


class More(Damping):
    r"""Moré's scaling: the running maximum of the curvature diagonal.

    .. math::

        (H^{(k)} + \lambda D^{(k)})\,\delta = g, \qquad
        D^{(k)}_{ii} = \max\bigl(D^{(k-1)}_{ii}, H^{(k)}_{ii}\bigr),

    (MINPACK's ``diag``, there the column norms of ``J``, squared here),
    floored like :class:`~sklearn_lm.engine.damping.Fletcher`'s at ``1e-9``
    times its mean. Parameters as :class:`~sklearn_lm.engine.damping.Damping`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._scale = tf.Variable(
            tf.zeros([0], _F64), shape=tf.TensorShape([None]), trainable=False
        )

    def diagonal(self, curvature_diagonal):
        seen = self._scale.read_value()
        scale = tf.cond(
            tf.equal(tf.size(seen), tf.size(curvature_diagonal)),
            lambda: tf.maximum(seen, curvature_diagonal),
            lambda: curvature_diagonal,
        )
        with tf.control_dependencies([self._scale.assign(scale)]):
            floor = 1e-9 * tf.reduce_mean(scale) + 1e-30
            return tf.maximum(scale, floor)
