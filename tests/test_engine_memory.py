"""Peak memory of full-batch training stays within the documented bound."""

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from _python import run_python

from sklearn_lm.engine.memory import (
    CHUNK_BUDGET_BYTES,
    CHUNKS_IN_FLIGHT,
    chunk_bytes,
    default_chunk_size,
)

#: Largest accepted ratio of the measured peak above the baseline to the bound
#: (measured: about 1.5 on Linux with TensorFlow 2.21 and oneDNN).
FACTOR = 2.0

# Runs in a fresh interpreter: ru_maxrss is the peak of the whole process.
_SCRIPT = textwrap.dedent(
    """
    import json
    import resource

    import keras
    import numpy as np

    from sklearn_lm.engine import Trainer
    from sklearn_lm.engine.memory import step_memory_bytes

    N = 10**6

    def peak_bytes():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(20, "tanh"), keras.layers.Dense(1)]
    )
    trainer = Trainer(model, "mse")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (N, 1)).astype("float32")
    y = np.sinc(10.0 * x).astype("float32")
    trainer.fit(x[:1000], y[:1000])  # the runtime and its kernels loaded
    baseline = peak_bytes()
    history = trainer.fit(x, y, epochs=2)
    fn = trainer.fn
    itemsize = fn.dtype.size
    bound = step_memory_bytes(
        fn.n_params,
        1,
        itemsize,
        N,
        trainer.chunk_size,
        data_bytes_per_sample=itemsize + 8 * (1 + 1),
    )
    print("RESULT " + json.dumps({
        "above": peak_bytes() - baseline,
        "bound": bound,
        "chunk_size": trainer.chunk_size,
        "steps": history.n_steps,
    }))
    """
)


def test_default_chunks_in_flight_fit_the_budget():
    # 1-20-1 network: 61 weights, one float32 residual per sample.
    rows = default_chunk_size(61, 1, 4)
    assert rows == 135_168  # a multiple of 512: full chunks are never padded
    assert chunk_bytes(61, 1, 4) == 2 * 62 * 4
    assert CHUNKS_IN_FLIGHT * rows * chunk_bytes(61, 1, 4) <= CHUNK_BUDGET_BYTES


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB on Linux")
def test_full_batch_peak_memory_stays_within_the_documented_bound():
    """10**6 samples, 2 epochs full batch, in a fresh process."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    proc = run_python(_SCRIPT, env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])
    assert out["steps"] == 2
    assert out["chunk_size"] < 10**6  # the chunked step
    assert out["above"] <= FACTOR * out["bound"], (
        f"peak {out['above'] / 2**20:.0f} MiB above the baseline, "
        f"bound {out['bound'] / 2**20:.0f} MiB"
    )
