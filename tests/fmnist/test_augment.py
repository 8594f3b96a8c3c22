"""Tests for fmnist.augment: the bit-level shape operations against scipy, the layer, and the option."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from fmnist import augment, models, training


def bits_of(mask: np.ndarray) -> tf.Tensor:
    return augment.to_row_bits(tf.constant(mask[None]))


def mask_of(bits: tf.Tensor) -> np.ndarray:
    return augment.from_row_bits(bits).numpy()[0].astype(bool)


@pytest.mark.parametrize("seed", range(5))
def test_row_bits_round_trip_and_erosion_match_scipy(seed):
    mask = np.random.default_rng(seed).random((28, 28)) < 0.7
    assert np.array_equal(mask_of(bits_of(mask)), mask)
    expected = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), border_value=0)
    assert np.array_equal(mask_of(augment.erode_bits(bits_of(mask))), expected)


def test_fill_closes_a_ring_but_not_the_gap_between_trouser_legs():
    ring = np.zeros((28, 28), dtype=bool)
    ring[4:20, 4:20] = True
    ring[8:16, 8:16] = False
    assert mask_of(augment.fill_bits(bits_of(ring)))[8:16, 8:16].all()
    trousers = np.zeros((28, 28), dtype=bool)
    trousers[0:4, 6:22] = True  # waistband
    trousers[4:28, 6:12] = True  # left leg
    trousers[4:28, 16:22] = True  # right leg
    filled = mask_of(augment.fill_bits(bits_of(trousers)))
    assert np.array_equal(filled, trousers)
    assert np.array_equal(filled, augment.enclosed_fill(trousers))


def test_outline_is_the_shape_minus_its_erosion_with_the_frame_as_background():
    image = np.zeros((28, 28), dtype=np.float32)
    image[:, 10:18] = 0.8  # touches the top and bottom of the frame, as Fashion-MNIST items do
    versions = augment.example_transforms(image)
    outline = versions["outline 1 px"]
    assert outline[0, 10:18].all() and outline[27, 10:18].all()  # the frame edge is outlined too
    assert outline[5:23, 11:17].sum() == 0
    assert np.array_equal(outline, augment.outline(image, 1))
    assert versions["outline 3 px"].sum() > versions["outline 2 px"].sum() > outline.sum()


def test_the_stick_figure_of_trousers_is_a_waistband_and_one_line_per_leg():
    trousers = np.zeros((28, 28), dtype=bool)
    trousers[0:5, 4:24] = True  # a waistband wider than tall
    trousers[5:28, 4:11] = True  # two legs taller than wide
    trousers[5:28, 17:24] = True
    lines = mask_of(augment.centre_lines(bits_of(trousers)))
    assert not (lines & ~trousers).any(), "centre lines stay inside the shape"
    # Above the legs the columns run down into them, so the waistband's line spans the gap between the legs.
    assert lines[2, 11:17].all() and not lines[[0, 1, 3, 4], 11:17].any(), "the waistband: its middle row"
    for leg_middle in (7, 20):
        assert lines[6:24, leg_middle].all(), "each leg: its middle column (ending half a leg's width short)"
        assert not lines[6:, leg_middle - 2].any() and not lines[6:, leg_middle + 2].any()
    assert not lines[10:, 12:17].any(), "nothing in the gap between the legs"
    stick = augment.example_transforms(trousers.astype(np.float32))["stick figure"]
    assert np.array_equal(stick > 0, mask_of(augment.dilate_bits(augment.centre_lines(bits_of(trousers)))))
    assert stick[8:24, 7:9].all(), "drawn two pixels wide, as a thinned canvas stroke"


def test_the_stick_figure_of_a_strap_is_its_centre_line_whichever_way_it_runs():
    for rows, columns in ((slice(10, 14), slice(2, 26)), (slice(2, 26), slice(10, 14))):
        strap = np.zeros((28, 28), dtype=bool)
        strap[rows, columns] = True
        lines = mask_of(augment.centre_lines(bits_of(strap)))
        along, width = (1, 0) if strap.sum(axis=1).max() > strap.sum(axis=0).max() else (0, 1)
        assert lines.any(axis=width).sum() >= 18, "a line along most of the strap"
        assert lines.any(axis=along).sum() <= 2, "one or two pixels across it"


def test_the_open_outer_outline_of_trousers_is_their_sides_and_waistband_only():
    trousers = np.zeros((28, 28), dtype=bool)
    trousers[0:5, 8:20] = True
    trousers[5:28, 8:13] = True
    trousers[5:28, 15:20] = True
    outline = mask_of(augment.open_outer_outline(bits_of(trousers), width=2))
    assert not (outline & ~trousers).any(), "drawn on the item only"
    assert outline[0:2, 8:20].all(), "the waistband"
    assert outline[2:25, 8:10].all() and outline[2:25, 18:20].all(), "the outer sides, two pixels wide"
    assert not outline[26:, :].any(), "open at the bottom: the ends of the legs are not drawn"
    assert not outline[6:, 10:18].any(), "no inner contour: the gap between the legs is left out"


def test_narrow_drawings_are_widened_and_wide_ones_are_not():
    narrow = np.zeros((2, 28, 28, 1), np.float32)
    narrow[0, :, 9:19] = 1.0  # 10 pixels wide, like a pair of trousers
    narrow[1, :, 2:26] = 1.0  # 24 pixels wide, like a pullover
    factors = augment.widening_factors(tf.constant(narrow), tf.constant([1.0, 1.0])).numpy()
    assert factors[0] == pytest.approx(min(augment.MAX_WIDENING, augment.NARROW_WIDTH / 10))
    assert factors[1] == pytest.approx(1.0)
    assert augment.widening_factors(tf.constant(narrow), tf.constant([0.0, 0.0])).numpy() == pytest.approx([1, 1])
    identity = tf.constant(_draws(), tf.float32)
    widened = augment.distort(tf.constant(narrow[:1]), identity, tf.constant([1.5])).numpy()[0, :, :, 0]
    assert (widened[14] > 0.5).sum() == pytest.approx(15, abs=1), "10 pixels stretched 1.5 times about the centre"


@pytest.mark.parametrize("shape", [(784,), (28, 28), (28, 28, 1)])
def test_layer_is_the_identity_at_inference_and_keeps_the_shape_in_training(shape):
    images = np.random.default_rng(0).random((16, *shape)).astype(np.float32)
    layer = augment.DrawingAugmentation(seed=3)
    assert np.array_equal(np.asarray(layer(images, training=False)), images)
    trained_view = np.asarray(layer(images, training=True))
    assert trained_view.shape == images.shape
    assert not np.array_equal(trained_view, images)


def test_layer_is_seeded_and_replaces_about_its_share():
    images = np.random.default_rng(1).random((400, 28, 28, 1)).astype(np.float32) * 0.5
    first = np.asarray(augment.DrawingAugmentation(seed=7, mirror_share=0.0)(images, training=True))
    again = np.asarray(augment.DrawingAugmentation(seed=7, mirror_share=0.0)(images, training=True))
    assert np.array_equal(first, again)
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(first, images, strict=True)])
    assert abs(changed - augment.DRAWING_SHARE) < 0.1
    mirrored = np.asarray(augment.DrawingAugmentation(seed=7, drawing_share=0.0, mirror_share=1.0)(
        images, training=True))
    assert np.array_equal(mirrored, images[:, :, ::-1])


def test_bad_shares_are_refused():
    with pytest.raises(ValueError):
        augment.DrawingAugmentation(drawing_share=1.5)


def test_wrapped_model_predicts_like_the_original_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build_cnn()
    wrapped = augment.with_drawing_augmentation(model, seed=1)
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(wrapped.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert augment.has_drawing_augmentation(wrapped) and not augment.has_drawing_augmentation(model)
    path = tmp_path / "model.keras"
    wrapped.save(path)
    loaded = keras.saving.load_model(path)
    assert augment.has_drawing_augmentation(loaded)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), wrapped.predict(images, verbose=0), atol=1e-6)


def test_the_option_is_off_for_the_seed_and_on_for_the_recommended_preset():
    assert not training.TrainingConfig().uses_drawings
    assert training.TrainingConfig(preset=models.RECOMMENDED_PRESET).uses_drawings
    assert not training.TrainingConfig(preset=models.RECOMMENDED_PRESET, drawings=False).uses_drawings
    assert training.TrainingConfig(drawings=True).uses_drawings
    with pytest.raises(ValueError):
        training.TrainingConfig(drawings="yes")


def test_training_adds_the_layer_only_when_the_option_is_on(tiny_dataset):
    plain = training.train(training.TrainingConfig(epochs=1), tiny_dataset)
    assert not augment.has_drawing_augmentation(plain.model)
    drawn = training.train(training.TrainingConfig(epochs=1, drawings=True), tiny_dataset)
    assert augment.has_drawing_augmentation(drawn.model)
    assert drawn.history[0].accuracy > 0  # it trained, through the engine's grouped loop


def test_the_fast_engines_drawing_runs_learn_from_canvas_drawings_and_plain_fit_from_the_layers_own(tiny_dataset):
    """The engine swaps canvas drawings in (fmnist.drawings.training_drawings); its runs' layer only
    mirrors (its own 28 x 28 versions taught less: see training.IN_GRAPH_DRAWING_SHARE). Plain
    ``fit`` gets no canvas drawings, so its layer makes its own."""
    fast = training.train(training.TrainingConfig(epochs=1, drawings=True), tiny_dataset)
    plain = training.train(training.TrainingConfig(epochs=1, drawings=True, fast=False), tiny_dataset)
    share = {name: next(layer.drawing_share for layer in result.model.layers
                        if isinstance(layer, augment.DrawingAugmentation))
             for name, result in (("fast", fast), ("plain", plain))}
    assert share == {"fast": training.IN_GRAPH_DRAWING_SHARE, "plain": augment.DRAWING_SHARE}
    assert augment.DRAWING_SHARE > 0


def _draws(scale=1.0, aspect=0.0, rotation=0.0, shear=0.0, shift_x=0.0, shift_y=0.0):
    """Uniform draws that give these distortion values (each sign-symmetric one in [-1, 1] of its bound)."""
    low, high = augment.DISTORTION["scale"]
    return [[(scale - low) / (high - low), (aspect + 1) / 2, (rotation + 1) / 2, (shear + 1) / 2,
             (shift_x + 1) / 2, (shift_y + 1) / 2]]


def test_distortion_without_change_is_the_identity_and_shifts_move_by_whole_pixels():
    import tensorflow as tf

    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 10:18, 6:22] = 1.0
    same = augment.distort(tf.constant(image), tf.constant(_draws(), tf.float32)).numpy()
    np.testing.assert_allclose(same, image, atol=1e-6)
    shifted = augment.distort(tf.constant(image), tf.constant(_draws(shift_x=1.0, shift_y=-1.0), tf.float32)).numpy()
    shift = augment.DISTORTION["shift_pixels"]
    np.testing.assert_allclose(shifted[0, 10 - int(shift):18 - int(shift), 6 + int(shift):22 + int(shift)], 1.0, atol=1e-6)


def test_distortion_scales_and_tilts_about_the_centre():
    import tensorflow as tf

    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 8:20, 8:20] = 1.0
    _, high = augment.DISTORTION["scale"]
    bigger = augment.distort(tf.constant(image), tf.constant(_draws(scale=high), tf.float32)).numpy()[0, :, :, 0]
    assert bigger.sum() == pytest.approx(image.sum() * high ** 2, rel=0.08)
    rows, columns = np.nonzero(bigger > 0.5)
    assert rows.mean() == pytest.approx(13.5, abs=0.3) and columns.mean() == pytest.approx(13.5, abs=0.3)
    tilted = augment.distort(tf.constant(image), tf.constant(_draws(rotation=1.0), tf.float32)).numpy()[0, :, :, 0]
    assert tilted.sum() == pytest.approx(image.sum(), rel=0.05)  # a rotation keeps the area
    assert not np.allclose(tilted, image[0, :, :, 0], atol=0.1)


def test_the_layer_distorts_drawing_like_versions_but_leaves_the_photos_alone():
    layer = augment.DrawingAugmentation(drawing_share=0.0, mirror_share=0.0, seed=5)
    images = np.random.default_rng(0).random((16, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(images, training=True)), images)


def test_the_compiled_layer_makes_what_its_pieces_make_uncompiled():
    """The layer runs its pure work as XLA clusters (2.0 ms a batch of 128 here, against 4.5 ms as
    separate kernels): given the same random draws, they must make the images the plain TensorFlow
    functions make, inside a traced training function as Keras calls it."""
    images = tf.constant(np.random.default_rng(3).random((64, 28, 28, 1)).astype(np.float32)
                         * (np.arange(28) % 7 < 5)[None, :, None, None])
    layer = augment.DrawingAugmentation(drawing_share=1.0, mirror_share=0.0, seed=11)
    compiled = tf.function(lambda batch: layer(batch, training=True))(images).numpy()

    generator = keras.random.SeedGenerator(11)
    draws = [keras.random.uniform((64,), *augment.THRESHOLD_RANGE, seed=generator),
             keras.random.uniform((64, 1), seed=generator), keras.random.uniform((64,), seed=generator),
             keras.random.uniform((64,), seed=generator)]
    chosen, widening = augment.drawing_like(images, *draws)
    expected = augment.distort(chosen, keras.random.uniform((64, 6), seed=generator), widening)
    expected = (expected * keras.random.uniform((64, 1, 1, 1), *augment.INK_RANGE, seed=generator)).numpy()
    assert expected.max() > 0.5, "the test's images make drawings"
    np.testing.assert_allclose(compiled, expected, atol=1e-5)
