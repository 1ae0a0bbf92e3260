"""NIST StRD nonlinear regression: the shipped files, the models, certified fits.

The 27 problems (``tests/data/nist/*.dat``, NIST's public-domain files) are
parsed by :mod:`benchmarks.nist`. Fits start from both NIST starting points
and must match the certified parameters to 6 significant digits within 1000
LM steps, with MINPACK (``scipy.optimize.least_squares(method="lm")``) run in
the same test as a second reference.
"""

import numpy as np
import pytest
from scipy.optimize import least_squares

from benchmarks import nist
from sklearn_lm.engine import Trainer

DIGITS = 6.0
MAX_STEPS = 1000


@pytest.fixture(scope="module")
def problems():
    return {p.name: p for p in nist.load_all()}


def test_all_27_files_parse_with_their_certified_values(problems):
    assert list(problems) == list(nist.NAMES) and len(problems) == 27
    levels = [p.difficulty for p in problems.values()]
    assert [levels.count(v) for v in ("lower", "average", "higher")] == [8, 11, 8]
    for p in problems.values():
        n = p.n_params
        assert p.certified.shape == p.certified_sd.shape == (n,)
        assert all(s.shape == (n,) for s in p.starts)
        assert np.all(np.isfinite(p.certified)) and np.all(p.certified_sd > 0)
        assert p.certified_rss > 0 and p.y.shape == (p.x.shape[0],)
        assert p.x.shape[1] == (2 if p.name == "Nelson" else 1)
    misra = problems["Misra1a"]
    np.testing.assert_array_equal(misra.starts[0], [500.0, 0.0001])
    np.testing.assert_array_equal(misra.certified, [2.3894212918e02, 5.5015643181e-04])
    assert misra.certified_rss == 1.2455138894e-01 and misra.x.shape == (14, 1)
    assert misra.model == "y = b1*(1-exp[-b2*x]) + e"


def test_formulas_reproduce_the_certified_residual_sums(problems):
    for p in problems.values():
        if p.name == "Lanczos1":  # certified RSS 1.4e-25: below the rounding
            assert p.rss(p.certified) < 1e-19  # of 11-digit parameters
            continue
        assert p.rss(p.certified) == pytest.approx(p.certified_rss, rel=1e-7), p.name


def test_keras_models_compute_the_formulas_in_float64(problems):
    for p in problems.values():
        model = nist.keras_model(p, p.certified)
        np.testing.assert_array_equal(model.get_weights()[0], p.certified)
        out = np.asarray(model(p.x))[:, 0]
        np.testing.assert_allclose(out, p.predict(p.certified), rtol=1e-13, atol=0)


def _fit(problem, start, **trainer_options):
    model = nist.keras_model(problem, problem.starts[start])
    trainer = Trainer(model, loss="mse", **trainer_options)
    history = trainer.fit(problem.x, problem.y[:, None], epochs=MAX_STEPS)
    return trainer.fn.get_weights().numpy(), history


def _minpack(problem, start):
    res = least_squares(
        problem.residuals, problem.starts[start], jac=problem.jacobian,
        method="lm", ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=10_000,
    )  # fmt: skip
    return res.x


_MGH10 = pytest.mark.xfail(
    strict=True,
    reason="from MGH10's start 1 the fit follows a far valley (b1 -> 0) that "
    "MINPACK's trust region avoids (a bound on the step size, not the damping "
    "floor: no damping variant measured leaves it)",
)
CASES = [
    # lower, average and higher difficulty
    ("Misra1a", 0),
    ("Misra1a", 1),
    ("Thurber", 0),
    ("Thurber", 1),
    ("MGH09", 0),
    ("MGH09", 1),
    pytest.param("Lanczos3", 0, marks=pytest.mark.slow),
    pytest.param("Lanczos3", 1, marks=pytest.mark.slow),
    pytest.param("Hahn1", 0, marks=pytest.mark.slow),
    pytest.param("Hahn1", 1, marks=pytest.mark.slow),
    pytest.param("Rat43", 0, marks=pytest.mark.slow),
    pytest.param("Rat43", 1, marks=pytest.mark.slow),
    pytest.param("Eckerle4", 0, marks=pytest.mark.slow),
    pytest.param("Eckerle4", 1, marks=pytest.mark.slow),
    pytest.param("MGH10", 1, marks=pytest.mark.slow),
    pytest.param("MGH10", 0, marks=[pytest.mark.slow, _MGH10]),
    # Needs the damping floor (1e-16) below its curvature (~2.5e-13): about
    # 50 and 100 steps, a few seconds.
    ("Bennett5", 0),
    ("Bennett5", 1),
]


@pytest.mark.parametrize("name, start", CASES)
def test_certified_parameters_from_both_starts(problems, name, start):
    problem = problems[name]
    reference = nist.log_relative_error(_minpack(problem, start), problem.certified)
    assert reference >= DIGITS, f"MINPACK: {reference:.1f} digits"
    weights, history = _fit(problem, start)
    digits = nist.log_relative_error(weights, problem.certified)
    assert digits >= DIGITS, f"{digits:.1f} digits after {history.n_steps} steps"


@pytest.mark.parametrize("name, start", [("Misra1a", 0), ("Thurber", 1)])
def test_certified_standard_deviations_from_the_trainer(problems, name, start):
    problem = problems[name]
    model = nist.keras_model(problem, problem.starts[start])
    trainer = Trainer(model, loss="mse")
    trainer.fit(problem.x, problem.y[:, None], epochs=MAX_STEPS)
    cov = trainer.parameter_covariance(problem.x, problem.y)
    assert cov.dof == problem.y.shape[0] - problem.n_params
    digits = nist.log_relative_error(cov.standard_errors, problem.certified_sd)
    assert digits >= 4.0, f"{digits:.1f} digits of the standard deviations"
