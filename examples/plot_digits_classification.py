r"""
Classifying handwritten digits with LMClassifier
================================================

The 8x8 digits data set (1 797 images, 10 classes) is small enough for a
64-20-10 network, about 1 500 weights, to be trained with Levenberg-Marquardt
steps. :class:`sklearn_lm.LMClassifier` uses a softmax output and the
generalised Gauss-Newton step for the cross-entropy. With 10 outputs the
Jacobian has ten rows per sample, and an exact step sums :math:`J^\top J`
layer by layer (about :math:`1\,350 \times 1\,500^2` multiply-adds) and
factors a :math:`1\,500 \times 1\,500` matrix for every attempt. Above
1 000 weights the classifier's default ``solver="auto"`` takes inexact steps
instead: a few conjugate-gradient iterations on Gauss-Newton-vector
products, each a forward and a backward pass over the data, with no
:math:`n \times n` matrix at all. Both need about fifteen full-batch steps.
The exact fit is made with ``bayesian=False``: with the direct solver and
about 9 residuals per weight, the default ``bayesian="auto"`` would turn
Bayesian regularization on, which takes many more steps.

We compare both with scikit-learn's :class:`~sklearn.neural_network.MLPClassifier`
trained with L-BFGS and with Adam, all four behind a
:class:`~sklearn.preprocessing.StandardScaler` in a pipeline.
"""

# %%
# Data
# ----
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_lm import LMClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"train: {X_train.shape}, test: {X_test.shape}")

# %%
# Four classifiers with the same architecture
# -------------------------------------------
classifiers = {
    "LMClassifier": LMClassifier(hidden=(20,), activation="tanh", random_state=0),
    "LMClassifier (exact)": LMClassifier(
        hidden=(20,), activation="tanh", solver="direct", bayesian=False, random_state=0
    ),
    "MLPClassifier (L-BFGS)": MLPClassifier(
        hidden_layer_sizes=(20,),
        activation="tanh",
        solver="lbfgs",
        max_iter=400,
        random_state=0,
    ),
    "MLPClassifier (Adam)": MLPClassifier(
        hidden_layer_sizes=(20,), activation="tanh", max_iter=300, random_state=0
    ),
}

fitted = {}
print(f"{'model':<24} {'train log-loss':>14} {'test acc.':>9} {'fit (s)':>8}")
for name, classifier in classifiers.items():
    pipe = make_pipeline(StandardScaler(), classifier)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    fitted[name] = pipe
    train_loss = log_loss(y_train, pipe.predict_proba(X_train))
    accuracy = accuracy_score(y_test, pipe.predict(X_test))
    print(f"{name:<24} {train_loss:>14.2e} {accuracy:>9.4f} {seconds:>8.1f}")

# %%
# Training curve and damping
# --------------------------
# ``loss_curve_`` holds the training loss after every LM step and
# ``damping_curve_`` the damping factor :math:`\lambda` at the end of each
# epoch. The damping mostly falls while steps succeed and rises again when a
# step has to be retried; small values mean nearly pure Gauss-Newton steps.
lm = fitted["LMClassifier"][-1]
steps = np.arange(1, len(lm.loss_curve_) + 1)
fig, (ax_loss, ax_damping) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
ax_loss.semilogy(steps, lm.loss_curve_)
ax_loss.set(xlabel="LM step", ylabel="training loss", title="Training loss")
ax_damping.semilogy(steps, lm.damping_curve_, color="C1")
ax_damping.set(xlabel="LM step", ylabel="damping", title="Damping factor")

# %%
# Where the LM-trained network errs
# ---------------------------------
ConfusionMatrixDisplay.from_estimator(
    fitted["LMClassifier"], X_test, y_test, colorbar=False
)
plt.title("LMClassifier, test set")
plt.show()
