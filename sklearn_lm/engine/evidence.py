"""One re-estimation of Bayesian regularization's hyperparameters.

The arithmetic of MacKay's evidence framework on a given Hessian, in NumPy
and float64: ``A = beta normal + alpha diag(p)`` (one ``alpha_g`` per group of
weights with groups), its Cholesky factor and inverse factor, ``gamma`` (per
group), the log evidence and the new ``alpha``, ``beta``. The math, and how a
fit uses these updates, are in :mod:`sklearn_lm.engine.bayesian`, which
holds the state of a fit (:class:`~sklearn_lm.engine.bayesian.BayesianRegularization`)
and re-exports :class:`Evidence` and :func:`evidence`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack

__all__ = ["Evidence", "evidence"]

#: The BLAS libraries' thread controller (:func:`_one_blas_thread`).
_BLAS = None


def _one_blas_thread():
    """A context in which NumPy's and SciPy's BLAS run on one thread.

    The factorisations here are of LM-sized matrices (``n`` up to a few
    thousand), which one thread handles in milliseconds for hundreds of
    weights and in well under a second for a few thousand; several BLAS
    threads that busy-wait for each other next to TensorFlow's pool (or
    other processes) were measured up to a hundred times slower (a
    Cholesky factorisation of ``n = 641``: 5 s on two threads of a busy
    two-core machine, 0.05 s on one).
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()  # finds the loaded libraries once
    return _BLAS.limit(limits=1, user_api="blas")


def _hessian(normal, mask, alpha, beta, shift) -> np.ndarray:
    """``A = beta normal + alpha diag(mask)`` (plus ``u u^T`` for a shift ``u``).

    ``normal`` is symmetric; the factorisations read its lower triangle.
    A new array in Fortran order, which LAPACK factors in place (a C-ordered
    one it would first copy, at twice the cost of the factorisation).
    """
    a = np.multiply(np.asarray(normal, np.float64), beta, order="F")
    a[np.diag_indices_from(a)] += np.asarray(alpha, np.float64) * np.asarray(mask)
    if shift is not None:
        a += np.outer(shift, shift)
    return a


class Evidence(NamedTuple):
    """The hyperparameters and evidence at some weights (float64 numbers).

    Attributes
    ----------
    alpha : float or ndarray of shape (n_groups,)
        Precision of the penalised weights (one per group with ``groups``).
    beta : float
        Precision of the noise (its variance is ``1 / beta``); 1 for the
        cross-entropies.
    gamma : float
        Effective number of penalised weights,
        ``n_w - alpha tr(diag(p) A^{-1})`` (the sum of the groups'
        ``gamma_g``), for the ``alpha``, ``beta`` it was computed with.
    log_evidence : float
        ``ln p(D | alpha, beta)`` for those ``alpha``, ``beta``.
    ok : bool
        Whether ``A`` could be factored; if not, ``alpha`` and ``beta`` are
        the previous ones and ``gamma``, ``log_evidence`` NaN.
    gammas : ndarray of shape (n_groups,) or None
        With ``groups``: each group's ``gamma_g``; else ``None``.
    """

    alpha: float
    beta: float
    gamma: float
    log_evidence: float
    ok: bool
    gammas: np.ndarray | None = None


