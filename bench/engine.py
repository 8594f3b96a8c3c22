"""Group ``engine``: our training engine against the textbook's plain ``model.fit``, side by side.

The plain path is the textbook code, line for line::

    x = dataset.x_train / 255 (reshaped for the model)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=42)
    keras.utils.set_random_seed(42)
    model = <the preset>
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=E, validation_data=(x_val, y_val))

with Keras defaults (batch 32, shuffle, progress bar; the bar is captured, not shown). The
engine path is ``fmnist.training.train(TrainingConfig(preset, epochs=E, sample_limit=...))``.
With a sample limit, the plain path keeps the first ``limit`` training items, as the engine does.

An epoch's seconds run from ``on_epoch_begin`` to ``on_epoch_end`` (training and validation) in
both paths. The first epoch includes tracing and compilation and is reported on its own; the
steady-state figure is the median of all later epochs over all rounds (``engine_speedup_<preset>``
is the ratio of those medians; ``engine_speedup_fastest_<preset>``, the ratio of the fastest
later epochs, shows what the two paths do when nothing else competes for the CPU, as
``timeit`` advises for noisy machines). Rounds alternate which
path goes first, and a tiny warm-up of both paths runs before any measurement, so neither path
pays the process's one-time start-up costs.

The group also measures what issues 8 and 12 ask of the engine:

- ``seed_five_epochs_s``: the reference run (seed preset, 5 epochs on 48,000 images) through
  ``train()``, from the call to the trained model (split, build, 5 epochs with validation; the
  dataset is already loaded) after ``fmnist.training.warm_up()``, as a user's first run in the
  app: the engine's compiled slot is reused, so no tracing or compilation is left in the run.
  The fastest of two runs (quick) or three (full), with its CPU seconds beside it.
  ``seed_five_epochs_compiling_s`` is the same run with a fresh slot, compilation included.
- ``concurrent_seed_max_abs_diff``: the seed preset with seed 42 trained alone, then again while
  an mlp run with seed 7 trains in another thread (both threads released together): the largest
  per-epoch metric difference. Per-run seeds make it 0.
- ``rss_growth_per_run_mb``: full-data runs one after another through ``fmnist.jobs.JobManager``
  in a fresh Python process that first calls ``fmnist.training.warm_up()`` as the app does, each
  job dropped after it ends; (RSS after the last run - RSS after run 6) /
  (runs - 6), VmRSS from ``/proc/self/status``. Quick: 10 seed-preset runs of one epoch; full:
  12 runs of one epoch each for seed and mlp (the largest growth is reported, per preset too).
  The leak this guards against kept each run's training images (about 47 MB) for good. A
  process of its own, because this one trains on its main thread for the comparisons, which the
  app never does (it trains every run, its warm-up included, in a thread of its own), and after
  that each later run keeps several MB (measured; not understood yet).
- ``cnn_engine_speedup``: ``engine_speedup_cnn`` under the name the issue uses, full mode only
  (on 5,000 training images and 12,000 validation images most of the gain was validation at
  batch 1,024 instead of plain ``fit``'s 32, 2.2x); on the full split the training steps dominate
  and the ratio is about 1.0: the steps are compute-bound. A profile (CPU ms per batch-32 step,
  issue 8 item 4): plain ``fit`` 12.6, Keras' own ``train_step`` in one ``tf.while_loop`` with
  no input pipeline at all 10.5, forward alone 3.5, the two convolutions' forward and backward
  about 10 of it; so no engine that keeps the arithmetic can beat plain ``fit`` by more than
  about 1.2x at batch 32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import math
import threading
import time

import numpy as np

from bench.measure import Settings, median, progress, rounded

METRIC_NAMES = ("loss", "accuracy", "val_loss", "val_accuracy")
KEYS = ("engine_speedup_seed", "seed_metrics_max_abs_diff", "peak_matmul_gflops", "seed_five_epochs_s",
        "concurrent_seed_max_abs_diff", "rss_growth_per_run_mb", "cnn_engine_speedup")
"""Keys this group always reports (per-preset keys are added for the presets it runs)."""


@dataclasses.dataclass(frozen=True)
class PresetPlan:
    """One preset's comparison: epochs per run, optional sample limit, and rounds of (plain, engine)."""

    preset: str
    epochs: int
    sample_limit: int | None
    rounds: int


