"""Group ``data``: dataset load from a warm cache, one upload's prepare + predict, and the why panel.

- ``cache_load_s``: ``fmnist.data.load_dataset()`` with the cache already on disk and in the
  page cache (one untimed load first), median of 5.
- ``predict_p50_ms`` / ``predict_p95_ms``: for each of 200 generated pictures (PNG and JPEG,
  up to about 1,500 pixels a side, see :mod:`bench.pictures`), the time of
  ``prepare_image(file bytes)`` plus ``predict_probabilities(model, [prepared.array])`` with a
  seed model trained by the engine on 5,000 images. Decoding is part of ``prepare_image``;
  drawing and encoding the pictures is not timed. Three pictures run untimed first; the very
  first call is reported on its own as ``predict_first_ms``.
- ``occlusion_p95_ms``: Try it's "why" panel, ``fmnist.explain.occlusion_saliency`` (one model
  call of 170 images) for the recommended preset's untrained network (the arithmetic is the same
  trained or not), on 50 test images after 3 untimed calls; p50 and max beside it.
"""

from __future__ import annotations

import time

from bench import pictures
from bench.measure import Settings, median, percentile, progress, rounded

KEYS = ("cache_load_s", "predict_p50_ms", "predict_p95_ms", "occlusion_p95_ms")
PICTURE_COUNT = 200
LOAD_REPEATS = 5
WARM_UP_PICTURES = 3
OCCLUSION_IMAGES = 50


def measure_cache_load() -> dict[str, object]:
    from fmnist.data import load_dataset

    load_dataset()  # warms the page cache, and builds the cache if it is missing
    seconds = []
    for _ in range(LOAD_REPEATS):
        started = time.perf_counter()
        load_dataset()
        seconds.append(time.perf_counter() - started)
    return {"cache_load_s": rounded(median(seconds)), "cache_load_max_s": rounded(max(seconds))}


def measure_prediction(settings: Settings) -> dict[str, object]:
    from fmnist import evaluation, training
    from fmnist.data import load_dataset
    from fmnist.preprocess import ImageError, prepare_image

    progress(f"data: drawing {PICTURE_COUNT} pictures")
    uploads = pictures.make_pictures(PICTURE_COUNT + WARM_UP_PICTURES, seed=settings.seed)
    progress("data: training a seed model on 5,000 images")
    model = training.train(training.TrainingConfig(preset="seed", epochs=2, sample_limit=5000),
                           load_dataset()).model

    def prepare_and_predict(payload: bytes) -> tuple[float, float] | None:
        started = time.perf_counter()
        try:
            prepared = prepare_image(payload)
        except ImageError:
            return None
        prepared_at = time.perf_counter()
        evaluation.predict_probabilities(model, prepared.array[None])
        finished = time.perf_counter()
        return (prepared_at - started) * 1000, (finished - prepared_at) * 1000

    first_started = time.perf_counter()
    prepare_and_predict(uploads[0][1])
    first_ms = (time.perf_counter() - first_started) * 1000
    for _, payload in uploads[1:WARM_UP_PICTURES]:
        prepare_and_predict(payload)

    totals, prepares, predicts = [], [], []
    rejected = 0
    for _, payload in uploads[WARM_UP_PICTURES:]:
        timing = prepare_and_predict(payload)
        if timing is None:
            rejected += 1
            continue
        prepares.append(timing[0])
        predicts.append(timing[1])
        totals.append(timing[0] + timing[1])
    return {
        "predict_p50_ms": rounded(percentile(totals, 0.5), 2),
        "predict_p95_ms": rounded(percentile(totals, 0.95), 2),
        "predict_max_ms": rounded(max(totals) if totals else None, 2),
        "prepare_p95_ms": rounded(percentile(prepares, 0.95), 2),
        "model_p95_ms": rounded(percentile(predicts, 0.95), 2),
        "predict_first_ms": rounded(first_ms, 1),
        "predict_images": len(totals),
        "predict_rejected": rejected,
    }


def measure_occlusion() -> dict[str, object]:
    from fmnist import explain, models
    from fmnist.data import load_dataset

    model = models.build_model(models.RECOMMENDED_PRESET)
    images = load_dataset().x_test[:OCCLUSION_IMAGES + WARM_UP_PICTURES]
    for image in images[:WARM_UP_PICTURES]:
        explain.occlusion_saliency(model, image)
    milliseconds = []
    for image in images[WARM_UP_PICTURES:]:
        started = time.perf_counter()
        explain.occlusion_saliency(model, image)
        milliseconds.append((time.perf_counter() - started) * 1000)
    return {"occlusion_p50_ms": rounded(percentile(milliseconds, 0.5), 1),
            "occlusion_p95_ms": rounded(percentile(milliseconds, 0.95), 1),
            "occlusion_max_ms": rounded(max(milliseconds), 1)}


def run(settings: Settings) -> dict[str, object]:
    metrics = measure_cache_load()
    metrics.update(measure_prediction(settings))
    progress("data: occlusion saliency of the recommended preset")
    metrics.update(measure_occlusion())
    return metrics
