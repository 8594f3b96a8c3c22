"""Training: a frozen configuration, a fast engine around ``model.fit``, and a reporting callback.

The engine gives the same numbers as the textbook's plain ``model.fit`` for the same seed,
several times faster. Plain ``fit`` spends most of its time on per-step overhead (one
``tf.data`` element and one function call per batch of 32). The engine keeps ``fit`` and its
callbacks, but feeds it groups of batch *indices* and runs each group's steps in one
XLA-compiled loop that gathers the batches from the in-memory images. The shuffle is the very
permutation Keras' own array adapter draws, so the batches, their order and the arithmetic
are the same: for the seed preset the per-epoch metrics equal plain ``fit``'s (to about 1e-7).
Presets with dropout draw their masks in a different order inside the loop, so their numbers
differ slightly from plain ``fit`` (by up to about 0.01) while being just as reproducible.

Keras is imported lazily: the configuration and its checks are usable before TensorFlow has
loaded (the UI validates input while TensorFlow is still starting).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fmnist import models
from fmnist.checkpoints import EpochCheckpoints, make_checkpoint_callback
from fmnist.data import NUM_CLASSES, FashionMnist

if TYPE_CHECKING:
    import keras

# The engine feeds ``fit`` a finite, pre-shuffled dataset of index groups on purpose.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored")
warnings.filterwarnings("ignore", message=r"Your input ran out of data; interrupting training")

GROUP_SECONDS = 0.25
"""Target duration of one step group: how often progress is reported and Stop is checked."""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run. Defaults reproduce the textbook run."""

    preset: str = "seed"
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "rmsprop"
    learning_rate: float | None = None
    epochs: int = 5
    batch_size: int = 32
    validation_fraction: float = 0.2
    stratify: bool = False
    sample_limit: int | None = None
    seed: int = 42
    fast: bool = True

    def __post_init__(self) -> None:
        models.get_preset(self.preset)
        if self.loss not in models.LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {', '.join(models.LOSSES)}.")
        if self.optimizer not in models.OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose one of {', '.join(models.OPTIMIZERS)}.")
        if self.learning_rate is not None and not (
                isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 10
                and math.isfinite(self.learning_rate)):
            raise ValueError(f"The learning rate must be a number above 0 and at most 10, not {self.learning_rate!r}.")
        if not _is_int(self.epochs) or not 1 <= self.epochs <= 500:
            raise ValueError(f"Epochs must be a whole number from 1 to 500, not {self.epochs!r}.")
        if not _is_int(self.batch_size) or not 1 <= self.batch_size <= 8192:
            raise ValueError(f"The batch size must be a whole number from 1 to 8192, not {self.batch_size!r}.")
        if not isinstance(self.validation_fraction, (int, float)) or not 0.01 <= self.validation_fraction <= 0.9:
            raise ValueError("The validation split must be between 1% and 90% of the training data, "
                             f"not {self.validation_fraction!r}.")
        if self.sample_limit is not None and (not _is_int(self.sample_limit) or self.sample_limit < 1):
            raise ValueError(f"The training-sample limit must be a positive whole number, not {self.sample_limit!r}.")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**31:
            raise ValueError(f"The random seed must be a whole number from 0 to 2147483647, not {self.seed!r}.")

    @property
    def effective_learning_rate(self) -> float:
        """The chosen learning rate, or Keras' default for the optimizer."""
        return float(self.learning_rate if self.learning_rate is not None else models.OPTIMIZERS[self.optimizer])

    def describe(self) -> str:
        """A short label for run lists and chart legends."""
        limit = f", {self.sample_limit:,} samples" if self.sample_limit else ""
        return (f"{self.preset}, {self.loss.replace('_', ' ')}, {self.optimizer} "
                f"lr {self.effective_learning_rate:g}, {self.epochs} ep, batch {self.batch_size}, "
                f"val {self.validation_fraction:.0%}{limit}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class EpochReport:
    """What one finished epoch reports."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    complete: bool = True
    """False for the last epoch of a run stopped part-way through it."""


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """Indices into ``dataset.x_train``: who trains and who validates."""

    train_indices: np.ndarray
    validation_indices: np.ndarray


@dataclasses.dataclass
class TrainingResult:
    """The trained model and what happened. Configuration stays separate, in ``config``."""

    config: TrainingConfig
    model: keras.Model
    history: list[EpochReport]
    split: DataSplit
    stopped_early: bool
    seconds: float
    checkpoints: EpochCheckpoints | None = None
    """The model's weights at the end of each epoch (within a budget), for the epoch time machine."""


def split_training_data(config: TrainingConfig, labels: np.ndarray) -> DataSplit:
    """``train_test_split`` as in the textbook, then keep the first ``sample_limit`` training items."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    if len(labels) < 2:
        raise ValueError("The dataset needs at least two training images.")
    try:
        train_indices, validation_indices = train_test_split(
            indices, test_size=config.validation_fraction, random_state=config.seed,
            stratify=labels if config.stratify else None)
    except ValueError as error:
        raise ValueError(f"Cannot split {len(labels)} images with a {config.validation_fraction:.0%} "
                         f"validation share: {error}") from error
    if config.sample_limit is not None:
        train_indices = train_indices[:config.sample_limit]
    return DataSplit(np.asarray(train_indices), np.asarray(validation_indices))


def estimate_epoch_seconds(config: TrainingConfig, training_images: int) -> float:
    """Rough seconds per epoch on a 2-core machine, from measured per-sample costs per preset."""
    validation_images = training_images * config.validation_fraction
    training_count = training_images * (1 - config.validation_fraction)
    if config.sample_limit:
        training_count = min(training_count, config.sample_limit)
    per_sample = models.get_preset(config.preset).seconds_per_sample
    batch_overhead = 32 / max(config.batch_size, 1)  # small batches cost more per sample
    engine_factor = 1.0 if config.fast else 8.0
    return (training_count * per_sample * engine_factor * max(batch_overhead, 0.25)
            + validation_images * per_sample / 3)


def scale_images(images: np.ndarray, input_shape: tuple[int | None, ...]) -> np.ndarray:
    """uint8 images to float32 in [0, 1], shaped for a model's input (without the batch axis)."""
    target = tuple(int(d) for d in input_shape[1:])
    return (images.astype(np.float32) / np.float32(255.0)).reshape((len(images), *target))


def encode_targets(labels: np.ndarray, loss: str) -> np.ndarray:
    """Integer labels, or one-hot rows for the losses that need them."""
    if loss in models.ONE_HOT_LOSSES:
        return np.eye(NUM_CLASSES, dtype=np.float32)[labels.astype(np.int64)]
    return labels.astype(np.int32)


EpochListener = Callable[[EpochReport], None]
BatchListener = Callable[[int, float], None]
StopCheck = Callable[[], bool]


def make_reporting_callback(on_epoch: EpochListener | None = None, on_batch: BatchListener | None = None,
                            should_stop: StopCheck | None = None, steps_per_epoch: int = 1,
                            group_sizes: Sequence[int] | None = None,
                            batch_interval_seconds: float = 0.1) -> keras.callbacks.Callback:
    """A Keras callback that reports to plain callables and stops when ``should_stop()`` says so.

    ``on_batch(epoch, fraction)`` is throttled to one call per ``batch_interval_seconds``;
    ``on_epoch`` gets an :class:`EpochReport`. When each ``fit`` batch is a group of steps,
    ``group_sizes[i]`` says how many steps batch ``i`` of an epoch holds. The reports are
    kept in ``callback.reports``; ``callback.stopped_by_request`` says whether Stop ended it.
    """
    import keras

    class ReportingCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.reports: list[EpochReport] = []
            self.stopped_by_request = False
            self.last_batch_report = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.current_epoch = epoch + 1
            self.epoch_started = time.perf_counter()
            self.steps_done = 0
            if on_batch:
                on_batch(self.current_epoch, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            self.steps_done += group_sizes[batch] if group_sizes else 1
            now = time.perf_counter()
            if on_batch and now - self.last_batch_report >= batch_interval_seconds:
                self.last_batch_report = now
                on_batch(self.current_epoch, min(1.0, self.steps_done / max(steps_per_epoch, 1)))
            if should_stop and should_stop():
                self.stopped_by_request = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            report = EpochReport(epoch=epoch + 1, loss=float(logs.get("loss", math.nan)),
                                 accuracy=float(logs.get("accuracy", math.nan)),
                                 val_loss=float(logs.get("val_loss", math.nan)),
                                 val_accuracy=float(logs.get("val_accuracy", math.nan)),
                                 seconds=time.perf_counter() - self.epoch_started,
                                 complete=self.steps_done >= steps_per_epoch)
            self.reports.append(report)
            if on_epoch:
                on_epoch(report)

    callback = ReportingCallback()
    callback.reports = []
    callback.stopped_by_request = False
    return callback


def _index_group_dataset(sample_count: int, batch_size: int, steps_per_group: int):
    """Per epoch: Keras' own shuffle of ``range(sample_count)``, cut into groups of index batches.

    The permutation is drawn exactly as ``keras``' array adapter draws it for ``fit(x, y,
    shuffle=True)`` (the same op in the same kind of ``tf.data`` function), so for the same
    seed the engine sees the same batches in the same order as the plain reference code.
    """
    import tensorflow as tf

    full_batches = sample_count // batch_size
    remainder = sample_count - full_batches * batch_size

    def permutation(_):
        indices = tf.range(sample_count, dtype=tf.int64)
        indices = tf.random.shuffle(indices)
        return indices

    def groups(indices):
        full = tf.reshape(tf.slice(indices, [0], [full_batches * batch_size]), [full_batches, batch_size])
        dataset = tf.data.Dataset.from_tensor_slices(full).batch(steps_per_group)
        if remainder:
            last = tf.slice(indices, [full_batches * batch_size], [remainder])[None, :]
            dataset = dataset.concatenate(tf.data.Dataset.from_tensors(last))
        return dataset

    dataset = tf.data.Dataset.range(1).map(permutation).prefetch(1).flat_map(groups)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return dataset.with_options(options)


def _group_sizes(sample_count: int, batch_size: int, steps_per_group: int) -> list[int]:
    full_batches = sample_count // batch_size
    sizes = [steps_per_group] * (full_batches // steps_per_group)
    if full_batches % steps_per_group:
        sizes.append(full_batches % steps_per_group)
    if sample_count % batch_size:
        sizes.append(1)
    return sizes


def steps_per_group_for(config: TrainingConfig) -> int:
    """How many steps run between two progress reports (and Stop checks): about ``GROUP_SECONDS``."""
    step_seconds = models.get_preset(config.preset).seconds_per_sample * config.batch_size
    return max(1, int(GROUP_SECONDS / max(step_seconds, 1e-9)))


def _install_grouped_train_step(model: keras.Model, images: np.ndarray, labels: np.ndarray, loss: str,
                                xla: bool) -> None:
    """Make ``model.fit`` take groups of index batches and run their steps in one compiled loop."""
    import tensorflow as tf

    image_tensor = tf.constant(images)  # uint8, scaled inside the loop: 4x less memory
    target_tensor = tf.constant(labels.astype(np.int32))
    input_shape = [-1, *(int(d) for d in model.input_shape[1:])]
    one_hot = loss in models.ONE_HOT_LOSSES
    single_step = model.train_step

    def grouped_train_step(index_groups):
        index_groups = index_groups[0] if isinstance(index_groups, tuple) else index_groups
        step_count = tf.shape(index_groups)[0]

        def run_one_step(step):
            batch_indices = index_groups[step]
            batch_images = tf.reshape(tf.cast(tf.gather(image_tensor, batch_indices), tf.float32) / 255.0,
                                      input_shape)
            batch_targets = tf.gather(target_tensor, batch_indices)
            if one_hot:
                batch_targets = tf.one_hot(batch_targets, NUM_CLASSES, dtype=tf.float32)
            single_step((batch_images, batch_targets))
            return (step + 1,)

        tf.while_loop(lambda step: step < step_count, run_one_step, (tf.constant(0),))
        return model.get_metrics_result()

    # Only the step loop is XLA-compiled (when that helps the preset): validation and
    # prediction keep Keras' plain functions, which start faster.
    model.train_step = tf.function(grouped_train_step, jit_compile=xla, reduce_retracing=True) if xla \
        else grouped_train_step


def train(config: TrainingConfig, dataset: FashionMnist, on_epoch: EpochListener | None = None,
          on_batch: BatchListener | None = None, should_stop: StopCheck | None = None) -> TrainingResult:
    """Train a fresh model as ``config`` says, reporting each epoch to plain callables.

    ``should_stop()`` is polled after every step group; when it returns True the run stops
    cleanly and the model and the history so far are returned (``stopped_early=True``).
    """
    import keras

    started = time.perf_counter()
    split = split_training_data(config, dataset.y_train)
    preset = models.get_preset(config.preset)
    keras.utils.set_random_seed(config.seed)
    model = preset.build()
    model.compile(optimizer=models.make_optimizer(config.optimizer, config.effective_learning_rate),
                  loss=config.loss, metrics=["accuracy"], jit_compile=False if config.fast else "auto")

    train_images = dataset.x_train[split.train_indices]
    train_labels = dataset.y_train[split.train_indices]
    validation_data = (scale_images(dataset.x_train[split.validation_indices], model.input_shape),
                       encode_targets(dataset.y_train[split.validation_indices], config.loss))
    steps_per_epoch = math.ceil(len(train_images) / config.batch_size)
    checkpoints = EpochCheckpoints()

    def checkpoint_callback(reporting_callback):
        """Runs after the reporting callback, so it knows whether the epoch ran all its steps."""
        return make_checkpoint_callback(checkpoints, lambda: reporting_callback.reports[-1].complete)

    if config.fast:
        steps_per_group = steps_per_group_for(config)
        callback = make_reporting_callback(
            on_epoch, on_batch, should_stop, steps_per_epoch,
            group_sizes=_group_sizes(len(train_images), config.batch_size, steps_per_group))
        _install_grouped_train_step(model, train_images, train_labels, config.loss, preset.compile_with_xla)
        model.fit(_index_group_dataset(len(train_images), config.batch_size, steps_per_group),
                  epochs=config.epochs, verbose=0, callbacks=[callback, checkpoint_callback(callback)],
                  validation_data=validation_data, validation_batch_size=1024)
        model.train_step = type(model).train_step.__get__(model)  # a plain model again, e.g. for saving
        model.train_function = None  # fit caches the grouped loop; drop it so a later fit builds a plain one
    else:
        callback = make_reporting_callback(on_epoch, on_batch, should_stop, steps_per_epoch)
        model.fit(scale_images(train_images, model.input_shape), encode_targets(train_labels, config.loss),
                  batch_size=config.batch_size, epochs=config.epochs, verbose=0,
                  callbacks=[callback, checkpoint_callback(callback)],
                  validation_data=validation_data)
    return TrainingResult(config=config, model=model, history=list(callback.reports), split=split,
                          stopped_early=callback.stopped_by_request, seconds=time.perf_counter() - started,
                          checkpoints=checkpoints)


def warm_up() -> None:
    """Train the seed preset on 64 blank images for one epoch, so TensorFlow's one-time set-up
    (kernels, the XLA service, tracing machinery) is paid before a user's first run."""
    from fmnist.data import FashionMnist

    blank_images = np.zeros((64, 28, 28), dtype=np.uint8)
    labels = np.arange(64, dtype=np.uint8) % NUM_CLASSES
    dataset = FashionMnist(blank_images, labels, blank_images[:10], labels[:10], source="warm-up",
                           official_split=False)
    train(TrainingConfig(epochs=1, validation_fraction=0.25), dataset)
