"""The Levenberg-Marquardt engine, for any ``keras.Model`` (TensorFlow backend).

Two entry points:

* :class:`Trainer` -- a plain loop over arrays or a ``tf.data.Dataset``;
* :class:`LMModel` -- wraps a model so that Keras' own ``fit`` (callbacks,
  progress bar, validation data) trains it by LM.

Losses live in :mod:`sklearn_lm.engine.losses`, damping strategies in
:mod:`sklearn_lm.engine.damping`. This package does not import scikit-learn.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from . import damping, losses  # noqa: E402
from .jacobian import model_function  # noqa: E402
from .keras_model import LMModel  # noqa: E402
from .loop import STOP_MESSAGES, History, Trainer  # noqa: E402

__all__ = [
    "Trainer",
    "LMModel",
    "History",
    "STOP_MESSAGES",
    "losses",
    "damping",
    "model_function",
]
