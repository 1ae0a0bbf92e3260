"""The convergence tests of Trainer.fit (ftol, xtol, gtol), against NumPy.

The first LM step from a NIST start is computed in NumPy (Levenberg damping,
no geodesic acceleration): its relative reductions, its move and the largest
cosine between a Jacobian column and the residuals. Each test fires exactly
when its tolerance is just above the NumPy value, and not just below it.
"""

import keras
import numpy as np
import pytest

from benchmarks import nist
from sklearn_lm.engine import Status, Trainer
from sklearn_lm.engine.stopping import ConvergenceTests, StepMeasures

LAMBDA = 1e-3  # the standard damping's initial lambda
OFF = {"ftol": None, "xtol": None, "gtol": None}


@pytest.fixture(scope="module")
def problem():
    return nist.load("Misra1a")


def _numpy_first_step(problem, b):
    """The measures of the first attempt from ``b``, computed in NumPy."""
    n = problem.y.shape[0]
    e = problem.residuals(b)
    jac = problem.jacobian(b)
    h, g = jac.T @ jac / n, jac.T @ e / n
    loss0 = e @ e / n
    delta = np.linalg.solve(h + LAMBDA * np.eye(b.size), g)
    e1 = problem.residuals(b - delta)
    loss1 = e1 @ e1 / n
    predicted = 2.0 * (g @ delta - 0.5 * delta @ h @ delta)
    cosines = np.abs(jac.T @ e) / (np.linalg.norm(jac, axis=0) * np.linalg.norm(e))
    assert loss1 < loss0  # the first attempt is accepted
    return StepMeasures(
        actual_reduction=(loss0 - loss1) / loss0,
        predicted_reduction=predicted / loss0,
        step_norm=float(np.linalg.norm(delta)),
        weight_norm=float(np.linalg.norm(b)),
        gradient_cosine=float(cosines.max()),
    )


def _one_epoch(problem, b, **tolerances):
    model = nist.keras_model(problem, b)
    trainer = Trainer(model, loss="mse", geodesic=False)
    return trainer.fit(problem.x, problem.y[:, None], epochs=1, **tolerances)


def _xtol_for(measures, factor):
    # xtol (xtol + |w|) = factor * |dw|, solved for xtol.
    w, dw = measures.weight_norm, factor * measures.step_norm
    return (-w + np.sqrt(w * w + 4.0 * dw)) / 2.0


@pytest.mark.parametrize("start", [0, 1])
def test_each_test_fires_at_its_numpy_threshold(problem, start):
    b = np.asarray(problem.starts[start], dtype=np.float64)
    m = _numpy_first_step(problem, b)
    assert m.actual_reduction <= 2.0 * m.predicted_reduction
    ftol = max(abs(m.actual_reduction), m.predicted_reduction)
    cases = [
        ("ftol", ftol * 1.001, ftol * 0.999, Status.FTOL),
        ("xtol", _xtol_for(m, 1.001), _xtol_for(m, 0.999), Status.XTOL),
        ("gtol", m.gradient_cosine * 1.001, m.gradient_cosine * 0.999, Status.GTOL),
    ]
    for name, above, below, status in cases:
        fired = _one_epoch(problem, b, **{**OFF, name: above})
        assert fired.stop_reason is status and status.converged, name
        kept = _one_epoch(problem, b, **{**OFF, name: below})
        assert kept.stop_reason is Status.MAX_EPOCHS, name


def test_a_converged_fit_stops_by_a_test_with_its_digits(problem):
    model = nist.keras_model(problem, problem.starts[0])
    trainer = Trainer(model, loss="mse")
    history = trainer.fit(problem.x, problem.y[:, None], epochs=200)
    assert history.stop_reason in (Status.FTOL, Status.XTOL, Status.GTOL)
    digits = nist.log_relative_error(
        trainer.fn.get_weights().numpy(), problem.certified
    )
    assert digits >= 6.0
    off = Trainer(nist.keras_model(problem, problem.starts[0]), loss="mse")
    longer = off.fit(problem.x, problem.y[:, None], epochs=200, **OFF)
    assert longer.stop_reason is Status.DAMPING_MAX
    assert history.n_steps < longer.n_steps


def test_mini_batch_epochs_do_not_apply_them():
    x = np.linspace(-1, 1, 64)[:, None]
    y = 2 * x + np.random.default_rng(0).normal(0.0, 0.1, x.shape)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    full = Trainer(model).fit(x, y, epochs=3, gtol=1.0)  # any cosine is <= 1
    assert full.stop_reason is Status.GTOL and len(full.epoch) == 1
    mini = Trainer(model).fit(x, y, epochs=3, batch_size=16, gtol=1.0)
    assert mini.stop_reason not in (Status.FTOL, Status.XTOL, Status.GTOL)


def test_tolerances_are_checked():
    with pytest.raises(ValueError, match="ftol"):
        ConvergenceTests(ftol=-1.0)
    assert ConvergenceTests().check(StepMeasures(0.0, 0.0, 0.0, 1.0, 0.0)) is None
    measures = StepMeasures(1e-20, 1e-20, 0.0, 1.0, 0.0)
    assert ConvergenceTests(ftol=1e-10).check(measures) is Status.FTOL
    assert ConvergenceTests(xtol=1e-10).check(measures) is Status.XTOL
    assert ConvergenceTests(gtol=1e-10).check(measures) is Status.GTOL
