"""Do graphs with unknown layer widths run slower, or round differently?

Usage::

    python -m benchmarks.bench_dynamic_shapes [--repeats 15]

The question behind width-independent compiled steps (one graph for every
network of the same depth, whatever its layer widths): do the kernels lose
speed, or change results, when the widths are runtime tensors instead of
static shapes? A ``d``-``h``-1 tanh network's Levenberg-Marquardt step, as
the closed form computes it (forward pass, Jacobian rows, ``J^T J`` and
``J^T e`` in float64, a damped Cholesky solve, the loss at the trial
weights), is traced twice: with the widths static (the weights a vector of
known length), and with the weights a vector of unknown length, the inputs
of unknown width and the widths a graph input. Both are called as the engine
calls its graphs (Grappler off, :mod:`sklearn_lm.engine._call_options`),
alternated, 10 calls per sample; the medians are printed with the largest
difference between their results. Cases: sinc (20 000 x 1, ``h=20``),
digits-sized (1 347 x 64, ``h=20``), diabetes-sized (331 x 10, ``h=40``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

__all__ = ["main"]

CASES = [(20000, 1, 20), (1347, 64, 20), (331, 10, 40)]


def _step(w, x, y, sizes, shapes):
    import tensorflow as tf

    def forward(w):
        k1, b1, k2, b2 = tf.split(w, sizes)
        k1, k2 = tf.reshape(k1, shapes[0]), tf.reshape(k2, shapes[1])
        a = tf.tanh(tf.matmul(x, k1) + b1)
        return a, k2, tf.matmul(a, k2) + b2

    a, k2, out = forward(w)
    e = y - out
    da = (1 - a * a) * tf.reshape(k2, [1, -1])
    j_k1 = tf.reshape(x[:, :, None] * da[:, None, :], [tf.shape(x)[0], -1])
    rows = tf.cast(tf.concat([j_k1, da, a, tf.ones_like(out)], axis=1), tf.float64)
    jtj = tf.matmul(rows, rows, transpose_a=True)
    g = tf.linalg.matvec(rows, tf.cast(e[:, 0], tf.float64), transpose_a=True)
    damped = jtj + 1e-3 * tf.linalg.diag(tf.linalg.diag_part(jtj) + 1.0)
    step = tf.linalg.cholesky_solve(tf.linalg.cholesky(damped), g[:, None])[:, 0]
    w1 = w + tf.cast(step, w.dtype)
    return w1, tf.reduce_sum(tf.cast(y - forward(w1)[2], tf.float64) ** 2)


def _case(n, d, h, repeats):
    import tensorflow as tf

    from sklearn_lm.engine._call_options import call

    dtype = tf.float32
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((n, d)), dtype)
    y = tf.constant(rng.standard_normal((n, 1)), dtype)
    n_params = d * h + 2 * h + 1
    w = tf.constant(rng.standard_normal(n_params) * 0.3, dtype)
    static = tf.function(
        lambda w, x, y: _step(w, x, y, [d * h, h, h, 1], [[d, h], [h, 1]]),
        input_signature=[
            tf.TensorSpec([n_params], dtype),
            tf.TensorSpec([None, d], dtype),
            tf.TensorSpec([None, 1], dtype),
        ],
        autograph=False,
    ).get_concrete_function()

    def polymorphic(w, x, y, widths):
        dd, hh = widths[0], widths[1]
        sizes = tf.stack([dd * hh, hh, hh, 1])
        return _step(w, x, y, sizes, [tf.stack([dd, hh]), tf.stack([hh, 1])])

    dynamic = tf.function(
        polymorphic,
        input_signature=[
            tf.TensorSpec([None], dtype),
            tf.TensorSpec([None, None], dtype),
            tf.TensorSpec([None, 1], dtype),
            tf.TensorSpec([2], tf.int32),
        ],
        autograph=False,
    ).get_concrete_function()
    widths = tf.constant([d, h], tf.int32)
    runs = [lambda: call(static, (w, x, y)), lambda: call(dynamic, (w, x, y, widths))]
    results = [run() for run in runs]
    diff = max(
        float(np.max(np.abs(p.numpy() - q.numpy())))
        for p, q in zip(*results, strict=True)
    )
    times = [[], []]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            for _ in range(10):
                out = run()
            out[1].numpy()
            times[i].append((time.perf_counter() - start) / 10)
    static_ms, dynamic_ms = (statistics.median(t) * 1e3 for t in times)
    return static_ms, dynamic_ms, diff


def main(argv: list[str] | None = None) -> None:
    """Print static vs dynamic widths: ms per step call and the largest difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    print("| rows x inputs, hidden | static ms | dynamic ms | ratio | max diff |")
    print("|---|---:|---:|---:|---:|")
    for n, d, h in CASES:
        s, dyn, diff = _case(n, d, h, args.repeats)
        print(f"| {n} x {d}, {h} | {s:.2f} | {dyn:.2f} | {dyn / s:.3f} | {diff:g} |")


if __name__ == "__main__":
    main()
