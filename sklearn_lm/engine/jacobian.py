"""The model functions under their former import path.

Kept so that ``from sklearn_lm.engine.jacobian import ...`` still works; the
code now lives in modules of one concept each:

* :class:`~sklearn_lm.engine.functions.ModelFunction` (and its
  :class:`~sklearn_lm.engine.functions.Capabilities`) in
  :mod:`sklearn_lm.engine.functions`: a Keras model as a function of one
  flat weight vector;
* :class:`~sklearn_lm.engine.dense_chain.DenseChain` and
  :func:`~sklearn_lm.engine.dense_chain.model_function` in
  :mod:`sklearn_lm.engine.dense_chain`: the closed form of a chain of
  ``Dense`` layers, and the choice of a model function for a model (its
  layer-by-layer Gauss-Newton products in :mod:`sklearn_lm.engine.layerwise`);
* :class:`~sklearn_lm.engine.autodiff.AutodiffFunction` in
  :mod:`sklearn_lm.engine.autodiff`: any Keras model, by automatic
  differentiation;
* the activations and their derivatives in
  :mod:`sklearn_lm.engine.activations`.
"""

from .autodiff import AutodiffFunction
from .dense_chain import DenseChain, model_function
from .functions import ModelFunction

__all__ = ["ModelFunction", "DenseChain", "AutodiffFunction", "model_function"]
