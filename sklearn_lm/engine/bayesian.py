r"""Bayesian regularization and the linearised (Laplace) predictive variance.

Bayesian regularization (MacKay 1992; Foresee and Hagan 1997; MATLAB's
``trainbr``) treats the L2 strength and the noise level as hyperparameters
estimated from the data. With the mean squared error, ``m = N k`` residuals
``e`` (``N`` samples, ``k`` outputs) and ``n_w`` penalised weights, the
objective is

.. math::

    M(w) = \beta E_D + \alpha E_W, \qquad
    E_D = \tfrac12 \sum_i s_i \lVert e_i \rVert^2, \qquad
    E_W = \tfrac12 \sum_{j \in P} w_j^2,

with sample weights ``s_i`` and ``P`` the penalised weights
(:func:`penalty_mask`): every weight but the output layer's bias. The
output bias carries a flat prior, like the intercept of
``sklearn.linear_model.BayesianRidge``, so that shifting the targets does
not change the fit. The hidden biases are penalised, as in ``trainbr``
(which penalises every weight), unlike the engine's plain ``l2`` (kernels
only): a flat prior on them leaves ``A`` below singular whenever two hidden
units are nearly redundant, which small networks on little data often
are, while with them penalised ``A`` is positive definite for any
``alpha > 0``. The LM step minimises the loss plus ``l2 sum(w_P^2)``
with loss ``sum(s e^2) / (N c)`` (``c = k`` for the mean squared error,
:mod:`sklearn_lm.engine.losses`). Dividing ``M`` by ``beta N c / 2``,

.. math::

    \frac{2 M}{\beta N c} = \frac{\sum_i s_i \lVert e_i\rVert^2}{N c}
        + \frac{\alpha}{\beta N c} \sum_{j\in P} w_j^2,
    \qquad\text{so}\qquad l_2 = \frac{\alpha}{\beta N c} = \frac{\alpha}{\beta m}.

After every accepted step, at the new weights, with the Gauss-Newton
Hessian of ``M``

.. math::

    A = \beta J^T S J + \alpha \operatorname{diag}(p)

(``J`` the Jacobian of the residuals, ``S`` the sample weights, ``p`` the
0/1 penalty mask) the hyperparameters are re-estimated (MacKay's fixed
point, as ``BayesianRidge`` iterates it)

.. math::

    \gamma = n_w - \alpha \operatorname{tr}(\operatorname{diag}(p) A^{-1}),
    \qquad \alpha = \frac{\gamma}{2 E_W}, \qquad
    \beta = \frac{m - \gamma}{2 E_D},

where ``gamma`` is the effective number of penalised weights that the data
determine (the unpenalised biases are not counted, as ``BayesianRidge``
does not count its intercept). The log evidence (log marginal likelihood)
reported is

.. math::

    \ln p(D \mid \alpha, \beta) = -\beta E_D - \alpha E_W
        - \tfrac12 \ln\det A + \tfrac{n_w}{2} \ln\alpha
        + \tfrac{m}{2} \ln\beta - \tfrac{m}{2} \ln 2\pi,

with every weight in ``A`` (the flat prior of the biases makes it defined
up to a constant); MacKay's symmetry term ``ln(h! 2^h)`` for ``h`` hidden
units is omitted.

The hyperparameters start as ``trainbr``'s do, from ``gamma = n_w``:
``alpha = n_w / (2 E_W)``, ``beta = (m - n_w) / (2 E_D)`` (1 if that is not
positive). ``J^T S J`` and ``E_D`` at the new weights come from a separate
compiled pass over the data (the normal equations of the step are those at
the weights before it); ``A`` is factored by Cholesky in NumPy. A failed
factorisation (or non-finite values) keeps the previous ``alpha`` and
``beta``. Everything here is float64: ``J^T S J`` is summed in float64 by
the pass, ``A``, its factor, ``gamma`` and the evidence are float64.

The predictive variance of an output at an input ``x`` is the linearised
Laplace (generalised linear model) one,

.. math::

    \sigma^2(x) = \frac1\beta + g^T A^{-1} g, \qquad
    g = \frac{\partial \hat y(x)}{\partial w},

from :func:`posterior_covariance` and :func:`predictive_variance`.

References
----------
D. J. C. MacKay, "A practical Bayesian framework for backpropagation
networks", Neural Computation 4(3), 1992.
F. D. Foresee and M. T. Hagan, "Gauss-Newton approximation to Bayesian
learning", Proc. International Conference on Neural Networks, 1997.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from . import losses as losses_module

__all__ = [
    "penalty_mask",
    "Evidence",
    "BayesianRegularization",
    "evidence",
    "normal_matrix",
    "posterior_covariance",
    "predictive_variance",
]

_F64 = tf.float64
#: Bytes of float64 Jacobian per chunk in :func:`predictive_variance`.
_CHUNK_BYTES = 32 * 2**20


def penalty_mask(fn) -> np.ndarray:
    """1.0 for the weights Bayesian regularization penalises, else 0.0.

    Every weight but the last variable of the model when it is a vector:
    the output layer's bias (see the module docstring).

    Parameters
    ----------
    fn : ModelFunction

    Returns
    -------
    ndarray of shape (n,)
    """
    mask = np.ones(int(fn.n_params))
    if len(fn.shapes[-1]) == 1:
        mask[-int(fn.sizes[-1]) :] = 0.0
    return mask


class Evidence(NamedTuple):
    """The hyperparameters and evidence at some weights (float64 numbers).

    Attributes
    ----------
    alpha : float
        Precision of the penalised weights.
    beta : float
        Precision of the noise (its variance is ``1 / beta``).
    gamma : float
        Effective number of penalised weights,
        ``n_w - alpha tr(diag(p) A^{-1})``, for the ``alpha``, ``beta`` it
        was computed with.
    log_evidence : float
        ``ln p(D | alpha, beta)`` for those ``alpha``, ``beta``.
    ok : bool
        Whether ``A`` could be factored; if not, ``alpha`` and ``beta`` are
        the previous ones and ``gamma``, ``log_evidence`` NaN.
    """

    alpha: float
    beta: float
    gamma: float
    log_evidence: float
    ok: bool


def evidence(
    normal: np.ndarray,
    mask: np.ndarray,
    e_d: float,
    e_w: float,
    m: int,
    alpha: float,
    beta: float,
) -> Evidence:
    """One re-estimation of ``alpha`` and ``beta`` (see the module docstring).

    Parameters
    ----------
    normal : ndarray of shape (n, n)
        ``J^T S J`` at the weights, float64.
    mask : ndarray of shape (n,)
        1.0 for penalised weights, else 0.0.
    e_d, e_w : float
        ``E_D = sum(s e^2) / 2`` and ``E_W = sum(w_P^2) / 2`` at the weights.
    m : int
        Number of residuals.
    alpha, beta : float
        The current hyperparameters, which give ``A``.

    Returns
    -------
    Evidence
        ``gamma`` and ``log_evidence`` at the current ``alpha``, ``beta``;
        ``alpha`` and ``beta`` re-estimated from them.
    """
    a = beta * np.asarray(normal, np.float64) + np.diag(alpha * mask)
    try:
        chol = np.linalg.cholesky(0.5 * (a + a.T))
    except np.linalg.LinAlgError:
        chol = None
    if chol is None or not np.all(np.isfinite(chol)):
        return Evidence(alpha, beta, math.nan, math.nan, False)
    # diag(A^-1)_j = sum_i (L^-1)_ij^2.
    inverse_factor = np.linalg.solve(chol, np.eye(len(mask)))
    trace = float(np.sum(mask * np.sum(inverse_factor**2, axis=0)))
    n_w = float(np.sum(mask))
    gamma = n_w - alpha * trace
    log_det = 2.0 * float(np.sum(np.log(np.diag(chol))))
    log_evidence = (
        -beta * e_d
        - alpha * e_w
        - 0.5 * log_det
        + 0.5 * n_w * math.log(alpha)
        + 0.5 * m * math.log(beta)
        - 0.5 * m * math.log(2.0 * math.pi)
    )
    new_alpha = gamma / (2.0 * e_w) if e_w > 0 else math.nan
    new_beta = (m - gamma) / (2.0 * e_d) if e_d > 0 else math.nan
    if not (new_alpha > 0 and new_beta > 0 and math.isfinite(new_alpha * new_beta)):
        return Evidence(alpha, beta, gamma, log_evidence, False)
    return Evidence(new_alpha, new_beta, gamma, log_evidence, True)


class BayesianRegularization:
    """The hyperparameters of a Bayesian-regularized fit, updated step by step.

    Used by :class:`~sklearn_lm.engine.Trainer` when
    ``StepConfig.bayesian`` is on.

    Parameters
    ----------
    mask : ndarray of shape (n,)
        :func:`penalty_mask`.
    n_outputs : int
        ``k``: residuals per sample.

    Attributes
    ----------
    alpha, beta, gamma, log_evidence : float
        The latest values (NaN before the first update).
    normal : ndarray of shape (n, n) or None
        ``J^T S J`` at the weights of the latest update, float64.
    """

    def __init__(self, mask: np.ndarray, n_outputs: int):
        self.mask = np.asarray(mask, np.float64)
        self.n_outputs = int(n_outputs)
        self.alpha = self.beta = self.gamma = self.log_evidence = math.nan
        self.normal: np.ndarray | None = None
        self.n_residuals = 0

    @property
    def started(self) -> bool:
        """Whether the hyperparameters have their initial values."""
        return math.isfinite(self.alpha)

    @property
    def noise_variance(self) -> float:
        """``1 / beta``."""
        return 1.0 / self.beta

    def l2(self, n_rows: int) -> float:
        """The engine's L2 strength ``alpha / (beta N c)`` for ``N = n_rows``."""
        return self.alpha / (self.beta * n_rows * self.n_outputs)

    def start(self, loss_sum: float, w: np.ndarray, n_rows: int) -> None:
        """Initial values from ``gamma = n_w`` (as ``trainbr``).

        Parameters
        ----------
        loss_sum : float
            ``sum(s e^2) = 2 E_D`` at the initial weights.
        w : ndarray of shape (n,)
            The initial weights.
        n_rows : int
            ``N``.
        """
        m = n_rows * self.n_outputs
        n_w = float(np.sum(self.mask))
        e_w = 0.5 * float(np.sum(self.mask * np.square(w, dtype=np.float64)))
        self.n_residuals = m
        self.alpha = n_w / (2.0 * e_w) if e_w > 0 and n_w > 0 else 1.0
        self.beta = (m - n_w) / loss_sum if loss_sum > 0 and m > n_w else 1.0

    def update(self, normal: np.ndarray, loss_sum: float, w: np.ndarray) -> None:
        """Re-estimate at new weights ``w`` (see :func:`evidence`)."""
        e_w = 0.5 * float(np.sum(self.mask * np.square(w, dtype=np.float64)))
        result = evidence(
            normal,
            self.mask,
            0.5 * float(loss_sum),
            e_w,
            self.n_residuals,
            self.alpha,
            self.beta,
        )
        self.normal = np.asarray(normal, np.float64)
        self.alpha, self.beta = result.alpha, result.beta
        self.gamma, self.log_evidence = result.gamma, result.log_evidence

    def logs(self) -> dict[str, float]:
        """The per-epoch record: ``alpha``, ``beta``, ``noise_variance``,
        ``gamma``, ``log_evidence``."""
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "noise_variance": self.noise_variance,
            "gamma": self.gamma,
            "log_evidence": self.log_evidence,
        }


