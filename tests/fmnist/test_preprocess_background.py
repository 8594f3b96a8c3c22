"""Tests for the background model of fmnist.preprocess: light that falls off across a photo.

Unit tests draw synthetic garments (a mid-grey body inside a dark outline) under a linear
light falloff; the integration test photographs real test items (see :mod:`bench.lighting`)
and classifies them with a freshly trained mlp model.
"""

import numpy as np
import pytest

from bench import lighting
from fmnist import preprocess

SIZE = 200


def garment(falloff: float = 0.0, vertical: bool = False, paper: float = 1.0, noise: float = 0.0,
            touches_the_bottom: bool = False) -> np.ndarray:
    """A dark outline around a mid-grey body on light paper, lit by light falling off by ``falloff``."""
    darkness = np.zeros((SIZE, SIZE))
    bottom = SIZE if touches_the_bottom else 160
    darkness[40:bottom, 60:140] = 0.9
    darkness[48:bottom if touches_the_bottom else bottom - 8, 68:132] = 0.35
    ramp = np.linspace(0.0, 1.0, SIZE)
    light = 1.0 - falloff * (ramp[:, None] if vertical else ramp[None, :])
    picture = paper * (1.0 - darkness) * light
    picture += np.random.default_rng(0).normal(0.0, noise, picture.shape)
    return np.clip(picture, 0.0, 1.0)


def body(prepared: preprocess.PreparedImage) -> tuple[float, float, float]:
    """Mean brightness of the body (inside the outline) as prepared: all of it, its left half, its right half."""
    array = prepared.array
    columns = np.flatnonzero(array.max(axis=0) > 0.1)
    inside = array[8:20, columns[0] + 3:columns[-1] - 2]
    half = inside.shape[1] // 2
    return float(inside.mean()), float(inside[:, :half].mean()), float(inside[:, half:].mean())


@pytest.mark.parametrize("picture", [
    pytest.param(garment(falloff=0.3), id="30%-left-to-right"),
    pytest.param(garment(falloff=0.5), id="50%-left-to-right"),
    pytest.param(garment(falloff=0.3, vertical=True), id="30%-top-to-bottom"),
    pytest.param(garment(falloff=0.3, noise=0.02), id="30%-with-sensor-noise"),
    pytest.param(garment(falloff=0.3, touches_the_bottom=True), id="30%-item-touching-the-frame"),
    pytest.param(garment(falloff=0.3, paper=0.6), id="30%-on-grey-paper"),
])
def test_a_grey_body_under_falling_light_is_kept_as_in_even_light(picture):
    evenly_lit, _, _ = body(preprocess.prepare_image(garment()))
    assert evenly_lit > 0.3, "the body is mid-grey, not background"
    prepared = preprocess.prepare_image(picture)
    assert prepared.inverted
    whole, left, right = body(prepared)
    assert whole == pytest.approx(evenly_lit, abs=0.06), "the body is not wiped out"
    assert left == pytest.approx(right, abs=0.05), "nor dimmer on the darker side"


def test_a_light_item_on_a_dark_background_with_a_glow_keeps_its_body():
    light_item = 0.05 + 0.9 * (1.0 - garment())  # the same garment, light on a dark background
    glow = 0.25 * np.linspace(0.0, 1.0, SIZE)[None, :]
    expected, _, _ = body(preprocess.prepare_image(light_item))
    whole, left, right = body(preprocess.prepare_image(np.clip(light_item + glow, 0.0, 1.0)))
    assert whole == pytest.approx(expected, abs=0.06)
    assert left == pytest.approx(right, abs=0.05)


def test_light_falling_off_across_an_empty_picture_is_blank():
    gradient = np.tile(1.0 - 0.5 * np.linspace(0.0, 1.0, SIZE), (SIZE, 1))
    with pytest.raises(preprocess.ImageError, match="blank"):
        preprocess.prepare_image(gradient)


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.04])
def test_an_evenly_lit_background_keeps_its_constant_level(noise):
    """No plane where there is no slope: evenly lit uploads are prepared exactly as before."""
    assert preprocess._background_lighting(garment(noise=noise).astype(np.float32)) is None


def test_a_falloff_is_modelled_by_a_plane_through_the_border():
    picture = garment(falloff=0.3).astype(np.float32)
    lighting_plane = preprocess._background_lighting(picture)
    assert lighting_plane is not None and lighting_plane.shape == picture.shape
    expected = 1.0 - 0.3 * np.linspace(0.0, 1.0, SIZE)
    np.testing.assert_allclose(lighting_plane[100], expected, atol=0.01)
    np.testing.assert_allclose(lighting_plane[:, 0], 1.0, atol=0.01)


@pytest.fixture(scope="module")
def photo_model_and_items():
    """The mlp preset trained 3 epochs on the real data, and the first 1,000 real test items."""
    model, dataset = lighting.train_mlp(epochs=3)
    return model, dataset.x_test[:1000], dataset.y_test[:1000]


@pytest.mark.integration
def test_real_items_photographed_under_falling_light_are_recognised_as_in_even_light(photo_model_and_items):
    model, images, labels = photo_model_and_items
    accuracies = lighting.falloff_accuracies(model, images, labels)
    assert accuracies[0] > 0.8, accuracies
    for falloff in lighting.FALLOFFS_PERCENT:
        assert accuracies[falloff] >= accuracies[0] - 0.03, accuracies


@pytest.mark.integration
def test_evenly_lit_uploads_lose_little_against_the_items_themselves(photo_model_and_items):
    from fmnist import evaluation

    model, images, labels = photo_model_and_items
    items_accuracy = float(np.mean(evaluation.predict_probabilities(model, images).argmax(axis=1) == labels))
    for style, accuracy in lighting.plain_accuracies(model, images, labels).items():
        assert accuracy >= items_accuracy - 0.04, (style, accuracy, items_accuracy)
