"""Levenberg-Marquardt training of small neural networks.

``sklearn_lm`` offers scikit-learn estimators (:class:`LMRegressor`,
:class:`LMClassifier`) that build a small Keras 3 network and train it with the
Levenberg-Marquardt engine in :mod:`sklearn_lm.engine`, which also trains any
``keras.Model`` directly.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0.dev0"

from .estimators import LMClassifier, LMRegressor  # noqa: E402

__all__ = ["LMClassifier", "LMRegressor", "__version__"]
