"""Tests for fmnist.timing: estimates learned from runs, the ETA of a running job, and its smoothing."""

import dataclasses
import itertools

import pytest

from fmnist import timing, training
from fmnist.training import EpochReport, TrainingConfig

IMAGES = 60_000


@pytest.fixture(autouse=True)
def no_measured_steps(monkeypatch):
    """Each test starts as a process that has timed no steps (runs in other tests time some)."""
    monkeypatch.setattr(training, "_MEASURED_STEP_SECONDS", {})
    monkeypatch.setattr(training, "_LATEST_STEP_BY_PRESET", {})
    monkeypatch.setattr(training, "_MEASURED_COMPILE_SECONDS", {})


def measure_steps(config: TrainingConfig, seconds: float) -> None:
    """As a pacer does once it has timed a group of ``config``'s steps: ``seconds`` a step."""
    clock = iter([0.0, 10.0, 20.0, 20.0 + 2 * seconds])  # the first call (tracing) is not learned from
    pacer = training.StepGroupPacer(config, first_size=2, clock=lambda: next(clock))
    for _ in range(2):
        pacer.call_started()
        pacer.call_ended(2)


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

    after = timings.estimate(measured, IMAGES, needs_compiling=False)  # as the recorded run
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


EXPECTED = timing.Estimate(training_seconds=4.0, validation_seconds=1.0, setup_seconds=2.0, epochs=5, measured_runs=0)


def phases(*pairs: tuple[float, float]) -> tuple[timing.EpochPhases, ...]:
    return tuple(timing.EpochPhases(training_seconds=steps, validation_seconds=validation) for steps, validation in pairs)


@pytest.mark.parametrize(("progress", "expected"), [
    pytest.param(timing.RunProgress(5, (), 1, 0.05, 3.0), 0.95 * 4 + 1 + 4 * 5.0,
                 id="first epoch, no pace yet: the estimate"),
    pytest.param(timing.RunProgress(5, (), 1, 0.5, 3.0, pace_seconds=2.0), 0.5 * 2 + 1 + 4 * 3.0,
                 id="first epoch: its own pace after the first step group, validation as estimated"),
    pytest.param(timing.RunProgress(5, phases((9.0, 3.0), (2.0, 0.5)), 3, 0.5, 1.0), 0.5 * 2 + 0.5 + 2 * 2.5,
                 id="later: the steps of the last steady epoch, the last epoch's validation"),
    pytest.param(timing.RunProgress(5, phases((9.0, 3.0), (2.0, 0.5)), 3, 0.5, 1.0, pace_seconds=3.0, pace_share=0.5),
                 0.5 * 2.5 + 0.5 + 2 * 3.0, id="the pace blended with the recent epochs by the share it covers"),
    pytest.param(timing.RunProgress(5, (timing.EpochPhases(9.0, 3.0, steady_seconds=2.0),), 2, 0.3, 1.0,
                                    pace_seconds=3.0, pace_share=0.2),
                 0.7 * 2.2 + 3.0 + 3 * 5.2, id="epoch 2: the first epoch's steady pace, then a little of its own"),
    pytest.param(timing.RunProgress(6, phases((9.0, 3.0), (2.0, 0.5), (2.0, 0.7), (9.0, 0.6), (2.2, 0.5)), 6, 0.5,
                                    1.0, pace_seconds=2.4, pace_share=0.5), 0.5 * 2.3 + 0.6,
                 id="one slow epoch does not move it much"),
    pytest.param(timing.RunProgress(5, phases((9.0, 3.0), (2.0, 0.5)), 3, 1.0, 2.2, validating_for=0.2),
                 0.3 + 2 * 2.5, id="validating: what is left of the validation"),
    pytest.param(timing.RunProgress(5, phases((9.0, 3.0), (2.0, 0.5)), 3, 1.0, 3.0, validating_for=1.0),
                 0.05 + 2 * 2.5, id="validating past the expected end: a little left"),
    pytest.param(timing.RunProgress(5, phases(*[(2.0, 0.5)] * 5), 5, 1.0, 0.0), 0.0, id="all epochs in"),
])
def test_remaining_seconds(progress, expected):
    assert timing.remaining_seconds(progress, EXPECTED) == pytest.approx(expected)


