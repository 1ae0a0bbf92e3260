"""Damping strategies: how ``lambda`` enters the step and how it changes.

The damped system solved at each attempt is ``(H + lambda * diag(d)) delta = g``
where ``H`` is the (mean, Gauss-Newton) curvature and ``d`` comes from
:meth:`Damping.diagonal`:

* :class:`Standard` -- ``d = 1``: ``(J^T J + lambda I)``;
* :class:`Fletcher` -- ``d = diag(J^T J)``: scale-invariant damping.

A custom strategy subclasses :class:`Damping` and overrides
:meth:`Damping.diagonal` (any positive vector works), and may override
:meth:`Damping.accepted` / :meth:`Damping.rejected` to change the schedule.

``lambda`` is always float64 and kept within ``[min_value, max_value]``;
reaching ``max_value`` ends training with status ``"damping_max"``.
"""

from __future__ import annotations

import numbers
from typing import Any

import tensorflow as tf

__all__ = ["Damping", "Standard", "Fletcher", "get", "uses_curvature_diagonal"]

_F64 = tf.float64
#: Gain-ratio rule: the first increase factor after an acceptance (Nielsen).
GAIN_RATIO_NU0 = 2.0
#: Gain-ratio rule: the largest decrease of lambda after one acceptance.
GAIN_RATIO_MIN_DECREASE = 1.0 / 3.0


def _check_positive(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not value > 0
        or value != value
        or value == float("inf")
    ):
        raise ValueError(
            f"{name} must be a positive finite number. Received: {name}={value!r}"
        )
    return float(value)


