"""How long a run will take on this server: estimates per preset, learned from the runs it has done.

The estimate starts from a cost model per preset: seconds per training sample and per step,
per validation sample, a one-off set-up (building the model, loading its weights and data, and
what follows the last epoch), and the tracing and compiling of an engine this server has not
built yet. Every run that ends here corrects it: each preset (with or without drawings) keeps
how much slower or faster its training steps (at the pace the run measured) and its validation
really were than the model said, the rest of an epoch's training phase as a fixed cost per
epoch, and how long its set-up really took, with a compiled engine and without one. Until a
preset has run with the drawing option as asked, its runs with the option the other way serve.

Before a preset has run here, its steps are priced by the step time this process measured for it
(``training.calibrate_step_times`` at the warm-up, or a run that did not end): the cost model
scaled to this machine's speed, as the constants were measured on another machine (a preset too
quick to calibrate takes the other presets' factor; set-up and compiling take their median).

The ETA of a running job prices what is left of it from the run's own pace: the seconds its
training steps take (the epochs done, blended with the current epoch's own pace, measured after
its first step group, whose tracing would distort it, by the share of the epoch that pace covers;
without stalls: a pause is not a pace), and the seconds its validation takes (measured by the
epochs done).
Until the run has measured a part, that part comes from the estimate. A reading never jumps by
more than ``MAX_ETA_STEP`` from the previous one.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import threading
from collections.abc import Sequence

from fmnist import training
from fmnist.training import EpochReport, TrainingConfig

LEARNING_WEIGHT = 0.5
"""How much one measured run moves a preset's correction (an exponential moving average)."""
MAX_ETA_STEP = 1.5
"""An ETA reading is at most this factor away from the previous one (counted down by the time between)."""
RELIABLE_PACE_FRACTION = 0.15
"""The share of an epoch's steps after which the epoch's own pace counts in its ETA (by that share)."""
RECENT_EPOCHS = 3
"""How many of a run's latest epochs price its ETA (fewer follow a changing load faster, but noisier)."""
STALL_FACTOR = 1.5
"""A step group slower than this factor of its epoch's median pace, between groups at the usual pace, is a
stall (another thread held the GIL, the machine paused the process): its time past this factor is not the
run's pace. Two slow groups in a row are a new pace and count in full."""
STALL_MIN_GROUPS = 3
"""Step groups an epoch needs before a stall can be told from its pace."""


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Seconds of an epoch's training steps = samples x ``per_sample`` + steps x ``per_step`` (with
    drawings or without: the engine swaps drawings in at no cost of its own); of its validation =
    validation samples x ``per_validation_sample`` + ``per_epoch``. A run adds ``setup`` once, and ``compile`` when the
    server has no compiled engine for its settings yet."""

    per_sample: float
    per_step: float
    per_validation_sample: float
    per_epoch: float
    setup: float
    compile: float
    finish: float = 0.3
    """Of ``setup``: seconds from the last epoch's end to the job's end (the model copied out, memory
    given back)."""


COST_MODELS: dict[str, CostModel] = {
    # Measured on this 2-core machine with the fast engine, on a quiet machine (bench/estimates.py).
    "seed": CostModel(per_sample=3.0e-6, per_step=4.0e-6, per_validation_sample=2.0e-6, per_epoch=0.02,
                      setup=0.4, compile=1.8),
    "mlp": CostModel(per_sample=2.0e-5, per_step=2.0e-5, per_validation_sample=2.5e-6, per_epoch=0.02,
                     setup=0.3, compile=0.3),
    "cnn": CostModel(per_sample=3.5e-4, per_step=2.0e-4, per_validation_sample=6.0e-5, per_epoch=0.1,
                     setup=0.6, compile=0.5),
    # Validation re-measured on 2026-12-05 (2-core EPYC, against the steps' time): a CNN's forward
    # pass costs less against its step than these had; the drawing factor once hid it for the Minute CNN.
    "minute-cnn": CostModel(per_sample=1.1e-4, per_step=2.0e-4, per_validation_sample=2.4e-5, per_epoch=0.1,
                            setup=1.5, compile=1.5, finish=1.0),
    # The scikit-learn baseline: one partial_fit per epoch, then the loss and accuracy of every image.
    "sgd-classifier": CostModel(per_sample=2.5e-5, per_step=0.0, per_validation_sample=1.0e-5, per_epoch=0.05,
                                setup=0.5, compile=0.0),
}
DEFAULT_COST_MODEL = COST_MODELS["cnn"]
"""For a preset without a cost model of its own (a new one): priced like a CNN until it has run here."""


def split_sizes(config: TrainingConfig, training_images: int) -> tuple[int, int]:
    """(training, validation) sample counts of a run on ``training_images`` images."""
    validation = round(training_images * config.validation_fraction)
    training = training_images - validation
    if config.sample_limit:
        training = min(training, config.sample_limit)
    return training, validation


@dataclasses.dataclass(frozen=True)
class Estimate:
    training_seconds: float
    """Per epoch: the training steps."""
    validation_seconds: float
    """Per epoch: validating after the steps."""
    setup_seconds: float
    epochs: int
    measured_runs: int
    """How many runs of this preset on this server the estimate has learned from."""
    finish_seconds: float = 0.0
    """Of ``setup_seconds``: what comes after the last epoch (the ETA counts it at the end)."""

    @property
    def epoch_seconds(self) -> float:
        return self.training_seconds + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        return self.setup_seconds + self.epochs * self.epoch_seconds

    @property
    def basis_text(self) -> str:
        if not self.measured_runs:
            return ", before any run of this preset on this server"
        runs = "run" if self.measured_runs == 1 else "runs"
        return f", from {self.measured_runs} {runs} of this preset on this server"


@dataclasses.dataclass(frozen=True)
class EpochPhases:
    """Where one epoch's seconds went, as the job saw them: its training steps, then validation."""

    training_seconds: float
    validation_seconds: float
    steady_seconds: float | None = None
    """Seconds its training steps would take at its steady pace (after its first step group, which
    carries any tracing; stalls left out)."""


