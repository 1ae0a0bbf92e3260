"""A fixture that builds Keras models in float64 for one test.

The engine casts the inputs of models it differentiates automatically to the
model's ``input_dtype``, which follows Keras' global dtype policy. Keras fixes
that policy from ``floatx`` the first time it is read, so both are set here,
and both restored afterwards.
"""

import keras
import pytest


@pytest.fixture
def float64():
    """Global floatx and dtype policy float64 during the test."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)
