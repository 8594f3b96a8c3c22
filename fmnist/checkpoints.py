"""The epoch time machine: a run's weights at the end of each epoch, kept within a memory budget.

A Keras callback copies the model's weights after every epoch into :class:`EpochCheckpoints`.
When the copies would exceed the budget (20 MB per run by default), epochs are dropped so that
the ones kept stay evenly spaced; the first and the last epoch are always kept. Later, any kept
epoch's weights are put into a copy of the model to evaluate the model as it was then.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

DEFAULT_BUDGET_BYTES = 20 * 1024 * 1024


class EpochCheckpoints:
    """Weights per epoch (1-based), thinned to stay within ``budget_bytes``.

    Thread-safe: the training thread adds, the pages read.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes < 1:
            raise ValueError("The checkpoint budget must be at least one byte.")
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._weights: dict[int, list[np.ndarray]] = {}
        self._complete: dict[int, bool] = {}
        self.evicted: list[int] = []
        """Epochs that were kept once and dropped to stay within the budget."""
        self.too_large = False
        """True when one epoch's weights alone exceed the budget: then only the latest epoch is kept."""

    def add(self, epoch: int, weights: list[np.ndarray], complete: bool = True) -> None:
        """Keep a copy of ``weights`` for ``epoch``; thin out older epochs if the budget is exceeded."""
        copies = [np.array(weight, copy=True) for weight in weights]
        with self._lock:
            self._weights[epoch] = copies
            self._complete[epoch] = complete
            per_epoch = sum(weight.nbytes for weight in copies)
            capacity = self.budget_bytes // max(per_epoch, 1)
            if capacity < 1:
                self.too_large = True
                capacity = 1
            while len(self._weights) > capacity:
                self._evict_one(keep_first=capacity >= 2)

    def _evict_one(self, keep_first: bool) -> None:
        """Drop the inner epoch whose neighbours are closest together, so the rest stays evenly spaced."""
        kept = sorted(self._weights)  # with keep_first, at least three epochs are kept here
        if keep_first:
            gaps = [kept[i + 1] - kept[i - 1] for i in range(1, len(kept) - 1)]
            victim = kept[1 + int(np.argmin(gaps))]
        else:
            victim = kept[0]
        del self._weights[victim]
        del self._complete[victim]
        self.evicted.append(victim)

    def __getstate__(self) -> dict:
        """Picklable without its lock: a Ray worker sends a run's checkpoints back to the server."""
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def epochs(self) -> list[int]:
        """The epochs whose weights are kept, in order."""
        with self._lock:
            return sorted(self._weights)

    def is_complete(self, epoch: int) -> bool:
        """False for the last epoch of a run stopped part-way through it."""
        with self._lock:
            return self._complete[epoch]

    def weights(self, epoch: int) -> list[np.ndarray]:
        """The weights at the end of ``epoch``; ``ValueError`` for an epoch that is not kept."""
        with self._lock:
            if epoch not in self._weights:
                kept = ", ".join(str(e) for e in sorted(self._weights)) or "none"
                raise ValueError(f"Epoch {epoch} is not kept (kept: {kept}).")
            return self._weights[epoch]

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(weight.nbytes for weights in self._weights.values() for weight in weights)


def make_checkpoint_callback(checkpoints: EpochCheckpoints, is_complete=None) -> keras.callbacks.Callback:
    """A Keras callback that copies the model's weights into ``checkpoints`` after every epoch.

    ``is_complete()``, when given, says whether the epoch that just ended ran all its steps
    (the reporting callback knows; a stopped run's last epoch is partial).
    """
    import keras

    class CheckpointCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            checkpoints.add(epoch + 1, self.model.get_weights(),
                            complete=True if is_complete is None else bool(is_complete()))

    return CheckpointCallback()


def model_at_epoch(model: keras.Model, checkpoints: EpochCheckpoints, epoch: int,
                   scratch: keras.Model | None = None) -> keras.Model:
    """A model with ``model``'s architecture and the weights it had after ``epoch``.

    Pass the model this function returned before as ``scratch`` to reuse it (setting weights is
    far cheaper than cloning); ``model`` itself is never changed. The scikit-learn baseline's
    checkpoints are its ``coef_`` and ``intercept_``: it makes a new small model of its own.
    """
    if hasattr(model, "with_weights"):  # fmnist.baseline.BaselineModel
        return model.with_weights(checkpoints.weights(epoch))
    import keras

    if scratch is None:
        scratch = keras.models.clone_model(model)
    scratch.set_weights(checkpoints.weights(epoch))
    return scratch
