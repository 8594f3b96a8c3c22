"""Tests for fmnist.training: the configuration's checks, the split, and the fast engine against plain ``fit``.

Training runs on the conftest's ``tiny_dataset`` (600 images): a couple of seconds per run.
"""

import dataclasses
import gc
import math
import random
import sys
import threading

import keras
import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from fmnist import evaluation, models, training
from tests.conftest import make_tiny_dataset

ENGINE_TOLERANCE = 1e-3
"""The fast engine must give plain ``fit``'s per-epoch metrics to this precision."""


@pytest.fixture(scope="module")
def train_once(tiny_dataset):
    """Train ``tiny_dataset`` once per configuration in this module; callers must not change the model."""
    runs: dict[training.TrainingConfig, training.TrainingResult] = {}

    def run(config: training.TrainingConfig) -> training.TrainingResult:
        if config not in runs:
            runs[config] = training.train(config, tiny_dataset)
        return runs[config]
    return run


def fixed_groups(size: int):
    """A ``training.make_pacer`` whose step groups all hold ``size`` steps."""
    return lambda config: training.StepGroupPacer(config, first_size=size, fixed=True)


class CyclingPacer(training.StepGroupPacer):
    """Groups of 1, 3, 2, 5, 1, 3, ... steps, changing after every call (across epochs too)."""

    SIZES = (1, 3, 2, 5)

    def __init__(self, config):
        super().__init__(config, first_size=self.SIZES[0])
        self.sizes_run: list[int] = []

    def call_ended(self, steps, full_batches=True):
        self.sizes_run.append(steps)
        self.size = self.SIZES[len(self.sizes_run) % len(self.SIZES)]


def metrics(history: list[training.EpochReport]) -> np.ndarray:
    """(epochs, 4): loss, accuracy, val_loss, val_accuracy."""
    return np.array([[report.loss, report.accuracy, report.val_loss, report.val_accuracy] for report in history])


def validation_arrays(dataset, result: training.TrainingResult) -> tuple[np.ndarray, np.ndarray]:
    indices = result.split.validation_indices
    return dataset.x_train[indices], dataset.y_train[indices]


# --------------------------------------------------------------------------- configuration

def test_defaults_reproduce_the_reference_run():
    config = training.TrainingConfig()
    assert (config.preset, config.loss, config.optimizer) == ("seed", "sparse_categorical_crossentropy", "rmsprop")
    assert config.effective_learning_rate == pytest.approx(0.001)
    assert (config.epochs, config.batch_size, config.validation_fraction, config.seed) == (5, 32, 0.2, 42)
    assert config.sample_limit is None and config.stratify is False and config.fast is True


def test_configuration_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        training.TrainingConfig().epochs = 3


def test_effective_learning_rate_follows_the_optimizer_unless_given():
    assert training.TrainingConfig(optimizer="sgd").effective_learning_rate == pytest.approx(0.01)
    assert training.TrainingConfig(optimizer="sgd", learning_rate=0.5).effective_learning_rate == pytest.approx(0.5)


def test_describe_names_the_choices():
    assert training.TrainingConfig(sample_limit=3000).describe() == (
        "seed, sparse categorical crossentropy, rmsprop lr 0.001, 5 ep, batch 32, val 20%, 3,000 samples")


def test_numpy_integers_are_accepted():
    config = training.TrainingConfig(epochs=np.int64(3), batch_size=np.int32(64), sample_limit=np.int64(100))
    assert config.epochs == 3


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, r"Epochs must be a whole number from 1 to 500, not 0\."),
    ({"epochs": 501}, r"Epochs must be a whole number from 1 to 500, not 501\."),
    ({"epochs": 2.5}, r"Epochs must be a whole number from 1 to 500, not 2\.5\."),
    ({"epochs": True}, r"Epochs must be a whole number from 1 to 500, not True\."),
    ({"batch_size": 0}, r"The batch size must be a whole number from 1 to 8192, not 0\."),
    ({"batch_size": 8193}, r"The batch size must be a whole number from 1 to 8192"),
    ({"validation_fraction": 0}, r"The validation split must be between 1% and 90% of the training data, not 0\."),
    ({"validation_fraction": 0.95}, r"The validation split must be between 1% and 90%"),
    ({"validation_fraction": math.nan}, r"The validation split must be between 1% and 90%"),
    ({"learning_rate": -1}, r"The learning rate must be a number above 0 and at most 10, not -1\."),
    ({"learning_rate": 0}, r"The learning rate must be a number above 0"),
    ({"learning_rate": math.nan}, r"The learning rate must be a number above 0 and at most 10, not nan\."),
    ({"learning_rate": math.inf}, r"The learning rate must be a number above 0"),
    ({"learning_rate": "0.1"}, r"The learning rate must be a number above 0"),
    ({"sample_limit": 0}, r"The training-sample limit must be a positive whole number, not 0\."),
    ({"sample_limit": 2.5}, r"The training-sample limit must be a positive whole number"),
    ({"loss": "hinge"}, r"Unknown loss 'hinge'; choose one of sparse_categorical_crossentropy, "),
    ({"preset": "resnet"}, r"Unknown model preset 'resnet'; choose one of seed, mlp, cnn, minute-cnn, sgd-classifier\."),
    ({"schedule": "step"}, r"Unknown learning-rate schedule 'step'; choose one of constant, one-cycle\."),
    ({"optimizer": "adagrad"}, r"Unknown optimizer 'adagrad'; choose one of rmsprop, adam, sgd\."),
    ({"seed": -1}, r"The random seed must be a whole number from 0 to 2147483647, not -1\."),
    ({"seed": 2**31}, r"The random seed must be a whole number from 0 to 2147483647"),
    ({"seed": 4.2}, r"The random seed must be a whole number"),
], ids=lambda value: repr(value) if isinstance(value, dict) else "")
def test_invalid_configuration_is_a_value_error_people_understand(changes, message):
    with pytest.raises(ValueError, match=message):
        training.TrainingConfig(**changes)


