"""Look inside a trained model: what its weights show, as arrays the pages draw.

- A linear model (the seed preset) has one weight template per class: the 784 weights into a
  class's output, back in the 28 × 28 layout. It is the classic picture of what a linear
  classifier learns: red where ink makes the class likelier, blue where it makes it less likely.
- An MLP's hidden units each have a template too, ranked by how much they matter (the size of
  the weights into the unit times the size of the weights out of it).
- A convolutional model's first layer has small filters, and every convolution layer turns an
  image into feature maps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fmnist import baseline
from fmnist.data import IMAGE_SIZE, NUM_CLASSES

if TYPE_CHECKING:
    import keras

PIXELS = IMAGE_SIZE * IMAGE_SIZE


def _layers(model: keras.Model, kind: str) -> list:
    import keras

    layer_class = {"dense": keras.layers.Dense, "conv": keras.layers.Conv2D}[kind]
    return [layer for layer in model.layers if isinstance(layer, layer_class)]


def model_family(model: keras.Model) -> str:
    """"convolutional", "mlp" (dense layers with a hidden one) or "linear" (one dense layer on the pixels)."""
    if baseline.is_baseline(model):
        return "linear"
    if _layers(model, "conv"):
        return "convolutional"
    dense = _layers(model, "dense")
    if len(dense) == 1 and int(dense[0].kernel.shape[0]) == PIXELS:
        return "linear"
    if len(dense) >= 2 and int(dense[0].kernel.shape[0]) == PIXELS:
        return "mlp"
    raise ValueError(f"Model {model.name!r} is neither a linear model, an MLP on the pixels nor a convolutional one.")


def class_templates(model: keras.Model) -> np.ndarray:
    """(10, 28, 28): the weights from every pixel into each class of a linear model
    (for the scikit-learn baseline, exactly its ``coef_``)."""
    if baseline.is_baseline(model):
        return model.class_templates()
    if model_family(model) != "linear":
        raise ValueError("Class templates exist for a linear model (the seed preset) only.")
    kernel = np.asarray(_layers(model, "dense")[0].kernel)
    if kernel.shape != (PIXELS, NUM_CLASSES):
        raise ValueError(f"Expected a {PIXELS} × {NUM_CLASSES} kernel, got {kernel.shape}.")
    return kernel.T.reshape(NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE)


def hidden_unit_templates(model: keras.Model, top: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first hidden layer's units of an MLP, strongest first.

    Returns ``(templates (k, 28, 28), strengths (k,), unit numbers (k,))``; a unit's strength is
    the norm of its incoming weights times the norm of its outgoing weights.
    """
    if model_family(model) != "mlp":
        raise ValueError("Hidden-unit templates exist for an MLP on the pixels only.")
    first, second = _layers(model, "dense")[:2]
    incoming = np.asarray(first.kernel)  # (784, units)
    outgoing = np.asarray(second.kernel)  # (units, next)
    strengths = np.linalg.norm(incoming, axis=0) * np.linalg.norm(outgoing, axis=1)
    order = np.argsort(-strengths, kind="stable")[:top]
    templates = incoming[:, order].T.reshape(len(order), IMAGE_SIZE, IMAGE_SIZE)
    return templates, strengths[order], order


def first_layer_filters(model: keras.Model) -> np.ndarray:
    """(filters, height, width): the first convolution's kernels (one input channel: greyscale)."""
    convolutions = _layers(model, "conv")
    if not convolutions:
        raise ValueError("First-layer filters exist for convolutional models only.")
    kernel = np.asarray(convolutions[0].kernel)  # (height, width, channels in, filters)
    return kernel.sum(axis=2).transpose(2, 0, 1)


def feature_maps(model: keras.Model, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """For one image ((28, 28) in [0, 1]), every convolution layer's output as ``(layer name, (channels, h, w))``."""
    import keras

    convolutions = _layers(model, "conv")
    if not convolutions:
        raise ValueError("Feature maps exist for convolutional models only.")
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected one 28 × 28 image, got shape {image.shape}.")
    # Layers are called afresh on a new input: a model trained with drawings shares its layers with the
    # preset's own model, so ``layer.output`` belongs to another graph.
    inputs = keras.Input(shape=tuple(int(d) for d in model.input_shape[1:]))
    outputs, conv_outputs = inputs, []
    for layer in model.layers:
        outputs = layer(outputs)
        if layer in convolutions:
            conv_outputs.append(outputs)
    probe = keras.Model(inputs, conv_outputs)
    shaped = image.reshape((1, *(int(d) for d in model.input_shape[1:])))
    outputs = probe(shaped, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [(layer.name, np.asarray(output, dtype=np.float32)[0].transpose(2, 0, 1)) for layer, output in zip(convolutions, outputs,
                                                                                             strict=True)]
