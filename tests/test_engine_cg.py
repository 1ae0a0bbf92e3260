"""The conjugate-gradient solver: products with the Jacobian, the inexact
solve, and whole steps against NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from _reference import finite_difference_jacobian

from sklearn_lm.engine import LMModel, Trainer, damping, losses, model_function
from sklearn_lm.engine.solve import cg_solver


def _model(n_in=3, hidden=5, n_out=2, seed=0, activation="tanh"):
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    bias = lambda i: keras.initializers.RandomNormal(seed=seed + 10 + i)  # noqa: E731
    return keras.Sequential(
        [
            keras.Input((n_in,), dtype="float64"),
            keras.layers.Dense(
                hidden,
                activation,
                kernel_initializer=init(0),
                bias_initializer=bias(0),
                dtype="float64",
            ),
            keras.layers.Dense(
                n_out,
                kernel_initializer=init(1),
                bias_initializer=bias(1),
                dtype="float64",
            ),
        ]
    )


def _weights(model):
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])


def _krylov_minimiser(a, b, k):
    """The minimiser of ``x^T A x / 2 - b^T x`` over ``span{b, Ab, ..., A^(k-1) b}``:
    what ``k`` iterations of conjugate gradients from zero return."""
    basis = [b]
    for _ in range(k - 1):
        basis.append(a @ basis[-1])
    q, _ = np.linalg.qr(np.stack(basis, axis=1))
    return q @ np.linalg.solve(q.T @ a @ q, q.T @ b)


# -- products with the Jacobian ---------------------------------------------------
@pytest.mark.parametrize("jacobian", ["dense", "reverse"])
@pytest.mark.parametrize("with_state", [False, True])
def test_jvp_and_vjp_match_finite_differences(jacobian, with_state):
    model = _model()
    fn = model_function(model, jacobian)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((7, 3)))
    w = fn.get_weights()
    jac = finite_difference_jacobian(fn, w, x)
    v = rng.standard_normal(fn.n_params)
    u = rng.standard_normal((7, 2))
    state = fn.outputs_and_state(w, x)[1] if with_state else None
    jv = fn.jvp(w, tf.constant(v), x, state).numpy()
    ju = fn.vjp(w, tf.constant(u), x, state)
    assert ju.dtype == tf.float64
    np.testing.assert_allclose(jv, jac @ v, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        ju.numpy(), np.einsum("ckn,ck->n", jac, u), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("precise", [True, False])
def test_float32_vjp_matches_float64(precise):
    """Both ways of summing over samples: within float32 rounding of the
    float64 product (``precise=False`` sums in float32)."""
    model64 = _model(hidden=6)
    model32 = keras.Sequential(
        [keras.Input((3,))]
        + [
            keras.layers.Dense(layer.units, layer.activation)
            for layer in model64.layers
        ]
    )
    for v32, v64 in zip(model32.weights, model64.weights, strict=True):
        v32.assign(v64.numpy().astype("float32"))
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3000, 3))
    u = rng.standard_normal((3000, 2))
    fn64, fn32 = model_function(model64, "dense"), model_function(model32, "dense")
    w32 = fn32.get_weights()
    expected = fn64.vjp(fn64.get_weights(), tf.constant(u), tf.constant(x)).numpy()
    got = fn32.vjp(
        w32, tf.constant(u, tf.float32), tf.constant(x, tf.float32), precise=precise
    )
    assert got.dtype == tf.float64
    np.testing.assert_allclose(
        got.numpy(), expected, rtol=0, atol=1e-4 * np.abs(expected).max()
    )


def test_gauss_newton_diagonal_matches_finite_differences():
    model = _model(hidden=4, n_out=3, activation="sigmoid")
    fn = model_function(model, "dense")
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((6, 3)))
    w = fn.get_weights()
    jac = finite_difference_jacobian(fn, w, x)
    factor = rng.standard_normal((6, 2, 3))  # q = 2 rows per sample, k = 3
    weighted = np.einsum("cqk,ckn->cqn", factor, jac).reshape(-1, fn.n_params)
    state = fn.outputs_and_state(w, x)[1]
    diag = fn.gauss_newton_diagonal(state, tf.constant(factor)).numpy()
    np.testing.assert_allclose(diag, np.sum(weighted**2, axis=0), rtol=1e-7)


# -- the inexact solve ------------------------------------------------------------
def _spd(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2 * n, n))
    return a.T @ a / n, rng.standard_normal(n), rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize("iterations", [1, 2, 4])
def test_truncated_cg_is_the_krylov_minimiser(iterations):
    h, b, d = _spd(12, 0)
    lam = 0.1
    solve = cg_solver(
        lambda v: tf.linalg.matvec(tf.constant(h), v),
        tf.constant(d),
        tf.constant(lam, tf.float64),
        max_iter=iterations,
        rtol=1e-14,
    )
    x, ok = solve(tf.constant(b))
    assert bool(ok)
    a = h + lam * np.diag(d)
    expected = _krylov_minimiser(a, b, iterations)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-8, atol=1e-12)
    assert not np.allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-3)


def test_cg_converges_to_the_solution_and_stops_at_rtol():
    h, b, d = _spd(12, 1)
    lam = tf.constant(0.05, tf.float64)
    matvec = lambda v: tf.linalg.matvec(tf.constant(h), v)  # noqa: E731
    a = h + 0.05 * np.diag(d)
    x, ok = cg_solver(matvec, tf.constant(d), lam, max_iter=200, rtol=1e-12)(
        tf.constant(b)
    )
    assert bool(ok)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-9)
    # A loose tolerance stops early, with the residual it asked for.
    loose, _ = cg_solver(matvec, tf.constant(d), lam, max_iter=200, rtol=0.3)(
        tf.constant(b)
    )
    residual = np.linalg.norm(a @ loose.numpy() - b)
    assert residual <= 0.3 * np.linalg.norm(b)
    assert residual > 1e-6 * np.linalg.norm(b)


@pytest.mark.parametrize("bad", ["nan_product", "zero_rhs"])
def test_failed_cg_solve_is_not_ok_and_zero(bad):
    h, b, d = _spd(5, 2)
    if bad == "nan_product":
        matvec = lambda v: tf.fill([5], tf.constant(np.nan, tf.float64))  # noqa: E731
    else:
        matvec = lambda v: tf.linalg.matvec(tf.constant(h), v)  # noqa: E731
        b = np.zeros(5)
    x, ok = cg_solver(matvec, tf.constant(d), tf.constant(1.0, tf.float64), 10, 1e-6)(
        tf.constant(b)
    )
    assert not bool(ok)
    np.testing.assert_array_equal(x.numpy(), np.zeros(5))


# -- whole steps ------------------------------------------------------------------
def _reference_system(model, x, y, sw, kind, lam, l2):
    """Damped Gauss-Newton system of the MSE step, from a finite-difference
    Jacobian: ``(H + lam diag(d)) delta = g``."""
    fn = model_function(model, "dense")
    w = fn.get_weights()
    jac = finite_difference_jacobian(fn, w, tf.constant(x)).reshape(-1, fn.n_params)
    root = np.repeat(np.sqrt(sw), y.shape[1])
    r = (fn.outputs(w, tf.constant(x)).numpy().ravel() - y.ravel()) * root
    jw = jac * root[:, None]
    m = r.size
    mask = fn.penalty_mask()
    hess = jw.T @ jw / m + np.diag(l2 * mask)
    g = jw.T @ r / m + l2 * mask * w.numpy()
    d = np.ones(fn.n_params) if kind == "standard" else np.diag(hess)
    return w.numpy(), hess + lam * np.diag(d), g


@pytest.mark.parametrize("jacobian", ["auto", "reverse"])
@pytest.mark.parametrize("kind", ["standard", "fletcher"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cg_step_matches_numpy_solve(jacobian, kind, weighted):
    model = _model(seed=3)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 2))
    sw = rng.uniform(0.5, 2.0, 20) if weighted else np.ones(20)
    lam, l2 = 0.3, 0.01
    w0, system, g = _reference_system(model, x, y, sw, kind, lam, l2)
    trainer = Trainer(
        model,
        "mse",
        damping.get(kind, initial=lam, min_value=1e-12, max_value=1e3),
        l2=l2,  # mean squared error: l2 on the diagonal of the normal equations
        jacobian=jacobian,
        geodesic=False,
        solver="cg",
        cg_max_iter=200,
        cg_rtol=1e-13,
    )
    logs = trainer.train_step(x, y, sample_weight=sw)
    assert logs["accepted"] and logs["attempts"] == 1
    np.testing.assert_allclose(
        _weights(model), w0 - np.linalg.solve(system, g), rtol=1e-6, atol=1e-9
    )


def test_truncated_cg_step_is_the_krylov_step():
    """Three iterations: the Krylov step, and the gain ratio of its quadratic
    model (``delta^T H delta`` of the undamped ``H``) sets the new damping."""
    model = _model(seed=5)
    rng = np.random.default_rng(3)
    x = 3.0 * rng.standard_normal((30, 3))  # curved enough for rho near 0.6
    y = rng.standard_normal((30, 2))
    lam = 0.05
    w0, system, g = _reference_system(model, x, y, np.ones(30), "standard", lam, 0.0)
    loss0 = np.mean((model(x).numpy() - y) ** 2)
    trainer = Trainer(
        model,
        "mse",
        damping.Standard(initial=lam, min_value=1e-12, update="gain_ratio"),
        geodesic=False,
        solver="cg",
        cg_max_iter=3,
    )
    logs = trainer.train_step(x, y)
    assert logs["accepted"]
    delta = _krylov_minimiser(system, g, 3)
    np.testing.assert_allclose(_weights(model), w0 - delta, rtol=1e-6, atol=1e-9)
    hess = system - lam * np.eye(w0.size)
    predicted = 2.0 * (g @ delta - 0.5 * delta @ hess @ delta)  # MSE: 2 J^T J / m
    rho = (loss0 - np.mean((model(x).numpy() - y) ** 2)) / predicted
    assert 0.3 < rho < 0.8  # where the rule's factor depends on rho
    factor = max(1 / 3, 1 - (2 * min(rho, 1.0) - 1) ** 3)
    assert logs["damping"] == pytest.approx(lam * factor, rel=1e-6)


def test_cg_gauss_newton_step_for_cross_entropy_matches_numpy():
    """Softmax cross-entropy: curvature ``J^T (diag(p) - p p^T) J``, gradient
    ``J^T (p - y)``, both from a finite-difference Jacobian of the logits."""
    model = _model(n_out=3, seed=9)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((25, 3))
    labels = rng.integers(0, 3, 25)
    fn = model_function(model, "dense")
    w = fn.get_weights()
    jac = finite_difference_jacobian(fn, w, tf.constant(x))
    logits = fn.outputs(w, tf.constant(x)).numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[labels]
    hess = (
        sum(
            jac[c].T @ (np.diag(p[c]) - np.outer(p[c], p[c])) @ jac[c]
            for c in range(25)
        )
        / 25
    )
    g = np.einsum("ckn,ck->n", jac, p - onehot) / 25
    lam = 0.1
    delta = np.linalg.solve(hess + lam * np.eye(fn.n_params), g)
    trainer = Trainer(
        model,
        losses.SparseCategoricalCrossentropy(from_logits=True),
        damping.Standard(initial=lam, min_value=1e-12),
        geodesic=False,
        solver="cg",
        cg_max_iter=200,
        cg_rtol=1e-13,
    )
    logs = trainer.train_step(x, labels)
    assert logs["accepted"]
    np.testing.assert_allclose(_weights(model), w.numpy() - delta, rtol=1e-6, atol=1e-9)


def test_cg_fits_where_the_normal_equations_do_not():
    model = _model(hidden=40)
    x = np.random.default_rng(5).standard_normal((200, 3))
    y = np.sin(x[:, :2])
    with pytest.raises(ValueError, match="solver='cg'"):
        Trainer(model, "mse", memory_limit=1000).fit(x, y, epochs=1)
    history = Trainer(model, "mse", memory_limit=1000, solver="cg").fit(x, y, epochs=30)
    losses = history.history["loss"]
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"solver": "lu"}, "solver must be 'direct' or 'cg'"),
        ({"cg_max_iter": 0}, "cg_max_iter must be an integer >= 1"),
        ({"cg_max_iter": 2.5}, "cg_max_iter must be an integer"),
        ({"cg_rtol": 0.0}, "cg_rtol must be a finite number > 0"),
    ],
)
def test_solver_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(_model(), "mse", **kwargs)


def test_keras_fit_path_with_cg_steps():
    x = np.linspace(-1, 1, 300)[:, None]
    y = np.sin(3 * x)
    net = _model(n_in=1, hidden=8, n_out=1, seed=11)
    lm = LMModel(net)
    lm.compile(loss="mse", solver="cg", cg_max_iter=8)
    history = lm.fit(x, y, epochs=15, batch_size=100, verbose=0)
    losses_ = history.history["loss"]
    assert set(history.history) >= {"loss", "damping", "attempts"}
    assert losses_[-1] < 0.05 * losses_[0]
    with pytest.raises(ValueError, match="solver must be 'direct' or 'cg'"):
        LMModel(_model()).compile(loss="mse", solver="qr")


def test_only_strategies_with_their_own_diagonal_need_diag_h():
    class Scaled(damping.Damping):
        def diagonal(self, curvature_diagonal):
            return tf.sqrt(curvature_diagonal) + 1.0

    class OwnSchedule(damping.Damping):
        def rejected(self, lam, nu):
            return self._clip(lam * 3.0), nu

    needs = damping.uses_curvature_diagonal
    assert not needs(damping.Standard()) and not needs(OwnSchedule())
    assert needs(damping.Fletcher()) and needs(Scaled())
