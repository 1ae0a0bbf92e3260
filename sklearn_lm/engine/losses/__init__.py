"""Losses in the form the Levenberg-Marquardt step needs.

Every loss here is a mean over samples of a per-sample loss ``l_i``::

    value = sum_i w_i * l_i / (N * c)

with ``N`` the number of samples, ``w_i`` the sample weights and ``c`` the
loss's :attr:`Loss.output_normaliser` (the number of outputs for the mean
squared errors, 1 otherwise), exactly as Keras reduces its own losses.

For the step, a loss *linearises* itself around the model outputs ``z``: it
returns, per sample, a vector ``e_i`` (length ``q``, the residuals per sample)
and a matrix ``F_i`` (``q x k``, ``k`` outputs) such that

* the gradient of the loss is ``s / (N c) * sum_i J_i^T F_i^T e_i``,
* its (generalised) Gauss-Newton curvature is ``s / (N c) * sum_i J_i^T F_i^T F_i J_i``,

where ``J_i`` is the Jacobian of the model outputs for sample ``i`` and ``s``
is :attr:`Loss.curvature_scale`. For a residual-form loss (``l_i = |r_i|^2``)
``e_i = r_i``, ``F_i = dr_i/dz_i`` and ``s = 2``; then ``value ==
sum(w * r**2) / (N c)`` holds exactly. The cross-entropies also offer a
generalised Gauss-Newton form (``s = 1``) whose curvature on the logits is
``H = diag(p) - p p^T`` for softmax and ``p (1 - p)`` for sigmoid outputs.

All linearisation arithmetic is done in float64.

The interface lives in :mod:`.base`, the squared errors in :mod:`.squared`
and the cross-entropies in :mod:`.crossentropy`; all are importable from here.
"""

from __future__ import annotations

from typing import Any

from .base import Loss, ResidualLoss
from .crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    SquaredCategoricalCrossentropy,
)
from .squared import (
    CategoricalMeanSquaredError,
    MeanSquaredError,
    ReducedOutputsMeanSquaredError,
)

__all__ = [
    "Loss",
    "ResidualLoss",
    "MeanSquaredError",
    "ReducedOutputsMeanSquaredError",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "SquaredCategoricalCrossentropy",
    "CategoricalMeanSquaredError",
    "get",
]


_REGISTRY: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "reduced_outputs_mse": ReducedOutputsMeanSquaredError,
    "reduced_outputs_mean_squared_error": ReducedOutputsMeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "squared_categorical_crossentropy": SquaredCategoricalCrossentropy,
    "categorical_mse": CategoricalMeanSquaredError,
    "categorical_mean_squared_error": CategoricalMeanSquaredError,
}


def get(identifier: str | Loss, **kwargs: Any) -> Loss:
    """Return a :class:`Loss` from a name or an instance.

    Parameters
    ----------
    identifier : str or Loss
        One of the registered names (see ``ValueError`` message) or an
        instance, returned unchanged.
    **kwargs
        Constructor arguments (e.g. ``from_logits=True``) for a name.

    Returns
    -------
    Loss
    """
    if isinstance(identifier, Loss):
        if kwargs:
            raise ValueError(
                "Loss arguments can only be given with a loss name. "
                f"Received: loss={identifier!r}, kwargs={kwargs}"
            )
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()](**kwargs)
    raise ValueError(
        f"Unknown loss. Expected a sklearn_lm.engine.losses.Loss or one of "
        f"{sorted(_REGISTRY)}. Received: loss={identifier!r}"
    )