# --------------------------------------------------------------------------- split

@pytest.mark.parametrize(("fraction", "seed"), [(0.2, 42), (0.35, 7)])
def test_split_is_sklearn_train_test_split_on_the_indices(tiny_dataset, fraction, seed):
    config = training.TrainingConfig(validation_fraction=fraction, seed=seed)
    split = training.split_training_data(config, tiny_dataset.y_train)
    expected_train, expected_validation = train_test_split(
        np.arange(len(tiny_dataset.y_train)), test_size=fraction, random_state=seed)
    np.testing.assert_array_equal(split.train_indices, expected_train)
    np.testing.assert_array_equal(split.validation_indices, expected_validation)


def test_sample_limit_keeps_the_first_training_indices_and_the_whole_validation_set(tiny_dataset):
    full = training.split_training_data(training.TrainingConfig(), tiny_dataset.y_train)
    limited = training.split_training_data(training.TrainingConfig(sample_limit=100), tiny_dataset.y_train)
    np.testing.assert_array_equal(limited.train_indices, full.train_indices[:100])
    np.testing.assert_array_equal(limited.validation_indices, full.validation_indices)
    larger = training.split_training_data(training.TrainingConfig(sample_limit=10_000), tiny_dataset.y_train)
    np.testing.assert_array_equal(larger.train_indices, full.train_indices)


def test_stratified_validation_is_balanced_per_class(tiny_dataset):
    labels = tiny_dataset.y_train  # 60 of each class
    plain = training.split_training_data(training.TrainingConfig(), labels)
    stratified = training.split_training_data(training.TrainingConfig(stratify=True), labels)
    assert len(set(np.bincount(labels[plain.validation_indices], minlength=10))) > 1, "control: not balanced by luck"
    np.testing.assert_array_equal(np.bincount(labels[stratified.validation_indices], minlength=10), [12] * 10)
    assert len(np.intersect1d(stratified.train_indices, stratified.validation_indices)) == 0


def test_impossible_splits_are_explained():
    with pytest.raises(ValueError, match=r"The dataset needs at least two training images\."):
        training.split_training_data(training.TrainingConfig(), np.array([3], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"Cannot split 4 images with a 20% validation share"):
        training.split_training_data(training.TrainingConfig(stratify=True), np.array([0, 1, 2, 3], dtype=np.uint8))


# --------------------------------------------------------------------------- helpers

def test_scale_images_shapes_for_each_input_and_scales_to_unit_range():
    images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], dtype=np.uint8)
    flat = training.scale_images(images, (None, 784))
    assert flat.shape == (2, 784) and flat.dtype == np.float32
    assert flat[0].max() == 0.0 and flat[1].min() == 1.0
    assert training.scale_images(images, (None, 28, 28, 1)).shape == (2, 28, 28, 1)


def test_encode_targets_one_hot_only_for_the_losses_that_need_it():
    labels = np.array([0, 9, 3], dtype=np.uint8)
    sparse = training.encode_targets(labels, "sparse_categorical_crossentropy")
    np.testing.assert_array_equal(sparse, [0, 9, 3])
    assert sparse.dtype == np.int32
    for loss in ("categorical_crossentropy", "mean_squared_error"):
        one_hot = training.encode_targets(labels, loss)
        assert one_hot.shape == (3, 10) and one_hot.dtype == np.float32
        np.testing.assert_array_equal(one_hot.argmax(axis=1), labels)
        np.testing.assert_array_equal(one_hot.sum(axis=1), 1)


