"""One compiled function as bytes, and back: the entry format of the step cache.

:func:`serialise` turns a traced concrete function into one blob: a magic
prefix, a JSON header (the cache key, the function's name, the number and
structure of its outputs, the dtypes and shapes of the constants it
captured), its ``FunctionDefLibrary`` with every function renamed by a
suffix (so that graphs from different processes never share a name), and the
captured constants' bytes. :func:`parse` checks such a blob against the key,
registers its functions with the TensorFlow runtime and returns a
:class:`LoadedFunction` that calls them. Where the blobs are kept, under
which key, and when they are evicted is :mod:`sklearn_lm.engine.step_cache`.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import tensorflow as tf

__all__ = ["LoadedFunction", "serialise", "parse"]

_MAGIC = b"SKLEARN_LM_STEP\x01"


def serialise(key: str, concrete, suffix: str) -> bytes | None:
    """The entry of the traced ``concrete`` function under ``key``, its
    functions renamed with ``suffix``; ``None`` when it cannot be stored (it
    captures a resource or a string, or its outputs are not a nest of
    tuples, lists and step results)."""
    captures = []
    for value in concrete.captured_inputs:
        if value.dtype == tf.resource or value.dtype == tf.string:
            return None
        array = np.ascontiguousarray(value.numpy())
        captures.append((array.dtype.str, list(array.shape), array.tobytes()))
    structure = _encode(concrete.structured_outputs)
    if structure is None:
        return None
    library, name = _renamed_library(concrete, suffix)
    n_outputs = len(concrete.function_def.signature.output_arg)
    body = library.SerializeToString()
    header = json.dumps(
        {
            "key": key,
            "name": name,
            "n_outputs": n_outputs,
            "structure": structure,
            "captures": [(d, s, len(b)) for d, s, b in captures],
            "library_bytes": len(body),
        }
    ).encode()
    parts = [_MAGIC, struct.pack("<Q", len(header)), header, body]
    parts += [b for _, _, b in captures]
    return b"".join(parts)


# -- output structures --------------------------------------------------------------
def _encode(structure):
    """A JSON description of a nest of tensors, or ``None`` if not supported."""
    from .search import StepResult

    if tf.is_tensor(structure):
        return "tensor"
    if isinstance(structure, StepResult):
        parts = [_encode(v) for v in structure]
        return None if None in parts else {"StepResult": parts}
    if type(structure) in (tuple, list):
        parts = [_encode(v) for v in structure]
        return None if None in parts else {type(structure).__name__: parts}
    return None


def _decode(code):
    """A nest of placeholders (``0``) with the structure :func:`_encode` saw."""
    from .search import StepResult

    if code == "tensor":
        return 0
    ((kind, parts),) = code.items()
    values = [_decode(p) for p in parts]
    if kind == "StepResult":
        return StepResult(*values)
    if kind == "tuple":
        return tuple(values)
    if kind == "list":
        return values
    raise ValueError(f"unknown structure {kind!r}")


def _renamed_library(concrete, suffix: str):
    """The function library of ``concrete`` with every name suffixed."""
    from tensorflow.core.framework import function_pb2

    library = function_pb2.FunctionDefLibrary()
    library.function.extend(concrete.graph.as_graph_def().library.function)
    library.function.append(concrete.function_def)
    names = {f.signature.name: f"{f.signature.name}_{suffix}" for f in library.function}

    def rename(attr):
        if attr.HasField("func") and attr.func.name in names:
            attr.func.name = names[attr.func.name]
        if attr.HasField("list"):
            for func in attr.list.func:
                if func.name in names:
                    func.name = names[func.name]

    for fdef in library.function:
        fdef.signature.name = names[fdef.signature.name]
        for node in fdef.node_def:
            for attr in node.attr.values():
                rename(attr)
        for attr in fdef.attr.values():
            rename(attr)
    return library, names[concrete.function_def.signature.name]


class LoadedFunction:
    """A compiled function registered from the cache, called by name.

    Called like a concrete function, with the flat tensors of its input
    signature; the captured constants are appended, the outputs packed in the
    traced function's structure.
    """

    __slots__ = ("name", "n_outputs", "structure", "captures", "dtypes")

    def __init__(
        self, name: str, n_outputs: int, structure, captures: list, dtypes: list
    ):
        self.name = name.encode()
        self.n_outputs = n_outputs
        self.structure = structure
        self.captures = captures
        self.dtypes = dtypes

    def __call__(self, *args):
        from tensorflow.python.eager import context

        if len(args) != len(self.dtypes):
            raise TypeError(
                f"The compiled function takes {len(self.dtypes)} arguments. "
                f"Received: {len(args)}"
            )
        inputs = [
            a if tf.is_tensor(a) else tf.convert_to_tensor(a, dtype=d)
            for a, d in zip(args, self.dtypes, strict=True)
        ]
        flat = context.context().call_function(
            self.name, [*inputs, *self.captures], self.n_outputs
        )
        return tf.nest.pack_sequence_as(self.structure, list(flat or []))


def parse(blob: bytes, key: str, dtypes: list) -> LoadedFunction | None:
    """The function of an entry made by :func:`serialise`, registered with
    the runtime; ``None`` if the entry holds another key (a digest
    collision). ``dtypes``: those of the function's inputs. Raises
    ``ValueError`` (or a parsing error) for a damaged entry."""
    from tensorflow.core.framework import function_pb2
    from tensorflow.python.eager import context

    if not blob.startswith(_MAGIC):
        raise ValueError("not a step cache entry")
    start = len(_MAGIC)
    (length,) = struct.unpack_from("<Q", blob, start)
    start += 8
    header = json.loads(blob[start : start + length].decode())
    start += length
    if header["key"] != key:  # a digest collision: leave the other's entry
        return None
    end = start + int(header["library_bytes"])
    library = function_pb2.FunctionDefLibrary()
    library.ParseFromString(blob[start:end])
    captures = []
    for dtype, shape, size in header["captures"]:
        array = np.frombuffer(blob[end : end + size], dtype=np.dtype(dtype))
        captures.append(tf.constant(array.reshape(shape)))
        end += size
    if end != len(blob):
        raise ValueError("truncated step cache entry")
    structure = _decode(header["structure"])
    n_outputs = int(header["n_outputs"])
    if len(tf.nest.flatten(structure)) != n_outputs:
        raise ValueError("inconsistent step cache entry")
    ctx = context.context()
    ctx.ensure_initialized()
    for fdef in library.function:
        if not ctx.has_function(fdef.signature.name):
            ctx.add_function_def(fdef)
    return LoadedFunction(header["name"], n_outputs, structure, captures, dtypes)