def test_training_steps_and_validation_are_learned_apart():
    """A run whose validation was far slower than modelled (a small training limit, a big validation
    set) corrects the validation estimate, not the steps', so other sizes are priced right too."""
    timings = timing.RunTimings()
    config = TrainingConfig(preset="cnn", epochs=3, sample_limit=5000)
    modelled_steps, modelled_validation = timings.modelled_phases(config, IMAGES)
    steps, validation = modelled_steps, 2 * modelled_validation
    timings.record(config, IMAGES, reports([steps + validation + 1.0] + [steps + validation] * 2),
                   run_seconds=3 * (steps + validation) + 1.5,
                   phases=phases((steps + 0.8, validation + 0.2), (steps, validation), (steps, validation)))
    full = TrainingConfig(preset="cnn", epochs=3)
    learned = timings.estimate(full, IMAGES, needs_compiling=False)
    full_steps, full_validation = timings.modelled_phases(full, IMAGES)
    assert learned.training_seconds == pytest.approx(full_steps)
    assert learned.validation_seconds == pytest.approx(2 * full_validation)
    assert learned.setup_seconds == pytest.approx(1.5)


def test_a_run_that_must_compile_its_engine_is_expected_to_take_longer():
    timings = timing.RunTimings()
    config = TrainingConfig(preset="seed", loss="mean_squared_error", batch_size=512, learning_rate=0.000321)
    cold, warm = timings.estimate(config, IMAGES, needs_compiling=True), timings.estimate(config, IMAGES, False)
    assert timings.estimate(config, IMAGES) == cold, "no engine was compiled for these settings in this process"
    assert cold.setup_seconds - warm.setup_seconds == pytest.approx(timing.COST_MODELS["seed"].compile)
    # Measured here: a warm run's set-up of 0.3 s; a compiling run is priced from it, then learned.
    epoch = timings.modelled_epoch_seconds(config, IMAGES)
    timings.record(config, IMAGES, reports([epoch] * 3), run_seconds=3 * epoch + 0.3)
    assert timings.estimate(config, IMAGES, False).setup_seconds == pytest.approx(0.3)
    assert timings.estimate(config, IMAGES, needs_compiling=True).setup_seconds == pytest.approx(
        0.3 + timing.COST_MODELS["seed"].compile)
    timings.record(config, IMAGES, reports([epoch + 2.5] + [epoch] * 2), run_seconds=3 * epoch + 2.8, compiled=True)
    assert timings.estimate(config, IMAGES, needs_compiling=True).setup_seconds == pytest.approx(2.8)
    assert timings.estimate(config, IMAGES, False).setup_seconds == pytest.approx(0.3)


def test_drawings_learn_from_their_own_runs_and_until_then_from_the_other_way():
    """The same preset without drawings (or with) is a far better guide to a first run than the
    static model: its set-up, its finish and this machine's speed are the same."""
    timings = timing.RunTimings()
    plain = TrainingConfig(preset="minute-cnn", drawings=False, epochs=3, sample_limit=2000)
    with_drawings = dataclasses.replace(plain, drawings=True)
    epoch = 5 * timings.modelled_epoch_seconds(plain, IMAGES)
    timings.record(plain, IMAGES, reports([epoch + 0.7] + [epoch] * 2), run_seconds=3 * epoch + 1.2)
    assert timings.estimate(plain, IMAGES).measured_runs == 1
    borrowed = timings.estimate(with_drawings, IMAGES, needs_compiling=False)
    assert borrowed.epoch_seconds == pytest.approx(5 * timings.modelled_epoch_seconds(with_drawings, IMAGES))
    assert borrowed.setup_seconds == pytest.approx(1.2)
    drawing_epoch = 2 * timings.modelled_epoch_seconds(with_drawings, IMAGES)
    timings.record(with_drawings, IMAGES, reports([drawing_epoch] * 3), run_seconds=3 * drawing_epoch + 0.5)
    assert timings.estimate(with_drawings, IMAGES, needs_compiling=False).epoch_seconds == pytest.approx(drawing_epoch)
    assert timings.estimate(plain, IMAGES).epoch_seconds == pytest.approx(epoch)