def test_estimated_epoch_time_grows_with_work():
    estimate = training.estimate_epoch_seconds
    base = training.TrainingConfig()
    assert estimate(base, 60_000) > estimate(base, 6_000) > 0
    assert estimate(training.TrainingConfig(sample_limit=1000), 60_000) < estimate(base, 60_000)
    assert estimate(training.TrainingConfig(fast=False), 60_000) > estimate(base, 60_000)
    assert estimate(training.TrainingConfig(preset="cnn"), 60_000) > estimate(base, 60_000)


# --------------------------------------------------------------------------- train()

def test_train_reports_every_epoch_and_batch_progress(tiny_dataset):
    epochs: list[training.EpochReport] = []
    batches: list[tuple[int, float]] = []
    result = training.train(training.TrainingConfig(epochs=2), tiny_dataset, on_epoch=epochs.append,
                            on_batch=lambda epoch, fraction: batches.append((epoch, fraction)))
    assert [report.epoch for report in epochs] == [1, 2]
    assert all(isinstance(report, training.EpochReport) for report in epochs)
    assert result.history == epochs
    for report in epochs:
        assert report.complete
        assert report.seconds > 0
        assert all(math.isfinite(value) for value in (report.loss, report.accuracy, report.val_loss))
    assert epochs[-1].val_accuracy > 0.5, "tiny patterns are learnable: far above the 0.1 of chance"
    assert epochs[-1].loss < epochs[0].loss
    assert (1, 0.0) in batches and (2, 0.0) in batches
    assert all(epoch in (1, 2) and 0.0 <= fraction <= 1.0 for epoch, fraction in batches)
    assert result.stopped_early is False
    assert result.config.epochs == 2 and result.seconds > 0
    assert len(result.split.train_indices) == 480 and len(result.split.validation_indices) == 120


def test_should_stop_ends_the_run_early_with_a_usable_model(tiny_dataset):
    polls = []
    result = training.train(training.TrainingConfig(epochs=5), tiny_dataset,
                            should_stop=lambda: polls.append(1) or True)
    assert result.stopped_early is True
    assert 1 <= len(result.history) < 5
    assert len(polls) == len(result.history)
    probabilities = evaluation.predict_probabilities(result.model, tiny_dataset.x_test)
    assert probabilities.shape == (100, 10) and np.isfinite(probabilities).all()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_stop_part_way_through_an_epoch_marks_it_incomplete(tiny_dataset, monkeypatch, fast):
    monkeypatch.setattr(training, "make_pacer", fixed_groups(4))  # several groups per epoch
    polls = []
    result = training.train(training.TrainingConfig(epochs=3, fast=fast), tiny_dataset,
                            should_stop=lambda: polls.append(1) or len(polls) >= 2)
    assert result.stopped_early is True
    assert len(result.history) == 1
    assert result.history[0].complete is False


@pytest.mark.parametrize(("sample_limit", "batch_size", "steps_per_group"), [
    pytest.param(None, 32, None, id="480-samples-one-group-per-epoch"),
    pytest.param(470, 32, None, id="partial-last-batch"),
    pytest.param(470, 32, 4, id="partial-last-batch-groups-of-4"),
    pytest.param(470, 32, "varying", id="partial-last-batch-groups-varying-during-the-run"),
    pytest.param(None, 512, None, id="batch-larger-than-the-data"),
])
def test_fast_engine_matches_plain_fit(tiny_dataset, train_once, monkeypatch, sample_limit, batch_size,
                                      steps_per_group):
    config = training.TrainingConfig(epochs=2, sample_limit=sample_limit, batch_size=batch_size)
    plain = train_once(dataclasses.replace(config, fast=False))
    if steps_per_group == "varying":
        monkeypatch.setattr(training, "make_pacer", CyclingPacer)
        fast = training.train(config, tiny_dataset)
    elif steps_per_group:
        monkeypatch.setattr(training, "make_pacer", fixed_groups(steps_per_group))
        fast = training.train(config, tiny_dataset)
    else:
        fast = train_once(config)
    assert metrics(fast.history).shape == (2, 4)
    np.testing.assert_allclose(metrics(fast.history), metrics(plain.history), rtol=0, atol=ENGINE_TOLERANCE)


def test_control_another_seed_changes_the_metrics_beyond_the_tolerance(train_once):
    """Without this, matching within ``ENGINE_TOLERANCE`` could be luck: the metrics must be seed-sensitive."""
    config = training.TrainingConfig(epochs=2, fast=False)
    first, other = train_once(config), train_once(dataclasses.replace(config, seed=43))
    assert np.abs(metrics(first.history) - metrics(other.history)).max() > 10 * ENGINE_TOLERANCE


