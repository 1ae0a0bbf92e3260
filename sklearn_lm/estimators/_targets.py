"""Encoding of classification targets for the network's outputs."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d


class ClassIndexEncoder(TransformerMixin, BaseEstimator):
    """Map labels of any type to class indices ``0 .. n_classes - 1`` and back.

    Parameters
    ----------
    classes : array-like of shape (n_classes,), default=None
        The labels to encode, in any order (they are sorted). ``None`` takes
        the labels present in the ``y`` given to :meth:`fit`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted labels; label ``classes_[i]`` is encoded as ``i``.
    """

    def __init__(self, classes: ArrayLike | None = None):
        self.classes = classes

    def fit(self, y: ArrayLike, X: None = None) -> ClassIndexEncoder:
        """Learn the labels.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            Labels.
        X : None
            Ignored.

        Returns
        -------
        self : ClassIndexEncoder
        """
        source = y if self.classes is None else self.classes
        self.classes_ = np.unique(column_or_1d(source))
        return self

    def transform(self, y: ArrayLike) -> np.ndarray:
        """Encode labels as class indices.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            Labels, all of them in :attr:`classes_`.

        Returns
        -------
        ndarray of shape (n_samples,), dtype int64
        """
        check_is_fitted(self)
        y = column_or_1d(y)
        try:
            index = np.searchsorted(self.classes_, y)
            index = np.clip(index, 0, len(self.classes_) - 1)
            unknown = np.asarray(self.classes_[index] != y, dtype=bool)
        except TypeError as exc:
            raise ValueError(
                f"y has labels that cannot be compared with classes_ "
                f"{self.classes_.tolist()}: {exc}"
            ) from exc
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not seen in classes_ {self.classes_.tolist()}: "
                f"{np.unique(y[unknown]).tolist()}."
            )
        return index.astype(np.int64)

    def inverse_transform(self, index: ArrayLike) -> np.ndarray:
        """Turn class indices back into labels.

        Parameters
        ----------
        index : array-like of shape (n_samples,)
            Class indices.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels, with the dtype of :attr:`classes_`.
        """
        check_is_fitted(self)
        return self.classes_[np.asarray(index, dtype=np.int64)]


class MultilabelEncoder(TransformerMixin, BaseEstimator):
    """Check a multilabel indicator matrix and convert it to 0/1 targets.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        ``arange(n_labels)``: the column indices of the indicator matrix.
    dtype_ : numpy.dtype
        Dtype of the indicator matrix seen in :meth:`fit`, which
        :meth:`inverse_transform` returns.
    """

    def fit(self, y: ArrayLike, X: None = None) -> MultilabelEncoder:
        """Learn the number of labels and the dtype of the indicator matrix.

        Parameters
        ----------
        y : array-like of shape (n_samples, n_labels)
            Indicator matrix of 0/1 values.
        X : None
            Ignored.

        Returns
        -------
        self : MultilabelEncoder
        """
        y = np.asarray(y)
        self.classes_ = np.arange(y.shape[1])
        self.dtype_ = y.dtype
        return self

    def transform(self, y: ArrayLike) -> np.ndarray:
        """Return the indicator matrix as float64 0/1 targets.

        Parameters
        ----------
        y : array-like of shape (n_samples, n_labels)
            Indicator matrix of 0/1 values.

        Returns
        -------
        ndarray of shape (n_samples, n_labels), dtype float64
        """
        check_is_fitted(self)
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != len(self.classes_):
            raise ValueError(
                f"y must be an indicator matrix with {len(self.classes_)} "
                f"columns. Got an array of shape {y.shape}."
            )
        return (y != 0).astype(np.float64)

    def inverse_transform(self, indicator: ArrayLike) -> np.ndarray:
        """Return a 0/1 matrix in the dtype seen during :meth:`fit`.

        Parameters
        ----------
        indicator : array-like of shape (n_samples, n_labels)
            Boolean or 0/1 decisions.

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
        """
        check_is_fitted(self)
        return np.asarray(indicator).astype(self.dtype_)


class TargetStandardizer(TransformerMixin, BaseEstimator):
    """Centre each target column on its mean and divide it by its spread.

    With sample weights ``w_i`` the mean and standard deviation of a column
    ``y`` are ``m = sum(w_i y_i) / sum(w_i)`` and
    ``s = sqrt(sum(w_i (y_i - m)**2) / sum(w_i))``; targets become
    ``(y - m) / s``. A column whose spread is negligible,
    ``s <= 10 * eps * max(|m|, 1)`` for the float64 machine epsilon ``eps``
    (a constant column, up to round-off), keeps ``s = 1``: it is only
    centred.

    Attributes
    ----------
    mean_ : ndarray of shape (n_outputs,)
        The (weighted) mean of each column.
    scale_ : ndarray of shape (n_outputs,)
        The (weighted) standard deviation of each column, or 1.
    """

    def fit(
        self, y: ArrayLike, X: None = None, sample_weight: ArrayLike | None = None
    ) -> TargetStandardizer:
        """Learn the mean and scale of each column.

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        X : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, not all zero.

        Returns
        -------
        self : TargetStandardizer
        """
        y = _columns(y)
        mean = np.average(y, axis=0, weights=sample_weight)
        scale = np.sqrt(np.average((y - mean) ** 2, axis=0, weights=sample_weight))
        tiny = scale <= 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale[tiny] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        return self

    def transform(self, y: ArrayLike) -> np.ndarray:
        """Standardise targets.

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs), dtype float64
        """
        check_is_fitted(self)
        return (_columns(y) - self.mean_) / self.scale_

    def inverse_transform(self, z: ArrayLike) -> np.ndarray:
        """Turn standardised values back into target units.

        Parameters
        ----------
        z : array-like of shape (n_samples, n_outputs)
            Standardised values (for example network outputs).

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return np.asarray(z) * self.scale_ + self.mean_


def _columns(y: ArrayLike) -> np.ndarray:
    """``y`` as a float64 matrix with one column per output."""
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 else y
