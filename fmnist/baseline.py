"""The textbook's classic baseline: scikit-learn's logistic regression trained by SGD, epoch by epoch.

Chapter 4 of the book trains ``SGDClassifier(loss="log_loss")`` with one ``partial_fit`` per
epoch; chapter 7 then trains the seed network (Dense(10, softmax)). Both are logistic regression
on the 784 pixels, 7,850 weights each: the network's softmax is multinomial, while scikit-learn
fits one binary logistic regression per class (one versus the rest) and normalises their
probabilities; and each is trained by its own SGD. This module runs that baseline on the same
split as a Keras run and reports each epoch the same way (an
:class:`~fmnist.training.EpochReport` to a plain callable), so the pages show it as a run like any
other: in the queue, with Stop, on the live charts, in the comparison and the epoch time machine
(its checkpoints are ``coef_`` and ``intercept_`` after each epoch).

:class:`BaselineModel` answers the few questions the rest of the app asks a model (probabilities,
a loss, weights per epoch, class templates); :func:`is_baseline` tells the two kinds apart.
"""

from __future__ import annotations

import copy
import io
import time
from typing import Any

import numpy as np

from fmnist.checkpoints import EpochCheckpoints
from fmnist.data import IMAGE_SIZE, NUM_CLASSES, FashionMnist
from fmnist.models import BASELINE_PRESET, build_sgd_classifier
from fmnist.training import (
    BatchListener,
    EpochListener,
    EpochReport,
    PointListener,
    StopCheck,
    TrainingConfig,
    TrainingResult,
    split_training_data,
)

PIXELS = IMAGE_SIZE * IMAGE_SIZE


def is_baseline(model: Any) -> bool:
    """Whether ``model`` is the scikit-learn baseline's (else it is a Keras model)."""
    return isinstance(model, BaselineModel)


def scaled_pixels(images: np.ndarray) -> np.ndarray:
    """(N, 784) float32 in [0, 1] from uint8 images (N, 28, 28), or from floats in [0, 1] of any shape (N, ...).

    ``uint8 / float32(255)``, as the generated script's ``astype("float32") / 255.0``: the same bits.
    """
    images = np.asarray(images)
    flat = images.reshape(len(images), -1)
    if flat.shape[1] != PIXELS:
        raise ValueError(f"Expected images of {PIXELS} pixels, got shape {images.shape}.")
    if images.dtype == np.uint8:
        return flat / np.float32(255)
    return flat.astype(np.float32)


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's ``log_loss`` over the ten classes: the mean of -log(probability of the true class).

    For integer labels that is the quantity Keras calls sparse categorical cross-entropy.
    """
    from sklearn.metrics import log_loss as sklearn_log_loss

    return float(sklearn_log_loss(np.asarray(labels).astype(np.int64), probabilities, labels=np.arange(NUM_CLASSES)))


class BaselineModel:
    """A fitted ``SGDClassifier`` that answers like a Keras model of the project: probabilities per class.

    ``model(images, training=False)`` and ``input_shape`` are there so that code written for a Keras
    model's forward pass (occlusion saliency) works unchanged; ``get_weights`` / ``with_weights``
    serve the epoch time machine.
    """

    name = BASELINE_PRESET
    input_shape = (None, PIXELS)
    layers: tuple = ()

    def __init__(self, classifier) -> None:
        self.classifier = classifier

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 10) float32 probabilities for uint8 images (N, 28, 28) or floats in [0, 1] of any shape (N, ...).

        scikit-learn's one-versus-rest probabilities (each class's logistic function, normalised to
        sum to 1), computed in float64. Where two classes' probabilities round to the same float32
        (both near 1), the class with the larger decision value, the one ``predict`` and ``score``
        choose, gets the next float32 up, so that the most probable class is always ``predict``'s.
        """
        from scipy.special import expit

        flat = scaled_pixels(images)
        probabilities = np.zeros((len(flat), NUM_CLASSES), dtype=np.float32)
        if not len(flat):
            return probabilities
        decision = np.asarray(self.classifier.decision_function(flat), dtype=np.float64)
        one_versus_rest = expit(decision)
        normalised = (one_versus_rest / one_versus_rest.sum(axis=1, keepdims=True)).astype(np.float32)
        rows = np.arange(len(flat))
        winners = decision.argmax(axis=1)
        tied = normalised.argmax(axis=1) != winners
        normalised[rows[tied], winners[tied]] = np.nextafter(normalised[rows[tied]].max(axis=1), np.float32(2))
        probabilities[:, self.classifier.classes_] = normalised
        return probabilities

    def __call__(self, images: np.ndarray, training: bool = False) -> np.ndarray:
        return self.predict_proba(images)

    def loss(self, probabilities: np.ndarray, labels: np.ndarray) -> float:
        """The loss its training history reports, from its probabilities: :func:`log_loss`."""
        return log_loss(probabilities, labels)

    def count_params(self) -> int:
        return int(self.classifier.coef_.size + self.classifier.intercept_.size)

    def get_weights(self) -> list[np.ndarray]:
        """``[coef_ (10, 784), intercept_ (10,)]``, copies."""
        return [np.array(self.classifier.coef_, copy=True), np.array(self.classifier.intercept_, copy=True)]

    def with_weights(self, weights: list[np.ndarray]) -> BaselineModel:
        """A new model with this one's classes and the given ``[coef_, intercept_]``; this one is unchanged."""
        coefficients, intercepts = (np.asarray(weight) for weight in weights)
        if coefficients.shape != self.classifier.coef_.shape or intercepts.shape != self.classifier.intercept_.shape:
            raise ValueError(f"Expected weights of shapes {self.classifier.coef_.shape} and "
                             f"{self.classifier.intercept_.shape}, got {coefficients.shape} and {intercepts.shape}.")
        classifier = copy.deepcopy(self.classifier)
        classifier.coef_ = np.array(coefficients, copy=True)
        classifier.intercept_ = np.array(intercepts, copy=True)
        return BaselineModel(classifier)

    def class_templates(self) -> np.ndarray:
        """(10, 28, 28): ``coef_``, the weight every pixel gives to each class, in the image layout."""
        templates = np.zeros((NUM_CLASSES, PIXELS), dtype=np.float32)
        templates[self.classifier.classes_] = self.classifier.coef_
        return templates.reshape(NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE)

    def weights_file_bytes(self) -> bytes:
        """``coef_``, ``intercept_`` and ``classes_`` as a NumPy ``.npz`` file: plain arrays, no pickled code."""
        buffer = io.BytesIO()
        np.savez(buffer, coef=self.classifier.coef_, intercept=self.classifier.intercept_,
                 classes=self.classifier.classes_)
        return buffer.getvalue()

    def save(self, path: str) -> None:
        """There is no ``.keras`` file for a scikit-learn model: say so, and what to use instead."""
        raise ValueError(f"The {BASELINE_PRESET} baseline is a scikit-learn model, not a Keras one: it cannot be "
                         f"saved as {path}. Its weights are coef_ and intercept_ (the app offers them as .npz).")