def test_categorical_and_sparse_crossentropy_train_alike(train_once):
    sparse = train_once(training.TrainingConfig(epochs=2))
    categorical = train_once(training.TrainingConfig(epochs=2, loss="categorical_crossentropy"))
    np.testing.assert_allclose(metrics(categorical.history), metrics(sparse.history), rtol=0, atol=ENGINE_TOLERANCE)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mean_squared_error"])
def test_reported_validation_loss_is_the_loss_of_the_final_model(tiny_dataset, train_once, loss):
    result = train_once(training.TrainingConfig(epochs=2, loss=loss))
    images, labels = validation_arrays(tiny_dataset, result)
    probabilities = evaluation.predict_probabilities(result.model, images)
    assert result.history[-1].val_loss == pytest.approx(evaluation.compute_loss(probabilities, labels, loss), abs=1e-4)
    assert result.history[-1].val_accuracy == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels), abs=1e-6)
    assert result.history[-1].val_accuracy > 0.3


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_trained_model_saves_loads_and_trains_as_a_plain_model(tiny_dataset, tmp_path):
    result = training.train(training.TrainingConfig(epochs=1), tiny_dataset)
    model = result.model
    assert model.train_step.__func__ is type(model).train_step, "the engine restores Keras' own train_step"
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = tiny_dataset.x_test
    np.testing.assert_allclose(evaluation.predict_probabilities(loaded, images),
                               evaluation.predict_probabilities(model, images), rtol=0, atol=1e-6)
    scaled = training.scale_images(tiny_dataset.x_train[:64], model.input_shape)
    history = model.fit(scaled, tiny_dataset.y_train[:64].astype(np.int32), epochs=1, batch_size=32, verbose=0)
    assert math.isfinite(history.history["loss"][0])


def test_on_point_reports_the_running_training_curve_within_each_epoch(tiny_dataset):
    points: list[training.TrainingPoint] = []
    epochs: list[training.EpochReport] = []
    callback = training.make_reporting_callback(on_epoch=epochs.append, on_point=points.append, steps_per_epoch=4,
                                                point_interval_seconds=0.0)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for step, loss in enumerate((2.0, 1.5, 1.2, 1.0)):
        callback.on_train_batch_end(step, {"loss": loss, "accuracy": 0.1 * (step + 1)})
    callback.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.4, "val_loss": 1.1, "val_accuracy": 0.35})
    assert [(point.epoch, point.fraction, point.loss) for point in points] == [
        (1, 0.25, 2.0), (1, 0.5, 1.5), (1, 0.75, 1.2), (1, 1.0, 1.0)]
    assert points[-1].accuracy == pytest.approx(0.4) and points[1].position == pytest.approx(0.5)
    assert points[-1].loss == epochs[0].loss, "the epoch's last point is its epoch mean"


def test_on_point_is_throttled_but_always_reports_the_end_of_an_epoch():
    points: list[training.TrainingPoint] = []
    callback = training.make_reporting_callback(on_point=points.append, steps_per_epoch=100,
                                                point_interval_seconds=3600)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for step in range(100):
        callback.on_train_batch_end(step, {"loss": 1.0, "accuracy": 0.5})
    assert [point.fraction for point in points] == [0.01, 1.0]


def test_on_batch_is_throttled_but_always_says_when_an_epochs_steps_are_done():
    """The job times validation from that moment, so the ETA knows how long validation takes."""
    calls: list[tuple[int, float]] = []
    callback = training.make_reporting_callback(on_batch=lambda epoch, fraction: calls.append((epoch, fraction)),
                                                steps_per_epoch=50, batch_interval_seconds=3600)
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for step in range(50):
            callback.on_train_batch_end(step, {"loss": 1.0})
    assert calls == [(1, 0.0), (1, 0.02), (1, 1.0), (2, 0.0), (2, 1.0)]


def test_train_sends_points_from_a_real_run(tiny_dataset):
    points: list[training.TrainingPoint] = []
    result = training.train(training.TrainingConfig(epochs=2), tiny_dataset, on_point=points.append)
    assert {point.epoch for point in points} == {1, 2}
    assert all(0 < point.fraction <= 1 and math.isfinite(point.loss) for point in points)
    last_of_each = [max((p for p in points if p.epoch == epoch), key=lambda p: p.fraction) for epoch in (1, 2)]
    assert [p.fraction for p in last_of_each] == [1.0, 1.0]
    assert [p.loss for p in last_of_each] == pytest.approx([report.loss for report in result.history], rel=1e-6)


