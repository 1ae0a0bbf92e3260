"""The benchmark problems and the initial weights the contenders share.

=========  =============================================  =======  ==========
task       data                                           network  score
=========  =============================================  =======  ==========
sinc       ``y = sinc(10 x)``, 20 000 points on [-1, 1]   1-20-1   train MSE
friedman1  ``make_friedman1(5000, noise=1, seed 0)``      10-20-1  test R^2
digits     ``load_digits``                                64-20-10 test acc.
scale      sinc with 10**6 points (10**5 with --quick)    1-20-1   train MSE
=========  =============================================  =======  ==========

Hidden layers use ``tanh``; outputs are linear (logits for digits). For
friedman1 and digits a quarter of the samples is held out
(``train_test_split(test_size=0.25, random_state=0)``, stratified for digits)
and the inputs are standardised with statistics of the training part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Task", "LAYERS", "load_task", "glorot_weights", "n_weights"]

HIDDEN = 20
SINC_POINTS = 20_000
#: Units per layer (inputs, hidden, outputs) of each task's network.
LAYERS = {
    "sinc": (1, HIDDEN, 1),
    "friedman1": (10, HIDDEN, 1),
    "digits": (64, HIDDEN, 10),
    "scale": (1, HIDDEN, 1),
}


@dataclass
class Task:
    """One problem: data (float64 inputs) and the network shape.

    Attributes
    ----------
    name : str
    kind : {"regression", "classification"}
    x_train, y_train : ndarray
        Training inputs ``(n, d)`` and targets (``(n,)`` floats or int labels).
    x_test, y_test : ndarray or None
        Held-out data, or ``None`` for the pure optimisation tasks.
    layers : tuple of int
        ``(inputs, hidden, outputs)``.
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    layers: tuple[int, int, int]

    @property
    def n_weights(self) -> int:
        """Weights of the network (kernels and biases)."""
        return n_weights(self.layers)


def n_weights(layers: tuple[int, ...]) -> int:
    """Number of weights of a chain of dense layers with biases."""
    return sum((a + 1) * b for a, b in zip(layers[:-1], layers[1:], strict=True))


def sinc_data(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_points`` evenly spaced ``x`` on [-1, 1] and ``y = sinc(10 x)``."""
    x = np.linspace(-1.0, 1.0, n_points).reshape(-1, 1)
    return x, np.sinc(10.0 * x[:, 0])


def _split_and_scale(x, y, stratify):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=stratify
    )
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_te), y_tr, y_te


def load_task(name: str, scale_samples: int = 1_000_000) -> Task:
    """Build the data of a task.

    Parameters
    ----------
    name : {"sinc", "friedman1", "digits", "scale"}
    scale_samples : int, default=1_000_000
        Points of the scale task.

    Returns
    -------
    Task
    """
    if name in ("sinc", "scale"):
        x, y = sinc_data(SINC_POINTS if name == "sinc" else scale_samples)
        return Task(name, "regression", x, y, None, None, LAYERS[name])
    if name == "friedman1":
        from sklearn.datasets import make_friedman1

        x, y = make_friedman1(n_samples=5000, noise=1.0, random_state=0)
        x_tr, x_te, y_tr, y_te = _split_and_scale(x, y, None)
        return Task(name, "regression", x_tr, y_tr, x_te, y_te, LAYERS[name])
    if name == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x_tr, x_te, y_tr, y_te = _split_and_scale(x.astype(np.float64), y, y)
        return Task(name, "classification", x_tr, y_tr, x_te, y_te, LAYERS[name])
    raise ValueError(f"Unknown task {name!r}.")


def glorot_weights(layers: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Initial weights shared by the contenders that take given weights.

    Kernels are Glorot-uniform, ``U(-r, r)`` with ``r = sqrt(6 / (fan_in +
    fan_out))`` (Keras' default initialiser), biases zero; the list is in
    Keras' order ``[W1, b1, W2, b2, ...]``, float64.

    Parameters
    ----------
    layers : tuple of int
        Units per layer, inputs first.
    seed : int

    Returns
    -------
    list of ndarray
    """
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:], strict=True):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)))
        weights.append(np.zeros(fan_out))
    return weights
