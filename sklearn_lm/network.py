"""Small fully connected networks, built and evaluated for the estimators.

:func:`build_network` makes the Keras model that :class:`~sklearn_lm.LMRegressor`
and :class:`~sklearn_lm.LMClassifier` train: a plain chain of
``keras.layers.Dense`` layers. :func:`forward` evaluates such a chain in
float64 NumPy, which is what the estimators use to predict.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import keras
import numpy as np
from scipy.special import erf, expit

__all__ = ["ACTIVATIONS", "build_network", "forward"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _linear(z: np.ndarray) -> np.ndarray:
    return z


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _elu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


def _selu(z: np.ndarray) -> np.ndarray:
    return _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _softsign(z: np.ndarray) -> np.ndarray:
    return z / (1.0 + np.abs(z))


def _gelu(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))


def _silu(z: np.ndarray) -> np.ndarray:
    return z * expit(z)


#: Hidden-layer activations the estimators accept, by their Keras names, with
#: the float64 NumPy function :func:`forward` evaluates for each.
ACTIVATIONS = {
    "linear": _linear,
    "tanh": np.tanh,
    "sigmoid": expit,
    "relu": _relu,
    "elu": _elu,
    "selu": _selu,
    "softplus": _softplus,
    "softsign": _softsign,
    "gelu": _gelu,
    "silu": _silu,
}

_DTYPES = ("float32", "float64")


def _layer_seeds(seed: int | None, n_layers: int) -> list[int]:
    """Independent initialiser seeds, one per layer, derived from ``seed``."""
    sequence = np.random.SeedSequence(seed)
    return [int(s) for s in sequence.generate_state(n_layers, dtype=np.uint32)]


def build_network(
    n_features: int,
    n_outputs: int,
    hidden: Sequence[int] = (20,),
    activation: str = "tanh",
    output_activation: str | None = None,
    dtype: str = "float32",
    seed: int | None = None,
) -> keras.Model:
    """Build a fully connected network as a chain of ``Dense`` layers.

    Parameters
    ----------
    n_features : int
        Number of input features.
    n_outputs : int
        Number of units of the output layer.
    hidden : sequence of int, default=(20,)
        Units of each hidden layer, input side first. An empty sequence gives
        a single ``Dense`` layer, i.e. a linear (affine) model.
    activation : str, default="tanh"
        Activation of the hidden layers, one of :data:`ACTIVATIONS`.
    output_activation : str or None, default=None
        Activation of the output layer; ``None`` means linear (the outputs
        are the raw values, e.g. logits).
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the input, the weights and the computations.
    seed : int or None, default=None
        Seed of the weight initialisers. Each layer gets its own seed derived
        from it, so the same ``seed`` gives the same initial weights; no
        global random state is read or changed. ``None`` draws fresh entropy
        from the operating system.

    Returns
    -------
    keras.Model
        A built ``keras.Sequential`` model named ``"lm_network"`` whose
        layers are ``hidden_0``, ``hidden_1``, ... and ``output``.

    See Also
    --------
    forward : Evaluate such a network in float64 NumPy.

    Notes
    -----
    Kernels are initialised with the Glorot (Xavier) uniform distribution,
    i.e. uniformly on ``[-r, r]`` with ``r = sqrt(6 / (fan_in + fan_out))``,
    and biases with zeros.

    Examples
    --------
    >>> from sklearn_lm.network import build_network
    >>> model = build_network(3, 2, hidden=(4,), seed=0)
    >>> [tuple(w.shape) for w in model.get_weights()]
    [(3, 4), (4,), (4, 2), (2,)]
    """
    if isinstance(n_features, bool) or not isinstance(n_features, Integral):
        raise TypeError(f"n_features must be an int. Got {n_features!r}.")
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, Integral):
        raise TypeError(f"n_outputs must be an int. Got {n_outputs!r}.")
    if n_features < 1 or n_outputs < 1:
        raise ValueError(
            "n_features and n_outputs must be >= 1. Got "
            f"n_features={n_features}, n_outputs={n_outputs}."
        )
    units = list(hidden)
    if any(isinstance(u, bool) or not isinstance(u, Integral) or u < 1 for u in units):
        raise ValueError(f"hidden must contain positive ints. Got {hidden!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}. Got {activation!r}."
        )
    if output_activation is not None and output_activation not in ACTIVATIONS:
        raise ValueError(
            f"output_activation must be None or one of {sorted(ACTIVATIONS)}. "
            f"Got {output_activation!r}."
        )
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}. Got {dtype!r}.")

    seeds = _layer_seeds(seed, len(units) + 1)
    layers = []
    for i, n_units in enumerate(units):
        layers.append(
            keras.layers.Dense(
                int(n_units),
                activation=activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[i]),
                bias_initializer="zeros",
                dtype=dtype,
                name=f"hidden_{i}",
            )
        )
    layers.append(
        keras.layers.Dense(
            int(n_outputs),
            activation=output_activation or "linear",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds[-1]),
            bias_initializer="zeros",
            dtype=dtype,
            name="output",
        )
    )
    return keras.Sequential(
        [keras.Input(shape=(int(n_features),), dtype=dtype), *layers],
        name="lm_network",
    )


def _activation_name(layer: keras.layers.Layer) -> str | None:
    try:
        name = keras.activations.serialize(layer.activation)
    except (TypeError, ValueError):
        return None
    if name == "swish":
        name = "silu"
    return name if isinstance(name, str) and name in ACTIVATIONS else None


def forward(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Evaluate a network's outputs in float64 NumPy.

    For a plain chain of ``Dense`` layers with activations from
    :data:`ACTIVATIONS` (e.g. one made by :func:`build_network`) the layers
    are applied with NumPy in float64, which is independent of how the rows
    are batched. Any other model is called through Keras in inference mode.

    Parameters
    ----------
    model : keras.Model
        A built model with one input and one output.
    X : array-like of shape (n_samples, n_features)
        Input rows.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs), dtype float64
        The model outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lm.network import build_network, forward
    >>> model = build_network(3, 1, hidden=(), seed=0)
    >>> forward(model, np.ones((2, 3))).shape
    (2, 1)
    """
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    names = [
        _activation_name(layer) if type(layer) is keras.layers.Dense else None
        for layer in layers
    ]
    if not layers or any(name is None for name in names):
        x = np.asarray(X, dtype=keras.backend.standardize_dtype(model.inputs[0].dtype))
        out = model(x, training=False)
        out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)
        return out.reshape(out.shape[0], -1)
    a = np.asarray(X, dtype=np.float64)
    for layer, name in zip(layers, names, strict=True):
        a = a @ np.asarray(layer.kernel.numpy(), dtype=np.float64)
        if layer.use_bias:
            a = a + np.asarray(layer.bias.numpy(), dtype=np.float64)
        a = ACTIVATIONS[name](a)
    return a
