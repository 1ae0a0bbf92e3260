"""Gauss-Newton products of a chain of ``Dense`` layers, layer by layer.

Row ``r`` of sample ``c`` of the weighted Jacobian ``F J`` has, for the kernel
of layer ``l``, the entries ``a_l[c, i] * D_l[c, r, j]`` (input ``i``, unit
``j``) and, for its bias, ``D_l[c, r, j]``, where
``D_l = F d(out)/d(pre-activation of l)``. With the input extended by a 1 for
the bias (``b_l = [a_l, 1]``), the block of ``J^T F^T F J`` between layers
``l`` and ``m`` is::

    sum_c kron(b_l[c] b_m[c]^T, D_l[c]^T D_m[c]),

one matrix product of ``(d_l+1)(d_m+1)`` by ``u_l u_m`` values per sample: in
all about ``2 N n^2`` flops instead of the ``2 N q n^2`` of the Jacobian rows.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .products import row_layout, transposed_product

__all__ = ["LayerwiseProducts"]


class LayerwiseProducts:
    """The products with ``F J`` of a ``Dense`` chain, from back-propagated ``F``.

    A base of :class:`~sklearn_lm.engine.dense_chain.DenseChain`, whose
    forward pass (a list of ``_Pass``, one per layer, from
    :meth:`~sklearn_lm.engine.dense_chain.DenseChain.outputs_and_state`) is
    the ``state`` of these methods. It reads the chain's ``layers`` (one
    ``(kernel index, bias index or None, activation name)`` per layer),
    ``variables``, ``shapes``, ``sizes``, ``n_params`` and ``dtype``.
    """

    def structured_width(self) -> int:
        """Values per sample held by :meth:`gauss_newton`'s largest product."""
        dims = [self._dims(pos) for pos in range(len(self.layers))]
        return max(bl * bm + ul * um for bl, ul in dims for bm, um in dims)

    def _dims(self, pos):
        kernel_i, bias_i, _ = self.layers[pos]
        d, u = self.shapes[kernel_i]
        return d + (bias_i is not None), u

    def _deltas(self, trace, f):
        """``D_l = F d(out)/d(pre-activation)`` per layer, ``(N, q, u_l)``.

        ``f`` may also be one cotangent per sample, ``(N, k)``; the
        sensitivities are then ``(N, u_l)``.
        """
        deltas = [None] * len(self.layers)
        delta = tf.cast(f, self.dtype)
        rows = delta.shape.rank == 3
        for pos in range(len(self.layers) - 1, -1, -1):
            layer = trace[pos]
            delta = layer.times_slope(delta)
            deltas[pos] = delta
            if pos > 0 and rows:
                delta = self._back_rows(delta, layer.kernel)
            elif pos > 0:
                delta = tf.matmul(delta, layer.kernel, transpose_b=True)
        return deltas

    @staticmethod
    def _back_rows(delta, kernel):
        """``delta (N, q, u) @ kernel^T`` for ``kernel (i, u)``: ``(N, q, i)``.

        One matrix product over the ``N q`` rows: faster here than a batched
        contraction or, for ``u == 1``, a broadcast product.
        """
        shape = tf.shape(delta)
        flat = tf.matmul(
            tf.reshape(delta, [-1, kernel.shape[1]]), kernel, transpose_b=True
        )
        return tf.reshape(flat, [shape[0], shape[1], kernel.shape[0]])

    def _weight_vector(self, blocks):
        """One ``(n,)`` vector, in the order of the weights, from one
        ``(d_l + 1, u_l)`` block per layer (inputs with the bias row, units)."""
        vec = tf.concat([tf.reshape(block, [-1]) for block in blocks], axis=0)
        index = self._flat_order()
        return vec if index is None else tf.gather(vec, index)

    def _inputs(self, trace):
        """Layer inputs, with a column of ones where the layer has a bias."""
        out = []
        for pos, (_, bias_i, _) in enumerate(self.layers):
            a = trace[pos].inputs
            if trace[pos].augmented is not None:
                a = trace[pos].augmented
            elif bias_i is not None:
                a = tf.concat([a, tf.ones_like(a[:, :1])], axis=1)
            out.append(a)
        return out

    def _flat_order(self):
        """Concatenate per-layer ``[kernel, bias]`` parts in variable order."""
        offsets = np.cumsum([0, *self.sizes])
        order = []
        for kernel_i, bias_i, _ in self.layers:
            for i in (kernel_i, bias_i):
                if i is not None:
                    order.extend(range(offsets[i], offsets[i + 1]))
        index = np.argsort(order)
        return None if np.array_equal(index, np.arange(self.n_params)) else index

    def transpose_times(self, state, f, r):
        """``J^T F^T r`` (float64) for rows ``r (N, q)`` and factor ``F (N, q, k)``.

        ``state`` is the forward pass of :meth:`outputs_and_state`. Sums over
        samples use :func:`~sklearn_lm.engine.products.transposed_product`.
        """
        deltas = self._deltas(state, f)
        r = tf.cast(r, self.dtype)
        inputs = self._inputs(state)
        layout = row_layout(inputs[0])
        return self._weight_vector(
            transposed_product(b, tf.einsum("cqu,cq->cu", d, r), layout)
            for b, d in zip(inputs, deltas, strict=True)
        )

    def gauss_newton_diagonal(self, state, f):
        """``diag(J^T F^T F J)`` (float64, ``(n,)``) without forming ``F J``.

        The entry of input ``i`` and unit ``j`` of a layer is
        ``sum_c b[c, i]**2 sum_r D[c, r, j]**2`` (see :meth:`gauss_newton`):
        one product of ``(N, d + 1)`` by ``(N, u)`` values per layer.
        """
        deltas = self._deltas(state, f)
        inputs = self._inputs(state)
        layout = row_layout(inputs[0])
        return self._weight_vector(
            transposed_product(
                tf.square(b), tf.reduce_sum(tf.square(d), axis=1), layout
            )
            for b, d in zip(inputs, deltas, strict=True)
        )

    def gauss_newton(self, state, f, e):
        """``(J^T F^T F J, J^T F^T e)`` in float64, without forming ``F J``.

        Parameters
        ----------
        state
            The forward pass of :meth:`outputs_and_state`.
        f : tf.Tensor
            ``(N, q, k)`` factor of the loss (rows already weighted).
        e : tf.Tensor
            ``(N, q)`` residuals (weighted).

        Returns
        -------
        tuple of tf.Tensor
            ``(n, n)`` and ``(n,)``, float64, in the order of the weights.
        """
        deltas = self._deltas(state, f)
        inputs = self._inputs(state)
        dims = [self._dims(pos) for pos in range(len(self.layers))]
        n_rows = tf.shape(e)[0]
        layout = row_layout(inputs[0])
        count = len(self.layers)
        rows = [[None] * count for _ in range(count)]
        for lo in range(count):
            for hi in range(lo, count):
                (bl, ul), (bm, um) = dims[lo], dims[hi]
                inner = tf.einsum("cqj,cqk->cjk", deltas[lo], deltas[hi])
                outer = inputs[lo][:, :, None] * inputs[hi][:, None, :]
                prod = transposed_product(
                    tf.reshape(outer, [n_rows, bl * bm]),
                    tf.reshape(inner, [n_rows, ul * um]),
                    layout,
                )
                prod = tf.transpose(tf.reshape(prod, [bl, bm, ul, um]), [0, 2, 1, 3])
                rows[lo][hi] = tf.reshape(prod, [bl * ul, bm * um])
                if hi != lo:
                    rows[hi][lo] = tf.transpose(rows[lo][hi])
        h = tf.concat([tf.concat(row, axis=1) for row in rows], axis=0)
        e = tf.cast(e, self.dtype)
        g = self._weight_vector(
            transposed_product(b, tf.einsum("cqu,cq->cu", d, e), layout)
            for b, d in zip(inputs, deltas, strict=True)
        )
        index = self._flat_order()
        if index is not None:
            h = tf.gather(tf.gather(h, index, axis=0), index, axis=1)
        return h, g

    def _row_blocks(self, trace, f):
        """Blocks of ``F J`` per variable, ``(N, q, size)`` each, in order."""
        deltas = self._deltas(trace, f)
        blocks: list[tf.Tensor | None] = [None] * len(self.variables)
        for pos, (kernel_i, bias_i, _) in enumerate(self.layers):
            delta = deltas[pos]
            a = trace[pos].inputs
            # Static widths where known: fewer shape ops in the graph.
            d, q, u = a.shape[1], delta.shape[1], delta.shape[2]
            if None in (d, q, u):
                block = a[:, None, :, None] * delta[:, :, None, :]
                shape = tf.shape(block)
                blocks[kernel_i] = tf.reshape(block, [shape[0], shape[1], -1])
            else:
                block = tf.reshape(a, [-1, 1, d, 1]) * tf.expand_dims(delta, 2)
                blocks[kernel_i] = tf.reshape(block, [-1, q, d * u])
            if bias_i is not None:
                blocks[bias_i] = delta
        return blocks

    def weighted_rows(self, state, f, e):
        """The rows ``[F J | e]``, ``(N q, n + 1)`` in the model's dtype.

        ``F J`` comes from back-propagating ``F (N, q, k)`` (rows already
        weighted) through the forward pass ``state`` of
        :meth:`outputs_and_state`, so the weights and ``F`` cost a pass over
        ``N q u`` sensitivities rather than over the ``N q n`` rows; the
        residuals ``e (N, q)`` are the last column.
        """
        blocks = self._row_blocks(state, f)
        rows = tf.concat([*blocks, tf.cast(e, self.dtype)[:, :, None]], axis=-1)
        return tf.reshape(rows, [-1, self.n_params + 1])