def measure_compiling(config: TrainingConfig, seconds: float) -> None:
    """As a run's pacer does on a new engine: a first call that took ``seconds`` beyond its 2 steps
    (at the cost model's step time: this machine's speed factor is 1)."""
    step_seconds = modelled_step_seconds(config)
    clock = iter([0.0, seconds + 2 * step_seconds, 20.0, 20.0 + 2 * step_seconds])
    pacer = training.StepGroupPacer(config, first_size=2, clock=lambda: next(clock))
    pacer.compiling = True
    for _ in range(2):
        pacer.call_started()
        pacer.call_ended(2)


def test_a_new_engine_records_its_compile_time_and_an_engine_run_before_does_not():
    config = TrainingConfig(preset="minute-cnn", epochs=2, sample_limit=4000)
    measure_compiling(config, 3.0)
    assert training.measured_compile_seconds(config) == pytest.approx(3.0)
    assert training.measured_compile_seconds(dataclasses.replace(config, drawings=False)) is None
    clock = iter([0.0, 9.0, 20.0, 20.2])
    reused = training.StepGroupPacer(config, first_size=2, clock=lambda: next(clock))  # compiling is False
    for _ in range(2):
        reused.call_started()
        reused.call_ended(2)
    assert training.measured_compile_seconds(config) == pytest.approx(3.0)


def test_compiling_is_priced_at_the_time_measured_here_for_the_preset_and_drawing_option():
    config = TrainingConfig(preset="minute-cnn", epochs=2, sample_limit=4000)
    timings = timing.RunTimings()
    measure_compiling(config, 3.0)
    cold, warm = timings.estimate(config, IMAGES, needs_compiling=True), timings.estimate(config, IMAGES, False)
    assert cold.setup_seconds - warm.setup_seconds == pytest.approx(3.0)
    # Without drawings nothing was measured: the cost model's, at this machine's speed (1 here).
    plain = dataclasses.replace(config, drawings=False)
    assert timing.machine_speed_factor() == pytest.approx(1.0)
    assert timings.compile_seconds(plain) == pytest.approx(timing.COST_MODELS["minute-cnn"].compile)


def test_a_run_with_the_drawing_option_the_other_way_lends_its_set_up_but_not_its_compiling():
    """Measured on a 2-core EPYC: a first Minute CNN run with drawings spent 3.3 s setting up, 3.0 s
    of it compiling; the next, without drawings, compiled in 0.7 s. Borrowing the 3.3 s made its
    estimate 1.46x its time."""
    with_drawings = TrainingConfig(preset="minute-cnn", epochs=2, sample_limit=5000)
    plain = dataclasses.replace(with_drawings, drawings=False, epochs=3, sample_limit=10_000)
    timings = timing.RunTimings()
    measure_compiling(with_drawings, 3.0)
    epoch = timings.modelled_epoch_seconds(with_drawings, IMAGES)
    timings.record(with_drawings, IMAGES, reports([epoch + 3.0, epoch]), run_seconds=2 * epoch + 3.3, compiled=True)
    assert timings.estimate(with_drawings, IMAGES, needs_compiling=True).setup_seconds == pytest.approx(3.3)
    borrowed = timings.estimate(plain, IMAGES, needs_compiling=True)
    assert borrowed.setup_seconds == pytest.approx(0.3 + timings.compile_seconds(plain))
    assert borrowed.setup_seconds < 2.0


