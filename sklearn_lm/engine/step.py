"""One Levenberg-Marquardt step, compiled into a single TensorFlow graph.

For a batch of ``N`` samples the step

1. accumulates, over chunks of rows, ``H = sum J^T F^T F J``, ``g = sum
   J^T F^T e`` and the loss (float64) -- memory ``O(n^2 + chunk * q * n)``,
   never ``O(N * q * n)``;
2. solves ``(H/(N c) + a*mask + lam*diag(d)) delta = g/(N c) + a*mask*w``
   (``a = 2 * l2 / s``) or, when the batch has fewer residual rows than
   weights and no L2 penalty, the equivalent ``(N q) x (N q)`` Gram system;
3. with geodesic acceleration, adds the second-order
   correction of Transtrum and Sethna: along the velocity ``v = -lr * delta``
   the second directional derivative of the outputs, ``z_vv = d^2 z(w + t
   v) / dt^2`` at ``t = 0``, is computed exactly
   (:meth:`~sklearn_lm.engine.jacobian.ModelFunction.outputs_and_curvature`),
   and the acceleration ``a`` solves the same damped
   system with right-hand side ``-J^T F^T F z_vv / (N c)``. The trial point
   is ``w + v + a / 2`` when ``2 |a| / |v| <= geodesic_ratio``, else
   ``w + v``;
4. tries the trial point: the loss is re-evaluated in inference mode; a
   lower loss is accepted and ``lam`` decreased; otherwise (including a
   failed solve or a non-finite loss) ``lam`` is increased and the attempt
   repeated, up to ``max_attempts`` times or until ``lam`` reaches its
   maximum. The gain ratio compares the decrease with the one the quadratic
   model predicts for ``v``.

The step is a pure function of ``(w, lam, nu, x, y, sample_weight)``; it never
touches Keras variables, so one compiled step serves every model with the same
architecture (see :func:`compiled_step`). Its variant for updating a model in
place reads and writes the variables through handles that are inputs of the
graph, not captured by it, so it is shared in the same way.
"""

from __future__ import annotations

import collections
import os
from typing import NamedTuple

import tensorflow as tf

from . import _call_options
from . import damping as damping_module
from . import losses as losses_module
from .jacobian import ModelFunction
from .products import RowBlocks
from .solve import add_to_diagonal, cg_solver, gram_solver, normal_solver

__all__ = [
    "StepResult",
    "LMStep",
    "compiled_step",
    "default_chunk_size",
    "layerwise_width",
]

_F64 = tf.float64
#: Bytes of Jacobian rows a chunk may hold (model dtype plus float64 copy).
CHUNK_BUDGET_BYTES = 128 * 2**20


class StepResult(NamedTuple):
    """Outputs of one step (tensors)."""

    weights: tf.Tensor
    damping: tf.Tensor
    nu: tf.Tensor
    loss: tf.Tensor
    attempts: tf.Tensor
    accepted: tf.Tensor
    initial_loss: tf.Tensor


def layerwise_width(fn: ModelFunction, rows_per_sample: int) -> int | None:
    """Values per sample of the layer-by-layer Gauss-Newton products, if used.

    The products (:meth:`~sklearn_lm.engine.jacobian.DenseChain.gauss_newton`)
    replace the ``rows_per_sample * n`` Jacobian rows of a sample when the
    model function offers them, a sample has several residual rows, and their
    largest temporary per sample is no wider than those rows. Returns that
    width, or ``None`` when the Jacobian rows are formed.
    """
    if not fn.capabilities.layerwise_gauss_newton or rows_per_sample <= 1:
        return None
    values = int(fn.structured_width())
    return values if values <= rows_per_sample * fn.n_params else None


