"""Target encoders: the regressor's standardisation."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_lm.estimators._targets import TargetStandardizer

RNG = np.random.default_rng(0)


def test_weighted_mean_and_standard_deviation():
    y = RNG.normal([3.0, -2.0], [0.5, 4.0], size=(50, 2))
    w = RNG.uniform(0.0, 3.0, 50)
    scaler = TargetStandardizer().fit(y, sample_weight=w)
    # Reference: the weighted moments written out.
    mean = (w[:, None] * y).sum(0) / w.sum()
    std = np.sqrt((w[:, None] * (y - mean) ** 2).sum(0) / w.sum())
    np.testing.assert_allclose(scaler.mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, std, rtol=1e-12)
    z = scaler.transform(y)
    np.testing.assert_allclose(np.average(z, axis=0, weights=w), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        np.sqrt(np.average(z**2, axis=0, weights=w)), 1.0, rtol=1e-12
    )
    np.testing.assert_allclose(scaler.inverse_transform(z), y, rtol=1e-12)


def test_unweighted_one_dimensional_targets():
    y = RNG.normal(size=30)
    scaler = TargetStandardizer().fit(y)
    np.testing.assert_allclose(scaler.mean_, [np.mean(y)], rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, [np.std(y)], rtol=1e-12)
    assert scaler.transform(y).shape == (30, 1)
    # Integer weights equal repeated samples.
    counts = RNG.integers(1, 4, 30)
    weighted = TargetStandardizer().fit(y, sample_weight=counts)
    repeated = TargetStandardizer().fit(np.repeat(y, counts))
    np.testing.assert_allclose(weighted.mean_, repeated.mean_, rtol=1e-12)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_, rtol=1e-12)


def test_a_column_without_spread_is_only_centred():
    big = 1e8
    steps = np.arange(6.0)
    y = np.column_stack(
        [
            np.full(6, 5.0),  # constant
            big + steps * np.spacing(big),  # spread 2.5e-8: round-off of 1e8
            big + steps * 1e-6,  # spread 1.7e-6: real
        ]
    )
    scaler = TargetStandardizer().fit(y)
    threshold = 10 * np.finfo(np.float64).eps * big  # 2.2e-7
    assert np.std(y[:, 1]) < threshold < np.std(y[:, 2])
    np.testing.assert_array_equal(scaler.scale_[:2], [1.0, 1.0])
    assert scaler.scale_[2] == pytest.approx(np.std(y[:, 2]), rel=1e-6)
    np.testing.assert_allclose(scaler.transform(y)[:, 0], 0.0)


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        TargetStandardizer().transform(np.zeros(3))
