"""The Levenberg-Marquardt engine, for any ``keras.Model`` (TensorFlow backend).

Two entry points:

* :class:`Trainer` -- a plain loop over arrays or a ``tf.data.Dataset``;
* :class:`LMModel` -- wraps a model so that Keras' own ``fit`` (callbacks,
  progress bar, validation data) trains it by LM.

Losses live in :mod:`sklearn_lm.engine.losses`, damping strategies in
:mod:`sklearn_lm.engine.damping`, the step settings in
:class:`~sklearn_lm.engine.config.StepConfig`, why a fit stopped in
:class:`~sklearn_lm.engine.status.Status`. Compiled step graphs are kept on
disk between processes (:func:`set_cache_dir`,
:mod:`sklearn_lm.engine.step_cache`). This package does not import
scikit-learn.

``History`` and ``STOP_MESSAGES`` are deprecated names of
:class:`TrainingHistory` and of the messages now on :class:`Status`.
:class:`LMModel` is imported on first use (the estimators do not need it).
"""

import os
from typing import TYPE_CHECKING

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from . import damping, losses  # noqa: E402
from . import history as _history  # noqa: E402
from .config import StepConfig  # noqa: E402
from .covariance import ParameterCovariance, parameter_covariance  # noqa: E402
from .dense_chain import model_function  # noqa: E402
from .history import TrainingHistory  # noqa: E402
from .loop import Trainer  # noqa: E402
from .status import Status  # noqa: E402
from .step_cache import cache_dir, set_cache_dir  # noqa: E402

if TYPE_CHECKING:
    from .keras_model import LMModel

__all__ = [
    "Trainer",
    "LMModel",
    "TrainingHistory",
    "Status",
    "StepConfig",
    "ParameterCovariance",
    "parameter_covariance",
    "losses",
    "damping",
    "model_function",
    "set_cache_dir",
    "cache_dir",
]


#: Public names imported on first access (PEP 562), by the module holding them.
_LAZY = {"LMModel": "keras_model"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    return _history.deprecated_attribute(__name__, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
