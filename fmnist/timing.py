"""How long a run will take on this server: estimates per preset, learned from the runs it has done.

The estimate starts from a cost model per preset (per training sample, per step, per
validation sample, plus a one-off set-up: building, compiling and tracing the first epoch).
Every run that ends on this server corrects it: each preset keeps how much slower or faster
its epochs really were than the model said, and how long its set-up really took. The ETA of a
running job uses the same expectation until the run's own epochs say better, and never jumps
by more than ``MAX_ETA_STEP`` between two readings.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections.abc import Sequence

from fmnist.training import EpochReport, TrainingConfig

LEARNING_WEIGHT = 0.5
"""How much one measured run moves a preset's correction (an exponential moving average)."""
MAX_ETA_STEP = 1.5
"""An ETA reading is at most this factor away from the previous one (counted down by the time between)."""


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Seconds per epoch = training samples x ``per_sample`` + steps x ``per_step`` + validation samples x
    ``per_validation_sample`` + ``per_epoch``; a run adds ``setup`` once (model, compile, first trace)."""

    per_sample: float
    per_step: float
    per_validation_sample: float
    per_epoch: float
    setup: float


COST_MODELS: dict[str, CostModel] = {
    # Measured on the 2-core CI machine with the fast engine, on a quiet machine.
    "seed": CostModel(per_sample=3.0e-6, per_step=4.0e-6, per_validation_sample=2.0e-6, per_epoch=0.05, setup=2.0),
    "mlp": CostModel(per_sample=3.5e-5, per_step=2.0e-5, per_validation_sample=1.2e-5, per_epoch=0.08, setup=2.0),
    "cnn": CostModel(per_sample=6.0e-4, per_step=2.0e-4, per_validation_sample=1.5e-4, per_epoch=0.1, setup=3.0),
    # The scikit-learn baseline: one partial_fit per epoch, then the loss and accuracy of every image.
    "sgd-classifier": CostModel(per_sample=2.5e-5, per_step=0.0, per_validation_sample=1.0e-5, per_epoch=0.05,
                                setup=0.5),
}
DEFAULT_COST_MODEL = CostModel(per_sample=6.0e-4, per_step=2.0e-4, per_validation_sample=1.5e-4, per_epoch=0.1,
                               setup=3.0)
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
    epoch_seconds: float
    setup_seconds: float
    epochs: int
    measured_runs: int
    """How many runs of this preset on this server the estimate has learned from."""

    @property
    def total_seconds(self) -> float:
        return self.setup_seconds + self.epochs * self.epoch_seconds

    @property
    def basis_text(self) -> str:
        if not self.measured_runs:
            return ", before any run of this preset on this server"
        runs = "run" if self.measured_runs == 1 else "runs"
        return f", from {self.measured_runs} {runs} of this preset on this server"


@dataclasses.dataclass
class _Learned:
    epoch_factor: float = 1.0
    setup_seconds: float | None = None
    runs: int = 0


class RunTimings:
    """Per-preset corrections learned from finished runs; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._learned: dict[str, _Learned] = {}

    @staticmethod
    def modelled_epoch_seconds(config: TrainingConfig, training_images: int) -> float:
        training, validation = split_sizes(config, training_images)
        cost = COST_MODELS.get(config.preset, DEFAULT_COST_MODEL)
        steps = -(-training // config.batch_size)
        engine = 1.0 if config.fast else 6.0
        return (engine * (training * cost.per_sample + steps * cost.per_step)
                + validation * cost.per_validation_sample + cost.per_epoch)

    def estimate(self, config: TrainingConfig, training_images: int) -> Estimate:
        """The expected duration of a run of ``config`` on ``training_images`` images."""
        with self._lock:
            learned = dataclasses.replace(self._learned.get(config.preset, _Learned()))
        cost = COST_MODELS.get(config.preset, DEFAULT_COST_MODEL)
        setup = cost.setup if learned.setup_seconds is None else learned.setup_seconds
        return Estimate(epoch_seconds=self.modelled_epoch_seconds(config, training_images) * learned.epoch_factor,
                        setup_seconds=setup, epochs=config.epochs, measured_runs=learned.runs)

    def record(self, config: TrainingConfig, training_images: int, reports: Sequence[EpochReport],
               run_seconds: float) -> None:
        """Learn from a run that ended: its epochs' seconds and the whole run's seconds."""
        complete = [report.seconds for report in reports if report.complete]
        if not complete:
            return
        steady = complete[1:] or complete  # the first epoch carries the one-off tracing
        observed_epoch = statistics.median(steady)
        factor = observed_epoch / max(self.modelled_epoch_seconds(config, training_images), 1e-9)
        setup = max(0.0, run_seconds - observed_epoch * len(reports)) if len(complete) >= 2 else None
        with self._lock:
            learned = self._learned.setdefault(config.preset, _Learned())
            if learned.runs == 0:
                learned.epoch_factor = factor
            else:
                learned.epoch_factor += LEARNING_WEIGHT * (factor - learned.epoch_factor)
            if setup is not None:
                learned.setup_seconds = setup if learned.setup_seconds is None else (
                    learned.setup_seconds + LEARNING_WEIGHT * (setup - learned.setup_seconds))
            learned.runs += 1


def remaining_seconds(total_epochs: int, reports: Sequence[EpochReport], current_epoch: int, fraction: float,
                      seconds_in_epoch: float, expected_epoch_seconds: float) -> float:
    """Seconds left in a running job, from its own epochs once it has them, else from the expectation.

    ``fraction`` is the share of the current epoch's training steps done; after 1.0 the epoch
    still validates, which the per-epoch seconds (measured end to end) include.
    """
    complete = [report.seconds for report in reports if report.complete]
    steady = complete[1:]
    if steady:
        epoch_seconds = statistics.fmean(steady[-3:])
    elif current_epoch >= 2 and fraction >= 0.3:
        # The pace of this epoch's steps, with validation priced as the expectation says.
        epoch_seconds = 0.5 * expected_epoch_seconds + 0.5 * seconds_in_epoch / fraction
    else:
        epoch_seconds = expected_epoch_seconds
    in_current = current_epoch > len(reports)
    remaining_now = max(epoch_seconds - seconds_in_epoch, 0.05 * epoch_seconds) if in_current else 0.0
    later = max(0, total_epochs - max(current_epoch, len(reports)))
    return remaining_now + later * epoch_seconds


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
