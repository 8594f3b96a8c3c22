"""Training: a frozen configuration, a fast engine around ``model.fit``, and a reporting callback.

The engine gives the same numbers as the textbook's plain ``model.fit`` for the same seed,
several times faster. Plain ``fit`` spends most of its time on per-step overhead (one
``tf.data`` element and one function call per batch of 32). The engine keeps ``fit`` and its
callbacks, but feeds it groups of batch *indices* and runs each group's steps in one
XLA-compiled loop that gathers the batches from the in-memory images. The shuffle is the very
permutation Keras' own array adapter draws, so the batches, their order and the arithmetic
are the same: for the seed preset the per-epoch metrics equal plain ``fit``'s (to about 1e-7).
The compiled loop lives in an engine slot that later runs of the same configuration reuse (see
:class:`_EngineSlot`), so a process does not keep one traced loop per run, and every random
choice of a run comes from its own seed (see :func:`per_run_seed`).
Presets with dropout draw their masks in a different order inside the loop, so their numbers
differ slightly from plain ``fit`` (by up to about 0.01) while being just as reproducible.

Keras is imported lazily: the configuration and its checks are usable before TensorFlow has
loaded (the UI validates input while TensorFlow is still starting).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import random
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fmnist import models
from fmnist.checkpoints import EpochCheckpoints, make_checkpoint_callback
from fmnist.data import IMAGE_SIZE, NUM_CLASSES, FashionMnist

if TYPE_CHECKING:
    import keras

# The engine feeds ``fit`` a finite, pre-shuffled dataset of index groups on purpose.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored")
warnings.filterwarnings("ignore", message=r"Your input ran out of data; interrupting training")

GROUP_SECONDS = 0.25
"""Target duration of one step group: how often progress is reported and Stop is checked."""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run. Defaults reproduce the textbook run.

    ``loss``, ``optimizer``, ``epochs``, ``batch_size`` and ``schedule`` left at None take the
    preset's defaults (the textbook's for seed, mlp and cnn), and so does ``learning_rate``
    when the optimizer is the preset's own; after construction they always hold a value.
    """

    preset: str = "seed"
    loss: str | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    validation_fraction: float = 0.2
    stratify: bool = False
    sample_limit: int | None = None
    seed: int = 42
    fast: bool = True
    schedule: str | None = None
    drawings: bool | None = None
    """Also learn from drawing-like versions of the images (fmnist.augment); None: the preset's default."""

    def __post_init__(self) -> None:
        preset = models.get_preset(self.preset)
        if self.learning_rate is None and self.optimizer in (None, preset.default_optimizer):
            object.__setattr__(self, "learning_rate", preset.default_learning_rate)
        for name, default in (("loss", preset.default_loss), ("optimizer", preset.default_optimizer),
                              ("epochs", preset.default_epochs), ("batch_size", preset.default_batch_size),
                              ("schedule", preset.default_schedule)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.schedule not in models.SCHEDULES:
            raise ValueError(f"Unknown learning-rate schedule {self.schedule!r}; "
                             f"choose one of {', '.join(models.SCHEDULES)}.")
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
        if self.drawings is not None and not isinstance(self.drawings, (bool, np.bool_)):
            raise ValueError(f"The drawings option must be on, off or the preset's default, not {self.drawings!r}.")
        if not preset.is_keras:
            self._refuse_keras_settings(preset)

    def _refuse_keras_settings(self, preset: models.Preset) -> None:
        """The scikit-learn baseline trains with its own SGD: a Keras setting other than the preset's
        default would be silently ignored, so it is refused, naming what does not apply."""
        differing = [label for label, value, default in (
            ("loss", self.loss, preset.default_loss), ("optimizer", self.optimizer, preset.default_optimizer),
            ("learning rate", self.learning_rate, preset.default_learning_rate),
            ("batch size", self.batch_size, preset.default_batch_size),
            ("learning-rate schedule", self.schedule, preset.default_schedule),
            ("drawings", bool(self.drawings) if self.drawings is not None else False, preset.drawings_by_default),
            ("plain fit", not self.fast, False),
        ) if value != default]
        if differing:
            raise ValueError(f"The textbook baseline ({preset.name}) trains with scikit-learn's own SGD (log loss, "
                             "its 'optimal' learning rate, one image at a time) and does not use these settings: "
                             f"{', '.join(differing)}.")

    @property
    def uses_drawings(self) -> bool:
        """Whether this run also learns from drawings: as chosen, else as the preset does by default."""
        if self.drawings is not None:
            return bool(self.drawings)
        return models.get_preset(self.preset).drawings_by_default

    @property
    def effective_learning_rate(self) -> float:
        """The chosen learning rate, or Keras' default for the optimizer."""
        return float(self.learning_rate if self.learning_rate is not None else models.OPTIMIZERS[self.optimizer])

    def describe(self) -> str:
        """A short label for run lists and chart legends."""
        limit = f", {self.sample_limit:,} samples" if self.sample_limit else ""
        if not models.get_preset(self.preset).is_keras:
            return f"{self.preset}, log loss, scikit-learn SGD, {self.epochs} ep, val {self.validation_fraction:.0%}{limit}"
        schedule = "" if self.schedule == "constant" else f" {self.schedule}"
        limit += ", with drawings" if self.uses_drawings else ""
        return (f"{self.preset}, {self.loss.replace('_', ' ')}, {self.optimizer} "
                f"lr {self.effective_learning_rate:g}{schedule}, {self.epochs} ep, batch {self.batch_size}, "
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
    """A Keras model, or for the scikit-learn baseline a :class:`fmnist.baseline.BaselineModel`."""
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


@dataclasses.dataclass(frozen=True)
class TrainingPoint:
    """The running training loss and accuracy part-way through an epoch (Keras' epoch-so-far means),
    or of the validation after its steps, part-way through it (``validation_share``)."""

    epoch: int
    fraction: float
    """Share of the epoch's steps done, in (0, 1]."""
    loss: float
    accuracy: float
    validation_share: float | None = None
    """For a point of the validation after the epoch's steps (``fraction`` 1): the share of the
    validation images done; ``loss`` and ``accuracy`` are then theirs so far. None: a training point."""

    @property
    def is_validation(self) -> bool:
        return self.validation_share is not None

    @property
    def position(self) -> float:
        """Epochs done so far, as a number for a chart's x axis: 2.5 is half-way through epoch 3."""
        return self.epoch - 1 + self.fraction


EpochListener = Callable[[EpochReport], None]
BatchListener = Callable[[int, float], None]
PointListener = Callable[[TrainingPoint], None]
StopCheck = Callable[[], bool]


def make_reporting_callback(on_epoch: EpochListener | None = None, on_batch: BatchListener | None = None,
                            should_stop: StopCheck | None = None, steps_per_epoch: int = 1,
                            steps_done: Callable[[], int] | None = None,
                            batch_interval_seconds: float = 0.1, on_point: PointListener | None = None,
                            point_interval_seconds: float = 0.5) -> keras.callbacks.Callback:
    """A Keras callback that reports to plain callables and stops when ``should_stop()`` says so.

    ``on_batch(epoch, fraction)`` is throttled to one call per ``batch_interval_seconds``;
    ``on_point`` gets a :class:`TrainingPoint` (the running loss and accuracy within the epoch)
    after an epoch's first step group, then at most once per ``point_interval_seconds``, and
    always at its last step;
    ``on_epoch`` gets an :class:`EpochReport`. When each ``fit`` batch is a group of steps,
    ``steps_done()`` says how many of the epoch's steps have run (a batch that ran none is not
    reported). The reports are
    kept in ``callback.reports``; ``callback.stopped_by_request`` says whether Stop ended it.
    """
    import keras

    class ReportingCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.reports: list[EpochReport] = []
            self.stopped_by_request = False
            self.last_batch_report = -math.inf  # the first step is always reported (perf_counter may be small)

        def on_epoch_begin(self, epoch, logs=None):
            self.current_epoch = epoch + 1
            self.epoch_started = time.perf_counter()
            self.steps_done = 0
            self.last_point_report = -math.inf  # each epoch's first step group is a point
            if on_batch:
                on_batch(self.current_epoch, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            before = self.steps_done
            self.steps_done = steps_done() if steps_done else self.steps_done + 1
            if self.steps_done == before:  # a call that found the epoch's steps all done
                if should_stop and should_stop():
                    self.stopped_by_request = True
                    self.model.stop_training = True
                return
            now = time.perf_counter()
            all_done = self.steps_done >= steps_per_epoch  # always said: validation starts now
            if on_batch and (all_done or now - self.last_batch_report >= batch_interval_seconds):
                self.last_batch_report = now
                on_batch(self.current_epoch, min(1.0, self.steps_done / max(steps_per_epoch, 1)))
            if on_point and logs and "loss" in logs and (
                    now - self.last_point_report >= point_interval_seconds or self.steps_done >= steps_per_epoch):
                self.last_point_report = now
                on_point(TrainingPoint(epoch=self.current_epoch,
                                       fraction=min(1.0, self.steps_done / max(steps_per_epoch, 1)),
                                       loss=float(logs["loss"]), accuracy=float(logs.get("accuracy", math.nan))))
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


def shuffle_seeds(seed: int) -> tuple[int, int]:
    """The (graph seed, op seed) pair that ``tf.random.shuffle`` gets inside Keras' array adapter
    after ``keras.utils.set_random_seed(seed)``: the first random op of a fresh ``tf.data``
    function (TensorFlow's ``random_seed.get_seed``, including its (0, 0) rule)."""
    maximum = 2**31 - 1
    seeds = (seed % maximum, 0)
    return (0, maximum) if seeds == (0, 0) else seeds


def _index_group_dataset(sample_count: int, batch_size: int, seed: int, epoch_step,
                         substitutes: np.ndarray | None = None, substitute_share: float = 0.0):
    """Per epoch: Keras' own shuffle of ``range(sample_count)``, cut into index batches, handed to
    the grouped train step (see :func:`_install_grouped_train_step`) as ``(batches, offset)``.

    The permutation is drawn exactly as ``keras``' array adapter draws it for ``fit(x, y,
    shuffle=True)`` after ``keras.utils.set_random_seed(seed)`` (the same op with the same two
    seeds in the same kind of ``tf.data`` function), so for the same seed the engine sees the
    same batches in the same order as the plain reference code. The seeds are passed to the op
    explicitly, so TensorFlow's process-wide seed (which other runs may set) plays no part.

    The full batches come as one ``[batches, batch_size]`` matrix (offset 0), repeated while
    ``epoch_step`` (the steps the train step has run this epoch) has not reached their count:
    each ``fit`` batch runs the next few of them, as many as the run's pacer says, so a group's
    size can change from one call to the next while the batches and their order stay the same.
    A last, smaller batch follows on its own (offset: the number of full batches).

    With ``substitutes`` ((sample_count,) rows, -1 where there is none), each epoch sends a
    sample's substitute instead of the sample itself with probability ``substitute_share`` (a
    canvas drawing of a training image in place of its photo): the number of steps stays the same.

    Such a run has no plain-``fit`` twin, and it gets a fresh shuffle and fresh substitutions
    every epoch, from its seed and the epoch's number. Keras' own
    permutation is drawn by a seeded op that starts over with each epoch's iterator, so with
    ``set_random_seed`` every epoch sees the same order: kept as it is for the runs that must
    match ``fit`` to the digit, but in a drawing run it would replace the same photos every epoch
    and never show them.
    """
    import tensorflow as tf

    full_batches = sample_count // batch_size
    remainder = sample_count - full_batches * batch_size
    graph_seed, op_seed = shuffle_seeds(seed)
    if substitutes is not None:
        epoch_counter = tf.Variable(0, dtype=tf.int64, trainable=False)

    def keras_permutation(_):
        indices = tf.range(sample_count, dtype=tf.int64)
        return tf.raw_ops.RandomShuffle(value=indices, seed=graph_seed, seed2=op_seed)

    def substituting_permutation(_):
        epoch = epoch_counter.assign_add(1) - 1

        def uniform(stream):  # streams 1 and 2 of 3 per epoch, as the measured runs drew them
            return tf.random.stateless_uniform([sample_count], seed=tf.stack([tf.constant(seed, tf.int64), 3 * epoch + stream]))
        shuffled = tf.cast(tf.argsort(uniform(1)), tf.int64)
        candidates = tf.gather(tf.constant(substitutes, tf.int64), shuffled)
        return tf.where((candidates >= 0) & (uniform(2) < substitute_share), candidates, shuffled)

    def groups(indices):
        full = tf.reshape(tf.slice(indices, [0], [full_batches * batch_size]), [full_batches, batch_size])
        dataset = tf.data.Dataset.from_tensors((full, tf.constant(0, tf.int32))).repeat(full_batches).take_while(
            lambda batches, offset: epoch_step.read_value() < full_batches)
        if remainder:
            last = tf.slice(indices, [full_batches * batch_size], [remainder])[None, :]
            dataset = dataset.concatenate(tf.data.Dataset.from_tensors((last, tf.constant(full_batches, tf.int32))))
        return dataset

    dataset = tf.data.Dataset.range(1).map(keras_permutation if substitutes is None else substituting_permutation).prefetch(1).flat_map(groups)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    # Nothing here is worth tuning (one element per step group, made in microseconds), and the
    # autotuner sometimes held an epoch's first element back: on a 2-core AVX-512 EPYC, 2.3 s of
    # idle CPU at the start of one epoch in two (Minute CNN, 24,000 images: epochs of 2.8 or 5.2 s
    # with it, 2.8-3.3 s without).
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
    # Keras takes the number of ``fit`` batches its first epoch saw as every later epoch's limit
    # (unless the dataset says how many it holds), which would cut short a later epoch whose
    # groups came out smaller. So it is told the most an epoch can hold (one step per call); an
    # epoch ends when its elements run out, as before.
    most = full_batches + (1 if remainder else 0)
    dataset.cardinality = lambda: tf.constant(most, dtype=tf.int64)
    return dataset


FIRST_GROUP_SHARE = 0.25
"""A run's first groups (before it has timed any steps here) get this share of the steps the
preset's static cost says would fill ``GROUP_SECONDS``: that cost was measured on another machine."""
MAX_GROUP_GROWTH = 2.0
"""A group is at most this many times the size of the one before (a slowdown shrinks it at once)."""
_MEASURED_STEP_SECONDS: dict[tuple, float] = {}
_LATEST_STEP_BY_PRESET: dict[str, tuple[int, float]] = {}
_MEASURED_COMPILE_SECONDS: dict[tuple[str, bool], float] = {}
_MEASURED_LOCK = threading.Lock()


def _step_key(config: TrainingConfig) -> tuple:
    return (config.preset, config.batch_size, config.uses_drawings)


def measured_step_seconds(config: TrainingConfig) -> float | None:
    """Seconds one training step of ``config`` (its preset, batch size and drawings) took in this
    process, as the latest run measured it; None before any run of it here."""
    with _MEASURED_LOCK:
        return _MEASURED_STEP_SECONDS.get(_step_key(config))


def latest_step_measurement(preset: str) -> tuple[int, float] | None:
    """(batch size, seconds per step) of the latest step time measured here for ``preset``
    (by a run or by :func:`calibrate_step_times`); None before any."""
    with _MEASURED_LOCK:
        return _LATEST_STEP_BY_PRESET.get(preset)


def measured_compile_seconds(config: TrainingConfig, drawings: bool | None = None) -> float | None:
    """Seconds the latest new engine of ``config``'s preset (with ``drawings``, by default its own
    drawing option) spent tracing and compiling here: its first call's time beyond its steps at the
    run's measured pace; None before any. Until the drawing option's in-graph versions went (``IN_GRAPH_DRAWING_SHARE``), a
    Minute CNN engine with them took 3.0 s to compile against 0.7 s without (a 2-core EPYC)."""
    with _MEASURED_LOCK:
        return _MEASURED_COMPILE_SECONDS.get((config.preset, config.uses_drawings if drawings is None else drawings))


def _record_step_seconds(config: TrainingConfig, seconds: float) -> None:
    with _MEASURED_LOCK:
        _MEASURED_STEP_SECONDS[_step_key(config)] = seconds
        _LATEST_STEP_BY_PRESET[config.preset] = (config.batch_size, seconds)


def steps_per_group_for(config: TrainingConfig) -> int:
    """How many steps a run's first step groups hold: about ``GROUP_SECONDS`` at the step time
    measured here by an earlier run, else a share (``FIRST_GROUP_SHARE``) of what the preset's
    static cost says. Later groups follow the run's own measured steps (:class:`StepGroupPacer`)."""
    measured = measured_step_seconds(config)
    if measured is not None:
        return max(1, int(GROUP_SECONDS / max(measured, 1e-9)))
    step_seconds = models.get_preset(config.preset).seconds_per_sample * config.batch_size
    return max(1, int(FIRST_GROUP_SHARE * GROUP_SECONDS / max(step_seconds, 1e-9)))


class StepGroupPacer:
    """Sizes a run's step groups from the time its steps take on this machine, under its load.

    Between two ``fit`` calls it is told how many steps the call ran and how long the call took
    (``clock`` is ``time.perf_counter`` unless a test gives another); the next group is then
    about ``GROUP_SECONDS`` of steps at the latest step time (a slower step shrinks the groups at
    once; faster ones grow them by at most ``MAX_GROUP_GROWTH`` per group). The first call of a
    run is not learned from (it traces and compiles), nor are calls that are not a full group's
    steps (an epoch's last, smaller batch). ``fixed`` keeps every group at the first size.
    ``compiling``: the run's engine is new, so its first call's time beyond its steps, once the
    steps are timed, is recorded as the engine's compile time (:func:`measured_compile_seconds`).
    """

    def __init__(self, config: TrainingConfig, first_size: int | None = None, fixed: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.size = max(1, first_size if first_size is not None else steps_per_group_for(config))
        self.fixed = fixed
        self.clock = clock
        self.step_seconds: float | None = None
        self.calls = 0
        self.started = 0.0
        self.compiling = False
        self._first_call: tuple[int, float] | None = None

    def call_started(self) -> None:
        self.started = self.clock()

    def call_ended(self, steps: int, full_batches: bool = True) -> None:
        """``steps`` ran in the call that began at :meth:`call_started`; ``full_batches``: they were
        steps of full batches (not an epoch's last, smaller one)."""
        seconds = self.clock() - self.started
        self.calls += 1
        if self.calls == 1:
            self._first_call = (steps, seconds)
            return
        if steps <= 0 or not full_batches:
            return
        if self.compiling and self._first_call is not None:
            first_steps, first_seconds = self._first_call
            with _MEASURED_LOCK:
                _MEASURED_COMPILE_SECONDS[(self.config.preset, self.config.uses_drawings)] = max(
                    0.0, first_seconds - first_steps * seconds / steps)
            self._first_call = None
        if self.fixed:
            return
        self.step_seconds = seconds / steps
        _record_step_seconds(self.config, self.step_seconds)
        wanted = max(1, int(GROUP_SECONDS / max(self.step_seconds, 1e-9)))
        self.size = min(wanted, max(self.size, int(self.size * MAX_GROUP_GROWTH)))


def make_pacer(config: TrainingConfig) -> StepGroupPacer:
    """The pacer of a fast run of ``config`` (tests replace it to fix the groups' size)."""
    return StepGroupPacer(config)


def make_pacing_callback(pacer: StepGroupPacer, epoch_step, group_steps, full_batches: int) -> keras.callbacks.Callback:
    """Tells the grouped train step how many steps each call runs (``group_steps``), from ``pacer``,
    and starts every epoch's step count (``epoch_step``) at 0."""
    import keras

    class PacingCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            epoch_step.assign(0)
            group_steps.assign(pacer.size)

        def on_epoch_begin(self, epoch, logs=None):
            epoch_step.assign(0)
            group_steps.assign(pacer.size)

        def on_train_batch_begin(self, batch, logs=None):
            self.steps_before = int(epoch_step.numpy())
            pacer.call_started()

        def on_train_batch_end(self, batch, logs=None):
            steps_after = int(epoch_step.numpy())
            pacer.call_ended(steps_after - self.steps_before, full_batches=self.steps_before < full_batches)
            group_steps.assign(pacer.size)

    return PacingCallback()


def _install_grouped_train_step(model: keras.Model, image_variable, target_variable, loss: str, xla: bool,
                                epoch_step, group_steps) -> None:
    """Make ``model.fit`` take ``(index batches, offset)`` elements (see :func:`_index_group_dataset`)
    and run the next ``group_steps`` of the epoch's steps in one compiled loop that gathers each
    batch from ``image_variable`` (uint8) and ``target_variable`` (int32). ``epoch_step`` counts
    the epoch's steps run so far: step ``s`` of the epoch is row ``s - offset`` of the element."""
    import tensorflow as tf

    input_shape = [-1, *(int(d) for d in model.input_shape[1:])]
    one_hot = loss in models.ONE_HOT_LOSSES
    single_step = model.train_step

    def grouped_train_step(data):
        index_groups, offset = data
        first = epoch_step.read_value() - offset
        count = tf.maximum(tf.minimum(group_steps.read_value(), tf.shape(index_groups)[0] - first), 0)
        image_tensor = image_variable.read_value()
        target_tensor = target_variable.read_value()

        def run_one_step(step):
            batch_indices = index_groups[step]
            batch_images = tf.reshape(tf.cast(tf.gather(image_tensor, batch_indices), tf.float32) / 255.0,
                                      input_shape)
            batch_targets = tf.gather(target_tensor, batch_indices)
            if one_hot:
                batch_targets = tf.one_hot(batch_targets, NUM_CLASSES, dtype=tf.float32)
            single_step((batch_images, batch_targets))
            return (step + 1,)

        tf.while_loop(lambda step: step < first + count, run_one_step, (first,))
        epoch_step.assign_add(count)
        return model.get_metrics_result()

    # Only the step loop is XLA-compiled (when that helps the preset): validation and
    # prediction keep Keras' plain functions, which start faster.
    model.train_step = tf.function(grouped_train_step, jit_compile=xla, reduce_retracing=True) if xla \
        else grouped_train_step


VALIDATION_BATCH_SIZE = 1024
VALIDATION_CHUNK_SECONDS = 0.1
"""About how long one traced validation call runs before the pass reports its progress (the live
chart draws a point then): the pass is cut into chunks of whole batches, by the preset's cost.
The CNNs validate one batch per call (each call costs about a millisecond more), the seed and
mlp presets their whole validation set in one. With 2 batches per call, the first call of a
Minute CNN's validation took 2.2 s on this machine under load."""


def validation_chunk_batches(config: TrainingConfig) -> int:
    """Validation batches per traced call: about ``VALIDATION_CHUNK_SECONDS`` of work on this machine
    (a validation sample costs about a third of a training one), at least one."""
    batch_seconds = models.get_preset(config.preset).seconds_per_sample / 3 * VALIDATION_BATCH_SIZE
    return max(1, int(VALIDATION_CHUNK_SECONDS / max(batch_seconds, 1e-9)))


def _make_validator(model: keras.Model, loss: str, chunk_batches: int | None = None):
    """A compiled pass over a run's validation set that returns Keras' ``(val_loss, val_accuracy)``.

    Keras' own ``evaluate`` inside ``fit`` costs about 0.1 CPU s per epoch of set-up and iterator
    work around 12 batches whose arithmetic takes about 0.01 s; for the seed preset that was a
    third of an epoch. This traced loop computes the same numbers, the loss as Keras weights it
    (each batch's mean loss, weighted by the batch's size) and the accuracy of the arg-max class.

    ``validate(images, labels, on_progress=None)`` runs the batches ``chunk_batches`` at a time
    (all at once by default), carrying the float32 sums from one call to the next, so the numbers
    are the very ones of a single pass; after each chunk but the last, ``on_progress(share done,
    running loss, running accuracy)`` is called.
    """
    import tensorflow as tf

    input_shape = [-1, *(int(d) for d in model.input_shape[1:])]
    one_hot = loss in models.ONE_HOT_LOSSES

    def validate_batches(images, labels, first, last, loss_sum, correct):
        count = tf.shape(images)[0]

        def one_batch(index, loss_sum, correct):
            start = index * VALIDATION_BATCH_SIZE
            size = tf.minimum(VALIDATION_BATCH_SIZE, count - start)
            batch_images = tf.reshape(tf.cast(images[start:start + size], tf.float32) / 255.0, input_shape)
            batch_labels = labels[start:start + size]
            targets = tf.one_hot(batch_labels, NUM_CLASSES, dtype=tf.float32) if one_hot else batch_labels
            predictions = model(batch_images, training=False)
            batch_loss = tf.cast(model.compute_loss(y=targets, y_pred=predictions, training=False), tf.float32)
            hits = tf.equal(tf.cast(tf.argmax(predictions, axis=-1), tf.int32), batch_labels)
            return (index + 1, loss_sum + batch_loss * tf.cast(size, tf.float32),
                    correct + tf.reduce_sum(tf.cast(hits, tf.float32)))

        _, loss_sum, correct = tf.while_loop(lambda index, *_: index < last, one_batch, (first, loss_sum, correct))
        return loss_sum, correct

    traced = tf.function(validate_batches, reduce_retracing=True)

    def validate(images, labels, on_progress=None):
        count = int(images.shape[0])
        batches = -(-count // VALIDATION_BATCH_SIZE)
        step = batches if chunk_batches is None else max(1, chunk_batches)
        loss_sum, correct = tf.constant(0.0), tf.constant(0.0)
        for first in range(0, batches, step):
            last = min(first + step, batches)
            loss_sum, correct = traced(images, labels, tf.constant(first), tf.constant(last), loss_sum, correct)
            if on_progress is not None and last < batches:
                seen = float(min(last * VALIDATION_BATCH_SIZE, count))
                on_progress(seen / count, float(loss_sum) / seen, float(correct) / seen)
        total = tf.cast(count, tf.float32)
        return loss_sum / total, correct / total

    return validate


def make_validation_callback(validator, images: np.ndarray, labels: np.ndarray,
                             on_point: PointListener | None = None) -> keras.callbacks.Callback:
    """Adds ``val_loss`` and ``val_accuracy`` to each epoch's logs (put it before the callbacks that read them).

    With ``on_point``, the validation's progress is reported as it goes: a :class:`TrainingPoint`
    at the epoch's end with ``validation_share`` set, the running loss and accuracy of the
    validation images done so far, so the live chart moves while a long validation runs.
    """
    import keras
    import tensorflow as tf

    image_tensor = tf.constant(images)
    label_tensor = tf.constant(labels.astype(np.int32))

    class ValidationCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                def progress(share: float, loss: float, accuracy: float) -> None:
                    on_point(TrainingPoint(epoch=epoch + 1, fraction=1.0, loss=loss, accuracy=accuracy,
                                           validation_share=share))
                validation_loss, validation_accuracy = validator(image_tensor, label_tensor,
                                                                 on_progress=progress if on_point else None)
                logs["val_loss"], logs["val_accuracy"] = float(validation_loss), float(validation_accuracy)

    return ValidationCallback()


def _padded_rows(count: int) -> int:
    """Rows of the engine's data variables: ``count`` rounded up to a power of two (at least 1,024),
    so that the compiled loop sees few distinct shapes whatever the sample limits."""
    return max(1024, 1 << max(0, count - 1).bit_length())


def _build(config: TrainingConfig) -> keras.Model:
    """The preset's fresh model, behind the drawing augmentation when the run learns from drawings."""
    model = models.get_preset(config.preset).build()
    if config.uses_drawings:
        from fmnist import augment

        # The fast engine swaps canvas drawings in; plain ``fit`` has only the layer's own versions.
        share = IN_GRAPH_DRAWING_SHARE if config.fast else augment.DRAWING_SHARE
        model = augment.with_drawing_augmentation(model, seed=config.seed, drawing_share=share)
    return model


class _EngineSlot:
    """A compiled engine for one (preset, optimizer, learning rate, loss): a model whose ``fit``
    runs the grouped step loop, and the two variables that hold a run's images and labels.

    Runs borrow a slot, load their initial weights and data into it, train, and copy the trained
    weights out into their own model. The traced loop, its XLA executable and Keras' train and
    validation functions are made once per slot, not once per run: TensorFlow keeps traced
    functions and compiled executables long after their model is gone (several MB per run),
    and tracing and compiling cost most of a short run's first epoch.
    """

    def __init__(self, config: TrainingConfig, image_shape: tuple[int, ...], total_steps: int) -> None:
        import tensorflow as tf

        preset = models.get_preset(config.preset)
        self.model = _build(config)
        self.model.compile(optimizer=models.make_optimizer(config.optimizer, config.effective_learning_rate,
                                                           config.schedule, total_steps=total_steps),
                           loss=config.loss, metrics=["accuracy"], jit_compile=False)
        self.model.optimizer.build(self.model.trainable_variables)
        # The leading axis is left open: each run assigns its own (padded) number of rows, and
        # release() shrinks the variables to nothing between runs.
        self.images = tf.Variable(np.zeros((0, *image_shape), dtype=np.uint8), trainable=False,
                                  shape=tf.TensorShape([None, *image_shape]), name="engine_images")
        self.targets = tf.Variable(np.zeros((0,), dtype=np.int32), trainable=False,
                                   shape=tf.TensorShape([None]), name="engine_targets")
        # How many of an epoch's steps have run, and how many the next call runs (set by the run's pacer).
        self.epoch_step = tf.Variable(0, dtype=tf.int32, trainable=False, name="engine_epoch_step")
        self.group_steps = tf.Variable(1, dtype=tf.int32, trainable=False, name="engine_group_steps")
        _install_grouped_train_step(self.model, self.images, self.targets, config.loss, preset.compile_with_xla,
                                    self.epoch_step, self.group_steps)
        self.validate = _make_validator(self.model, config.loss, validation_chunk_batches(config))
        self.has_run = False
        """Whether a run has used the slot (traced and compiled its loop)."""

    def load(self, initial: keras.Model, images: np.ndarray, labels: np.ndarray) -> None:
        """Start from ``initial``'s weights, optimizer state and dropout seeds, with this run's data."""
        _copy_state(initial, self.model)
        rows = _padded_rows(len(images))
        padded_images = np.zeros((rows, *images.shape[1:]), dtype=np.uint8)
        padded_images[:len(images)] = images
        padded_labels = np.zeros((rows,), dtype=np.int32)
        padded_labels[:len(labels)] = labels
        self.images.assign(padded_images)
        self.targets.assign(padded_labels)

    def unload(self, trained: keras.Model) -> None:
        """Copy the trained state out into ``trained`` and let go of the run's data."""
        _copy_state(self.model, trained)
        self.images.assign(np.zeros((0, *self.images.shape[1:]), dtype=np.uint8))
        self.targets.assign(np.zeros((0,), dtype=np.int32))


def _copy_state(source: keras.Model, target: keras.Model) -> None:
    """Every variable of the model (weights, dropout seed states) and of its optimizer, by position."""
    pairs = [*zip(source.variables, target.variables, strict=True),
             *zip(source.optimizer.variables, target.optimizer.variables, strict=True)]
    for from_variable, to_variable in pairs:
        if tuple(from_variable.shape) != tuple(to_variable.shape):
            raise RuntimeError(f"engine slot mismatch: {from_variable.path} {from_variable.shape} "
                               f"vs {to_variable.path} {to_variable.shape}")
        to_variable.assign(from_variable.value)


MAX_IDLE_SLOTS = 6
"""Idle engine slots kept for later runs (least recently used go first)."""
_SLOT_LOCK = threading.Lock()
_IDLE_SLOTS: list[tuple[tuple, _EngineSlot]] = []


def clear_engine_slots() -> None:
    """Forget the idle engine slots: the next run of each configuration traces and compiles again."""
    with _SLOT_LOCK:
        _IDLE_SLOTS.clear()


def _slot_key(config: TrainingConfig, total_steps: int) -> tuple:
    """What a slot's compiled model depends on; a schedule's shape also depends on the run's length."""
    schedule = (config.schedule,) if config.schedule == "constant" else (config.schedule, total_steps)
    return (models.get_preset(config.preset), config.optimizer, config.effective_learning_rate, config.loss,
            config.uses_drawings, *schedule)


def needs_compiling(config: TrainingConfig, training_samples: int) -> bool:
    """Whether a run of ``config`` on ``training_samples`` images would trace and compile a new engine
    (no idle slot for its settings yet), which its first epoch then pays for. The scikit-learn
    baseline compiles nothing."""
    if not models.get_preset(config.preset).is_keras:
        return False
    if not config.fast:
        return True
    key = _slot_key(config, math.ceil(training_samples / config.batch_size) * config.epochs)
    with _SLOT_LOCK:
        return all(slot_key != key for slot_key, _ in _IDLE_SLOTS)


@contextlib.contextmanager
def _borrowed_slot(config: TrainingConfig, image_shape: tuple[int, ...], total_steps: int):
    """An idle slot for ``config`` (or a new one), given back afterwards; one run per slot at a time."""
    key = _slot_key(config, total_steps)
    with _SLOT_LOCK:
        index = next((i for i, (slot_key, _) in enumerate(_IDLE_SLOTS) if slot_key == key), None)
        slot = _IDLE_SLOTS.pop(index)[1] if index is not None else None
    if slot is None:
        slot = _EngineSlot(config, image_shape, total_steps)
    yield slot
    with _SLOT_LOCK:
        _IDLE_SLOTS.append((key, slot))
        del _IDLE_SLOTS[:-MAX_IDLE_SLOTS]


class _PerThreadRandom:
    """Stands in for the ``random`` module inside Keras' seed generator.

    Keras draws the seed of every initialiser and dropout layer that is not given one from the
    ``random`` module (``make_default_seed``), which ``keras.utils.set_random_seed`` seeds for
    the whole process. A thread inside :func:`per_run_seed` draws from its own generator
    instead; every other thread still uses the ``random`` module, as before.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    def __getattr__(self, name: str) -> Any:
        generator = getattr(self.local, "generator", None)
        return getattr(random if generator is None else generator, name)


_PER_THREAD_RANDOM = _PerThreadRandom()
_FALLBACK_SEED_LOCK = threading.Lock()
_PLAIN_FIT_SEED_LOCK = threading.Lock()


@contextlib.contextmanager
def per_run_seed(seed: int):
    """On this thread, within the block, Keras' default seeds come from ``random.Random(seed)``.

    That is the very sequence ``keras.utils.set_random_seed(seed)`` gives (so models are built
    with the same weights as in the textbook code), but nothing process-wide is touched: two
    runs that build their models at the same moment get their own seeds. Should a future Keras
    no longer draw its seeds this way, the block falls back to the global seed under a lock.
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    current = getattr(seed_generator, "python_random", None)
    if current is random:
        seed_generator.python_random = _PER_THREAD_RANDOM
    elif current is not _PER_THREAD_RANDOM:
        import keras

        with _FALLBACK_SEED_LOCK:
            keras.utils.set_random_seed(seed)
            yield
        return
    previous = getattr(_PER_THREAD_RANDOM.local, "generator", None)
    _PER_THREAD_RANDOM.local.generator = random.Random(seed)
    # As set_random_seed does: a fresh default generator for unseeded keras.random calls
    # (Keras keeps it per thread).
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    try:
        yield
    finally:
        _PER_THREAD_RANDOM.local.generator = previous
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


@contextlib.contextmanager
def _plain_fit_seeding(seed: int):
    """For plain ``fit``: TensorFlow's process-wide seed, which Keras' array adapter reads when
    it builds its shuffle, held under a lock only until training begins (the adapter is built
    by then). Yields the callback that releases the lock."""
    import keras
    import tensorflow as tf

    class ReleaseSeedLock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            release()

    def release() -> None:
        if _PLAIN_FIT_SEED_LOCK.locked() and holder:
            holder.clear()
            _PLAIN_FIT_SEED_LOCK.release()

    _PLAIN_FIT_SEED_LOCK.acquire()
    holder = [True]
    tf.random.set_seed(seed)
    try:
        yield ReleaseSeedLock()
    finally:
        release()


def train(config: TrainingConfig, dataset: FashionMnist, on_epoch: EpochListener | None = None,
          on_batch: BatchListener | None = None, should_stop: StopCheck | None = None,
          on_point: PointListener | None = None, pacer: StepGroupPacer | None = None) -> TrainingResult:
    """Train a fresh model as ``config`` says, reporting each epoch to plain callables
    (and, to ``on_point``, the running training loss and accuracy within each epoch).

    ``should_stop()`` is polled after every step group; when it returns True the run stops
    cleanly and the model and the history so far are returned (``stopped_early=True``, unless
    every epoch had already been trained in full).

    Every random choice of the run (initial weights, dropout masks, the shuffle) comes from
    ``config.seed`` alone, so runs that train at the same time do not change each other's numbers.

    The scikit-learn baseline preset is trained by :func:`fmnist.baseline.train_baseline` with the
    same callables, so the job queue, Stop and the live charts treat it like any other run.

    ``pacer`` sizes the fast engine's step groups (by default :func:`make_pacer`'s).
    """
    if not models.get_preset(config.preset).is_keras:
        from fmnist import baseline

        return baseline.train_baseline(config, dataset, on_epoch=on_epoch, on_batch=on_batch,
                                       should_stop=should_stop, on_point=on_point)
    started = time.perf_counter()
    if tuple(dataset.x_train.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"The training images must be {IMAGE_SIZE}×{IMAGE_SIZE} pixels, "
                         f"not {'×'.join(map(str, dataset.x_train.shape[1:]))}.")
    split = split_training_data(config, dataset.y_train)
    train_images = dataset.x_train[split.train_indices]
    train_labels = dataset.y_train[split.train_indices]
    substitutes = None
    sample_count = len(split.train_indices)
    if config.fast and config.uses_drawings:  # plain ``fit`` (the slow reference) keeps the in-graph versions only
        train_images, train_labels, substitutes = _with_canvas_drawings(dataset, split, train_images, train_labels)
    steps_per_epoch = math.ceil(sample_count / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    checkpoints = EpochCheckpoints()

    def checkpoint_callback(reporting_callback):
        """Runs after the reporting callback, so it knows whether the epoch ran all its steps."""
        return make_checkpoint_callback(checkpoints, lambda: reporting_callback.reports[-1].complete)
    with per_run_seed(config.seed):
        model = _build(config)
        model.compile(optimizer=models.make_optimizer(config.optimizer, config.effective_learning_rate,
                                                      config.schedule, total_steps=total_steps),
                      loss=config.loss, metrics=["accuracy"], jit_compile=False if config.fast else "auto")
        if config.fast:
            pacer = pacer or make_pacer(config)
            model.optimizer.build(model.trainable_variables)
            with _borrowed_slot(config, train_images.shape[1:], total_steps) as slot:
                callback = make_reporting_callback(
                    on_epoch, on_batch, should_stop, steps_per_epoch,
                    steps_done=lambda: int(slot.epoch_step.numpy()), on_point=on_point)
                pacer.compiling = not slot.has_run
                slot.has_run = True
                pacing = make_pacing_callback(pacer, slot.epoch_step, slot.group_steps,
                                              sample_count // config.batch_size)
                slot.load(model, train_images, train_labels)
                validation = make_validation_callback(slot.validate, dataset.x_train[split.validation_indices],
                                                      dataset.y_train[split.validation_indices], on_point=on_point)
                try:
                    slot.model.fit(_index_group_dataset(sample_count, config.batch_size, config.seed,
                                                        slot.epoch_step, substitutes, CANVAS_DRAWING_SHARE),
                                   epochs=config.epochs, verbose=0,
                                   callbacks=[pacing, validation, callback, checkpoint_callback(callback)])
                finally:
                    slot.unload(model)
        else:
            validation_data = (scale_images(dataset.x_train[split.validation_indices], model.input_shape),
                               encode_targets(dataset.y_train[split.validation_indices], config.loss))
            callback = make_reporting_callback(on_epoch, on_batch, should_stop, steps_per_epoch, on_point=on_point)
            with _plain_fit_seeding(config.seed) as seeded:
                model.fit(scale_images(train_images, model.input_shape), encode_targets(train_labels, config.loss),
                          batch_size=config.batch_size, epochs=config.epochs, verbose=0,
                          callbacks=[seeded, callback, checkpoint_callback(callback)],
                          validation_data=validation_data)
    del train_images, train_labels
    _return_free_memory()
    history = list(callback.reports)
    trained_in_full = len(history) == config.epochs and all(report.complete for report in history)
    return TrainingResult(config=config, model=model, history=history, split=split,
                          stopped_early=callback.stopped_by_request and not trained_in_full,
                          seconds=time.perf_counter() - started, checkpoints=checkpoints)


CANVAS_DRAWING_SHARE = 0.8
"""Each epoch, a training image that has a canvas drawing (:func:`fmnist.drawings.training_drawings`)
is replaced by its drawing with this probability, drawn afresh each epoch (so the photo is still
seen in about one epoch of five). Minute CNN, seeds 42, 1, 2, 2026-12-05 (test / project outlines /
silhouettes, mean; without drawings 0.9305): with the same substitutions every epoch (before
each epoch drew its own), 0.9284 / 0.793 / 0.811; drawn afresh, 0.9292 / 0.803 / 0.811. The
browser test's three-stroke trousers read as Trouser at 71-81% with each of the three seeds.
Tried and not kept (test / outlines / silhouettes): 6% more drawings added to each epoch, 0.9303 /
0.801 / 0.807; 24,000 drawings (``TRAINING_DRAWING_SHARE`` 0.4) at 0.5 plus 12% added, 0.9290 /
0.819 / 0.836, but the three-stroke trousers (a waistband and two legs) then read as T-shirt/top
with all three seeds (Trouser at 13-30%), as they did with 24,000 drawings at other shares (0.3
plus 12%, 0.6) and with more open outlines."""

IN_GRAPH_DRAWING_SHARE = 0.0
"""The share of a fast drawing run's batches that the model's ``DrawingAugmentation`` layer turns
into its own 28 x 28 drawing-like versions, beside the canvas drawings; the layer still mirrors.
Minute CNN with its hidden layer, seeds 42, 1, 2 (test / project outlines / silhouettes, mean):
in-graph 0.1 and canvas 0.6, 0.9282 / 0.791 / 0.817; 0.1 and 0.8, 0.9273 / 0.799 / 0.821; 0.1 and
1.0, 0.9272 / 0.799 / 0.819; 0 and 0.8, 0.9284 / 0.805 / 0.822; 0 and 1.0, 0.9269 / 0.802 / 0.816.
The jagged one-pixel versions made at 28 x 28 only taught less than the canvas's own."""


def _with_canvas_drawings(dataset: FashionMnist, split: DataSplit, train_images: np.ndarray,
                          train_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's images and labels followed by the canvas drawings of its training images, and for
    each training image the row of its drawing (-1 where it has none).

    Drawings of validation images are left out: the run never learns from what it validates on.
    """
    from fmnist import drawings

    pool = drawings.training_drawings(dataset)
    position_in_run = np.full(len(dataset.x_train), -1, dtype=np.int64)
    position_in_run[split.train_indices] = np.arange(len(split.train_indices))
    positions = position_in_run[pool.sources]
    used = positions >= 0
    substitutes = np.full(len(train_images), -1, dtype=np.int64)
    substitutes[positions[used]] = len(train_images) + np.arange(int(used.sum()))
    images = np.concatenate([train_images, pool.images[used]])
    labels = np.concatenate([train_labels, dataset.y_train[pool.sources[used]]])
    return images, labels, substitutes


def _return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A run allocates and frees a few hundred MB of large arrays (the split, the scaled validation
    set, the engine's data); glibc keeps much of that in its per-thread arenas, and each job runs
    in a new thread, so without this a server's RSS creeps up by several MB per run although
    nothing is held.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run_in_a_thread_of_its_own(work: Callable[[], object], name: str) -> None:
    """Run ``work`` in a new thread, as jobs train, and raise its error here. An engine slot first
    run on a long-lived thread made every later run on other threads keep about 7 MB more
    (measured; a slot first run on a thread that has ended does not)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            failures.append(error)
    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def warm_up(calibrate: bool = True) -> None:
    """Train the seed preset for one epoch on blank images of the full dataset's size, so that
    TensorFlow's one-time set-up (kernels, the XLA service, tracing) and the reference run's
    compiled engine slot are ready before a user's first run; then, with ``calibrate``, time a
    few steps of the slow presets (:func:`calibrate_step_times`, a few seconds), so that their
    first runs' step groups and estimates follow this machine's speed."""
    from fmnist.data import FashionMnist

    count = 60_000  # the training set: 48,000 to train on and 12,000 to validate, as the reference run
    blank_images = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = (np.arange(count) % NUM_CLASSES).astype(np.uint8)
    dataset = FashionMnist(blank_images, labels, blank_images[:10], labels[:10], source="warm-up",
                           official_split=False)
    _run_in_a_thread_of_its_own(lambda: train(TrainingConfig(epochs=1), dataset), "fmnist-warm-up")
    if calibrate:
        calibrate_step_times()


CALIBRATION_STEPS = 6
"""Training steps per call of :func:`calibrate_step_times`, which runs two calls per preset: the
first traces, the second is timed (calls of one or two steps measured mostly the call's own
overhead, and priced a first cnn run up to 1.6x too long)."""
CALIBRATION_MIN_STEP_SECONDS = 0.005
"""Presets whose steps the static cost puts below this are not calibrated: a call of a few such steps
is mostly the call's own overhead (and the seed preset is measured by :func:`warm_up`'s run)."""


def calibrated_presets() -> list[str]:
    """The Keras presets :func:`calibrate_step_times` times by default: those with slow steps."""
    return [name for name, preset in models.PRESETS.items() if preset.is_keras
            and preset.seconds_per_sample * TrainingConfig(preset=name).batch_size >= CALIBRATION_MIN_STEP_SECONDS]


def calibrate_step_times(presets: Sequence[str] | None = None) -> dict[str, float]:
    """Time a few training steps of each Keras preset (its default settings) on blank images, so
    that this machine's step times are known before a user's first run of it: they size that
    run's first step groups and price its first estimate (fmnist.timing). Presets already
    measured in this process are skipped. Returns the seconds per step measured, by preset."""
    from fmnist.data import FashionMnist

    names = [name for name in (presets if presets is not None else calibrated_presets())
             if models.get_preset(name).is_keras]
    # The quick presets' steps are too short to time in a few calls, but their compiling is not:
    # compiled here at their defaults, their first run neither waits for it nor is priced without it.
    compile_only = [] if presets is not None else [name for name in models.KERAS_PRESETS if name not in names]
    measured: dict[str, float] = {}

    def run() -> None:
        for name in [*names, *compile_only]:
            config = TrainingConfig(preset=name, epochs=1)
            timed = name in names
            already = measured_step_seconds(config) if timed else measured_compile_seconds(config)
            if already is not None:
                continue
            steps = 2 * CALIBRATION_STEPS
            count = math.ceil(steps * config.batch_size / (1 - config.validation_fraction))
            images = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            labels = (np.arange(count) % NUM_CLASSES).astype(np.uint8)
            dataset = FashionMnist(images, labels, images[:10], labels[:10], source="calibration",
                                   official_split=False)
            config = dataclasses.replace(config, sample_limit=steps * config.batch_size)
            train(config, dataset, pacer=StepGroupPacer(config, first_size=CALIBRATION_STEPS, fixed=not timed))
            if config.schedule != "constant":  # its schedule's length is the calibration's: no run reuses it
                key = _slot_key(config, steps)
                with _SLOT_LOCK:
                    _IDLE_SLOTS[:] = [(slot_key, slot) for slot_key, slot in _IDLE_SLOTS if slot_key != key]
            seconds = measured_step_seconds(config)
            if timed and seconds is not None:
                measured[name] = seconds

    _run_in_a_thread_of_its_own(run, "fmnist-calibration")
    return measured