@dataclasses.dataclass
class _Learned:
    training_factor: float = 1.0
    training_overhead: float = 0.0
    """Seconds of an epoch's training phase that do not grow with its steps (starting and ending the
    epoch, its first step group): what the run's steps did not account for at their measured pace."""
    validation_factor: float = 1.0
    setup_seconds: dict[bool, float] = dataclasses.field(default_factory=dict)
    """By whether the run had to compile its engine."""
    finish_seconds: float | None = None
    runs: int = 0


def measured_speed_factor(config: TrainingConfig) -> float | None:
    """How many times the cost model's step time the latest step of ``config``'s preset measured in
    this process took (at that measurement's batch size); for a preset not measured,
    the median of the others' factors; None before any."""
    factors = _measured_factors(config.preset)
    if config.preset in factors:
        return factors[config.preset]
    # Not timed here (a preset too quick to calibrate): this machine's speed as the other presets
    # measured it, which the cost models share (they were measured on one machine).
    return statistics.median(factors.values()) if factors else None


def machine_speed_factor() -> float | None:
    """The median of the speed factors measured here (see :func:`measured_speed_factor`) over all
    presets: how fast this machine is at work that is not one preset's arithmetic; None before any."""
    factors = _measured_factors()
    return statistics.median(factors.values()) if factors else None


def _measured_factors(also: str | None = None) -> dict[str, float]:
    """Preset -> its latest measured step time over the cost model's, for the presets timed here
    (those with a cost model, and ``also``, priced by the default model if it has none)."""
    factors = {}
    for preset in dict.fromkeys([*COST_MODELS, *([also] if also else [])]):
        cost = COST_MODELS.get(preset, DEFAULT_COST_MODEL)
        latest = training.latest_step_measurement(preset)
        if latest is not None:
            batch_size, seconds = latest
            modelled = batch_size * cost.per_sample + cost.per_step
            factors[preset] = seconds / max(modelled, 1e-12)
    return factors


