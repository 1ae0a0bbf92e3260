"""The NIST StRD nonlinear regression problems: data, certified values, models.

The 27 problems of the NIST Statistical Reference Datasets for nonlinear
least squares (https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml) are
shipped, as NIST's public-domain ``.dat`` files, in ``tests/data/nist/``.
Each file holds the model, two starting points, the certified parameters
with their standard deviations, the certified residual sum of squares and
the data. :func:`load` parses one file into a :class:`Problem`;
:func:`load_all` returns the 27 in NIST's order (lower, average, higher
difficulty).

Each problem's model formula is written once, in an array namespace ``xp``
(``numpy`` or ``keras.ops``), so that NumPy (for SciPy) and Keras evaluate
the same expression:

* :meth:`Problem.predict` -- NumPy, float64;
* :func:`keras_model` -- a functional ``keras.Model`` whose only weights are
  the problem's parameters ``b`` (one float64 vector), held by a
  ``NistParameters`` layer (:func:`parameters_layer`).

The models are float64 by their own declarations (``keras.Input(dtype=
"float64")``, a float64 layer and weight): the engine casts inputs to the
dtype the model declares, so no global ``floatx`` setting is needed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = [
    "DATA_DIR",
    "NAMES",
    "FORMULAS",
    "Problem",
    "load",
    "load_all",
    "log_relative_error",
    "keras_model",
    "parameters_layer",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "nist"

#: The problems in NIST's order: lower, average, then higher difficulty.
NAMES = (
    "Misra1a Chwirut2 Chwirut1 Lanczos3 Gauss1 Gauss2 DanWood Misra1b "
    "Kirby2 Hahn1 Nelson MGH17 Lanczos1 Lanczos2 Gauss3 Misra1c Misra1d "
    "Roszman1 ENSO "
    "MGH09 Thurber BoxBOD Rat42 MGH10 Eckerle4 Rat43 Bennett5"
).split()

#: Largest log relative error reported: the certified values have 11 digits.
MAX_DIGITS = 11.0


# -- model formulas, ``f(b, x, xp)`` with ``x`` of shape (N, d) ---------------------
def _exp_rise(b, x, xp):  # Misra1a, BoxBOD
    return b[0] * (1.0 - xp.exp(-b[1] * x[:, 0]))


def _chwirut(b, x, xp):
    t = x[:, 0]
    return xp.exp(-b[0] * t) / (b[1] + b[2] * t)


def _exponentials(b, x, xp):  # Lanczos1-3: three decaying exponentials
    t = x[:, 0]
    return sum(b[i] * xp.exp(-b[i + 1] * t) for i in (0, 2, 4))


def _gauss(b, x, xp):
    t = x[:, 0]
    peaks = sum(b[i] * xp.exp(-((t - b[i + 1]) ** 2) / b[i + 2] ** 2) for i in (2, 5))
    return b[0] * xp.exp(-b[1] * t) + peaks


def _danwood(b, x, xp):
    return b[0] * x[:, 0] ** b[1]


def _misra1b(b, x, xp):
    return b[0] * (1.0 - (1.0 + b[1] * x[:, 0] / 2.0) ** -2.0)


def _rational(p: int) -> Callable:
    """``(b1 + b2 x + ... b_p x**(p-1)) / (1 + b_{p+1} x + ...)`` (Kirby2, Hahn1,
    Thurber)."""

    def f(b, x, xp):
        t = x[:, 0]
        num = sum(b[i] * t**i for i in range(p))
        den = 1.0 + sum(b[p + i] * t ** (i + 1) for i in range(len(b) - p))
        return num / den

    return f


def _nelson(b, x, xp):  # the response is log(y)
    return b[0] - b[1] * x[:, 0] * xp.exp(-b[2] * x[:, 1])


def _mgh17(b, x, xp):
    t = x[:, 0]
    return b[0] + b[1] * xp.exp(-t * b[3]) + b[2] * xp.exp(-t * b[4])


def _misra1c(b, x, xp):
    return b[0] * (1.0 - (1.0 + 2.0 * b[1] * x[:, 0]) ** -0.5)


def _misra1d(b, x, xp):
    t = x[:, 0]
    return b[0] * b[1] * t / (1.0 + b[1] * t)


def _roszman1(b, x, xp):
    t = x[:, 0]
    return b[0] - b[1] * t - xp.arctan(b[2] / (t - b[3])) / math.pi


def _enso(b, x, xp):
    t = x[:, 0]
    w = 2.0 * math.pi * t
    return (
        b[0]
        + b[1] * xp.cos(w / 12.0)
        + b[2] * xp.sin(w / 12.0)
        + b[4] * xp.cos(w / b[3])
        + b[5] * xp.sin(w / b[3])
        + b[7] * xp.cos(w / b[6])
        + b[8] * xp.sin(w / b[6])
    )


def _mgh09(b, x, xp):
    t = x[:, 0]
    return b[0] * (t**2 + t * b[1]) / (t**2 + t * b[2] + b[3])


def _rat42(b, x, xp):
    return b[0] / (1.0 + xp.exp(b[1] - b[2] * x[:, 0]))


def _mgh10(b, x, xp):
    return b[0] * xp.exp(b[1] / (x[:, 0] + b[2]))


def _eckerle4(b, x, xp):
    return (b[0] / b[1]) * xp.exp(-0.5 * ((x[:, 0] - b[2]) / b[1]) ** 2)


def _rat43(b, x, xp):
    return b[0] / (1.0 + xp.exp(b[1] - b[2] * x[:, 0])) ** (1.0 / b[3])


def _bennett5(b, x, xp):
    return b[0] * (b[1] + x[:, 0]) ** (-1.0 / b[2])


#: Model formula of each problem, ``f(b, x, xp) -> (N,)``.
FORMULAS: dict[str, Callable] = {
    "Misra1a": _exp_rise,
    "Chwirut2": _chwirut,
    "Chwirut1": _chwirut,
    "Lanczos3": _exponentials,
    "Gauss1": _gauss,
    "Gauss2": _gauss,
    "DanWood": _danwood,
    "Misra1b": _misra1b,
    "Kirby2": _rational(3),
    "Hahn1": _rational(4),
    "Nelson": _nelson,
    "MGH17": _mgh17,
    "Lanczos1": _exponentials,
    "Lanczos2": _exponentials,
    "Gauss3": _gauss,
    "Misra1c": _misra1c,
    "Misra1d": _misra1d,
    "Roszman1": _roszman1,
    "ENSO": _enso,
    "MGH09": _mgh09,
    "Thurber": _rational(4),
    "BoxBOD": _exp_rise,
    "Rat42": _rat42,
    "MGH10": _mgh10,
    "Eckerle4": _eckerle4,
    "Rat43": _rat43,
    "Bennett5": _bennett5,
}


# -- the files ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """One NIST StRD nonlinear regression problem.

    Attributes
    ----------
    name : str
        The data set name (``"Misra1a"``).
    difficulty : {"lower", "average", "higher"}
    model : str
        The model as written in the file (``"y = b1*(1-exp[-b2*x])  +  e"``).
    formula : str
        Name of the formula in :data:`FORMULAS` shared by problems with the
        same model (``"_exp_rise"``).
    x : ndarray of shape (N, d)
        Predictors (``d = 2`` for Nelson, else 1), float64.
    y : ndarray of shape (N,)
        The response fitted by the model: ``log(y)`` for Nelson, ``y`` else.
    starts : tuple of two ndarrays of shape (p,)
        NIST's start 1 and start 2.
    certified : ndarray of shape (p,)
        Certified parameters.
    certified_sd : ndarray of shape (p,)
        Certified standard deviations of the parameters.
    certified_rss : float
        Certified residual sum of squares.
    """

    name: str
    difficulty: str
    model: str
    x: np.ndarray
    y: np.ndarray
    starts: tuple[np.ndarray, np.ndarray]
    certified: np.ndarray
    certified_sd: np.ndarray
    certified_rss: float

    @property
    def n_params(self) -> int:
        """Number of parameters ``p``."""
        return int(self.certified.shape[0])

    @property
    def formula(self) -> str:
        """Name of the model formula (shared by problems with the same model)."""
        return FORMULAS[self.name].__qualname__.split(".")[0]

    def predict(self, b: np.ndarray) -> np.ndarray:
        """The model at parameters ``b``, in NumPy (float64), shape ``(N,)``."""
        b = np.asarray(b, dtype=np.float64)
        with np.errstate(all="ignore"):
            return np.asarray(FORMULAS[self.name](b, self.x, np), dtype=np.float64)

    def residuals(self, b: np.ndarray) -> np.ndarray:
        """``predict(b) - y``."""
        return self.predict(b) - self.y

    def jacobian(self, b: np.ndarray) -> np.ndarray:
        """Jacobian of the model at ``b``, shape ``(N, p)``, by complex step.

        ``J[:, i] = Im f(b + i h e_i) / h`` with ``h = 1e-20``: exact to
        rounding for these analytic formulas (no subtraction, unlike finite
        differences).
        """
        h = 1e-20
        b = np.asarray(b, dtype=np.complex128)
        jac = np.empty((self.y.shape[0], b.shape[0]))
        with np.errstate(all="ignore"):
            for i in range(b.shape[0]):
                shifted = b.copy()
                shifted[i] += 1j * h
                jac[:, i] = np.imag(FORMULAS[self.name](shifted, self.x, np)) / h
        return jac

    def rss(self, b: np.ndarray) -> float:
        """Residual sum of squares at ``b``."""
        r = self.residuals(b)
        return float(r @ r)


def _line_range(text: str, what: str) -> tuple[int, int]:
    match = re.search(rf"{what}\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", text)
    if match is None:
        raise ValueError(f"No '{what} (lines a to b)' in the file header.")
    return int(match.group(1)), int(match.group(2))


def load(name: str, data_dir: Path | str = DATA_DIR) -> Problem:
    """Parse ``<data_dir>/<name>.dat``.

    The header gives the line ranges of the starting values (``bK = start1
    start2 certified sd``) and of the data (``y x`` columns, or ``y x1 x2``).
    """
    text = Path(data_dir, f"{name}.dat").read_text()
    lines = text.splitlines()
    first, last = _line_range(text, "Starting Values")
    rows = []
    for line in lines[first - 1 : last]:
        label, values = line.split("=")
        if label.strip() != f"b{len(rows) + 1}":
            raise ValueError(f"{name}: unexpected parameter line {line!r}")
        rows.append([float(v) for v in values.split()])
    table = np.array(rows, dtype=np.float64)  # (p, 4)
    first, last = _line_range(text, "Data")
    data = np.array(
        [[float(v) for v in line.split()] for line in lines[first - 1 : last]],
        dtype=np.float64,
    )
    level = re.search(r"(Lower|Average|Higher) Level of Difficulty", text)
    rss = re.search(r"Residual Sum of Squares:\s+(\S+)", text)
    model = re.search(
        r"^\s*((?:log\[y\]|y)\s*=.*?)\n\s*\n", text, flags=re.MULTILINE | re.DOTALL
    )
    n_obs = re.search(r"Number of Observations:\s+(\d+)", text)
    if level is None or rss is None or model is None or n_obs is None:
        raise ValueError(f"{name}: incomplete header.")
    if data.shape[0] != int(n_obs.group(1)):
        raise ValueError(f"{name}: {data.shape[0]} data rows, header says {n_obs[1]}")
    y = data[:, 0]
    if name == "Nelson":  # log[y] = b1 - b2*x1 * exp[-b3*x2]
        y = np.log(y)
    return Problem(
        name=name,
        difficulty=level.group(1).lower(),
        model=" ".join(model.group(1).split()),
        x=np.ascontiguousarray(data[:, 1:]),
        y=y,
        starts=(table[:, 0].copy(), table[:, 1].copy()),
        certified=table[:, 2].copy(),
        certified_sd=table[:, 3].copy(),
        certified_rss=float(rss.group(1)),
    )


def load_all(data_dir: Path | str = DATA_DIR) -> list[Problem]:
    """All 27 problems, in :data:`NAMES` order."""
    return [load(name, data_dir) for name in NAMES]


def log_relative_error(estimate, certified) -> float:
    """Correct significant digits: ``min_i -log10(|est_i - cert_i| / |cert_i|)``.

    Clipped to ``[0, 11]`` (the certified values have 11 digits); ``0`` for
    a non-finite estimate.
    """
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    if not np.all(np.isfinite(est)):
        return 0.0
    with np.errstate(divide="ignore"):
        lre = -np.log10(np.abs(est - cert) / np.abs(cert))
    return float(np.clip(np.min(lre), 0.0, MAX_DIGITS))


# -- Keras ----------------------------------------------------------------------------
@functools.cache
def parameters_layer() -> type:
    """The Keras layer class ``NistParameters`` (Keras imported on first use)."""
    import keras

    @keras.saving.register_keras_serializable(package="nist")
    class NistParameters(keras.layers.Layer):
        """The parameters ``b`` of a NIST model as one float64 weight vector.

        ``call(x)`` evaluates the named formula of :data:`FORMULAS` with
        ``keras.ops`` and returns shape ``(N, 1)``.
        """

        def __init__(self, name_of_problem: str, start, **kwargs):
            kwargs.setdefault("dtype", "float64")
            super().__init__(**kwargs)
            self.name_of_problem = name_of_problem
            self.start = [float(v) for v in start]
            self.formula = FORMULAS[name_of_problem]

        def build(self, input_shape):
            self.b = self.add_weight(
                name="b",
                shape=(len(self.start),),
                initializer="zeros",
                dtype="float64",
            )
            # Assigned, not a Constant initializer: no round trip through float32.
            self.b.assign(np.asarray(self.start, dtype=np.float64))

        def call(self, x):
            b = [self.b[i] for i in range(len(self.start))]
            return keras.ops.expand_dims(self.formula(b, x, keras.ops), -1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 1)

        def get_config(self):
            return {
                **super().get_config(),
                "name_of_problem": self.name_of_problem,
                "start": self.start,
            }

    return NistParameters


def keras_model(problem: Problem, start) -> object:
    """A functional float64 ``keras.Model`` whose weights are ``b = start``.

    ``keras.Input(shape=(d,), dtype="float64")`` followed by a
    ``NistParameters`` layer (:func:`parameters_layer`); output shape ``(N, 1)``.
    """
    import keras

    layer = parameters_layer()(problem.name, start, name="parameters")
    inputs = keras.Input(shape=(problem.x.shape[1],), dtype="float64")
    return keras.Model(inputs, layer(inputs), name=problem.name)
