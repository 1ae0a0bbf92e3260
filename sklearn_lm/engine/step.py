"""One Levenberg-Marquardt step, compiled into a single TensorFlow graph.

A step is the wiring of two parts, as in optimistix's Levenberg-Marquardt (a
damped-Newton descent and a trust-region search):

* a *system* (:mod:`~sklearn_lm.engine.system`,
  :mod:`~sklearn_lm.engine.cg_system`), built once per batch from the
  batch's linearisation (:mod:`~sklearn_lm.engine.rows`): the normalised
  loss, the gradient ``g``, ``solve(lambda)`` for the damped system
  ``(H + lambda diag(d)) delta = g``, the curvature ``move^T H move`` of a
  move, and the right-hand side of the geodesic acceleration. It is the
  ``n x n`` normal equations (accumulated over chunks of samples, memory
  ``O(n^2 + chunk * q * n)``), their ``(N q) x (N q)`` Gram form when the
  batch has fewer residual rows than weights and no L2 term
  (:func:`~sklearn_lm.engine.system.choose_form`), or conjugate gradients
  on Gauss-Newton-vector products;
* a *search* (:mod:`~sklearn_lm.engine.search`): the attempts, each solving
  for the current ``lambda``, adding the geodesic correction, evaluating
  the trial point and accepting it (``lambda`` decreased) or rejecting it
  (``lambda`` increased) until one is accepted, ``max_attempts`` is reached
  or ``lambda`` is at its maximum. It also gives the step's stop code
  (:func:`~sklearn_lm.engine.search.stop_code`: a non-finite loss, or the
  damping exhausted), an index into
  :data:`~sklearn_lm.engine.status.GRAPH_CODES`.

:meth:`LMStep.epoch` runs the steps of an epoch of mini-batches in one graph
loop, until the last batch or a step's stop code.

The step is a pure function of ``(w, lam, nu, x, y, sample_weight)``; it never
touches Keras variables, so one compiled step serves every model with the same
architecture (see :func:`~sklearn_lm.engine.compile.compiled_step`). Its
variant for updating a model in place reads and writes the variables through
handles that are inputs of the graph, not captured by it, so it is shared in
the same way.
"""

from __future__ import annotations

import tensorflow as tf

from . import bayesian
from .cg_system import CGSystem
from .config import StepConfig
from .functions import ModelFunction
from .memory import (
    CHUNK_BUDGET_BYTES,
    default_chunk_size,
    layerwise_width,
    normal_matrix_bytes,
)
from .rows import Linearization
from .search import Search, StepResult, stop_code
from .system import GramSystem, NormalSystem, System, gram_applies, penalty_diagonal

__all__ = [
    "LMStep",
    # Defined in sklearn_lm.engine.search and sklearn_lm.engine.memory.
    "StepResult",
    "stop_code",
    "CHUNK_BUDGET_BYTES",
    "default_chunk_size",
    "layerwise_width",
    "normal_matrix_bytes",
]

_F64 = tf.float64


