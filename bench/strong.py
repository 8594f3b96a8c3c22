"""Group ``strong``: the recommended preset at its own defaults, on the real data, timed and scored.

Each run is a ``fmnist.jobs`` training job (the pages' path into ``fmnist.training.train``) of
``TrainingConfig(preset=RECOMMENDED_PRESET, seed=s)``:
the preset's default epochs, batch size, optimizer, learning-rate schedule and loss. Its seconds
are the training call's wall time (the data is loaded and TensorFlow imported before; the first
epoch's tracing and compilation are inside), its accuracy is on the 10,000 test images, predicted as Evaluate predicts them (mirror-averaged: the preset learns mirror images).
``strong_model_seconds`` and ``strong_model_test_accuracy`` are medians over the runs: one run
(seed 42) in quick mode, three seeds in full mode; ``strong_model_drawings`` says whether the
preset's default learns from drawings (then the time target is 75 s instead of 60 s). In full
mode the same seeds are trained again without drawings (``*_without_drawings``, and the
option's cost in test accuracy and time). The drawings group scores the models trained here.

Beside them: the process CPU seconds of each run (on a shared machine, CPU seconds divided by
the threads TensorFlow uses estimate the quiet wall time), the FLOPs per image, the GFLOP/s the
training achieved and their share of this CPU's float32 and bfloat16 matmul peaks (measured in
this process, just before), how far the job's ETA was off once the first epoch was done
(polled four times a second, as a page would, while at least an epoch of work was left), and
the longest wait between two live points of the within-epoch training curve.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import numpy as np

from bench.measure import Settings, median, progress, rounded

KEYS = ("strong_model_seconds", "strong_model_test_accuracy")
"""Keys this group always reports (the rest are details beside them)."""

FULL_SEEDS = (42, 1, 2)
TRAINED: dict[tuple[str, int, bool], tuple[object, float]] = {}
"""(preset, seed, uses drawings) -> (trained model, training seconds) of this process's runs: the
drawings group scores the same model instead of training it again."""


def peak_matmul_gflops(dtype: str, size: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """A large square matrix product in TensorFlow in ``dtype``: this CPU's best, as GFLOP per
    wall second (median of ``repeats``) and per CPU second (which a busy machine disturbs less)."""
    import tensorflow as tf

    generator = np.random.default_rng(0)
    left = tf.cast(tf.constant(generator.standard_normal((size, size), dtype=np.float32)), dtype)
    right = tf.cast(tf.constant(generator.standard_normal((size, size), dtype=np.float32)), dtype)
    tf.linalg.matmul(left, right).numpy()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        tf.linalg.matmul(left, right).numpy()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    return 2 * size**3 / median(seconds) / 1e9, 2 * size**3 / median(cpu_seconds) / 1e9


def eta_errors(samples: list[tuple[float, float | None, int]], finished_at: float,
               steady_epoch_seconds: float) -> list[float]:
    """|ETA − truth| / truth for every sample ``(time, eta, epochs done)`` taken after the first
    epoch and while at least one more epoch of work was left (nearer the end the ratio says little)."""
    return [error for error, _ in _judged_etas(samples, finished_at, steady_epoch_seconds)]


def worst_eta(samples: list[tuple[float, float | None, int]], finished_at: float,
              steady_epoch_seconds: float, started_at: float,
              epoch_seconds: list[float] | None = None) -> dict[str, float] | None:
    """Where the worst ETA reading of :func:`eta_errors` was taken (seconds into the run, epochs
    done), what it said and the truth: whether the ETA misjudged or the machine changed pace.

    With the run's ``epoch_seconds``: the median epoch the reading could know (the epochs done,
    after the first unless it is the only one) and the median of the epochs still to come, and
    their ratio. The same work each epoch, so a ratio far from 1 is the machine changing pace
    after the reading, which no ETA made from the run's past can foresee."""
    judged = _judged_etas(samples, finished_at, steady_epoch_seconds)
    if not judged:
        return None
    error, (moment, eta, epochs_done) = max(judged, key=lambda pair: pair[0])
    worst = {"error": round(error, 3), "at_s": round(moment - started_at, 1), "epochs_done": epochs_done,
             "eta_s": round(eta, 1), "remaining_s": round(finished_at - moment, 1)}
    if epoch_seconds and 0 < epochs_done < len(epoch_seconds):
        known = epoch_seconds[1:epochs_done] or epoch_seconds[:1]
        before, after = median(known), median(epoch_seconds[epochs_done:])
        worst |= {"epoch_s_before": round(before, 2), "epoch_s_after": round(after, 2),
                  "pace_change": round(after / before, 3)}
    return worst