def test_stop_during_the_last_epoch_of_a_fully_trained_run_is_not_stopped_early(tiny_dataset):
    """The seed preset trains each epoch as one step group, so Stop pressed in the last epoch is
    seen only after that epoch's last step: every epoch was trained in full."""
    epochs_seen: list[int] = []
    result = training.train(training.TrainingConfig(epochs=3), tiny_dataset,
                            on_batch=lambda epoch, fraction: epochs_seen.append(epoch),
                            should_stop=lambda: epochs_seen[-1] == 3)
    assert [report.epoch for report in result.history] == [1, 2, 3]
    assert all(report.complete for report in result.history)
    assert result.stopped_early is False


def test_stop_part_way_through_the_last_epoch_is_still_stopped_early(tiny_dataset, monkeypatch):
    monkeypatch.setattr(training, "make_pacer", fixed_groups(4))  # several groups per epoch
    epochs_seen: list[int] = []
    result = training.train(training.TrainingConfig(epochs=2), tiny_dataset,
                            on_batch=lambda epoch, fraction: epochs_seen.append(epoch),
                            should_stop=lambda: epochs_seen[-1] == 2)
    assert len(result.history) == 2 and result.history[-1].complete is False
    assert result.stopped_early is True


# --------------------------------------------------------------------------- seeds per run

