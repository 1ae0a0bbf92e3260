"""One frozen description of a Levenberg-Marquardt step.

:class:`StepConfig` holds every setting that shapes the compiled step: the
loss, the damping strategy, the solver and its options. The step
(:mod:`sklearn_lm.engine.step`), the compile cache
(:mod:`sklearn_lm.engine.compile`), :class:`~sklearn_lm.engine.Trainer` and
:class:`~sklearn_lm.engine.LMModel` all read it, so a new step option is one
field here, validated here, and used where the step needs it.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from . import damping as damping_module
from . import losses as losses_module
from . import memory

__all__ = ["StepConfig", "check_number"]

_SOLVERS = ("direct", "cg")
_FORMS = ("auto", "normal", "gram")
_BAYESIAN_GROUPS = ("single", "layer")


def check_number(name: str, value: Any, low: float, *, integer=False, inclusive=True):
    """Return ``value`` if it is a finite number ``>= low`` (``> low``), else raise.

    The error names the parameter and echoes the value received.
    """
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
    return int(value) if integer else float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        listed = [repr(c) for c in choices]
        expected = " or ".join([", ".join(listed[:-1]), listed[-1]])
        raise ValueError(f"{name} must be {expected}. Received: {name}={value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool. Received: {name}={value!r}")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Settings of one compiled LM step; validated on construction.

    Parameters
    ----------
    loss : str or losses.Loss, default="mse"
        See :func:`sklearn_lm.engine.losses.get`.
    damping : str or damping.Damping, default="standard"
        The damping strategy (how ``lambda`` enters the system and changes);
        see :func:`sklearn_lm.engine.damping.get`. The estimators'
        ``damping`` parameter is this strategy's initial ``lambda``
        (``Damping.initial``), their ``damping_mode`` its kind.
    learning_rate : float, default=1.0
        Fraction of the LM step taken (``w - learning_rate * delta``).
    max_attempts : int, default=10
        Damping retries per step before the step is given up.
    l2 : float, default=0.0
        L2 penalty ``l2 * sum(W**2)`` over kernels (variables with two or more
        dimensions); biases are not penalised. The estimators call it
        ``alpha``, as ``sklearn.neural_network.MLPRegressor`` does.
    solver : {"direct", "cg"}, default="direct"
        How each damped system is solved. ``"direct"`` forms it in float64
        (the ``n x n`` normal equations, or the Gram form for batches with
        fewer residuals than weights) and factors it by Cholesky: exact, with
        ``O(n**3)`` work per attempt and ``24 n**2`` bytes. ``"cg"`` runs at
        most ``cg_max_iter`` iterations of conjugate gradients on
        Gauss-Newton-vector products, each about one forward and one backward
        pass over the batch: no ``n x n`` matrix, no Jacobian rows, memory
        ``O(N)`` activations plus ``O(n)`` vectors -- the choice for networks
        with thousands of weights, where factoring dominates (see
        :func:`~sklearn_lm.engine.solve.cg_solver`). Its steps are shorter
        than exact LM steps, so it may take more of them. Precision: the
        iteration's vectors, the gradient and the loss are float64; the
        products ``J v`` and ``J^T u`` inside the iterations run in the
        model's dtype (their sums over samples too), the loss curvature
        between them in float64 where the loss has a closed form
        (:meth:`~sklearn_lm.engine.losses.Loss.curvature_times`), else in the
        model's dtype.
    form : {"auto", "normal", "gram"}, default="auto"
        Which system the direct solver forms: the ``n x n`` normal equations,
        the ``(N q) x (N q)`` Gram system, or (``"auto"``) the Gram form per
        batch when ``N q < n`` and ``l2 == 0``.
    chunk_size : int or None, default=None
        Samples per chunk when accumulating the normal equations. ``None``
        until :meth:`for_model` fills in the default for a model: the two
        chunks processed at once then hold at most 128 MiB
        (:func:`~sklearn_lm.engine.memory.default_chunk_size`), each with its
        rows ``[F J | e]`` (or, for the layer-by-layer products of ``Dense``
        chains, their temporaries) and one array of the same size.
    chunked : bool, default=True
        Whether batches may exceed ``chunk_size`` samples. ``False`` builds a
        graph without the chunk loop.
    geodesic : bool, default=True
        Geodesic acceleration (Transtrum and Sethna): each attempt adds the
        second-order correction ``a / 2`` to the LM velocity ``v``, where
        ``a`` solves the same damped system for the second directional
        derivative of the residuals along ``v`` (computed exactly: in closed
        form for chains of ``Dense`` layers, by automatic differentiation
        otherwise). It costs a few extra forward passes and one gradient per
        attempt, and usually cuts the number of steps several times on curved
        problems. See :mod:`sklearn_lm.engine.step`.
    geodesic_ratio : float, default=0.75
        The acceleration is used only when ``2 |a| / |v|`` is at most this.
    cg_max_iter : int, default=5
        Most conjugate-gradient iterations per solve (``solver="cg"``).
    cg_rtol : float, default=1e-3
        Conjugate gradients stop once the residual norm is at most this times
        the right-hand side's (``solver="cg"``).
    bayesian : bool, default=False
        Bayesian regularization (MacKay; Foresee and Hagan): the L2 strength
        is no longer the constant ``l2`` but a graph input that
        :class:`~sklearn_lm.engine.Trainer` re-estimates from the evidence
        after every accepted step (:mod:`sklearn_lm.engine.bayesian`); ``l2``
        is then not used (the first step's strength comes from the initial
        hyperparameters). It needs the mean squared
        error (``loss="mse"``) or a cross-entropy on logits in its
        Gauss-Newton form (binary, categorical or sparse categorical,
        ``from_logits=True``), the direct solver and the normal form
        (``form="auto"`` then means ``"normal"``); anything else raises
        ``ValueError``. Steps without it are compiled exactly as before.
    bayesian_groups : {"single", "layer"}, default="single"
        The weight precisions of Bayesian regularization (``bayesian=True``
        only; anything but ``"single"`` without it raises ``ValueError``).
        ``"single"``: one ``alpha`` for every penalised weight, and the L2
        strength is a float64 scalar input of the step. ``"layer"``: one
        ``alpha_g`` per penalised variable -- each layer's kernel and each
        hidden layer's bias vector (MacKay's weight classes;
        :func:`~sklearn_lm.engine.bayesian.penalty_groups`) -- and the L2
        strength is a float64 input of shape ``(n_params,)``, one entry per
        weight.
    """

    loss: Any = "mse"
    damping: Any = "standard"
    learning_rate: float = 1.0
    max_attempts: int = 10
    l2: float = 0.0
    solver: str = "direct"
    form: str = "auto"
    chunk_size: int | None = None
    chunked: bool = True
    geodesic: bool = True
    geodesic_ratio: float = 0.75
    cg_max_iter: int = 5
    cg_rtol: float = 1e-3
    bayesian: bool = False
    bayesian_groups: str = "single"

    def __post_init__(self):
        checked = {
            "loss": losses_module.get(self.loss),
            "damping": damping_module.get(self.damping),
            "learning_rate": check_number(
                "learning_rate", self.learning_rate, 0, inclusive=False
            ),
            "max_attempts": check_number(
                "max_attempts", self.max_attempts, 1, integer=True
            ),
            "l2": check_number("l2", self.l2, 0),
            "solver": _check_choice("solver", self.solver, _SOLVERS),
            "form": _check_choice("form", self.form, _FORMS),
            "chunk_size": None
            if self.chunk_size is None
            else check_number("chunk_size", self.chunk_size, 1, integer=True),
            "chunked": _check_bool("chunked", self.chunked),
            "geodesic": _check_bool("geodesic", self.geodesic),
            "geodesic_ratio": check_number(
                "geodesic_ratio", self.geodesic_ratio, 0, inclusive=False
            ),
            "cg_max_iter": check_number(
                "cg_max_iter", self.cg_max_iter, 1, integer=True
            ),
            "cg_rtol": check_number("cg_rtol", self.cg_rtol, 0, inclusive=False),
            "bayesian": _check_bool("bayesian", self.bayesian),
            "bayesian_groups": _check_choice(
                "bayesian_groups", self.bayesian_groups, _BAYESIAN_GROUPS
            ),
        }
        if checked["bayesian_groups"] != "single" and not checked["bayesian"]:
            raise ValueError(
                "bayesian_groups chooses the weight precisions of Bayesian "
                "regularization and needs bayesian=True. Received: "
                f"bayesian_groups={self.bayesian_groups!r}, bayesian=False"
            )
        if checked["bayesian"]:
            checked["form"] = _check_bayesian(checked)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(
        cls, loss: Any, damping: Any, options: dict[str, Any]
    ) -> StepConfig:
        """The configuration of ``loss``, ``damping`` and keyword ``options``.

        For callers that take the step options as ``**options``
        (:class:`~sklearn_lm.engine.Trainer`,
        :meth:`~sklearn_lm.engine.LMModel.compile`): an unknown name raises a
        ``TypeError`` that names it and lists the valid ones.
        """
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            raise TypeError(
                f"Unknown step option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(cls.option_names())}. Received: "
                + ", ".join(f"{name}={options[name]!r}" for name in unknown)
            )
        return cls(loss=loss, damping=damping, **options)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of the step options (every field but ``loss`` and ``damping``)."""
        return tuple(
            f.name for f in dataclasses.fields(cls) if f.name not in ("loss", "damping")
        )

    def replace(self, **changes: Any) -> StepConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def for_model(self, fn) -> StepConfig:
        """This configuration with ``chunk_size`` filled in for a model function.

        A ``chunk_size`` of ``None`` becomes
        :func:`~sklearn_lm.engine.memory.default_chunk_size` for ``fn``'s
        weights, residual rows per sample and dtype (the two chunks processed
        at once, each with its rows or the layer-by-layer products'
        temporaries and one array of their size, hold at most 128 MiB); a
        set ``chunk_size`` is kept.

        Parameters
        ----------
        fn : ModelFunction

        Returns
        -------
        StepConfig
        """
        if self.chunk_size is not None:
            return self
        q = self.loss.residuals_per_sample(fn.n_outputs)
        size = memory.default_chunk_size(
            fn.n_params, q, fn.dtype.size, memory.layerwise_width(fn, q)
        )
        return self.replace(chunk_size=size)

    def key(self) -> tuple:
        """A hashable description: equal keys compile the same graph.

        Built-in losses and damping strategies enter by their class and
        configuration (their ``initial`` damping is a graph input, not part
        of the key); custom subclasses by identity.
        """
        values = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "loss":
                value = _object_key(value, losses_module)
            elif field.name == "damping":
                value = _object_key(value, damping_module)
            values.append(value)
        return tuple(values)


def _check_bayesian(checked: dict) -> str:
    """The form of a Bayesian-regularized step, or a ``ValueError``.

    Bayesian regularization needs the ``n x n`` normal equations (for the
    trace of the inverse Hessian) and a loss that is a likelihood
    (:func:`~sklearn_lm.engine.bayesian.likelihood`).
    """
    if checked["solver"] != "direct":
        raise ValueError(
            "bayesian=True needs the direct solver: the conjugate-gradient "
            "solver has no factor for the trace of the inverse Hessian (a "
            f"stochastic estimate is not supported yet). Received: "
            f"solver={checked['solver']!r}"
        )
    if checked["form"] == "gram":
        raise ValueError(
            "bayesian=True needs the normal equations; the Gram form has no "
            "L2 term and no n x n Hessian. Received: form='gram'"
        )
    from .bayesian import likelihood

    if likelihood(checked["loss"]) is None:
        raise ValueError(
            "bayesian=True supports the mean squared error (a Gaussian "
            "likelihood) and the binary, categorical and sparse categorical "
            "cross-entropies on logits in their Gauss-Newton form "
            "(from_logits=True, gauss_newton=True); other losses are not "
            f"supported yet. Received: loss={checked['loss']!r}"
        )
    return "normal"


#: Settings that reach the graph as tensors, not constants: not part of a key.
_RUNTIME_SETTINGS = frozenset({"initial"})


def _object_key(obj, builtin_module) -> tuple:
    cls = type(obj)
    home = builtin_module.__name__
    if cls.__module__ == home or cls.__module__.startswith(home + "."):
        config = obj.get_config().items()
        return (
            cls.__name__,
            tuple(sorted(i for i in config if i[0] not in _RUNTIME_SETTINGS)),
        )
    return (cls.__module__, cls.__qualname__, id(obj))