def _judged_etas(samples, finished_at: float, steady_epoch_seconds: float) -> list[tuple[float, tuple]]:
    judged = []
    for sample in samples:
        moment, eta, epochs_done = sample
        remaining = finished_at - moment
        if eta is not None and epochs_done >= 1 and remaining >= steady_epoch_seconds:
            judged.append((abs(eta - remaining) / remaining, sample))
    return judged


def run_once(dataset, preset: str, seed: int, poll_seconds: float = 0.25,
             drawings: bool | None = None) -> dict[str, object]:
    """One training run at the preset's defaults (``drawings`` None: its default too), as the pages
    run it (a job, polled for its ETA and live points), with its test accuracy."""
    from fmnist import evaluation, jobs, models, training

    config = training.TrainingConfig(preset=preset, seed=seed, drawings=drawings)
    manager = jobs.JobManager(max_concurrent=1, abandon_after_seconds=3600)
    cpu_started = time.process_time()
    started_at = time.perf_counter()
    job = manager.submit(config, dataset)
    samples: list[tuple[float, float | None, int]] = []
    point_times: list[float] = []
    seen_points = 0
    while not job.wait(poll_seconds):
        job.heartbeat()
        snapshot = job.snapshot()
        now = time.perf_counter()
        samples.append((now, snapshot.eta_seconds(), len(snapshot.epochs)))
        point_times += [now] * (len(snapshot.points) - seen_points)
        seen_points = len(snapshot.points)
    finished_at = time.perf_counter()
    cpu_seconds = time.process_time() - cpu_started
    if job.result is None:
        raise RuntimeError(f"the {preset} job ended without a result: {job.snapshot().error}")
    result = job.result
    TRAINED[(preset, seed, config.uses_drawings)] = (result.model, result.seconds)
    epoch_seconds = [report.seconds for report in result.history]
    probabilities = evaluation.predict_probabilities(result.model, dataset.x_test)
    accuracy = float((probabilities.argmax(axis=1) == dataset.y_test).mean())
    gaps = np.diff(point_times) if len(point_times) > 1 else np.array([math.nan])
    longest = int(np.argmax(gaps)) if len(point_times) > 1 else 0
    gap_before = job.snapshot().points[longest + 1] if len(point_times) > 1 else None
    errors = eta_errors(samples, finished_at, median(epoch_seconds[1:]))
    return {"seed": seed, "seconds": result.seconds, "cpu_seconds": cpu_seconds, "test_accuracy": accuracy,
            "epoch_seconds": epoch_seconds, "training_samples": len(result.split.train_indices),
            "epochs": config.epochs, "flops_per_sample": models.flops_per_sample(result.model),
            "point_gap_max_s": float(np.max(gaps)), "points": seen_points,
            "point_gap_max_at": round(gap_before.position, 3) if gap_before else None,
            "eta_error_max": max(errors) if errors else math.nan,
            "eta_error_median": median(errors),
            "eta_worst": worst_eta(samples, finished_at, median(epoch_seconds[1:]), started_at,
                                   epoch_seconds)}