def plans(settings: Settings) -> list[PresetPlan]:
    """Quick: seed on the full split. Full: seed, mlp and cnn on the full split. (On a few thousand
    images the cnn comparison measured mostly validation at batch 1,024 against 32, not the
    engine: a quick mode figure said 2.2x where the full split says 1.0x, so quick leaves it out.)"""
    if settings.quick:
        return [PresetPlan("seed", epochs=2, sample_limit=None, rounds=1)]
    return [PresetPlan("seed", epochs=3, sample_limit=None, rounds=3),
            PresetPlan("mlp", epochs=3, sample_limit=None, rounds=2),
            PresetPlan("cnn", epochs=2, sample_limit=None, rounds=1)]


@dataclasses.dataclass
class PathRun:
    """What one training run of one path measured."""

    epoch_seconds: list[float]
    history: dict[str, list[float]]
    total_seconds: float
    flops_per_sample: int
    training_samples: int


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds from ``on_epoch_begin`` to ``on_epoch_end``, as the engine's own reports measure."""

        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.epoch_started)

    return EpochTimer()


def run_plain(dataset, preset: str, epochs: int, sample_limit: int | None, seed: int = 42) -> PathRun:
    """The textbook code path (see the module docstring)."""
    import keras
    from sklearn.model_selection import train_test_split

    from fmnist import models

    input_shape = tuple(int(d) for d in models.build_model(preset).input_shape[1:])  # before seeding
    started = time.perf_counter()
    x = (dataset.x_train / 255).reshape((-1, *input_shape))
    x_train, x_val, y_train, y_val = train_test_split(x, dataset.y_train, test_size=0.2, random_state=seed)
    if sample_limit is not None:
        x_train, y_train = x_train[:sample_limit], y_train[:sample_limit]
    keras.utils.set_random_seed(seed)
    model = models.build_model(preset)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' default progress bar, kept off our stdout
        history = model.fit(x_train, y_train, epochs=epochs, validation_data=(x_val, y_val), callbacks=[timer])
    total = time.perf_counter() - started
    return PathRun(epoch_seconds=list(timer.seconds),
                   history={name: [float(v) for v in history.history[name]] for name in METRIC_NAMES},
                   total_seconds=total, flops_per_sample=models.flops_per_sample(model),
                   training_samples=len(x_train))


def run_engine(dataset, preset: str, epochs: int, sample_limit: int | None, seed: int = 42) -> PathRun:
    """``fmnist.training.train`` with the same preset, epochs, limit and seed."""
    from fmnist import models, training

    started = time.perf_counter()
    result = training.train(training.TrainingConfig(preset=preset, epochs=epochs, sample_limit=sample_limit,
                                                    seed=seed), dataset)
    total = time.perf_counter() - started
    return PathRun(epoch_seconds=[report.seconds for report in result.history],
                   history={name: [float(getattr(report, name)) for report in result.history]
                            for name in METRIC_NAMES},
                   total_seconds=total, flops_per_sample=models.flops_per_sample(result.model),
                   training_samples=len(result.split.train_indices))


def warm_up(dataset) -> None:
    """Pay the process's one-time costs (TensorFlow runtime, tf.data, XLA) before measuring."""
    from fmnist.data import FashionMnist

    small = FashionMnist(dataset.x_train[:1280], dataset.y_train[:1280], dataset.x_test[:10],
                         dataset.y_test[:10], source="warm-up", official_split=True)
    run_plain(small, "seed", epochs=1, sample_limit=None)
    run_engine(small, "seed", epochs=1, sample_limit=None)


