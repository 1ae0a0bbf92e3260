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

After every accepted step, with ``E_D`` and ``E_W`` at the new weights and
the Gauss-Newton Hessian of ``M``

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
positive). As in MATLAB's ``trainbr``, ``J^T S J`` during training is the
one the step formed at its starting weights (returned by the compiled step,
:meth:`LMStep.step_with_normal <sklearn_lm.engine.step.LMStep.step_with_normal>`),
one step behind the weights, and ``E_D`` comes from the step's objective
less its L2 term: no pass over the data of its own. The fixed point is the
same, and the estimates of a linear model (constant ``J``) are unchanged.
After the last epoch the latest update is redone with ``J^T S J`` at the
final weights, from a compiled pass (``CompiledStep.normal`` of
:mod:`sklearn_lm.engine.compile`, traced once per architecture like the
step and kept in the same caches), so that the fitted ``alpha``, ``beta``,
``gamma``, log evidence and posterior are those of the final weights.
``A`` is factored by Cholesky in NumPy (on one BLAS thread). A failed
factorisation (or non-finite values) keeps the previous ``alpha`` and
``beta``. Everything here is float64: ``J^T S J``
is summed in float64 by the pass, ``A``, its factor, ``gamma`` and the
evidence are float64.

Groups of weights
-----------------
With ``groups="layer"`` (``StepConfig.bayesian_groups``) each penalised
variable ``g`` -- a layer's kernel, a hidden layer's bias vector
(:func:`penalty_groups`) -- has its own precision ``alpha_g`` (MacKay
1992's weight classes): ``alpha E_W`` becomes ``sum_g alpha_g E_{W,g}`` in
``M``, with ``E_{W,g} = 1/2 sum_{j in g} w_j^2`` and ``n_g`` weights in the
group,

.. math::

    A = \beta J^T S J + \operatorname{diag}(\alpha_{g(j)} p_j), \qquad
    \gamma_g = n_g - \alpha_g \operatorname{tr}_g(A^{-1}), \qquad
    \alpha_g = \frac{\gamma_g}{2 E_{W,g}},

with ``tr_g`` the sum of the diagonal entries of ``A^{-1}`` in group
``g``; ``gamma = sum_g gamma_g`` gives ``beta`` as above (a group whose
update is not a finite positive number keeps its ``alpha_g``), and the log
evidence has ``- sum_g alpha_g E_{W,g} + sum_g n_g/2 ln alpha_g`` in place
of ``- alpha E_W + n_w/2 ln alpha``. The step's L2 strength is then one
entry per weight, ``l2_j = alpha_{g(j)} s / (2 beta N c)``. With one group
(``hidden=()``: the kernel) this is the single ``alpha``.

The predictive variance of an output at an input ``x`` is the linearised
Laplace (generalised linear model) one,

.. math::

    \sigma^2(x) = \frac1\beta + g^T A^{-1} g, \qquad
    g = \frac{\partial \hat y(x)}{\partial w},

from :func:`~sklearn_lm.engine.predictive.posterior_covariance` and
:func:`~sklearn_lm.engine.predictive.predictive_variance`
(:mod:`sklearn_lm.engine.predictive`).

Classification
--------------
For the cross-entropies in their generalised Gauss-Newton form on logits
(binary, categorical and sparse categorical, ``from_logits=True``; MacKay
1992b) the likelihood has no noise level: ``beta`` is fixed at 1 and the
data misfit is the summed (not averaged) cross-entropy,
``E_D = CE_sum = sum_i s_i l_i``. With ``H = J^T S Lambda J`` the
generalised Gauss-Newton matrix of ``CE_sum`` (``J`` the Jacobian of the
logits, ``Lambda`` the Hessian of the cross-entropy on the logits:
``diag(p) - p p^T`` for a softmax, ``p (1 - p)`` per sigmoid output),

.. math::

    M(w) = E_D + \alpha E_W, \qquad A = H + \alpha \operatorname{diag}(p),

    \gamma = n_w - \alpha \operatorname{tr}(\operatorname{diag}(p) A^{-1}),
    \qquad \alpha = \frac{\gamma}{2 E_W},

    \ln p(D \mid \alpha) = -E_D - \alpha E_W - \tfrac12 \ln\det A
        + \tfrac{n_w}{2} \ln\alpha

(up to the same constant of the flat prior on the output biases). The step
minimises ``CE_sum / (N c) + l2 sum(w_P^2)`` (``c`` is 1 for the softmax
cross-entropies, the number of outputs for the binary one); dividing ``M``
by ``N c`` gives ``l2 = alpha / (2 N c)``. In general, with ``s`` the loss's
curvature scale (2 for the mean squared error, whose ``E_D`` is half the
loss sum; 1 for the cross-entropies, whose ``E_D`` is the loss sum),
``l2 = alpha s / (2 beta N c)``.

A softmax is unchanged when the same number is added to every logit, so
``H`` is singular along ``u``, the unit vector that shifts every output
bias equally, and, the output biases having a flat prior, so is ``A``.
The evidence is then that of the identifiable weights: ``A`` is
factored as ``A + u u^T`` (``u`` an eigenvector of ``A`` with eigenvalue 0
becomes one with eigenvalue 1), whose determinant is the product of the
other eigenvalues of ``A``, and whose inverse is ``A^+ + u u^T``; ``diag(p)
u = 0``, so the trace is that of the pseudo-inverse, and
:func:`~sklearn_lm.engine.predictive.posterior_covariance` returns ``A^+``
(a shift of all logits has no variance). See :func:`shift_direction`.

The variance of each logit, ``s_k^2 = g_k^T A^{-1} g_k`` with ``g_k = d z_k
/ d w`` (:func:`~sklearn_lm.engine.predictive.predictive_variance`),
moderates the probabilities
(:func:`~sklearn_lm.engine.predictive.moderated_probabilities`,
MacKay's probit approximation).

References
----------
D. J. C. MacKay, "A practical Bayesian framework for backpropagation
networks", Neural Computation 4(3), 1992.
D. J. C. MacKay, "The evidence framework applied to classification
networks", Neural Computation 4(5), 1992 (1992b).
Z. Lu, E. Ie and F. Sha, "Mean-field approximation to Gaussian-softmax
integral with application to uncertainty estimation", arXiv:2006.07584,
2020.
F. D. Foresee and M. T. Hagan, "Gauss-Newton approximation to Bayesian
learning", Proc. International Conference on Neural Networks, 1997.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from . import losses as losses_module
from .evidence import Evidence, evidence
from .priors import likelihood, penalty_groups, penalty_mask, shift_direction

__all__ = [
    "penalty_mask",
    "penalty_groups",
    "likelihood",
    "shift_direction",
    "Evidence",
    "BayesianRegularization",
    "evidence",
]

_F64 = tf.float64


class BayesianRegularization:
    """The hyperparameters of a Bayesian-regularized fit, updated step by step.

    Used by :class:`~sklearn_lm.engine.Trainer` when
    ``StepConfig.bayesian`` is on.

    Parameters
    ----------
    mask : ndarray of shape (n,)
        :func:`penalty_mask`.
    n_outputs : int
        ``k``: outputs of the model.
    loss : Loss, optional
        The training loss (default: the mean squared error). Its
        :func:`likelihood` decides whether ``beta`` is estimated
        (``"gaussian"``) or fixed at 1 (the cross-entropies); its output
        normaliser ``c`` and curvature scale ``s`` give ``E_D`` and the L2
        strength (see the module docstring).
    shift : ndarray of shape (n,), optional
        :func:`shift_direction`: a direction the likelihood cannot see.
    groups : ndarray of shape (n,) of int, optional
        :func:`penalty_groups`: one ``alpha_g`` per group of weights
        (``bayesian_groups="layer"``); by default one ``alpha``.

    Attributes
    ----------
    alpha : float or ndarray of shape (n_groups,)
        The latest weight precision, one per group with ``groups`` (NaN
        before the first update).
    beta, gamma, log_evidence : float
        The latest values (NaN before the first update; ``beta`` is 1 from
        the start without ``estimate_beta``).
    gammas : ndarray of shape (n_groups,) or None
        With ``groups``: each group's ``gamma_g`` (NaN before the first
        update); else ``None``.
    estimate_beta : bool
        Whether ``beta`` is a noise precision that is re-estimated.
    normal : ndarray of shape (n, n) or None
        The Hessian of ``E_D`` (``J^T S J``, or the generalised
        Gauss-Newton matrix of the summed cross-entropy) at the weights of
        the latest update, float64.
    """

    def __init__(
        self,
        mask: np.ndarray,
        n_outputs: int,
        loss: losses_module.Loss | None = None,
        shift: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ):
        loss = losses_module.get("mse") if loss is None else loss
        kind = likelihood(loss)
        if kind is None:
            raise ValueError(
                "Bayesian regularization needs the mean squared error or a "
                "cross-entropy on logits in its Gauss-Newton form. Received: "
                f"loss={loss!r}"
            )
        self.mask = np.asarray(mask, np.float64)
        self.n_outputs = int(n_outputs)
        self.estimate_beta = kind == "gaussian"
        self.normaliser = int(loss.output_normaliser(self.n_outputs))
        self.curvature_scale = float(loss.curvature_scale)
        self.shift = None if shift is None else np.asarray(shift, np.float64)
        self.groups = None if groups is None else np.asarray(groups, np.int64)
        self.alpha = self.gamma = self.log_evidence = math.nan
        self.gammas = None
        if self.groups is not None:
            self.alpha = np.full(self.n_groups, math.nan)
            self.gammas = np.full(self.n_groups, math.nan)
        self.beta = math.nan if self.estimate_beta else 1.0
        self.normal: np.ndarray | None = None
        self.n_residuals = 0
        # alpha, beta before the latest update (refresh redoes it).
        self._previous: tuple | None = None

    @classmethod
    def for_model(
        cls, fn, loss: losses_module.Loss, groups: str = "single"
    ) -> BayesianRegularization:
        """The state for a model function and its training loss.

        ``groups``: ``"single"`` (one ``alpha``) or ``"layer"``
        (:func:`penalty_groups`), as ``StepConfig.bayesian_groups``.
        """
        by_group = penalty_groups(fn) if groups == "layer" else None
        shift = shift_direction(fn, loss)
        return cls(penalty_mask(fn), fn.n_outputs, loss, shift, by_group)

    @property
    def n_groups(self) -> int:
        """Number of weight precisions (1 without ``groups``)."""
        if self.groups is None:
            return 1
        return int(self.groups.max()) + 1 if self.groups.size else 0

    @property
    def started(self) -> bool:
        """Whether the hyperparameters have their initial values."""
        return bool(np.all(np.isfinite(self.alpha)))

    @property
    def weight_alpha(self) -> float | np.ndarray:
        """``alpha`` per weight: ``alpha_{g(j)}`` (0 for unpenalised
        weights) with ``groups``, else the scalar ``alpha``."""
        if self.groups is None:
            return self.alpha
        alpha = np.asarray(self.alpha, np.float64)
        return np.where(self.groups >= 0, alpha[np.maximum(self.groups, 0)], 0.0)

    def _weight_energy(self, w: np.ndarray) -> float | np.ndarray:
        """``E_W`` (per group with ``groups``), float64."""
        energy = 0.5 * self.mask * np.square(w, dtype=np.float64)
        if self.groups is None:
            return float(np.sum(energy))
        penalised = self.groups >= 0
        return np.bincount(
            self.groups[penalised], energy[penalised], minlength=self.n_groups
        )

    @property
    def noise_variance(self) -> float:
        """``1 / beta``."""
        return 1.0 / self.beta

    def data_misfit(self, loss_sum: float) -> float:
        """``E_D`` from the weighted loss sum: ``loss_sum / s``."""
        return float(loss_sum) / self.curvature_scale

    def l2(self, n_rows: int) -> float | np.ndarray:
        """The engine's L2 strength ``alpha s / (2 beta N c)`` for ``N = n_rows``.

        ``alpha / (beta N k)`` for the mean squared error, ``alpha / (2 N
        c)`` for the cross-entropies. With ``groups``, one entry per weight
        (from :attr:`weight_alpha`), float64 of shape ``(n,)``.
        """
        norm = 2.0 * self.beta * n_rows * self.normaliser
        return self.weight_alpha * self.curvature_scale / norm

    def start(self, loss_sum: float, w: np.ndarray, n_rows: int) -> None:
        """Initial values from ``gamma = n_w`` (as ``trainbr``).

        ``alpha = n_w / (2 E_W)`` (``alpha_g = n_g / (2 E_{W,g})`` per
        group); with ``estimate_beta``, ``beta = (m - n_w) / (2 E_D)`` (1 if
        that is not positive).

        Parameters
        ----------
        loss_sum : float
            The weighted loss sum at the initial weights (``2 E_D`` for the
            mean squared error, ``E_D`` for the cross-entropies).
        w : ndarray of shape (n,)
            The initial weights.
        n_rows : int
            ``N``.
        """
        m = n_rows * self.n_outputs
        n_w = float(np.sum(self.mask))
        e_w = 0.5 * float(np.sum(self.mask * np.square(w, dtype=np.float64)))
        self.n_residuals = m
        if self.groups is None:
            self.alpha = n_w / (2.0 * e_w) if e_w > 0 and n_w > 0 else 1.0
        else:
            e_g = self._weight_energy(w)
            penalised = self.groups >= 0
            n_g = np.bincount(
                self.groups[penalised], self.mask[penalised], minlength=self.n_groups
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                alpha = n_g / (2.0 * e_g)
            self.alpha = np.where((e_g > 0) & (n_g > 0), alpha, 1.0)
        if self.estimate_beta:
            e_d = self.data_misfit(loss_sum)
            self.beta = (m - n_w) / (2.0 * e_d) if e_d > 0 and m > n_w else 1.0

    def update(self, normal: np.ndarray, loss_sum: float, w: np.ndarray) -> None:
        """Re-estimate at new weights ``w`` (see :func:`evidence`).

        ``normal`` is the Hessian of ``E_D`` and ``loss_sum`` the weighted
        loss sum (as for :meth:`start`), float64. During training the
        normal matrix may be the one the step formed at the previous
        weights; :meth:`refresh` then redoes the latest update exactly.
        """
        self._previous = (self.alpha, self.beta)
        if self.groups is None:
            e_w = 0.5 * float(np.sum(self.mask * np.square(w, dtype=np.float64)))
        else:
            e_w = self._weight_energy(w)
        result = evidence(
            normal,
            self.mask,
            self.data_misfit(loss_sum),
            e_w,
            self.n_residuals,
            self.alpha,
            self.beta,
            estimate_beta=self.estimate_beta,
            shift=self.shift,
            groups=self.groups,
        )
        self.normal = np.asarray(normal, np.float64)
        self.alpha, self.beta = result.alpha, result.beta
        self.gamma, self.log_evidence = result.gamma, result.log_evidence
        if self.groups is not None and result.gammas is not None:
            self.gammas = np.asarray(result.gammas, np.float64)

    def refresh(self, normal: np.ndarray, loss_sum: float, w: np.ndarray) -> None:
        """Redo the latest :meth:`update` at ``w``, from the ``alpha`` and
        ``beta`` that update started from (a first update if there was
        none)."""
        previous = getattr(self, "_previous", None)
        if previous is not None:
            self.alpha, self.beta = previous
        self.update(normal, loss_sum, w)

    def covariance(self) -> np.ndarray | None:
        """:func:`~sklearn_lm.engine.predictive.posterior_covariance` at the latest
        update (``None`` before)."""
        from .predictive import posterior_covariance

        if self.normal is None:
            return None
        return posterior_covariance(
            self.normal, self.mask, self.weight_alpha, self.beta, self.shift
        )

    def logs(self) -> dict[str, float]:
        """The per-epoch record: ``alpha`` (with ``groups``: ``alpha_0``,
        ``alpha_1``, ... and ``gamma_0``, ``gamma_1``, ... per group),
        ``beta`` and ``noise_variance`` (with ``estimate_beta`` only),
        ``gamma``, ``log_evidence``."""
        if self.groups is None:
            logs = {"alpha": self.alpha}
        else:
            logs = {f"alpha_{g}": float(a) for g, a in enumerate(self.alpha)}
            if self.gammas is not None:
                logs.update({f"gamma_{g}": float(v) for g, v in enumerate(self.gammas)})
        if self.estimate_beta:
            logs.update(beta=self.beta, noise_variance=self.noise_variance)
        logs.update(gamma=self.gamma, log_evidence=self.log_evidence)
        return logs
