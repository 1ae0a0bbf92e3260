"""scikit-learn estimators trained with the Levenberg-Marquardt algorithm."""

from .classifier import LMClassifier
from .regressor import LMRegressor

__all__ = ["LMClassifier", "LMRegressor"]
