"""Estimate against actual run time, through the JobManager that learns from each run: ``python -m bench.estimates``.

Per preset, a few runs one after another; each line is JSON with the estimate the run started
with (``learned_from``: how many earlier runs of the preset it had learned from), the actual
seconds, and how the ETA behaved after the first epoch (largest relative error while at least an
epoch and 2 s were left, largest ratio between a reading and the previous one counted down).
Run it on a quiet machine.
"""

import gc
import json
import time

from fmnist import data, drawings, jobs, training
from fmnist.training import TrainingConfig

PLAN = [
 ("seed", [dict(epochs=5), dict(epochs=50), dict(epochs=5, batch_size=512, loss="mean_squared_error", validation_fraction=0.5)]),
 ("mlp", [dict(epochs=3, sample_limit=5000), dict(epochs=10, sample_limit=5000), dict(epochs=3)]),
 ("cnn", [dict(epochs=2, sample_limit=3000), dict(epochs=3, sample_limit=5000)]),
 ("minute-cnn", [dict(epochs=2, sample_limit=5000), dict(epochs=3, sample_limit=10000, drawings=False), dict()]),
]


MIN_HORIZON_SECONDS = 2.0


def main() -> None:
    dataset = data.load_dataset()
    drawings.training_drawings(dataset)  # as the server does when it starts (views/server.py)
    training.warm_up()
    # As the server does after its warm-up (views/server.py): without it, each job's final
    # collection walks TensorFlow's million long-lived objects (0.5-4.6 s here), which the server
    # never pays, and the bench's short runs measured that instead of the ETA.
    gc.collect()
    gc.freeze()
    manager = jobs.JobManager(max_concurrent=1, abandon_after_seconds=10**6)
    for preset, cases in PLAN:
        for case in cases:
            measure(manager, dataset, TrainingConfig(preset=preset, **case), case)


def measure(manager: jobs.JobManager, dataset: data.FashionMnist, config: TrainingConfig, case: dict) -> None:
    """One run: print its estimate, its actual seconds and its ETA readings' worst error and jump."""
    job = manager.submit(config, dataset)
    estimate = job.estimate
    started, cpu_started = time.monotonic(), time.process_time()
    readings = []  # (seconds since start, ETA, complete epochs)
    while not job.wait(0.5):
        snapshot = job.snapshot()
        if snapshot.eta is not None:
            readings.append((time.monotonic() - started, snapshot.eta, sum(r.complete for r in snapshot.epochs)))
    actual = time.monotonic() - started
    steady = sorted(report.seconds for report in job.result.history[1:]) if job.result else []
    horizon = max(steady[len(steady) // 2] if steady else 0.0, MIN_HORIZON_SECONDS)
    # After the first epoch, while at least one more epoch (and MIN_HORIZON_SECONDS) of work is left:
    # nearer the end a relative error says little.
    errors = [abs(eta - (actual - at)) / (actual - at) for at, eta, done in readings
              if done >= 1 and actual - at >= horizon]
    # A jump: how far a reading is from the previous one counted down by the time in between.
    counted_down = [(earlier - (then - before), later) for (before, earlier, _), (then, later, _)
                    in zip(readings, readings[1:], strict=False)]
    jumps = [max(later / expected, expected / later) for expected, later in counted_down
             if expected > 0.5 and later > 0.5]
    print(json.dumps({"preset": config.preset, "case": case, "learned_from": estimate.measured_runs,
                      "estimate_s": round(estimate.total_seconds, 2), "actual_s": round(actual, 2),
                      "ratio": round(estimate.total_seconds / actual, 2),
                      "cpu_s": round(time.process_time() - cpu_started, 2),
                      "eta_max_error_after_epoch_1": round(max(errors), 2) if errors else None,
                      "eta_max_jump": round(max(jumps), 2) if jumps else None}), flush=True)


if __name__ == "__main__":
    main()
