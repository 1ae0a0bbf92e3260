"""Sums over samples of outer products, accumulated in float64.

``J^T J``, ``J^T e`` and their structured relatives are sums over many rows.
In float64 models they are plain float64 matrix products. For float32 models
the products are formed by float32 matrix multiplication over blocks of at
most :data:`BLOCK_ROWS` rows and the blocks are summed in float64: the entries are
float32 values already, so only the rounding inside one block is added (about
``sqrt(BLOCK_ROWS) * 6e-8`` relative), while float32 matrix multiplication
runs several times faster than float64 on CPUs. One float32 sum over all
rows would cancel too much near a minimum.
"""

from __future__ import annotations

import warnings

import tensorflow as tf

__all__ = ["BLOCK_ROWS", "RowBlocks", "row_layout", "transposed_product"]

#: Most rows per float32 block.
BLOCK_ROWS = 512
_F64 = tf.float64


def _layout(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(blocks, size)`` for cutting ``rows`` rows (int32 scalars).

    The fewest blocks of at most :data:`BLOCK_ROWS` rows, or up to twice as
    many when that divides the rows exactly: then no padded copy is made
    (20 000 rows are 40 blocks of 500). Otherwise the last block is padded
    with fewer than ``blocks`` zero rows.
    """
    fewest = tf.maximum((rows + BLOCK_ROWS - 1) // BLOCK_ROWS, 1)
    candidates = tf.range(fewest, 2 * fewest + 1)
    exact = tf.cast(tf.equal(rows % candidates, 0), tf.int32)
    # argmax finds the first exact divisor; 0 (the fewest blocks) if none.
    count = fewest + tf.cast(tf.argmax(exact), tf.int32)
    return count, (rows + count - 1) // count


def row_layout(mat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None:
    """How the float32 products cut the rows of ``mat``, for sharing.

    Several :func:`transposed_product` of matrices with the same rows (the
    layers of one batch) given this layout compute it once: fewer ops in the
    graph, the same blocks.

    Parameters
    ----------
    mat : tf.Tensor
        ``(rows, c)``.

    Returns
    -------
    tuple of tf.Tensor or None
        ``(blocks, size, rows)``, int32 scalars; ``None`` unless ``mat`` is
        float32 (other dtypes are not cut into blocks).
    """
    if mat.dtype != tf.float32:
        return None
    rows = tf.shape(mat)[0]
    return (*_layout(rows), rows)


def _blocks(mat: tf.Tensor, layout=None) -> tf.Tensor:
    """``mat (rows, c)`` cut into ``(blocks, size, c)`` as :func:`_layout` says.

    ``layout`` is :func:`row_layout` of a matrix with the same rows, computed
    here when not given; matrices with the same rows are cut alike.
    """
    if layout is None:
        layout = row_layout(mat)
    count, size, rows = layout
    padded = tf.pad(mat, [[0, count * size - rows], [0, 0]])
    return tf.reshape(padded, [count, size, mat.shape[1] or tf.shape(mat)[1]])


def transposed_product(
    a: tf.Tensor, b: tf.Tensor | None = None, layout=None
) -> tf.Tensor:
    """``a^T b`` (``a^T a`` when ``b`` is None) as a float64 matrix.

    Parameters
    ----------
    a : tf.Tensor
        ``(rows, p)``.
    b : tf.Tensor, optional
        ``(rows, r)``, same dtype as ``a``.
    layout : tuple, optional
        :func:`row_layout` of a matrix with the same rows (computed here when
        ``None``).

    Returns
    -------
    tf.Tensor
        ``(p, r)`` float64. float32 inputs are multiplied in float32 blocks
        of at most :data:`BLOCK_ROWS` rows whose results are summed in
        float64; other
        dtypes are cast to float64 first.
    """
    if a.dtype != tf.float32:
        a = tf.cast(a, _F64)
        b = a if b is None else tf.cast(b, _F64)
        return tf.matmul(a, b, transpose_a=True)
    if b is None:
        return RowBlocks(a).gram()
    layout = row_layout(a) if layout is None else layout
    partial = tf.matmul(_blocks(a, layout), _blocks(b, layout), transpose_a=True)
    return tf.reduce_sum(tf.cast(partial, _F64), axis=0)


class RowBlocks:
    """A matrix of rows held for repeated float64 products ``A^T A`` and ``A^T v``.

    float32 rows are cut into blocks of at most :data:`BLOCK_ROWS` rows (and
    padded, when no block size divides them) once, so that every later
    product runs on the blocks without copying the rows again; other dtypes
    are held as float64.

    Parameters
    ----------
    mat : tf.Tensor
        ``(rows, p)``.
    """

    def __init__(self, mat: tf.Tensor):
        self.blocked = mat.dtype == tf.float32
        if self.blocked:
            self.layout = row_layout(mat)
            self.values = _blocks(mat, self.layout)
        else:
            self.values = tf.cast(mat, _F64)

    def gram(self) -> tf.Tensor:
        """``A^T A``, ``(p, p)`` float64 (as :func:`transposed_product`)."""
        product = tf.matmul(self.values, self.values, transpose_a=True)
        if not self.blocked:
            return product
        return tf.reduce_sum(tf.cast(product, _F64), axis=0)

    def transpose_times(self, vec: tf.Tensor) -> tf.Tensor:
        """``A^T vec`` for ``vec (rows,)``, ``(p,)`` float64.

        For float32 rows ``vec`` is rounded to float32 and each block's
        product summed in float64, as in :func:`transposed_product`.
        """
        if not self.blocked:
            return tf.linalg.matvec(self.values, tf.cast(vec, _F64), transpose_a=True)
        v = _blocks(tf.cast(vec, tf.float32)[:, None], self.layout)[..., 0]
        # A batched (1 x BLOCK_ROWS) by (BLOCK_ROWS x p) product per block:
        # about twice as fast here as the transposed matrix-vector form.
        partial = tf.einsum("bi,bij->bj", v, self.values)
        return tf.reduce_sum(tf.cast(partial, _F64), axis=0)


def __getattr__(name: str):
    if name == "cross":
        warnings.warn(
            "sklearn_lm.engine.products.cross is deprecated; use "
            "transposed_product (the same a^T b).",
            DeprecationWarning,
            stacklevel=2,
        )
        return transposed_product
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
