"""Progress bars of the estimators' ``verbose=2`` (Keras' ``Progbar``)."""

from __future__ import annotations

import keras

#: Per-epoch or per-step entries shown next to the bar (when present).
_SHOWN = ("loss", "damping", "attempts", "validation_score")


def _values(logs: dict) -> list[tuple[str, float]]:
    return [(name, float(logs[name])) for name in _SHOWN if name in logs]


class EpochProgress:
    """Epoch callback: one bar over the ``epochs`` of a full-batch fit."""

    def __init__(self, epochs: int):
        self.bar = keras.utils.Progbar(
            epochs, stateful_metrics=_SHOWN, unit_name="epoch"
        )
        self.done = 0

    def __call__(self, epoch: int, logs: dict) -> bool:
        self.done += 1
        self.bar.update(self.done, values=_values(logs))
        return False

    def close(self) -> None:
        """End the bar's line when training stopped before ``epochs``."""
        if self.done < self.bar.target:
            self.bar.update(self.done, finalize=True)


class StepProgress:
    """Step callback: a bar over the ``n_steps`` steps of each mini-batch
    epoch, under an ``Epoch i/epochs`` line."""

    def __init__(self, n_steps: int, epochs: int):
        self.n_steps = n_steps
        self.epochs = epochs
        self.epoch = 0
        self.bar = None
        self.done = 0

    def __call__(self, step: int, logs: dict) -> None:
        if step == 0:
            self.close()
            self.epoch += 1
            print(f"Epoch {self.epoch}/{self.epochs}")
            self.bar = keras.utils.Progbar(
                self.n_steps, stateful_metrics=_SHOWN, unit_name="step"
            )
        self.done = step + 1
        self.bar.update(self.done, values=_values(logs))

    def close(self) -> None:
        """End the current bar's line when its epoch stopped early."""
        if self.bar is not None and self.done < self.n_steps:
            self.bar.update(self.done, finalize=True)
