"""Why the model said what it said: which pixels decided, and which training images it finds alike.

Arrays in, arrays out: the pages draw them. Occlusion saliency covers the 28 × 28 view with a
small dark patch at each position, in one batch, and measures how much the predicted class's
probability drops; the nearest neighbours live in the model's own feature space, the input of
its last layer, indexed once per model with scikit-learn's ``NearestNeighbors``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fmnist import baseline
from fmnist.training import scale_images

if TYPE_CHECKING:
    import keras
    from sklearn.neighbors import NearestNeighbors

OCCLUSION_PATCH = 4
"""Side of the dark square moved over the image, in pixels."""

OCCLUSION_STRIDE = 2
"""Step between two patch positions: 13 × 13 positions, one model call of 169 images."""

NEIGHBOURS = 5

INDEX_LIMIT = 20_000
"""At most this many training images are indexed (the first ones of the run's training set):
features for 20,000 images take a few seconds for the CNN presets."""


def occlusion_saliency(model: keras.Model, image: np.ndarray, label: int | None = None,
                       patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE) -> np.ndarray:
    """How much each pixel matters for class ``label`` (default: the predicted class), in [0, 1].

    Every pixel gets the mean drop in the class's probability over the patches covering it;
    increases count as zero. The map is scaled so its largest value is 1 (all zero when no
    patch lowers the probability).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (28, 28):
        raise ValueError(f"Expected a 28 × 28 image, got shape {image.shape}.")
    if image.max() > 1:
        image = image / 255
    if not (1 <= patch <= 28 and 1 <= stride <= 28):
        raise ValueError("The patch and stride must be between 1 and 28 pixels.")
    starts = list(range(0, 28 - patch + 1, stride))
    if starts[-1] != 28 - patch:
        starts.append(28 - patch)
    positions = [(row, column) for row in starts for column in starts]
    batch = np.repeat(image[None], len(positions) + 1, axis=0)
    for number, (row, column) in enumerate(positions, start=1):
        batch[number, row:row + patch, column:column + patch] = 0.0
    shaped = batch.reshape((len(batch), *(int(d) for d in model.input_shape[1:])))
    probabilities = np.asarray(model(shaped, training=False), dtype=np.float64)
    if label is None:
        label = int(probabilities[0].argmax())
    drops = np.clip(probabilities[0, label] - probabilities[1:, label], 0.0, None)
    total = np.zeros((28, 28), dtype=np.float64)
    covered = np.zeros((28, 28), dtype=np.float64)
    for drop, (row, column) in zip(drops, positions, strict=True):
        total[row:row + patch, column:column + patch] += drop
        covered[row:row + patch, column:column + patch] += 1
    saliency = total / np.maximum(covered, 1)
    peak = float(saliency.max())
    return (saliency / peak if peak > 0 else saliency).astype(np.float32)


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, scale: int = 6) -> np.ndarray:
    """An RGB uint8 picture (28·scale square): the image in grey, the deciding pixels in red-yellow."""
    image = np.asarray(image, dtype=np.float32)
    if image.max() > 1:
        image = image / 255
    saliency = np.clip(np.asarray(saliency, dtype=np.float32), 0.0, 1.0)
    grey = 0.55 * image
    heat = np.stack([saliency, saliency ** 2 * 0.8, np.zeros_like(saliency)], axis=-1)
    rgb = np.clip(grey[:, :, None] * (1 - 0.7 * saliency[:, :, None]) + heat, 0.0, 1.0)
    rgb = np.kron(rgb, np.ones((scale, scale, 1), dtype=np.float32))
    return np.round(rgb * 255).astype(np.uint8)


def feature_model(model: keras.Model) -> keras.Model:
    """The model up to its last layer: what the final classifier sees (the penultimate features)."""
    import keras

    # Called afresh on a new input, not read from ``layer.input``: a model trained with drawings shares
    # its layers with the preset's own model, whose graph those attributes point into.
    inputs = keras.Input(shape=tuple(int(d) for d in model.input_shape[1:]))
    outputs = inputs
    for layer in model.layers[:-1]:
        outputs = layer(outputs)
    return keras.Model(inputs=inputs, outputs=outputs)


def features(model: keras.Model, images: np.ndarray, extractor: keras.Model | None = None,
             batch_size: int = 1024) -> np.ndarray:
    """Penultimate-layer features (N, D) of uint8 images or float images in [0, 1].

    A linear model has no hidden layer: what its classifier sees are the pixels themselves (for
    the scikit-learn baseline, as for the seed network's Dense(10)).
    """
    if baseline.is_baseline(model):
        return baseline.scaled_pixels(images)
    extractor = extractor if extractor is not None else feature_model(model)
    images = np.asarray(images)
    shaped = (scale_images(images, model.input_shape) if images.dtype == np.uint8
              else images.astype(np.float32).reshape((len(images), *(int(d) for d in model.input_shape[1:]))))
    parts = [np.asarray(extractor(shaped[start:start + batch_size], training=False), dtype=np.float32)
             for start in range(0, len(shaped), batch_size)]
    return np.concatenate(parts).reshape(len(shaped), -1)


@dataclasses.dataclass
class NeighbourIndex:
    """Training images indexed by the model's own features."""

    extractor: keras.Model | None
    """None for the scikit-learn baseline, whose features are the pixels."""
    index: NearestNeighbors
    training_indices: np.ndarray
    """Positions in ``dataset.x_train`` of the indexed images, in index order."""


@dataclasses.dataclass(frozen=True)
class Neighbour:
    training_index: int
    label: int
    distance: float


def build_neighbour_index(model: keras.Model, images: np.ndarray, training_indices: np.ndarray,
                          limit: int = INDEX_LIMIT) -> NeighbourIndex:
    """Index ``images[training_indices[:limit]]`` (the run's own training images) once per model."""
    from sklearn.neighbors import NearestNeighbors

    training_indices = np.asarray(training_indices)[:limit]
    if len(training_indices) < 1:
        raise ValueError("There are no training images to index.")
    extractor = None if baseline.is_baseline(model) else feature_model(model)
    index = NearestNeighbors(n_neighbors=min(NEIGHBOURS, len(training_indices)))
    index.fit(features(model, images[training_indices], extractor))
    return NeighbourIndex(extractor=extractor, index=index, training_indices=training_indices)


def nearest_training_images(model: keras.Model, neighbour_index: NeighbourIndex, image: np.ndarray,
                            labels: np.ndarray, count: int = NEIGHBOURS) -> list[Neighbour]:
    """The ``count`` indexed training images nearest to ``image`` in feature space, nearest first."""
    query = features(model, np.asarray(image)[None], neighbour_index.extractor)
    count = min(count, len(neighbour_index.training_indices))
    distances, positions = neighbour_index.index.kneighbors(query, n_neighbors=count)
    chosen = neighbour_index.training_indices[positions[0]]
    return [Neighbour(int(index), int(labels[index]), float(distance))
            for index, distance in zip(chosen, distances[0], strict=True)]
