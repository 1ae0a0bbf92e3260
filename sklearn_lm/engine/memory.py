"""Memory of a step: chunk sizes and the size of the normal equations.

A direct step holds the float64 normal equations, ``24 n**2`` bytes for ``n``
weights (:func:`normal_matrix_bytes`: the matrix, its Cholesky factor and the
damped copy), plus the linearisation of one chunk of samples: ``q n`` Jacobian
values per sample for ``q`` residual rows per sample, each in the model's
dtype and in float64, or the narrower temporaries of the layer-by-layer
Gauss-Newton products (:func:`layerwise_width`). The chunk size is chosen so
that a chunk holds about :data:`CHUNK_BUDGET_BYTES`
(:func:`default_chunk_size`); memory then does not grow with the number of
samples. :func:`check_memory` refuses, before anything is allocated, a step
whose normal equations would not fit.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .system import choose_form

if TYPE_CHECKING:  # pragma: no cover
    from .config import StepConfig
    from .functions import ModelFunction

__all__ = [
    "CHUNK_BUDGET_BYTES",
    "CHUNKS_IN_FLIGHT",
    "check_memory",
    "default_chunk_size",
    "layerwise_width",
    "normal_matrix_bytes",
    "physical_memory_bytes",
]

#: Bytes of Jacobian rows a chunk may hold (model dtype plus float64 copy).
CHUNK_BUDGET_BYTES = 128 * 2**20
#: Chunks the chunk loop processes at once (``parallel_iterations``): the
#: second overlaps the serial stretches of the first, as fast as ten on two
#: cores, without ten chunks' rows held together.
CHUNKS_IN_FLIGHT = 2


def layerwise_width(fn: ModelFunction, rows_per_sample: int) -> int | None:
    """Values per sample of the layer-by-layer Gauss-Newton products, if used.

    The products (:meth:`~sklearn_lm.engine.layerwise.LayerwiseProducts.gauss_newton`)
    replace the ``rows_per_sample * n`` Jacobian rows of a sample when the
    model function offers them (``fn.capabilities.layerwise_gauss_newton``),
    a sample has several residual rows, and their largest temporary per
    sample is no wider than those rows: they then cost about
    ``rows_per_sample`` times fewer flops.

    Parameters
    ----------
    fn : ModelFunction
    rows_per_sample : int
        Residual rows per sample, ``q``.

    Returns
    -------
    int or None
        The width, or ``None`` when the Jacobian rows are formed.
    """
    if not fn.capabilities.layerwise_gauss_newton or rows_per_sample <= 1:
        return None
    values = int(fn.structured_width())
    return values if values <= rows_per_sample * fn.n_params else None


def default_chunk_size(
    n_params: int, rows_per_sample: int, itemsize: int, width: int | None = None
) -> int:
    """Samples per chunk so that a chunk's rows fit ``CHUNK_BUDGET_BYTES``.

    A chunk holds ``rows_per_sample * n_params`` Jacobian values per sample,
    or ``width`` values when given (see :func:`layerwise_width`), each in the
    model's dtype (``itemsize`` bytes) and in float64: the chunk size is
    ``CHUNK_BUDGET_BYTES // (values * (8 + itemsize))``, at least 64.
    """
    values = rows_per_sample * n_params if width is None else width
    per_sample = max(1, values * (8 + itemsize))
    return max(64, CHUNK_BUDGET_BYTES // per_sample)


def normal_matrix_bytes(n_params: int) -> int:
    """Bytes held by the float64 normal equations (matrix, factor, damped copy)."""
    return 3 * 8 * n_params * n_params


def physical_memory_bytes() -> int:
    """Physical memory of this machine, or 8 GiB if it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_memory(
    fn: ModelFunction, config: StepConfig, batch_rows: int, memory_limit: int
) -> None:
    """Raise if the steps on batches of ``batch_rows`` samples would not fit.

    Only steps that form the ``n x n`` normal equations are limited:
    conjugate gradients and the Gram form (see
    :func:`~sklearn_lm.engine.system.choose_form`) hold no such matrix.

    Parameters
    ----------
    fn : ModelFunction
    config : StepConfig
    batch_rows : int
        Samples per batch.
    memory_limit : int
        Bytes the normal equations may use.

    Raises
    ------
    ValueError
        When :func:`normal_matrix_bytes` exceeds ``memory_limit``.
    """
    if config.solver == "cg":
        return  # conjugate gradients: no n x n matrix
    q = config.loss.residuals_per_sample(fn.n_outputs)
    if choose_form(batch_rows, q, fn.n_params, config.l2, config.form) == "gram":
        return  # only the Gram form is used: no n x n matrix
    need = normal_matrix_bytes(fn.n_params)
    if need > memory_limit:
        raise ValueError(
            f"The model has {fn.n_params} weights: the float64 normal "
            f"equations need about {need / 2**30:.1f} GiB, more than "
            f"memory_limit={memory_limit} bytes. Use solver='cg', a "
            "smaller model, or a batch_size with batch_size * "
            "residuals_per_sample < n_weights (and l2=0) so that the Gram "
            "form is used."
        )
