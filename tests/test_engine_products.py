"""Float64 sums of row products (:mod:`sklearn_lm.engine.products`)."""

import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm.engine.products import (
    BLOCK_ROWS,
    RowBlocks,
    _blocks,
    transposed_product,
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [7, BLOCK_ROWS, 3 * BLOCK_ROWS + 11, 1031, 20_000])
def test_row_blocks_match_float64_products(dtype, rows):
    rng = np.random.default_rng(rows)
    mat = rng.standard_normal((rows, 6)).astype(dtype)
    vec = rng.standard_normal(rows)
    exact = mat.astype(np.float64)
    blocks = RowBlocks(tf.constant(mat))
    gram = blocks.gram()
    projected = blocks.transpose_times(tf.constant(vec))
    assert gram.dtype == projected.dtype == tf.float64
    # float32 rows: only the rounding inside one block of products is added
    # (and, for the vector, the rounding of ``vec`` to float32).
    rtol = 1e-5 if dtype == "float32" else 1e-12
    # Entries that cancel to a small sum keep the absolute rounding of the
    # blocks, which grows like sqrt(rows).
    np.testing.assert_allclose(
        gram.numpy(), exact.T @ exact, rtol=rtol, atol=rtol * rows**0.5
    )
    rounded = vec.astype(dtype).astype(np.float64)
    np.testing.assert_allclose(
        projected.numpy(), exact.T @ rounded, rtol=rtol, atol=rtol * rows**0.5
    )
    np.testing.assert_allclose(
        transposed_product(tf.constant(mat)).numpy(),
        gram.numpy(),
        rtol=1e-12,
        atol=1e-12,
    )


def test_blocked_float32_sum_is_closer_than_one_float32_product():
    """Many rows of a large constant plus noise: one float32 sum loses digits."""
    rng = np.random.default_rng(0)
    mat = (1.0 + 1e-3 * rng.standard_normal((200_000, 2))).astype(np.float32)
    exact = mat.astype(np.float64).T @ mat.astype(np.float64)
    blocked = RowBlocks(tf.constant(mat)).gram().numpy()
    plain = tf.matmul(mat, mat, transpose_a=True).numpy().astype(np.float64)
    assert np.abs(blocked - exact).max() < np.abs(plain - exact).max() / 10


@pytest.mark.parametrize(
    "rows, shape",
    [
        (7, (1, 7)),  # one block, no padding
        (20_000, (40, 500)),  # the fewest blocks divide the rows
        (3750, (10, 375)),  # 8 blocks do not, 10 do
        (1031, (3, 344)),  # a prime: the fewest blocks, one zero row
    ],
)
def test_blocks_cut_rows_without_padding_where_a_size_divides_them(rows, shape):
    mat = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 1.0
    blocks = _blocks(tf.constant(mat)).numpy()
    assert blocks.shape == (*shape, 3)
    assert shape[1] <= BLOCK_ROWS
    flat = blocks.reshape(-1, 3)
    np.testing.assert_array_equal(flat[:rows], mat)
    np.testing.assert_array_equal(flat[rows:], 0.0)


def test_cross_of_two_matrices_matches_float64_product():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3750, 4)).astype(np.float32)
    b = rng.standard_normal((3750, 2)).astype(np.float32)
    got = transposed_product(tf.constant(a), tf.constant(b)).numpy()
    exact = a.astype(np.float64).T @ b.astype(np.float64)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)


def test_cross_is_a_deprecated_name_of_transposed_product():
    from sklearn_lm.engine import products

    with pytest.warns(DeprecationWarning, match="transposed_product"):
        assert products.cross is transposed_product
