"""Model presets, losses and optimizers: the choices a user makes, turned into Keras objects.

Keras is imported inside the functions, so that importing this module (for the names and
descriptions the UI lists) does not pay TensorFlow's start-up cost.
"""

from __future__ import annotations

import dataclasses
import os
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
    default_epochs: int = 5
    default_batch_size: int = 32
    default_optimizer: str = "rmsprop"
    default_learning_rate: float | None = None
    """None: the optimizer's Keras default."""
    default_loss: str = "sparse_categorical_crossentropy"
    default_schedule: str = "constant"
    """The learning-rate schedule (a key of ``SCHEDULES``) when a user picks this preset.
    The textbook values above are what the seed, mlp and cnn presets have always trained with."""
    drawings_by_default: bool = False
    """Whether runs also learn from drawings unless told otherwise (fmnist.augment): on for the
    recommended preset, off for the seed so the reference run stays the textbook's."""
    framework: str = "keras"
    """"keras", or "scikit-learn" for the textbook baseline (fmnist.baseline), which trains with its
    own SGD: the Keras settings (loss, optimizer, learning rate, schedule, batch size, drawings)
    do not apply to it and stay at the preset's defaults."""

    @property
    def is_keras(self) -> bool:
        return self.framework == "keras"


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


MINUTE_CNN_WIDTHS = (16, 48, 128)
"""Channels of the minute CNN's three convolutions (multiples of 16 suit oneDNN's kernels).

Chosen on a 2-core EPYC without 512-bit FMA units (a float32 matmul at 214 GFLOP/s, half the 462
of the machines the preset was first tuned on), where (32, 64, 128) for 8 epochs took 75-79 s:
9.5 MFLOP per image instead of 15.5, about 6.6 s an epoch instead of 9.3. With drawings, seeds
42, 1, 2, 7 epochs (the preset's): test 0.9282 (0.9269, 0.9291, 0.9285), outlines 0.803 and
silhouettes 0.806, in 49-56 s; (32, 64, 128) x 8 gave 0.9292, 0.803 and 0.811 in 75-79 s there.
Tried beside it: (32, 48, 96) x 7, test 0.9247 but outlines 0.794; (16, 48, 128) with 256 hidden
units x 7, 0.9258 and 0.796 (x 8: 0.9269, 0.798, up to 57.5 s); (16, 64, 128) x 6, 0.9232 and 0.787.
The first convolution's 16 channels cost little accuracy: what drawings need is the later ones."""
MINUTE_CNN_HIDDEN_UNITS = 512
"""Units of the minute CNN's hidden layer between its flattened maps and the softmax (0: none).
First measured with 256 units and widths (32, 64, 128) (``python -m bench --only strong,drawings``,
seeds 42, 1, 2; a 2-core EPYC), without -> with the layer: drawing runs' test accuracy 0.9241 ->
0.9282, outlines 0.782 -> 0.791, silhouettes 0.814 -> 0.817; runs without drawings 0.9258 ->
0.9305. With the narrower widths, 512 units instead of 256 (6% of the FLOPs): test 0.9258 ->
0.9282, outlines 0.796 -> 0.803. A photo and a drawing of one class lie far apart in the maps,
and one linear layer had to separate both."""

CPU_FLAGS_FILE = "/proc/cpuinfo"


def bfloat16_is_native(cpu_flags_file: str = CPU_FLAGS_FILE) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16 units).

    Where it does, bfloat16 convolutions are several times faster than float32 ones (measured on
    an AMX machine: about 4x for a large matmul, 7x for a convolution). Where it does not (an AVX2
    CPU, for one), TensorFlow emulates bfloat16 and the same training step is about 8x *slower*
    than in float32. Unknown (no Linux flags file) counts as not native.
    """
    try:
        with open(cpu_flags_file, encoding="ascii", errors="replace") as cpu_info:
            for line in cpu_info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


PRECISION_VARIABLE = "FMNIST_PRECISION"
"""Set to ``float32`` or ``mixed_bfloat16`` to override the precision the minute CNN picks for this CPU."""


def minute_cnn_precision() -> str:
    """The minute CNN's convolution precision on this machine: bfloat16 only where it is native."""
    chosen = os.environ.get(PRECISION_VARIABLE, "").strip()
    if chosen:
        if chosen not in ("float32", "mixed_bfloat16"):
            raise ValueError(f"{PRECISION_VARIABLE} must be float32 or mixed_bfloat16, not {chosen!r}.")
        return chosen
    return "mixed_bfloat16" if bfloat16_is_native() else "float32"


