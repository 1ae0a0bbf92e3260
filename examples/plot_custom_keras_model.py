"""
Training a custom Keras model: a small CNN on 8x8 digits
========================================================

The estimators build a dense network for you; the engine in
:mod:`sklearn_lm.engine` trains *any* built Keras model. Here a tiny
convolutional network reads the digits as 8x8 images:

``Conv2D(8, 3x3, tanh) -> MaxPooling2D(2) -> Flatten -> Dense(10, softmax)``

It has about 800 weights, so the Gauss-Newton matrix is roughly 800 x 800 and
each Levenberg-Marquardt step costs little.

Two ways to train it are shown: :class:`sklearn_lm.engine.LMModel`, which keeps
Keras' ``compile``/``fit`` workflow (metrics, validation data, Keras callbacks),
and the plain :class:`sklearn_lm.engine.Trainer` loop.
"""

# %%
# Images and labels
# -----------------
import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_lm.engine import LMModel, Trainer

digits = load_digits()
images = (digits.images / 16.0).astype("float32")[..., np.newaxis]  # (n, 8, 8, 1)
x_train, x_test, y_train, y_test = train_test_split(
    images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
)


def make_cnn(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="tanh"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


cnn = make_cnn(seed=0)
cnn.summary()

# %%
# Keras-style training with LMModel
# ---------------------------------
# The sparse categorical cross-entropy takes integer labels; its LM step uses
# the generalised Gauss-Newton curvature of the cross-entropy. Mini-batches of
# 256 images keep each Jacobian small (256 images x 10 outputs x ~800 weights).
lm_model = LMModel(cnn)
lm_model.compile(
    loss="sparse_categorical_crossentropy", damping="standard", metrics=["accuracy"]
)
history = lm_model.fit(
    x_train,
    y_train,
    epochs=5,
    batch_size=256,
    validation_data=(x_test, y_test),
    verbose=0,
)
print(f"final training loss: {history.history['loss'][-1]:.4f}")
print(f"final validation accuracy: {history.history['val_accuracy'][-1]:.4f}")

# %%
# The plain Trainer loop
# ----------------------
# ``Trainer`` runs the same steps without Keras' ``fit`` machinery; callbacks
# are plain functions of ``(epoch, logs)``. Here one records the test accuracy
# after every epoch.
cnn2 = make_cnn(seed=0)
trainer = Trainer(cnn2, loss="sparse_categorical_crossentropy", damping="fletcher")
test_accuracy = []


def record_accuracy(epoch, logs):
    probabilities = keras.ops.convert_to_numpy(cnn2(x_test))
    test_accuracy.append(np.mean(probabilities.argmax(axis=1) == y_test))


trainer_history = trainer.fit(
    x_train, y_train, epochs=5, batch_size=256, seed=0, callbacks=[record_accuracy]
)
print(f"Trainer, final test accuracy: {test_accuracy[-1]:.4f}")

# %%
# Learning curves
# ---------------
# With mini-batches, each step only lowers the loss of its own batch, so the
# epoch loss need not fall monotonically; Fletcher's scale-invariant damping
# is one alternative to try when it does not.
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
ax_loss.semilogy(history.history["loss"], label="LMModel, train")
ax_loss.semilogy(history.history["val_loss"], label="LMModel, test")
ax_loss.semilogy(trainer_history.history["loss"], label="Trainer (Fletcher), train")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
ax_loss.legend()
ax_acc.plot(history.history["val_accuracy"], label="LMModel (standard damping)")
ax_acc.plot(test_accuracy, label="Trainer (Fletcher damping)")
ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="Accuracy")
ax_acc.legend()
plt.show()
