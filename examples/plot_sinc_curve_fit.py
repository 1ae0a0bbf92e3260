"""
Curve fitting: Levenberg-Marquardt against Adam and L-BFGS
==========================================================

We fit ``y = sinc(10 x)`` on ``[-1, 1]`` (NumPy's convention,
``sin(pi t) / (pi t)``) with a 1-20-1 tanh network: 61 weights, a smooth
target and no noise, the setting where a second-order method shines.

Three optimisers start from *the same initial weights* and get the same wall
time budget:

* Levenberg-Marquardt, full batch, with :class:`sklearn_lm.engine.Trainer`;
* Keras' Adam on mini-batches;
* L-BFGS from :func:`scipy.optimize.minimize` on a NumPy implementation of the
  same network (exact gradients, full batch).

After every step (LM, L-BFGS) or epoch (Adam) we record the full-data mean
squared error and the elapsed time; the time spent on that bookkeeping is
left out of the clock.
"""

# %%
# Data and the network
# --------------------
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize

from sklearn_lm.engine import Trainer

BUDGET_S = 6.0  # wall time per optimiser
N_POINTS = 20_000

x = np.linspace(-1.0, 1.0, N_POINTS).reshape(-1, 1).astype("float32")
y = np.sinc(10.0 * x).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input(shape=(1,)),
        keras.layers.Dense(20, activation="tanh"),
        keras.layers.Dense(1),
    ]
)
initial_weights = model.get_weights()
print(f"{model.count_params()} weights, {N_POINTS} training points")


def mse_of(keras_model):
    """Full-data mean squared error of a Keras model."""
    pred = keras.ops.convert_to_numpy(keras_model(x, training=False))
    return float(np.mean((pred - y) ** 2))


class Clock:
    """A stopwatch that leaves out the time spent on measurements."""

    def __init__(self):
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.times = []
        self.losses = []

    def elapsed(self):
        return time.perf_counter() - self.start - self.excluded

    def record(self, measure):
        now = self.elapsed()
        begin = time.perf_counter()
        loss = measure()
        self.excluded += time.perf_counter() - begin
        self.times.append(now)
        self.losses.append(loss)
        return now > BUDGET_S


# %%
# Levenberg-Marquardt with the engine's Trainer
# ---------------------------------------------
# A callback receives ``(epoch, logs)`` after every epoch (here: every step,
# since the batch is the full data set) and stops training by returning
# ``True``.
model.set_weights(initial_weights)
trainer = Trainer(model, loss="mse", damping="standard")
lm_clock = Clock()
history = trainer.fit(
    x,
    y,
    epochs=100_000,
    batch_size=None,
    callbacks=[lambda epoch, logs: lm_clock.record(lambda: mse_of(model))],
)
print(
    f"LM: {len(lm_clock.losses)} steps, MSE {lm_clock.losses[-1]:.2e}, "
    f"stop reason {history.stop_reason}"
)
lm_prediction = keras.ops.convert_to_numpy(model(x))

# %%
# Adam with Keras
# ---------------
adam_model = keras.models.clone_model(model)
adam_model.set_weights(initial_weights)
adam_model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="mse")
adam_clock = Clock()


class RecordAndStop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if adam_clock.record(lambda: mse_of(adam_model)):
            self.model.stop_training = True


adam_model.fit(
    x, y, batch_size=256, epochs=100_000, callbacks=[RecordAndStop()], verbose=0
)
print(f"Adam: {len(adam_clock.losses)} epochs, MSE {adam_clock.losses[-1]:.2e}")
adam_prediction = keras.ops.convert_to_numpy(adam_model(x))

# %%
# L-BFGS with SciPy
# -----------------
# The same 1-20-1 network written with NumPy, with its exact gradient.
shapes = [w.shape for w in initial_weights]
sizes = [w.size for w in initial_weights]
x64, y64 = x.astype(float), y.astype(float)


def unpack(theta):
    parts = np.split(theta, np.cumsum(sizes)[:-1])
    return [p.reshape(s) for p, s in zip(parts, shapes, strict=True)]


def forward(theta):
    w1, b1, w2, b2 = unpack(theta)
    hidden = np.tanh(x64 @ w1 + b1)
    return hidden, hidden @ w2 + b2


def loss_and_gradient(theta):
    w1, b1, w2, b2 = unpack(theta)
    hidden, out = forward(theta)
    residual = out - y64
    g_out = 2.0 * residual / residual.size
    g_hidden = (g_out @ w2.T) * (1.0 - hidden**2)
    grads = [x64.T @ g_hidden, g_hidden.sum(0), hidden.T @ g_out, g_out.sum(0)]
    return float(np.mean(residual**2)), np.concatenate([g.ravel() for g in grads])


def lbfgs_mse(theta):
    return float(np.mean((forward(theta)[1] - y64) ** 2))


def lbfgs_callback(intermediate_result):
    if lbfgs_clock.record(lambda: lbfgs_mse(intermediate_result.x)):
        raise StopIteration


theta0 = np.concatenate([w.ravel() for w in initial_weights]).astype(float)
lbfgs_clock = Clock()
result = minimize(
    loss_and_gradient,
    theta0,
    jac=True,
    method="L-BFGS-B",
    callback=lbfgs_callback,
    options={"maxiter": 1_000_000, "maxfun": 10_000_000, "ftol": 0.0, "gtol": 0.0},
)
print(f"L-BFGS: {len(lbfgs_clock.losses)} iterations, MSE {lbfgs_clock.losses[-1]:.2e}")
lbfgs_prediction = forward(result.x)[1]

# %%
# Loss against wall time
# ----------------------
# LM takes far fewer, far more expensive steps; on a network this small each
# step is cheap enough that it reaches a much lower error in the same time.
fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
runs = {
    "Levenberg-Marquardt": (lm_clock, lm_prediction),
    "Adam (batch 256)": (adam_clock, adam_prediction),
    "L-BFGS": (lbfgs_clock, lbfgs_prediction),
}
for name, (clock, _) in runs.items():
    ax_loss.semilogy(clock.times, clock.losses, label=name)
ax_loss.set(xlabel="wall time (s)", ylabel="training MSE", title="Loss vs time")
ax_loss.legend()

for name, (_, prediction) in runs.items():
    ax_err.semilogy(x[:, 0], np.abs(prediction - y)[:, 0] + 1e-12, lw=0.8, label=name)
ax_err.set(xlabel="x", ylabel="|f(x) - y|", title="Absolute error after the budget")
ax_err.legend()
plt.show()
