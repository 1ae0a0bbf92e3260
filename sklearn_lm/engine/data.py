"""The data :class:`~sklearn_lm.engine.Trainer` trains on.

Arrays (converted by :func:`prepare`), or a source of ``(x, y)`` /
``(x, y, sample_weight)`` batches: a ``tf.data.Dataset``, a
``keras.utils.PyDataset`` or a function returning a fresh iterable of batches
for each epoch (a generator function).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator

import keras
import tensorflow as tf

__all__ = [
    "prepare",
    "is_stream",
    "check_stream_arguments",
    "epoch_batches",
    "batch_tuples",
    "LastConverted",
]


def prepare(x, y, sample_weight, *, x_dtype, loss, n_outputs: int) -> tuple:
    """``(x, y, sample_weight)`` as the tensors a compiled step takes.

    ``x`` in ``x_dtype``; ``y`` through ``loss.prepare_targets`` (one
    column per output unless the loss takes sparse targets); float64 sample
    weights, ones by default. Shapes are checked, naming the argument.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype != x_dtype:
        x = tf.cast(x, x_dtype)
    n = int(x.shape[0])
    if y is None:
        raise ValueError("y is required when x is an array. Received: y=None")
    y = loss.prepare_targets(y)
    if not loss.sparse_targets:
        if y.shape.rank == 1:
            y = tf.reshape(y, [-1, 1])
        if int(y.shape[-1]) != n_outputs:
            raise ValueError(
                f"y must have {n_outputs} columns (the model's outputs). "
                f"Received: y.shape={tuple(y.shape)}"
            )
    if int(y.shape[0]) != n:
        raise ValueError(
            "x and y must have the same number of samples. Received: "
            f"x.shape[0]={n}, y.shape[0]={int(y.shape[0])}"
        )
    if sample_weight is None:
        sw = tf.ones([n], tf.float64)
    else:
        sw = tf.reshape(tf.cast(tf.convert_to_tensor(sample_weight), tf.float64), [-1])
        if int(sw.shape[0]) != n:
            raise ValueError(
                f"sample_weight must have one entry per sample ({n}). "
                f"Received: sample_weight.shape={tuple(sw.shape)}"
            )
    return x, y, sw


def is_stream(x) -> bool:
    """Whether ``x`` is a source of batches rather than an array."""
    return isinstance(x, tf.data.Dataset | keras.utils.PyDataset) or callable(x)


def check_stream_arguments(y, batch_size, sample_weight) -> None:
    """With a source of batches, the arguments that must be left unset."""
    if y is not None or sample_weight is not None or batch_size is not None:
        raise ValueError(
            "With a dataset or a generator, pass batches of (x, y) or "
            "(x, y, sample_weight) in the dataset itself. Received: "
            f"y={type(y).__name__}, batch_size={batch_size!r}, "
            f"sample_weight={type(sample_weight).__name__}"
        )


def epoch_batches(source) -> Iterator:
    """The batches of one epoch from a dataset, a PyDataset or a generator function."""
    if isinstance(source, keras.utils.PyDataset):
        return (source[i] for i in range(len(source)))
    if isinstance(source, tf.data.Dataset):
        return iter(source)
    return iter(source())


def batch_tuples(batches: Iterable) -> Iterator[tuple]:
    """``(x, y, sample_weight)`` of each batch (``sample_weight`` may be None)."""
    for element in batches:
        if not isinstance(element, tuple | list) or len(element) not in (2, 3):
            raise ValueError(
                "A dataset or generator for Trainer.fit must yield (x, y) or "
                f"(x, y, sample_weight) tuples. Received: {type(element).__name__}"
            )
        yield (*element, None) if len(element) == 2 else tuple(element)


class LastConverted:
    """The conversion of the last tensors given, kept while they live.

    Tensors are immutable, so ``Trainer.train_step`` called in a loop on the
    same ``x``, ``y`` (and ``sample_weight``) converts them once. The entry
    is dropped as soon as one of them is garbage collected; arrays, which
    can change in place, are converted on every call.
    """

    def __init__(self):
        self._entry: list = []

    def __call__(self, given: tuple, convert: Callable) -> tuple:
        """``convert(*given)``, or its result for the same tensors as last time."""
        if not all(v is None or isinstance(v, tf.Tensor) for v in given) or not (
            tf.executing_eagerly()
        ):
            return convert(*given)
        if self._entry:
            refs, converted = self._entry[0]
            if all(
                (r is None and v is None) or (r is not None and r() is v)
                for r, v in zip(refs, given, strict=True)
            ):
                return converted
        converted = convert(*given)
        holder = self._entry
        holder.clear()

        def drop(_, holder=holder):
            holder.clear()

        refs = tuple(None if v is None else weakref.ref(v, drop) for v in given)
        holder.append((refs, converted))
        return converted
