"""The loss of a batch linearised in the weights, chunk by chunk.

Around weights ``w`` a sample's outputs are ``z(w + delta) ~ z + J delta``
(``J`` is ``k x n``, :meth:`~sklearn_lm.engine.functions.ModelFunction.linearization`)
and its loss is a sum of squares of residual rows, ``e + F J delta`` (``q``
rows; ``F`` is ``q x k``, the identity for the mean squared error, see
:meth:`~sklearn_lm.engine.losses.Loss.linearize`). With sample weights
``s_c`` every row of sample ``c`` is multiplied by ``sqrt(s_c)``; ``Jhat`` is
the stacked weighted rows ``sqrt(s_c) F_c J_c`` of a chunk, ``e`` its weighted
residuals.

The normal equations need only ``Jhat^T Jhat`` (``n x n``) and
``Jhat^T e``, sums over samples: :class:`Linearization` accumulates them over
chunks of ``chunk_size`` samples in a graph loop, at most
:data:`~sklearn_lm.engine.memory.CHUNKS_IN_FLIGHT` chunks at once, so that
memory is ``O(n^2 + chunk_size * q * n)`` whatever the number of samples
(:func:`~sklearn_lm.engine.memory.step_memory_bytes`). Products are
taken in the model's dtype over blocks of rows and summed in float64
(:class:`~sklearn_lm.engine.products.RowBlocks`).

For chains of ``Dense`` layers with several residual rows per sample the
Jacobian rows are not formed at all: the model function sums the
Gauss-Newton products layer by layer
(:meth:`~sklearn_lm.engine.layerwise.LayerwiseProducts.gauss_newton`).

The second directional derivative of the outputs along a direction ``v``,
``z_vv = d^2 z(w + t v) / dt^2`` at ``t = 0``, is computed exactly
(:meth:`~sklearn_lm.engine.functions.ModelFunction.outputs_and_curvature`);
its weighted rows ``sqrt(s_c) F_c z_vv`` give the right-hand side of the
geodesic acceleration, ``Jhat^T F z_vv``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from .memory import CHUNKS_IN_FLIGHT
from .products import RowBlocks

__all__ = ["Chunk", "Linearization"]

_F64 = tf.float64


class Chunk(NamedTuple):
    """The linearisation of one chunk of samples (float64 results).

    Attributes
    ----------
    loss : tf.Tensor
        Weighted loss sum of the chunk.
    project : callable
        ``project(r) = Jhat^T r`` for weighted residual rows ``r`` ``(N, q)``.
    stats : callable
        ``stats() = (Jhat^T Jhat, Jhat^T e)``.
    curvature_rows : callable
        ``curvature_rows(v)``, the weighted rows of ``F z_vv`` along ``v``,
        ready for ``project``.
    """

    loss: tf.Tensor
    project: Callable
    stats: Callable
    curvature_rows: Callable


class Linearization:
    """Builds the linearised loss of a batch, in chunks of samples.

    Parameters
    ----------
    fn : ModelFunction
    loss : losses.Loss
    chunk_size : int
        Samples per chunk.
    chunked : bool
        Whether batches may exceed ``chunk_size`` samples; ``False`` builds
        no chunk loop.
    structured : bool
        Use the layer-by-layer Gauss-Newton products of the model function
        instead of Jacobian rows (see
        :func:`~sklearn_lm.engine.memory.layerwise_width`).
    """

    def __init__(self, fn, loss, *, chunk_size: int, chunked: bool, structured: bool):
        self.fn = fn
        self.loss = loss
        self.chunk_size = int(chunk_size)
        self.chunked = bool(chunked)
        self.structured = bool(structured)
        self.n_params = fn.n_params
        self.n_outputs = fn.n_outputs

    def reduce(self, x, y, sw, body_fn, init):
        """Sum ``body_fn(x_chunk, y_chunk, sw_chunk)`` (a tuple) over chunks.

        Unchunked, ``body_fn`` is applied to the whole batch; ``init`` (zeros
        shaped like the results) starts the sums of the chunk loop, which
        runs at most :data:`~sklearn_lm.engine.memory.CHUNKS_IN_FLIGHT` chunk
        bodies at once.
        """
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

        # At most CHUNKS_IN_FLIGHT chunk bodies run at once (the default of
        # tf.while_loop, 10, lets up to ten chunks hold their rows together).
        _, acc = tf.while_loop(
            lambda i, acc: i < n_chunks,
            body,
            (tf.constant(0), init),
            parallel_iterations=CHUNKS_IN_FLIGHT,
        )
        return acc

    def loss_sum(self, w, x, y, sw):
        """Weighted loss sum of the batch at ``w`` (float64)."""

        def body(xc, yc, swc):
            z = self.fn.outputs(w, xc)
            return (tf.reduce_sum(swc * self.loss.sample_losses(yc, z)),)

        return self.reduce(x, y, sw, body, (tf.constant(0.0, _F64),))[0]

    def rows(self, w, xc, yc, swc, jac_dtype=_F64):
        """Weighted linearised rows of a chunk: ``(Jhat, e, loss, state)``.

        ``Jhat`` has shape ``(rows, n)``, in ``jac_dtype``; ``e`` has shape
        ``(rows,)``; ``e`` and the loss are float64;
        ``state`` is the model function's forward pass (see
        :meth:`~sklearn_lm.engine.functions.ModelFunction.linearization`).
        """
        return self.rows_and_curvature(w, xc, yc, swc, jac_dtype)[:4]

    def rows_and_curvature(self, w, xc, yc, swc, jac_dtype=_F64):
        """:meth:`rows` and its geodesic rows: ``(Jhat, e, loss, state, rows_vv)``.

        ``rows_vv(v)`` equals :meth:`second_order_rows` at the same
        ``w``, inputs, targets and sample weights, but reuses the loss's factor
        ``F`` and ``sqrt(sample_weight)`` computed here: the same values,
        neither traced nor computed again for each direction.
        """
        z, jac, state = self.fn.linearization(w, xc)
        e, f = self.loss.linearize(yc, z)
        root = tf.sqrt(swc)
        if f is not None:
            jac = tf.einsum("cqk,ckn->cqn", tf.cast(f, jac.dtype), jac)
        jac = tf.cast(jac * tf.cast(root, jac.dtype)[:, None, None], jac_dtype)
        e = e * root[:, None]
        loss = tf.reduce_sum(swc * self.loss.sample_losses(yc, z))

        def curvature_rows(v):
            zvv = self.fn.outputs_and_curvature(w, tf.cast(v, w.dtype), xc, state)[1]
            zvv = tf.cast(zvv, _F64)
            rows = zvv if f is None else tf.einsum("cqk,ck->cq", f, zvv)
            return rows * root[:, None]

        jac = tf.reshape(jac, [-1, self.n_params])
        return jac, tf.reshape(e, [-1]), loss, state, curvature_rows

    def chunk(self, w, xc, yc, swc) -> Chunk:
        """Linearisation of one chunk of samples (see :class:`Chunk`).

        With :attr:`structured`, the Jacobian rows are never formed; with a
        model function that writes its weighted rows
        (``fn.capabilities.weighted_rows``), the sample weights and ``F``
        enter its back-propagated sensitivities and ``[F J | e]`` is written
        by one concatenation.
        """
        fn = self.fn
        if self.structured or fn.capabilities.weighted_rows:
            z, state = fn.outputs_and_state(w, xc)
            e, f = self.loss.linearize(yc, z)
            root = tf.sqrt(swc)
            plain = f is None
            if plain:
                f = tf.eye(self.n_outputs, dtype=_F64)[None]
            f = f * root[:, None, None]
            e = e * root[:, None]
            loss = tf.reduce_sum(swc * self.loss.sample_losses(yc, z))
            # Computed here, outside the attempt loop, and reused by every
            # attempt's geodesic acceleration (pruned when unused).
            root_model = tf.cast(root, fn.dtype)[:, None]

            def curvature_rows(v):
                zvv = fn.outputs_and_curvature(w, tf.cast(v, fn.dtype), xc, state)[1]
                if plain:  # F is the identity: the rows stay in the model's dtype
                    return zvv * root_model
                return tf.einsum("cqk,ck->cq", f, tf.cast(zvv, _F64))

            if self.structured:
                return Chunk(
                    loss,
                    lambda r: fn.transpose_times(state, f, r),
                    lambda: fn.gauss_newton(state, f, e),
                    curvature_rows,
                )
            aug = RowBlocks(fn.weighted_rows(state, f, e))
        else:
            jac, e, loss, _, curvature_rows = self.rows_and_curvature(
                w, xc, yc, swc, jac_dtype=fn.dtype
            )
            aug = RowBlocks(tf.concat([jac, tf.cast(e, jac.dtype)[:, None]], axis=1))

        # [J | e] is blocked once; J^T J and J^T e come from one product and
        # every attempt's J^T r reuses the blocks.
        n = self.n_params

        def stats():
            full = aug.gram()
            return full[:n, :n], full[:n, n]

        return Chunk(
            loss,
            lambda r: aug.transpose_times(tf.reshape(r, [-1]))[:n],
            stats,
            curvature_rows,
        )

    def normal_stats(self, w, x, y, sw):
        """``(J^T J, J^T e, loss sum, second_order)``, unnormalised, float64.

        ``second_order(v)`` is ``J^T F^T F z_vv`` for the direction ``v``
        (weighted, float64, not normalised), the right-hand side of the
        geodesic acceleration. Unchunked, it reuses the forward pass and
        Jacobian rows of the step; chunked, each chunk's forward pass is
        recomputed, once ``v`` is known, and, where the model function writes
        its weighted rows (``fn.capabilities.weighted_rows``), ``F^T F z_vv``
        is back-propagated through it
        (:meth:`~sklearn_lm.engine.functions.ModelFunction.vjp`) without
        forming the rows; otherwise the chunk's rows are formed again. Its
        contraction with the Jacobian is summed in float64 across blocks of
        rows (:class:`~sklearn_lm.engine.products.RowBlocks`): one float32 sum
        over all samples cancels too much.
        """
        if not self.chunked:
            whole = self.chunk(w, x, y, sw)

            def second_order(v):
                return whole.project(whole.curvature_rows(v))

            return (*whole.stats(), whole.loss, second_order)

        def body(xc, yc, swc):
            part = self.chunk(w, xc, yc, swc)
            return (*part.stats(), part.loss)

        n = self.n_params
        init = (
            tf.zeros([n, n], _F64),
            tf.zeros([n], _F64),
            tf.constant(0.0, _F64),
        )

        fn = self.fn

        def second_order(v):
            # The chunks' rows depend on w alone: without this dependence on v
            # the executor computes the first chunk's rows ahead, while the
            # normal equations are accumulated, and holds them until v is known.
            with tf.control_dependencies([v]):
                w_v = tf.identity(w)

            def chunk_rhs(xc, yc, swc):
                if not fn.capabilities.weighted_rows:
                    # Autodiff's vjp sums over samples in the model's dtype.
                    part = self.chunk(w_v, xc, yc, swc)
                    return (part.project(part.curvature_rows(v)),)
                # J^T (F^T F z_vv) by one back-propagation through the chunk's
                # forward pass (sums in float64 over float32 blocks): the rows
                # [F J | e] are not formed again.
                _, state = fn.outputs_and_state(w_v, xc)
                rows, f = self._curvature(w_v, v, xc, yc, state)
                rows = rows * tf.sqrt(swc)[:, None]
                u = rows if f is None else tf.einsum("cqk,cq->ck", f, rows)
                return (fn.vjp(w_v, u * tf.sqrt(swc)[:, None], xc, state),)

            return self.reduce(x, y, sw, chunk_rhs, (tf.zeros([n], _F64),))[0]

        return (*self.reduce(x, y, sw, body, init), second_order)

    def second_order_rows(self, w, v, x, y, sw, state=None):
        """The weighted rows of ``F z_vv`` ``(N, q)``, float64, for direction ``v``.

        ``z_vv`` (the second derivative of the outputs along ``v``) comes from
        :meth:`~sklearn_lm.engine.functions.ModelFunction.outputs_and_curvature`:
        exact, no finite differences. The rows are multiplied by
        ``sqrt(sample_weight)``. ``state`` is the forward pass of :meth:`rows`
        at the same ``w`` and ``x``, or ``None``.
        """
        return self._curvature(w, v, x, y, state)[0] * tf.sqrt(sw)[:, None]

    def _curvature(self, w, v, x, y, state):
        """``(F z_vv, F)``: unweighted rows ``(N, q)`` float64, ``F`` or ``None``."""
        z, zvv = self.fn.outputs_and_curvature(w, tf.cast(v, w.dtype), x, state)
        zvv = tf.cast(zvv, _F64)
        _, f = self.loss.linearize(y, z)
        return (zvv if f is None else tf.einsum("cqk,ck->cq", f, zvv)), f
