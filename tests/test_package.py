import json
import os
import re
import textwrap
from pathlib import Path

from _python import run_python

import sklearn_lm

#: Modules that neither a fit nor ``import tensorflow`` needs; importing
#: ``sklearn_lm`` must not load them (they load where they are used).
_DEFERRED = [
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.preprocessing",
    "sklearn_lm.engine.keras_model",
    "sklearn_lm.inspection",
]


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", sklearn_lm.__version__)


def _fresh(script: str) -> dict:
    """Run ``script`` in a fresh interpreter importing this ``sklearn_lm``;
    return the JSON it prints last."""
    root = Path(sklearn_lm.__file__).resolve().parent.parent
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p
    )
    preamble = f"import sys; sys.path.insert(0, {str(root)!r})\n"
    proc = run_python(preamble + textwrap.dedent(script), env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve() == Path(sklearn_lm.__file__).resolve()
    return result


def test_import_does_not_load_what_a_fit_does_not_need():
    # TensorFlow and Keras first: what they import themselves is not ours.
    result = _fresh(
        f"""
        import json, sys
        import keras, tensorflow
        before = set(sys.modules)
        import sklearn_lm
        loaded = sorted(m for m in {_DEFERRED!r} if m in sys.modules)
        print(json.dumps({{"file": sklearn_lm.__file__,
                           "loaded": loaded,
                           "by_keras": sorted(m for m in loaded if m in before)}}))
        """
    )
    assert result["loaded"] == result["by_keras"] == []


def test_deferred_names_resolve_on_first_use():
    result = _fresh(
        """
        import json, sys
        import sklearn_lm
        import sklearn_lm.engine as engine
        listed = "LMModel" in dir(engine)
        from sklearn_lm.engine import LMModel
        from sklearn_lm.engine.keras_model import LMModel as direct
        public = {name: type(getattr(engine, name)).__name__
                  for name in engine.__all__}
        top = {name: type(getattr(sklearn_lm, name)).__name__
               for name in sklearn_lm.__all__}
        print(json.dumps({"file": sklearn_lm.__file__, "listed": listed,
                          "same": LMModel is direct and engine.LMModel is direct,
                          "public": public, "top": top}))
        """
    )
    assert result["listed"] and result["same"]
    assert result["public"]["LMModel"] == "type"
    assert set(result["public"]) == set(sklearn_lm.engine.__all__)
    assert set(result["top"]) == set(sklearn_lm.__all__)
