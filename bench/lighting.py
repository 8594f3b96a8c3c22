"""Uneven lighting in photos: accuracy on real test items photographed with light falling off.

``python -m bench.lighting [--items N] [--epochs E]`` trains the mlp preset on the real
training data, renders the first ``N`` real test items as product-style photos (a dark item on
white, enlarged to 280 pixels with a white margin, JPEG-encoded) with the light falling off
linearly from left to right by 0, 10, 20 and 30%, and prints the accuracy of
``prepare_image`` + the model at each falloff, then one JSON line. The same items are used at
every falloff, so the differences are paired, not sampling noise.

It also prints the accuracy on evenly lit uploads of other kinds (``PLAIN_STYLES``), to show
that modelling the lighting costs nothing where there is none. ``falloff_accuracies`` and
``plain_accuracies`` are what the integration test in
``tests/fmnist/test_preprocess_background.py`` asserts on.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

FALLOFFS_PERCENT = (0, 10, 20, 30)
PHOTO_SIZE = 280
PHOTO_MARGIN = 0.1
"""White margin on each side, as a fraction of the photo: product photos show the item whole."""
JPEG_QUALITY = 90
PLAIN_STYLES = ("product-jpeg", "negative-png", "grey-paper-jpeg", "small-png")
"""Evenly lit uploads: the product photo; the item as Fashion-MNIST shows it (light on black),
enlarged, as PNG; a dark item on grey paper with sensor noise, as JPEG; the item at 56 pixels."""


def product_photo(item: np.ndarray, falloff_percent: float = 0.0, size: int = PHOTO_SIZE,
                  quality: int = JPEG_QUALITY) -> bytes:
    """A Fashion-MNIST item (uint8 28 x 28, light on black) as a product-style JPEG.

    The item is negated (dark on white, as it was photographed), enlarged with bicubic
    resampling to fill the photo less a white margin, and lit by light that falls off
    linearly from 100% at the left edge to ``100 - falloff_percent``% at the right edge:
    background and item alike, as a lamp on one side would light them.
    """
    if not 0 <= falloff_percent < 100:
        raise ValueError(f"The falloff must lie in [0, 100), not {falloff_percent}.")
    inner = round(size * (1 - 2 * PHOTO_MARGIN))
    enlarged = Image.fromarray(255 - np.asarray(item, dtype=np.uint8)).resize((inner, inner), Image.Resampling.BICUBIC)
    canvas = np.full((size, size), 255.0)
    offset = (size - inner) // 2
    canvas[offset:offset + inner, offset:offset + inner] = np.asarray(enlarged, dtype=np.float64)
    light = 1.0 - (falloff_percent / 100) * np.linspace(0.0, 1.0, size)[None, :]
    lit = np.clip(np.round(canvas * light), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(lit).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def plain_upload(item: np.ndarray, style: str, index: int = 0) -> bytes:
    """An evenly lit upload of one item in one of ``PLAIN_STYLES`` (``index`` seeds its noise)."""
    item = np.asarray(item, dtype=np.uint8)
    buffer = io.BytesIO()
    if style == "product-jpeg":
        return product_photo(item)
    if style == "negative-png":
        Image.fromarray(item).resize((PHOTO_SIZE, PHOTO_SIZE), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    elif style == "grey-paper-jpeg":
        photo = np.asarray(Image.open(io.BytesIO(product_photo(item))).convert("L"), dtype=np.float64)
        noise = np.random.default_rng(index).normal(0.0, 4.0, size=photo.shape)
        paper = np.clip(photo * 0.8 + noise, 0, 255).astype(np.uint8)
        Image.fromarray(paper).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    elif style == "small-png":
        Image.fromarray(255 - item).resize((56, 56), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    else:
        raise ValueError(f"Unknown style {style!r}; choose one of {', '.join(PLAIN_STYLES)}.")
    return buffer.getvalue()


def upload_accuracy(model, labels: np.ndarray, uploads: Sequence[bytes]) -> float:
    """Accuracy of ``prepare_image`` + ``model`` on these uploads; a refused upload counts as wrong."""
    from fmnist import evaluation
    from fmnist.preprocess import ImageError, prepare_image

    prepared = np.zeros((len(uploads), 28, 28), dtype=np.float32)
    usable = np.ones(len(uploads), dtype=bool)
    for index, upload in enumerate(uploads):
        try:
            prepared[index] = prepare_image(upload).array
        except ImageError:
            usable[index] = False
    predictions = evaluation.predict_probabilities(model, prepared).argmax(axis=1)
    return float(np.mean((predictions == np.asarray(labels)) & usable))


def falloff_accuracies(model, images: np.ndarray, labels: np.ndarray,
                       falloffs_percent: Sequence[float] = FALLOFFS_PERCENT) -> dict[float, float]:
    """Accuracy at each falloff, on the same items."""
    return {falloff: upload_accuracy(model, labels, [product_photo(item, falloff) for item in images])
            for falloff in falloffs_percent}


def plain_accuracies(model, images: np.ndarray, labels: np.ndarray,
                     styles: Sequence[str] = PLAIN_STYLES) -> dict[str, float]:
    """Accuracy on evenly lit uploads of each style, on the same items."""
    return {style: upload_accuracy(model, labels, [plain_upload(item, style, index) for index, item in enumerate(images)])
            for style in styles}


def train_mlp(epochs: int = 3, seed: int = 42):
    """The mlp preset trained on the real training data (the cache, or the usual sources)."""
    from fmnist import data, training

    dataset = data.load_dataset()
    return training.train(training.TrainingConfig(preset="mlp", epochs=epochs, seed=seed), dataset).model, dataset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lighting", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000, help="how many test items to photograph (default 2000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of mlp training (default 3)")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"training the mlp preset for {arguments.epochs} epochs", file=sys.stderr, flush=True)
    model, dataset = train_mlp(arguments.epochs)
    images, labels = dataset.x_test[:arguments.items], dataset.y_test[:arguments.items]
    from fmnist import evaluation

    plain = float(np.mean(evaluation.predict_probabilities(model, images).argmax(axis=1) == labels))
    accuracies = falloff_accuracies(model, images, labels)
    print(f"{len(images)} test items; the model on the 28 x 28 items themselves: {plain:.3f}")
    print("| falloff | " + " | ".join(f"{falloff}%" for falloff in accuracies) + " |")
    print("|---|" + "---|" * len(accuracies))
    print("| accuracy | " + " | ".join(f"{accuracy:.3f}" for accuracy in accuracies.values()) + " |")
    plain_styles = plain_accuracies(model, images, labels)
    print("| evenly lit upload | " + " | ".join(plain_styles) + " |")
    print("|---|" + "---|" * len(plain_styles))
    print("| accuracy | " + " | ".join(f"{accuracy:.3f}" for accuracy in plain_styles.values()) + " |")
    print(json.dumps({"items": len(images), "epochs": arguments.epochs, "test_items_accuracy": round(plain, 4),
                      "photo_accuracy": {f"{falloff}%": round(accuracy, 4) for falloff, accuracy in accuracies.items()},
                      "plain_upload_accuracy": {style: round(accuracy, 4) for style, accuracy in plain_styles.items()},
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
