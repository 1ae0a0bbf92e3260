"""How fast this machine multiplies matrices, and what an LM step costs.

Measured rate
-------------
:func:`measure` times the product ``J^T J`` of a ``(20000, 61)`` matrix (the
sinc task's Jacobian) in NumPy and in TensorFlow, float32 and float64, plus
the blocked float32 form sklearn_lm's engine uses
(:class:`sklearn_lm.engine.products.RowBlocks`: blocks of at most 512 rows,
each block's product in float32, the sum in float64). The rate is
``2 m n**2 / time`` (what a general matrix product performs; ``J^T J`` is
symmetric, so half of it would do) from the median of repeated runs.

FLOPs of one LM step
--------------------
For a batch of ``m`` samples, ``q`` residual rows per sample, ``n`` weights
and ``a`` attempts (solves) per step, :func:`lm_step_flops` counts

==================  =============================================
forward pass        ``F = 2 m n`` (one multiply-add per weight and sample)
Jacobian            ``F + 2 m q n`` (forward pass, then one multiply-add per
                    Jacobian entry)
normal equations    ``2 m q n**2`` (``J^T J``) ``+ 2 m q n`` (``J^T e``)
each attempt        ``n**3 / 3 + 2 n**2`` (Cholesky and two triangular
                    solves) ``+ F`` (loss at the trial weights)
==================  =============================================

i.e. ``flops = 2 F + 2 m q n (n + 2) + a (n**3 / 3 + 2 n**2 + F)``. This is
the useful work of a step of this shape; an implementation that does more
(QR instead of Cholesky, a whole-batch Jacobian by automatic
differentiation) gets no credit for the extra work. Activation functions and
memory traffic are not counted. The fraction of the machine a contender
achieves is ``flops / median step time`` over the measured matrix-product
rate of the precision and library its ``J^T J`` runs in.
"""

from __future__ import annotations

import time

__all__ = ["lm_step_flops", "measure"]

SHAPE = (20_000, 61)


def lm_step_flops(m: int, n: int, q: int = 1, attempts: float = 1.0) -> float:
    """Floating-point operations of one LM step (see the module docstring).

    Parameters
    ----------
    m : int
        Samples in the batch.
    n : int
        Weights.
    q : int, default=1
        Residual rows per sample.
    attempts : float, default=1.0
        Solves (and trial-loss evaluations) per step.

    Returns
    -------
    float

    Examples
    --------
    >>> f"{lm_step_flops(20_000, 61):.3g}"
    '1.61e+08'
    """
    forward = 2.0 * m * n
    return (
        2.0 * forward
        + 2.0 * m * q * n * (n + 2)
        + attempts * (n**3 / 3.0 + 2.0 * n**2 + forward)
    )


def _median_time(run, min_repeats: int = 10, min_seconds: float = 0.5) -> float:
    run()  # warm up
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
        if len(times) >= 1000:
            break
    times.sort()
    return times[len(times) // 2]


def measure(shape: tuple[int, int] = SHAPE) -> dict:
    """Rates (GFLOP/s) of ``J^T J`` in NumPy and TensorFlow on this machine.

    Parameters
    ----------
    shape : tuple of int, default=(20000, 61)

    Returns
    -------
    dict
        ``{"numpy_float32": ..., "numpy_float64": ..., "tf_float32": ...,
        "tf_float64": ..., "tf_float32_blocked": ..., "shape": [m, n]}``.
    """
    import numpy as np
    import tensorflow as tf

    m, n = shape
    flops = 2.0 * m * n * n
    rng = np.random.default_rng(0)
    base = rng.standard_normal(shape)
    rates: dict = {"shape": [m, n]}
    gram = tf.function(lambda v: tf.matmul(v, v, transpose_a=True))
    for dtype in ("float32", "float64"):
        a = np.ascontiguousarray(base.astype(dtype))
        rates[f"numpy_{dtype}"] = flops / _median_time(lambda a=a: a.T @ a) / 1e9
        t = tf.constant(a)
        rates[f"tf_{dtype}"] = flops / _median_time(lambda t=t: gram(t).numpy()) / 1e9

    from sklearn_lm.engine.products import RowBlocks

    blocked = tf.function(lambda v: RowBlocks(v).gram())

    t32 = tf.constant(base.astype("float32"))
    rates["tf_float32_blocked"] = (
        flops / _median_time(lambda: blocked(t32).numpy()) / 1e9
    )
    return rates
