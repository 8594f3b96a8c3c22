"""Group ``drawings``: how well the recommended preset, trained with drawings, reads drawings.

- ``drawing_outline_accuracy`` / ``drawing_filled_accuracy``: top-1 accuracy on the project's
  own drawing set (:mod:`fmnist.drawings`: 50 test items per class redrawn on a 280 × 280
  canvas as outlines and as coloured-in silhouettes, prepared exactly like canvas drawings),
  with the probabilities Try it and Evaluate show (mirror-averaged for models that learned mirror images).
- ``drawing_test_accuracy``: the same model on the whole test set.
- ``drawing_training_s``: its training time, wall clock.
- ``drawing_outline_accuracy_mean`` / ``drawing_filled_accuracy_mean``: in full mode, the mean over
  every seed the strong group trained at the preset's defaults (42, 1 and 2), each seed's beside it.
  When present, the 0.80 targets judge these means (``bench.report.Target.judged_by``), not seed 42 alone.

The model is ``TrainingConfig(preset=RECOMMENDED_PRESET)`` at its defaults (drawings on by the
preset's default): the one the strong group trained in the same run (seed 42, all the data),
else trained here, in ``--quick`` mode on the first 8,000 training images only (lower numbers);
``drawing_sample_limit`` says which it was.
"""

from __future__ import annotations

import time

import numpy as np

from bench.measure import Settings, progress, rounded

KEYS = ("drawing_outline_accuracy", "drawing_filled_accuracy", "drawing_test_accuracy", "drawing_training_s")
QUICK_SAMPLE_LIMIT = 8000


def run(settings: Settings) -> dict[str, object]:
    from fmnist import drawings, models, training
    from fmnist.data import load_dataset

    dataset = load_dataset()
    progress("drawings: drawing the test set (cached after the first run)")
    drawing_set = drawings.standard_drawing_set(dataset)
    from bench import strong

    full = training.TrainingConfig(preset=models.RECOMMENDED_PRESET, seed=settings.seed)
    trained = strong.TRAINED.get((full.preset, full.seed, full.uses_drawings))
    if trained is not None:  # the strong group trained exactly this model in this run
        config = full
        model, seconds = trained
        progress(f"drawings: scoring the strong group's {config.describe()}")
    else:
        config = training.TrainingConfig(preset=models.RECOMMENDED_PRESET, seed=settings.seed,
                                         sample_limit=QUICK_SAMPLE_LIMIT if settings.quick else None)
        progress(f"drawings: training {config.describe()}")
        started = time.perf_counter()
        model = training.train(config, dataset).model
        seconds = time.perf_counter() - started
    reports = drawings.evaluate_drawings(model, drawing_set)
    test_predictions = drawings.predict_drawings(model, dataset.x_test).argmax(axis=1)
    # Every seed the strong group trained at these settings (three in full mode): the mean beside seed 42's.
    per_seed = {} if trained is None else {
        seed: reports if trained_model is model else drawings.evaluate_drawings(trained_model, drawing_set)
        for (preset, seed, uses), (trained_model, _) in strong.TRAINED.items()
        if preset == config.preset and uses == config.uses_drawings}
    seeds_metrics = {}
    if len(per_seed) > 1:
        seeds_metrics = {
            "drawing_seeds": sorted(per_seed),
            "drawing_outline_accuracy_mean": rounded(float(np.mean([r["outline"].accuracy for r in per_seed.values()]))),
            "drawing_filled_accuracy_mean": rounded(float(np.mean([r["silhouette"].accuracy
                                                                   for r in per_seed.values()]))),
            "drawing_outline_accuracies": [rounded(per_seed[seed]["outline"].accuracy) for seed in sorted(per_seed)],
            "drawing_filled_accuracies": [rounded(per_seed[seed]["silhouette"].accuracy) for seed in sorted(per_seed)],
        }
        progress("drawings: " + ", ".join(f"seed {seed}: outlines {per_seed[seed]['outline'].accuracy:.3f}, "
                                          f"silhouettes {per_seed[seed]['silhouette'].accuracy:.3f}"
                                          for seed in sorted(per_seed)))
    return {
        **seeds_metrics,
        "drawing_outline_accuracy": rounded(reports["outline"].accuracy),
        "drawing_filled_accuracy": rounded(reports["silhouette"].accuracy),
        "drawing_test_accuracy": rounded(float(np.mean(test_predictions == dataset.y_test))),
        "drawing_training_s": rounded(seconds, 1),
        "drawing_preset": config.preset,
        "drawing_uses_drawings": config.uses_drawings,
        "drawing_sample_limit": config.sample_limit,
        "drawing_set_size": int(len(drawing_set.labels)),
    }
