"""Who runs on which task, with which settings.

A contender is a function ``run(task, seed, settings, rec, **options) -> dict``
in one of the modules of this package. It prepares its data and network,
calls ``rec.start()`` right before its fit begins, records the loss through
the cheapest hook the library offers, calls ``rec.stop()`` when the fit
returns, and returns extra results (test score, attempts per step, ...).

This module only holds the registry; it imports neither NumPy nor
TensorFlow, so the parent process can read it cheaply.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Contender", "CONTENDERS", "contenders_for", "load_function"]


@dataclass(frozen=True)
class Contender:
    """One row of a results table.

    Attributes
    ----------
    key : str
        Short identifier, unique within a task.
    label : str
        Name shown in the tables and plots.
    target : str
        ``"module:function"`` inside :mod:`benchmarks.contenders`.
    setting : str
        The settings in words (shown in the report).
    ours : bool
        Whether it is sklearn_lm.
    options : dict
        Keyword arguments for the function.
    uses_tf : bool
        Whether the child process imports TensorFlow (then its thread pools
        are pinned before first use).
    requires : str or None
        A module that must be importable; otherwise the row is skipped.
    rate : str or None
        For Levenberg-Marquardt contenders, the matrix-product rate of
        :func:`benchmarks.costmodel.measure` their ``J^T J`` runs at
        (``"tf_float32"`` or ``"numpy_float64"``); ``None`` for the others.
    """

    key: str
    label: str
    target: str
    setting: str
    ours: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    uses_tf: bool = True
    requires: str | None = None
    rate: str | None = None


_TFLM = "tf_levenberg_marquardt"
_TF32, _TF64, _NP64 = "tf_float32", "tf_float64", "numpy_float64"


_SINC = [
    Contender(
        "lm-trainer",
        "sklearn_lm Trainer",
        "ours:trainer",
        "engine Trainer, full batch, float32, Fletcher damping with the "
        "gain-ratio rule, geodesic acceleration; a loop of train_step",
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "lm-trainer-plain",
        "sklearn_lm Trainer (no geodesic)",
        "ours:trainer",
        "as sklearn_lm Trainer, without geodesic acceleration (plain LM steps)",
        options={"geodesic": False},
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "lm-trainer-b2000",
        "sklearn_lm Trainer (batch 2000)",
        "ours:trainer",
        "engine Trainer.fit, batch_size=2000, shuffled, float32, Fletcher "
        "damping with the gain-ratio rule, geodesic acceleration",
        options={"batch_size": 2000},
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "lm-regressor",
        "LMRegressor",
        "ours:estimator",
        "LMRegressor(hidden=(20,), tol=0, n_iter_no_change=inf), full batch",
        options={"params": {"tol": 0.0, "n_iter_no_change": float("inf")}},
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "lm-regressor-f64",
        "LMRegressor (float64)",
        "ours:estimator",
        "as LMRegressor, dtype='float64'",
        options={
            "params": {"tol": 0.0, "n_iter_no_change": float("inf"), "dtype": "float64"}
        },
        ours=True,
        rate=_TF64,
    ),
    Contender(
        "lm-trainer-f64",
        "sklearn_lm Trainer (float64)",
        "ours:trainer",
        "as sklearn_lm Trainer, on a float64 copy of the network",
        options={"dtype": "float64"},
        ours=True,
        rate=_TF64,
    ),
    Contender(
        "scipy-lm",
        "SciPy least_squares(lm)",
        "scipy_lm:least_squares_lm",
        "MINPACK LM, float64, closed-form NumPy Jacobian, ftol=xtol=gtol=1e-15",
        uses_tf=False,
        rate=_NP64,
    ),
    Contender(
        "tf-lm",
        "tf-levenberg-marquardt 1.0.3",
        "tf_lm:tf_lm",
        "ModelWrapper, SGD(1.0), MeanSquaredError, batch 1000 (as published)",
        options={"batch_size": 1000},
        requires=_TFLM,
        rate=_TF32,
    ),
    Contender(
        "mlp-lbfgs",
        "MLPRegressor(lbfgs)",
        "sklearn_mlp:lbfgs_sweep",
        "solver='lbfgs', alpha=0, tol=0; separate fits with growing max_iter",
        uses_tf=False,
    ),
    Contender(
        "mlp-adam",
        "MLPRegressor(adam)",
        "sklearn_mlp:adam_epochs",
        "solver='adam', alpha=0, batch 200, lr 1e-3 (defaults); partial_fit per epoch",
        uses_tf=False,
    ),
    Contender(
        "keras-adam-full",
        "Keras Adam (full batch)",
        "keras_adam:adam",
        "Adam(learning_rate=1e-2), full batch",
        options={"batch_size": None},
    ),
    Contender(
        "keras-adam-b1000",
        "Keras Adam (batch 1000)",
        "keras_adam:adam",
        "Adam(learning_rate=1e-2), batch 1000, shuffled",
        options={"batch_size": 1000},
    ),
]

_FRIEDMAN = [
    Contender(
        "lm-regressor",
        "LMRegressor",
        "ours:estimator",
        "LMRegressor(hidden=(20,)), defaults (max_iter=100, tol=1e-4, "
        "n_iter_no_change='auto': 2 epochs at full batch)",
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "tf-lm",
        "tf-levenberg-marquardt 1.0.3",
        "tf_lm:tf_lm",
        "SGD(1.0), MeanSquaredError, batch 1000, 25 epochs (100 steps)",
        options={"batch_size": 1000, "epochs": 25},
        requires=_TFLM,
        rate=_TF32,
    ),
    Contender(
        "mlp-lbfgs",
        "MLPRegressor(lbfgs)",
        "sklearn_mlp:single_fit",
        "solver='lbfgs', defaults (alpha=1e-4, max_iter=200)",
        options={"params": {"solver": "lbfgs"}},
        uses_tf=False,
    ),
    Contender(
        "mlp-adam",
        "MLPRegressor(adam)",
        "sklearn_mlp:single_fit",
        "solver='adam', defaults (alpha=1e-4, max_iter=200, batch 200)",
        options={"params": {"solver": "adam"}},
        uses_tf=False,
    ),
    Contender(
        "keras-adam-b1000",
        "Keras Adam (batch 1000)",
        "keras_adam:adam",
        "Adam(learning_rate=1e-2), batch 1000, 500 epochs",
        options={"batch_size": 1000, "epochs": 500},
    ),
]

_DIGITS = [
    Contender(
        "lm-classifier",
        "LMClassifier",
        "ours:estimator",
        "LMClassifier(hidden=(20,)), defaults (cross-entropy, max_iter=100, "
        "tol=1e-4, n_iter_no_change='auto': 2 epochs at full batch; "
        "solver='auto': conjugate gradients, at most 5 iterations per solve, "
        "for its 1510 weights)",
        ours=True,
        # Conjugate-gradient steps: the cost model's J^T J flops do not apply.
        rate=None,
    ),
    Contender(
        "lm-classifier-direct",
        "LMClassifier(solver='direct')",
        "ours:estimator",
        "as LMClassifier, but exact steps: the 1510 x 1510 normal equations "
        "formed and factored in float64",
        ours=True,
        options={"params": {"solver": "direct"}},
        rate=_TF32,
    ),
    Contender(
        "tf-lm",
        "tf-levenberg-marquardt 1.0.3",
        "tf_lm:tf_lm",
        "SGD(0.1), SparseCategoricalCrossentropy(from_logits=True), batch 1000, "
        "50 epochs (100 steps); learning rate as published for MNIST",
        options={"batch_size": 1000, "epochs": 50, "learning_rate": 0.1},
        requires=_TFLM,
        rate=_TF32,
    ),
    Contender(
        "mlp-lbfgs",
        "MLPClassifier(lbfgs)",
        "sklearn_mlp:single_fit",
        "solver='lbfgs', defaults (alpha=1e-4, max_iter=200)",
        options={"params": {"solver": "lbfgs"}},
        uses_tf=False,
    ),
    Contender(
        "mlp-adam",
        "MLPClassifier(adam)",
        "sklearn_mlp:single_fit",
        "solver='adam', defaults (alpha=1e-4, max_iter=200, batch 200)",
        options={"params": {"solver": "adam"}},
        uses_tf=False,
    ),
    Contender(
        "keras-adam-b1000",
        "Keras Adam (batch 1000)",
        "keras_adam:adam",
        "Adam(learning_rate=1e-2), batch 1000, 500 epochs",
        options={"batch_size": 1000, "epochs": 500},
    ),
]

_SCALE = [
    Contender(
        "lm-trainer",
        "sklearn_lm Trainer",
        "ours:trainer",
        "engine Trainer, full batch, float32, Fletcher damping with the "
        "gain-ratio rule",
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "lm-regressor",
        "LMRegressor",
        "ours:estimator",
        "LMRegressor(hidden=(20,), tol=0), full batch",
        options={"params": {"tol": 0.0, "n_iter_no_change": float("inf")}},
        ours=True,
        rate=_TF32,
    ),
    Contender(
        "scipy-lm",
        "SciPy least_squares(lm)",
        "scipy_lm:least_squares_lm",
        "MINPACK LM, float64, closed-form NumPy Jacobian",
        uses_tf=False,
        rate=_NP64,
    ),
    Contender(
        "tf-lm",
        "tf-levenberg-marquardt 1.0.3",
        "tf_lm:tf_lm",
        "SGD(1.0), MeanSquaredError, full batch (one batch of all samples)",
        options={"batch_size": None},
        requires=_TFLM,
        rate=_TF32,
    ),
    Contender(
        "mlp-lbfgs",
        "MLPRegressor(lbfgs)",
        "sklearn_mlp:single_fit",
        "solver='lbfgs', alpha=0, tol=0, max_iter = the step cap",
        options={
            "params": {"solver": "lbfgs", "alpha": 0.0, "tol": 0.0},
            "cap_iter": True,
        },
        uses_tf=False,
    ),
    Contender(
        "keras-adam-full",
        "Keras Adam (full batch)",
        "keras_adam:adam",
        "Adam(learning_rate=1e-2), full batch",
        options={"batch_size": None},
    ),
]

#: Contenders per task, in table order (ours first).
CONTENDERS: dict[str, list[Contender]] = {
    "sinc": _SINC,
    "friedman1": _FRIEDMAN,
    "digits": _DIGITS,
    "scale": _SCALE,
}


def contenders_for(task: str, keys: list[str] | None = None) -> list[Contender]:
    """The contenders of ``task``, optionally only those in ``keys``."""
    found = CONTENDERS[task]
    if keys:
        found = [c for c in found if c.key in keys]
    return found


def load_function(target: str):
    """Import ``"module:function"`` from :mod:`benchmarks.contenders`."""
    module_name, function_name = target.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, function_name)
