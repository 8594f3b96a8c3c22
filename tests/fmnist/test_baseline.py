"""Tests for fmnist.baseline: the textbook's SGDClassifier loop, reported epoch by epoch like a Keras run."""

import numpy as np
from sklearn.linear_model import SGDClassifier

from fmnist import baseline, training


def test_each_epoch_is_one_partial_fit_of_the_textbook_classifier_on_the_runs_split(tiny_dataset):
    config = training.TrainingConfig(epochs=3, seed=7)
    reports = []

    result = baseline.train_baseline(config, tiny_dataset, on_epoch=reports.append)

    # the book's own loop, on the same split
    split = training.split_training_data(config, tiny_dataset.y_train)
    train_x = tiny_dataset.x_train[split.train_indices].reshape(len(split.train_indices), -1) / 255.0
    val_x = tiny_dataset.x_train[split.validation_indices].reshape(len(split.validation_indices), -1) / 255.0
    book = SGDClassifier(loss="log_loss", random_state=7)
    expected = []
    for _ in range(3):
        book.partial_fit(train_x, tiny_dataset.y_train[split.train_indices], classes=np.arange(10))
        expected.append((book.score(train_x, tiny_dataset.y_train[split.train_indices]),
                         book.score(val_x, tiny_dataset.y_train[split.validation_indices])))

    assert [r.epoch for r in reports] == [1, 2, 3] and result.history == reports
    np.testing.assert_allclose([(r.accuracy, r.val_accuracy) for r in reports], expected, atol=1e-6)
    assert all(r.loss > 0 and r.val_loss > 0 and r.complete for r in reports)
    assert reports[-1].val_accuracy > 0.5  # the tiny classes are learnable: chance is 0.1
    assert not result.stopped_early


def test_its_model_gives_probabilities_for_uint8_and_scaled_images(tiny_dataset):
    result = baseline.train_baseline(training.TrainingConfig(epochs=1), tiny_dataset)
    from_uint8 = result.model.predict_proba(tiny_dataset.x_test)
    from_scaled = result.model.predict_proba(tiny_dataset.x_test.astype(np.float32) / 255)

    assert from_uint8.shape == (len(tiny_dataset.x_test), 10)
    np.testing.assert_allclose(from_uint8.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(from_uint8, from_scaled, atol=1e-6)


def test_stop_ends_it_between_epochs_and_keeps_what_was_trained(tiny_dataset):
    reports = []
    result = baseline.train_baseline(training.TrainingConfig(epochs=10), tiny_dataset, on_epoch=reports.append,
                                     should_stop=lambda: len(reports) >= 2)
    assert result.stopped_early and len(result.history) == 2
    assert result.model.predict_proba(tiny_dataset.x_test[:3]).shape == (3, 10)