class Damping:
    """Base damping strategy: ``d = 1`` (same as :class:`Standard`).

    Parameters
    ----------
    initial : float, default=1e-3
        Starting ``lambda``.
    increase : float, default=10.0
        Factor applied to ``lambda`` after a rejected attempt (``> 1``).
    decrease : float, default=0.1
        Factor applied to ``lambda`` after an accepted step (in ``(0, 1]``).
    min_value : float, default=1e-16
        Lower bound of ``lambda``. ``lambda`` is added to the curvature
        ``diag(H)`` (or to 1), so a floor above the smallest curvature of an
        ill-conditioned problem shrinks every step: on the NIST StRD problems
        a floor of 1e-10 sits above Bennett5's smallest eigenvalue of
        ``J^T J / N`` (about 2.5e-13) and needs thousands of steps there,
        while 1e-16 (the float64 rounding level) reaches the certified
        parameters on 53 of the 54 problem/starts (see
        ``docs/benchmarks_nist.md``). The estimators keep their own floor
        (``damping_min=1e-10``).
    max_value : float, default=1e10
        Upper bound of ``lambda``; reaching it stops training.
    update : {"fixed", "gain_ratio"}, default="fixed"
        ``"fixed"`` multiplies by ``increase``/``decrease``. ``"gain_ratio"``
        uses the ratio ``rho`` of actual to predicted loss reduction (Nielsen's
        rule): after an accepted step ``lambda *= max(1/3, 1 - (2 rho - 1)**3)``;
        after a rejection ``lambda *= nu`` and ``nu`` doubles (starting at 2).
        ``increase`` and ``decrease`` are not used by ``"gain_ratio"``.
    """

    def __init__(
        self,
        initial: float = 1e-3,
        increase: float = 10.0,
        decrease: float = 0.1,
        min_value: float = 1e-16,
        max_value: float = 1e10,
        update: str = "fixed",
    ):
        self.initial = _check_positive("initial", initial)
        self.increase = _check_positive("increase", increase)
        self.decrease = _check_positive("decrease", decrease)
        self.min_value = _check_positive("min_value", min_value)
        self.max_value = _check_positive("max_value", max_value)
        if self.increase <= 1:
            raise ValueError(f"increase must be > 1. Received: increase={increase!r}")
        if self.decrease > 1:
            raise ValueError(
                f"decrease must be in (0, 1]. Received: decrease={decrease!r}"
            )
        if not self.min_value < self.max_value:
            raise ValueError(
                "min_value must be smaller than max_value. Received: "
                f"min_value={min_value!r}, max_value={max_value!r}"
            )
        if not self.min_value <= self.initial <= self.max_value:
            raise ValueError(
                "initial must lie within [min_value, max_value]. Received: "
                f"initial={initial!r}, min_value={min_value!r}, "
                f"max_value={max_value!r}"
            )
        if update not in ("fixed", "gain_ratio"):
            raise ValueError(
                f"update must be 'fixed' or 'gain_ratio'. Received: update={update!r}"
            )
        self.update = update

    def diagonal(self, curvature_diagonal: tf.Tensor) -> tf.Tensor:
        """Return ``d`` (positive, float64) given ``diag(H)``."""
        return tf.ones_like(curvature_diagonal)

    def accepted(self, lam: tf.Tensor, nu: tf.Tensor, rho: tf.Tensor):
        """New ``(lambda, nu)`` after an accepted step with gain ratio ``rho``.

        A compiled step evaluates both this and :meth:`rejected` in every
        attempt and selects one result, so neither may have side effects
        (``rho`` may then be non-finite here).
        """
        if self.update == "gain_ratio":
            factor = tf.maximum(
                tf.constant(GAIN_RATIO_MIN_DECREASE, _F64),
                1.0 - tf.pow(2.0 * tf.minimum(rho, 1.0) - 1.0, 3),
            )
            return self._clip(lam * factor), tf.constant(GAIN_RATIO_NU0, _F64)
        return self._clip(lam * self.decrease), nu

    def rejected(self, lam: tf.Tensor, nu: tf.Tensor):
        """New ``(lambda, nu)`` after a rejected attempt."""
        if self.update == "gain_ratio":
            return self._clip(lam * nu), nu * 2.0
        return self._clip(lam * self.increase), nu

    def _clip(self, lam):
        return tf.clip_by_value(lam, self.min_value, self.max_value)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; used to share compiled steps between fits."""
        return {
            "initial": self.initial,
            "increase": self.increase,
            "decrease": self.decrease,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "update": self.update,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Standard(Damping):
    """Standard damping, ``J^T J + lambda I``. Parameters as :class:`Damping`."""


class Fletcher(Damping):
    """Fletcher's damping, ``J^T J + lambda diag(J^T J)``.

    Scale-invariant: each weight is damped in proportion to its own
    curvature. Diagonal entries are floored at ``1e-9`` times their mean (and
    at ``1e-30``) so that weights with no curvature stay damped. Parameters
    as :class:`Damping`.
    """

    def diagonal(self, curvature_diagonal):
        floor = 1e-9 * tf.reduce_mean(curvature_diagonal) + 1e-30
        return tf.maximum(curvature_diagonal, floor)


def uses_curvature_diagonal(damping: Damping) -> bool:
    """Whether ``damping.diagonal`` depends on ``diag(H)``.

    False for strategies that keep :meth:`Damping.diagonal` (``d = 1``):
    solvers that do not form ``H`` then skip computing its diagonal.
    """
    return type(damping).diagonal is not Damping.diagonal


_REGISTRY = {"standard": Standard, "fletcher": Fletcher}


def get(identifier: str | Damping, **kwargs: Any) -> Damping:
    """Return a :class:`Damping` from a name (``"standard"``, ``"fletcher"``)
    or an instance (returned unchanged; no ``kwargs`` allowed then)."""
    if isinstance(identifier, Damping):
        if kwargs:
            raise ValueError(
                "Damping arguments can only be given with a damping name. "
                f"Received: damping={identifier!r}, kwargs={kwargs}"
            )
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()](**kwargs)
    raise ValueError(
        "Unknown damping. Expected 'standard', 'fletcher' or a "
        f"sklearn_lm.engine.damping.Damping. Received: damping={identifier!r}"
    )