def _moved(old: float | None, new: float, first: bool) -> float:
    return new if first or old is None else old + LEARNING_WEIGHT * (new - old)


class RunTimings:
    """Per-preset corrections learned from finished runs; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._learned: dict[tuple[str, bool], _Learned] = {}

    @staticmethod
    def modelled_phases(config: TrainingConfig, training_images: int) -> tuple[float, float]:
        """(training steps, validation) seconds of one epoch, by the cost model alone."""
        samples, validation = split_sizes(config, training_images)
        cost = COST_MODELS.get(config.preset, DEFAULT_COST_MODEL)
        steps = -(-samples // config.batch_size)
        engine = 1.0 if config.fast else 6.0
        return (engine * (samples * cost.per_sample + steps * cost.per_step),
                validation * cost.per_validation_sample + cost.per_epoch)

    @staticmethod
    def compile_seconds(config: TrainingConfig, drawings: bool | None = None) -> float:
        """Seconds a new engine for ``config`` (with ``drawings``, default its own option) takes to trace
        and compile: as the latest new engine of its preset and drawing option took here, else the
        cost model's at this machine's speed."""
        measured = training.measured_compile_seconds(config, drawings)
        if measured is not None:
            return measured
        cost = COST_MODELS.get(config.preset, DEFAULT_COST_MODEL)
        return cost.compile * (machine_speed_factor() or 1.0)

    @classmethod
    def modelled_epoch_seconds(cls, config: TrainingConfig, training_images: int) -> float:
        return sum(cls.modelled_phases(config, training_images))

    def estimate(self, config: TrainingConfig, training_images: int, needs_compiling: bool | None = None) -> Estimate:
        """The expected duration of a run of ``config`` on ``training_images`` images; ``needs_compiling``
        when the server has no compiled engine for its settings (by default: asked of the engine)."""
        if needs_compiling is None:
            needs_compiling = training.needs_compiling(config, split_sizes(config, training_images)[0])
        with self._lock:
            learned = self._learned.get((config.preset, config.uses_drawings))
            learned_with_drawings = config.uses_drawings
            if learned is None:  # the same preset with the drawing option the other way is the best guide
                learned = self._learned.get((config.preset, not config.uses_drawings))
                learned_with_drawings = not config.uses_drawings
            learned = dataclasses.replace(learned, setup_seconds=dict(learned.setup_seconds)) if learned else _Learned()
        cost = COST_MODELS.get(config.preset, DEFAULT_COST_MODEL)
        if not learned.runs:
            # Nothing learned from a run yet: scale the model to the speed measured here, validation
            # (the same layers, forward only) like the training steps.
            factor = measured_speed_factor(config)
            if factor is not None:
                learned.training_factor = learned.validation_factor = factor
        # Tracing and compiling are this CPU's work too, but Python's rather than one preset's
        # arithmetic: scaled by the presets' typical speed factor here.
        machine = machine_speed_factor() or 1.0
        cost_setup = cost.setup * machine
        compile_seconds = self.compile_seconds(config)
        borrowed = learned_with_drawings != config.uses_drawings
        setup = None if borrowed else learned.setup_seconds.get(needs_compiling)
        if setup is None:
            setup = cost_setup + (compile_seconds if needs_compiling else 0.0)
            # Measured here the other way (with or without compiling, or with the drawing option the
            # other way): its set-up without its compiling, plus this run's compiling.
            if learned.setup_seconds:
                compiled = needs_compiling if needs_compiling in learned.setup_seconds else not needs_compiling
                measured = learned.setup_seconds[compiled]
                without = max(0.0, measured - (self.compile_seconds(config, learned_with_drawings) if compiled else 0.0))
                setup = without + (compile_seconds if needs_compiling else 0.0)
        modelled_training, modelled_validation = self.modelled_phases(config, training_images)
        finish = cost.finish if learned.finish_seconds is None else learned.finish_seconds
        return Estimate(training_seconds=modelled_training * learned.training_factor + learned.training_overhead,
                        validation_seconds=modelled_validation * learned.validation_factor,
                        setup_seconds=setup, epochs=config.epochs, measured_runs=learned.runs,
                        finish_seconds=finish)

    def record(self, config: TrainingConfig, training_images: int, reports: Sequence[EpochReport],
               run_seconds: float, phases: Sequence[EpochPhases] = (), compiled: bool = False,
               finish_seconds: float | None = None) -> None:
        """Learn from a run that ended: its epochs' seconds (split into ``phases`` when the job saw
        them), the whole run's seconds (with ``finish_seconds`` of it after the last epoch), and
        whether it had to compile its engine."""
        complete = [index for index, report in enumerate(reports) if report.complete]
        if not complete:
            return
        steady = complete[1:] or complete  # the first epoch carries the one-off tracing
        modelled_training, modelled_validation = self.modelled_phases(config, training_images)
        overhead = 0.0
        if len(phases) == len(reports):
            training_seconds = statistics.median(phases[i].training_seconds for i in steady)
            training_factor = training_seconds / max(modelled_training, 1e-9)
            validation_factor = statistics.median(
                phases[i].validation_seconds for i in steady) / max(modelled_validation, 1e-9)
            step_seconds = training.measured_step_seconds(config)
            if step_seconds is not None:
                # The pace of its steps, measured in this run, prices steps; the rest of the phase is
                # a cost per epoch. Learned as one factor, a small run's fixed part would be priced
                # as if it grew with the steps (a 5,000-image run made a full one 2.5x too long).
                steps = -(-split_sizes(config, training_images)[0] // config.batch_size)
                steps_seconds = min(steps * step_seconds, training_seconds)
                training_factor = steps_seconds / max(modelled_training, 1e-9)
                overhead = training_seconds - steps_seconds
        else:
            training_factor = validation_factor = statistics.median(
                reports[i].seconds for i in steady) / max(modelled_training + modelled_validation, 1e-9)
        steady_epoch = statistics.median(reports[i].seconds for i in steady)
        # Set-up: everything outside the epochs, plus what the first epoch took beyond a steady one.
        setup = (max(0.0, run_seconds - sum(report.seconds for report in reports))
                 + max(0.0, reports[0].seconds - steady_epoch)) if len(complete) >= 2 else None
        with self._lock:
            learned = self._learned.setdefault((config.preset, config.uses_drawings), _Learned())
            first = learned.runs == 0
            learned.training_factor = _moved(learned.training_factor, training_factor, first)
            learned.training_overhead = _moved(learned.training_overhead, overhead, first)
            learned.validation_factor = _moved(learned.validation_factor, validation_factor, first)
            if setup is not None:
                learned.setup_seconds[compiled] = _moved(learned.setup_seconds.get(compiled), setup, False)
            if finish_seconds is not None:
                learned.finish_seconds = _moved(learned.finish_seconds, finish_seconds, False)
            learned.runs += 1


@dataclasses.dataclass(frozen=True)
class RunProgress:
    """What a running job knows about itself, for its ETA."""

    total_epochs: int
    phases: Sequence[EpochPhases]
    """One per epoch done."""
    current_epoch: int
    """1-based; 0 before the first epoch starts."""
    fraction: float
    """Share of the current epoch's training steps done."""
    seconds_in_epoch: float
    pace_seconds: float | None = None
    """Seconds an epoch's training steps take at the current epoch's pace (measured after its first
    step group, stalls left out), once it is reliable."""
    pace_share: float = 0.0
    """The share of the current epoch that ``pace_seconds`` was measured over."""
    validating_for: float | None = None
    """Seconds the current epoch has been validating, once its steps are done."""
    since_last_epoch: float = 0.0
    """Seconds since the latest epoch ended (after the last one: how long the job has been finishing)."""