def peak_matmul_gflops(size: int = 1024, repeats: int = 7) -> float:
    """What this CPU does at best: a float32 matrix product in TensorFlow, median of ``repeats``."""
    import tensorflow as tf

    generator = np.random.default_rng(0)
    left = tf.constant(generator.standard_normal((size, size), dtype=np.float32))
    right = tf.constant(generator.standard_normal((size, size), dtype=np.float32))
    tf.linalg.matmul(left, right).numpy()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        tf.linalg.matmul(left, right).numpy()
        seconds.append(time.perf_counter() - started)
    return 2 * size**3 / median(seconds) / 1e9


def max_abs_difference(first: dict[str, list[float]], second: dict[str, list[float]]) -> float:
    """Largest |a - b| over every metric and epoch that both histories have."""
    differences = [abs(a - b) for name in METRIC_NAMES for a, b in zip(first[name], second[name], strict=False)]
    return max(differences) if differences else math.nan


def compare(dataset, plan: PresetPlan, first_round_plain_first: bool, peak_gflops: float) -> dict[str, object]:
    """Run the plan's rounds, alternating order, and summarise one preset."""
    runs: dict[str, list[PathRun]] = {"plain": [], "engine": []}
    runners = {"plain": run_plain, "engine": run_engine}
    plain_first = first_round_plain_first
    for round_number in range(plan.rounds):
        order = ("plain", "engine") if plain_first else ("engine", "plain")
        for path in order:
            progress(f"engine: {plan.preset} round {round_number + 1}/{plan.rounds}: {path} "
                     f"({plan.epochs} epochs, {plan.sample_limit or 'all'} samples)")
            run = runners[path](dataset, plan.preset, plan.epochs, plan.sample_limit)
            progress(f"engine: {plan.preset} {path}: epochs " + ", ".join(f"{s:.3f}" for s in run.epoch_seconds)
                     + f" s (total {run.total_seconds:.1f} s)")
            runs[path].append(run)
        plain_first = not plain_first

    name = plan.preset
    metrics: dict[str, object] = {}
    steady: dict[str, float] = {}
    for path, path_runs in runs.items():
        steady[path] = median([s for run in path_runs for s in run.epoch_seconds[1:]])
        metrics[f"{path}_epoch_s_{name}"] = rounded(steady[path])
        metrics[f"{path}_first_epoch_s_{name}"] = rounded(median([run.epoch_seconds[0] for run in path_runs]))
        metrics[f"{path}_total_s_{name}"] = rounded(median([run.total_seconds for run in path_runs]), 3)
    reference = runs["engine"][0]
    flops_per_epoch = 3 * reference.flops_per_sample * reference.training_samples
    metrics[f"engine_speedup_{name}"] = rounded(steady["plain"] / steady["engine"], 3)
    fastest = {path: min(s for run in path_runs for s in run.epoch_seconds[1:]) for path, path_runs in runs.items()}
    metrics[f"engine_speedup_fastest_{name}"] = rounded(fastest["plain"] / fastest["engine"], 3)
    metrics[f"training_samples_{name}"] = reference.training_samples
    metrics[f"epochs_{name}"] = plan.epochs
    metrics[f"rounds_{name}"] = plan.rounds
    metrics[f"flops_per_epoch_{name}"] = flops_per_epoch
    metrics[f"floor_epoch_s_{name}"] = rounded(flops_per_epoch / (peak_gflops * 1e9), 5)
    for path in runs:
        metrics[f"{path}_gflops_{name}"] = rounded(flops_per_epoch / steady[path] / 1e9, 3)
    difference = max(max_abs_difference(plain.history, engine.history)
                     for plain, engine in zip(runs["plain"], runs["engine"], strict=True))
    key = "seed_metrics_max_abs_diff" if name == "seed" else f"metrics_max_abs_diff_{name}"
    metrics[key] = float(f"{difference:.3g}") if math.isfinite(difference) else None
    return metrics


