"""Tests for fmnist.explain on tiny models with known weights, and the mirror-averaged prediction."""

import keras
import numpy as np
import pytest

from fmnist import evaluation, explain, models


def corner_model() -> keras.Model:
    """Dense(10, softmax) on 784 pixels: class 1 is the brightness of the top-left 6 × 6 corner."""
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10, activation="softmax")])
    kernel = np.zeros((784, 10), dtype=np.float32)
    corner = np.zeros((28, 28), dtype=np.float32)
    corner[:6, :6] = 1.0
    kernel[:, 1] = corner.ravel()
    model.layers[-1].set_weights([kernel, np.zeros(10, dtype=np.float32)])
    return model


def test_occlusion_points_at_the_pixels_that_decide():
    image = np.full((28, 28), 0.5, dtype=np.float32)
    saliency = explain.occlusion_saliency(corner_model(), image)
    assert saliency.shape == (28, 28) and saliency.max() == pytest.approx(1.0)
    assert saliency[:6, :6].mean() > 0.5
    assert saliency[10:, 10:].max() == 0.0  # covering these pixels changes nothing


def test_occlusion_refuses_other_shapes():
    with pytest.raises(ValueError):
        explain.occlusion_saliency(corner_model(), np.zeros((10, 10)))


def test_occlusion_of_the_cnn_is_one_model_call_of_every_patch_and_the_original():
    """What keeps the why panel quick (its time is measured by ``python -m bench``, the data group):
    the 169 patched images and the original go through the network together, not one by one."""
    model = models.build_cnn()
    batches = []

    def counting_model(images, training=False):
        batches.append(len(images))
        return model(images, training=training)

    counting_model.input_shape = model.input_shape
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    saliency = explain.occlusion_saliency(counting_model, image)
    assert batches == [13 * 13 + 1]
    assert saliency.shape == (28, 28)


def test_overlay_is_an_rgb_picture():
    overlay = explain.saliency_overlay(np.ones((28, 28)), np.eye(28), scale=2)
    assert overlay.shape == (56, 56, 3) and overlay.dtype == np.uint8
    assert overlay[0, 0, 0] > overlay[0, 2, 0]  # the salient diagonal is redder


def two_feature_model() -> keras.Model:
    """Penultimate features: the values of pixels 0 and 1; then any classifier."""
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(2, use_bias=False),
                              keras.layers.Dense(10, activation="softmax")])
    kernel = np.zeros((784, 2), dtype=np.float32)
    kernel[0, 0] = kernel[1, 1] = 1.0
    model.layers[0].set_weights([kernel])
    return model


def test_nearest_training_images_are_nearest_in_the_models_features():
    model = two_feature_model()
    images = np.zeros((8, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = [0, 10, 20, 30, 40, 50, 60, 255]
    images[:, 0, 1] = 0
    images[:, 20, 20] = 255  # differs from the query but is not a feature: ignored
    labels = np.arange(8) % 10
    index = explain.build_neighbour_index(model, images, np.arange(1, 8))  # image 0 is not indexed
    query = np.zeros((28, 28), dtype=np.float32)
    query[0, 0] = 30 / 255
    found = explain.nearest_training_images(model, index, query, labels)
    assert [neighbour.training_index for neighbour in found] == [3, 2, 4, 1, 5]
    assert [neighbour.label for neighbour in found] == [3, 2, 4, 1, 5]
    assert found[0].distance == pytest.approx(0.0, abs=1e-6)
    features = explain.features(model, images[:2])
    assert features.shape == (2, 2)


def test_the_index_needs_images():
    with pytest.raises(ValueError):
        explain.build_neighbour_index(two_feature_model(), np.zeros((3, 28, 28), np.uint8), np.array([], int))


def left_right_model() -> keras.Model:
    """Class 5 grows with the left half's brightness, class 9 with the right half's."""
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    left = np.zeros((28, 28), dtype=np.float32)
    left[:, :14] = 0.05
    kernel = np.zeros((784, 10), dtype=np.float32)
    kernel[:, 5] = left.ravel()
    kernel[:, 9] = left[:, ::-1].ravel()
    model.layers[-1].set_weights([kernel, np.zeros(10, dtype=np.float32)])
    return model


def test_mirror_averaged_prediction_does_not_care_which_way_an_item_faces():
    model = left_right_model()
    shoe = np.zeros((2, 28, 28), dtype=np.float32)
    shoe[:, 10:20, 2:12] = 1.0
    shoe[1] = shoe[0, :, ::-1]
    plain = evaluation.predict_probabilities(model, shoe)
    assert plain[0].argmax() == 5 and plain[1].argmax() == 9  # the plain model does care
    averaged = evaluation.predict_probabilities_mirror_averaged(model, shoe)
    np.testing.assert_allclose(averaged[0], averaged[1], atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        evaluation.predict_probabilities_mirror_averaged(model, shoe[0])
