"""Small fully connected networks, built and evaluated for the estimators.

:func:`build_network` makes the Keras model that :class:`~sklearn_lm.LMRegressor`
and :class:`~sklearn_lm.LMClassifier` train: a plain chain of
``keras.layers.Dense`` layers. :func:`forward` evaluates such a chain in
float64 NumPy, which is what the estimators use to predict.
:func:`init_from_data` sets the hidden layers' initial weights from the
training inputs (a Nguyen-Widrow style initialisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import keras
import numpy as np

from .engine.activations import ACTIVATIONS as _TABLE
from .engine.activations import ALIASES

__all__ = ["ACTIVATIONS", "build_network", "forward", "init_from_data"]

#: Hidden-layer activations the estimators accept, by their Keras names, with
#: the float64 NumPy function :func:`forward` evaluates for each (from the
#: engine's table, :data:`sklearn_lm.engine.activations.ACTIVATIONS`).
ACTIVATIONS = {name: phi.numpy for name, phi in _TABLE.items()}

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
    if not isinstance(name, str):
        return None
    name = ALIASES.get(name, name)
    return name if name in ACTIVATIONS else None


def _dense_chain(model: keras.Model):
    """``(layers, activation names)`` of a plain ``Dense`` chain, names ``None``
    where a layer is not a ``Dense`` with an activation of :data:`ACTIVATIONS`."""
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    names = [
        _activation_name(layer) if type(layer) is keras.layers.Dense else None
        for layer in layers
    ]
    return layers, names


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
    layers, names = _dense_chain(model)
    if not layers or any(name is None for name in names):
        x = np.asarray(X, dtype=keras.backend.standardize_dtype(model.inputs[0].dtype))
        out = model(x, training=False)
        out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)
        return out.reshape(out.shape[0], -1)
    a = np.asarray(X, dtype=np.float64)
    for layer, name in zip(layers, names, strict=True):
        a = _apply_dense(layer, name, a)
    return a


def _apply_dense(layer: keras.layers.Dense, name: str, a: np.ndarray) -> np.ndarray:
    """``phi(a @ kernel + bias)`` in float64 for a ``Dense`` layer whose
    activation ``phi`` is ``ACTIVATIONS[name]``, on float64 inputs ``a``."""
    z = a @ np.asarray(layer.kernel.numpy(), dtype=np.float64)
    if layer.use_bias:
        z = z + np.asarray(layer.bias.numpy(), dtype=np.float64)
    return ACTIVATIONS[name](z)


#: Projections whose spread is below this fraction of their magnitude count
#: as constant (rounding noise is not spread units over).
_CONSTANT_RTOL = 1e-10


def _weighted_quantiles(
    values: np.ndarray, weights: np.ndarray, levels: np.ndarray
) -> np.ndarray:
    """Quantile of each column of ``values`` at its own level in ``[0, 1]``.

    The inverted-CDF (lower) quantile with ``weights`` as frequencies: the
    smallest value whose cumulative weight reaches ``level`` times the total,
    so integer weights give the quantiles of the rows repeated that often.
    """
    order = np.argsort(values, axis=0, kind="stable")
    cumulative = np.cumsum(weights[order], axis=0)
    rank = np.sum(cumulative < levels * cumulative[-1], axis=0)
    rank = np.minimum(rank, values.shape[0] - 1)
    columns = np.arange(values.shape[1])
    return values[order[rank, columns], columns]


def init_from_data(
    model: keras.Model,
    X: np.ndarray,
    seed: int | np.random.Generator | None = None,
    *,
    sample_weight: np.ndarray | None = None,
    max_samples: int = 10_000,
) -> keras.Model:
    """Set the hidden layers' weights from the data (Nguyen-Widrow style).

    Each hidden unit gets a random direction in its layer's input space, a
    slope scaled to the spread of the data along that direction and an
    offset that puts its transition (where the pre-activation is zero) at a
    quantile of the data: the units' transitions are spread over the data,
    whatever its scale and offset, instead of being bunched around the
    origin as with Glorot initialisation. This is the initialisation of
    Nguyen and Widrow (1990) measured on the data rather than assuming
    inputs in ``[-1, 1]``, applied layer by layer.

    Parameters
    ----------
    model : keras.Model
        A plain chain of ``Dense`` layers with activations from
        :data:`ACTIVATIONS`, e.g. one made by :func:`build_network`. The
        weights of its hidden layers are changed in place.
    X : array-like of shape (n_samples, n_features)
        Input rows the network will be trained on; not modified.
    seed : int, numpy.random.Generator or None, default=None
        Seed of the random directions, order of the centres and subsample,
        passed to :func:`numpy.random.default_rng`. The same seed gives the same
        weights; no global random state is read or changed.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights of the rows, used as frequencies for the
        spreads and quantiles: rows of weight zero are left out, and integer
        weights give the weights of the rows repeated that often. ``None``
        weighs all rows equally.
    max_samples : int, default=10_000
        At most this many rows (of positive weight) are used: a random
        subsample without replacement, drawn from ``seed``, when there are
        more.

    Returns
    -------
    keras.Model
        ``model``, with new weights in its hidden layers.

    Raises
    ------
    ValueError
        If ``model`` is not such a chain, ``X`` does not match its input or
        is not finite, ``sample_weight`` is invalid or all zero, or the
        weights overflow the model's dtype (data on a scale near the dtype's
        limits).

    See Also
    --------
    build_network : Build a network to initialise.

    Notes
    -----
    For a hidden layer with ``d`` inputs and ``H`` units, let ``A`` be its
    inputs on the rows used: ``X`` for the first hidden layer, the previous
    hidden layer's activations (computed in float64 with the weights as
    written) for later ones. For each unit ``j``:

    1. draw a direction ``u_j`` uniform on the unit sphere of ``R^d`` and
       project the data on it, ``p_j = A u_j``; let ``s_j`` be the (weighted)
       standard deviation of ``p_j`` and ``h_j = sqrt(3) s_j``, the
       half-width of the uniform distribution with that spread (for one
       input filling ``[-1, 1]`` evenly, ``h_j = 1``);
    2. take the gain ``beta_j = g = max(0.7 H**(1/d), sqrt(3))``, the same
       for every unit: ``0.7 H**(1/d)`` is Nguyen and Widrow's magnitude
       for inputs of half-width 1, and the floor keeps the standard
       deviation of the pre-activation at least 1 when there are many
       inputs (where ``H**(1/d)`` tends to 1);
    3. choose the centre ``c_j``, the quantile of ``p_j`` at level
       ``t_j / H`` (``1 - t_j / H`` where the first component of ``u_j`` is
       negative), with ``t_j = k_j + 0.5``, ``k_0, ..., k_{H-1}`` a random
       permutation of ``0, ..., H-1``: one centre in the middle (by weight)
       of each of ``H`` slices of the data holding ``1 / H`` of its weight
       each, in a random order of the directions (for one input, the
       centres are evenly spaced over the quantiles, one in each slice);
    4. set the kernel column ``w_j = (beta_j / h_j) u_j`` and the bias
       ``b_j = -(beta_j / h_j) c_j``.

    The pre-activation is then ``z_j = beta_j (p_j - c_j) / h_j``: zero
    (the unit's transition) at ``p_j = c_j``, with standard deviation
    ``beta_j / sqrt(3)`` over the data, and of magnitude at most about
    ``2 beta_j`` for evenly spread inputs. Scaling ``X`` by ``a`` divides
    the kernels by ``a`` and multiplies the centres by ``a``: the initial
    network is the same function of the scaled data. A projection of zero
    spread (or below 1e-10 of its magnitude) gets ``h_j = 1`` and its
    centre at ``m_j +/- (2 t_j / H - 1)``, around its value ``m_j``.

    The output layer is not changed: :func:`build_network` gives it Glorot
    uniform kernels and zero biases. The weights are computed in float64 and
    written in the model's dtype (float32 or float64).

    References
    ----------
    D. Nguyen and B. Widrow, "Improving the learning speed of 2-layer neural
    networks by choosing initial values of the adaptive weights", IJCNN
    1990, vol. 3, pp. 21-26.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lm.network import build_network, init_from_data
    >>> X = np.linspace(0.0, 10.0, 101).reshape(-1, 1)
    >>> model = init_from_data(build_network(1, 1, hidden=(5,), seed=0), X, seed=0)
    >>> kernel, bias = model.get_weights()[:2]
    >>> kernel.dtype
    dtype('float32')
    >>> centres = np.sort(-bias / kernel[0])  # where each unit's tanh is 0
    >>> np.floor(centres / 2.0).astype(int).tolist()  # one in each fifth
    [0, 1, 2, 3, 4]
    """
    layers, names = _dense_chain(model)
    if not layers or any(name is None for name in names):
        raise ValueError(
            "init_from_data needs a plain chain of Dense layers with "
            f"activations from {sorted(ACTIVATIONS)}, e.g. one made by "
            "build_network."
        )
    if isinstance(max_samples, bool) or not isinstance(max_samples, Integral):
        raise TypeError(f"max_samples must be an int. Got {max_samples!r}.")
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1. Got {max_samples}.")
    X = np.asarray(X)
    n_features = int(layers[0].kernel.shape[0])
    if X.ndim != 2 or X.shape[1] != n_features or X.shape[0] < 1:
        raise ValueError(
            f"X must be a 2-D array with at least one row and {n_features} "
            f"columns, the inputs of the model. Got shape {X.shape}."
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values.")
    if sample_weight is None:
        rows = np.arange(X.shape[0])
        weights = np.ones(X.shape[0])
    else:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight must have shape ({X.shape[0]},), one weight per "
                f"row of X. Got shape {weights.shape}."
            )
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
            raise ValueError("sample_weight must be finite and non-negative.")
        rows = np.flatnonzero(weights > 0)
        if rows.size == 0:
            raise ValueError("sample_weight must have a positive weight.")

    rng = np.random.default_rng(seed)
    if rows.size > max_samples:
        rows = np.sort(rng.choice(rows, size=max_samples, replace=False))
    # Only the rows used are copied (to float64); X itself is not changed.
    A = np.asarray(X[rows], dtype=np.float64)
    weights = weights[rows]
    weights = weights / np.sum(weights)

    for layer, name in zip(layers[:-1], names[:-1], strict=True):
        d, n_units = (int(n) for n in layer.kernel.shape)
        directions = rng.standard_normal((d, n_units))
        # A zero draw has probability zero; make it a unit direction anyway.
        directions[:, np.linalg.norm(directions, axis=0) == 0] = 1.0
        directions /= np.linalg.norm(directions, axis=0)
        # One gain for every unit and centres in the middle of their slices:
        # on sinc(10 x), fewer epochs to a given MSE than random gains in
        # [gain / 2, gain] and random offsets within the slices.
        gain = max(0.7 * n_units ** (1.0 / d), np.sqrt(3.0))
        levels = (rng.permutation(n_units) + 0.5) / n_units
        # Count the levels from the low end of the first input's axis: in 1-D
        # the centres then fill the slices of the data whatever the signs.
        flipped = directions[0] < 0
        levels = np.where(flipped, 1.0 - levels, levels)

        projections = A @ directions
        mean = weights @ projections
        spread = np.sqrt(weights @ (projections - mean) ** 2)
        half = np.sqrt(3.0) * spread
        centres = _weighted_quantiles(projections, weights, levels)
        constant = spread <= _CONSTANT_RTOL * np.max(np.abs(projections), axis=0)
        half = np.where(constant, 1.0, half)
        centres = np.where(constant, mean + 2.0 * levels - 1.0, centres)

        slopes = gain / half
        kernel = directions * slopes
        bias = -slopes * centres

        dtype = keras.backend.standardize_dtype(layer.kernel.dtype)
        with np.errstate(over="ignore"):
            kernel_cast = kernel.astype(dtype)
            bias_cast = bias.astype(dtype)
        if not (np.all(np.isfinite(kernel_cast)) and np.all(np.isfinite(bias_cast))):
            raise ValueError(
                f"The data-based weights of layer {layer.name!r} overflow "
                f"{dtype}: the data's scale is too extreme. Scale the data (e.g. "
                "with sklearn.preprocessing.StandardScaler) or use float64."
            )
        layer.kernel.assign(kernel_cast)
        if layer.use_bias:
            layer.bias.assign(bias_cast)
        A = _apply_dense(layer, name, A)
    return model
