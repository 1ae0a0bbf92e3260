"""Bayesian regularization of the classifier: cross-validated scores.

Usage::

    python -m benchmarks.bench_bayesian_classification [--folds 5]
                                                       [--hidden 20] [--out FILE]

On ``load_breast_cancer`` (569 samples, 30 features, 2 classes) and
``load_wine`` (178 samples, 13 features, 3 classes), stratified
``folds``-fold cross-validation (shuffled, ``random_state=0``) of
``StandardScaler`` followed by:

* ``LMClassifier(hidden=(h,))`` with its defaults;
* ``LMClassifier(hidden=(h,), bayesian=True)``;
* ``LMClassifier(hidden=(h,), bayesian=True, moderate_proba=True)``;
* ``MLPClassifier(hidden_layer_sizes=(h,), solver="lbfgs")`` for reference.

Every estimator gets ``random_state=0``. Reported per data set: mean (and
standard deviation over the folds) of the test accuracy and test log loss,
and the mean fit time in seconds. ``ConvergenceWarning`` is silenced (the
default MLP stops at ``max_iter``). The Markdown table is printed (and
written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _contenders(hidden: int) -> dict:
    from sklearn.neural_network import MLPClassifier

    from sklearn_lm import LMClassifier

    return {
        "LMClassifier": LMClassifier(hidden=(hidden,), random_state=0),
        "LMClassifier(bayesian=True)": LMClassifier(
            hidden=(hidden,), bayesian=True, random_state=0
        ),
        "LMClassifier(bayesian=True, moderate_proba=True)": LMClassifier(
            hidden=(hidden,), bayesian=True, moderate_proba=True, random_state=0
        ),
        'MLPClassifier(solver="lbfgs")': MLPClassifier(
            hidden_layer_sizes=(hidden,), solver="lbfgs", random_state=0
        ),
    }


def _scores(estimator, X, y, folds: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(
            make_pipeline(StandardScaler(), estimator),
            X,
            y,
            cv=cv,
            scoring=("accuracy", "neg_log_loss"),
        )
    return result["test_accuracy"], -result["test_neg_log_loss"], result["fit_time"]


def main(argv=None) -> str:
    """Run the comparison; return the Markdown table."""
    from sklearn.datasets import load_breast_cancer, load_wine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    lines = [
        f"{args.folds}-fold CV, StandardScaler + estimator, hidden=({args.hidden},)",
        "",
        "| data set | estimator | accuracy | log loss | fit time (s) |",
        "|---|---|---|---|---|",
    ]
    for name, loader in [("breast_cancer", load_breast_cancer), ("wine", load_wine)]:
        X, y = loader(return_X_y=True)
        for label, estimator in _contenders(args.hidden).items():
            started = time.perf_counter()
            accuracy, log_loss, fit_time = _scores(estimator, X, y, args.folds)
            line = (
                f"| {name} | {label} | {accuracy.mean():.4f} ± {accuracy.std():.4f} "
                f"| {log_loss.mean():.4f} ± {log_loss.std():.4f} "
                f"| {fit_time.mean():.2f} |"
            )
            print(line, f"({time.perf_counter() - started:.0f} s)", flush=True)
            lines.append(line)
    table = "\n".join(lines)
    print()
    print(table)
    if args.out is not None:
        args.out.write_text(table + "\n")
    return table


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
