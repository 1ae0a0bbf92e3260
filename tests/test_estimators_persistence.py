"""Pickling, copying and cloning of the estimators."""

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_lm.engine import damping as damping_module
from sklearn_lm.estimators import LMClassifier, LMRegressor


def _data(kind, n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 3))
    if kind == "regression":
        return X, np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])
    return X, np.array(["low", "mid", "high"])[np.digitize(X[:, 0], [-0.3, 0.3])]


def _fitted(kind, **params):
    params = {"hidden": (4,), "max_iter": 8, "random_state": 0, **params}
    Estimator = LMRegressor if kind == "regression" else LMClassifier
    X, y = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Estimator(**params).fit(X, y), X, y


def _outputs(est, X):
    if isinstance(est, LMClassifier):
        return est.predict_proba(X)
    return est.predict(X)


@pytest.mark.parametrize("kind", ["regression", "classification"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pickle_round_trip(kind, dtype):
    est, X, y = _fitted(kind, dtype=dtype)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_outputs(restored, X), _outputs(est, X))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    assert restored.model_ is not est.model_
    assert restored.model_.get_config() == est.model_.get_config()
    for new, old in zip(
        restored.model_.get_weights(), est.model_.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(new, old)
        assert new.dtype == np.dtype(dtype)
    assert restored.loss_curve_ == est.loss_curve_
    assert restored.get_params() == est.get_params()
    if kind == "classification":
        np.testing.assert_array_equal(restored.classes_, est.classes_)


def test_pickled_state_holds_no_keras_objects():
    est, _, _ = _fitted("regression")
    state = est.__getstate__()
    assert "model_" not in state
    assert "_trainer" not in state
    assert isinstance(state["_model_state"]["weights"][0], np.ndarray)
    # The live estimator is untouched by pickling.
    assert hasattr(est, "model_")


def test_unfitted_estimator_pickles():
    est = LMClassifier(hidden=(3, 2), damping_mode="fletcher", class_weight="balanced")
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()
    assert not hasattr(restored, "model_")


def test_damping_instance_parameter_pickles():
    strategy = damping_module.Fletcher(initial=1e-2)
    est, X, _ = _fitted("regression", damping_mode=strategy)
    restored = pickle.loads(pickle.dumps(est))
    assert isinstance(restored.damping_mode, damping_module.Fletcher)
    assert restored.damping_mode.get_config() == strategy.get_config()
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_joblib_round_trip_in_a_fresh_process(kind, tmp_path):
    est, X, _ = _fitted(kind)
    model_path = tmp_path / "model.joblib"
    x_path = tmp_path / "X.npy"
    out_path = tmp_path / "predictions.npy"
    joblib.dump(est, model_path)
    np.save(x_path, X)
    method = "predict_proba" if kind == "classification" else "predict"
    script = textwrap.dedent(
        f"""
        import joblib
        import numpy as np

        est = joblib.load({str(model_path)!r})
        X = np.load({str(x_path)!r})
        np.save({str(out_path)!r}, est.{method}(X))
        print(type(est).__name__, type(est.model_).__name__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [type(est).__name__, "Sequential"]
    np.testing.assert_array_equal(np.load(out_path), getattr(est, method)(X))


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_deepcopy_is_independent(kind):
    est, X, y = _fitted(kind)
    before = _outputs(est, X)
    twin = copy.deepcopy(est)
    np.testing.assert_array_equal(_outputs(twin, X), before)
    assert twin.model_ is not est.model_
    twin.partial_fit(X, y)
    assert not np.array_equal(_outputs(twin, X), before)
    np.testing.assert_array_equal(_outputs(est, X), before)


@pytest.mark.parametrize(
    "kind, bayesian",
    [
        ("regression", False),
        ("regression", True),
        ("classification", False),
        ("classification", True),
    ],
)
def test_training_continues_identically_after_unpickling(kind, bayesian):
    # The damping factor and the hyperparameters of Bayesian regularization
    # are part of the state: partial_fit after a round trip takes the same
    # step as partial_fit on the original.
    est, X, y = _fitted(kind, dtype="float64", bayesian=bayesian)
    assert est.bayesian_ is bayesian
    restored = pickle.loads(pickle.dumps(est))
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_allclose(_outputs(restored, X), _outputs(est, X), rtol=1e-10)
    assert restored.damping_curve_ == est.damping_curve_
    assert restored.n_iter_ == est.n_iter_


def test_warm_start_after_unpickling():
    est, X, y = _fitted("regression", warm_start=True)
    restored = pickle.loads(pickle.dumps(est))
    last = restored.loss_curve_[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        restored.fit(X, y)
    assert restored.loss_curve_[0] <= last


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_clone_of_fitted_has_same_params_and_no_state(kind):
    est, X, y = _fitted(kind, alpha=0.01, batch_size=16)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not any(k.endswith("_") for k in vars(fresh))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fresh.fit(X, y)
    # Same parameters and random_state: the clone refits to the same model.
    np.testing.assert_array_equal(_outputs(fresh, X), _outputs(est, X))
