import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The on-disk cache of compiled steps is off, unless a test points it at a
# temporary directory (tests/test_engine_step_cache.py); run the suite with
# SKLEARN_LM_NO_CACHE=0 and SKLEARN_LM_CACHE_DIR=... to use it throughout.
os.environ.setdefault("SKLEARN_LM_NO_CACHE", "1")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Same random draws in every run: Keras initialisers, NumPy's and Python's."""
    keras.utils.set_random_seed(0)