def train_baseline(config: TrainingConfig, dataset: FashionMnist, on_epoch: EpochListener | None = None,
                   on_batch: BatchListener | None = None, should_stop: StopCheck | None = None,
                   on_point: PointListener | None = None) -> TrainingResult:
    """``SGDClassifier(loss="log_loss", random_state=seed)`` with one ``partial_fit`` per epoch.

    The split and the sample limit are the Keras runs' (``split_training_data``), so the two can
    be compared on the same validation images. Stop is checked between epochs: scikit-learn's
    epoch cannot be interrupted, and one ``partial_fit`` on 48,000 images takes one to three
    seconds on two cores. There is no within-epoch curve (``on_point`` is never called).
    """
    started = time.perf_counter()
    split = split_training_data(config, dataset.y_train)
    train_images = scaled_pixels(dataset.x_train[split.train_indices])
    train_labels = dataset.y_train[split.train_indices].astype(np.int64)
    validation_images = scaled_pixels(dataset.x_train[split.validation_indices])
    validation_labels = dataset.y_train[split.validation_indices].astype(np.int64)
    classifier = build_sgd_classifier(seed=config.seed)
    model = BaselineModel(classifier)
    checkpoints = EpochCheckpoints()
    history: list[EpochReport] = []
    stopped = False
    for epoch in range(1, config.epochs + 1):
        if should_stop and should_stop():
            stopped = True
            break
        epoch_started = time.perf_counter()
        if on_batch:
            on_batch(epoch, 0.0)
        classifier.partial_fit(train_images, train_labels, classes=np.arange(NUM_CLASSES))
        if on_batch:
            on_batch(epoch, 1.0)  # the epoch's updates are done; its numbers follow
        train_probabilities = model.predict_proba(train_images)
        validation_probabilities = model.predict_proba(validation_images)
        # Accuracy as the book's ``score`` computes it (the largest decision value wins), loss from the
        # probabilities.
        report = EpochReport(
            epoch=epoch, loss=log_loss(train_probabilities, train_labels),
            accuracy=float(np.mean(classifier.predict(train_images) == train_labels)),
            val_loss=log_loss(validation_probabilities, validation_labels),
            val_accuracy=float(np.mean(classifier.predict(validation_images) == validation_labels)),
            seconds=time.perf_counter() - epoch_started)
        history.append(report)
        checkpoints.add(epoch, model.get_weights())
        if on_epoch:
            on_epoch(report)
    del train_images, validation_images
    return TrainingResult(config=config, model=model, history=history, split=split,
                          stopped_early=stopped, seconds=time.perf_counter() - started, checkpoints=checkpoints)


def baseline_config(config: TrainingConfig) -> TrainingConfig:
    """The baseline run that matches ``config``: the same split (validation share, stratification, seed),
    sample limit and number of epochs, so that its curves can be laid over the Keras run's."""
    return TrainingConfig(preset=BASELINE_PRESET, epochs=config.epochs, validation_fraction=config.validation_fraction,
                          stratify=config.stratify, sample_limit=config.sample_limit, seed=config.seed)

