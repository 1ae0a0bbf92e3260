"""Data-based initialisation of the hidden layers (init_from_data) and the
estimators' weight_init parameter."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_lm.estimators import LMClassifier, LMRegressor, _base
from sklearn_lm.network import build_network, forward, init_from_data

_INT32_MAX = np.iinfo(np.int32).max


def _gain(n_units, n_inputs):
    """Largest gain: Nguyen and Widrow's 0.7 * H**(1/d), at least sqrt(3)."""
    return max(0.7 * n_units ** (1.0 / n_inputs), np.sqrt(3.0))


def _centres_1d(model):
    """Input value where each first-layer unit's pre-activation is zero."""
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in model.get_weights()[:2])
    return -bias / kernel[0]


def _init(X, hidden=(20,), seed=0, dtype="float64", n_outputs=1, **kwargs):
    model = build_network(X.shape[1], n_outputs, hidden=hidden, dtype=dtype, seed=1)
    return init_from_data(model, X, seed=seed, **kwargs)


def _assert_one_per_slice(centres, lo, hi, tol):
    """The sorted centres fall one in each equal slice of [lo, hi] (+- tol)."""
    centres = np.sort(centres)
    edges = np.linspace(lo, hi, len(centres) + 1)
    assert np.all(centres >= edges[:-1] - tol), (centres, edges)
    assert np.all(centres <= edges[1:] + tol), (centres, edges)


# ---------------------------------------------------------------------------
# Geometry of the first layer
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [(-1.0, 1.0), (3.0, 4.0), (-250.0, 1000.0)])
def test_unit_transitions_are_spread_over_a_1d_input(a, b):
    n_samples, n_units = 1001, 20
    X = np.linspace(a, b, n_samples).reshape(-1, 1)
    model = _init(X, hidden=(n_units,))
    centres = _centres_1d(model)
    # Evenly spread inputs: one transition in the middle of each of the
    # n_units equal slices of [a, b], whatever the sign of each unit's slope
    # (up to one step of the grid, as the centres are data points).
    step = (b - a) / (n_samples - 1)
    assert np.all((centres >= a) & (centres <= b))
    _assert_one_per_slice(centres, a, b, tol=step)
    middles = a + (b - a) * (np.arange(n_units) + 0.5) / n_units
    np.testing.assert_allclose(np.sort(centres), middles, rtol=0, atol=step)
    # Random slope signs.
    kernel = model.get_weights()[0]
    assert 0 < np.sum(kernel > 0) < n_units


@pytest.mark.parametrize("seed", [0, 1])
def test_unit_transitions_follow_the_data_distribution(seed):
    # Skewed inputs: each unit's transition is at a quantile of the data, one
    # in each of the n_units slices that hold 1 / n_units of the samples.
    n_samples, n_units = 2000, 10
    X = np.random.default_rng(seed).exponential(size=(n_samples, 1))
    centres = _centres_1d(_init(X, hidden=(n_units,), seed=seed))
    below = np.sort(np.mean(X[:, 0] <= centres[:, None], axis=1))
    edges = np.arange(n_units + 1) / n_units
    assert np.all(below >= edges[:-1] - 1e-12)
    assert np.all(below <= edges[1:] + 1.0 / n_samples)


def test_slopes_scale_inversely_with_the_input_range():
    X = np.random.default_rng(1).normal(size=(300, 3)) * [1.0, 5.0, 0.1]
    small = _init(X, hidden=(7,), seed=4)
    large = _init(10 * X, hidden=(7,), seed=4)
    k_small, b_small = small.get_weights()[:2]
    k_large, b_large = large.get_weights()[:2]
    np.testing.assert_allclose(k_large, k_small / 10, rtol=1e-12)
    # The same biases, so the transitions sit 10 times further out, and the
    # initial network is the same function of the scaled data.
    np.testing.assert_allclose(b_large, b_small, rtol=1e-12)
    np.testing.assert_allclose(forward(large, 10 * X), forward(small, X), rtol=1e-12)


def test_centres_scale_and_shift_with_a_1d_input():
    X = np.linspace(-1.0, 1.0, 201).reshape(-1, 1)
    base = _centres_1d(_init(X, seed=2))
    np.testing.assert_allclose(_centres_1d(_init(10 * X, seed=2)), 10 * base)
    np.testing.assert_allclose(_centres_1d(_init(X + 50.0, seed=2)), base + 50.0)