def normal_pass(lm, x_spec: tf.TensorSpec, y_spec: tf.TensorSpec):
    """``(J^T S J, sum(s e^2))`` at given weights, compiled once.

    ``lm`` is the step's :class:`~sklearn_lm.engine.step.LMStep` (its
    chunking); the returned function takes ``(w, x, y, sample_weight)``.
    """
    w_spec = tf.TensorSpec([lm.fn.n_params], lm.fn.dtype)
    sw_spec = tf.TensorSpec([None], _F64)
    return tf.function(
        lm.normal_matrix,
        input_signature=[w_spec, x_spec, y_spec, sw_spec],
        autograph=False,
    ).get_concrete_function()


def normal_matrix(fn, x, y, sample_weight=None) -> tuple[np.ndarray, float]:
    """``(J^T S J, sum(s e^2))`` of the mean squared error at ``fn``'s weights.

    ``J`` is the Jacobian of the outputs (one residual per output), ``S``
    the sample weights; float64, accumulated over chunks of samples
    (:mod:`sklearn_lm.engine.covariance`).
    """
    from . import covariance

    loss = losses_module.get("mse")
    x, y, sw = covariance._prepare(fn, loss, x, y, sample_weight)
    n, k = int(fn.n_params), int(fn.n_outputs)
    size = max(1, covariance.CHUNK_BYTES // (8 * k * n))
    return covariance._normal_matrix(fn, loss, x, y, sw, size)


def posterior_covariance(
    normal: np.ndarray, mask: np.ndarray, alpha: float, beta: float
) -> np.ndarray | None:
    """``A^{-1}`` for ``A = beta J^T S J + alpha diag(p)``, or ``None``.

    Inverted after scaling to a unit diagonal, by an eigendecomposition
    (:mod:`sklearn_lm.engine.covariance`); ``None`` when ``A`` is singular:
    an eigenvalue of the scaled matrix at most ``eps * n`` times the largest
    (with ``alpha = 0``, some combination of weights does not change the
    outputs), or a diagonal entry that is not positive. Float64.
    """
    from .covariance import _scaled_inverse

    a = beta * np.asarray(normal, np.float64) + np.diag(alpha * np.asarray(mask))
    inverse, _ = _scaled_inverse(a, tol=np.finfo(np.float64).eps * len(mask))
    return inverse


def predictive_variance(fn, x, covariance: np.ndarray) -> np.ndarray:
    """``g^T C g`` for every sample and output, ``g = d z / d w``; float64.

    Parameters
    ----------
    fn : ModelFunction
        The model as a function of its weights, taken at ``fn.get_weights()``.
    x : array-like of shape (N, ...)
        Inputs.
    covariance : ndarray of shape (n, n)
        ``C``, for example :func:`posterior_covariance`.

    Returns
    -------
    ndarray of shape (N, k)
        Add the noise variance ``1 / beta`` for the predictive variance.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating and x.dtype != fn.dtype:
        x = tf.cast(x, fn.dtype)
    n, k = int(fn.n_params), int(fn.n_outputs)
    size = max(1, _CHUNK_BYTES // (8 * k * n))
    w = fn.get_weights()
    c = tf.constant(covariance, _F64)

    @tf.function(reduce_retracing=True, autograph=False)
    def chunk(xc):
        _, jac = fn.outputs_and_jacobian(w, xc)
        jac = tf.cast(jac, _F64)
        return tf.reduce_sum(tf.einsum("ckn,nm->ckm", jac, c) * jac, axis=-1)

    parts = [chunk(x[i : i + size]).numpy() for i in range(0, int(x.shape[0]), size)]
    return np.concatenate(parts) if parts else np.zeros((0, k))
