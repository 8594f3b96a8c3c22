"""Tests for fmnist.inside on tiny models with weights the tests set: templates must be those weights."""

import keras
import numpy as np
import pytest

from fmnist import inside, models


def linear_model(kernel: np.ndarray) -> keras.Model:
    model = models.build_seed()
    model.layers[0].set_weights([kernel, np.zeros(10, dtype=np.float32)])
    return model


def test_class_templates_are_the_weights_into_each_class_in_the_image_layout():
    kernel = np.arange(784 * 10, dtype=np.float32).reshape(784, 10)
    templates = inside.class_templates(linear_model(kernel))

    assert templates.shape == (10, 28, 28)
    for label in range(10):
        np.testing.assert_array_equal(templates[label].ravel(), kernel[:, label])
    assert templates[3, 2, 5] == kernel[2 * 28 + 5, 3]  # row 2, column 5 of class 3


def test_hidden_units_come_strongest_first_with_their_own_weights():
    model = models.build_mlp()
    first, second = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    incoming = np.zeros((784, 100), dtype=np.float32)
    outgoing = np.zeros((100, 10), dtype=np.float32)
    incoming[:, 7] = 3.0   # strongest: big in and out
    outgoing[7] = 2.0
    incoming[:, 42] = 1.0
    outgoing[42] = 1.0
    incoming[10, 5] = 100.0  # big in, nothing out: weak
    first.set_weights([incoming, np.zeros(100, dtype=np.float32)])
    second.set_weights([outgoing, np.zeros(10, dtype=np.float32)])

    templates, strengths, units = inside.hidden_unit_templates(model, top=3)

    assert list(units[:2]) == [7, 42]
    np.testing.assert_array_equal(templates[0], np.full((28, 28), 3.0))
    np.testing.assert_allclose(strengths[:2], [3.0 * 28 * 2.0 * np.sqrt(10), 28 * np.sqrt(10)], rtol=1e-5)
    assert templates.shape == (3, 28, 28)


def tiny_convolutional_model() -> keras.Model:
    model = keras.Sequential([keras.Input((28, 28, 1)),
                              keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="first"),
                              keras.layers.Conv2D(1, 1, use_bias=False, name="second"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    kernel = np.zeros((3, 3, 1, 2), dtype=np.float32)
    kernel[1, 1, 0, 0] = 1.0         # filter 0: the identity
    kernel[:, :, 0, 1] = 1.0 / 9     # filter 1: a 3 × 3 mean
    model.get_layer("first").set_weights([kernel])
    model.get_layer("second").set_weights([np.array([[[[2.0], [0.0]]]], dtype=np.float32)])  # 2 × filter 0
    return model


def test_first_layer_filters_and_feature_maps_follow_the_weights():
    model = tiny_convolutional_model()
    filters = inside.first_layer_filters(model)
    assert filters.shape == (2, 3, 3)
    assert filters[0, 1, 1] == 1.0 and filters[0].sum() == 1.0
    np.testing.assert_allclose(filters[1], np.full((3, 3), 1 / 9))

    image = np.zeros((28, 28), dtype=np.float32)
    image[10, 12] = 0.9
    maps = inside.feature_maps(model, image)

    assert [name for name, _ in maps] == ["first", "second"]
    first_maps = maps[0][1]
    assert first_maps.shape == (2, 28, 28)
    np.testing.assert_allclose(first_maps[0], image, atol=1e-6)
    np.testing.assert_allclose(first_maps[1][9:12, 11:14], np.full((3, 3), 0.1), atol=1e-6)
    np.testing.assert_allclose(maps[1][1][0], 2 * image, atol=1e-6)


def test_each_view_names_the_models_it_is_for():
    assert inside.model_family(models.build_seed()) == "linear"
    assert inside.model_family(models.build_mlp()) == "mlp"
    assert inside.model_family(models.build_cnn()) == "convolutional"
    with pytest.raises(ValueError, match="linear model"):
        inside.class_templates(models.build_mlp())
    with pytest.raises(ValueError, match="MLP"):
        inside.hidden_unit_templates(models.build_seed())
    with pytest.raises(ValueError, match="convolutional"):
        inside.first_layer_filters(models.build_seed())
    with pytest.raises(ValueError, match="one 28 × 28 image"):
        inside.feature_maps(models.build_cnn(), np.zeros((28, 27)))
