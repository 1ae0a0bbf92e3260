"""A cache of compiled step graphs on disk, shared between processes.

Tracing a step graph costs 0.2-0.4 s of a first fit; loading the traced graph
from a file costs about 2 ms. A process that compiles a step
(:func:`~sklearn_lm.engine.compile.compiled_step`) writes its graph here,
and the next process that needs the same graph (a joblib worker of a grid
search, the next session) registers it with the TensorFlow runtime instead
of tracing it. The graph is the one traced, so results are identical to the
last bit.

**What is stored.**
One file per compiled function (``step``, ``objective``, ``epoch``,
``step_variables``, ``normal``): the ``FunctionDefLibrary`` of the traced function (the
function and every function it calls, renamed with the entry's digest so
that graphs from different processes never share a name), the values of the
constants it captured, and the structure of its outputs (the format is
:mod:`sklearn_lm.engine.graph_file`). The file name is the
SHA-256 digest of the key; the key is also stored in the file and compared
on loading. The key holds everything the graph depends on:

* the model function's key
  (:attr:`~sklearn_lm.engine.functions.ModelFunction.key`: layer shapes,
  activations, dtype), the step configuration
  (:meth:`~sklearn_lm.engine.config.StepConfig.key`) and the input
  signature of the function (inputs, targets);
* the versions of TensorFlow, Keras, Python and sklearn_lm, and a digest of
  sklearn_lm's own source files, so that a change of the code is a miss,
  never a stale graph;
* the device types TensorFlow sees.

Only graphs whose key is a plain description are stored: built-in model
functions, losses and damping strategies (a custom subclass enters the
in-memory key by identity, which means nothing in another process), and
graphs that capture nothing but constants.

**Safety.**
A file is written to a temporary name in the cache directory and moved into
place with :func:`os.replace`, so that concurrent writers of the same entry
never leave a torn file: a reader sees the old file or the new one. A file
that cannot be read or holds another key is a miss, one that does not parse
is a miss and is removed; a loaded graph that fails on its first call is replaced by a
trace. Errors of the cache never fail a fit: a directory that cannot be
written just is not written.

A loaded graph runs whatever operations its file holds, like a pickle: point
the cache only at a directory that no one else can write (the default, in
the user's home, is created with the user's permissions).

The cache is bounded: after each write, the oldest entries (by modification
time, which a hit refreshes) are removed until the directory holds at most
``max_bytes`` (:data:`DEFAULT_MAX_BYTES`, 64 MiB: about a thousand graphs).

**Where.**
:func:`set_cache_dir` chooses the directory (``None`` turns the cache off)
and wins over the environment; otherwise ``SKLEARN_LM_NO_CACHE`` (set and
not ``"0"``) turns it off, ``SKLEARN_LM_CACHE_DIR`` chooses the directory,
and the default is :func:`default_cache_dir` (``$XDG_CACHE_HOME/sklearn_lm``
or ``~/.cache/sklearn_lm``, ``%LOCALAPPDATA%\\sklearn_lm`` on Windows),
sub-directory ``steps``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from . import graph_file
from .graph_file import LoadedFunction as LoadedFunction  # re-exported

__all__ = [
    "DEFAULT_MAX_BYTES",
    "cache_dir",
    "default_cache_dir",
    "set_cache_dir",
]

#: The default bound on the bytes held by the cache directory.
DEFAULT_MAX_BYTES = 64 * 2**20

_SUFFIX = ".tfstep"
_FORMAT = 1
#: Entries larger than this are not written (a graph that captured data).
_MAX_ENTRY_BYTES = 8 * 2**20
#: Temporary files of writers that died are removed after this many seconds.
_STALE_TMP_S = 3600.0

_UNSET = object()
_explicit: Any = _UNSET
_max_bytes = DEFAULT_MAX_BYTES
_environment_digest: str | None = None


# -- settings --------------------------------------------------------------------
def default_cache_dir() -> Path:
    """The default cache directory: the user's cache directory, ``sklearn_lm/steps``.

    ``%LOCALAPPDATA%`` on Windows, else ``$XDG_CACHE_HOME`` or ``~/.cache``.
    """
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sklearn_lm" / "steps"


def set_cache_dir(
    path: str | os.PathLike | None, *, max_bytes: int | None = None
) -> None:
    """Choose the directory of the compiled-step cache, or turn it off.

    Parameters
    ----------
    path : str, os.PathLike or None
        The directory (created when first written); ``None`` turns the cache
        off. Set here, it wins over the environment variables
        ``SKLEARN_LM_CACHE_DIR`` and ``SKLEARN_LM_NO_CACHE``.
    max_bytes : int, optional
        Bound on the bytes the directory holds (default
        :data:`DEFAULT_MAX_BYTES`); the least recently used entries are
        removed beyond it.

    Raises
    ------
    TypeError
        If ``path`` is not a path or ``None``.
    ValueError
        If ``max_bytes`` is not a positive integer.
    """
    global _explicit, _max_bytes
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(
            "path must be a str, an os.PathLike or None. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int | np.integer):
            raise ValueError(
                f"max_bytes must be a positive int. Received: max_bytes={max_bytes!r}"
            )
        if max_bytes < 1:
            raise ValueError(
                f"max_bytes must be a positive int. Received: max_bytes={max_bytes!r}"
            )
        _max_bytes = int(max_bytes)
    _explicit = None if path is None else Path(path)


def cache_dir() -> Path | None:
    """The directory of the compiled-step cache now, or ``None`` when it is off.

    :func:`set_cache_dir` if it was called; else ``None`` when
    ``SKLEARN_LM_NO_CACHE`` is set (to anything but ``"0"`` or the empty
    string), ``SKLEARN_LM_CACHE_DIR`` when set, else
    :func:`default_cache_dir`.
    """
    if _explicit is not _UNSET:
        return _explicit
    if os.environ.get("SKLEARN_LM_NO_CACHE", "") not in ("", "0"):
        return None
    chosen = os.environ.get("SKLEARN_LM_CACHE_DIR")
    return Path(chosen) if chosen else default_cache_dir()


# -- keys --------------------------------------------------------------------------
def _plain(value) -> bool:
    """Whether ``value`` is made of str, numbers, bools, None and tuples only."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | bool | int | float)


