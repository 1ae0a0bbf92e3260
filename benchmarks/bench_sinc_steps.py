"""Epochs to a target MSE on sinc for settings of the damping and the start.

Usage::

    python -m benchmarks.bench_sinc_steps [--seeds 0 1 2 ...] [--max-iter N]
                                          [--variants NAME ...] [--out FILE]

On the sinc task of the benchmarks (``y = sinc(10 x)``, 20 000 evenly spaced
points on [-1, 1], a 1-20-1 tanh network, full-batch steps, float32), each
variant is :class:`~sklearn_lm.LMRegressor` with ``tol=0``,
``n_iter_no_change=inf`` and the parameters of :data:`VARIANTS`, fitted once
per seed (``random_state``) for at most ``max_iter`` epochs (300 by
default). Reported per variant: the epochs at which the training MSE first
drops below 1e-7 and 1e-8 (median and per seed; ``-`` where it does not
within ``max_iter``), and the lowest MSE. Epoch counts do not depend on
the machine's load; the wall time to a target is about the first epoch's
fixed cost plus the epochs times the time of one (see
``python -m benchmarks.run --only sinc``).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "VARIANTS"]

N_POINTS = 20_000
TARGETS = (1e-7, 1e-8)

#: Named variants: extra constructor arguments of ``LMRegressor``.
VARIANTS: dict[str, dict] = {
    "defaults": {},
    "damping=1e-1": {"damping": 1e-1},
    "damping=1e-2": {"damping": 1e-2},
    "damping=1e-4": {"damping": 1e-4},
    "fixed 10 / 0.1": {"damping_update": "fixed"},
    "fixed 5 / 0.2": {
        "damping_update": "fixed",
        "damping_increase": 5.0,
        "damping_decrease": 0.2,
    },
    "fixed 2 / 1/3": {
        "damping_update": "fixed",
        "damping_increase": 2.0,
        "damping_decrease": 1.0 / 3.0,
    },
    "fletcher": {"damping_mode": "fletcher"},
    "glorot start": {"weight_init": "glorot"},
}


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sinc_steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument(
        "--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS)
    )
    parser.add_argument("--out", help="also write the Markdown table here")
    return parser.parse_args(argv)


def _first_below(curve: np.ndarray, level: float) -> int | None:
    """1-based epoch of the first MSE below ``level``, or ``None``."""
    hits = np.flatnonzero(curve < level)
    return int(hits[0]) + 1 if hits.size else None


def run_variant(params: dict, seeds, max_iter: int) -> list[dict]:
    """Fit each seed; return the epochs to each target and the lowest MSE."""
    from sklearn_lm import LMRegressor

    x = np.linspace(-1.0, 1.0, N_POINTS).reshape(-1, 1)
    y = np.sinc(10.0 * x[:, 0])
    variance = float(np.var(y))
    rows = []
    for seed in seeds:
        est = LMRegressor(
            hidden=(20,),
            tol=0.0,
            n_iter_no_change=float("inf"),
            max_iter=max_iter,
            random_state=seed,
            **params,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(x, y)
        # loss_curve_ is on standardised targets: rescale to the data's MSE.
        curve = np.asarray(est.loss_curve_) * variance
        epochs = [_first_below(curve, level) for level in TARGETS]
        rows.append(
            {
                "seed": seed,
                "epochs": epochs,
                "min": float(curve.min()),
            }
        )
    return rows


def _median(values) -> str:
    """Median where missing counts as above every value; ``> max`` if it is one."""
    finite = sorted(v if v is not None else np.inf for v in values)
    med = float(np.median(finite))
    return "-" if not np.isfinite(med) else f"{med:g}"


def table(results: dict[str, list[dict]]) -> str:
    """The Markdown table of :func:`run_variant`'s results."""
    lines = [
        "| variant | epochs to 1e-7 (median) | per seed | epochs to 1e-8 "
        "(median) | per seed | lowest MSE (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        cells = [name]
        for k in range(len(TARGETS)):
            per = [r["epochs"][k] for r in rows]
            cells += [
                _median(per),
                " ".join("-" if v is None else str(v) for v in per),
            ]
        cells.append(f"{np.median([r['min'] for r in rows]):.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = _parse(argv)
    results = {}
    for name in args.variants:
        results[name] = run_variant(VARIANTS[name], args.seeds, args.max_iter)
        print(table({name: results[name]}).splitlines()[-1], flush=True)
    text = (
        f"seeds {' '.join(map(str, args.seeds))}, max_iter={args.max_iter}\n\n"
        + table(results)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
