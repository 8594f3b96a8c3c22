"""Evaluation: what a trained model gets right and wrong, per class and per pair of classes.

Everything but :func:`predict_probabilities`, :func:`predict_with_loss` and
:func:`evaluate_model` works on plain arrays of probabilities, so it is fast to test and needs
no TensorFlow.

One loss for one quantity: a model's loss is computed by :func:`predict_with_loss` on the
model's own output tensors, with Keras' loss function, exactly as ``model.evaluate`` and the
training history compute it. For a softmax output Keras then works from the softmax's logits
(TensorFlow's softmax tensor carries them as ``_keras_logits``), so a confident wrong answer
costs its full cross-entropy. :func:`compute_loss` recomputes the loss from probabilities
alone, where every probability is clipped at 1e-7; on a confident, often-wrong model that
caps each item's loss at 16.1 and reports less than Keras does.

One prediction for one model: a model that learned mirror images (:func:`learned_mirror_images`)
predicts the mean of an item's and its mirror image's probabilities, everywhere (Evaluate, Try
it, the game, the bench), and its loss is the loss of that prediction.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fmnist import baseline, models
from fmnist.data import CLASS_NAMES, NUM_CLASSES
from fmnist.training import scale_images

if TYPE_CHECKING:
    import keras

PROBABILITY_EPSILON = 1e-7
"""Keras normalises, then clips probabilities to [eps, 1 - eps] in its cross-entropy; so do we."""


@dataclasses.dataclass(frozen=True)
class ConfusedPair:
    """``count`` items of ``true_label`` were predicted as ``predicted_label``."""

    true_label: int
    predicted_label: int
    count: int

    def describe(self) -> str:
        """For people: "Shirt taken for T-shirt/top: 123 times"."""
        return f"{CLASS_NAMES[self.true_label]} taken for {CLASS_NAMES[self.predicted_label]}: {self.count} times"


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Loss, accuracy and the per-class picture for one set of images."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    """(10, 10) counts: rows are true classes, columns predicted classes."""
    precision: np.ndarray
    recall: np.ndarray
    class_accuracy: np.ndarray
    """One-vs-rest accuracy per class: (true positives + true negatives) / all items."""
    probabilities: np.ndarray
    labels: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """The most probable class of every item."""
        return self.probabilities.argmax(axis=1)


def _model_inputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) images, or float ones in [0, 1], as float32 shaped for the model's input."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return scale_images(images, model.input_shape)
    return images.astype(np.float32).reshape((len(images), *(int(d) for d in model.input_shape[1:])))


def learned_mirror_images(model) -> bool:
    """Whether a model was trained on mirror images too (a horizontal ``RandomFlip``, or the drawing
    augmentation, at its input). Its prediction is then the mean over the item and its mirror
    image: which way an item faces should not matter (Fashion-MNIST's shoes all point left, people
    draw and photograph them both ways), and the mean is the more accurate (Minute CNN, seed 42,
    test accuracy: 0.9229 -> 0.9247; with drawings 0.9166 -> 0.9224)."""
    for layer in getattr(model, "layers", None) or ():
        kind = type(layer).__name__
        if kind == "RandomFlip" and "horizontal" in str(getattr(layer, "mode", "")):
            return True
        if kind == "DrawingAugmentation" and getattr(layer, "mirror_share", 0.0) > 0:
            return True
    return False


def _mirrored(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    return images.reshape(len(images), 28, 28)[:, :, ::-1]


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 (N, 28, 28) images or float (N, 28, 28) in [0, 1]
    (mirror-averaged for a model that learned mirror images: :func:`learned_mirror_images`)."""
    if baseline.is_baseline(model):
        return model.predict_proba(images)
    if learned_mirror_images(model):
        return predict_probabilities_mirror_averaged(model, images, batch_size=batch_size)
    return _predict_as_is(model, images, batch_size)


