"""Losses: values against Keras' own losses, linearisations against autodiff."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sklearn_lm.engine import losses

RNG = np.random.default_rng(0)
N, K = 7, 4
LOGITS = RNG.standard_normal((N, K))
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
LABELS = RNG.integers(0, K, N)
ONE_HOT = np.eye(K)[LABELS]
BINARY = RNG.integers(0, 2, (N, K)).astype(float)
SIGMOID = 1 / (1 + np.exp(-LOGITS))
TARGETS = RNG.standard_normal((N, K))
WEIGHTS = RNG.uniform(0.2, 2.0, N)

# (engine loss, targets, outputs, Keras reference value function)
CASES = {
    "mse": (
        losses.MeanSquaredError(),
        TARGETS,
        LOGITS,
        lambda y, z, w: keras.losses.MeanSquaredError()(y, z, w),
    ),
    "reduced_mse": (
        losses.ReducedOutputsMeanSquaredError(),
        TARGETS,
        LOGITS,
        lambda y, z, w: keras.losses.MeanSquaredError()(y, z, w),
    ),
    "cce_logits": (
        losses.CategoricalCrossentropy(from_logits=True),
        ONE_HOT,
        LOGITS,
        lambda y, z, w: keras.losses.CategoricalCrossentropy(from_logits=True)(y, z, w),
    ),
    "cce_probs": (
        losses.CategoricalCrossentropy(),
        ONE_HOT,
        PROBS,
        lambda y, z, w: keras.losses.CategoricalCrossentropy()(y, z, w),
    ),
    "cce_sqrt": (
        losses.CategoricalCrossentropy(from_logits=True, gauss_newton=False),
        ONE_HOT,
        LOGITS,
        lambda y, z, w: keras.losses.CategoricalCrossentropy(from_logits=True)(y, z, w),
    ),
    "sparse_logits": (
        losses.SparseCategoricalCrossentropy(from_logits=True),
        LABELS,
        LOGITS,
        lambda y, z, w: keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, z, w
        ),
    ),
    "sparse_sqrt_probs": (
        losses.SparseCategoricalCrossentropy(gauss_newton=False),
        LABELS,
        PROBS,
        lambda y, z, w: keras.losses.SparseCategoricalCrossentropy()(y, z, w),
    ),
    "bce_logits": (
        losses.BinaryCrossentropy(from_logits=True),
        BINARY,
        LOGITS,
        lambda y, z, w: keras.losses.BinaryCrossentropy(from_logits=True)(y, z, w),
    ),
    "bce_probs_sqrt": (
        losses.BinaryCrossentropy(gauss_newton=False),
        BINARY,
        SIGMOID,
        lambda y, z, w: keras.losses.BinaryCrossentropy()(y, z, w),
    ),
    "squared_cce": (
        losses.SquaredCategoricalCrossentropy(from_logits=True),
        ONE_HOT,
        LOGITS,
        lambda y, z, w: np.mean(
            w
            * keras.losses.categorical_crossentropy(y, z, from_logits=True).numpy() ** 2
        ),
    ),
    "categorical_mse": (
        losses.CategoricalMeanSquaredError(from_logits=True),
        ONE_HOT,
        LOGITS,
        lambda y, z, w: keras.losses.MeanSquaredError()(y, tf.nn.softmax(z), w),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("weighted", [False, True])
def test_value_matches_keras(name, weighted):
    loss, y, z, reference = CASES[name]
    w = WEIGHTS if weighted else np.ones(N)
    ours = float(loss(y, tf.constant(z), w if weighted else None))
    theirs = float(reference(y, tf.constant(z, tf.float32), w))
    np.testing.assert_allclose(ours, theirs, rtol=2e-6)


RESIDUAL_CASES = sorted(n for n, c in CASES.items() if c[0].curvature_scale == 2.0)


@pytest.mark.parametrize("name", RESIDUAL_CASES)
def test_residual_losses_value_is_sum_of_squares(name):
    loss, y, z, _ = CASES[name]
    yt = loss.prepare_targets(y)
    e, _ = loss.linearize(yt, tf.constant(z))
    k = z.shape[-1]
    expected = np.sum(WEIGHTS[:, None] * e.numpy() ** 2) / (
        N * loss.output_normaliser(k)
    )
    np.testing.assert_allclose(
        float(loss(y, tf.constant(z), WEIGHTS)), expected, rtol=1e-12
    )
    assert e.shape == (N, loss.residuals_per_sample(k))


@pytest.mark.parametrize("name", sorted(CASES))
def test_linearisation_gives_the_gradient(name):
    """s / (N c) * F^T e equals the autodiff gradient of the loss value."""
    loss, y, z, _ = CASES[name]
    zt = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = loss(y, zt)
    grad = tape.gradient(value, zt).numpy()
    e, f = loss.linearize(loss.prepare_targets(y), zt)
    e = e.numpy()
    f = np.broadcast_to(np.eye(K), (N, K, K)) if f is None else f.numpy()
    ours = np.einsum("iqk,iq->ik", f, e) * loss.curvature_scale
    ours /= N * loss.output_normaliser(K)
    np.testing.assert_allclose(ours, grad, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(
    "name", ["cce_logits", "sparse_logits", "bce_logits", "cce_probs"]
)
def test_gauss_newton_curvature_is_the_hessian(name):
    """For cross-entropies on logits, F^T F is the exact Hessian (per sample)."""
    loss, y, z, _ = CASES[name]
    zt = tf.constant(z)
    yt = loss.prepare_targets(y)
    with tf.GradientTape() as outer:
        outer.watch(zt)
        with tf.GradientTape() as inner:
            inner.watch(zt)
            per_sample = tf.reduce_sum(loss.sample_losses(yt, zt))
        grad = inner.gradient(per_sample, zt)
    hessian = outer.batch_jacobian(grad, zt).numpy()
    _, f = loss.linearize(yt, zt)
    curvature = np.einsum("iqk,iql->ikl", f.numpy(), f.numpy())
    if name == "cce_probs":
        # On probability outputs the logits are log(p): compare the curvature
        # pulled back to the logits, diag(p) - p p^T.
        p = PROBS
        curvature = np.einsum("ik,ikl,il->ikl", p, curvature, p)
        expected = np.stack([np.diag(pi) - np.outer(pi, pi) for pi in p])
        np.testing.assert_allclose(curvature, expected, atol=1e-10)
    else:
        np.testing.assert_allclose(curvature, hessian, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "name",
    ["cce_logits", "cce_probs", "sparse_logits", "bce_logits", "bce_probs_gn"],
)
def test_closed_form_curvature_times_matches_the_factor(name):
    """``curvature_times(u)`` equals ``F^T F u`` with ``F`` from ``linearize``
    (which the test above checks against the exact Hessian)."""
    if name == "bce_probs_gn":
        loss, y, z = losses.BinaryCrossentropy(), BINARY, SIGMOID
    else:
        loss, y, z, _ = CASES[name]
    zt = tf.constant(z)
    yt = loss.prepare_targets(y)
    u = RNG.standard_normal((N, K))
    _, f = loss.linearize(yt, zt)
    expected = np.einsum("iqk,iql,il->ik", f.numpy(), f.numpy(), u)
    times = loss.curvature_times(yt, zt)
    np.testing.assert_allclose(times(tf.constant(u)).numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("name", ["mse", "cce_sqrt", "categorical_mse"])
def test_losses_without_closed_form_curvature(name):
    loss, y, z, _ = CASES[name]
    assert loss.curvature_times(loss.prepare_targets(y), tf.constant(z)) is None


def test_get_by_name_and_errors():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    loss = losses.get("sparse_categorical_crossentropy", from_logits=True)
    assert loss.from_logits and loss.sparse_targets
    with pytest.raises(ValueError, match="Unknown loss.*Received: loss='msee'"):
        losses.get("msee")
    with pytest.raises(ValueError, match="only be given with a loss name"):
        losses.get(losses.MeanSquaredError(), from_logits=True)


def test_custom_residual_loss():
    class Huberish(losses.ResidualLoss):
        def residuals(self, y_true, y_pred):
            d = y_pred - y_true
            return tf.sqrt(1.0 + d**2) - 1.0

    loss = Huberish()
    y, z = TARGETS[:, :1], LOGITS[:, :1]
    e, f = loss.linearize(tf.constant(y), tf.constant(z))
    d = z - y
    np.testing.assert_allclose(e.numpy(), np.sqrt(1 + d**2) - 1)
    np.testing.assert_allclose(f.numpy()[:, :, 0], d / np.sqrt(1 + d**2))