@pytest.mark.parametrize("n_features", [1, 2, 8])
def test_pre_activations_have_a_fixed_spread(n_features):
    # Features of very different scales and offsets: each unit's
    # pre-activation z_j = w_j . x + b_j has standard deviation g / sqrt(3)
    # over the data, the same gain g for every unit, and changes sign inside
    # the data (the unit's transition lies there).
    rng = np.random.default_rng(n_features)
    scales = 10.0 ** rng.uniform(-3, 3, n_features)
    X = rng.standard_t(3, size=(400, n_features)) * scales + 1e3 * scales
    n_units = 12
    kernel, bias = _init(X, hidden=(n_units,)).get_weights()[:2]
    z = X @ kernel + bias
    g = _gain(n_units, n_features)
    spread = z.std(axis=0) * np.sqrt(3)
    np.testing.assert_allclose(spread, g, rtol=1e-9)
    assert np.all(z.min(axis=0) < 0) and np.all(z.max(axis=0) > 0)


@pytest.mark.parametrize("n_features", [1, 3])
def test_pre_activations_are_bounded_on_evenly_spread_inputs(n_features):
    X = np.random.default_rng(5).uniform(-3, 7, size=(2000, n_features))
    n_units = 10
    kernel, bias = _init(X, hidden=(n_units,)).get_weights()[:2]
    z = np.abs(X @ kernel + bias)
    g = _gain(n_units, n_features)
    # Within 2 g for a uniform input (half-width sqrt(3) std), and no unit
    # starts saturated on more than a few percent of the data otherwise.
    if n_features == 1:
        assert z.max() <= 2 * g * 1.05
    assert np.all(np.mean(z > 2 * g, axis=0) < 0.05)


def test_later_hidden_layers_are_fitted_to_the_previous_activations():
    X = np.random.default_rng(4).normal(size=(500, 3))
    model = _init(X, hidden=(8, 6))
    k0, b0, k1, b1, k_out, b_out = model.get_weights()
    a1 = np.tanh(X @ k0 + b0)
    z2 = a1 @ k1 + b1
    g = _gain(6, 8)
    spread = z2.std(axis=0) * np.sqrt(3)
    np.testing.assert_allclose(spread, g, rtol=1e-9)
    assert np.all(z2.min(axis=0) < 0) and np.all(z2.max(axis=0) > 0)
    # The output layer is build_network's: Glorot uniform, zero bias.
    built = build_network(3, 1, hidden=(8, 6), dtype="float64", seed=1)
    np.testing.assert_array_equal(k_out, built.get_weights()[4])
    np.testing.assert_array_equal(b_out, 0.0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_other_activations_get_the_same_geometry(activation):
    X = np.linspace(0.0, 5.0, 101).reshape(-1, 1)
    model = build_network(1, 1, hidden=(10,), activation=activation, seed=0)
    centres = _centres_1d(init_from_data(model, X, seed=0))
    _assert_one_per_slice(centres, 0.0, 5.0, tol=0.05)


# ---------------------------------------------------------------------------
# Seeds, dtypes, inputs
# ---------------------------------------------------------------------------
def test_same_seed_same_weights_other_seed_other_weights():
    X = np.random.default_rng(5).normal(size=(100, 2))
    first = _init(X, hidden=(5, 4), seed=7).get_weights()
    second = _init(X, hidden=(5, 4), seed=7).get_weights()
    other = _init(X, hidden=(5, 4), seed=8).get_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])
    assert not np.allclose(first[2], other[2])
    generator = _init(X, hidden=(5, 4), seed=np.random.default_rng(7)).get_weights()
    for a, b in zip(first, generator, strict=True):
        np.testing.assert_array_equal(a, b)


def test_global_random_state_is_untouched():
    X = np.random.default_rng(6).normal(size=(50, 2))
    np.random.seed(0)
    expected = np.random.random_sample(3)
    np.random.seed(0)
    _init(X, seed=None)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_weights_keep_the_model_dtype(dtype, x_dtype):
    X = np.random.default_rng(7).normal(size=(60, 3)).astype(x_dtype)
    model = _init(X, hidden=(5, 3), dtype=dtype)
    assert all(w.dtype == np.dtype(dtype) for w in model.get_weights())
    assert all(v.dtype == dtype for v in model.weights)


def test_x_is_not_modified():
    X = np.asfortranarray(np.random.default_rng(8).normal(size=(80, 3)))
    X32 = X.astype(np.float32)
    originals = [X.copy(), X32.copy()]
    _init(X)
    _init(X32, dtype="float32")
    init_from_data(build_network(3, 1, seed=0), X.tolist(), seed=0)
    for now, before in zip([X, X32], originals, strict=True):
        np.testing.assert_array_equal(now, before)
        assert now.dtype == before.dtype


