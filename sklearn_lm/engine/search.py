r"""The attempts of one step: solve, try, accept or raise the damping.

Given the system of a batch (:mod:`sklearn_lm.engine.system`), an attempt
with damping ``lambda``

1. solves ``(H + lambda diag(d)) delta = g`` and takes the velocity
   ``v = -move`` with ``move = lr * delta``;
2. with geodesic acceleration (Transtrum and Sethna), solves the same damped
   system for the second-order right-hand side along ``v``,
   ``-Jhat^T F z_vv / (N c)``, where ``z_vv = d^2 z(w + t v) / dt^2`` at
   ``t = 0``: the acceleration ``a`` is the solution. The trial point is
   ``w + v + a / 2`` when ``2 |a| / |v| <= geodesic_ratio``, else ``w + v``;
3. evaluates the objective (loss plus L2 term) at the trial point, in
   inference mode. A lower objective is accepted and ``lambda`` decreased;
   otherwise (a failed solve or a non-finite objective included) ``lambda``
   is increased (:meth:`~sklearn_lm.engine.damping.Damping.accepted`,
   :meth:`~sklearn_lm.engine.damping.Damping.rejected`) and the attempt
   repeated, up to ``max_attempts`` times or until ``lambda`` reaches its
   maximum.

The gain ratio given to the damping strategy compares the actual decrease
with the one the quadratic model predicts for ``v``,

.. math::

    \rho = \frac{L(w) - L(w_{trial})}
                {s\,(g^T m - \tfrac12 m^T H m)}, \qquad m = lr\,\delta,

where ``s`` is the loss's curvature scale (``H`` is the Gauss-Newton matrix
divided by ``s``). As in a trust-region method, ``lambda`` plays the role of
the inverse radius.

Whether training should stop after the step is decided here, by
:func:`stop_code`: an index into
:data:`~sklearn_lm.engine.status.GRAPH_CODES`.

The step also returns, as a few float64 scalars, what the convergence tests
of :class:`~sklearn_lm.engine.stopping.ConvergenceTests` read (as MINPACK,
from the *last* attempt, accepted or not): its actual and predicted relative
reductions of the objective ``L`` (``L_0`` before the step),

.. math::

    a = \frac{L_0 - L(w_{trial})}{L_0}, \qquad
    p = \frac{s\,(g^T m - \tfrac12 m^T H m)}{L_0},

(``a = -1`` when ``L(w_trial)`` is not finite), the norm of its move
``||w_{trial} - w||``, the norm of ``w`` and, at ``w``, the largest scaled
gradient

.. math::

    \gamma = \max_j \frac{|g_j|}{\sqrt{H_{jj}\, L_0}},

which for a least-squares loss without L2 term is MINPACK's largest
``|cos|`` of the angle between a Jacobian column and the residual vector
(``NaN`` where the system does not form ``diag(H)``: conjugate gradients
with a damping that does not use it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from .status import GRAPH_CODES, Status
from .system import System

__all__ = ["Search", "StepResult", "gradient_cosine", "stop_code"]

_F64 = tf.float64
_NON_FINITE = GRAPH_CODES.index(Status.NON_FINITE)
_DAMPING_MAX = GRAPH_CODES.index(Status.DAMPING_MAX)


class StepResult(NamedTuple):
    """Outputs of one step (tensors).

    Attributes
    ----------
    weights : tf.Tensor
        The new weights (the old ones when no attempt was accepted).
    damping, nu : tf.Tensor
        The damping state after the step, float64.
    loss : tf.Tensor
        Objective after the step (before it, if rejected), float64.
    attempts : tf.Tensor
        Attempts made, int32.
    accepted : tf.Tensor
        Whether an attempt was accepted.
    initial_loss : tf.Tensor
        Objective before the step.
    stop : tf.Tensor
        :func:`stop_code` of the step, int32.
    actual_reduction, predicted_reduction : tf.Tensor
        ``a`` and ``p`` of the last attempt (module docstring), float64.
    step_norm : tf.Tensor
        ``||w_trial - w||`` of the last attempt, float64.
    weight_norm : tf.Tensor
        ``||w||``, float64.
    gradient_cosine : tf.Tensor
        ``gamma`` at ``w`` (module docstring), float64.
    """

    weights: tf.Tensor
    damping: tf.Tensor
    nu: tf.Tensor
    loss: tf.Tensor
    attempts: tf.Tensor
    accepted: tf.Tensor
    initial_loss: tf.Tensor
    stop: tf.Tensor
    actual_reduction: tf.Tensor
    predicted_reduction: tf.Tensor
    step_norm: tf.Tensor
    weight_norm: tf.Tensor
    gradient_cosine: tf.Tensor


def stop_code(initial_loss, accepted, damping, max_damping) -> tf.Tensor:
    """Why training should stop after a step, as an index into ``GRAPH_CODES``.

    ``Status.NON_FINITE`` when the objective before the step is not finite;
    ``Status.DAMPING_MAX`` when the step was rejected with ``lambda`` at its
    maximum (the damping is exhausted: no damped Gauss-Newton step lowers the
    loss); else 0 (go on). Map it with
    :func:`~sklearn_lm.engine.status.from_graph_code`.

    Parameters
    ----------
    initial_loss : tf.Tensor
    accepted : tf.Tensor
    damping : tf.Tensor
        ``lambda`` after the step.
    max_damping : float or tf.Tensor
        The damping strategy's ``max_value``.

    Returns
    -------
    tf.Tensor
        int32 scalar.
    """
    exhausted = tf.logical_and(tf.logical_not(accepted), damping >= max_damping)
    return tf.where(
        tf.math.is_finite(initial_loss),
        tf.where(exhausted, _DAMPING_MAX, 0),
        _NON_FINITE,
    )


class Search:
    """The attempt loop of a step.

    Parameters
    ----------
    damping : damping.Damping
        How ``lambda`` (and ``nu``) change after an attempt.
    learning_rate : float
        Fraction of the solution taken, ``lr``.
    max_attempts : int
        Attempts before the step is given up.
    geodesic : bool
        Add the geodesic acceleration to each attempt.
    geodesic_ratio : float
        Largest ``2 |a| / |v|`` for which the acceleration is used.
    curvature_scale : float
        The loss's ``s``, which turns the quadratic model's decrease into
        loss units.
    """

    def __init__(
        self,
        damping,
        *,
        learning_rate: float,
        max_attempts: int,
        geodesic: bool,
        geodesic_ratio: float,
        curvature_scale: float,
    ):
        self.damping = damping
        self.learning_rate = float(learning_rate)
        self.max_attempts = int(max_attempts)
        self.geodesic = bool(geodesic)
        self.geodesic_ratio = float(geodesic_ratio)
        self.curvature_scale = float(curvature_scale)

    @classmethod
    def from_config(cls, config, curvature_scale: float) -> Search:
        """The search a :class:`~sklearn_lm.engine.config.StepConfig` describes."""
        return cls(
            config.damping,
            learning_rate=config.learning_rate,
            max_attempts=config.max_attempts,
            geodesic=config.geodesic,
            geodesic_ratio=config.geodesic_ratio,
            curvature_scale=curvature_scale,
        )

    def __call__(
        self,
        system: System,
        objective: Callable[[tf.Tensor], tf.Tensor],
        w: tf.Tensor,
        lam: tf.Tensor,
        nu: tf.Tensor,
        initial_loss: tf.Tensor,
    ) -> StepResult:
        """Run the attempts from weights ``w``.

        Parameters
        ----------
        system : System
            The batch's damped system at ``w``.
        objective : callable
            ``objective(weights)``: loss plus L2 term on the batch, float64.
        w : tf.Tensor
            Weights, in the model's dtype.
        lam, nu : tf.Tensor
            Damping state, float64 scalars.
        initial_loss : tf.Tensor
            ``objective(w)``.

        Returns
        -------
        StepResult
        """
        # A full step (lr = 1) multiplies by nothing: the same values.
        lr = (
            None if self.learning_rate == 1.0 else tf.constant(self.learning_rate, _F64)
        )
        w64 = tf.cast(w, _F64)
        lam_max = tf.constant(self.damping.max_value, _F64)

        def cond(attempt, lam_, nu_, accepted, w_new, loss_new, last):
            return tf.logical_and(
                tf.logical_and(tf.logical_not(accepted), attempt < self.max_attempts),
                tf.logical_not(tf.logical_and(attempt > 0, lam_ >= lam_max)),
            )

        def body(attempt, lam_, nu_, accepted, w_new, loss_new, last):
            delta, ok, again = system.solve(lam_)
            move = delta if lr is None else lr * delta
            total = move
            if self.geodesic:
                # v = -move; the acceleration is a = -half_b * 2 below.
                b, b_ok = again(system.second_order(-move))
                ratio = 2.0 * tf.norm(b) / tf.maximum(tf.norm(move), 1e-300)
                use = b_ok & ok & (ratio <= self.geodesic_ratio)
                total = tf.where(use, move + 0.5 * b, move)
            candidate = tf.cast(w64 - total, w.dtype)
            loss1 = objective(candidate)
            predicted = self.curvature_scale * system.predicted_decrease(move, lam_)
            decrease = initial_loss - loss1
            rho = decrease / predicted
            finite = tf.math.is_finite(loss1)
            good = ok & finite & (loss1 < initial_loss)
            # Both updates are a few scalar ops: selecting one costs less to
            # trace and to start than a conditional with two branch graphs.
            lam_acc, nu_acc = self.damping.accepted(lam_, nu_, rho)
            lam_rej, nu_rej = self.damping.rejected(lam_, nu_)
            lam_next = tf.where(good, lam_acc, lam_rej)
            nu_next = nu_acc if nu_acc is nu_rej else tf.where(good, nu_acc, nu_rej)
            w_next = tf.where(good, candidate, w)
            loss_next = tf.where(good, loss1, initial_loss)
            actual = tf.where(
                finite,
                tf.math.divide_no_nan(decrease, initial_loss),
                tf.constant(-1.0, _F64),
            )
            last = tf.stack(
                [
                    actual,
                    tf.math.divide_no_nan(predicted, initial_loss),
                    tf.norm(tf.cast(candidate, _F64) - w64),
                ]
            )
            return attempt + 1, lam_next, nu_next, good, w_next, loss_next, last

        init = (
            tf.constant(0),
            lam,
            nu,
            tf.constant(False),
            w,
            initial_loss,
            tf.fill([3], tf.constant(float("nan"), _F64)),
        )
        attempts, lam, nu, accepted, w_new, loss_new, last = tf.while_loop(
            cond, body, init
        )
        stop = stop_code(initial_loss, accepted, lam, lam_max)
        return StepResult(
            w_new,
            lam,
            nu,
            loss_new,
            attempts,
            accepted,
            initial_loss,
            stop,
            last[0],
            last[1],
            last[2],
            tf.norm(w64),
            gradient_cosine(system, initial_loss),
        )


def gradient_cosine(system: System, loss) -> tf.Tensor:
    """``max_j |g_j| / sqrt(H_jj L)`` at the system's weights (module docstring).

    ``NaN`` when the system has no ``diag(H)`` (``curvature_diagonal`` None);
    0 for a zero loss, and columns with ``H_jj = 0`` count as 0.
    """
    if system.curvature_diagonal is None:
        return tf.constant(float("nan"), _F64)
    scale = tf.sqrt(system.curvature_diagonal * loss)
    return tf.reduce_max(tf.math.divide_no_nan(tf.abs(system.gradient), scale))
