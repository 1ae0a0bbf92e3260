"""The plain training loop: epochs of LM steps over arrays or a ``tf.data.Dataset``."""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import damping as damping_module
from . import losses as losses_module
from .compile import CompiledStep, batch_layout, compiled_step
from .config import StepConfig
from .jacobian import model_function
from .memory import check_memory, physical_memory_bytes
from .status import from_graph_code

__all__ = ["Trainer", "History", "STOP_MESSAGES"]

#: Why training stopped, in words (``History.stop_reason`` is the key).
STOP_MESSAGES = {
    None: "completed the requested epochs",
    "damping_max": (
        "the damping factor reached its maximum: no step along the damped "
        "Gauss-Newton direction lowers the loss any more"
    ),
    "non_finite": "the loss is not finite at the current weights",
    "callback": "a callback asked to stop",
}

Callback = Callable[[int, dict], Any]


class History:
    """What :meth:`Trainer.fit` did.

    Attributes
    ----------
    history : dict of str to list of float
        Per epoch: ``"loss"`` (mean over the epoch's steps of the training
        objective after each step), ``"damping"`` (lambda at the end of the
        epoch), ``"attempts"`` (mean attempts per step).
    epoch : list of int
        Epoch indices, counted over the trainer's whole life.
    stop_reason : str or None
        A key of :data:`STOP_MESSAGES`.
    n_steps : int
        LM steps taken in this call.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {
            "loss": [],
            "damping": [],
            "attempts": [],
        }
        self.epoch: list[int] = []
        self.stop_reason: str | None = None
        self.n_steps = 0

    @property
    def message(self) -> str:
        """:attr:`stop_reason` in words."""
        return STOP_MESSAGES[self.stop_reason]

    def __repr__(self) -> str:
        last = self.history["loss"][-1] if self.history["loss"] else None
        return (
            f"History(epochs={len(self.epoch)}, steps={self.n_steps}, "
            f"loss={last}, stop_reason={self.stop_reason!r})"
        )


def _check_number(name, value, low, *, integer=False, inclusive=True):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(value):
        ok = False
    else:
        ok = value >= low if inclusive else value > low
    if not ok:
        what = "an integer" if integer else "a finite number"
        sign = ">=" if inclusive else ">"
        raise ValueError(
            f"{name} must be {what} {sign} {low}. Received: {name}={value!r}"
        )
    return value


class Trainer:
    """Train a Keras model with the Levenberg-Marquardt algorithm.

    Parameters
    ----------
    model : keras.Model
        A built model (its weights exist) with one input and one output.
        Its weights are updated in place.
    loss : str or losses.Loss, default="mse"
        See :func:`sklearn_lm.engine.losses.get`.
    damping : str or damping.Damping, default="standard"
        See :func:`sklearn_lm.engine.damping.get`.
    learning_rate : float, default=1.0
        Fraction of the LM step taken (``w - learning_rate * delta``).
    max_attempts : int, default=10
        Damping retries per step before the step is given up.
    l2 : float, default=0.0
        L2 penalty ``l2 * sum(W**2)`` over kernels (variables with two or more
        dimensions); biases are not penalised.
    jacobian : {"auto", "dense", "reverse", "forward"}, default="auto"
        How Jacobians are computed (:func:`~sklearn_lm.engine.jacobian.model_function`).
    chunk_size : int, optional
        Samples per chunk when accumulating the normal equations. By default
        chosen so that a chunk's Jacobian rows (or, for the layer-by-layer
        products of ``Dense`` chains, their temporaries) hold about 128 MiB.
    memory_limit : int, optional
        Bytes the float64 normal equations may use (``24 * n**2``); by default
        half of the physical memory. Exceeding it raises ``ValueError`` before
        anything is allocated.
    geodesic : bool, default=True
        Geodesic acceleration (Transtrum and Sethna): each attempt adds the
        second-order correction ``a / 2`` to the LM velocity ``v``, where
        ``a`` solves the same damped system for the second directional
        derivative of the residuals along ``v`` (computed exactly: in closed
        form for chains of ``Dense`` layers, by automatic differentiation
        otherwise). It costs a few extra forward passes
        and one gradient per attempt, and usually cuts the number of steps
        several times on curved problems. See :mod:`sklearn_lm.engine.step`.
    geodesic_ratio : float, default=0.75
        The acceleration is used only when ``2 |a| / |v|`` is at most this.
    solver : {"direct", "cg"}, default="direct"
        How each damped system is solved. ``"direct"`` forms it in float64
        (the ``n x n`` normal equations, or the Gram form for batches with
        fewer residuals than weights) and factors it by Cholesky: exact, with
        ``O(n**3)`` work per attempt and ``24 n**2`` bytes. ``"cg"`` runs at
        most ``cg_max_iter`` iterations of conjugate
        gradients on Gauss-Newton-vector products, each about one forward and
        one backward pass over the batch: no ``n x n`` matrix, no Jacobian
        rows, memory ``O(N)`` activations plus ``O(n)`` vectors -- the choice
        for networks with thousands of weights, where factoring dominates
        (see :func:`~sklearn_lm.engine.solve.cg_solver`). Its steps are
        shorter than exact LM steps, so it may take more of them. Precision:
        the iteration's vectors, the gradient and the loss are float64; the
        products ``J v`` and ``J^T u`` inside the iterations run in the
        model's dtype (their sums over samples too), the loss curvature
        between them in float64 where the loss has a closed form
        (:meth:`~sklearn_lm.engine.losses.Loss.curvature_times`), else in
        the model's dtype.
    cg_max_iter : int, default=5
        Most conjugate-gradient iterations per solve (``solver="cg"``).
    cg_rtol : float, default=1e-3
        Conjugate gradients stop once the residual norm is at most this times
        the right-hand side's (``solver="cg"``).

    Notes
    -----
    Jacobians are computed in the model's dtype (float32 or float64); the
    normal equations, their solve, the loss and lambda are float64. Memory of
    a step grows with ``24 n**2 + chunk_size * q * n * (8 + itemsize)`` bytes
    for ``n`` weights and ``q`` residuals per sample, independent of the
    number of samples; the real footprint is a small multiple of the chunk
    term (temporaries of the same size, the activations of one chunk), about
    4 times it for a 1-20-1 network on 10**6 samples.

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
    """

    def __init__(
        self,
        model: keras.Model,
        loss: str | losses_module.Loss = "mse",
        damping: str | damping_module.Damping = "standard",
        *,
        learning_rate: float = 1.0,
        max_attempts: int = 10,
        l2: float = 0.0,
        jacobian: str = "auto",
        chunk_size: int | None = None,
        memory_limit: int | None = None,
        geodesic: bool = True,
        geodesic_ratio: float = 0.75,
        solver: str = "direct",
        cg_max_iter: int = 5,
        cg_rtol: float = 1e-3,
    ):
        self.model = model
        config = StepConfig(
            loss=loss,
            damping=damping,
            learning_rate=learning_rate,
            max_attempts=max_attempts,
            l2=l2,
            solver=solver,
            chunk_size=chunk_size,
            geodesic=geodesic,
            geodesic_ratio=geodesic_ratio,
            cg_max_iter=cg_max_iter,
            cg_rtol=cg_rtol,
        )
        self.fn = model_function(model, jacobian)
        #: The step's settings (:class:`~sklearn_lm.engine.config.StepConfig`).
        self.config = config.for_model(self.fn)
        self.memory_limit = memory_limit or physical_memory_bytes() // 2
        self._lam = tf.constant(self.damping.initial, tf.float64)
        self._nu = tf.constant(2.0, tf.float64)
        self._epochs_done = 0
        self._compiled: dict = {}
        # The last tensors given to train_step and their conversion (_prepare).
        self._last_prepared: list = []

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

    def reset_damping(self) -> None:
        """Set lambda back to the damping strategy's initial value."""
        self._lam = tf.constant(self.damping.initial, tf.float64)
        self._nu = tf.constant(2.0, tf.float64)

    # -- data --------------------------------------------------------------------
    def _x_dtype(self):
        if hasattr(self.fn, "layers"):
            return self.fn.dtype
        return tf.as_dtype(self.model.inputs[0].dtype)

    def _prepare_cached(self, x, y, sample_weight):
        """:meth:`_prepare`, reused while the same tensors come back.

        Tensors are immutable, so ``train_step`` called in a loop on the same
        ``x``, ``y`` (and ``sample_weight``) converts them once. The entry is
        dropped as soon as one of them is garbage collected; arrays, which
        can change in place, are converted on every call.
        """
        given = (x, y, sample_weight)
        if not all(v is None or isinstance(v, tf.Tensor) for v in given) or not (
            tf.executing_eagerly()
        ):
            return self._prepare(x, y, sample_weight)
        if self._last_prepared:
            refs, prepared = self._last_prepared[0]
            if all(
                (r is None and v is None) or (r is not None and r() is v)
                for r, v in zip(refs, given, strict=True)
            ):
                return prepared
        prepared = self._prepare(x, y, sample_weight)
        holder = self._last_prepared
        holder.clear()

        def drop(_, holder=holder):
            holder.clear()

        refs = tuple(None if v is None else weakref.ref(v, drop) for v in given)
        holder.append((refs, prepared))
        return prepared

    def _prepare(self, x, y, sample_weight):
        x = tf.convert_to_tensor(x)
        if x.dtype != self._x_dtype():
            x = tf.cast(x, self._x_dtype())
        n = int(x.shape[0])
        if y is None:
            raise ValueError("y is required when x is an array. Received: y=None")
        y = self.loss.prepare_targets(y)
        if not self.loss.sparse_targets:
            k = self.fn.n_outputs
            if y.shape.rank == 1:
                y = tf.reshape(y, [-1, 1])
            if int(y.shape[-1]) != k:
                raise ValueError(
                    f"y must have {k} columns (the model's outputs). "
                    f"Received: y.shape={tuple(y.shape)}"
                )
        if int(y.shape[0]) != n:
            raise ValueError(
                "x and y must have the same number of samples. Received: "
                f"x.shape[0]={n}, y.shape[0]={int(y.shape[0])}"
            )
        if sample_weight is None:
            sw = tf.ones([n], tf.float64)
        else:
            sw = tf.reshape(
                tf.cast(tf.convert_to_tensor(sample_weight), tf.float64), [-1]
            )
            if int(sw.shape[0]) != n:
                raise ValueError(
                    f"sample_weight must have one entry per sample ({n}). "
                    f"Received: sample_weight.shape={tuple(sw.shape)}"
                )
        return x, y, sw

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
    def _run_step(self, x, y, sw, w):
        """One compiled step from weights ``w``; the model is not written."""
        step = self._functions(x, y).step
        res = step(w, self._lam, self._nu, x, y, sw)
        self._lam, self._nu = res.damping, res.nu
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
        res = step(self._lam, self._nu, x, y, sw, *handles)
        self._lam, self._nu = res.damping, res.nu
        return res

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
        value = float(objective(self.fn.get_weights(), x, y, sw))
        l2 = self.config.l2
        if l2:
            w = self.fn.get_weights().numpy().astype(np.float64)
            value -= l2 * float(np.sum(self.fn.penalty_mask() * w * w))
        return value

    # -- epochs ------------------------------------------------------------------
    def fit(
        self,
        x,
        y=None,
        *,
        epochs: int = 1,
        batch_size: int | None = None,
        sample_weight=None,
        shuffle: bool = True,
        seed: int | None = None,
        callbacks: Iterable[Callback] | None = None,
        verbose: int = 0,
    ) -> History:
        """Train for ``epochs`` passes over the data.

        Parameters
        ----------
        x : array-like, tf.data.Dataset, keras.utils.PyDataset or callable
            Inputs; or a source of ``(x, y)`` or ``(x, y, sample_weight)``
            batches: a ``tf.data.Dataset``, a ``keras.utils.PyDataset``, or a
            function returning a fresh iterable of batches for each epoch (for
            example a generator function), for data that does not fit in
            memory. With a source of batches, ``y``, ``batch_size`` and
            ``sample_weight`` must be left at their defaults.
        y : array-like, optional
            Targets (see the loss for the expected layout).
        epochs : int, default=1
        batch_size : int, optional
            Samples per step; ``None`` means the whole data set (full batch).
        sample_weight : array-like of shape (n_samples,), optional
        shuffle : bool, default=True
            Shuffle samples before each epoch (mini-batches only).
        seed : int, optional
            Seed of the shuffling.
        callbacks : list of callables, optional
            Each is called as ``callback(epoch, logs)`` after every epoch;
            returning ``True`` stops training.
        verbose : int, default=0
            ``1`` prints one line per epoch.

        Returns
        -------
        History
        """
        _check_number("epochs", epochs, 0, integer=True)
        callbacks = list(callbacks or [])
        is_dataset = _is_stream(x)
        if is_dataset:
            if y is not None or sample_weight is not None or batch_size is not None:
                raise ValueError(
                    "With a dataset or a generator, pass batches of (x, y) or "
                    "(x, y, sample_weight) in the dataset itself. Received: "
                    f"y={type(y).__name__}, batch_size={batch_size!r}, "
                    f"sample_weight={type(sample_weight).__name__}"
                )
        else:
            xt, yt, swt = self._prepare(x, y, sample_weight)
            n = int(xt.shape[0])
            if n == 0:
                raise ValueError("x must contain at least one sample. Received: 0")
            if batch_size is not None:
                _check_number("batch_size", batch_size, 1, integer=True)
            size = n if batch_size is None else min(int(batch_size), n)
            self._check_memory(size)
        rng = np.random.default_rng(seed)
        history = History()
        # Steps on whole batches read and write the model's variables inside
        # their graphs (w is None). Otherwise (mini-batch epochs over arrays,
        # or variables that are not plain TensorFlow ones) the weights stay a
        # tensor during an epoch and are written back at its end (before
        # callbacks see the model).
        in_place = self.fn.variable_handles() is not None and (is_dataset or size >= n)
        w = None if in_place else self.fn.get_weights()
        for _ in range(epochs):
            if is_dataset:
                w, losses, attempts, stop = self._dataset_epoch(x, w)
            elif size >= n:
                w, losses, attempts, stop = self._steps([(xt, yt, swt)], w)
            else:
                w, losses, attempts, stop = self._array_epoch(
                    xt, yt, swt, size, shuffle, rng, w
                )
            steps = len(losses)
            history.n_steps += steps
            if not in_place:
                self.fn.set_weights(w)
            if steps == 0 and stop is None:
                raise ValueError("The dataset yielded no batches.")
            finite = [v for v in losses if np.isfinite(v)]
            logs = {
                "loss": float(np.mean(finite)) if finite else float("nan"),
                "damping": self.damping_value,
                "attempts": float(np.mean(attempts)) if steps else 0.0,
                "steps": steps,
            }
            history.epoch.append(self._epochs_done)
            for name in ("loss", "damping", "attempts"):
                history.history[name].append(logs[name])
            if verbose:
                print(
                    f"Epoch {self._epochs_done + 1}: loss={logs['loss']:.6g} "
                    f"damping={logs['damping']:.3g} attempts={logs['attempts']:.2f}",
                    flush=True,
                )
            self._epochs_done += 1
            if any([bool(cb(self._epochs_done - 1, logs)) for cb in callbacks]):
                stop = stop or "callback"
            if stop is not None:
                history.stop_reason = stop
                break
        return history

    def _steps(self, batches, w):
        """Run compiled steps over ``batches``: ``(w, losses, attempts, stop)``.

        ``w`` None: the model's variables hold the weights and every step
        updates them (``w`` stays None).
        """
        losses, attempts = [], []
        handles = self.fn.variable_handles() if w is None else None
        for xb, yb, swb in batches:
            if handles is None:
                res = self._run_step(xb, yb, swb, w)
                w = res.weights
            else:
                res = self._step_in_place(xb, yb, swb, handles)
            losses.append(float(res.loss))
            attempts.append(int(res.attempts))
            stop = from_graph_code(res.stop)
            if stop is not None:
                return w, losses, attempts, stop.value
        return w, losses, attempts, None

    def _array_epoch(self, x, y, sw, size, shuffle, rng, w):
        """One epoch of mini-batches, compiled as a single graph."""
        n = int(x.shape[0])
        order = rng.permutation(n) if shuffle else np.arange(n)
        last = n % size or size
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
        stop = from_graph_code(stop)
        stop = None if stop is None else stop.value
        return w, losses.numpy().tolist(), attempts.numpy().tolist(), stop

    def _dataset_epoch(self, dataset, w):
        result = self._steps(self._dataset_batches(_epoch_batches(dataset)), w)
        if isinstance(dataset, keras.utils.PyDataset):
            dataset.on_epoch_end()
        return result

    def _dataset_batches(self, batches):
        checked = False
        for element in batches:
            if not isinstance(element, tuple | list) or len(element) not in (2, 3):
                raise ValueError(
                    "A dataset or generator for Trainer.fit must yield (x, y) or "
                    f"(x, y, sample_weight) tuples. Received: {type(element).__name__}"
                )
            xb, yb, swb = (
                self._prepare(*element)
                if len(element) == 3
                else (self._prepare(element[0], element[1], None))
            )
            if not checked:
                self._check_memory(int(xb.shape[0]))
                checked = True
            yield xb, yb, swb


def _is_stream(x) -> bool:
    """Whether ``x`` is a source of batches rather than an array."""
    return isinstance(x, tf.data.Dataset | keras.utils.PyDataset) or callable(x)


def _epoch_batches(source):
    """The batches of one epoch from a dataset, a PyDataset or a generator function."""
    if isinstance(source, keras.utils.PyDataset):
        return (source[i] for i in range(len(source)))
    if isinstance(source, tf.data.Dataset):
        return iter(source)
    return iter(source())
