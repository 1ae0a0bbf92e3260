"""Bayesian regularization of the classifier across samples per weight.

Usage::

    python -m benchmarks.bench_bayesian_auto_classification [--folds 5]
                                                            [--out FILE]

Measures where ``LMClassifier(bayesian="auto")`` should switch Bayesian
regularization on: for each data set, stratified ``folds``-fold
cross-validation (shuffled, ``random_state=0``) of ``StandardScaler``
followed by ``LMClassifier(hidden=(20,), solver="direct", bayesian=b,
random_state=0)`` for ``b`` in ``False, True`` (no moderation: what
``"auto"`` fits). Data sets, with the training size chosen for a range of
residuals per weight ``r = n_train * n_outputs / n_weights`` (``n_outputs``
is 1 for two classes, the number of classes otherwise):

* ``make_classification`` (10 features, 5 informative, ``flip_y=0.05``,
  ``random_state=0``), two classes (241 weights) and three classes (283
  weights), ``r`` in 0.5, 1, 2, 4, 8, 16;
* ``make_moons`` (``noise=0.3``, ``random_state=0``; 81 weights), ``r`` in
  0.5, 1, 2, 4, 8, 16 (``--ratios``);
* ``load_iris`` (``r`` = 2.2), ``load_digits`` (``r`` = 9.5, 1510 weights)
  and a stratified subsample of 450 digits (``r`` = 2.4).

Reported per data set and ``b``: mean test accuracy and test log loss over
the folds, and the mean fit time in seconds. ``ConvergenceWarning`` is
silenced. The Markdown table is printed (and written to ``--out``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]

HIDDEN = 20
RATIOS = (0.5, 1, 2, 4, 8, 16)


def _n_weights(n_features: int, n_outputs: int) -> int:
    return (n_features + 1) * HIDDEN + (HIDDEN + 1) * n_outputs


def _n_total(ratio: float, n_weights: int, n_outputs: int, folds: int) -> int:
    """Samples whose training folds hold ``ratio`` residuals per weight."""
    n_train = ratio * n_weights / n_outputs
    return int(round(n_train * folds / (folds - 1)))


def _data_sets(folds: int, ratios=RATIOS):
    from sklearn.datasets import (
        load_digits,
        load_iris,
        make_classification,
        make_moons,
    )
    from sklearn.model_selection import train_test_split

    for n_classes in (2, 3):
        n_outputs = 1 if n_classes == 2 else n_classes
        n_w = _n_weights(10, n_outputs)
        for ratio in ratios:
            n = _n_total(ratio, n_w, n_outputs, folds)
            X, y = make_classification(
                n_samples=n,
                n_features=10,
                n_informative=5,
                n_classes=n_classes,
                flip_y=0.05,
                random_state=0,
            )
            yield f"classification{n_classes} r={ratio:g}", X, y
    n_w = _n_weights(2, 1)
    for ratio in ratios:
        n = _n_total(ratio, n_w, 1, folds)
        X, y = make_moons(n_samples=n, noise=0.3, random_state=0)
        yield f"moons r={ratio:g}", X, y
    X, y = load_iris(return_X_y=True)
    yield "iris r=2.2", X, y
    X, y = load_digits(return_X_y=True)
    X_small, _, y_small, _ = train_test_split(
        X, y, train_size=450, stratify=y, random_state=0
    )
    yield "digits[:450] r=2.4", X_small, y_small
    yield "digits r=9.5", X, y


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
    """Run the sweep; return the Markdown table."""
    from sklearn_lm import LMClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--ratios", type=float, nargs="+", default=RATIOS, help="residuals per weight"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="substrings of data set names"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    lines = [
        f"{args.folds}-fold CV, StandardScaler + LMClassifier(hidden=({HIDDEN},), "
        'solver="direct")',
        "",
        "| data set | n | accuracy (BR off / on) | log loss (BR off / on) "
        "| fit time s (off / on) |",
        "|---|---|---|---|---|",
    ]
    for name, X, y in _data_sets(args.folds, tuple(args.ratios)):
        if args.only is not None and not any(part in name for part in args.only):
            continue
        started = time.perf_counter()
        results = [
            _scores(
                LMClassifier(
                    hidden=(HIDDEN,), solver="direct", bayesian=b, random_state=0
                ),
                X,
                y,
                args.folds,
            )
            for b in (False, True)
        ]
        (a0, l0, t0), (a1, l1, t1) = results
        line = (
            f"| {name} | {len(y)} | {a0.mean():.3f} / {a1.mean():.3f} "
            f"| {l0.mean():.3f} / {l1.mean():.3f} "
            f"| {t0.mean():.2f} / {t1.mean():.2f} |"
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
