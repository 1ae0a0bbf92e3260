"""The parts of a step: the damped system of a batch, the search, the stop code."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from _reference import finite_difference_jacobian

from sklearn_lm.engine import damping, losses, model_function
from sklearn_lm.engine.cg_system import CGSystem
from sklearn_lm.engine.compile import batch_layout, compiled_step
from sklearn_lm.engine.config import StepConfig
from sklearn_lm.engine.memory import check_memory, default_chunk_size, layerwise_width
from sklearn_lm.engine.rows import Linearization
from sklearn_lm.engine.search import Search, stop_code
from sklearn_lm.engine.status import GRAPH_CODES, Status, from_graph_code
from sklearn_lm.engine.step import LMStep
from sklearn_lm.engine.system import GramSystem, NormalSystem, System, choose_form

MSE = losses.get("mse")


def _model(seed=0):
    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(
                4, "tanh", kernel_initializer=init(seed), dtype="float64"
            ),
            keras.layers.Dense(2, kernel_initializer=init(seed + 1), dtype="float64"),
        ]
    )


# -- the normal / Gram decision ----------------------------------------------------
@pytest.mark.parametrize(
    "n_rows, q, l2, form, expected",
    [
        (10, 1, 0.0, "auto", "gram"),  # 10 rows < 61 weights
        (61, 1, 0.0, "auto", "normal"),  # as many rows as weights
        (10, 10, 0.0, "auto", "normal"),  # 100 residual rows
        (10, 1, 1e-4, "auto", "normal"),  # the Gram form has no L2 term
        (10, 1, 0.0, "normal", "normal"),  # a fixed form is kept
        (1000, 1, 0.0, "gram", "gram"),
    ],
)
def test_choose_form(n_rows, q, l2, form, expected):
    assert choose_form(n_rows, q, 61, l2, form) == expected


def test_batch_layout_and_memory_check_follow_choose_form():
    fn = model_function(_model(), "dense")  # 22 weights, q = 2 for MSE
    config = StepConfig(chunk_size=100).for_model(fn)
    assert batch_layout(fn, config, [5]) == (False, "gram")
    assert batch_layout(fn, config, [50]) == (False, "normal")
    assert batch_layout(fn, config, [150, 5]) == (True, "auto")
    assert batch_layout(fn, config.replace(chunked=False), [150]) == (False, "normal")
    check_memory(fn, config, 5, memory_limit=0)  # Gram form: no n x n matrix
    check_memory(fn, config.replace(solver="cg"), 50, memory_limit=0)
    with pytest.raises(ValueError, match="memory_limit=0 bytes"):
        check_memory(fn, config, 50, memory_limit=0)


def test_for_model_fills_only_a_missing_chunk_size():
    fn = model_function(_model(), "dense")
    filled = StepConfig().for_model(fn)
    width = layerwise_width(fn, 2)  # MSE on two outputs: two rows per sample
    assert filled.chunk_size == default_chunk_size(fn.n_params, 2, 8, width)
    assert StepConfig(chunk_size=7).for_model(fn).chunk_size == 7


# -- systems against NumPy ---------------------------------------------------------
def _batch(n_samples, weighted, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 2))
    y = rng.standard_normal((n_samples, 2))
    sw = rng.uniform(0.5, 2.0, n_samples) if weighted else np.ones(n_samples)
    return x, y, sw


def _reference(fn, x, y, sw):
    """Weighted rows and residuals, ``(J (N q, n), e (N q,))``."""
    w = fn.get_weights()
    jac = finite_difference_jacobian(fn, w, tf.constant(x)).reshape(-1, fn.n_params)
    e = (fn.outputs(w, tf.constant(x)).numpy() - y).ravel()
    root = np.repeat(np.sqrt(sw), y.shape[1])
    return jac * root[:, None], e * root


def _systems(fn, x, y, sw, kind, chunk_size=100, structured=False):
    norm = tf.constant(float(x.shape[0] * MSE.output_normaliser(2)), tf.float64)
    strategy = damping.get(kind)
    args = (fn.get_weights(), tf.constant(x), tf.constant(y), tf.constant(sw))
    chunked = chunk_size < x.shape[0]
    rows = Linearization(
        fn, MSE, chunk_size=chunk_size, chunked=chunked, structured=structured
    )
    cg = dict(learning_rate=1.0, max_iter=200, rtol=1e-14)
    return {
        "normal": NormalSystem(rows, strategy, *args, norm=norm),
        "gram": GramSystem(rows, strategy, *args, norm=norm),
        "cg": CGSystem(rows, strategy, *args, norm=norm, **cg),
    }


@pytest.mark.parametrize("kind", ["standard", "fletcher"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk_size", [100, 2])  # one chunk, then a chunk loop
@pytest.mark.parametrize("structured", [False, True])  # rows, layer-wise products
def test_systems_solve_the_damped_normal_equations(
    kind, weighted, chunk_size, structured
):
    """``(J^T J / m + lam D) delta = J^T e / m`` with a finite-difference J."""
    fn = model_function(_model(), "dense")
    x, y, sw = _batch(5, weighted)  # 10 residual rows < 22 weights
    jac, e = _reference(fn, x, y, sw)
    m = e.size
    hess, g = jac.T @ jac / m, jac.T @ e / m
    d = np.ones(fn.n_params) if kind == "standard" else np.diag(hess)
    lam = 0.3
    expected = np.linalg.solve(hess + lam * np.diag(d), g)
    systems = _systems(fn, x, y, sw, kind, chunk_size, structured)
    for name, system in systems.items():
        delta, ok, _ = system.solve(tf.constant(lam, tf.float64))
        delta = delta.numpy()
        assert bool(ok), name
        np.testing.assert_allclose(delta, expected, rtol=1e-6, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(system.gradient, g, rtol=1e-6, atol=1e-12)
        assert float(system.data_loss) == pytest.approx(e @ e / m, rel=1e-12)
        curvature = system.curvature(delta, tf.constant(lam, tf.float64))
        assert float(curvature) == pytest.approx(delta @ hess @ delta, rel=1e-6)


def test_systems_give_the_geodesic_acceleration():
    """``a`` solves the damped system for ``J^T F z_vv / m`` along ``v``;
    ``z_vv`` by second differences of the outputs."""
    fn = model_function(_model(seed=2), "dense")
    x, y, sw = _batch(5, weighted=True, seed=1)
    jac, _ = _reference(fn, x, y, sw)
    m = jac.shape[0]
    hess = jac.T @ jac / m
    w = fn.get_weights().numpy()
    v = np.random.default_rng(3).standard_normal(w.size) * 0.1
    h = 1e-4
    out = lambda t: fn.outputs(tf.constant(w + t * v), tf.constant(x)).numpy()  # noqa: E731
    zvv = (out(h) - 2 * out(0) + out(-h)) / h**2
    rhs = jac.T @ (zvv.ravel() * np.repeat(np.sqrt(sw), 2)) / m
    lam = 0.5
    expected = np.linalg.solve(hess + lam * np.eye(w.size), rhs)
    for name, system in _systems(fn, x, y, sw, "standard").items():
        _, _, again = system.solve(tf.constant(lam, tf.float64))
        accel, ok = again(system.second_order(tf.constant(v)))
        assert bool(ok), name
        np.testing.assert_allclose(accel, expected, rtol=1e-5, atol=1e-8, err_msg=name)


# -- the search on a toy system -----------------------------------------------------
class _Line(System):
    """The residual ``r(w) = w - 3`` in one weight: ``H = 1``, ``g = w - 3``.

    ``sign=-1`` solves for the wrong direction (every attempt goes uphill).
    """

    def __init__(self, w, sign=1.0, second=0.0):
        self.gradient = tf.cast(w, tf.float64) - 3.0
        self.data_loss = tf.reduce_sum(tf.square(self.gradient))
        self.sign = sign
        self.second = second

    def solve(self, lam):
        def again(rhs):
            return self.sign * rhs / (1.0 + lam), tf.constant(True)

        return (*again(self.gradient), again)

    def curvature(self, move, lam):
        return tf.reduce_sum(move * move)

    def second_order(self, v):
        return tf.constant([self.second], tf.float64)


def _objective(w):
    return tf.reduce_sum(tf.square(tf.cast(w, tf.float64) - 3.0))


def _search(strategy, geodesic=False, ratio=0.75, max_attempts=5):
    return Search(
        strategy,
        learning_rate=1.0,
        max_attempts=max_attempts,
        geodesic=geodesic,
        geodesic_ratio=ratio,
        curvature_scale=2.0,  # loss r**2: its Gauss-Newton matrix is 2 J^T J
    )


def _run(search, system, w, lam):
    w = tf.constant([w], tf.float64)
    lam, nu = tf.constant(lam, tf.float64), tf.constant(2.0, tf.float64)
    return search(system, _objective, w, lam, nu, _objective(w))


def test_search_accepts_a_descent_step_with_the_exact_gain_ratio():
    """On a quadratic the model is exact: rho = 1 and Nielsen's rule divides
    lambda by 3."""
    strategy = damping.Standard(initial=1.0, update="gain_ratio")
    res = _run(_search(strategy), _Line(tf.constant([0.0], tf.float64)), 0.0, 1.0)
    assert bool(res.accepted) and int(res.attempts) == 1
    np.testing.assert_allclose(res.weights, [1.5])  # w + 3 / (1 + lambda)
    assert float(res.loss) == pytest.approx(1.5**2)
    assert float(res.damping) == pytest.approx(1.0 / 3.0)
    assert int(res.stop) == 0


def test_search_rejects_uphill_steps_until_damping_max():
    strategy = damping.Standard(initial=1.0, max_value=100.0)
    w = tf.constant([0.0], tf.float64)
    res = _run(_search(strategy), _Line(w, sign=-1.0), 0.0, 1.0)
    assert not bool(res.accepted)
    assert int(res.attempts) == 2  # lambda 1 -> 10 -> 100, its maximum
    assert float(res.damping) == 100.0
    np.testing.assert_array_equal(res.weights, [0.0])
    assert float(res.loss) == float(res.initial_loss) == 9.0
    assert from_graph_code(res.stop) is Status.DAMPING_MAX


@pytest.mark.parametrize("ratio, expected", [(0.75, 1.6), (0.1, 1.5)])
def test_search_adds_the_geodesic_correction_when_small(ratio, expected):
    """``b = second / (1 + lambda) = -0.2`` against ``|move| = 1.5``: the
    correction ``-b / 2`` is used when ``2 |b| / |move| <= ratio``."""
    strategy = damping.Standard(initial=1.0)
    system = _Line(tf.constant([0.0], tf.float64), second=-0.4)
    res = _run(_search(strategy, geodesic=True, ratio=ratio), system, 0.0, 1.0)
    assert bool(res.accepted)
    np.testing.assert_allclose(res.weights, [expected])


# -- stop codes --------------------------------------------------------------------
@pytest.mark.parametrize(
    "initial_loss, accepted, lam, expected",
    [
        (1.0, True, 1e10, None),
        (1.0, False, 1e3, None),
        (1.0, False, 1e10, Status.DAMPING_MAX),
        (np.nan, True, 1.0, Status.NON_FINITE),
        (np.inf, False, 1e10, Status.NON_FINITE),
    ],
)
def test_stop_code(initial_loss, accepted, lam, expected):
    code = stop_code(
        tf.constant(initial_loss, tf.float64),
        tf.constant(accepted),
        tf.constant(lam, tf.float64),
        1e10,
    )
    assert code.dtype == tf.int32
    assert GRAPH_CODES[int(code)] is expected


class _Singular(damping.Damping):
    """Damping that adds nothing: J^T J alone is singular here."""

    def diagonal(self, curvature_diagonal):
        return tf.zeros_like(curvature_diagonal)


@pytest.mark.parametrize("compiled", [False, True])
def test_step_reports_damping_max_and_non_finite_losses(compiled):
    fn = model_function(_model(seed=5), "dense")
    config = StepConfig(damping=_Singular(initial=1.0, max_value=100.0))
    x = tf.zeros((10, 2), tf.float64)  # zero inputs: kernel columns of J vanish
    y = tf.constant(np.random.default_rng(0).standard_normal((10, 2)))
    sw = tf.ones([10], tf.float64)
    if compiled:
        spec = tf.TensorSpec([None, 2], tf.float64)
        step = compiled_step(fn, config, spec, spec).step
    else:
        step = LMStep(fn, config).step
    lam, nu = tf.constant(1.0, tf.float64), tf.constant(2.0, tf.float64)
    res = step(fn.get_weights(), lam, nu, x, y, sw)
    assert not bool(res.accepted) and float(res.damping) == 100.0
    assert from_graph_code(res.stop) is Status.DAMPING_MAX
    nan_y = tf.fill([10, 2], tf.constant(np.nan, tf.float64))
    res = step(fn.get_weights(), lam, nu, x, nan_y, sw)
    assert from_graph_code(res.stop) is Status.NON_FINITE


def test_model_functions_declare_their_capabilities():
    dense = model_function(_model(), "dense").capabilities
    assert dense.layerwise_gauss_newton and dense.weighted_rows
    assert dense.gauss_newton_diagonal and dense.closed_form
    autodiff = model_function(_model(), "reverse").capabilities
    assert not (autodiff.layerwise_gauss_newton or autodiff.weighted_rows)
    assert not (autodiff.gauss_newton_diagonal or autodiff.closed_form)
