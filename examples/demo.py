"""Levenberg-Marquardt next to scikit-learn's MLP on two small problems.

1. Curve fitting: ``y = sinc(10 x)`` (NumPy's convention, ``sin(pi t) / (pi t)``)
   on 20 000 points in ``[-1, 1]`` with a 1-20-1 tanh network, trained full
   batch by :class:`sklearn_lm.LMRegressor` and by
   :class:`sklearn.neural_network.MLPRegressor` (L-BFGS and Adam).
2. Classification: the 8x8 digits data set with a 64-20-10 tanh network,
   :class:`sklearn_lm.LMClassifier` against ``MLPClassifier`` with L-BFGS.

The script prints a table (training MSE, test accuracy, fit time) and writes a
figure with the fitted curves and the loss curves.

Usage::

    python examples/demo.py --output demo_output
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMClassifier, LMRegressor

SEED = 0
N_POINTS = 20_000
HIDDEN = (20,)


def timed_fit(estimator, X, y):
    """Fit ``estimator`` and return it with the wall time in seconds."""
    with warnings.catch_warnings():
        # The MLP baselines run to their iteration budget on purpose.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - start
    return estimator, seconds


def n_iterations(estimator):
    """Iterations (LM steps, L-BFGS iterations or Adam epochs) of a fit."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return getattr(final, "n_iter_", None)


def sinc_problem():
    x = np.linspace(-1.0, 1.0, N_POINTS)
    return x.reshape(-1, 1), np.sinc(10.0 * x)


def run_sinc(X, y):
    """Fit the three regressors; return ``{name: (estimator, seconds)}``."""
    models = {
        "LMRegressor (LM)": LMRegressor(
            hidden=HIDDEN,
            activation="tanh",
            batch_size=None,
            max_iter=1000,
            tol=0.0,
            random_state=SEED,
        ),
        "MLPRegressor (L-BFGS)": MLPRegressor(
            hidden_layer_sizes=HIDDEN,
            activation="tanh",
            solver="lbfgs",
            alpha=0.0,
            max_iter=1000,
            tol=0.0,
            random_state=SEED,
        ),
        "MLPRegressor (Adam)": MLPRegressor(
            hidden_layer_sizes=HIDDEN,
            activation="tanh",
            solver="adam",
            alpha=0.0,
            learning_rate_init=1e-2,
            max_iter=300,
            tol=0.0,
            n_iter_no_change=300,
            random_state=SEED,
        ),
    }
    return {name: timed_fit(est, X, y) for name, est in models.items()}


def run_digits():
    """Fit both classifiers on digits; return the fits and the test split."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=SEED
    )
    models = {
        "LMClassifier (LM)": make_pipeline(
            StandardScaler(),
            LMClassifier(hidden=HIDDEN, activation="tanh", random_state=SEED),
        ),
        "MLPClassifier (L-BFGS)": make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=HIDDEN,
                activation="tanh",
                solver="lbfgs",
                max_iter=500,
                random_state=SEED,
            ),
        ),
    }
    fits = {name: timed_fit(est, X_train, y_train) for name, est in models.items()}
    return fits, X_test, y_test


def print_table(rows):
    header = ("task", "model", "train MSE", "test acc.", "fit (s)", "iters")
    widths = (7, 24, 11, 10, 8, 6)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def plot(X, y, sinc_fits, digits_fits, path):
    x = X[:, 0]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")

    ax = axes[0, 0]
    ax.plot(x, y, color="black", lw=3, alpha=0.3, label="sinc(10x)")
    for name, (est, _) in sinc_fits.items():
        ax.plot(x, est.predict(X), lw=1, label=name)
    ax.set(title="sinc(10x): fitted curves", xlabel="x", ylabel="y")
    ax.legend(fontsize="small")

    ax = axes[0, 1]
    for name, (est, _) in sinc_fits.items():
        ax.semilogy(x, np.abs(est.predict(X) - y) + 1e-12, lw=0.8, label=name)
    ax.set(title="sinc(10x): absolute error", xlabel="x", ylabel="|f(x) - y|")
    ax.legend(fontsize="small")

    ax = axes[1, 0]
    # LMRegressor standardises the targets, so its loss_curve_ is MSE / Var(y);
    # scikit-learn's MLP reports half the mean squared error.
    variance = float(np.var(y))
    lm = sinc_fits["LMRegressor (LM)"][0]
    lm_curve = np.asarray(lm.loss_curve_)
    ax.semilogy(np.arange(1, len(lm_curve) + 1), lm_curve, "C0", label="LM step")
    adam = sinc_fits["MLPRegressor (Adam)"][0]
    adam_curve = 2.0 * np.asarray(adam.loss_curve_) / variance
    ax.semilogy(np.arange(1, len(adam_curve) + 1), adam_curve, "C2", label="Adam epoch")
    lbfgs = sinc_fits["MLPRegressor (L-BFGS)"][0]
    lbfgs_final = mean_squared_error(y, lbfgs.predict(X)) / variance
    ax.axhline(lbfgs_final, color="C1", ls="--", label="L-BFGS, final")
    ax.set(
        title="sinc(10x): training loss",
        xlabel="iteration (LM step or Adam epoch)",
        ylabel="MSE / Var(y)",
    )
    ax.legend(fontsize="small")

    ax = axes[1, 1]
    lm_clf = digits_fits["LMClassifier (LM)"][0][-1]
    steps = np.arange(1, len(lm_clf.loss_curve_) + 1)
    ax.semilogy(steps, lm_clf.loss_curve_, label="LMClassifier")
    ax.set(
        title="digits: LM training loss",
        xlabel="epoch (one full-batch LM step)",
        ylabel="training loss (cross-entropy)",
    )
    ax.legend(fontsize="small")

    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output", help="folder for demo.png")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    matplotlib.use("Agg")

    start = time.perf_counter()
    X, y = sinc_problem()
    print(f"Fitting sinc(10x) on {len(y)} points with a 1-20-1 tanh network ...")
    sinc_fits = run_sinc(X, y)
    print("Fitting the digits classifiers (64-20-10 tanh) ...")
    digits_fits, X_test, y_test = run_digits()

    rows = []
    for name, (est, seconds) in sinc_fits.items():
        mse = mean_squared_error(y, est.predict(X))
        rows.append(
            ("sinc", name, f"{mse:.3e}", "-", f"{seconds:.1f}", n_iterations(est))
        )
    for name, (est, seconds) in digits_fits.items():
        acc = accuracy_score(y_test, est.predict(X_test))
        rows.append(
            ("digits", name, "-", f"{acc:.4f}", f"{seconds:.1f}", n_iterations(est))
        )
    print()
    print_table(rows)

    path = output / "demo.png"
    plot(X, y, sinc_fits, digits_fits, path)
    print(f"\nWrote {path} (total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
