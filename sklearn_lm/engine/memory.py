"""Memory of a step: chunk sizes and the size of the normal equations.

A direct step holds the float64 normal equations, ``24 n**2`` bytes for ``n``
weights (:func:`normal_matrix_bytes`: the matrix, its Cholesky factor and the
damped copy), plus the linearisation of at most :data:`CHUNKS_IN_FLIGHT`
chunks of samples at once: per sample, the rows ``[F J | e]`` (``q (n + 1)``
values for ``q`` residual rows per sample) in the model's dtype and one
array of their size, or the narrower temporaries of the layer-by-layer
Gauss-Newton products (:func:`layerwise_width`, :func:`chunk_bytes`). The
chunk size is chosen so that the chunks in flight hold at most
:data:`CHUNK_BUDGET_BYTES` (:func:`default_chunk_size`); memory then does not
grow with the number of samples. :func:`step_memory_bytes` states the bound,
data included. :func:`check_memory` refuses, before anything is allocated, a
step whose normal equations would not fit.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .products import BLOCK_ROWS
from .system import choose_form

if TYPE_CHECKING:  # pragma: no cover
    from .config import StepConfig
    from .functions import ModelFunction

__all__ = [
    "CHUNK_BUDGET_BYTES",
    "CHUNKS_IN_FLIGHT",
    "check_memory",
    "chunk_bytes",
    "default_chunk_size",
    "layerwise_width",
    "normal_matrix_bytes",
    "physical_memory_bytes",
    "step_memory_bytes",
]

#: Bytes the chunks of a step may hold together (see :func:`chunk_bytes`).
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


def chunk_bytes(
    n_params: int, rows_per_sample: int, itemsize: int, width: int | None = None
) -> int:
    """Bytes per sample of a chunk at the peak of a step.

    ``2 * v * itemsize`` with ``v = rows_per_sample * (n_params + 1)`` values
    per sample, or ``v = width`` (see :func:`layerwise_width`): the rows
    ``[F J | e]`` in the model's dtype and one array of their size, either the
    blocks they are concatenated from or their padded float32 blocks
    (:class:`~sklearn_lm.engine.products.RowBlocks`). A chunk's forward pass
    and second-order terms (a few values per unit and sample) are smaller.

    Parameters
    ----------
    n_params : int
        Weights, ``n``.
    rows_per_sample : int
        Residual rows per sample, ``q``.
    itemsize : int
        Bytes per value of the model's dtype.
    width : int, optional
        Values per sample of the layer-by-layer products, when used.

    Returns
    -------
    int
    """
    values = rows_per_sample * (n_params + 1) if width is None else width
    return max(1, 2 * values * itemsize)


def default_chunk_size(
    n_params: int, rows_per_sample: int, itemsize: int, width: int | None = None
) -> int:
    """Samples per chunk so that the chunks in flight fit ``CHUNK_BUDGET_BYTES``.

    The largest ``c`` with ``CHUNKS_IN_FLIGHT * c * chunk_bytes(...) <=
    CHUNK_BUDGET_BYTES`` (at least 64), rounded down to a multiple of
    :data:`~sklearn_lm.engine.products.BLOCK_ROWS` when it holds 16 blocks or
    more: the float32 blocks of a full chunk are then its rows reshaped, not a
    padded copy. Parameters as for :func:`chunk_bytes`.
    """
    per_sample = CHUNKS_IN_FLIGHT * chunk_bytes(
        n_params, rows_per_sample, itemsize, width
    )
    rows = max(64, CHUNK_BUDGET_BYTES // per_sample)
    if rows >= 16 * BLOCK_ROWS:
        rows -= rows % BLOCK_ROWS
    return rows


def step_memory_bytes(
    n_params: int,
    rows_per_sample: int,
    itemsize: int,
    batch_rows: int,
    chunk_size: int,
    width: int | None = None,
    data_bytes_per_sample: int = 0,
) -> int:
    """Bound on the memory of a direct step on ``batch_rows`` samples.

    ``24 n**2 + k * c * chunk_bytes(...) + N * data_bytes_per_sample``: the
    float64 normal equations (:func:`normal_matrix_bytes`), ``k =
    min(CHUNKS_IN_FLIGHT, chunks)`` chunks of ``c = min(N, chunk_size)``
    samples at once (:func:`chunk_bytes`), and the batch as the step reads it
    (``Trainer`` holds inputs in the model's dtype, targets and sample
    weights in float64: ``d * itemsize + 8 * (k_out + 1)`` bytes per sample).

    Parameters
    ----------
    n_params, rows_per_sample, itemsize, width
        As for :func:`chunk_bytes`.
    batch_rows : int
        Samples per batch, ``N``.
    chunk_size : int
        Samples per chunk.
    data_bytes_per_sample : int, default=0
        Bytes of a sample's inputs, targets and weight as the step reads them.

    Returns
    -------
    int
    """
    rows = min(batch_rows, chunk_size)
    in_flight = min(CHUNKS_IN_FLIGHT, -(-batch_rows // chunk_size))
    return (
        normal_matrix_bytes(n_params)
        + in_flight * rows * chunk_bytes(n_params, rows_per_sample, itemsize, width)
        + batch_rows * data_bytes_per_sample
    )


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
