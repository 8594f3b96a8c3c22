"""Model presets, losses and optimizers: the choices a user makes, turned into Keras objects.

Keras is imported inside the functions, so that importing this module (for the names and
descriptions the UI lists) does not pay TensorFlow's start-up cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from fmnist.data import IMAGE_SIZE, NUM_CLASSES

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named architecture with a one-line description for people."""

    name: str
    title: str
    description: str
    build: Callable[[], keras.Model]
    seconds_per_sample: float
    """Measured training cost per sample per epoch with our engine on a 2-core machine."""
    compile_with_xla: bool
    """Whether the engine's step loop is XLA-compiled: a large win for small dense models,
    a large loss for convolutions (XLA's CPU convolutions are far slower than oneDNN's)."""
    drawings_by_default: bool = False
    """Whether runs also learn from drawings unless told otherwise (fmnist.augment): on for the
    recommended preset, off for the seed so the reference run stays the textbook's."""


def build_seed() -> keras.Model:
    """The textbook model: one Dense(10, softmax) layer on 784 flattened pixels."""
    import keras

    return keras.Sequential(
        [keras.Input(shape=(IMAGE_SIZE * IMAGE_SIZE,)),
         keras.layers.Dense(NUM_CLASSES, activation="softmax")],
        name="seed")


def build_mlp() -> keras.Model:
    """One hidden layer of 100 ReLU units with dropout."""
    import keras

    return keras.Sequential(
        [keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE)),
         keras.layers.Flatten(),
         keras.layers.Dense(100, activation="relu"),
         keras.layers.Dropout(0.3),
         keras.layers.Dense(NUM_CLASSES, activation="softmax")],
        name="mlp")


def build_cnn() -> keras.Model:
    """Two convolution blocks, then a small dense head: the strongest and slowest preset."""
    import keras

    return keras.Sequential(
        [keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
         keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
         keras.layers.MaxPooling2D(2),
         keras.layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
         keras.layers.MaxPooling2D(2),
         keras.layers.Flatten(),
         keras.layers.Dense(100, activation="relu"),
         keras.layers.Dropout(0.4),
         keras.layers.Dense(NUM_CLASSES, activation="softmax")],
        name="cnn")


PRESETS: dict[str, Preset] = {
    "seed": Preset("seed", "Seed (textbook)",
                   "Dense(10, softmax) on 784 pixels: the textbook's logistic-regression-like model.",
                   build_seed, seconds_per_sample=2.5e-6, compile_with_xla=True),
    "mlp": Preset("mlp", "MLP",
                  "Flatten, Dense(100, relu), Dropout(0.3), Dense(10, softmax): one hidden layer.",
                  build_mlp, seconds_per_sample=1.2e-5, compile_with_xla=False),
    "cnn": Preset("cnn", "CNN",
                  "Two Conv2D + MaxPool blocks, Dense(100), Dropout(0.4): best accuracy, slowest.",
                  build_cnn, seconds_per_sample=3.5e-4, compile_with_xla=False, drawings_by_default=True),
}

RECOMMENDED_PRESET = "cnn"
"""The preset that Try it recommends and that the pages' quick train uses."""

LOSSES: dict[str, str] = {
    "sparse_categorical_crossentropy": "Sparse categorical cross-entropy (integer targets)",
    "categorical_crossentropy": "Categorical cross-entropy (one-hot targets)",
    "mean_squared_error": "Mean squared error (one-hot targets; shows why cross-entropy is used)",
}
ONE_HOT_LOSSES = frozenset({"categorical_crossentropy", "mean_squared_error"})

OPTIMIZERS: dict[str, float] = {"rmsprop": 0.001, "adam": 0.001, "sgd": 0.01}
"""Optimizer names with their Keras default learning rates."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` names the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown model preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def build_model(preset: str) -> keras.Model:
    """A fresh, uncompiled model for ``preset``."""
    return get_preset(preset).build()


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name with the given learning rate."""
    import keras

    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
               "sgd": keras.optimizers.SGD}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(classes)}.")
    return classes[name](learning_rate=learning_rate)


def count_parameters(preset: str) -> int:
    """Number of trainable parameters of a preset (builds the model; needs Keras)."""
    return int(build_model(preset).count_params())


def flops_per_sample(model: keras.Model) -> int:
    """Forward-pass multiply-adds x2 per image, from the layer shapes (Dense and Conv2D only).

    Training costs about three times this (forward, and two products in backward).
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = (int(d) for d in layer.kernel.shape)
            out_h, out_w = (int(d) for d in layer.output.shape[1:3])
            total += 2 * kernel_h * kernel_w * channels_in * channels_out * out_h * out_w
    return total
