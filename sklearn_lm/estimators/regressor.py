"""Levenberg-Marquardt neural network regressor."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import validate_data

from ..engine import losses as losses_module
from ..engine import predictive
from ..engine.covariance import CovarianceWarning
from ..engine.dense_chain import model_function
from ._base import BaseLM
from ._targets import TargetStandardizer

_REGRESSION_LOSSES = {"mse", "mean_squared_error", "reduced_outputs_mse"}


class LMRegressor(RegressorMixin, BaseLM):
    """Neural network regressor trained with the Levenberg-Marquardt algorithm.

    A fully connected network (a chain of Keras ``Dense`` layers) is fitted to
    minimise the mean squared error with Levenberg-Marquardt (LM) steps,
    which combine Gauss-Newton steps with gradient descent through an
    adaptive damping factor. LM usually needs far fewer epochs than
    first-order methods on small and medium networks.

    Parameters
    ----------
    hidden : int or tuple of int, default=(20,)
        Units of each hidden layer. ``()`` gives a linear model; an int ``h``
        means ``(h,)``.

    activation : {"tanh", "relu", "sigmoid", "linear", "elu", "selu", \
"softplus", "softsign", "gelu", "silu"}, default="tanh"
        Activation of the hidden layers (Keras names). The output layer is
        linear.

    weight_init : {"data", "glorot"}, default="data"
        Initial weights of the hidden layers. ``"data"`` sets them from the
        training inputs (:func:`sklearn_lm.network.init_from_data`, after
        Nguyen and Widrow): each unit gets a random direction, a slope scaled
        to the spread of the inputs along it and an offset that puts its
        transition at a quantile of the inputs, so that the units'
        transitions are spread over the data whatever its scale and offset.
        Functions of few inputs then need far fewer epochs (measured on a
        1-20-1 fit of ``sinc(10 x)`` to a mean squared error of 1e-7:
        19 to 60 epochs instead of 139 to over 300), and test scores on
        standardised benchmark data sets are on par with ``"glorot"``.
        ``"glorot"`` draws them from the Glorot (Xavier) uniform
        distribution with zero biases, independent of the data. Either way
        the output layer starts Glorot uniform with zero biases, and the
        initialisation happens only when the network is created, not when
        :meth:`partial_fit` or ``warm_start`` continues training.

    loss : {"mse", "mean_squared_error", "reduced_outputs_mse"}, default="mse"
        Training loss. ``"mse"`` (same as ``"mean_squared_error"``) has one
        residual per sample and output. ``"reduced_outputs_mse"`` has the
        same value but one residual per sample (the root mean square over
        the outputs), which makes steps cheaper when there are many outputs.

    damping : float, default=1e-3
        Initial damping factor ``lambda``. Must lie within
        ``[damping_min, damping_max]``. (In the engine, ``damping`` names the
        strategy, :class:`~sklearn_lm.engine.damping.Damping`, built from
        the ``damping*`` parameters; this value is its ``initial``.)

    damping_mode : {"standard", "fletcher"} or Damping, default="standard"
        How ``lambda`` enters the step: ``"standard"`` damps with
        ``lambda * I``, ``"fletcher"`` with ``lambda * diag(J^T J)``
        (scale-invariant). A :class:`sklearn_lm.engine.damping.Damping`
        instance defines its own schedule; the other ``damping*`` parameters
        are then ignored and a copy of the instance is used for each fit.

    damping_increase : float, default=10.0
        Factor (> 1) applied to ``lambda`` after a rejected attempt.

    damping_decrease : float, default=0.1
        Factor in ``(0, 1]`` applied to ``lambda`` after an accepted step.

    damping_update : {"gain_ratio", "fixed"}, default="gain_ratio"
        How ``lambda`` changes between attempts. ``"fixed"`` multiplies it by
        ``damping_increase`` / ``damping_decrease``. ``"gain_ratio"`` (Nielsen's
        rule) scales it by how well the local quadratic model predicted the
        loss decrease, which needs fewer steps on most problems;
        ``damping_increase`` and ``damping_decrease`` are then not used.

    damping_min : float, default=1e-10
        Lower bound of ``lambda``.

    damping_max : float, default=1e10
        Upper bound of ``lambda``. When it is reached no step lowers the loss
        any more and training stops; this counts as converged.

    max_attempts : int, default=10
        Attempts (each with a larger ``lambda``) per step before the step is
        given up.

    solver : {"auto", "direct", "cg"}, default="auto"
        How each damped system is solved. ``"direct"`` forms the float64
        normal equations (``n x n`` for ``n`` weights) and factors them:
        exact steps, at a cost that grows with ``n**3``. ``"cg"`` runs at most
        ``cg_max_iter`` iterations of conjugate gradients on
        Gauss-Newton-vector products (a forward and a backward pass each)
        and never forms the ``n x n`` matrix: inexact steps that are much
        cheaper for large networks, and fit in memory where the normal
        equations do not. ``"auto"`` uses ``"cg"`` for networks with more
        than 1000 weights, else ``"direct"``.

    cg_max_iter : int, default=5
        Most conjugate-gradient iterations per solve when the ``"cg"``
        solver is used.

    batch_size : int or None, default=None
        Samples per LM step. ``None`` (or a value not smaller than the number
        of training samples) takes one step per epoch on all samples.
        Mini-batches are shuffled before each epoch.

    learning_rate : float, default=1.0
        Fraction of each LM step that is taken.

    max_iter : int, default=100
        Maximum number of epochs.

    tol : float, default=1e-4
        Tolerance of the stopping rule: an epoch is an improvement when the
        training loss drops below the best loss so far minus ``tol`` (or,
        with ``early_stopping``, when the validation score rises above the
        best so far plus ``tol``).

    n_iter_no_change : int, np.inf or "auto", default="auto"
        Training stops after this many consecutive epochs without
        improvement. ``"auto"`` is 2 for full-batch training without
        ``early_stopping`` and 10 otherwise: a full-batch epoch is one
        deterministic LM step whose loss never increases, so a longer wait
        only spends epochs on improvements smaller than ``tol``, while
        mini-batch losses and validation scores fluctuate from epoch to
        epoch. With Bayesian regularization the same rule also watches the
        log evidence: training stops, too, after this many epochs in which
        it did not rise by at least ``tol`` times the number of residuals
        ``m`` (samples times outputs) nats, a rise per residual as the
        loss's ``tol`` is per sample
        (:class:`~sklearn_lm.engine.stopping.EvidencePlateau`).

    early_stopping : bool, default=False
        Whether to set aside ``validation_fraction`` of the training data,
        stop when its :math:`R^2` score stops improving, and restore the
        weights of the epoch with the best score.

    validation_fraction : float, default=0.1
        Fraction of the training data set aside with ``early_stopping``.

    alpha : float, default=0.0
        Strength of the L2 penalty ``alpha * sum(W**2)`` over the kernels
        (biases are not penalised), added to the loss. The name follows
        :class:`~sklearn.neural_network.MLPRegressor`; the engine calls it
        ``l2`` (:class:`~sklearn_lm.engine.config.StepConfig`).

    bayesian : bool or "auto", default="auto"
        Bayesian regularization (MacKay 1992; Foresee and Hagan 1997; as
        MATLAB's ``trainbr``): the weight-decay strength and the noise level
        are re-estimated from the evidence after every LM step, replacing
        ``alpha``, which is then not used. The objective is
        ``beta E_D + alpha_ E_W`` (half the sums of squared residuals and of
        squared weights, every weight but the output bias); after each
        accepted step ``gamma = n_w - alpha_ tr(A^-1)``,
        ``alpha_ = gamma / (2 E_W)``, ``beta = (m - gamma) / (2 E_D)`` with
        ``A = beta J^T J + alpha_ I`` (one ``alpha_`` per layer with the
        default ``bayesian_groups="layer"``). Fits the fitted attributes
        ``alpha_``, ``noise_variance_``, ``gamma_`` and ``log_evidence_``.
        Needs full-batch steps (``batch_size`` not smaller than the
        training set), the direct solver (``solver="auto"`` then means
        ``"direct"``), ``loss="mse"`` and no ``early_stopping``; otherwise
        :meth:`fit` raises ``ValueError``. ``"auto"`` turns it on when the
        data are small for the network and the fit allows it, and is
        ``False`` otherwise, silently: on in :meth:`fit` when the solver is
        ``"direct"`` (``solver="direct"``, or ``"auto"`` with at most 1000
        weights), ``batch_size`` is ``None`` or not smaller than the
        training set, ``early_stopping=False``, ``loss="mse"`` (or
        ``"mean_squared_error"``), and there are fewer than 4 residuals per
        weight: ``n_samples * n_outputs < 4 * n_weights`` (kernels and
        biases). :meth:`partial_fit` on a new network takes ``"auto"`` as
        ``False``. The resolved value is ``bayesian_``. The threshold is
        measured (held-out scores, 20 hidden units): below it Bayesian
        regularization raised them (5-fold CV :math:`R^2` on
        ``load_diabetes``, 1.4 samples per weight: from 0.14 to 0.45;
        ``friedman1`` with 0.9 and 3.1 samples per weight: 0.56 to 0.77 and
        0.930 to 0.938; test RMSE on auto-mpg and Boston housing, 1.4 to 2
        per weight, by a third or more); above it the effect was mixed
        (test RMSE on concrete, 4.6 per weight: 4.9 against 4.5; on
        computers, 12 per weight: 188 against 194; ``friedman1`` and a
        noisy sinc with 6 to 250 per weight: equal :math:`R^2`) while it
        runs up to several times the epochs. See the user guide (Bayesian
        regularization).
    bayesian_groups : {"layer", "single"}, default="layer"
        The weight precisions of Bayesian regularization (used only when
        ``bayesian_`` is on). ``"single"``: one ``alpha_`` for every
        penalised weight. ``"layer"``: one per penalised variable -- each
        layer's kernel and each hidden layer's bias vector (MacKay's weight
        classes), each with ``gamma_g = n_g - alpha_g tr_g(A^-1)`` and
        ``alpha_g = gamma_g / (2 E_W,g)`` (see
        :mod:`sklearn_lm.engine.bayesian`); ``alpha_`` and ``gammas_`` are
        then arrays, in the order input kernel, first hidden bias, next
        kernel, ..., output kernel. With ``hidden=()`` both are the same.
        ``"layer"`` is the default because it raised held-out scores over
        one ``alpha_`` (``friedman1`` with 300 samples: mean :math:`R^2`
        0.844 against 0.747; on ``load_diabetes`` the two are level, 5-fold
        CV 0.482 to 0.492 against 0.482 to 0.486); see the user guide.
        :meth:`partial_fit` continues the groups fitted before: a changed
        value raises a ``ValueError`` (:meth:`fit` starts afresh).
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the network and its computations.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling of mini-batches and the
        validation split. Pass an int for reproducible results.

    n_init : int, default=1
        Number of initialisations trained when :meth:`fit` creates a new
        network; the best is kept (the one with the highest validation
        score with ``early_stopping``, the highest log evidence with
        Bayesian regularization, else the lowest final training loss), with
        its records. Each start draws its own initial weights
        from ``random_state`` (the first start draws those of
        ``n_init=1``); all starts share the validation split, the shuffling
        and the compiled LM step. Levenberg-Marquardt lands in different
        minima from different initial weights, so a few starts make reaching
        a low loss more likely, at ``n_init`` times the cost. Continuing
        training (``warm_start=True`` on a fitted estimator,
        :meth:`partial_fit`) trains the one existing network.

    warm_start : bool, default=False
        Whether :meth:`fit` continues from the weights of the previous fit
        instead of starting from new random weights.

    verbose : int, default=0
        ``1``: print one line per epoch (epoch, loss, ``lambda``, attempts
        per step and the validation score, if any). ``2``: show a Keras
        progress bar over the steps of each mini-batch epoch, or over the
        epochs when each epoch is one full-batch step. With mini-batches,
        ``verbose=2`` runs an epoch as one compiled step per batch instead
        of one compiled graph per epoch (the same steps; a Python call and a
        read-back per step, which shows on small batches).

    Attributes
    ----------
    model_ : keras.Model
        The trained network (outputs in standardised target units).

    n_iter_ : int
        Number of epochs run by the last :meth:`fit`; :meth:`partial_fit`
        adds one per call.

    t_ : int
        Number of training samples seen by the solver since the network was
        created (one per sample and epoch).

    loss_curve_ : list of float
        Training objective (mean squared error of the standardised targets,
        plus the L2 term) after each epoch.

    damping_curve_ : list of float
        ``lambda`` at the end of each epoch.

    best_loss_ : float
        Smallest value of ``loss_curve_``.

    validation_scores_ : list of float or None
        :math:`R^2` on the validation set after each epoch with
        ``early_stopping``, else ``None``.

    best_validation_score_ : float or None
        Best of ``validation_scores_``, else ``None``.

    stop_reason_ : Status
        Why the last :meth:`fit` or :meth:`partial_fit` stopped, a
        :class:`~sklearn_lm.engine.status.Status` (a ``str`` enum; its
        ``message`` says it in words): ``"no_improvement"`` (the ``tol``
        rule), ``"damping_max"`` (``lambda`` reached ``damping_max``) or
        ``"max_epochs"`` (``max_iter`` epochs ran; the one epoch of
        :meth:`partial_fit`).

    history_ : TrainingHistory
        The record of the epochs since the last :meth:`fit` (extended by
        each :meth:`partial_fit`), a
        :class:`~sklearn_lm.engine.TrainingHistory`: per epoch in
        ``history_.history`` the training ``"loss"``, ``"damping"``
        (``lambda``), ``"attempts"`` per step, ``"time"`` (wall seconds)
        and, with ``early_stopping``, ``"validation_score"`` (:math:`R^2`);
        with Bayesian regularization also ``"alpha"``, ``"beta"``,
        ``"noise_variance"``, ``"gamma"`` and ``"log_evidence"`` (in the
        standardised target units of ``model_``: the final
        ``noise_variance_`` is ``s**2`` times the last ``"noise_variance"``);
        ``history_.best_epoch`` (the epoch with the best validation score,
        else the lowest loss), ``history_.stop_reason`` (as
        ``stop_reason_``) and ``history_.message`` (why it stopped, in
        words). ``history_.to_dataframe()`` gives one row per epoch (needs
        pandas); :class:`sklearn_lm.inspection.TrainingCurvesDisplay`
        plots it. With ``n_init > 1`` it is the record of the start kept.

    best_init_ : int
        Index of the start kept by the last :meth:`fit` that created the
        network (0 with ``n_init=1``).

    init_scores_ : list of float or None
        Score of each start of that :meth:`fit`, higher is better: the best
        validation score with ``early_stopping``, the log evidence with
        Bayesian regularization, else minus the final training loss (without
        the ``alpha`` penalty). ``None`` when one start ran.

    bayesian_ : bool
        Whether the last :meth:`fit` used Bayesian regularization: the
        value ``bayesian="auto"`` resolved to, else ``bayesian``.

    alpha_ : float or ndarray of shape (n_groups,)
        With Bayesian regularization (``bayesian_``): the precision of the
        penalised weights at the end of the fit (the weights of ``model_``,
        whose outputs are in standardised target units); with
        ``bayesian_groups="layer"``, one per group (an array even for one
        group). For ``hidden=()`` and
        one target with standard deviation ``s``, the coefficients are ``s``
        times the kernel, so their precision, ``BayesianRidge``'s ``lambda_``,
        is ``alpha_ / s**2``. Not set otherwise.
    noise_variance_ : float or ndarray of shape (n_outputs,)
        With Bayesian regularization (``bayesian_``): the noise variance
        ``1 / beta`` in the original target units (``s_j**2 / beta`` for output
        ``j``); an array when ``y`` was 2-D. ``BayesianRidge``'s
        ``1 / alpha_``.
    gamma_ : float
        With Bayesian regularization (``bayesian_``): the effective number of
        penalised weights.
    gammas_ : ndarray of shape (n_groups,)
        With ``bayesian_groups="layer"`` and Bayesian regularization: each
        group's effective number of weights (they sum to ``gamma_``). Not
        set otherwise.
    log_evidence_ : float
        With Bayesian regularization (``bayesian_``): the log evidence
        ``ln p(y | alpha_, beta)`` of the original targets (the standardised
        targets' minus ``N sum_j ln s_j``), up to the constant of the output
        bias's flat prior.
    n_outputs_ : int
        Number of targets.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    LMClassifier : The classifier counterpart.
    sklearn.neural_network.MLPRegressor : Networks trained with first-order
        methods or L-BFGS.

    Notes
    -----
    Targets are standardised before training: each output is centred on its
    (sample-weighted) mean and divided by its standard deviation (1 when the
    deviation is zero). Predictions are transformed back, but ``loss_curve_``
    and ``model_`` work in the standardised units. With ``warm_start`` or
    :meth:`partial_fit` the standardisation of the first call is kept.

    Each LM step solves ``(J^T J + lambda D) delta = J^T r`` for the weight
    update ``delta``, where ``J`` is the Jacobian of the residuals ``r`` with
    respect to the weights and ``D`` is the identity (``"standard"``) or the
    diagonal of ``J^T J`` (``"fletcher"``). A step that lowers the loss is
    accepted and ``lambda`` shrinks; otherwise ``lambda`` grows and the step
    is tried again (by how much: ``damping_update``). A
    small ``lambda`` gives a Gauss-Newton step, a large one a short gradient
    descent step. The cost of a step grows with the square of the number of
    weights, so LM suits small networks.

    Sample weights are rescaled to mean 1 over the training samples: the
    objective is a weighted mean, so only relative weights matter and
    integer weights are equivalent to repeating samples, except with
    Bayesian regularization (on by default for small data, see
    ``bayesian``), whose evidence counts rows.

    Predictions are computed from the network weights with NumPy in float64.

    ``predict(X, return_std=True)`` gives the linearised Laplace (GLM)
    predictive standard deviation, ``sqrt(1/beta + g^T A^-1 g)`` with
    ``g`` the gradient of the output with respect to the weights, in the
    original target units; see :meth:`predict`.

    A :class:`~sklearn.exceptions.ConvergenceWarning` is issued by
    :meth:`fit` when ``stop_reason_`` does not count as converged
    (``stop_reason_.converged``): when ``max_iter`` epochs run without the
    stopping rule being met. Stopping because ``lambda`` reached
    ``damping_max`` is not a failure: no step can lower the loss any more.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lm import LMRegressor
    >>> X = np.linspace(-1, 1, 40).reshape(-1, 1)
    >>> y = np.sin(3 * X).ravel()
    >>> reg = LMRegressor(hidden=(5,), max_iter=50, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    >>> bool(reg.score(X, y) > 0.99)
    True
    """

    _parameter_constraints: dict = {
        **BaseLM._parameter_constraints,
        "loss": [StrOptions(_REGRESSION_LOSSES)],
    }

    #: ``bayesian="auto"`` is on below this many residuals per weight
    #: (see the ``bayesian`` parameter for how it was chosen).
    _AUTO_BAYESIAN_RATIO = 4.0

    _BAYESIAN_ATTRIBUTES = (*BaseLM._BAYESIAN_ATTRIBUTES, "noise_variance_")

    def __init__(
        self,
        *,
        hidden=(20,),
        activation="tanh",
        weight_init="data",
        loss="mse",
        damping=1e-3,
        damping_mode="standard",
        damping_increase=10.0,
        damping_decrease=0.1,
        damping_update="gain_ratio",
        damping_min=1e-10,
        damping_max=1e10,
        max_attempts=10,
        solver="auto",
        cg_max_iter=5,
        batch_size=None,
        learning_rate=1.0,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change="auto",
        early_stopping=False,
        validation_fraction=0.1,
        alpha=0.0,
        bayesian="auto",
        bayesian_groups="layer",
        dtype="float32",
        random_state=None,
        n_init=1,
        warm_start=False,
        verbose=0,
    ):
        super().__init__(
            hidden=hidden,
            activation=activation,
            weight_init=weight_init,
            loss=loss,
            damping=damping,
            damping_mode=damping_mode,
            damping_increase=damping_increase,
            damping_decrease=damping_decrease,
            damping_update=damping_update,
            damping_min=damping_min,
            damping_max=damping_max,
            max_attempts=max_attempts,
            solver=solver,
            cg_max_iter=cg_max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            alpha=alpha,
            bayesian=bayesian,
            bayesian_groups=bayesian_groups,
            dtype=dtype,
            random_state=random_state,
            n_init=n_init,
            warm_start=warm_start,
            verbose=verbose,
        )

    # -- hooks ---------------------------------------------------------------
    def _validate_input(self, X, y, *, reset):
        return validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )

    def _encode_targets(self, y, sample_weight, *, first_call, incremental, classes):
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first_call:
            self.n_outputs_ = n_outputs
            self._y_ndim = y.ndim
            self._target_scaler = TargetStandardizer().fit(
                y, sample_weight=sample_weight
            )
        elif n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} outputs, but {type(self).__name__} was "
                f"fitted with {self.n_outputs_}. Use warm_start=False to fit a "
                "new network."
            )
        return self._target_scaler.transform(y), sample_weight, None

    def _make_loss(self):
        return losses_module.get(self.loss)

    def _predict_from_outputs(self, outputs):
        y = self._target_scaler.inverse_transform(outputs)
        if self._y_ndim == 1:
            return y.ravel()
        return y

    def _score_outputs(self, outputs, y, sample_weight) -> float:
        y_pred = self._predict_from_outputs(outputs)
        if not np.all(np.isfinite(y_pred)):
            return np.nan
        from sklearn.metrics import r2_score

        return r2_score(y, y_pred, sample_weight=sample_weight)

    # -- public API ----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> LMRegressor:
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights; ``None`` weighs all samples equally.

        Returns
        -------
        self : LMRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> LMRegressor:
        """Train for one epoch on ``(X, y)``, continuing from the current state.

        The first call creates the network (and the target standardisation)
        from this batch; later calls continue from the current weights and
        damping factor. No convergence check is done.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : LMRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(
        self, X: ArrayLike, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        r"""Predict targets, and optionally their predictive standard deviation.

        The standard deviation is that of the linearised Laplace (generalised
        linear model) predictive distribution, as
        :class:`~sklearn.linear_model.BayesianRidge` and
        :class:`~sklearn.gaussian_process.GaussianProcessRegressor` give it:

        .. math::

            \sigma_j^2(x) = s_j^2 \left(\frac{1}{\beta}
                + g_j^T A^{-1} g_j\right), \qquad
            A = \beta J^T S J + \alpha \operatorname{diag}(p),

        where ``g_j`` is the gradient of the network's output ``j``
        (standardised units) at ``x`` with respect to the weights, ``J`` the
        Jacobian of the outputs on the training samples, ``S`` their
        (relative) sample weights, ``p`` the penalty mask and ``s_j`` the
        standard deviation of target ``j``.

        * With Bayesian regularization (``bayesian_``): ``alpha = alpha_``,
          ``beta`` the fitted noise precision (``p``: every weight but the
          output bias), at the end of the fit; the noise variance is
          ``noise_variance_``.
        * Otherwise: ``beta = 1 / sigma^2`` with the residual variance
          ``sigma^2 = SSR / (m - n)`` of the standardised training targets
          (``m = N k`` residuals, ``n`` weights, as
          ``scipy.optimize.curve_fit``), and ``alpha`` the precision the
          fitted L2 strength stands for, ``alpha = l2 beta m`` with
          ``l2`` the ``alpha`` parameter (``p``: the kernels); see the user
          guide. ``A`` is computed at the first such call from the training
          data (kept by reference, not copied, and not pickled).

        When ``A`` is singular (``alpha = 0`` and some combination of
        weights does not change the outputs), or ``m <= n`` without
        ``bayesian``, a :class:`~sklearn_lm.engine.covariance.CovarianceWarning`
        is issued and the standard deviations are ``inf``, as
        ``curve_fit`` does for the covariance. ``A``, its inverse and the
        variances are float64; ``g`` is computed in the network's dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        return_std : bool, default=False
            Whether to return the predictive standard deviation too.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values, float64, shaped like the ``y`` seen in fit.
        y_std : ndarray, same shape as ``y``
            Predictive standard deviations (only with ``return_std=True``).
        """
        self._check_fitted()
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        y = self._predict_from_outputs(self._outputs(X))
        if not return_std:
            return y
        noise, covariance = self._posterior()
        if covariance is None:
            std = np.full((X.shape[0], self.n_outputs_), np.inf)
        else:
            fn = model_function(self.model_)
            glm = predictive.predictive_variance(fn, X, covariance)
            std = np.sqrt((noise + glm) * self._target_scaler.scale_**2)
        return y, (std.ravel() if self._y_ndim == 1 else std)

    # -- uncertainty -----------------------------------------------------------
    def _train(self, train, validation, incremental, seed):
        history = super()._train(train, validation, incremental, seed)
        # Kept by reference for predict(return_std=True) without bayesian.
        self._uncertainty_samples = train
        self._posterior_ = None
        return history

    def _record(self, history, *, n_train: int) -> None:
        super()._record(history, n_train=n_train)
        state = self._trainer.bayesian if self._trainer is not None else None
        # A fit without it leaves no hyperparameters of an earlier one.
        self._record_precisions(state)
        if state is None:
            return
        scale = self._target_scaler.scale_
        noise = scale**2 * state.noise_variance
        self.noise_variance_ = float(noise[0]) if self._y_ndim == 1 else noise
        self.log_evidence_ = float(state.log_evidence - n_train * np.sum(np.log(scale)))
        covariance = predictive.posterior_covariance(
            state.normal, state.mask, state.weight_alpha, state.beta
        )
        self._posterior_ = (state.noise_variance, covariance)

    def _posterior(self):
        """``(1/beta, A^-1)`` in standardised units; ``A^-1`` None if singular."""
        if getattr(self, "_posterior_", None) is None:
            self._posterior_ = self._residual_posterior()
        noise, covariance = self._posterior_
        if covariance is None:
            warnings.warn(
                "The predictive standard deviation could not be estimated: "
                "A = beta J^T J + alpha I is singular, or there are no more "
                "residuals than weights (without bayesian=True). It is "
                "returned as inf; a positive alpha or bayesian=True avoids it.",
                CovarianceWarning,
                stacklevel=3,
            )
        return noise, covariance

    def _residual_posterior(self):
        """``(sigma^2, A^-1)`` from the residual variance and ``alpha``."""
        train = getattr(self, "_uncertainty_samples", None)
        if train is None:
            raise ValueError(
                "predict(return_std=True) needs the training data, which an "
                "unpickled estimator fitted without Bayesian regularization "
                "does not keep; refit it, or fit with bayesian=True."
            )
        fn = model_function(self.model_)
        normal, ssr = predictive.normal_matrix(
            fn, train.X, train.y, train.sample_weight
        )
        m, n = train.y.size, fn.n_params
        if m <= n:
            return np.nan, None
        sigma2 = ssr / (m - n)
        beta = 1.0 / sigma2
        alpha = float(self.alpha) * beta * m  # l2 = alpha / (beta N k)
        covariance = predictive.posterior_covariance(
            normal, fn.penalty_mask(), alpha, beta
        )
        return sigma2, covariance

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_uncertainty_samples", None)
        if not getattr(self, "bayesian_", False):
            state.pop("_posterior_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
