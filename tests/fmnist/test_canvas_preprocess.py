"""Tests for the canvas-specific steps of fmnist.preprocess: stroke width, thinning, prepare_drawing."""

import numpy as np
from scipy import ndimage

from fmnist import preprocess


def ring(size: int, outer: int, width: int) -> np.ndarray:
    rows, columns = np.mgrid[0:size, 0:size]
    distance = np.hypot(rows - size / 2, columns - size / 2)
    return ((distance <= outer) & (distance > outer - width)).astype(np.float32)


def test_stroke_width_of_a_bar_and_of_a_ring():
    bar = np.zeros((60, 60), dtype=bool)
    bar[10:50, 20:26] = True
    assert 5 <= preprocess.stroke_width(bar) <= 7
    assert 8 <= preprocess.stroke_width(ring(200, 90, 10) > 0) <= 12
    assert preprocess.stroke_width(np.zeros((5, 5), dtype=bool)) == 0.0


def test_a_thick_outline_is_thinned_to_an_outline_width_at_28_pixels():
    thick = ring(280, 100, 40)  # a 40 px brush on a 200 px drawing: 5.6 px at 28 x 28
    thinned = preprocess.normalise_strokes(thick)
    width_at_28 = preprocess.stroke_width(thinned >= 0.5) * 28 / 200
    assert width_at_28 <= preprocess.DRAWING_STROKE_WIDTH + 0.5
    assert width_at_28 > 1.0
    assert thinned.max() == 1.0 and ((thinned > 0) & (thinned < 1)).any()  # anti-aliased again


def test_thin_outlines_and_coloured_in_drawings_are_left_alone():
    thin = ring(280, 100, 12)
    assert np.array_equal(preprocess.normalise_strokes(thin), thin)
    disc = ring(280, 100, 101)
    assert np.array_equal(preprocess.normalise_strokes(disc), disc)


def coloured_bag_with_a_handle() -> np.ndarray:
    """A bag coloured in with a big brush, its handle an arch drawn above it: the hole under the
    handle is a sixth of the filled-in shape, as much as an outline drawing encloses."""
    bag = np.zeros((280, 280), dtype=np.float32)
    bag[110:250, 40:240] = 1.0
    rows, columns = np.mgrid[0:280, 0:280]
    distance = np.hypot((rows - 112) / 0.8, columns - 140)
    bag[(distance <= 95) & (distance > 75) & (rows < 112)] = 1.0
    return bag


def test_a_coloured_in_part_too_wide_for_a_stroke_is_never_thinned():
    bag = coloured_bag_with_a_handle()
    filled = ndimage.binary_fill_holes(bag > 0.5)
    assert 1 - bag.sum() / filled.sum() > preprocess.HOLE_SHARE  # as much hole as an outline drawing
    assert np.array_equal(preprocess.normalise_strokes(bag), bag)
    prepared = preprocess.prepare_drawing(canvas_of(bag)).array
    assert (prepared > 0.5).mean() > 0.4  # still a solid bag at 28 x 28, not its skeleton


def test_the_faint_edge_of_a_stroke_is_not_ink():
    faint = ring(280, 100, 40) * 0.3  # only anti-aliasing fringe: nothing to thin
    assert np.array_equal(preprocess.normalise_strokes(faint), faint)


def canvas_of(opacity: np.ndarray) -> np.ndarray:
    canvas = np.zeros((*opacity.shape, 4), dtype=np.uint8)
    canvas[:, :, :3] = 255
    canvas[:, :, 3] = np.round(opacity * 255).astype(np.uint8)
    return canvas


def test_prepare_drawing_gives_a_thinner_outline_than_prepare_image():
    canvas = canvas_of(ring(280, 100, 40))
    drawn = preprocess.prepare_drawing(canvas)
    plain = preprocess.prepare_image(canvas)
    assert drawn.array.shape == (28, 28) and drawn.array.max() == 1.0
    assert (drawn.array > 0.5).sum() < 0.8 * (plain.array > 0.5).sum()
    assert (drawn.array[12:16, 12:16] == 0).all()  # still hollow


def test_prepare_drawing_passes_other_pictures_through():
    photo = np.zeros((50, 50), dtype=np.uint8)
    photo[10:40, 10:40] = 200
    assert np.array_equal(preprocess.prepare_drawing(photo).array, preprocess.prepare_image(photo).array)
    canvas = canvas_of(ring(280, 100, 40))
    assert np.array_equal(preprocess.prepare_drawing(canvas, normalise=False).array,
                          preprocess.prepare_image(canvas).array)
