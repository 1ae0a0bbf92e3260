"""What Bayesian regularization's prior and likelihood cover in a model.

Which weights carry the Gaussian prior (:func:`penalty_mask`: every weight
but the output layer's bias), how they are grouped for one precision per
layer (:func:`penalty_groups`), which losses are likelihoods it can use
(:func:`likelihood`) and the weight direction a softmax cannot see
(:func:`shift_direction`). The math, and why the output bias is left out,
are in :mod:`sklearn_lm.engine.bayesian`, which re-exports these functions.
"""

from __future__ import annotations

import math

import numpy as np

from . import losses as losses_module

__all__ = ["penalty_mask", "penalty_groups", "likelihood", "shift_direction"]


def penalty_mask(fn) -> np.ndarray:
    """1.0 for the weights Bayesian regularization penalises, else 0.0.

    Every weight but the last variable of the model when it is a vector:
    the output layer's bias (see the module docstring).

    Parameters
    ----------
    fn : ModelFunction

    Returns
    -------
    ndarray of shape (n,)
    """
    mask = np.ones(int(fn.n_params))
    if len(fn.shapes[-1]) == 1:
        mask[-int(fn.sizes[-1]) :] = 0.0
    return mask


def penalty_groups(fn) -> np.ndarray:
    """The group of each weight for ``bayesian_groups="layer"``; -1 if unpenalised.

    Every penalised variable of the model (:func:`penalty_mask`) is a group,
    numbered in the model's order: for a ``Dense`` chain, the first kernel,
    the first hidden bias vector, the second kernel, ... and the output
    kernel; the output bias (unpenalised) is -1.

    Parameters
    ----------
    fn : ModelFunction

    Returns
    -------
    ndarray of shape (n,), int64
    """
    mask = penalty_mask(fn)
    groups = np.full(int(fn.n_params), -1, np.int64)
    start, group = 0, 0
    for size in fn.sizes:
        size = int(size)
        if size and mask[start] > 0:
            groups[start : start + size] = group
            group += 1
        start += size
    return groups


def likelihood(loss) -> str | None:
    """The likelihood a loss stands for, or ``None`` if it has none here.

    ``"gaussian"`` for the mean squared error (a noise precision ``beta``
    to estimate); ``"bernoulli"`` for the binary cross-entropy and
    ``"categorical"`` for the (sparse) categorical cross-entropy, both on
    logits (``from_logits=True``) in their generalised Gauss-Newton form
    (``beta`` fixed at 1). Anything else, subclasses included, gives
    ``None``.

    Parameters
    ----------
    loss : Loss

    Returns
    -------
    str or None
    """
    kind = type(loss)
    if kind is losses_module.MeanSquaredError:
        return "gaussian"
    on_logits = getattr(loss, "from_logits", False)
    if not (on_logits and getattr(loss, "gauss_newton", False)):
        return None
    if kind is losses_module.BinaryCrossentropy:
        return "bernoulli"
    if kind in (
        losses_module.CategoricalCrossentropy,
        losses_module.SparseCategoricalCrossentropy,
    ):
        return "categorical"
    return None


def shift_direction(fn, loss) -> np.ndarray | None:
    """The weight direction a softmax cannot see, or ``None``.

    For a softmax likelihood (:func:`likelihood` ``"categorical"``) whose
    model ends with an unpenalised output bias of one entry per output:
    the unit vector ``u`` that adds ``1 / sqrt(k)`` to every output bias.
    It shifts all logits equally, which changes no probability, so the
    Hessian ``A`` of the evidence is singular along it (see the module
    docstring). ``None`` otherwise.

    Parameters
    ----------
    fn : ModelFunction
    loss : Loss

    Returns
    -------
    ndarray of shape (n,) or None
    """
    k = int(fn.n_outputs)
    if likelihood(loss) != "categorical" or k < 2:
        return None
    if len(fn.shapes[-1]) != 1 or int(fn.sizes[-1]) != k:
        return None
    u = np.zeros(int(fn.n_params))
    u[-k:] = 1.0 / math.sqrt(k)
    return u
