"""Float64 sums of row products (:mod:`sklearn_lm.engine.products`)."""

import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm.engine.products import BLOCK_ROWS, RowBlocks, cross


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [7, BLOCK_ROWS, 3 * BLOCK_ROWS + 11])
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
    np.testing.assert_allclose(gram.numpy(), exact.T @ exact, rtol=rtol, atol=rtol)
    rounded = vec.astype(dtype).astype(np.float64)
    np.testing.assert_allclose(
        projected.numpy(), exact.T @ rounded, rtol=rtol, atol=rtol * rows**0.5
    )
    np.testing.assert_allclose(
        cross(tf.constant(mat)).numpy(), gram.numpy(), rtol=1e-12, atol=1e-12
    )


def test_blocked_float32_sum_is_closer_than_one_float32_product():
    """Many rows of a large constant plus noise: one float32 sum loses digits."""
    rng = np.random.default_rng(0)
    mat = (1.0 + 1e-3 * rng.standard_normal((200_000, 2))).astype(np.float32)
    exact = mat.astype(np.float64).T @ mat.astype(np.float64)
    blocked = RowBlocks(tf.constant(mat)).gram().numpy()
    plain = tf.matmul(mat, mat, transpose_a=True).numpy().astype(np.float64)
    assert np.abs(blocked - exact).max() < np.abs(plain - exact).max() / 10
