"""The code for a run: a short, standalone Keras + scikit-learn script that reproduces it.

For the textbook baseline (the "sgd-classifier" preset) the script is scikit-learn alone, in the
style of the book's chapter 4: ``SGDClassifier(loss="log_loss")`` and one ``partial_fit`` per epoch.

The script is written in the textbook's style (load, scale, ``train_test_split``, build,
``compile``, ``fit``, ``evaluate``) with every setting of the run spelled out: the split and its
seed, the sample limit, the model (the preset's own build function, copied in), the loss and its
target encoding, the optimizer and learning rate, the batch size and the seed. Students can run
it outside the app and get the app's numbers.
"""

from __future__ import annotations

import inspect
import re
import textwrap

from fmnist import models
from fmnist.data import CACHE_FILE_NAME, IMAGE_SIZE, NUM_CLASSES
from fmnist.training import TrainingConfig

OPTIMIZER_CLASSES = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}


def _input_shape(preset: str) -> tuple[int, ...]:
    """The model's input shape without the batch axis (builds the preset's model: needs Keras)."""
    return tuple(int(side) for side in models.build_model(preset).input_shape[1:])


def _build_function_source(preset: str) -> tuple[str, str]:
    """The preset's build function, as source code with its imports made local, preceded by the
    module constants it uses (widths, precision, ...): (name, source)."""
    build = models.get_preset(preset).build
    source = textwrap.dedent(inspect.getsource(build))
    source = "\n".join(line for line in source.splitlines() if line.strip() != "import keras")
    constants = [f"{name} = {value!r}" for name, value in vars(models).items()
                 if name.isupper() and isinstance(value, (int, float, str, tuple))
                 and re.search(rf"\b{name}\b", source)]
    if re.search(r"\bminute_cnn_precision\(", source):
        constants.append(f"\n\ndef minute_cnn_precision():\n    return {models.minute_cnn_precision()!r}"
                         "  # bfloat16 only on CPUs that multiply it in hardware")
    return build.__name__, "\n".join(constants) + ("\n\n\n" if constants else "") + source


def _learning_rate_code(config: TrainingConfig) -> str:
    """The optimizer's learning rate: a number, or the one-cycle schedule over the run's steps."""
    rate = config.effective_learning_rate
    if config.schedule == "constant":
        return f"learning_rate = {rate!r}\n"
    return (f"# One cycle: warm up from a tenth of {rate!r} over the first {models.ONE_CYCLE_WARMUP_FRACTION:.0%} "
            "of the steps, then a cosine decay.\n"
            f"total_steps = math.ceil(len(train_scaled) / {config.batch_size}) * {config.epochs}\n"
            f"warmup_steps = max(1, round(total_steps * {models.ONE_CYCLE_WARMUP_FRACTION!r}))\n"
            "learning_rate = keras.optimizers.schedules.CosineDecay(\n"
            f"    initial_learning_rate={rate!r} * {models.ONE_CYCLE_START_FACTOR!r}, warmup_target={rate!r},\n"
            "    warmup_steps=warmup_steps, decay_steps=max(1, total_steps - warmup_steps),\n"
            f"    alpha={models.ONE_CYCLE_END_FACTOR!r})\n")