def build_minute_cnn(seed: int | None = None, widths: tuple[int, ...] = MINUTE_CNN_WIDTHS,
                     precision: str | None = None, hidden_units: int = MINUTE_CNN_HIDDEN_UNITS) -> keras.Model:
    """The strongest model that trains in well under a minute on two cores.

    Mirror images at the input (training only: shoes point left in Fashion-MNIST, people draw
    them both ways), three Conv 3x3 + ReLU + MaxPool 2x2 blocks (28 -> 14 -> 7 -> 3 pixels), the
    flattened 3x3 maps (which keep where a feature was), a ReLU layer of ``hidden_units`` (0: none)
    and the softmax. ``seed`` fixes
    the mirror draws of a run. ``precision`` defaults to :func:`minute_cnn_precision`. BatchNormalization
    is left out on purpose: Keras' layer made the step 3.6 times slower on an AMX machine, for an
    accuracy the one-cycle schedule reaches without it.
    """
    import keras

    precision = precision or minute_cnn_precision()
    layers: list = [keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    keras.layers.RandomFlip("horizontal", seed=seed, name="mirror")]
    for index, filters in enumerate(widths, start=1):
        layers += [keras.layers.Conv2D(filters, kernel_size=3, padding="same", activation="relu",
                                       name=f"block{index}_conv", dtype=precision),
                   keras.layers.MaxPooling2D(2, name=f"block{index}_pool", dtype=precision)]
    layers.append(keras.layers.Flatten(name="flatten"))
    if hidden_units:
        layers.append(keras.layers.Dense(hidden_units, activation="relu", name="hidden"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", name="classes"))  # float32 probabilities
    return keras.Sequential(layers, name="minute-cnn")


def build_sgd_classifier(seed: int | None = None):
    """The textbook's chapter-4 classifier: logistic regression trained by stochastic gradient descent.

    With ten classes, scikit-learn fits one binary logistic regression per class (one versus the
    rest) on the 784 pixels: 7,850 weights, as many as the seed network's Dense(10).
    """
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", random_state=seed)


BASELINE_PRESET = "sgd-classifier"
"""The textbook's classic baseline (scikit-learn), a preset like the others (fmnist.baseline trains it)."""

PRESETS: dict[str, Preset] = {
    "seed": Preset("seed", "Seed (textbook)",
                   "Dense(10, softmax) on 784 pixels: the textbook's logistic-regression-like model.",
                   build_seed, seconds_per_sample=2.5e-6, compile_with_xla=True),
    "mlp": Preset("mlp", "MLP",
                  "Flatten, Dense(100, relu), Dropout(0.3), Dense(10, softmax): one hidden layer.",
                  build_mlp, seconds_per_sample=1.2e-5, compile_with_xla=False),
    "cnn": Preset("cnn", "CNN",
                  "Two Conv2D + MaxPool blocks, Dense(100), Dropout(0.4): best accuracy, slowest.",
                  build_cnn, seconds_per_sample=3.5e-4, compile_with_xla=False),
    "minute-cnn": Preset("minute-cnn", "Minute CNN",
                         ("Mirror images, three Conv + MaxPool blocks (bfloat16 where the CPU has it), 7 epochs of "
                          "one-cycle Adam at batch 128: above 0.92; under a minute on CPUs with bfloat16 units."),
                         build_minute_cnn, seconds_per_sample=2.1e-4, compile_with_xla=False,
                         default_epochs=7, default_batch_size=128, default_optimizer="adam",
                         default_learning_rate=0.004, default_schedule="one-cycle", drawings_by_default=True),
    BASELINE_PRESET: Preset(BASELINE_PRESET, "Textbook baseline: SGDClassifier (scikit-learn)",
                            "Chapter 4's SGDClassifier(loss=\"log_loss\"), one partial_fit per epoch: logistic "
                            "regression on the 784 pixels, like the seed network, trained by scikit-learn.",
                            build_sgd_classifier, seconds_per_sample=4e-5, compile_with_xla=False,
                            default_optimizer="sgd", framework="scikit-learn"),
}

KERAS_PRESETS: tuple[str, ...] = tuple(name for name, preset in PRESETS.items() if preset.is_keras)
"""The presets that build a Keras model (all but the scikit-learn baseline)."""

RECOMMENDED_PRESET = "minute-cnn"
"""The preset that Try it recommends and that the pages' quick train uses."""

LOSSES: dict[str, str] = {
    "sparse_categorical_crossentropy": "Sparse categorical cross-entropy (integer targets)",
    "categorical_crossentropy": "Categorical cross-entropy (one-hot targets)",
    "mean_squared_error": "Mean squared error (one-hot targets; shows why cross-entropy is used)",
}
ONE_HOT_LOSSES = frozenset({"categorical_crossentropy", "mean_squared_error"})

OPTIMIZERS: dict[str, float] = {"rmsprop": 0.001, "adam": 0.001, "sgd": 0.01}
"""Optimizer names with their Keras default learning rates."""

SCHEDULES: dict[str, str] = {
    "constant": "Constant: the same learning rate throughout",
    "one-cycle": "One cycle: warm up to the learning rate, then a cosine decay to almost zero",
}
ONE_CYCLE_WARMUP_FRACTION = 0.2
"""Share of a one-cycle run spent warming up from a tenth of the peak learning rate."""
ONE_CYCLE_START_FACTOR = 0.1
ONE_CYCLE_END_FACTOR = 0.01


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` names the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown model preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def build_model(preset: str) -> keras.Model:
    """A fresh, uncompiled model for ``preset``."""
    return get_preset(preset).build()


def make_learning_rate(learning_rate: float, schedule: str = "constant", total_steps: int | None = None):
    """The learning rate for ``schedule``: a number, or a Keras ``LearningRateSchedule`` of the
    optimizer's step count (one built into Keras, so saved models load anywhere).

    "one-cycle" warms up linearly from a tenth of ``learning_rate`` over the first fifth of
    ``total_steps``, then decays along a cosine to a hundredth of it at the last step.
    """
    import keras

    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}.")
    if schedule == "constant":
        return learning_rate
    if total_steps is None or total_steps < 1:
        raise ValueError(f"A one-cycle schedule needs the run's number of steps, not {total_steps!r}.")
    warmup_steps = max(1, round(total_steps * ONE_CYCLE_WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * ONE_CYCLE_START_FACTOR, warmup_target=learning_rate,
        warmup_steps=warmup_steps, decay_steps=max(1, total_steps - warmup_steps), alpha=ONE_CYCLE_END_FACTOR)


def make_optimizer(name: str, learning_rate: float, schedule: str = "constant",
                   total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name with the given learning rate, constant or on a ``schedule``
    over a run of ``total_steps`` steps."""
    import keras

    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
               "sgd": keras.optimizers.SGD}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(classes)}.")
    return classes[name](learning_rate=make_learning_rate(learning_rate, schedule, total_steps))


def count_parameters(preset: str) -> int:
    """Number of trainable parameters of a preset (builds the model; needs Keras).

    The scikit-learn baseline has a weight per pixel and class plus one intercept per class.
    """
    if not get_preset(preset).is_keras:
        return IMAGE_SIZE * IMAGE_SIZE * NUM_CLASSES + NUM_CLASSES
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