def test_subsample_of_large_inputs():
    X = np.random.default_rng(9).uniform(-1, 1, size=(2000, 1))
    small = _centres_1d(_init(X, seed=0, max_samples=50))
    assert np.all(np.abs(small) < 1)
    np.testing.assert_array_equal(small, _centres_1d(_init(X, seed=0, max_samples=50)))
    # With all rows used the range is (nearly) the full [-1, 1].
    full = _centres_1d(_init(X, seed=0))
    assert not np.allclose(small, full)


def test_constant_inputs_give_finite_spread_weights():
    X = np.full((10, 2), 3.0)
    kernel, bias = _init(X, hidden=(6,)).get_weights()[:2]
    assert np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))
    # A zero range counts as a half-width of 1 around the constant value.
    z = X[:1] @ kernel + bias
    assert np.all(np.abs(z) <= 2 * _gain(6, 2))
    assert np.any(z != 0)
    # A single sample is constant too: slopes of the gain's size.
    kernel = _init(X[:1, :1], hidden=(4,)).get_weights()[0]
    assert np.all(np.abs(kernel) >= _gain(4, 1) / 2)
    assert np.all(np.abs(kernel) <= _gain(4, 1))


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(50, 2)) ** 3
    weights = rng.integers(0, 4, size=50)
    weighted = _init(X, hidden=(6, 4), sample_weight=weights).get_weights()
    repeated = _init(np.repeat(X, weights, axis=0), hidden=(6, 4)).get_weights()
    for a, b in zip(weighted, repeated, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # Rows of weight zero do not count: a far outlier changes nothing.
    X_out = np.vstack([X, [[1e6, -1e6]]])
    w_out = np.r_[weights, 0]
    with_outlier = _init(X_out, hidden=(6, 4), sample_weight=w_out).get_weights()
    for a, b in zip(weighted, with_outlier, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_sample_weights_are_rejected():
    model = build_network(1, 1, hidden=(3,), seed=0)
    X = np.ones((4, 1))
    for weights, match in [
        (np.ones(3), "shape"),
        (np.array([1.0, -1.0, 1.0, 1.0]), "non-negative"),
        (np.array([1.0, np.nan, 1.0, 1.0]), "finite"),
        (np.zeros(4), "positive"),
    ]:
        with pytest.raises(ValueError, match=match):
            init_from_data(model, X, sample_weight=weights)


def test_linear_model_is_left_alone():
    X = np.random.default_rng(10).normal(size=(20, 2))
    model = build_network(2, 1, hidden=(), seed=3)
    before = model.get_weights()
    init_from_data(model, X, seed=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_rejected():
    model = build_network(2, 1, hidden=(3,), seed=0)
    with pytest.raises(ValueError, match="2 columns"):
        init_from_data(model, np.ones((5, 3)))
    with pytest.raises(ValueError, match="2 columns"):
        init_from_data(model, np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        init_from_data(model, np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="max_samples"):
        init_from_data(model, np.ones((5, 2)), max_samples=0)
    inputs = keras.Input(shape=(2,))
    other = keras.Model(inputs, keras.layers.Dropout(0.1)(inputs))
    with pytest.raises(ValueError, match="chain of Dense"):
        init_from_data(other, np.ones((5, 2)))
    # Data so tiny that the slopes overflow float32.
    tiny = np.array([[0.0, 0.0], [1e-40, 1e-40]])
    with pytest.raises(ValueError, match="overflow float32"):
        init_from_data(model, tiny)


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------
@pytest.fixture
def initial_weights(monkeypatch):
    """Record the network weights each training run starts from."""
    recorded = []
    original = _base.Trainer.fit

    def fit(self, *args, **kwargs):
        recorded.append([w.copy() for w in self.model.get_weights()])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_base.Trainer, "fit", fit)
    return recorded


def _fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


@pytest.mark.parametrize("Estimator", [LMRegressor, LMClassifier])
def test_glorot_keeps_build_networks_weights(Estimator, initial_weights):
    X = np.random.default_rng(11).uniform(5, 9, size=(40, 2))
    y = X[:, 0] > 7 if Estimator is LMClassifier else X[:, 0] ** 2
    _fit(
        Estimator(hidden=(6, 3), max_iter=2, weight_init="glorot", random_state=5), X, y
    )
    seed = np.random.RandomState(5).randint(_INT32_MAX)
    expected = build_network(2, 1, hidden=(6, 3), seed=seed).get_weights()
    for a, b in zip(initial_weights[0], expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_data_init_is_the_default_and_uses_the_weighted_training_rows(
    initial_weights,
):
    assert LMRegressor().weight_init == "data"
    assert LMClassifier().weight_init == "data"
    # Inputs evenly spread over [2, 3] plus a far outlier of weight zero:
    # the transitions spread over [2, 3] only.
    X = np.r_[np.linspace(2, 3, 61), 100.0].reshape(-1, 1)
    y = np.sin(6 * X[:, 0])
    weights = np.r_[np.ones(61), 0.0]
    est = LMRegressor(hidden=(8,), max_iter=2, random_state=0)
    _fit(est, X, y, sample_weight=weights)
    kernel, bias = initial_weights[0][:2]
    _assert_one_per_slice(-bias / kernel[0], 2.0, 3.0, tol=1 / 60 + 1e-6)
    # The output layer is build_network's (the same seed as with "glorot").
    seed = np.random.RandomState(0).randint(_INT32_MAX)
    built = build_network(1, 1, hidden=(8,), seed=seed).get_weights()
    np.testing.assert_array_equal(initial_weights[0][2], built[2])
    np.testing.assert_array_equal(initial_weights[0][3], 0.0)


def test_data_init_uses_the_training_part_with_early_stopping(initial_weights):
    # Inputs in [0, 1] plus two far points; with this seed both fall in the
    # validation set, so the slopes are those of the spread of [0, 1]
    # (they would be about 3 times smaller with the far points).
    X = np.r_[np.linspace(0, 1, 98), -5.0, 5.0].reshape(-1, 1)
    y = X[:, 0] ** 2
    est = LMRegressor(
        hidden=(5,),
        max_iter=2,
        early_stopping=True,
        validation_fraction=0.3,
        random_state=58,
    )
    _fit(est, X, y)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in initial_weights[0][:2])
    centres = -bias / kernel[0]
    assert np.all((centres >= 0) & (centres <= 1))
    g = _gain(5, 1)
    half_width = np.sqrt(3) * np.std(X[:98, 0])  # about 0.5, vs 1.5 with -5, 5
    slopes = np.abs(kernel[0]) * half_width
    assert np.all((slopes >= 0.9 * g / 2) & (slopes <= 1.1 * g))


def test_warm_start_and_partial_fit_do_not_reinitialise(initial_weights):
    X = np.linspace(-1, 1, 50).reshape(-1, 1)
    y = np.sin(3 * X[:, 0])
    est = _fit(LMRegressor(hidden=(4,), max_iter=3, warm_start=True), X, y)
    end_of_first = [w.copy() for w in est.model_.get_weights()]
    _fit(est, X, y)
    est.partial_fit(X, y)
    assert len(initial_weights) == 3
    for a, b in zip(initial_weights[1], end_of_first, strict=True):
        np.testing.assert_array_equal(a, b)


def test_data_init_converges_faster_than_glorot():
    # A 1-10-1 tanh network fitted to sin(8 x), 200 points: measured training
    # loss (standardised units) after 15 epochs, seeds 0-2: data init 5e-7
    # to 7e-5, Glorot 0.17 to 0.9 (two seeds stuck near the mean).
    X = np.linspace(-1, 1, 200).reshape(-1, 1)
    y = np.sin(8 * X[:, 0])
    losses = {}
    for init in ["data", "glorot"]:
        losses[init] = [
            _fit(
                LMRegressor(
                    hidden=(10,),
                    weight_init=init,
                    max_iter=15,
                    tol=0.0,
                    n_iter_no_change=np.inf,
                    dtype="float64",
                    random_state=seed,
                ),
                X,
                y,
            ).loss_curve_[-1]
            for seed in range(3)
        ]
    assert max(losses["data"]) < 0.01 * min(losses["glorot"])


@pytest.mark.slow
def test_data_init_reaches_low_mse_on_sinc():
    # The sinc fit of the benchmarks (sinc(10 x), 20 000 points, 1-20-1
    # tanh, float32). Measured epochs to a training MSE of 1e-7 over seeds
    # 0-15: 19 to 60 (Glorot weights: 139 to over 300); 1e-8 within 300
    # epochs on 11 of them, seed 1 after 51.
    X = np.linspace(-1.0, 1.0, 20_000).reshape(-1, 1)
    y = np.sinc(10.0 * X[:, 0])
    curves = []
    for seed in range(3):
        est = LMRegressor(
            tol=0.0, n_iter_no_change=np.inf, max_iter=120, random_state=seed
        )
        mse = np.mean((_fit(est, X, y).predict(X) - y) ** 2)
        # loss_curve_ is on standardised targets: back to the data's MSE.
        curve = np.asarray(est.loss_curve_) * np.var(y)
        np.testing.assert_allclose(curve[-1], mse, rtol=1e-3)
        curves.append(curve)
    assert all(np.any(c[:80] <= 1e-7) for c in curves)
    assert min(c.min() for c in curves) <= 1e-8