def run(settings: Settings) -> dict[str, object]:
    """The recommended preset: one run (quick) or three seeds (full); medians of seconds and accuracy."""
    import tensorflow as tf

    from fmnist import models, training
    from fmnist.data import load_dataset

    dataset = load_dataset()
    preset = models.RECOMMENDED_PRESET
    peak_float32, peak_float32_per_cpu = peak_matmul_gflops("float32")
    peak_bfloat16, peak_bfloat16_per_cpu = peak_matmul_gflops("bfloat16")
    seeds = (settings.seed,) if settings.quick else FULL_SEEDS
    runs = []
    for seed in seeds:
        progress(f"strong: {preset} at its defaults, seed {seed}")
        outcome = run_once(dataset, preset, seed)
        progress(f"strong: seed {seed}: test accuracy {outcome['test_accuracy']:.4f}, "
                 f"{outcome['seconds']:.1f} s wall, {outcome['cpu_seconds']:.1f} s CPU; epochs "
                 + ", ".join(f"{s:.1f}" for s in outcome["epoch_seconds"]))  # type: ignore[union-attr]
        runs.append(outcome)

    reference = runs[0]
    training_flops = 3 * reference["flops_per_sample"] * reference["training_samples"] * reference["epochs"]
    seconds = median([run["seconds"] for run in runs])
    steady_epoch = median([s for run in runs for s in run["epoch_seconds"][1:]])
    threads = tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))
    gflops = training_flops / seconds / 1e9
    gflops_per_cpu = training_flops / median([run["cpu_seconds"] for run in runs]) / 1e9
    metrics: dict[str, object] = {}
    uses_drawings = training.TrainingConfig(preset=preset).uses_drawings
    if uses_drawings and not settings.quick:
        # The same seeds without the drawing option: its cost in time and test accuracy (issues 7, 8).
        plain_runs = []
        for seed in seeds:
            progress(f"strong: {preset} without drawings, seed {seed}")
            outcome = run_once(dataset, preset, seed, drawings=False)
            progress(f"strong: seed {seed} without drawings: test accuracy {outcome['test_accuracy']:.4f}, "
                     f"{outcome['seconds']:.1f} s wall, {outcome['cpu_seconds']:.1f} s CPU")
            plain_runs.append(outcome)
        plain_accuracy = statistics.fmean(run["test_accuracy"] for run in plain_runs)
        metrics = {
            "strong_model_seconds_without_drawings": rounded(median([run["seconds"] for run in plain_runs]), 2),
            "strong_model_test_accuracy_without_drawings": rounded(plain_accuracy, 4),
            "strong_model_drawing_accuracy_cost": rounded(
                plain_accuracy - statistics.fmean(run["test_accuracy"] for run in runs), 4),
            "strong_model_drawing_time_ratio": rounded(
                median([run["seconds"] for run in runs]) / median([run["seconds"] for run in plain_runs]), 3),
            "strong_model_drawing_cpu_ratio": rounded(
                median([run["cpu_seconds"] for run in runs]) / median([run["cpu_seconds"] for run in plain_runs]), 3),
        }
    return {
        **metrics,
        "strong_model_preset": preset,
        "strong_model_drawings": uses_drawings,
        "strong_model_seconds": rounded(seconds, 2),
        "strong_model_test_accuracy": rounded(median([run["test_accuracy"] for run in runs]), 4),
        "strong_model_test_accuracy_mean": rounded(statistics.fmean(run["test_accuracy"] for run in runs), 4),
        "strong_model_test_accuracies": [rounded(run["test_accuracy"], 4) for run in runs],
        "strong_model_run_seconds": [rounded(run["seconds"], 1) for run in runs],
        "strong_model_cpu_seconds": [rounded(run["cpu_seconds"], 1) for run in runs],
        "strong_model_quiet_seconds_estimate": rounded(median([run["cpu_seconds"] for run in runs]) / threads, 1),
        "strong_model_first_epoch_s": rounded(median([run["epoch_seconds"][0] for run in runs]), 2),
        "strong_model_epoch_s": rounded(steady_epoch, 2),
        "strong_model_eta_error_max": rounded(max(run["eta_error_max"] for run in runs), 3),
        "strong_model_eta_error_median": rounded(median([run["eta_error_median"] for run in runs]), 3),
        "strong_model_eta_worst": max(runs, key=lambda run: run["eta_error_max"])["eta_worst"],
        "strong_model_point_gap_max_s": rounded(max(run["point_gap_max_s"] for run in runs), 2),
        "strong_model_point_gap_max_at": max(runs, key=lambda run: run["point_gap_max_s"])["point_gap_max_at"],
        "strong_model_flops_per_sample": reference["flops_per_sample"],
        "strong_model_gflops": rounded(gflops, 1),
        "peak_matmul_gflops_float32": rounded(peak_float32, 1),
        "peak_matmul_gflops_bfloat16": rounded(peak_bfloat16, 1),
        "strong_model_peak_share_float32": rounded(gflops / peak_float32, 3),
        "strong_model_peak_share_bfloat16": rounded(gflops / peak_bfloat16, 3),
        "strong_model_gflops_per_cpu_s": rounded(gflops_per_cpu, 1),
        "peak_matmul_gflops_per_cpu_s_float32": rounded(peak_float32_per_cpu, 1),
        "peak_matmul_gflops_per_cpu_s_bfloat16": rounded(peak_bfloat16_per_cpu, 1),
        "strong_model_cpu_peak_share_float32": rounded(gflops_per_cpu / peak_float32_per_cpu, 3),
        "strong_model_cpu_peak_share_bfloat16": rounded(gflops_per_cpu / peak_bfloat16_per_cpu, 3),
    }