class LMStep:
    """Builds the step, objective and epoch functions for one configuration.

    Parameters
    ----------
    fn : ModelFunction
    config : StepConfig
        Every setting of the step; a missing ``chunk_size`` is filled for
        ``fn`` (:meth:`StepConfig.for_model`). ``form`` fixes the system
        (``"auto"`` decides per batch in the graph, a fixed form builds a
        graph half the size); ``chunked=False`` builds a graph without the
        chunk loop, for batches known to fit in one chunk.

    Attributes
    ----------
    rows_per_sample : int
        Residual rows per sample, ``q``.
    output_normaliser : float
        ``c``: the data loss is the weighted sum of losses over ``N c``.
    curvature_scale : float
        ``s``: the loss's Gauss-Newton matrix is ``s Jhat^T Jhat``.
    rows : Linearization
        The batch's linearisation, chunk by chunk.
    search : Search
        The attempt loop.
    """

    def __init__(self, fn: ModelFunction, config: StepConfig):
        config = config.for_model(fn)
        self.fn = fn
        self.config = config
        self.loss = config.loss
        self.damping = config.damping
        self.n_params = fn.n_params
        self.n_outputs = fn.n_outputs
        self.rows_per_sample = self.loss.residuals_per_sample(self.n_outputs)
        self.output_normaliser = self.loss.output_normaliser(self.n_outputs)
        self.curvature_scale = float(self.loss.curvature_scale)
        # Bayesian regularization penalises the hidden biases too.
        mask = bayesian.penalty_mask(fn) if config.bayesian else fn.penalty_mask()
        self.mask = tf.constant(mask, _F64)
        self.rows = Linearization(
            fn,
            self.loss,
            chunk_size=config.chunk_size,
            chunked=config.chunked,
            structured=layerwise_width(fn, self.rows_per_sample) is not None,
        )
        self.search = Search.from_config(config, self.curvature_scale)

    def objective(self, w, x, y, sw, l2=None):
        """Loss (float64) at ``w`` including the L2 term.

        ``x`` may be the model function's prepared inputs
        (:meth:`~sklearn_lm.engine.functions.ModelFunction.prepare_inputs`).
        ``l2``: the L2 strength as a float64 tensor (``config.bayesian``): a
        scalar, or one entry per weight (shape ``(n,)``) with
        ``config.bayesian_groups="layer"``; ``None`` uses the constant
        ``config.l2``.
        """
        norm = tf.cast(tf.shape(y)[0], _F64) * self.output_normaliser
        return self.rows.loss_sum(w, x, y, sw) / norm + self.penalty(w, l2)

    def penalty(self, w, l2=None):
        """The L2 term ``l2 * sum(mask * w**2)``, float64 (``l2`` as in
        :meth:`objective`)."""
        if l2 is None:
            l2 = self.config.l2
            if l2 == 0.0:
                return tf.constant(0.0, _F64)
        w64 = tf.cast(w, _F64)
        if self.config.bayesian_groups != "single":
            # One strength per weight (shape (n,)): groups of weights.
            return tf.reduce_sum(l2 * self.mask * tf.square(w64))
        return l2 * tf.reduce_sum(self.mask * tf.square(w64))

    def normal_matrix(self, w, x, y, sw):
        """``(Jhat^T Jhat, weighted loss sum)`` at ``w``, float64 (no L2 term).

        The normal equations' data part, for the evidence of Bayesian
        regularization (:mod:`~sklearn_lm.engine.bayesian`).
        """
        h, _, loss_sum, _ = self.rows.normal_stats(w, x, y, sw)
        return h, loss_sum

    def system(self, form: str, w, x, y, sw, norm, l2=None) -> System:
        """The damped system of a batch at ``w``.

        Parameters
        ----------
        form : {"normal", "gram", "cg"}
        w, x, y, sw : tf.Tensor
        norm : tf.Tensor
            ``N c``, float64.
        l2 : tf.Tensor, optional
            As in :meth:`objective`.
        """
        if form == "gram":
            return GramSystem(self.rows, self.damping, w, x, y, sw, norm=norm)
        if l2 is None:
            penalty = penalty_diagonal(self.config.l2, self.curvature_scale, self.mask)
        else:
            penalty = 2.0 * l2 / self.curvature_scale * self.mask
        if form == "normal":
            return NormalSystem(
                self.rows, self.damping, w, x, y, sw, norm=norm, penalty=penalty
            )
        return CGSystem(
            self.rows,
            self.damping,
            w,
            x,
            y,
            sw,
            norm=norm,
            penalty=penalty,
            learning_rate=self.config.learning_rate,
            max_iter=self.config.cg_max_iter,
            rtol=self.config.cg_rtol,
        )

    def step(self, w, lam, nu, x, y, sw, l2=None) -> StepResult:
        """One LM step with retries (see the module docstring).

        ``l2``: the L2 strength as a float64 tensor, an input of the graphs
        of Bayesian-regularized steps (``config.bayesian``): a scalar, or
        one entry per weight (shape ``(n,)``) with groups of weights
        (``config.bayesian_groups``); ``None`` (every other step) uses the
        constant ``config.l2``.
        """
        config = self.config
        x, norm = self._prepared(x, y)

        def attempts(form):
            return lambda: self._search(form, w, lam, nu, x, y, sw, norm, l2)[0]

        if config.solver == "cg":
            return attempts("cg")()
        if config.form != "auto":
            return attempts(config.form)()
        n_rows = tf.shape(y)[0]
        use_gram = gram_applies(n_rows, self.rows_per_sample, self.n_params, config.l2)
        if tf.is_tensor(use_gram):
            return tf.cond(use_gram, attempts("gram"), attempts("normal"))
        return attempts("gram" if use_gram else "normal")()

    def step_with_normal(self, w, lam, nu, x, y, sw, l2):
        """:meth:`step` of a Bayesian-regularized fit, with the normal matrix.

        Returns
        -------
        tuple
            ``(result, normal)``: the step's
            :class:`~sklearn_lm.engine.search.StepResult` and the data part
            ``Jhat^T Jhat`` (float64, unnormalised, no L2 term) of the normal
            equations it formed at its starting weights ``w``, which is what
            :meth:`normal_matrix` gives at ``w``: the evidence is re-estimated
            from it without a pass of its own (see
            :meth:`Trainer <sklearn_lm.engine.Trainer>`).
        """
        x, norm = self._prepared(x, y)
        result, system = self._search("normal", w, lam, nu, x, y, sw, norm, l2)
        return result, system.normal

    def _prepared(self, x, y):
        """The inputs prepared once per step (they are evaluated once per
        step and once per attempt) and the loss normaliser ``N c``, float64."""
        if not self.config.chunked:
            x = self.fn.prepare_inputs(x)
        return x, tf.cast(tf.shape(y)[0], _F64) * self.output_normaliser

    def _search(self, form, w, lam, nu, x, y, sw, norm, l2):
        """``(result, system)``: the attempts of one step on the system of
        ``form`` (``"normal"``, ``"gram"`` or ``"cg"``) formed at ``w``."""
        system = self.system(form, w, x, y, sw, norm, l2)
        result = self.search(
            system,
            lambda candidate: self.objective(candidate, x, y, sw, l2),
            w,
            lam,
            nu,
            system.data_loss + self.penalty(w, l2),
        )
        return result, system

    def epoch(self, w, lam, nu, x, y, sw, order, batch_size):
        """Steps over the mini-batches ``order[i*batch_size:(i+1)*batch_size]``.

        The whole epoch runs in the graph. It ends early when a step's stop
        code (:func:`~sklearn_lm.engine.search.stop_code`) is not 0: the loss
        is not finite, or lambda reached its maximum without an accepted step.

        Returns
        -------
        tuple
            ``(weights, lam, nu, losses, attempts, stop)`` with ``losses`` and
            ``attempts`` one entry per step taken and ``stop`` the last
            step's code.
        """
        if self.config.bayesian:
            raise ValueError(
                "bayesian=True needs full-batch steps; mini-batch epochs are "
                "not supported with it. Received: bayesian=True"
            )
        n = tf.shape(order)[0]
        n_batches = (n + batch_size - 1) // batch_size

        def cond(i, w, lam, nu, losses, attempts, stop):
            return tf.logical_and(i < n_batches, tf.equal(stop, 0))

        def body(i, w, lam, nu, losses, attempts, stop):
            idx = order[i * batch_size : tf.minimum((i + 1) * batch_size, n)]
            res = self.step(
                w, lam, nu, tf.gather(x, idx), tf.gather(y, idx), tf.gather(sw, idx)
            )
            return (
                i + 1,
                res.weights,
                res.damping,
                res.nu,
                losses.write(i, res.loss),
                attempts.write(i, res.attempts),
                res.stop,
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