def evidence(
    normal: np.ndarray,
    mask: np.ndarray,
    e_d: float,
    e_w: float,
    m: int,
    alpha: float,
    beta: float,
    *,
    estimate_beta: bool = True,
    shift: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Evidence:
    """One re-estimation of ``alpha`` and ``beta`` (see the module docstring).

    Parameters
    ----------
    normal : ndarray of shape (n, n)
        The Hessian of ``E_D`` at the weights, float64: ``J^T S J`` for the
        mean squared error, the generalised Gauss-Newton matrix
        ``J^T S Lambda J`` of the summed cross-entropy.
    mask : ndarray of shape (n,)
        1.0 for penalised weights, else 0.0.
    e_d : float
        ``E_D`` (``sum(s e^2) / 2``, or the summed cross-entropy) at the
        weights.
    e_w : float or ndarray of shape (n_groups,)
        ``E_W = sum(w_P^2) / 2`` at the weights; with ``groups``, each
        group's ``E_{W,g}``.
    m : int
        Number of residuals (not used without ``estimate_beta``).
    alpha : float or ndarray of shape (n_groups,)
        The current weight precision (one per group with ``groups``).
    beta : float
        The current noise precision. With ``alpha``, it gives ``A``.
    estimate_beta : bool, default=True
        Whether ``beta`` is a noise precision to re-estimate (Gaussian
        likelihood). ``False`` (the cross-entropies): ``beta`` is kept, and
        the log evidence has no Gaussian normalising terms.
    shift : ndarray of shape (n,), optional
        A unit vector along which ``A`` is singular and unpenalised
        (:func:`shift_direction`): ``A + u u^T`` is factored instead.
    groups : ndarray of shape (n,) of int, optional
        The group of each weight (:func:`penalty_groups`, -1 for the
        unpenalised ones): one ``alpha_g`` per group, re-estimated from
        ``gamma_g = n_g - alpha_g tr_g(A^{-1})`` (module docstring).

    Returns
    -------
    Evidence
        ``gamma`` and ``log_evidence`` at the current ``alpha``, ``beta``;
        ``alpha`` and ``beta`` re-estimated from them.
    """
    if groups is not None:
        return _group_evidence(
            normal, mask, e_d, e_w, m, alpha, beta, estimate_beta, shift, groups
        )
    mask = np.asarray(mask, np.float64)
    factored = _factor(_hessian(normal, mask, alpha, beta, shift))
    if factored is None:
        return Evidence(alpha, beta, math.nan, math.nan, False)
    log_det, inverse_diagonal = factored
    trace = float(np.sum(mask * inverse_diagonal))
    n_w = float(np.sum(mask))
    gamma = n_w - alpha * trace
    log_evidence = (
        -beta * e_d - alpha * e_w - 0.5 * log_det + 0.5 * n_w * math.log(alpha)
    )
    new_alpha = gamma / (2.0 * e_w) if e_w > 0 else math.nan
    new_beta = beta
    if estimate_beta:
        log_evidence += 0.5 * m * (math.log(beta) - math.log(2.0 * math.pi))
        new_beta = (m - gamma) / (2.0 * e_d) if e_d > 0 else math.nan
    if not (new_alpha > 0 and new_beta > 0 and math.isfinite(new_alpha * new_beta)):
        return Evidence(alpha, beta, gamma, log_evidence, False)
    return Evidence(new_alpha, new_beta, gamma, log_evidence, True)


def _factor(a: np.ndarray):
    """``(ln det A, diag(A^{-1}))`` of ``A = L L^T``, or ``None`` if it fails.

    LAPACK's ``potrf`` (reading the lower triangle of ``A``, which it
    overwrites) and ``trtri`` (in place), float64, on one BLAS thread:
    ``ln det A = 2 sum(ln L_ii)`` and ``diag(A^{-1})_j = sum_i (L^{-1})_ij^2``.
    A factor or inverse that is not finite is a failure (tested through its
    sum, so no ``n x n`` temporary is made: at a few hundred weights a new
    array costs about as much as the factorisation).
    """
    with _one_blas_thread():
        chol, info = lapack.dpotrf(a, lower=1, clean=1, overwrite_a=1)
        if info != 0 or not math.isfinite(float(np.sum(chol))):
            return None
        log_det = 2.0 * float(np.sum(np.log(np.diagonal(chol))))
        inverse, info = lapack.dtrtri(chol, lower=1, overwrite_c=1)
        if info != 0 or not math.isfinite(float(np.sum(inverse))):
            return None
        return log_det, np.einsum("ij,ij->j", inverse, inverse)


def _group_evidence(
    normal, mask, e_d, e_w, m, alpha, beta, estimate_beta, shift, groups
) -> Evidence:
    """:func:`evidence` with one ``alpha_g`` per group of weights."""
    mask = np.asarray(mask, np.float64)
    groups = np.asarray(groups)
    alpha = np.asarray(alpha, np.float64)
    e_w = np.asarray(e_w, np.float64)
    penalised = groups >= 0
    per_weight = np.where(penalised, alpha[np.maximum(groups, 0)], 0.0) * mask
    factored = _factor(_hessian(normal, per_weight, 1.0, beta, shift))
    if factored is None:
        return Evidence(alpha, beta, math.nan, math.nan, False)
    log_det, inverse_diagonal = factored
    diagonal = mask * inverse_diagonal  # diag(A^-1) on P
    n_groups = len(alpha)
    counts = np.bincount(groups[penalised], mask[penalised], minlength=n_groups)
    traces = np.bincount(groups[penalised], diagonal[penalised], minlength=n_groups)
    gammas = counts - alpha * traces
    gamma = float(np.sum(gammas))
    log_evidence = (
        -beta * e_d
        - float(np.sum(alpha * e_w))
        - 0.5 * log_det
        + 0.5 * float(np.sum(counts * np.log(alpha)))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        new_alpha = np.where(e_w > 0, gammas / (2.0 * e_w), math.nan)
    new_beta = beta
    if estimate_beta:
        log_evidence += 0.5 * m * (math.log(beta) - math.log(2.0 * math.pi))
        new_beta = (m - gamma) / (2.0 * e_d) if e_d > 0 else math.nan
    if not (new_beta > 0 and math.isfinite(new_beta)):
        return Evidence(alpha, beta, gamma, log_evidence, False, gammas)
    # A group whose update is not a finite positive number (its weights all
    # zero, or gamma_g <= 0 by rounding) keeps its alpha_g; the others move.
    valid = (new_alpha > 0) & np.isfinite(new_alpha * new_beta)
    new_alpha = np.where(valid, new_alpha, alpha)
    return Evidence(new_alpha, new_beta, gamma, log_evidence, True, gammas)