def _builtin(obj, module_name: str) -> bool:
    home = type(obj).__module__
    return home == module_name or home.startswith(module_name + ".")


def entry_key(name: str, fn, config, signature) -> str | None:
    """The text key of one compiled function, or ``None`` if it is not stored.

    Parameters
    ----------
    name : str
        Which function (``"step"``, ``"objective"``, ...).
    fn : ModelFunction
    config : StepConfig
        The configuration the function was built from (``chunk_size`` set).
    signature : sequence of tf.TensorSpec
        The function's input signature.
    """
    from . import damping, losses

    if cache_dir() is None:
        return None
    if fn.key is None or not type(fn).__module__.startswith("sklearn_lm."):
        return None
    if not (
        _builtin(config.loss, losses.__name__)
        and _builtin(config.damping, damping.__name__)
    ):
        return None
    described = (fn.key, config.key())
    if not _plain(described):
        return None
    specs = tuple((tuple(s.shape.as_list()), s.dtype.name) for s in signature)
    text = repr((_environment(), name, described, specs))
    return None if " at 0x" in text else text


def _environment() -> str:
    """Versions, source digest and device types, computed once per process."""
    global _environment_digest
    if _environment_digest is None:
        import keras

        import sklearn_lm

        source = hashlib.sha256()
        root = Path(sklearn_lm.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            source.update(str(path.relative_to(root)).encode())
            source.update(path.read_bytes())
        devices = sorted({d.device_type for d in tf.config.list_logical_devices()})
        _environment_digest = repr(
            (
                _FORMAT,
                tf.__version__,
                keras.__version__,
                sys.version,
                sklearn_lm.__version__,
                source.hexdigest(),
                tuple(devices),
            )
        )
    return _environment_digest


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


# -- writing --------------------------------------------------------------------------
def save(key: str, concrete) -> bool:
    """Store the traced ``concrete`` function under ``key``; ``False`` if not stored.

    Errors (an unwritable directory, a capture that is not a constant) are
    not raised: the entry is just not stored.
    """
    directory = cache_dir()
    if directory is None:
        return False
    try:
        digest = _digest(key)
        blob = graph_file.serialise(key, concrete, digest[:16])
        if blob is None or len(blob) > _MAX_ENTRY_BYTES:
            return False
        directory.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(
            prefix=f".{digest}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(blob)
            os.replace(tmp, directory / f"{digest}{_SUFFIX}")
        except BaseException:
            _remove(Path(tmp))
            raise
        _evict(directory, _max_bytes)
        return True
    except Exception:  # noqa: BLE001 - the cache never fails a fit
        return False


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _evict(directory: Path, max_bytes: int) -> None:
    """Remove the least recently used entries beyond ``max_bytes``."""
    entries = []
    now = time.time()
    for path in directory.iterdir():
        try:
            info = path.stat()
        except OSError:
            continue
        if path.name.endswith(".tmp"):
            if now - info.st_mtime > _STALE_TMP_S:
                _remove(path)
            continue
        if path.suffix == _SUFFIX:
            entries.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        _remove(path)
        total -= size


# -- loading ------------------------------------------------------------------------
def load(key: str, signature) -> LoadedFunction | None:
    """The function stored under ``key``, registered with the runtime; or ``None``.

    ``signature`` is the function's input signature (sequence of
    ``tf.TensorSpec``).

    A missing, unreadable or foreign file is a miss (a damaged one is
    removed). A hit refreshes the file's modification time (least recently
    used eviction).
    """
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / f"{_digest(key)}{_SUFFIX}"
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        loaded = graph_file.parse(blob, key, [spec.dtype for spec in signature])
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        _remove(path)
        return None
    if loaded is None:
        return None
    try:
        os.utime(path)
    except OSError:
        pass
    return loaded