def training_script(config: TrainingConfig, title: str = "") -> str:
    """A standalone Python script that trains and evaluates ``config``'s run with plain Keras.

    Raises ``ValueError`` for a preset whose model cannot be written as plain Keras code. The
    scikit-learn baseline gets :func:`baseline_script` instead.
    """
    if not models.get_preset(config.preset).is_keras:
        return baseline_script(config, title)
    function_name, function_source = _build_function_source(config.preset)
    shape = _input_shape(config.preset)
    reshape = ", ".join(str(side) for side in (-1, *shape))
    one_hot = config.loss in models.ONE_HOT_LOSSES
    stratify = ", stratify=train_target" if config.stratify else ""
    limit = (f"\n# Train on the first {config.sample_limit:,} training items only (the run's sample limit).\n"
             f"train_scaled, train_target = train_scaled[:{config.sample_limit}], train_target[:{config.sample_limit}]\n"
             if config.sample_limit else "")
    encode = ("\n# This loss compares probabilities with one-hot rows, so the targets are one-hot encoded.\n"
              f"train_target = keras.utils.to_categorical(train_target, {NUM_CLASSES})\n"
              f"val_target = keras.utils.to_categorical(val_target, {NUM_CLASSES})\n"
              f"test_target = keras.utils.to_categorical(test_target, {NUM_CLASSES})\n" if one_hot else "")
    optimizer = f"keras.optimizers.{OPTIMIZER_CLASSES[config.optimizer]}(learning_rate=learning_rate)"
    drawings = ("\n# The app also mixed drawing-like versions of the training images (outlines, silhouettes) into\n"
                "# each batch (fmnist.augment.DrawingAugmentation), and swapped in canvas drawings of a fifth\n"
                "# of them (fmnist.drawings.training_drawings). Plain Keras has neither, so this script\n"
                "# trains on the images alone: its numbers differ a little from the app's.\n\n"
                if config.uses_drawings else "")
    heading = title or "An fmnist-studio run"
    return f'''"""{heading}: {config.describe()}.

Reproduces the run with plain Keras and scikit-learn, in the style of chapter 7 of
"혼자 공부하는 머신러닝+딥러닝". Run it with: python this_file.py
"""

import math
import os
from pathlib import Path

import keras
import numpy as np
from sklearn.model_selection import train_test_split

IMAGE_SIZE = {IMAGE_SIZE}
NUM_CLASSES = {NUM_CLASSES}


def load_fashion_mnist():
    """The data the app used (its cache, if present), else Keras' official download."""
    cache = Path(os.environ.get("FMNIST_CACHE_DIR") or Path.home() / ".cache" / "fmnist") / "{CACHE_FILE_NAME}"
    if cache.is_file():
        with np.load(cache) as arrays:
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    return keras.datasets.fashion_mnist.load_data()


(train_input, train_target), (test_input, test_target) = load_fashion_mnist()

# Pixels from 0-255 to 0-1, shaped for the model's input.
train_scaled = (train_input.astype("float32") / 255.0).reshape({reshape})
test_scaled = (test_input.astype("float32") / 255.0).reshape({reshape})

# Hold out {config.validation_fraction:.0%} of the training images to validate each epoch.
train_scaled, val_scaled, train_target, val_target = train_test_split(
    train_scaled, train_target, test_size={config.validation_fraction!r}, random_state={config.seed}{stratify})
{limit}{encode}
keras.utils.set_random_seed({config.seed})  # the same initial weights, shuffles and dropout as the app's run


{function_source}


model = {function_name}()
model.summary()
{drawings}{_learning_rate_code(config)}model.compile(optimizer={optimizer},
              loss="{config.loss}", metrics=["accuracy"])
history = model.fit(train_scaled, train_target, epochs={config.epochs}, batch_size={config.batch_size},
                    validation_data=(val_scaled, val_target))

val_loss, val_accuracy = model.evaluate(val_scaled, val_target, verbose=0)
test_loss, test_accuracy = model.evaluate(test_scaled, test_target, verbose=0)
print(f"validation accuracy: {{val_accuracy:.4f}}, loss {{val_loss:.4f}}")
print(f"test accuracy: {{test_accuracy:.4f}}, loss {{test_loss:.4f}}")
'''


def baseline_script(config: TrainingConfig, title: str = "") -> str:
    """A standalone scikit-learn script for a baseline run: chapter 4's ``partial_fit`` loop on the run's split.

    It prints each epoch's training and validation accuracy, as the app reports them (``score``).
    """
    stratify = ", stratify=train_target" if config.stratify else ""
    limit = (f"\n# Train on the first {config.sample_limit:,} training items only (the run's sample limit).\n"
             f"train_scaled, train_target = train_scaled[:{config.sample_limit}], train_target[:{config.sample_limit}]\n"
             if config.sample_limit else "")
    heading = title or "An fmnist-studio run"
    return f'''"""{heading}: {config.describe()}.

The textbook's classic baseline, reproduced with scikit-learn alone, in the style of chapter 4 of
"혼자 공부하는 머신러닝+딥러닝": logistic regression trained by stochastic gradient descent,
one partial_fit (one pass over the training images) per epoch. Run it with: python this_file.py
"""

import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split


def load_fashion_mnist():
    """The data the app used (its cache, if present), else Keras' official download."""
    cache = Path(os.environ.get("FMNIST_CACHE_DIR") or Path.home() / ".cache" / "fmnist") / "{CACHE_FILE_NAME}"
    if cache.is_file():
        with np.load(cache) as arrays:
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    import keras

    return keras.datasets.fashion_mnist.load_data()


(train_input, train_target), (test_input, test_target) = load_fashion_mnist()

# Pixels from 0-255 to 0-1, each image one row of {IMAGE_SIZE * IMAGE_SIZE} numbers.
train_scaled = (train_input.astype("float32") / 255.0).reshape(-1, {IMAGE_SIZE} * {IMAGE_SIZE})
test_scaled = (test_input.astype("float32") / 255.0).reshape(-1, {IMAGE_SIZE} * {IMAGE_SIZE})

# Hold out {config.validation_fraction:.0%} of the training images to validate each epoch.
train_scaled, val_scaled, train_target, val_target = train_test_split(
    train_scaled, train_target, test_size={config.validation_fraction!r}, random_state={config.seed}{stratify})
{limit}
sc = SGDClassifier(loss="log_loss", random_state={config.seed})
classes = np.arange({NUM_CLASSES})  # all ten classes, even if a small sample lacks one

for epoch in range(1, {config.epochs + 1}):
    sc.partial_fit(train_scaled, train_target, classes=classes)
    print(f"Epoch {{epoch}}/{config.epochs} - accuracy: {{sc.score(train_scaled, train_target):.4f}} - "
          f"val_accuracy: {{sc.score(val_scaled, val_target):.4f}}")

print(f"validation accuracy: {{sc.score(val_scaled, val_target):.6f}}")
print(f"test accuracy: {{sc.score(test_scaled, test_target):.6f}}")
'''