def _predict_as_is(model: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    shaped = _model_inputs(model, images)
    if len(shaped) <= batch_size:  # one small call: ``model(...)`` skips predict's per-call set-up
        return np.asarray(model(shaped, training=False), dtype=np.float32)
    return np.asarray(model.predict(shaped, batch_size=batch_size, verbose=0), dtype=np.float32)


def predict_with_loss(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                      loss: str = "sparse_categorical_crossentropy",
                      batch_size: int = 1024) -> tuple[np.ndarray, float]:
    """Class probabilities (N, 10) and the mean ``loss``, from one pass over the images.

    The loss is Keras' own loss function applied to the model's output tensors, batch by
    batch, so it is the number ``model.evaluate`` and the training history report (from the
    softmax's logits for a softmax output), not one recomputed from clipped probabilities.
    The pass runs as one traced TensorFlow function, as fast as ``model.predict``. For a model
    that learned mirror images, the output is the mean over each image and its mirror image, and
    the loss is that prediction's.

    The scikit-learn baseline has its own loss (log loss, whatever ``loss`` says), the one its
    training history reports.
    """
    _check_loss(loss)
    labels = np.asarray(labels).astype(np.int64)
    if baseline.is_baseline(model):
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(f"Expected as many labels as images (at least one), got {len(images)} and {len(labels)}.")
        probabilities = model.predict_proba(images)
        return probabilities, model.loss(probabilities, labels)
    import keras  # heavy imports, made only when a model is evaluated
    import tensorflow as tf

    shaped = _model_inputs(model, images)
    if len(shaped) != len(labels):
        raise ValueError(f"Got {len(shaped)} images but {len(labels)} labels.")
    if len(labels) == 0:
        raise ValueError("There are no items to evaluate.")
    targets = (np.eye(NUM_CLASSES, dtype=np.float32)[labels] if loss in models.ONE_HOT_LOSSES
               else labels.astype(np.int32))
    loss_function = keras.losses.get(loss)

    mirrors = learned_mirror_images(model)
    mirrored = _model_inputs(model, _mirrored(images)) if mirrors else shaped[:0]

    @tf.function(input_signature=[tf.TensorSpec((None, *shaped.shape[1:]), tf.float32),
                                  tf.TensorSpec((None, *shaped.shape[1:]), tf.float32),
                                  tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype))])
    def probabilities_and_loss_sum(batch_images: tf.Tensor, batch_mirrored: tf.Tensor,
                                   batch_targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        outputs = model(batch_images, training=False)
        if mirrors:
            outputs = (outputs + model(batch_mirrored, training=False)) / 2
        return outputs, tf.reduce_sum(loss_function(batch_targets, outputs))

    probability_batches: list[np.ndarray] = []
    loss_sum = 0.0
    for start in range(0, len(shaped), batch_size):
        outputs, batch_loss_sum = probabilities_and_loss_sum(shaped[start:start + batch_size],
                                                             mirrored[start:start + batch_size],
                                                             targets[start:start + batch_size])
        probability_batches.append(np.asarray(outputs, dtype=np.float32))
        loss_sum += float(batch_loss_sum)
    return np.concatenate(probability_batches), loss_sum / len(labels)


def _check_loss(loss: str) -> None:
    if loss not in models.LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; choose one of {', '.join(models.LOSSES)}.")


def compute_loss(probabilities: np.ndarray, labels: np.ndarray, loss: str) -> float:
    """The mean loss Keras computes for ``loss`` when all it has is these probabilities.

    Keras normalises and clips probabilities to [1e-7, 1 - 1e-7] when they are not a softmax
    tensor. A trained model's loss is not this: use :func:`predict_with_loss` (or
    :func:`evaluate_model`), which works from the model's logits as ``model.evaluate`` does.
    """
    _check_loss(loss)
    labels = np.asarray(labels, dtype=np.int64)
    if loss == "mean_squared_error":
        one_hot = np.eye(NUM_CLASSES, dtype=np.float64)[labels]
        return float(np.mean((probabilities.astype(np.float64) - one_hot) ** 2))
    normalised = probabilities.astype(np.float64) / probabilities.astype(np.float64).sum(axis=1, keepdims=True)
    clipped = np.clip(normalised, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    return float(-np.mean(np.log(clipped[np.arange(len(labels)), labels])))


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray,
                           loss: str = "sparse_categorical_crossentropy") -> EvaluationReport:
    """The full report from predicted probabilities and true labels.

    Its loss is :func:`compute_loss` on the probabilities; :func:`evaluate_model` replaces it
    with the model's own loss.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    probabilities = np.asarray(probabilities, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES or len(probabilities) != len(labels):
        raise ValueError(f"Expected probabilities of shape (N, {NUM_CLASSES}) for N labels, "
                         f"got {probabilities.shape} for {len(labels)} labels.")
    if len(labels) == 0:
        raise ValueError("There are no items to evaluate.")
    predictions = probabilities.argmax(axis=1)
    class_ids = list(range(NUM_CLASSES))
    confusion = confusion_matrix(labels, predictions, labels=class_ids)
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, zero_division=0)
    total = confusion.sum()
    true_positives = np.diag(confusion)
    false_positives = confusion.sum(axis=0) - true_positives
    false_negatives = confusion.sum(axis=1) - true_positives
    class_accuracy = (total - false_positives - false_negatives) / total
    return EvaluationReport(loss=compute_loss(probabilities, labels, loss),
                            accuracy=float(np.mean(predictions == labels)), confusion=confusion,
                            precision=precision, recall=recall, class_accuracy=class_accuracy,
                            probabilities=probabilities, labels=labels)


def evaluate_model(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                   loss: str = "sparse_categorical_crossentropy") -> EvaluationReport:
    """Predict once, then build the whole report, with the loss ``model.evaluate`` reports."""
    probabilities, model_loss = predict_with_loss(model, images, labels, loss)
    return dataclasses.replace(evaluate_probabilities(probabilities, labels, loss), loss=model_loss)


def most_confused_pairs(confusion: np.ndarray, top: int = 5) -> list[ConfusedPair]:
    """The off-diagonal cells with the most items, largest first."""
    confusion = np.asarray(confusion)
    pairs = [ConfusedPair(int(true), int(predicted), int(confusion[true, predicted]))
             for true in range(confusion.shape[0]) for predicted in range(confusion.shape[1])
             if true != predicted and confusion[true, predicted] > 0]
    pairs.sort(key=lambda pair: (-pair.count, pair.true_label, pair.predicted_label))
    return pairs[:top]


def misclassified_indices(probabilities: np.ndarray, labels: np.ndarray, true_label: int | None = None,
                          predicted_label: int | None = None) -> np.ndarray:
    """Indices of wrong predictions, optionally for one (true, predicted) pair, most confident first."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    predictions = probabilities.argmax(axis=1)
    wrong = predictions != labels
    if true_label is not None:
        wrong &= labels == true_label
    if predicted_label is not None:
        wrong &= predictions == predicted_label
    indices = np.flatnonzero(wrong)
    confidence = probabilities[indices, predictions[indices]]
    return indices[np.argsort(-confidence, kind="stable")]


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most probable classes of one item as (label, probability), best first."""
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(label), float(probabilities[label])) for label in order]


def predict_probabilities_mirror_averaged(model: keras.Model, images: np.ndarray,
                                          batch_size: int = 1024) -> np.ndarray:
    """Class probabilities that do not depend on which way an item faces.

    The mean of the predictions for each image and for its mirror image (left to right).
    Fashion-MNIST's shoes all point left; people draw and photograph them both ways.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"Expected images of shape (N, 28, 28), got {images.shape}.")
    both = np.concatenate([images, images[:, :, ::-1]])
    probabilities = _predict_as_is(model, both, batch_size)
    return (probabilities[:len(images)] + probabilities[len(images):]) / 2
