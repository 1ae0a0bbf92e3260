"""A ``d``-``H``-1 tanh network in NumPy, with its Jacobian in closed form.

The flat parameter vector is in Keras' order, each block row-major:
``theta = [W1 (d, H), b1 (H,), w2 (H, 1), b2 (1,)]``. For inputs ``X (m, d)``

.. math::

    h = \\tanh(X W_1 + b_1), \\qquad f = h w_2 + b_2,

and the residuals ``r = f - y`` have the Jacobian (one row per sample)

.. math::

    \\partial r / \\partial W_1[a, j] = X[:, a] \\, s_j, \\quad
    \\partial r / \\partial b_1[j] = s_j, \\quad
    \\partial r / \\partial w_2[j] = h_j, \\quad
    \\partial r / \\partial b_2 = 1,

with ``s_j = w_2[j] (1 - h_j^2)``. Everything is float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TanhNet"]


class TanhNet:
    """Residuals and Jacobian of a one-hidden-layer tanh regression network.

    Parameters
    ----------
    x : ndarray of shape (m, d)
    y : ndarray of shape (m,)
    hidden : int

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 7).reshape(-1, 1)
    >>> net = TanhNet(x, np.sin(3 * x[:, 0]), hidden=3)
    >>> theta = np.random.default_rng(0).normal(size=net.n_params)
    >>> step = 1e-6 * np.eye(net.n_params)[4]
    >>> numeric = (net.residuals(theta + step) - net.residuals(theta - step)) / 2e-6
    >>> bool(np.allclose(net.jacobian(theta)[:, 4], numeric, atol=1e-8))
    True
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, hidden: int):
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
        self.m, self.d = self.x.shape
        self.hidden = int(hidden)
        self.n_params = self.d * self.hidden + 2 * self.hidden + 1
        self._jac = np.empty((self.m, self.n_params))

    @staticmethod
    def flatten(weights: list[np.ndarray]) -> np.ndarray:
        """Keras-ordered weight arrays to one float64 vector."""
        return np.concatenate([np.ravel(w) for w in weights]).astype(np.float64)

    def _unpack(self, theta):
        d, h = self.d, self.hidden
        w1 = theta[: d * h].reshape(d, h)
        b1 = theta[d * h : d * h + h]
        w2 = theta[d * h + h : d * h + 2 * h]
        return w1, b1, w2, theta[-1]

    def _hidden(self, theta):
        w1, b1, w2, b2 = self._unpack(theta)
        return np.tanh(self.x @ w1 + b1), w2, b2

    def predict(self, theta: np.ndarray) -> np.ndarray:
        """Network outputs ``f``, shape ``(m,)``."""
        h, w2, b2 = self._hidden(theta)
        return h @ w2 + b2

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """``f - y``, shape ``(m,)``."""
        return self.predict(theta) - self.y

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d r / d theta``, shape ``(m, n_params)``.

        The returned array is reused by the next call.
        """
        d, h = self.d, self.hidden
        act, w2, _ = self._hidden(theta)
        jac = self._jac
        sens = jac[:, d * h : d * h + h]
        np.multiply(1.0 - act * act, w2, out=sens)
        first = jac[:, : d * h].reshape(self.m, d, h)
        np.multiply(self.x[:, :, None], sens[:, None, :], out=first)
        jac[:, d * h + h : d * h + 2 * h] = act
        jac[:, -1] = 1.0
        return jac