def stall_seconds(reports: Sequence[tuple[float, float]]) -> float:
    """Seconds lost to stalls among an epoch's progress ``reports`` (time, share of the epoch done), in
    order: what each isolated slow step group took beyond ``STALL_FACTOR`` times the median pace.

    A stall is in the past: priced into the epochs left, one 1.5 s pause early in an epoch made the
    ETA of Minute CNN runs 82-117% too long (16 traced runs, replayed)."""
    groups = [(later_time - time, later_share - share) for (time, share), (later_time, later_share)
              in itertools.pairwise(reports) if later_share > share]
    if len(groups) < STALL_MIN_GROUPS:
        return 0.0
    median_pace = statistics.median(seconds / share for seconds, share in groups)
    slow = [seconds > STALL_FACTOR * median_pace * share for seconds, share in groups]
    lost = 0.0
    for index, (seconds, share) in enumerate(groups):
        alone = not (index > 0 and slow[index - 1]) and not (index + 1 < len(groups) and slow[index + 1])
        if slow[index] and alone:
            lost += seconds - STALL_FACTOR * median_pace * share
    return lost


def steady_pace(reports: Sequence[tuple[float, float]]) -> float | None:
    """Seconds a whole epoch of steps takes at the pace of ``reports`` (time, share of the epoch done; from
    the epoch's first step group on, which carries any tracing), stalls left out; None until they cover
    ``RELIABLE_PACE_FRACTION`` of the epoch."""
    if len(reports) < 2:
        return None
    covered = reports[-1][1] - reports[0][1]
    if covered < RELIABLE_PACE_FRACTION:
        return None
    return (reports[-1][0] - reports[0][0] - stall_seconds(reports)) / covered


