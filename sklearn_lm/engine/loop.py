"""The plain training loop: epochs of LM steps over arrays or a ``tf.data.Dataset``.

:class:`Trainer` runs the compiled steps; its ``fit`` is the epoch loop of
:mod:`sklearn_lm.engine.epochs`, with the stopping rules of
:mod:`sklearn_lm.engine.stopping` and the record of
:mod:`sklearn_lm.engine.history`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import covariance, data
from . import damping as damping_module
from . import history as history_module
from . import losses as losses_module
from .bayesian import BayesianRegularization
from .compile import CompiledStep, batch_layout, compiled_step
from .config import StepConfig
from .dense_chain import model_function
from .epochs import EpochLoop
from .history import TrainingHistory
from .memory import check_memory, physical_memory_bytes
from .status import from_graph_code

__all__ = ["Trainer", "TrainingHistory"]


def __getattr__(name: str) -> Any:
    return history_module.deprecated_attribute(__name__, name)


class Trainer(EpochLoop):
    """Train a Keras model with the Levenberg-Marquardt algorithm.

    Parameters
    ----------
    model : keras.Model
        A built model (its weights exist) with one input and one output
        tensor: functional, ``Sequential`` or subclassed (see
        :func:`~sklearn_lm.engine.signature.model_signature`). Its weights
        are updated in place. Inputs are cast to the dtype the model
        declares for its input (``keras.Input(dtype=...)``; for a subclassed
        model, its own dtype policy), never to Keras' global ``floatx``: a
        float64 model keeps float64 data at full precision, and float64 data
        given to a float32 model is cast to float32. A model with several
        inputs or outputs raises ``ValueError``.
    loss : str or losses.Loss, default="mse"
        See :func:`sklearn_lm.engine.losses.get`.
    damping : str or damping.Damping, default="standard"
        The damping strategy; see :func:`sklearn_lm.engine.damping.get`. The
        estimators' ``damping`` is its initial lambda (``Damping.initial``).
    jacobian : {"auto", "dense", "reverse", "forward"}, default="auto"
        How Jacobians are computed
        (:func:`~sklearn_lm.engine.dense_chain.model_function`).
    memory_limit : int, optional
        Bytes the float64 normal equations may use (``24 * n**2``); by default
        half of the physical memory. Exceeding it raises ``ValueError`` before
        anything is allocated.
    **step_options
        Fields of :class:`~sklearn_lm.engine.config.StepConfig`, documented
        there: ``learning_rate`` (1.0), ``max_attempts`` (10), ``l2`` (0.0;
        the estimators' ``alpha``), ``solver`` (``"direct"`` or ``"cg"``),
        ``chunk_size`` (by default the two chunks processed at once hold
        at most 128 MiB), ``geodesic`` (True), ``geodesic_ratio`` (0.75),
        ``cg_max_iter`` (5), ``cg_rtol`` (1e-3); ``form`` and ``chunked`` are
        best left to the trainer, which chooses them from the batch sizes.
        An unknown name raises ``TypeError``. ``bayesian=True`` turns on
        Bayesian regularization (:mod:`sklearn_lm.engine.bayesian`): full
        batches of arrays only (``fit`` with ``batch_size=None``);
        ``bayesian_groups="layer"`` gives each layer's kernel and each
        hidden bias vector its own precision.

    Attributes
    ----------
    config : StepConfig
        The validated step settings.
    fn : ModelFunction
        The model as a function of one flat weight vector.
    bayesian : BayesianRegularization or None
        With ``bayesian=True``: the hyperparameters (``alpha``, ``beta``,
        ``noise_variance``, ``gamma``, ``log_evidence``) after the latest
        accepted step, float64; recorded per epoch in the history (without
        ``beta`` and ``noise_variance`` for the cross-entropies, whose
        ``beta`` is 1). With ``bayesian_groups="layer"``, ``alpha`` is an
        array (one per group) recorded as ``alpha_0``, ``alpha_1``, ...
        Else ``None``.

    Notes
    -----
    Jacobians are computed in the model's dtype (float32 or float64); the
    normal equations, their solve, the loss and lambda are float64. A direct
    step on ``N`` samples holds at most about

    ``24 n**2 + 2 * c * 2 * q * (n + 1) * itemsize``
    ``+ N * (d * itemsize + 8 * (k + 1))``

    bytes (:func:`~sklearn_lm.engine.memory.step_memory_bytes`) for ``n``
    weights, ``q`` residuals per sample, ``d`` inputs and ``k`` outputs: the
    float64 normal equations; two chunks of ``c = min(N, chunk_size)``
    samples at once, each with its rows ``[F J | e]`` in the model's dtype and
    one array of their size; the data as the step reads them (inputs in the
    model's dtype, targets and sample weights in float64). With the default
    ``chunk_size`` the chunk term is at most 128 MiB whatever ``N``; the
    process's peak above its baseline measures 1.3 to 1.5 times the bound
    for a 1-20-1 network on 10**6 samples (``benchmarks/bench_memory.py``;
    the rest is the allocator's pool of freed blocks).

    Examples
    --------
    >>> import numpy as np, keras
    >>> from sklearn_lm.engine import Trainer
    >>> x = np.linspace(-1, 1, 200)[:, None]
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"),
    ...                           keras.layers.Dense(1)])
    >>> history = Trainer(model, loss="mse").fit(x, x**2, epochs=20)
    >>> history.history["loss"][-1] < 1e-3
    True
    >>> history.stop_reason
    <Status.MAX_EPOCHS: 'max_epochs'>
    """

    def __init__(
        self,
        model: keras.Model,
        loss: str | losses_module.Loss = "mse",
        damping: str | damping_module.Damping = "standard",
        *,
        jacobian: str = "auto",
        memory_limit: int | None = None,
        **step_options: Any,
    ):
        self.model = model
        self.fn = model_function(model, jacobian)
        #: The step's settings (:class:`~sklearn_lm.engine.config.StepConfig`).
        self.config = StepConfig.from_options(loss, damping, step_options).for_model(
            self.fn
        )
        self.memory_limit = memory_limit or physical_memory_bytes() // 2
        self.bayesian = (
            BayesianRegularization.for_model(
                self.fn, self.loss, self.config.bayesian_groups
            )
            if self.config.bayesian
            else None
        )
        self._lam = tf.constant(self.damping.initial, tf.float64)
        self._nu = tf.constant(2.0, tf.float64)
        self._epochs_done = 0
        self._compiled: dict = {}
        # The last tensors given to train_step and their conversion (_prepare).
        self._last_prepared = data.LastConverted()
        # The batch of the latest re-estimation of Bayesian regularization.
        self._evidence_data: tuple | None = None

    # -- state -------------------------------------------------------------------
    @property
    def loss(self) -> losses_module.Loss:
        """The loss (``config.loss``)."""
        return self.config.loss

    @property
    def damping(self) -> damping_module.Damping:
        """The damping strategy (``config.damping``)."""
        return self.config.damping

    @property
    def chunk_size(self) -> int:
        """Samples per chunk of the normal equations (``config.chunk_size``)."""
        return self.config.chunk_size

    @property
    def damping_value(self) -> float:
        """The current damping factor lambda."""
        return float(self._lam)

    # -- data --------------------------------------------------------------------
    def _x_dtype(self):
        return self.fn.input_dtype

    def _prepare_cached(self, x, y, sample_weight):
        """:meth:`_prepare`, reused while the same tensors come back
        (:class:`~sklearn_lm.engine.data.LastConverted`)."""
        return self._last_prepared((x, y, sample_weight), self._prepare)

    def _prepare(self, x, y, sample_weight):
        return data.prepare(
            x,
            y,
            sample_weight,
            x_dtype=self._x_dtype(),
            loss=self.loss,
            n_outputs=self.fn.n_outputs,
        )

    def _functions(self, x, y, batch_rows=None) -> CompiledStep:
        """Compiled functions for data like ``(x, y)`` in batches of ``batch_rows``.

        ``batch_rows`` lists the batch sizes that will be used (default: all of
        ``x``); it decides, outside the graph, whether the chunk loop is needed
        and which formulation to solve, so the graph holds only what is used.
        """
        x_spec = tf.TensorSpec([None, *x.shape[1:]], x.dtype)
        y_spec = tf.TensorSpec([None, *y.shape[1:]], y.dtype)
        layout = batch_layout(self.fn, self.config, batch_rows or [int(x.shape[0])])
        key = (x_spec, y_spec, *layout)
        if key not in self._compiled:
            chunked, form = layout
            self._compiled[key] = compiled_step(
                self.fn, self.config.replace(chunked=chunked, form=form), x_spec, y_spec
            )
        return self._compiled[key]

    def _check_memory(self, batch_rows: int) -> None:
        check_memory(self.fn, self.config, batch_rows, self.memory_limit)

    # -- one step ----------------------------------------------------------------
    def _run_step(self, x, y, sw, w, batch_rows=None):
        """One compiled step from weights ``w``; the model is not written.

        ``batch_rows``: the batch sizes the compiled functions are chosen for
        (see :meth:`_functions`; default: this batch's).
        """
        step = self._functions(x, y, batch_rows).step
        l2 = self._l2_input(x, y, sw, w)
        res, normal = self._split(step(w, self._lam, self._nu, x, y, sw, *l2))
        self._lam, self._nu = res.damping, res.nu
        self._after_step(x, y, sw, res, l2, normal)
        return res

    def train_step(self, x, y, sample_weight=None) -> dict[str, Any]:
        """Take one LM step on one batch.

        The compiled step reads the model's weights and writes the new ones
        itself (for plain TensorFlow variables), so a loop of ``train_step``
        costs one graph call per step. Tensors passed again unchanged (the
        same ``tf.Tensor`` objects) are converted once; arrays are converted
        at every call.

        Parameters
        ----------
        x : array-like or tf.Tensor
            Inputs of the batch.
        y : array-like or tf.Tensor
            Targets (see the loss for the expected layout).
        sample_weight : array-like or tf.Tensor of shape (n_samples,), optional

        Returns
        -------
        dict
            ``loss`` (objective after the step; before it if rejected),
            ``initial_loss``, ``damping`` (lambda after the step),
            ``attempts`` and ``accepted``.
        """
        if self.bayesian is not None:
            raise ValueError(
                "Trainer.train_step does not support bayesian=True (its "
                "hyperparameters are estimated over full batches); use "
                "Trainer.fit with batch_size=None. Received: bayesian=True"
            )
        x, y, sw = self._prepare_cached(x, y, sample_weight)
        self._check_memory(int(x.shape[0]))
        handles = self.fn.variable_handles()
        if handles is None:
            res = self._run_step(x, y, sw, self.fn.get_weights())
            if bool(res.accepted):
                self.fn.set_weights(res.weights)
        else:
            res = self._step_in_place(x, y, sw, handles)
        return self._step_logs(res)

    def _step_in_place(self, x, y, sw, handles):
        """One compiled step that reads and writes the model's variables
        (through ``handles``, see ``ModelFunction.variable_handles``)."""
        step = self._functions(x, y).step_variables
        l2 = self._l2_input(x, y, sw, None)
        res, normal = self._split(step(self._lam, self._nu, x, y, sw, *l2, *handles))
        self._lam, self._nu = res.damping, res.nu
        self._after_step(x, y, sw, res, l2, normal)
        return res

    def _split(self, out):
        """``(result, normal)`` of a compiled step's output (``normal`` None
        without Bayesian regularization)."""
        return out if self.bayesian is not None else (out, None)

    # -- Bayesian regularization -------------------------------------------------
    def _l2_input(self, x, y, sw, w) -> tuple:
        """``()``, or ``(l2,)``: the current L2 strength as a graph input
        (Bayesian regularization; started before the first step): a float64
        scalar, or one entry per weight with ``bayesian_groups="layer"``."""
        if self.bayesian is None:
            return ()
        n_rows = int(x.shape[0])
        if not self.bayesian.started:
            w = self.fn.get_weights() if w is None else w
            objective = self._functions(x, y).objective
            zero = tf.constant(0.0, tf.float64)
            norm = n_rows * self.loss.output_normaliser(self.fn.n_outputs)
            loss_sum = float(objective(w, x, y, sw, zero)) * norm
            self.bayesian.start(loss_sum, w.numpy(), n_rows)
        return (tf.constant(self.bayesian.l2(n_rows), tf.float64),)

    def _after_step(self, x, y, sw, res, l2, normal) -> None:
        """Re-estimate the hyperparameters after an accepted step.

        ``E_D`` and ``E_W`` are those at the step's new weights
        (``res.weights``), ``E_D`` from the step's objective less its L2 term;
        the normal matrix is the one the step formed at its starting weights
        (``normal``), as MATLAB's ``trainbr`` does: no pass of its own. The
        fixed point is the same, and :meth:`_after_fit` makes the final
        values exact at the final weights.
        """
        if self.bayesian is None or not bool(res.accepted):
            return
        w = res.weights.numpy()  # the accepted weights, also in the variables
        w64 = w.astype(np.float64)
        penalty = float(np.sum(l2[0].numpy() * self.bayesian.mask * w64 * w64))
        norm = int(x.shape[0]) * self.loss.output_normaliser(self.fn.n_outputs)
        loss_sum = (float(res.loss) - penalty) * norm
        self.bayesian.update(normal.numpy(), loss_sum, w)
        self._evidence_data = (x, y, sw)

    def _after_fit(self, history: TrainingHistory) -> None:
        """Bayesian regularization: redo the latest re-estimation with the
        normal matrix at the final weights, so that ``alpha``, ``beta``,
        ``gamma``, the log evidence and the posterior (``bayesian.normal``)
        are those of the weights the model holds; the history's last record
        takes these values."""
        batch = self._evidence_data
        if self.bayesian is None or batch is None:
            return
        self._evidence_data = None
        x, y, sw = batch
        w = self.fn.get_weights()
        normal, loss_sum = self._functions(x, y).normal(w, x, y, sw)
        self.bayesian.refresh(normal.numpy(), float(loss_sum), w.numpy())
        for name, value in self.bayesian.logs().items():
            column = history.history.get(name)
            if column:
                column[-1] = value

    @property
    def _full_batch_only(self) -> bool:
        return self.bayesian is not None

    def _epoch_logs(self) -> dict[str, float]:
        return {} if self.bayesian is None else self.bayesian.logs()

    @staticmethod
    def _step_logs(res) -> dict[str, Any]:
        return {
            "loss": float(res.loss),
            "initial_loss": float(res.initial_loss),
            "damping": float(res.damping),
            "attempts": int(res.attempts),
            "accepted": bool(res.accepted),
        }

    def evaluate(self, x, y, sample_weight=None) -> float:
        """Loss of the model on ``(x, y)`` (without the L2 term), float64."""
        x, y, sw = self._prepare(x, y, sample_weight)
        objective = self._functions(x, y).objective
        if self.bayesian is not None:
            zero = tf.constant(0.0, tf.float64)
            return float(objective(self.fn.get_weights(), x, y, sw, zero))
        value = float(objective(self.fn.get_weights(), x, y, sw))
        l2 = self.config.l2
        if l2:
            w = self.fn.get_weights().numpy().astype(np.float64)
            value -= l2 * float(np.sum(self.fn.penalty_mask() * w * w))
        return value

    def parameter_covariance(
        self, x, y, sample_weight=None, *, absolute_sigma: bool = False
    ) -> covariance.ParameterCovariance:
        r"""Covariance of the weights at their current values, as ``curve_fit``.

        ``sigma^2 (J^T W J)^{-1}`` with ``sigma^2 = SSR / (m - n)`` for ``m``
        residuals and ``n`` weights (1 with ``absolute_sigma``, when the
        sample weights are ``1 / sigma_i^2``), and per-weight standard errors
        ``sqrt(diag)``; all ``inf`` with a
        :class:`~sklearn_lm.engine.covariance.CovarianceWarning` when
        ``J^T W J`` is singular. See
        :func:`~sklearn_lm.engine.covariance.parameter_covariance`.

        Parameters
        ----------
        x, y : array-like
            The data the weights were fitted on.
        sample_weight : array-like of shape (n_samples,), optional
        absolute_sigma : bool, default=False

        Returns
        -------
        ParameterCovariance
            ``covariance``, ``standard_errors``, ``sigma2``, ``ssr``, ``dof``.
        """
        return covariance.parameter_covariance(
            self.fn,
            self.loss,
            x,
            y,
            sample_weight,
            absolute_sigma=absolute_sigma,
            chunk_size=self.config.chunk_size,
        )

    # -- the steps of an epoch (for EpochLoop.fit) ---------------------------------
    def _steps(self, batches, w, on_step=None, batch_rows=None):
        """Run compiled steps over ``batches``: ``(w, losses, attempts, status, last)``

        with ``last`` the last step's
        :class:`~sklearn_lm.engine.search.StepResult`.

        ``w`` None: the model's variables hold the weights and every step
        updates them (``w`` stays None). ``on_step(index, logs)`` gets each
        step's logs (:meth:`train_step`'s).
        """
        losses, attempts, res = [], [], None
        handles = self.fn.variable_handles() if w is None else None
        for index, (xb, yb, swb) in enumerate(batches):
            if handles is None:
                res = self._run_step(xb, yb, swb, w, batch_rows)
                w = res.weights
            else:
                res = self._step_in_place(xb, yb, swb, handles)
            losses.append(float(res.loss))
            attempts.append(int(res.attempts))
            if on_step is not None:
                on_step(index, self._step_logs(res))
            status = from_graph_code(res.stop)
            if status is not None:
                return w, losses, attempts, status, res
        return w, losses, attempts, None, res

    def _array_epoch(self, x, y, sw, size, shuffle, rng, w, on_step=None):
        """One epoch of mini-batches, compiled as a single graph; with
        ``on_step``, one compiled step per batch (the same batches)."""
        n = int(x.shape[0])
        order = rng.permutation(n) if shuffle else np.arange(n)
        last = n % size or size
        if on_step is not None:
            batches = (
                tuple(tf.gather(t, order[i : i + size]) for t in (x, y, sw))
                for i in range(0, n, size)
            )
            return self._steps(batches, w, on_step, batch_rows=[size, last])
        epoch = self._functions(x, y, [size, last]).epoch
        w, self._lam, self._nu, losses, attempts, stop = epoch(
            w,
            self._lam,
            self._nu,
            x,
            y,
            sw,
            tf.constant(order, tf.int32),
            tf.constant(size, tf.int32),
        )
        status = from_graph_code(stop)
        return w, losses.numpy().tolist(), attempts.numpy().tolist(), status, None