def test_the_eta_never_moves_by_more_than_the_step_between_two_readings():
    smoother = timing.EtaSmoother()
    readings = [smoother.reading(now, estimate) for now, estimate in
                [(0.0, 20.0), (1.0, 19.0), (2.0, 293.0), (3.0, 15.0), (4.0, 1.0), (5.0, 14.0)]]
    assert readings[:2] == [20.0, 19.0]
    for earlier, later in zip(readings, readings[1:], strict=False):
        expected = earlier - 1.0  # one second between two readings
        assert expected / timing.MAX_ETA_STEP <= later <= expected * timing.MAX_ETA_STEP + 1e-9


def test_the_textbook_baseline_compiles_nothing():
    from fmnist import training

    baseline = TrainingConfig(preset="sgd-classifier", epochs=3, sample_limit=5000)
    assert not training.needs_compiling(baseline, 48_000)
    # Priced before any run and after one (it has no drawing option to borrow from or lend to).
    timings = timing.RunTimings()
    assert timings.estimate(baseline, IMAGES).total_seconds > 0
    timings.record(baseline, IMAGES, reports([1.0] * 3), run_seconds=3.5)
    assert timings.estimate(baseline, IMAGES).measured_runs == 1
    # Settings no other test trains with, so no engine exists for them in this process.
    assert training.needs_compiling(TrainingConfig(preset="mlp", learning_rate=0.000123, epochs=3), 48_000)


def test_the_eta_counts_what_follows_the_last_epoch():
    expected = dataclasses.replace(EXPECTED, finish_seconds=1.0)
    during = timing.RunProgress(5, phases(*[(2.0, 0.5)] * 4), 5, 0.5, 1.0)
    assert timing.remaining_seconds(during, expected) == pytest.approx(0.5 * 2 + 0.5 + 1.0)
    after = timing.RunProgress(5, phases(*[(2.0, 0.5)] * 5), 5, 1.0, 2.6, since_last_epoch=0.4)
    assert timing.remaining_seconds(after, expected) == pytest.approx(0.6)


def test_the_finish_after_the_last_epoch_is_learned():
    timings = timing.RunTimings()
    config = TrainingConfig(preset="mlp", epochs=3)
    epoch = timings.modelled_epoch_seconds(config, IMAGES)
    timings.record(config, IMAGES, reports([epoch] * 3), run_seconds=3 * epoch + 2.0, finish_seconds=1.5)
    assert timings.estimate(config, IMAGES, False).finish_seconds == pytest.approx(1.5)


def modelled_step_seconds(config: TrainingConfig) -> float:
    cost = timing.COST_MODELS[config.preset]
    return config.batch_size * cost.per_sample + cost.per_step


def test_a_first_estimate_follows_the_step_time_measured_on_this_machine():
    """The cost models were measured on another machine: before any run of a preset here, its
    estimate scales them by how much slower (or faster) its steps measured here were."""
    config = TrainingConfig(preset="minute-cnn", epochs=2, sample_limit=4000)
    static = timing.RunTimings().estimate(config, IMAGES, needs_compiling=False)
    measure_steps(config, 5 * modelled_step_seconds(config))  # this machine: 5 times slower
    calibrated = timing.RunTimings().estimate(config, IMAGES, needs_compiling=False)
    assert calibrated.measured_runs == 0
    assert calibrated.training_seconds == pytest.approx(5 * static.training_seconds)
    assert calibrated.validation_seconds == pytest.approx(5 * static.validation_seconds)
    assert calibrated.setup_seconds == pytest.approx(5 * static.setup_seconds)  # tracing is this CPU's work too
    # Measured at another batch size and without drawings: the model carries the factor over.
    other = dataclasses.replace(config, batch_size=32, drawings=False)
    assert timing.RunTimings().estimate(other, IMAGES).training_seconds == pytest.approx(
        5 * timing.RunTimings.modelled_phases(other, IMAGES)[0])
    # A preset not measured here (too quick to calibrate) takes this machine's speed from the others.
    seed = TrainingConfig()
    assert timing.RunTimings().estimate(seed, IMAGES).training_seconds == pytest.approx(
        5 * timing.RunTimings.modelled_phases(seed, IMAGES)[0])
    measure_steps(seed, 2 * modelled_step_seconds(seed))  # until measured itself
    assert timing.RunTimings().estimate(seed, IMAGES).training_seconds == pytest.approx(
        2 * timing.RunTimings.modelled_phases(seed, IMAGES)[0])