def resident_mb() -> float:
    """This process's VmRSS from ``/proc/self/status``, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def seed_five_epochs(dataset, repeats: int) -> dict[str, object]:
    """The reference run through ``train()``: once with a fresh engine slot (tracing and XLA
    compilation inside the run), then ``repeats`` times as a user's run after the app's warm-up
    (``fmnist.training.warm_up``), fastest of those; CPU seconds beside each."""
    from fmnist import training

    def timed(label: str) -> tuple[float, float, float]:
        cpu_started = time.process_time()
        result = training.train(training.TrainingConfig(), dataset)
        cpu = time.process_time() - cpu_started
        progress(f"engine: seed, 5 epochs through train(), {label}: {result.seconds:.3f} s "
                 f"(CPU {cpu:.2f} s, first epoch {result.history[0].seconds:.3f} s)")
        return result.seconds, cpu, result.history[0].seconds

    training.clear_engine_slots()  # a fresh slot: this run traces and compiles its loop
    compiling = timed("compiling its engine")
    training.warm_up()
    warm = min(timed("after the app's warm-up") for _ in range(repeats))
    return {"seed_five_epochs_s": rounded(warm[0], 3), "seed_five_epochs_cpu_s": rounded(warm[1], 3),
            "seed_five_epochs_first_epoch_s": rounded(warm[2], 3),
            "seed_five_epochs_compiling_s": rounded(compiling[0], 3),
            "seed_five_epochs_compiling_cpu_s": rounded(compiling[1], 3),
            "seed_five_epochs_compiling_first_epoch_s": rounded(compiling[2], 3)}


def _history(result) -> dict[str, list[float]]:
    return {name: [float(getattr(report, name)) for report in result.history] for name in METRIC_NAMES}


def concurrent_seed_difference(dataset, epochs: int = 3, neighbour_limit: int = 10_000) -> dict[str, object]:
    """Seed preset (seed 42) alone, then beside an mlp run (seed 7) started at the same moment."""
    from fmnist import training

    config = training.TrainingConfig(epochs=epochs, seed=42)
    neighbour = training.TrainingConfig(preset="mlp", epochs=epochs, seed=7, sample_limit=neighbour_limit)
    solo = training.train(config, dataset)
    start = threading.Barrier(2)
    results = {}

    def run(name, run_config):
        start.wait()
        results[name] = training.train(run_config, dataset)
    threads = [threading.Thread(target=run, args=item) for item in (("seed", config), ("mlp", neighbour))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    difference = max_abs_difference(_history(solo), _history(results["seed"]))
    progress(f"engine: seed 42 alone vs beside an mlp run: largest metric difference {difference:.3g}")
    return {"concurrent_seed_max_abs_diff": float(f"{difference:.3g}")}


def memory_growth(preset: str, runs: int, baseline_run: int = 6) -> dict[str, object]:
    """RSS after each of ``runs`` one-epoch runs through a JobManager, in a fresh Python process
    that first warms up as the app does (see the module docstring)."""
    import json
    import subprocess
    import sys

    from bench.measure import REPOSITORY

    code = f"from bench.engine import memory_growth_here; memory_growth_here({preset!r}, {runs}, {baseline_run})"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
                               timeout=1200, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"the {preset} memory run failed: {completed.stderr.strip().splitlines()[-1:]}")
    metrics = json.loads(lines[-1])
    progress(f"engine: {preset}, RSS after each of {runs} runs: {metrics.pop('readings')} MB")
    return metrics


def memory_growth_here(preset: str, runs: int, baseline_run: int) -> None:
    """The child process of :func:`memory_growth`: prints one JSON line."""
    import json

    from fmnist import training
    from fmnist.data import load_dataset
    from fmnist.jobs import JobManager

    dataset = load_dataset()
    training.warm_up()
    manager = JobManager(max_concurrent=1)
    readings = []
    for _ in range(runs):
        job = manager.submit(training.TrainingConfig(preset=preset, epochs=1), dataset)
        job.wait()
        if job.result is None:
            raise RuntimeError(f"a {preset} run failed: {job.snapshot().error}")
        del job
        gc.collect()
        readings.append(resident_mb())
    growth = (readings[-1] - readings[baseline_run - 1]) / (runs - baseline_run)
    print(json.dumps({f"rss_after_run_1_mb_{preset}": rounded(readings[0], 1),
                      f"rss_after_run_{baseline_run}_mb_{preset}": rounded(readings[baseline_run - 1], 1),
                      f"rss_after_run_{runs}_mb_{preset}": rounded(readings[-1], 1),
                      f"rss_growth_per_run_mb_{preset}": rounded(growth, 2),
                      "readings": ", ".join(f"{value:.0f}" for value in readings)}), flush=True)


def profile_cnn_step(dataset, steps: int = 100) -> dict[str, object]:
    """Where a cnn training step's time goes at batch 32, in CPU ms per step (all threads):
    plain ``fit`` (no validation), Keras' own ``train_step`` run ``steps`` times inside one
    ``tf.while_loop`` on one resident batch (no input pipeline, no per-step dispatch: what no
    engine can beat without changing the arithmetic), and the forward pass alone."""
    import tensorflow as tf

    from fmnist import models

    count = steps * 32
    images = (dataset.x_train[:count] / 255).astype(np.float32).reshape(-1, 28, 28, 1)
    labels = dataset.y_train[:count].astype(np.int32)

    def cpu_ms_per_step(function) -> float:
        started = time.process_time()
        function()
        return (time.process_time() - started) / steps * 1000

    def compiled_model():
        model = models.build_model("cnn")
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    plain = compiled_model()
    plain.fit(images[:320], labels[:320], batch_size=32, epochs=1, verbose=0)
    plain_ms = cpu_ms_per_step(lambda: plain.fit(images, labels, batch_size=32, epochs=1, verbose=0))
    looped_model = compiled_model()
    batch_images, batch_labels = tf.constant(images[:32]), tf.constant(labels[:32])

    @tf.function
    def looped(batch_x, batch_y):
        def body(step):
            looped_model.train_step((batch_x, batch_y))
            return (step + 1,)
        tf.while_loop(lambda step: step < steps, body, (tf.constant(0),))

    looped(batch_images, batch_labels)
    loop_ms = cpu_ms_per_step(lambda: looped(batch_images, batch_labels))
    forward = tf.function(lambda batch_x: looped_model(batch_x, training=True))
    forward(batch_images)
    forward_ms = cpu_ms_per_step(lambda: [forward(batch_images) for _ in range(steps)])
    progress(f"engine: cnn step profile (CPU ms/step): plain fit {plain_ms:.2f}, train_step in one while loop "
             f"{loop_ms:.2f}, forward alone {forward_ms:.2f}")
    return {"cnn_step_cpu_ms_plain_fit": rounded(plain_ms, 3), "cnn_step_cpu_ms_while_loop": rounded(loop_ms, 3),
            "cnn_step_cpu_ms_forward": rounded(forward_ms, 3),
            "cnn_engine_speedup_bound": rounded(plain_ms / loop_ms, 3)}


def run(settings: Settings) -> dict[str, object]:
    """All presets of the plan; ``engine_speedup_<preset>`` is plain steady seconds / engine steady seconds."""
    from fmnist.data import load_dataset

    dataset = load_dataset()
    progress("engine: warming up both paths")
    warm_up(dataset)
    peak = peak_matmul_gflops()
    metrics: dict[str, object] = {"peak_matmul_gflops": rounded(peak, 2)}
    metrics.update(seed_five_epochs(dataset, repeats=2 if settings.quick else 3))
    for index, plan in enumerate(plans(settings)):
        metrics.update(compare(dataset, plan, first_round_plain_first=index % 2 == 0, peak_gflops=peak))
    if not settings.quick:
        metrics["cnn_engine_speedup"] = metrics.get("engine_speedup_cnn")
        metrics.update(profile_cnn_step(dataset))
    metrics.update(concurrent_seed_difference(dataset))
    growth_presets = ("seed",) if settings.quick else ("seed", "mlp")
    for preset in growth_presets:
        metrics.update(memory_growth(preset, runs=10 if settings.quick else 12))
    metrics["rss_growth_per_run_mb"] = max(metrics[f"rss_growth_per_run_mb_{preset}"] for preset in growth_presets)
    return metrics
