"""The textbook's classic baseline: scikit-learn's logistic regression trained by SGD, epoch by epoch.

Chapter 4 of the book trains ``SGDClassifier(loss="log_loss")`` with one ``partial_fit`` per
epoch; chapter 7 then shows that the seed network (Dense(10, softmax)) is the same model family,
a linear classifier with a softmax, trained by a different optimiser. This module runs that
baseline on the same split as a Keras run and reports each epoch the same way (an
:class:`~fmnist.training.EpochReport` to a plain callable), so the pages show it as a run like any
other: in the queue, with Stop, on the live charts and in the comparison.
"""

from __future__ import annotations

import time

import numpy as np

from fmnist.data import NUM_CLASSES, FashionMnist
from fmnist.training import (
    BatchListener,
    EpochListener,
    EpochReport,
    StopCheck,
    TrainingConfig,
    TrainingResult,
    split_training_data,
)

BASELINE_PRESET = "sgd-classifier"


class BaselineModel:
    """A fitted ``SGDClassifier`` that answers like a Keras model of the project: probabilities per class."""

    name = BASELINE_PRESET
    input_shape = (None, 784)

    def __init__(self, classifier) -> None:
        self.classifier = classifier

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 10) probabilities for uint8 images (N, 28, 28) or floats in [0, 1] of any shape (N, ...)."""
        images = np.asarray(images)
        flat = images.reshape(len(images), -1).astype(np.float32)
        if images.dtype == np.uint8:
            flat /= 255.0
        probabilities = np.zeros((len(flat), NUM_CLASSES), dtype=np.float32)
        probabilities[:, self.classifier.classes_] = self.classifier.predict_proba(flat)
        return probabilities


def _loss_and_accuracy(classifier, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import log_loss

    probabilities = classifier.predict_proba(images)
    accuracy = float(np.mean(classifier.classes_[probabilities.argmax(axis=1)] == labels))
    return float(log_loss(labels, probabilities, labels=classifier.classes_)), accuracy


def train_baseline(config: TrainingConfig, dataset: FashionMnist, on_epoch: EpochListener | None = None,
                   on_batch: BatchListener | None = None, should_stop: StopCheck | None = None) -> TrainingResult:
    """``SGDClassifier(loss="log_loss", random_state=seed)`` with one ``partial_fit`` per epoch.

    The split and the sample limit are the Keras runs' (``split_training_data``), so the two can
    be compared on the same validation images. Stop is checked between epochs: one epoch of
    ``partial_fit`` on 48,000 images takes a second or two.
    """
    from sklearn.linear_model import SGDClassifier

    started = time.perf_counter()
    split = split_training_data(config, dataset.y_train)
    train_images = dataset.x_train[split.train_indices].reshape(len(split.train_indices), -1) / np.float32(255)
    train_labels = dataset.y_train[split.train_indices].astype(np.int64)
    validation_images = dataset.x_train[split.validation_indices].reshape(len(split.validation_indices), -1) \
        / np.float32(255)
    validation_labels = dataset.y_train[split.validation_indices].astype(np.int64)
    classifier = SGDClassifier(loss="log_loss", random_state=config.seed)
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
        loss, accuracy = _loss_and_accuracy(classifier, train_images, train_labels)
        val_loss, val_accuracy = _loss_and_accuracy(classifier, validation_images, validation_labels)
        report = EpochReport(epoch=epoch, loss=loss, accuracy=accuracy, val_loss=val_loss,
                             val_accuracy=val_accuracy, seconds=time.perf_counter() - epoch_started)
        history.append(report)
        if on_batch:
            on_batch(epoch, 1.0)
        if on_epoch:
            on_epoch(report)
    return TrainingResult(config=config, model=BaselineModel(classifier), history=history, split=split,
                          stopped_early=stopped, seconds=time.perf_counter() - started)