def default_chunk_size(
    n_params: int, rows_per_sample: int, itemsize: int, width: int | None = None
) -> int:
    """Samples per chunk so that a chunk's rows fit ``CHUNK_BUDGET_BYTES``.

    A chunk holds ``rows_per_sample * n_params`` Jacobian values per sample,
    or ``width`` values when given (see :func:`layerwise_width`), each in the
    model's dtype and in float64.
    """
    values = rows_per_sample * n_params if width is None else width
    per_sample = max(1, values * (8 + itemsize))
    return max(64, CHUNK_BUDGET_BYTES // per_sample)


class LMStep:
    """Builds the step and evaluation functions for one configuration.

    Parameters
    ----------
    fn : ModelFunction
    loss : losses.Loss
    damping : damping.Damping
    learning_rate : float
    max_attempts : int
    l2 : float
    chunk_size : int
    chunked : bool, default=True
        Whether batches may exceed ``chunk_size`` rows. ``False`` builds a
        graph without the chunk loop, for batches known to fit in one chunk
        (cheaper per step on small batches).
    form : {"auto", "normal", "gram"}, default="auto"
        Which system to solve. ``"auto"`` decides per batch in the graph
        (Gram form when ``rows * q < n`` and ``l2 == 0``); a fixed form builds a
        graph half the size, for callers who know their batch sizes.
    geodesic : bool, default=False
        Add geodesic acceleration to each attempt (item 3 of the module
        docstring).
    geodesic_ratio : float, default=0.75
        Largest ``2 |a| / |v|`` for which the acceleration is used.
    solver : {"direct", "cg"}, default="direct"
        ``"direct"`` forms the damped system (normal or Gram form) and
        factors it. ``"cg"`` solves the normal form inexactly by conjugate
        gradients on Gauss-Newton-vector products
        (:func:`~sklearn_lm.engine.solve.cg_solver`): no ``n x n`` matrix and
        no Jacobian rows, each product costs about one forward and one
        backward pass over the batch (:meth:`_cg_products`). ``form`` and
        ``chunk_size`` do not apply to it.
    cg_max_iter : int, default=5
        Most conjugate-gradient iterations per solve (``solver="cg"``).
    cg_rtol : float, default=1e-3
        Relative residual at which conjugate gradients stop.
    """

    def __init__(
        self,
        fn: ModelFunction,
        loss: losses_module.Loss,
        damping: damping_module.Damping,
        learning_rate: float,
        max_attempts: int,
        l2: float,
        chunk_size: int,
        chunked: bool = True,
        form: str = "auto",
        geodesic: bool = False,
        geodesic_ratio: float = 0.75,
        solver: str = "direct",
        cg_max_iter: int = 5,
        cg_rtol: float = 1e-3,
    ):
        self.fn = fn
        self.solver = solver
        self.cg_max_iter = int(cg_max_iter)
        self.cg_rtol = float(cg_rtol)
        self.geodesic = bool(geodesic)
        self.geodesic_ratio = float(geodesic_ratio)
        self.chunked = bool(chunked)
        self.form = form
        self.loss = loss
        self.damping = damping
        self.learning_rate = float(learning_rate)
        self.max_attempts = int(max_attempts)
        self.l2 = float(l2)
        self.chunk_size = int(chunk_size)
        self.n = fn.n_params
        self.k = fn.n_outputs
        self.q = loss.residuals_per_sample(self.k)
        self.c = loss.output_normaliser(self.k)
        self.s = float(loss.curvature_scale)
        self.mask = tf.constant(fn.penalty_mask(), _F64)
        # Layer-by-layer Gauss-Newton products (never the Jacobian rows) pay
        # off with several residual rows per sample: they cost about q times
        # fewer flops; used when their temporaries are no larger than the rows.
        self.structured = layerwise_width(fn, self.q) is not None

    # -- chunked reductions ------------------------------------------------------
    def _reduce(self, x, y, sw, body_fn, init):
        if not self.chunked:
            return body_fn(x, y, sw)
        n_rows = tf.shape(x)[0]
        size = self.chunk_size
        n_chunks = (n_rows + size - 1) // size

        def body(i, acc):
            lo = i * size
            hi = tf.minimum(lo + size, n_rows)
            out = body_fn(x[lo:hi], y[lo:hi], sw[lo:hi])
            return i + 1, tuple(a + b for a, b in zip(acc, out, strict=True))

        _, acc = tf.while_loop(
            lambda i, acc: i < n_chunks, body, (tf.constant(0), init)
        )
        return acc

    def _loss_sum(self, w, x, y, sw):
        def body(xc, yc, swc):
            z = self.fn.outputs(w, xc)
            return (tf.reduce_sum(swc * self.loss.sample_losses(yc, z)),)

        return self._reduce(x, y, sw, body, (tf.constant(0.0, _F64),))[0]

    def _rows(self, w, xc, yc, swc, jac_dtype=_F64):
        """Weighted linearised rows of a chunk: ``(Jhat, e, loss, state)``.

        ``Jhat`` has shape ``(rows, n)``, in ``jac_dtype``; ``e`` has shape
        ``(rows,)``; ``e`` and the loss are float64;
        ``state`` is the model function's forward pass (see
        :meth:`~sklearn_lm.engine.jacobian.ModelFunction.linearization`).
        """
        z, jac, state = self.fn.linearization(w, xc)
        e, f = self.loss.linearize(yc, z)
        root = tf.sqrt(swc)
        if f is not None:
            jac = tf.einsum("cqk,ckn->cqn", tf.cast(f, jac.dtype), jac)
        jac = tf.cast(jac * tf.cast(root, jac.dtype)[:, None, None], jac_dtype)
        e = e * root[:, None]
        loss = tf.reduce_sum(swc * self.loss.sample_losses(yc, z))
        return tf.reshape(jac, [-1, self.n]), tf.reshape(e, [-1]), loss, state

    def _chunk(self, w, xc, yc, swc):
        """Linearisation of one chunk of samples.

        Returns ``(loss, state, project, stats, curvature_rows)``: the
        weighted loss sum, the model function's forward pass, ``project(r)`` =
        ``Jhat^T r`` (float64) for weighted residual rows ``r (N, q)``,
        ``stats()`` = ``(Jhat^T Jhat, Jhat^T e)`` (float64), and
        ``curvature_rows(v)``, the weighted rows of ``F z_vv`` along ``v``
        (see :meth:`_second_order_rows`), ready for ``project``. With
        :attr:`structured`, the Jacobian rows are never formed: the model
        function sums the Gauss-Newton products layer by layer
        (:meth:`~sklearn_lm.engine.jacobian.DenseChain.gauss_newton`).
        """
        if self.structured or self.fn.capabilities.weighted_rows:
            z, state = self.fn.outputs_and_state(w, xc)
            e, f = self.loss.linearize(yc, z)
            root = tf.sqrt(swc)
            plain = f is None
            if plain:
                f = tf.eye(self.k, dtype=_F64)[None]
            f = f * root[:, None, None]
            e = e * root[:, None]
            loss = tf.reduce_sum(swc * self.loss.sample_losses(yc, z))
            # Computed here, outside the attempt loop, and reused by every
            # attempt's geodesic acceleration (pruned when unused).
            root_model = tf.cast(root, self.fn.dtype)[:, None]

            def curvature_rows(v):
                zvv = self.fn.outputs_and_curvature(
                    w, tf.cast(v, self.fn.dtype), xc, state
                )[1]
                if plain:  # F is the identity: the rows stay in the model's dtype
                    return zvv * root_model
                return tf.einsum("cqk,ck->cq", f, tf.cast(zvv, _F64))

            if self.structured:
                return (
                    loss,
                    state,
                    lambda r: self.fn.transpose_times(state, f, r),
                    lambda: self.fn.gauss_newton(state, f, e),
                    curvature_rows,
                )
            # The weights and F enter the back-propagated sensitivities, and
            # [F J | e] is written by one concatenation.
            aug = RowBlocks(self.fn.weighted_rows(state, f, e))
        else:
            jac, e, loss, state = self._rows(w, xc, yc, swc, jac_dtype=self.fn.dtype)
            aug = RowBlocks(tf.concat([jac, tf.cast(e, jac.dtype)[:, None]], axis=1))

            def curvature_rows(v):
                return self._second_order_rows(w, v, xc, yc, swc, state)[1]

        # [J | e] is blocked once; J^T J and J^T e come from one product and
        # every attempt's J^T r reuses the blocks.

        def stats():
            full = aug.gram()
            return full[: self.n, : self.n], full[: self.n, self.n]

        return (
            loss,
            state,
            lambda r: aug.transpose_times(tf.reshape(r, [-1]))[: self.n],
            stats,
            curvature_rows,
        )

    def _normal_stats(self, w, x, y, sw):
        """``(J^T J, J^T e, loss sum, second_order)``, unnormalised, float64.

        ``second_order(v)`` is ``J^T F^T F z_vv`` for the direction ``v``
        (weighted, float64, not normalised), the right-hand side of the
        geodesic acceleration. Unchunked, it reuses the forward pass and
        Jacobian rows of the step; chunked, they are recomputed chunk by
        chunk. Its contraction with the Jacobian is summed in float64 across
        blocks of rows (:func:`~sklearn_lm.engine.products.cross`): one
        float32 sum over all samples cancels too much.
        """
        if not self.chunked:
            loss, _, project, stats, curvature_rows = self._chunk(w, x, y, sw)

            def second_order(v):
                return project(curvature_rows(v))

            return (*stats(), loss, second_order)

        def body(xc, yc, swc):
            loss, _, _, stats, _ = self._chunk(w, xc, yc, swc)
            return (*stats(), loss)

        init = (
            tf.zeros([self.n, self.n], _F64),
            tf.zeros([self.n], _F64),
            tf.constant(0.0, _F64),
        )

        def second_order(v):
            def chunk_rhs(xc, yc, swc):
                _, _, project, _, curvature_rows = self._chunk(w, xc, yc, swc)
                return (project(curvature_rows(v)),)

            init = (tf.zeros([self.n], _F64),)
            return self._reduce(x, y, sw, chunk_rhs, init)[0]

        return (*self._reduce(x, y, sw, body, init), second_order)

    def _second_order_rows(self, w, v, x, y, sw, state=None):
        """Outputs ``z`` and the weighted rows of ``F z_vv``, for direction ``v``.

        ``z_vv`` (the second derivative of the outputs along ``v``) comes from
        :meth:`ModelFunction.outputs_and_curvature`: exact, no finite
        differences. Returns ``(z, rows (N, q) float64, F or None)`` with the rows
        already multiplied by ``sqrt(sample_weight)``. ``state`` is the forward
        pass of :meth:`_chunk` at the same ``w`` and ``x``, or ``None``.
        """
        z, zvv = self.fn.outputs_and_curvature(w, tf.cast(v, w.dtype), x, state)
        zvv = tf.cast(zvv, _F64)
        _, f = self.loss.linearize(y, z)
        rows = zvv if f is None else tf.einsum("cqk,ck->cq", f, zvv)
        return z, rows * tf.sqrt(sw)[:, None], f

    # -- public graph functions --------------------------------------------------
    def objective(self, w, x, y, sw):
        """Loss (float64) at ``w`` including the L2 term.

        ``x`` may be the model function's prepared inputs
        (:meth:`~sklearn_lm.engine.jacobian.ModelFunction.prepare_inputs`).
        """
        norm = tf.cast(tf.shape(y)[0], _F64) * self.c
        return self._loss_sum(w, x, y, sw) / norm + self._penalty(w)

    def _penalty(self, w):
        if self.l2 == 0.0:
            return tf.constant(0.0, _F64)
        w64 = tf.cast(w, _F64)
        return self.l2 * tf.reduce_sum(self.mask * tf.square(w64))

    def step(self, w, lam, nu, x, y, sw) -> StepResult:
        """One LM step with retries (see the module docstring)."""
        n_rows = tf.shape(y)[0]
        if not self.chunked:
            # Evaluated once per step and once per attempt: prepared once.
            x = self.fn.prepare_inputs(x)
        norm = tf.cast(n_rows, _F64) * self.c
        w64 = tf.cast(w, _F64)
        a = 2.0 * self.l2 / self.s
        use_gram = tf.logical_and(n_rows * self.q < self.n, self.l2 == 0.0)

        def normal_branch():
            h, g, loss_sum, rhs = self._normal_stats(w, x, y, sw)
            h = h / norm
            g = g / norm
            if self.l2 != 0.0:
                penalty = a * self.mask
                h = add_to_diagonal(h, penalty)
                g = g + penalty * w64
            d = self.damping.diagonal(tf.linalg.diag_part(h))

            def solve(lam_):
                again = normal_solver(h, d, lam_)
                delta, ok = again(g)
                return delta, ok, again

            def quadratic(move, lam_):
                return tf.reduce_sum(move * tf.linalg.matvec(h, move))

            def second_order(v):
                return rhs(v) / norm

            return self._attempts(
                w,
                lam,
                nu,
                x,
                y,
                sw,
                loss_sum / norm,
                g,
                solve,
                quadratic,
                second_order,
            )

        def gram_branch():
            jac, e, loss_sum, state = self._rows(w, x, y, sw)
            g = tf.linalg.matvec(jac, e, transpose_a=True) / norm
            d = self.damping.diagonal(tf.reduce_sum(tf.square(jac), axis=0) / norm)

            def solve(lam_):
                again = gram_solver(jac, d, lam_, norm)
                delta, ok = again(e)
                return delta, ok, again

            def quadratic(move, lam_):
                return tf.reduce_sum(tf.square(tf.linalg.matvec(jac, move))) / norm

            def second_order(v):
                rows = self._second_order_rows(w, v, x, y, sw, state)[1]
                return tf.reshape(rows, [-1])

            return self._attempts(
                w,
                lam,
                nu,
                x,
                y,
                sw,
                loss_sum / norm,
                g,
                solve,
                quadratic,
                second_order,
            )

        if self.solver == "cg":
            return StepResult(*self._cg_attempts(w, lam, nu, x, y, sw, norm))
        if self.form == "normal":
            return StepResult(*normal_branch())
        if self.form == "gram":
            return StepResult(*gram_branch())
        return StepResult(*tf.cond(use_gram, gram_branch, normal_branch))

    def _cg_products(self, w, x, y, sw):
        """Loss sum and closures for the conjugate-gradient solver.

        Returns ``(loss_sum, gradient, gauss_newton_times, diagonal,
        second_order)`` where ``gradient`` is ``J^T F^T e``,
        ``gauss_newton_times(v)`` is ``J^T F^T F J v``,
        ``diagonal()`` is ``diag(J^T F^T F J)`` and ``second_order(v)`` is
        ``J^T F^T F z_vv`` (all float64, weighted, not normalised). The
        products go through :meth:`ModelFunction.jvp` and
        :meth:`ModelFunction.vjp` and keep only the forward pass of the
        whole batch (``O(N * sum of layer widths)`` values for a
        :class:`~sklearn_lm.engine.jacobian.DenseChain`), never ``F J``.
        """
        fn = self.fn
        z, state = fn.outputs_and_state(w, x)
        e, f = self.loss.linearize(y, z)
        root = tf.sqrt(sw)
        loss_sum = tf.reduce_sum(sw * self.loss.sample_losses(y, z))
        e = e * root[:, None]
        factor = None if f is None else f * root[:, None, None]

        # F^T F per sample (the weights included): the loss's closed form, or
        # formed once per step in the model's dtype, like the products it sits
        # between, and applied by one pass per product.
        closed_form = self.loss.curvature_times(y, z) if f is not None else None
        if f is None:
            hess = tf.cast(sw, fn.dtype)[:, None]
        elif closed_form is None:
            hess = tf.cast(tf.einsum("cqk,cql->ckl", factor, factor), fn.dtype)

        def curvature(jv):  # F^T F (J v), weighted: (N, k), in the model's dtype
            if closed_form is not None:
                out = closed_form(tf.cast(jv, _F64)) * sw[:, None]
                return tf.cast(out, fn.dtype)
            jv = tf.cast(jv, fn.dtype)
            if f is None:
                return hess * jv
            return tf.einsum("ckl,cl->ck", hess, jv)

        def gauss_newton_times(v):
            # Rounding in the products only perturbs an inexact solve; the
            # gradient below keeps float64 sums.
            jv = fn.jvp(w, v, x, state)
            return fn.vjp(w, curvature(jv), x, state, precise=False)

        if f is None:
            gradient = fn.vjp(w, tf.cast(e * root[:, None], fn.dtype), x, state)
        else:
            gradient = fn.vjp(
                w, tf.cast(tf.einsum("cqk,cq->ck", factor, e), fn.dtype), x, state
            )

        def diagonal():
            if fn.capabilities.gauss_newton_diagonal:
                if f is None:
                    eye = tf.eye(self.k, dtype=_F64)[None]
                    return fn.gauss_newton_diagonal(state, eye * root[:, None, None])
                return fn.gauss_newton_diagonal(state, factor)

            def body(xc, yc, swc):
                jac = self._rows(w, xc, yc, swc, jac_dtype=fn.dtype)[0]
                return (tf.cast(tf.reduce_sum(tf.square(jac), axis=0), _F64),)

            init = (tf.zeros([self.n], _F64),)
            return self._reduce(x, y, sw, body, init)[0]

        def second_order(v):
            zvv = fn.outputs_and_curvature(w, tf.cast(v, fn.dtype), x, state)[1]
            return fn.vjp(w, curvature(zvv), x, state)

        return loss_sum, gradient, gauss_newton_times, diagonal, second_order

    def _cg_attempts(self, w, lam, nu, x, y, sw, norm):
        """The attempts of a step whose systems are solved by :func:`cg_solver`."""
        loss_sum, gradient, gn_times, diagonal, second_order = self._cg_products(
            w, x, y, sw
        )
        w64 = tf.cast(w, _F64)
        penalty = 2.0 * self.l2 / self.s * self.mask
        g = gradient / norm
        if self.l2 != 0.0:
            g = g + penalty * w64

        def curvature_times(v):
            out = gn_times(v) / norm
            return out + penalty * v if self.l2 != 0.0 else out

        if damping_module.uses_curvature_diagonal(self.damping):
            h_diag = diagonal() / norm + (penalty if self.l2 != 0.0 else 0.0)
            d = self.damping.diagonal(h_diag)
        else:  # d = 1: the diagonal of H is not needed (nor traced)
            d = tf.ones([self.n], _F64)

        def solve(lam_):
            again = cg_solver(curvature_times, d, lam_, self.cg_max_iter, self.cg_rtol)
            delta, ok = again(g)
            return delta, ok, again

        lr = tf.constant(self.learning_rate, _F64)

        def quadratic(move, lam_):
            # Conjugate gradients from zero satisfy delta^T (H + lam D) delta
            # = g^T delta at every iterate: no further product is needed.
            return lr * tf.reduce_sum(g * move) - lam_ * tf.reduce_sum(d * move * move)

        return self._attempts(
            w,
            lam,
            nu,
            x,
            y,
            sw,
            loss_sum / norm,
            g,
            solve,
            quadratic,
            lambda v: second_order(v) / norm,
        )

    def epoch(self, w, lam, nu, x, y, sw, order, batch_size):
        """Steps over the mini-batches ``order[i*batch_size:(i+1)*batch_size]``.

        The whole epoch runs in the graph. It ends early when the loss is not
        finite (``stop == 1``) or lambda reached its maximum without an
        accepted step (``stop == 2``).

        Returns
        -------
        tuple
            ``(weights, lam, nu, losses, attempts, stop)`` with ``losses`` and
            ``attempts`` one entry per step taken.
        """
        n = tf.shape(order)[0]
        n_batches = (n + batch_size - 1) // batch_size
        lam_max = tf.constant(self.damping.max_value, _F64)

        def cond(i, w, lam, nu, losses, attempts, stop):
            return tf.logical_and(i < n_batches, tf.equal(stop, 0))

        def body(i, w, lam, nu, losses, attempts, stop):
            idx = order[i * batch_size : tf.minimum((i + 1) * batch_size, n)]
            res = self.step(
                w, lam, nu, tf.gather(x, idx), tf.gather(y, idx), tf.gather(sw, idx)
            )
            exhausted = tf.logical_and(
                tf.logical_not(res.accepted), res.damping >= lam_max
            )
            stop = tf.where(
                tf.math.is_finite(res.initial_loss),
                tf.where(exhausted, 2, 0),
                1,
            )
            return (
                i + 1,
                res.weights,
                res.damping,
                res.nu,
                losses.write(i, res.loss),
                attempts.write(i, res.attempts),
                stop,
            )

        init = (
            tf.constant(0),
            w,
            lam,
            nu,
            tf.TensorArray(_F64, size=n_batches),
            tf.TensorArray(tf.int32, size=n_batches),
            tf.constant(0),
        )
        i, w, lam, nu, losses, attempts, stop = tf.while_loop(cond, body, init)
        return w, lam, nu, losses.stack()[:i], attempts.stack()[:i], stop

    def _attempts(
        self,
        w,
        lam,
        nu,
        x,
        y,
        sw,
        data_loss,
        g,
        solve,
        quadratic,
        second_order,
    ):
        """The attempt loop of a step.

        ``solve(lam)`` returns ``(delta, ok, again)`` for the damped system
        with right-hand side ``g``, ``again(rhs)`` solving the same system
        for another right-hand side; ``quadratic(move, lam)`` is
        ``move^T H move`` for the undamped curvature ``H``, and
        ``second_order(v)`` the geodesic right-hand side along ``v``.
        """
        loss0 = data_loss + self._penalty(w)
        lr = tf.constant(self.learning_rate, _F64)
        w64 = tf.cast(w, _F64)
        lam_max = tf.constant(self.damping.max_value, _F64)

        def cond(attempt, lam_, nu_, accepted, w_new, loss_new):
            return tf.logical_and(
                tf.logical_and(tf.logical_not(accepted), attempt < self.max_attempts),
                tf.logical_not(tf.logical_and(attempt > 0, lam_ >= lam_max)),
            )

        def body(attempt, lam_, nu_, accepted, w_new, loss_new):
            delta, ok, again = solve(lam_)
            move = lr * delta
            total = move
            if self.geodesic:
                # v = -move; the acceleration is a = -half_b * 2 below.
                b, b_ok = again(second_order(-move))
                ratio = 2.0 * tf.norm(b) / tf.maximum(tf.norm(move), 1e-300)
                use = b_ok & ok & (ratio <= self.geodesic_ratio)
                total = tf.where(use, move + 0.5 * b, move)
            candidate = tf.cast(w64 - total, w.dtype)
            loss1 = self.objective(candidate, x, y, sw)
            # Predicted decrease of the local quadratic model, in loss units.
            predicted = self.s * (tf.reduce_sum(g * move) - 0.5 * quadratic(move, lam_))
            rho = (loss0 - loss1) / predicted
            good = ok & tf.math.is_finite(loss1) & (loss1 < loss0)
            lam_next, nu_next = tf.cond(
                good,
                lambda: self.damping.accepted(lam_, nu_, rho),
                lambda: self.damping.rejected(lam_, nu_),
            )
            w_next = tf.where(good, candidate, w)
            loss_next = tf.where(good, loss1, loss0)
            return attempt + 1, lam_next, nu_next, good, w_next, loss_next

        init = (tf.constant(0), lam, nu, tf.constant(False), w, loss0)
        attempts, lam, nu, accepted, w_new, loss_new = tf.while_loop(cond, body, init)
        return w_new, lam, nu, loss_new, attempts, accepted, loss0


class _Concrete:
    """A ``tf.function`` with an input signature, called through its graph.

    Calling the one concrete function directly skips the signature matching of
    ``tf.function`` (about half a millisecond per call here); it is traced on
    the first call, not before. Arguments must be tensors of the signature's
    dtypes. Calls skip Grappler's graph rewrites
    (:mod:`sklearn_lm.engine._call_options`).
    """

    __slots__ = ("function", "_concrete")

    def __init__(self, function):
        self.function = function
        self._concrete = None

    def __call__(self, *args):
        if self._concrete is None:
            self._concrete = self.function.get_concrete_function()
        return _call_options.call(self._concrete, args)


_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 32


#: Settings that reach the graph as tensors, not constants: not part of a key.
_RUNTIME_SETTINGS = frozenset({"initial"})


def _config_key(obj, builtin_module) -> tuple:
    cls = type(obj)
    if cls.__module__ == builtin_module.__name__:
        config = obj.get_config().items()
        return (
            cls.__name__,
            tuple(sorted(i for i in config if i[0] not in _RUNTIME_SETTINGS)),
        )
    return (cls.__module__, cls.__qualname__, id(obj))


def compiled_step(
    fn: ModelFunction,
    loss: losses_module.Loss,
    damping: damping_module.Damping,
    *,
    learning_rate: float,
    max_attempts: int,
    l2: float,
    chunk_size: int,
    x_spec: tf.TensorSpec,
    y_spec: tf.TensorSpec,
    chunked: bool = True,
    form: str = "auto",
    geodesic: bool = False,
    geodesic_ratio: float = 0.75,
    solver: str = "direct",
    cg_max_iter: int = 5,
    cg_rtol: float = 1e-3,
):
    """Return ``(step, objective, epoch, step_variables)``: compiled functions.

    Each wraps a ``tf.function`` with a fixed input signature and is called
    with positional tensors of the signature's dtypes. ``step_variables(lam,
    nu, x, y, sample_weight, *handles)`` is ``step`` on the weights read
    from the variables behind ``handles``
    (:meth:`~sklearn_lm.engine.jacobian.ModelFunction.variable_handles`), which
    it writes back: one call instead of three for a step that updates a
    model.

    Functions are cached (least recently used, 32 entries) by the model
    function's :attr:`~ModelFunction.key` and every setting, so repeated fits
    of same-shaped networks -- grid search, cross-validation, warm restarts --
    trace once. Batch sizes are left unknown in the signatures: a smaller last
    batch does not retrace.
    """
    key = None
    if fn.key is not None:
        key = (
            fn.key,
            _config_key(loss, losses_module),
            _config_key(damping, damping_module),
            float(learning_rate),
            int(max_attempts),
            float(l2),
            int(chunk_size),
            x_spec,
            y_spec,
            bool(chunked),
            form,
            bool(geodesic),
            float(geodesic_ratio),
            solver,
            int(cg_max_iter),
            float(cg_rtol),
        )
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    lm = LMStep(
        fn,
        loss,
        damping,
        learning_rate,
        max_attempts,
        l2,
        chunk_size,
        chunked,
        form,
        geodesic,
        geodesic_ratio,
        solver,
        cg_max_iter,
        cg_rtol,
    )
    w_spec = tf.TensorSpec([fn.n_params], fn.dtype)
    s_spec = tf.TensorSpec([], _F64)
    sw_spec = tf.TensorSpec([None], _F64)
    step = tf.function(
        lm.step,
        input_signature=[w_spec, s_spec, s_spec, x_spec, y_spec, sw_spec],
        autograph=False,
    )
    objective = tf.function(
        lm.objective,
        input_signature=[w_spec, x_spec, y_spec, sw_spec],
        autograph=False,
    )
    epoch = tf.function(
        lm.epoch,
        input_signature=[
            w_spec,
            s_spec,
            s_spec,
            x_spec,
            y_spec,
            sw_spec,
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.int32),
        ],
        autograph=False,
    )
    handle_specs = [tf.TensorSpec([], tf.resource)] * len(fn.variables)

    def step_variables(lam, nu, x, y, sw, *handles):
        res = lm.step(fn.read_handles(handles), lam, nu, x, y, sw)
        # A rejected step returns the weights it read: writing them is a no-op.
        fn.write_handles(handles, res.weights)
        return res

    step_variables = tf.function(
        step_variables,
        input_signature=[s_spec, s_spec, x_spec, y_spec, sw_spec, *handle_specs],
        autograph=False,
    )
    functions = (
        _Concrete(step),
        _Concrete(objective),
        _Concrete(epoch),
        _Concrete(step_variables),
    )
    if key is not None:
        _CACHE[key] = functions
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return functions


def normal_matrix_bytes(n_params: int) -> int:
    """Bytes held by the float64 normal equations (matrix, factor, damped copy)."""
    return 3 * 8 * n_params * n_params


def physical_memory_bytes() -> int:
    """Physical memory of this machine, or 8 GiB if it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30