def _train_in_threads(configs, dataset, barrier_in_build: bool, monkeypatch):
    """Train each config in its own thread, all at once; with ``barrier_in_build`` every run waits,
    inside its preset's ``build``, until all runs have got that far (the moment seeds are drawn)."""
    if barrier_in_build:
        barrier = threading.Barrier(len(configs), timeout=120)
        waited = threading.local()
        for name in {config.preset for config in configs}:
            preset = models.get_preset(name)

            def build(original=preset.build):
                if not getattr(waited, "done", False):  # the run's own model, not the engine's
                    waited.done = True
                    barrier.wait()
                return original()
            monkeypatch.setitem(models.PRESETS, name, dataclasses.replace(preset, build=build))
    results: dict[int, training.TrainingResult] = {}
    errors: list[BaseException] = []

    def run(index, config):
        try:
            results[index] = training.train(config, dataset)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
    threads = [threading.Thread(target=run, args=(index, config)) for index, config in enumerate(configs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return [results[index] for index in range(len(configs))]


@pytest.mark.parametrize("barrier_in_build", [True, False], ids=["set-up-at-the-same-moment", "started-together"])
def test_runs_training_at_the_same_time_give_their_solo_numbers(tiny_dataset, train_once, monkeypatch,
                                                                barrier_in_build):
    seed_config = training.TrainingConfig(epochs=2, seed=42)
    mlp_config = training.TrainingConfig(preset="mlp", epochs=2, seed=7)
    solo = [train_once(seed_config), train_once(mlp_config)]
    together = _train_in_threads([seed_config, mlp_config], tiny_dataset, barrier_in_build, monkeypatch)
    for alone, beside in zip(solo, together, strict=True):
        np.testing.assert_allclose(metrics(beside.history), metrics(alone.history), rtol=0, atol=1e-6)
        for alone_weights, beside_weights in zip(alone.model.get_weights(), beside.model.get_weights(), strict=True):
            np.testing.assert_allclose(beside_weights, alone_weights, rtol=0, atol=1e-6)


def test_seeding_a_run_leaves_the_process_wide_random_state_alone(tiny_dataset):
    random.seed(123)
    expected = random.random()
    random.seed(123)
    training.train(training.TrainingConfig(epochs=1, seed=5), tiny_dataset)
    assert random.random() == expected


# --------------------------------------------------------------------------- memory

def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_runs_one_after_another_do_not_keep_their_training_images():
    """The engine once captured the training images as a constant of its traced step, which
    TensorFlow kept after the model was gone: RSS grew by at least the images' size per run."""
    dataset = make_tiny_dataset(train_count=60_000, test_count=10)
    image_mb = dataset.x_train.nbytes / 2**20  # about 45 MB
    config = training.TrainingConfig(epochs=1, validation_fraction=0.01)
    readings = []
    for _ in range(5):
        result = training.train(config, dataset)
        assert result.history[-1].val_accuracy > 0.5
        del result
        gc.collect()
        readings.append(_resident_mb())
    growth_per_run = (readings[-1] - readings[1]) / (len(readings) - 2)
    assert growth_per_run < image_mb / 3, f"RSS after each run: {[round(value) for value in readings]} MB"


@pytest.mark.parametrize("preset", ["seed", "mlp"])
def test_a_reused_engine_slot_gives_the_numbers_of_a_fresh_one(tiny_dataset, preset):
    """Later runs borrow the engine slot of earlier ones: weights, optimizer state, dropout seeds
    and data must all be those of the new run, however the slot was left."""
    config = training.TrainingConfig(preset=preset, epochs=2, seed=11)
    training.clear_engine_slots()
    fresh = training.train(config, tiny_dataset)
    training.train(dataclasses.replace(config, seed=12, sample_limit=300), tiny_dataset,
                   should_stop=lambda: True)  # leaves the slot part-trained and stopped
    reused = training.train(config, tiny_dataset)
    np.testing.assert_array_equal(metrics(reused.history), metrics(fresh.history))
    for fresh_weights, reused_weights in zip(fresh.model.get_weights(), reused.model.get_weights(), strict=True):
        np.testing.assert_array_equal(reused_weights, fresh_weights)
    assert reused.model is not fresh.model


def test_a_long_validation_reports_its_progress_between_the_epochs_points_with_the_same_numbers(
        tiny_dataset, monkeypatch):
    """The live chart must move at least every couple of seconds, and a full validation set took
    seconds in one traced pass: it now runs a few batches per call and reports a point after each
    call, so between two reports there is at most one chunk of validation (here one batch of 16
    of the 120 validation images). The numbers are those of one pass, to the last bit."""
    monkeypatch.setattr(training, "VALIDATION_BATCH_SIZE", 16)
    config = training.TrainingConfig(epochs=2, learning_rate=0.0123)  # settings of their own: a new engine slot
    reports: list = []
    monkeypatch.setattr(training, "validation_chunk_batches", lambda config: 1)
    try:
        chunked = training.train(config, tiny_dataset, on_point=reports.append, on_epoch=reports.append)
        training.clear_engine_slots()
        monkeypatch.setattr(training, "validation_chunk_batches", lambda config: 1000)
        whole = training.train(config, tiny_dataset)
    finally:
        training.clear_engine_slots()
    for epoch in (1, 2):
        after_steps = [report for report in reports if isinstance(report, training.TrainingPoint)
                       and report.epoch == epoch and report.is_validation]
        assert [point.validation_share for point in after_steps] == pytest.approx([i * 16 / 120 for i in range(1, 8)])
        assert all(point.fraction == 1.0 and 0 <= point.accuracy <= 1 for point in after_steps)
        index = reports.index(chunked.history[epoch - 1])
        assert reports[index - len(after_steps):index] == after_steps, "right before the epoch's report"
    assert [(r.val_loss, r.val_accuracy) for r in chunked.history] == [(r.val_loss, r.val_accuracy)
                                                                        for r in whole.history]


# --------------------------------------------------------------------------- step groups paced by this machine


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def paced_call(pacer, clock, steps, seconds, full_batches=True):
    pacer.call_started()
    clock.now += seconds
    pacer.call_ended(steps, full_batches=full_batches)
    return pacer.size


def test_step_groups_follow_the_step_time_measured_on_this_machine(monkeypatch):
    monkeypatch.setattr(training, "_MEASURED_STEP_SECONDS", {})
    clock = FakeClock()
    config = training.TrainingConfig(preset="minute-cnn", epochs=1)
    pacer = training.StepGroupPacer(config, first_size=6, clock=clock)
    assert paced_call(pacer, clock, steps=6, seconds=30.0) == 6, "the first call traces: not learned from"
    # 0.15 s a step here (the static cost says 0.037 s): groups of one step, about GROUP_SECONDS.
    assert paced_call(pacer, clock, steps=6, seconds=0.9) == 1
    assert pacer.step_seconds == pytest.approx(0.15)
    assert training.measured_step_seconds(config) == pytest.approx(0.15)
    # Faster steps grow the groups, at most doubling per call; slower ones shrink them at once.
    sizes = [paced_call(pacer, clock, steps=pacer.size, seconds=0.01 * pacer.size) for _ in range(6)]
    assert sizes == [2, 4, 8, 16, 25, 25]
    assert paced_call(pacer, clock, steps=25, seconds=2.5) == 2
    # Neither an epoch's last, smaller batch nor a call that ran no steps is learned from.
    assert paced_call(pacer, clock, steps=1, seconds=5.0, full_batches=False) == 2
    assert paced_call(pacer, clock, steps=0, seconds=5.0) == 2


def test_a_later_run_starts_from_the_step_time_measured_here(monkeypatch):
    monkeypatch.setattr(training, "_MEASURED_STEP_SECONDS", {})
    config = training.TrainingConfig(preset="minute-cnn", epochs=1)
    static_steps = training.GROUP_SECONDS / (models.get_preset("minute-cnn").seconds_per_sample * config.batch_size)
    assert training.steps_per_group_for(config) == max(1, int(training.FIRST_GROUP_SHARE * static_steps))
    clock = FakeClock()
    pacer = training.StepGroupPacer(config, clock=clock)
    paced_call(pacer, clock, steps=pacer.size, seconds=10.0)
    paced_call(pacer, clock, steps=2, seconds=0.1)  # 0.05 s a step
    assert training.steps_per_group_for(config) == 5
    assert training.StepGroupPacer(config).size == 5
    other = dataclasses.replace(config, batch_size=256)
    assert training.measured_step_seconds(other) is None, "per batch size"


def test_fixed_pacer_keeps_its_size():
    clock = FakeClock()
    pacer = training.StepGroupPacer(training.TrainingConfig(), first_size=4, fixed=True, clock=clock)
    assert [paced_call(pacer, clock, steps=4, seconds=s) for s in (9.0, 9.0, 0.001)] == [4, 4, 4]


def test_a_run_on_a_slow_machine_reports_after_every_step(tiny_dataset, monkeypatch):
    """A run whose steps the pacer measures as 1 s each (a fake step-time source) ends up running
    one step per call: a report after each, whatever the static cost of the preset says."""
    monkeypatch.setattr(training, "_MEASURED_STEP_SECONDS", {})
    pacers = []

    class SlowSteps(training.StepGroupPacer):
        def call_ended(self, steps, full_batches=True):
            self.clock = lambda: self.started + steps  # each step of this call took 1 s
            super().call_ended(steps, full_batches)
            self.sizes.append(steps)

    def make(config):
        pacer = SlowSteps(config)
        pacer.sizes = []
        pacers.append(pacer)
        return pacer

    monkeypatch.setattr(training, "make_pacer", make)
    result = training.train(training.TrainingConfig(epochs=2), tiny_dataset)
    assert all(report.complete for report in result.history)
    sizes = pacers[0].sizes
    assert sum(sizes) == 2 * 15 and sizes[0] == 15, "the first group: the preset's static first size"
    assert sizes[2:] == [1] * (len(sizes) - 2), "after one measured group, one step per call"


def test_the_engines_batches_are_not_held_back_by_the_tf_data_autotuner():
    """The autotuner once held an epoch's first step group back by 2.3 s of idle CPU, one epoch in
    two (Minute CNN, 24,000 images, a 2-core AVX-512 EPYC); the engine's tiny pipeline has nothing
    to tune. The batches must still be the whole epoch, each index once."""
    import tensorflow as tf

    dataset = training._index_group_dataset(10, 4, seed=42, epoch_step=tf.Variable(0, dtype=tf.int32))
    assert dataset.options().autotune.enabled is False
    (full, offset), = [(batches.numpy(), int(first)) for batches, first in dataset.take(1)]
    assert full.shape == (2, 4) and offset == 0 and len(set(full.ravel())) == 8


# --------------------------------------------------------------------------- canvas drawings

def first_epoch_indices(dataset) -> np.ndarray:
    """The index batches of one epoch of the engine's pipeline (the train step never runs here)."""
    (full, _offset), = [(batches.numpy(), first) for batches, first in dataset.take(1)]
    return full.ravel()


def epoch_indices(dataset, epochs: int = 1) -> list[np.ndarray]:
    """Each epoch's index batches (a fresh iterator per epoch, as ``fit`` makes), full and last."""
    found = []
    for _ in range(epochs):
        elements = [(batches.numpy(), int(offset)) for batches, offset in dataset]  # the full matrix, repeated
        found.append(np.concatenate([elements[0][0].ravel(), *[batches.ravel() for batches, offset in elements if offset]]))
    return found


def test_substitutes_take_their_samples_place_at_the_share_asked_and_the_steps_stay():
    import tensorflow as tf

    substitutes = np.full(400, -1, dtype=np.int64)
    substitutes[:200] = 400 + np.arange(200)  # samples 0-199 have a drawing in rows 400-599
    step = tf.Variable(0, dtype=tf.int32)
    never, = epoch_indices(training._index_group_dataset(400, 20, 5, step, substitutes, 0.0))
    always, = epoch_indices(training._index_group_dataset(400, 20, 5, step, substitutes, 1.0))
    half_epochs = epoch_indices(training._index_group_dataset(400, 20, 5, step, substitutes, 0.5), epochs=3)
    assert np.array_equal(np.sort(never), np.arange(400)), "a share of 0: every sample, no drawing"
    assert np.array_equal(np.sort(always), np.arange(200, 600)), "a share of 1: every drawing instead of its sample"
    for half in half_epochs:
        assert len(half) == 400
        replaced = int((half >= 400).sum())
        assert 70 <= replaced <= 130, f"about half of the 200 drawings, not {replaced}"
        assert np.array_equal(np.sort(np.where(half >= 400, half - 400, half)), np.arange(400)), "in its place"
    assert len({tuple(np.flatnonzero(half >= 400)) for half in half_epochs}) == 3, "fresh substitutions each epoch"
    assert len({tuple(np.where(half >= 400, half - 400, half)) for half in half_epochs}) == 3, "a fresh order each epoch"
    seen = set(np.concatenate(half_epochs)[np.concatenate(half_epochs) < 200])
    assert len(seen) > 150, "over the epochs, the photos that have a drawing are still shown"
    again = epoch_indices(training._index_group_dataset(400, 20, 5, step, substitutes, 0.5), epochs=3)
    assert all(np.array_equal(a, b) for a, b in zip(half_epochs, again, strict=True)), "the same seed: the same epochs"
    other = epoch_indices(training._index_group_dataset(400, 20, 6, step, substitutes, 0.5))
    assert not np.array_equal(other[0], half_epochs[0]), "another seed, other epochs"


def test_without_drawings_every_epoch_is_keras_own_permutation():
    """The runs that must match ``fit`` to the digit keep its order, which with a set seed is the
    same every epoch (its seeded op starts over with each epoch's iterator)."""
    import keras
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    keras.utils.set_random_seed(5)
    samples = np.arange(400, dtype=np.float32)[:, None]
    adapter = ArrayDataAdapter(samples, samples, batch_size=400, shuffle=True).get_tf_dataset()
    keras_epochs = [next(iter(adapter))[0].numpy().ravel().astype(int) for _ in range(2)]
    engine_epochs = epoch_indices(training._index_group_dataset(400, 20, 5, tf.Variable(0, dtype=tf.int32)), epochs=2)
    assert all(np.array_equal(keras, engine) for keras, engine in zip(keras_epochs, engine_epochs, strict=True))


def test_a_drawing_run_learns_from_canvas_drawings_of_its_training_images_only(tiny_dataset, monkeypatch):
    from fmnist import drawings

    config = training.TrainingConfig(preset="seed", epochs=1, drawings=True, seed=3)
    split = training.split_training_data(config, tiny_dataset.y_train)
    every_image = np.arange(len(tiny_dataset.x_train))
    pool = drawings.TrainingDrawings(images=(255 - tiny_dataset.x_train).astype(np.uint8), sources=every_image)
    monkeypatch.setattr(drawings, "training_drawings", lambda dataset: pool)
    images, labels, substitutes = training._with_canvas_drawings(
        tiny_dataset, split, tiny_dataset.x_train[split.train_indices], tiny_dataset.y_train[split.train_indices])
    count = len(split.train_indices)
    assert len(images) == len(labels) == 2 * count, "one drawing per training image, none of the validation's"
    assert np.array_equal(np.sort(substitutes), count + np.arange(count)), "every drawing row used once"
    assert np.array_equal(images[substitutes], 255 - tiny_dataset.x_train[split.train_indices]), \
        "each training image's row points at its own drawing"
    assert np.array_equal(labels[substitutes], tiny_dataset.y_train[split.train_indices])
    result = training.train(config, tiny_dataset)
    assert len(result.history) == 1 and result.history[0].complete


def test_the_seed_preset_never_asks_for_canvas_drawings(tiny_dataset, monkeypatch):
    from fmnist import drawings

    def refuse(dataset):
        raise AssertionError("the reference run must not learn from drawings")
    monkeypatch.setattr(drawings, "training_drawings", refuse)
    result = training.train(training.TrainingConfig(epochs=1), tiny_dataset)
    assert len(result.history) == 1


def test_calibration_compiles_the_quick_presets_and_measures_that_without_timing_their_steps(monkeypatch):
    """Their steps are too short to time in a few calls, but their compiling is not: measured at the
    warm-up, a first mlp run is priced with it, and its default engine is ready (issue 13's
    estimates: a first mlp run was 0.54x its time when compiling was priced from the steps' speed)."""
    monkeypatch.setattr(training, "_MEASURED_STEP_SECONDS", {})
    monkeypatch.setattr(training, "_LATEST_STEP_BY_PRESET", {})
    monkeypatch.setattr(training, "_MEASURED_COMPILE_SECONDS", {})
    monkeypatch.setattr(training, "_IDLE_SLOTS", [])
    monkeypatch.setattr(training, "calibrated_presets", list)
    mlp = training.TrainingConfig(preset="mlp")
    assert training.needs_compiling(mlp, 48_000)
    assert training.calibrate_step_times() == {}
    assert training.measured_compile_seconds(mlp) > 0
    assert training.measured_step_seconds(mlp) is None, "a few quick steps are not a step time"
    assert not training.needs_compiling(mlp, 48_000), "its default engine is ready for the first run"