def remaining_seconds(progress: RunProgress, expected: Estimate) -> float:
    """Seconds left in a running job: the rest of the current epoch, the epochs after it, and what
    follows the last one (``expected.finish_seconds``; after the last epoch, counted down).

    Training steps are priced by the run's own evidence: the epochs done (the median of the last
    ``RECENT_EPOCHS`` after the first, which carries tracing; with only the first done, its steady
    pace), blended with the current epoch's pace by the share of the epoch that pace covers, and by
    the estimate until there is any. An epoch's first seconds are often slower than the rest of it
    (seen in traced runs), and priced alone, a few of them put 2 of 24 traced Minute CNN runs'
    ETAs 26-28% over. Validation by the mean of those epochs (or the first one). The job leaves
    stalls out of both (:func:`stall_seconds`).
    """
    done = list(progress.phases)
    recent = done[1:][-RECENT_EPOCHS:]
    in_current = progress.current_epoch > len(done)
    prior: float | None = None
    if recent:
        prior = statistics.median(phase.training_seconds for phase in recent)
    elif done and done[0].steady_seconds is not None:
        prior = done[0].steady_seconds
    current = progress.pace_seconds if in_current else None
    if prior is None:
        training = current if current is not None else expected.training_seconds
    elif current is None:
        training = prior
    else:
        share = min(max(progress.pace_share, 0.0), 1.0)
        training = share * current + (1 - share) * prior
    validation_evidence = [phase.validation_seconds for phase in (recent or done[-1:])]
    validation = statistics.fmean(validation_evidence) if validation_evidence else expected.validation_seconds
    remaining_now = 0.0
    if in_current:
        if progress.validating_for is not None:
            remaining_now = max(validation - progress.validating_for, 0.1 * validation)
        else:
            remaining_now = max(training * (1 - progress.fraction), 0.0) + validation
    later = max(0, progress.total_epochs - max(progress.current_epoch, len(done)))
    finishing = max(expected.finish_seconds - progress.since_last_epoch, 0.0) if (
        not in_current and len(done) >= progress.total_epochs) else expected.finish_seconds
    return remaining_now + later * (training + validation) + finishing


class EtaSmoother:
    """Keeps an ETA reading from jumping: each reading is the new estimate, limited to ``MAX_ETA_STEP``
    times (or 1 / ``MAX_ETA_STEP``) the previous reading counted down by the time in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None

    def reading(self, now: float, estimate: float) -> float:
        with self._lock:
            if self._last is not None:
                then, shown = self._last
                expected = max(shown - (now - then), 0.0)
                if expected > 0:
                    estimate = min(max(estimate, expected / MAX_ETA_STEP), expected * MAX_ETA_STEP)
            self._last = (now, estimate)
            return estimate