def test_a_small_runs_fixed_cost_per_epoch_is_not_scaled_up_to_a_full_run():
    """An epoch's training phase is its steps at their measured pace plus a fixed part (starting and
    ending the epoch). Learned as one factor, 5,000 images' fixed part made a full run's estimate
    2.5 times too long; the steps' own pace separates the two."""
    timings = timing.RunTimings()
    small = TrainingConfig(preset="mlp", epochs=3, sample_limit=5000)
    step_seconds, fixed = 0.3 * modelled_step_seconds(small), 0.04  # fast steps, a fixed part the model lacks
    measure_steps(small, step_seconds)
    small_steps = -(-5000 // small.batch_size)
    training_phase = small_steps * step_seconds + fixed
    timings.record(small, IMAGES, reports([training_phase + 0.5] + [training_phase] * 2),
                   run_seconds=3 * training_phase + 0.8,
                   phases=phases((training_phase + 0.5, 0.0), (training_phase, 0.0), (training_phase, 0.0)))
    full = TrainingConfig(preset="mlp", epochs=3)
    full_steps = -(-timing.split_sizes(full, IMAGES)[0] // full.batch_size)
    assert timings.estimate(full, IMAGES).training_seconds == pytest.approx(full_steps * step_seconds + fixed, rel=0.01)


def test_a_recorded_run_still_teaches_more_than_a_measured_step():
    config = TrainingConfig(preset="cnn", epochs=3, sample_limit=5000)
    measure_steps(config, 5 * modelled_step_seconds(config))
    timings = timing.RunTimings()
    modelled_training, modelled_validation = timings.modelled_phases(config, IMAGES)
    epoch = 2 * (modelled_training + modelled_validation)  # the run went 2 times the model, not 5
    timings.record(config, IMAGES, reports([epoch, epoch, epoch]), run_seconds=3 * epoch + 1)
    assert timings.estimate(config, IMAGES).epoch_seconds == pytest.approx(epoch)


def reports_at(*seconds: float) -> list[tuple[float, float]]:
    """Progress reports of groups of a tenth of an epoch that took ``seconds`` each, from time 0."""
    times = [0.0, *itertools.accumulate(seconds)]
    return [(time, index / 10) for index, time in enumerate(times)]


@pytest.mark.parametrize(("groups", "lost"), [
    pytest.param((0.5, 0.5, 3.5, 0.5, 0.5), 3.5 - 0.75, id="one slow group between usual ones: a stall"),
    pytest.param((0.5, 0.5, 0.5, 0.5, 3.5), 3.5 - 0.75, id="the latest group slow: a stall until the next says otherwise"),
    pytest.param((0.5, 0.5, 0.5, 2.0, 2.0), 0.0, id="two slow groups in a row: a new pace"),
    pytest.param((0.5, 3.5), 0.0, id="too few groups to tell"),
    pytest.param((0.5, 0.6, 0.7, 0.5, 0.6), 0.0, id="no group past 1.5x the median"),
])
def test_stall_seconds(groups, lost):
    assert timing.stall_seconds(reports_at(*groups)) == pytest.approx(lost)


def test_steady_pace_leaves_stalls_out_and_waits_for_enough_of_the_epoch():
    assert timing.steady_pace(reports_at(0.5)) is None  # a tenth of the epoch: not yet reliable
    assert timing.steady_pace(reports_at(0.5, 0.5)) == pytest.approx(5.0)
    # The stall counts as a group at 1.5x the median pace (0.75 s), not its 3.5 s.
    assert timing.steady_pace(reports_at(0.5, 0.5, 3.5, 0.5, 0.5)) == pytest.approx((4 * 0.5 + 0.75) / 0.5)
