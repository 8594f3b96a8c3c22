"""Tests for fmnist.timing: estimates learned from runs, the ETA of a running job, and its smoothing."""

import pytest

from fmnist import timing
from fmnist.training import EpochReport, TrainingConfig

IMAGES = 60_000


def reports(seconds: list[float], partial_last: bool = False) -> list[EpochReport]:
    return [EpochReport(epoch=index + 1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, seconds=value,
                        complete=not (partial_last and index == len(seconds) - 1))
            for index, value in enumerate(seconds)]


def test_a_recorded_run_corrects_the_estimate_of_its_preset_for_other_settings_too():
    timings = timing.RunTimings()
    measured = TrainingConfig(preset="mlp", epochs=4, sample_limit=5000)
    before = timings.estimate(measured, IMAGES)
    assert before.measured_runs == 0
    # The server turned out three times slower than the cost model says, with 4 s of set-up.
    epoch = 3 * timings.modelled_epoch_seconds(measured, IMAGES)
    timings.record(measured, IMAGES, reports([epoch + 2.0, epoch, epoch, epoch]), run_seconds=4 + 4 * epoch)

    after = timings.estimate(measured, IMAGES)
    assert after.measured_runs == 1
    assert after.total_seconds == pytest.approx(4 + 4 * epoch, rel=0.01)
    other = TrainingConfig(preset="mlp", epochs=10, batch_size=128)
    assert timings.estimate(other, IMAGES).epoch_seconds == pytest.approx(
        3 * timings.modelled_epoch_seconds(other, IMAGES), rel=0.01)
    assert timings.estimate(TrainingConfig(preset="seed"), IMAGES) == timing.RunTimings().estimate(
        TrainingConfig(preset="seed"), IMAGES)  # other presets keep their own numbers


def test_a_run_without_a_complete_epoch_teaches_nothing():
    timings = timing.RunTimings()
    config = TrainingConfig(epochs=50)
    timings.record(config, IMAGES, reports([0.4], partial_last=True), run_seconds=3.0)
    assert timings.estimate(config, IMAGES) == timing.RunTimings().estimate(config, IMAGES)


def test_more_data_a_bigger_validation_share_and_smaller_batches_cost_more():
    model = timing.RunTimings.modelled_epoch_seconds
    base = TrainingConfig()
    assert model(TrainingConfig(sample_limit=5000), IMAGES) < model(base, IMAGES)
    assert model(TrainingConfig(batch_size=8), IMAGES) > model(base, IMAGES)
    # Half the data validating: fewer training samples, more validation ones.
    half = TrainingConfig(validation_fraction=0.5)
    assert timing.split_sizes(half, IMAGES) == (30_000, 30_000)


@pytest.mark.parametrize(("current_epoch", "done", "fraction", "in_epoch", "expected"), [
    pytest.param(1, [], 0.5, 3.0, 2.0 + 4 * 5.0, id="first-epoch: the expectation"),
    pytest.param(3, [9.0, 4.0], 0.5, 2.0, 2.0 + 2 * 4.0, id="later: the run's own steady epochs"),
    pytest.param(3, [9.0, 4.0], 1.0, 5.0, 0.2 + 2 * 4.0, id="validating past the expected end: a little left"),
    pytest.param(5, [9.0, 4.0, 4.0, 4.0, 4.0], 1.0, 0.0, 0.0, id="all epochs in"),
])
def test_remaining_seconds(current_epoch, done, fraction, in_epoch, expected):
    assert timing.remaining_seconds(5, reports(done), current_epoch, fraction, in_epoch, 5.0) == pytest.approx(
        expected)


def test_the_eta_never_moves_by_more_than_the_step_between_two_readings():
    smoother = timing.EtaSmoother()
    readings = [smoother.reading(now, estimate) for now, estimate in
                [(0.0, 20.0), (1.0, 19.0), (2.0, 293.0), (3.0, 15.0), (4.0, 1.0), (5.0, 14.0)]]
    assert readings[:2] == [20.0, 19.0]
    for earlier, later in zip(readings, readings[1:], strict=False):
        expected = earlier - 1.0  # one second between two readings
        assert expected / timing.MAX_ETA_STEP <= later <= expected * timing.MAX_ETA_STEP + 1e-9
