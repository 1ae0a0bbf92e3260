"""Compiled step functions, shared between fits of same-shaped models.

:func:`compiled_step` turns an :class:`~sklearn_lm.engine.step.LMStep` into
``tf.function`` graphs with fixed input signatures, called directly through
their concrete functions (:class:`_Concrete`), and caches them by the model
function's key and the step configuration: repeated fits of same-shaped
networks (grid search, cross-validation, warm restarts) trace once.
:func:`batch_layout` decides, outside the graph, what the graph must hold
for the batch sizes a fit will use.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import NamedTuple

import tensorflow as tf

from . import _call_options, step_cache
from .config import StepConfig
from .functions import ModelFunction
from .step import LMStep
from .system import choose_form

__all__ = ["CompiledStep", "batch_layout", "compiled_step"]

_F64 = tf.float64
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 32


class _Concrete:
    """A ``tf.function`` with an input signature, called through its graph.

    Calling the one concrete function directly skips the signature matching of
    ``tf.function`` (about half a millisecond per call here); it is traced on
    the first call, not before. Arguments must be tensors of the signature's
    dtypes. Calls skip Grappler's graph rewrites
    (:mod:`sklearn_lm.engine._call_options`).

    With a ``disk_key`` (see :func:`~sklearn_lm.engine.step_cache.entry_key`),
    the first call looks the graph up in the on-disk cache
    (:mod:`~sklearn_lm.engine.step_cache`) before tracing it, and stores
    what it traced there.
    """

    __slots__ = ("function", "_concrete", "_disk_key")

    def __init__(self, function, disk_key=None):
        self.function = function
        self._concrete = None
        # A callable giving the key (computed on the first call), or None.
        self._disk_key = disk_key

    def __call__(self, *args):
        if self._concrete is None:
            key = self._disk_key() if self._disk_key is not None else None
            if key is not None:
                loaded = step_cache.load(key, self.function.input_signature)
                if loaded is not None:
                    try:
                        out = _call_options.call(loaded, args)
                    except Exception:  # noqa: BLE001 - fall back to a trace
                        key = None
                    else:
                        self._concrete = loaded
                        return out
            self._concrete = self.function.get_concrete_function()
            if key is not None:
                step_cache.save(key, self._concrete)
        return _call_options.call(self._concrete, args)


class CompiledStep(NamedTuple):
    """The compiled functions of one step configuration.

    Each is called with positional tensors of its signature's dtypes.

    Attributes
    ----------
    step : callable
        :meth:`LMStep.step`: ``step(w, lam, nu, x, y, sample_weight)`` returns
        a :class:`~sklearn_lm.engine.step.StepResult`. With Bayesian
        regularization, :meth:`LMStep.step_with_normal`: ``step(w, lam, nu,
        x, y, sample_weight, l2)`` returns ``(result, normal)``, and so does
        ``step_variables``.
    objective : callable
        :meth:`LMStep.objective`: ``objective(w, x, y, sample_weight)``.
    epoch : callable
        :meth:`LMStep.epoch`: ``epoch(w, lam, nu, x, y, sample_weight,
        order, batch_size)``.
    step_variables : callable
        ``step_variables(lam, nu, x, y, sample_weight, *handles)``: ``step``
        on the weights read from the variables behind ``handles``
        (:meth:`~sklearn_lm.engine.functions.ModelFunction.variable_handles`),
        which it writes back: one call instead of three for a step that
        updates a model.
    normal : callable
        :meth:`LMStep.normal_matrix`: ``normal(w, x, y, sample_weight)``
        returns ``(J^T S J, weighted loss sum)`` in float64, for the evidence
        of Bayesian regularization (traced only when called).
    """

    step: _Concrete
    objective: _Concrete
    epoch: _Concrete
    step_variables: _Concrete
    normal: _Concrete


def batch_layout(
    fn: ModelFunction, config: StepConfig, batch_rows: Iterable[int]
) -> tuple[bool, str]:
    """``(chunked, form)`` of a graph for batches of ``batch_rows`` samples.

    The chunk loop is needed when a batch exceeds ``config.chunk_size``
    samples (and ``config.chunked`` allows it); the form is the one
    :func:`~sklearn_lm.engine.system.choose_form` picks for every batch size,
    or ``"auto"`` (decided per batch in the graph) when they differ. The
    graph then holds only what is used.

    Parameters
    ----------
    fn : ModelFunction
    config : StepConfig
        With ``chunk_size`` set (:meth:`StepConfig.for_model`).
    batch_rows : iterable of int
        The batch sizes that will be used.
    """
    rows = list(batch_rows)
    q = config.loss.residuals_per_sample(fn.n_outputs)
    chunked = config.chunked and max(rows) > config.chunk_size
    forms = {choose_form(r, q, fn.n_params, config.l2, config.form) for r in rows}
    form = forms.pop() if len(forms) == 1 else "auto"
    return chunked, form


def compiled_step(
    fn: ModelFunction,
    config: StepConfig,
    x_spec: tf.TensorSpec,
    y_spec: tf.TensorSpec,
) -> CompiledStep:
    """The compiled functions of a step (see :class:`CompiledStep`).

    Functions are cached (least recently used, 32 entries) by
    ``(fn.key, config.key(), x_spec, y_spec)``
    (:attr:`~sklearn_lm.engine.functions.ModelFunction.key`,
    :meth:`StepConfig.key`); a model function whose key is ``None`` is not
    cached. Batch sizes are left unknown in the signatures: a smaller last
    batch does not retrace.

    Parameters
    ----------
    fn : ModelFunction
    config : StepConfig
        A missing ``chunk_size`` is filled for ``fn``.
    x_spec, y_spec : tf.TensorSpec
        Inputs and targets, with an unknown first dimension.

    Returns
    -------
    CompiledStep
    """
    config = config.for_model(fn)
    key = None
    if fn.key is not None:
        key = (fn.key, config.key(), x_spec, y_spec)
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    functions = _compile(LMStep(fn, config), x_spec, y_spec)
    if key is not None:
        _CACHE[key] = functions
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return functions


def _compile(lm: LMStep, x_spec, y_spec) -> CompiledStep:
    fn = lm.fn
    w_spec = tf.TensorSpec([fn.n_params], fn.dtype)
    s_spec = tf.TensorSpec([], _F64)
    sw_spec = tf.TensorSpec([None], _F64)

    def function(python_function, signature, name):
        def disk_key():
            try:
                return step_cache.entry_key(name, fn, lm.config, signature)
            except Exception:  # noqa: BLE001 - the cache never fails a fit
                return None

        return _Concrete(
            tf.function(python_function, input_signature=signature, autograph=False),
            disk_key,
        )

    # Bayesian regularization: the L2 strength is one more (last) input of
    # the step and the objective, and the first of step_variables; one
    # entry per weight with groups of weights.
    extra = []
    if lm.config.bayesian:
        per_weight = lm.config.bayesian_groups != "single"
        extra = [tf.TensorSpec([fn.n_params], _F64) if per_weight else s_spec]

    # A Bayesian-regularized step also returns the normal matrix it formed.
    step = lm.step_with_normal if extra else lm.step

    def step_variables(lam, nu, x, y, sw, *handles):
        args = ()
        if extra:
            l2, *handles = handles
            args = (l2,)
        out = step(fn.read_handles(handles), lam, nu, x, y, sw, *args)
        res = out[0] if extra else out
        # A rejected step returns the weights it read: writing them is a no-op.
        fn.write_handles(handles, res.weights)
        return out

    handle_specs = [tf.TensorSpec([], tf.resource)] * len(fn.variables)
    return CompiledStep(
        step=function(
            step, [w_spec, s_spec, s_spec, x_spec, y_spec, sw_spec, *extra], "step"
        ),
        objective=function(
            lm.objective, [w_spec, x_spec, y_spec, sw_spec, *extra], "objective"
        ),
        epoch=function(
            lm.epoch,
            [
                w_spec,
                s_spec,
                s_spec,
                x_spec,
                y_spec,
                sw_spec,
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.int32),
            ],
            "epoch",
        ),
        step_variables=function(
            step_variables,
            [s_spec, s_spec, x_spec, y_spec, sw_spec, *extra, *handle_specs],
            "step_variables",
        ),
        normal=function(lm.normal_matrix, [w_spec, x_spec, y_spec, sw_spec], "normal"),
    )
