"""Tests for fmnist.drawings: canvas-like renderings of test images, deterministic and test-only."""

import numpy as np
import pytest

from fmnist import data, drawings


def block_image() -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2:26, 6:22] = 200
    return image


@pytest.mark.parametrize("style", drawings.STYLES)
def test_a_drawing_looks_like_canvas_output(style):
    drawing = drawings.render_drawing(block_image(), style, np.random.default_rng(0))
    assert drawing.shape == (280, 280, 4) and drawing.dtype == np.uint8
    assert (drawing[:, :, :3] == 255).all()  # white ink; where it is drawn is in the alpha
    alpha = drawing[:, :, 3]
    assert alpha.max() == 255 and (alpha == 0).mean() > 0.3
    assert ((alpha > 0) & (alpha < 255)).any()  # an anti-aliased edge


def test_an_outline_is_hollow_where_the_silhouette_is_filled():
    outline = drawings.render_drawing(block_image(), "outline", np.random.default_rng(4))
    silhouette = drawings.render_drawing(block_image(), "silhouette", np.random.default_rng(4))
    assert outline[:, :, 3].sum() < 0.7 * silhouette[:, :, 3].sum()
    rows, columns = np.nonzero(silhouette[:, :, 3] == 255)
    centre = outline[int(rows.mean()), int(columns.mean()), 3]
    assert centre == 0


def test_drawings_are_deterministic_and_vary_between_items():
    images = np.stack([block_image()] * 3)
    first = drawings.render_test_drawings(images, "outline", seed=1)
    again = drawings.render_test_drawings(images, "outline", seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[1])  # the same item drawn twice is drawn differently


def test_unknown_styles_and_shapes_are_refused():
    with pytest.raises(ValueError):
        drawings.render_drawing(block_image(), "crayon", np.random.default_rng(0))
    with pytest.raises(ValueError):
        drawings.render_drawing(np.zeros((10, 10)), "outline", np.random.default_rng(0))


def test_the_set_uses_test_images_only_and_every_class(tiny_dataset):
    shuffled_training = data.FashionMnist(tiny_dataset.x_train[::-1].copy(), tiny_dataset.y_train[::-1].copy(),
                                          tiny_dataset.x_test, tiny_dataset.y_test, "test", False)
    first = drawings.build_drawing_set(tiny_dataset, per_class=2)
    second = drawings.build_drawing_set(shuffled_training, per_class=2)
    assert np.array_equal(first.labels, tiny_dataset.y_test[first.test_indices])
    assert sorted(set(first.labels.tolist())) == list(range(10))
    for style in drawings.STYLES:
        assert first.images[style].shape == (20, 28, 28)
        assert np.array_equal(first.images[style], second.images[style])


def test_the_standard_set_is_kept_on_disk(tiny_dataset, tmp_path):
    built = drawings.standard_drawing_set(tiny_dataset, per_class=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("drawings-*.npz"))) == 1
    drawings._STANDARD_SETS.clear()
    read = drawings.standard_drawing_set(tiny_dataset, per_class=1, cache_dir=tmp_path)
    assert np.array_equal(read.images["outline"], built.images["outline"])
    assert np.array_equal(read.labels, built.labels)


def test_a_page_can_ask_for_the_set_without_waiting_for_it(tiny_dataset):
    import time

    drawings._STANDARD_SETS.clear()
    assert drawings.standard_drawing_set_if_ready(tiny_dataset, per_class=1) is None  # drawing has started
    deadline = time.monotonic() + 60
    while (ready := drawings.standard_drawing_set_if_ready(tiny_dataset, per_class=1)) is None:
        assert time.monotonic() < deadline, "the background drawing never finished"
        time.sleep(0.2)
    assert len(ready.labels) == 10


def test_asking_whether_the_set_is_ready_never_waits_for_a_build_in_progress(tiny_dataset, tmp_path, monkeypatch):
    """A page polls every 2 s while the set is drawn (a minute or more): each poll must return at
    once, or the page's script run hangs for the whole build."""
    import threading
    import time

    release = threading.Event()
    real_build = drawings.build_drawing_set

    def slow_build(*args, **kwargs):
        release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(drawings, "build_drawing_set", slow_build)
    monkeypatch.setattr("fmnist.data.default_cache_dir", lambda: tmp_path)
    drawings._STANDARD_SETS.clear()
    try:
        assert drawings.standard_drawing_set_if_ready(tiny_dataset, per_class=2) is None  # the build starts
        time.sleep(0.3)  # the builder now holds its lock
        started = time.monotonic()
        assert drawings.standard_drawing_set_if_ready(tiny_dataset, per_class=2) is None
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
    deadline = time.monotonic() + 60
    while (ready := drawings.standard_drawing_set_if_ready(tiny_dataset, per_class=2)) is None:
        assert time.monotonic() < deadline, "the background drawing never finished"
        time.sleep(0.1)
    assert len(ready.labels) == 20


def test_training_drawings_are_made_from_training_images_each_once(tiny_dataset):
    drawn = drawings.draw_training_items(tiny_dataset, share=0.2)
    per_class = np.bincount(tiny_dataset.y_train[drawn.sources], minlength=10)
    expected = [round(0.2 * count) for count in np.bincount(tiny_dataset.y_train, minlength=10)]
    assert per_class.tolist() == expected
    assert len(np.unique(drawn.sources)) == len(drawn.sources)
    assert drawn.images.shape == (len(drawn.sources), 28, 28) and drawn.images.dtype == np.uint8
    other_test_set = data.FashionMnist(tiny_dataset.x_train, tiny_dataset.y_train, tiny_dataset.x_test[::-1].copy(),
                                       tiny_dataset.y_test[::-1].copy(), "test", False)
    again = drawings.draw_training_items(other_test_set, share=0.2)
    assert np.array_equal(again.sources, drawn.sources) and np.array_equal(again.images, drawn.images)
    changed = tiny_dataset.x_train.copy()
    changed[drawn.sources[0], :, 14:] = 0  # half the item gone: another shape to draw
    redrawn = drawings.draw_training_items(data.FashionMnist(changed, tiny_dataset.y_train, tiny_dataset.x_test,
                                                             tiny_dataset.y_test, "test", False), share=0.2)
    assert not np.array_equal(redrawn.images[0], drawn.images[0]), "each drawing is drawn from its own image"
    assert np.array_equal(redrawn.images[1:], drawn.images[1:])
    with pytest.raises(ValueError):
        drawings.draw_training_items(tiny_dataset, share=1.5)


def test_training_drawings_are_kept_on_disk_and_a_damaged_cache_is_drawn_again(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(drawings, "_TRAINING_DRAWINGS", [])
    first = drawings.training_drawings(tiny_dataset, share=0.1, cache_dir=tmp_path, workers=1)
    cached, = tmp_path.glob("training-drawings-*.npz")
    assert drawings.training_drawings(tiny_dataset, share=0.1, cache_dir=tmp_path) is first, "kept in memory"
    calls = []
    monkeypatch.setattr(drawings, "draw_training_items", lambda *a, **k: calls.append(1) or first)
    monkeypatch.setattr(drawings, "_TRAINING_DRAWINGS", [])
    read = drawings.training_drawings(tiny_dataset, share=0.1, cache_dir=tmp_path)
    assert calls == [] and np.array_equal(read.images, first.images), "read back from disk, not drawn again"
    for damage in (b"not an npz file", None):
        if damage is None:  # a readable file whose sources point past the training images
            np.savez(cached, images=first.images, sources=first.sources + len(tiny_dataset.x_train))
        else:
            cached.write_bytes(damage)
        monkeypatch.setattr(drawings, "_TRAINING_DRAWINGS", [])
        drawings.training_drawings(tiny_dataset, share=0.1, cache_dir=tmp_path)
    assert len(calls) == 2, "a damaged cache is never used: the drawings are drawn again"


def trousers_image() -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2:8, 8:20] = 200  # the waist
    image[2:27, 7:12] = 200  # the legs
    image[2:27, 16:21] = 200
    return image


def test_an_open_outline_leaves_out_the_hem_and_the_gap_between_the_legs():
    closed = drawings.render_drawing(trousers_image(), "outline", np.random.default_rng(3))[:, :, 3]
    drawn_open = drawings.render_drawing(trousers_image(), drawings.OPEN_OUTLINE, np.random.default_rng(3))[:, :, 3]
    ink_rows = np.flatnonzero(closed.max(axis=1) > 0)
    top, bottom = ink_rows[0], ink_rows[-1]
    ink_columns = np.flatnonzero(closed.max(axis=0) > 0)
    middle = (ink_columns[0] + ink_columns[-1]) // 2
    lower_half = slice((top + bottom) // 2 + 20, bottom - 20)
    assert closed[lower_half, middle - 3:middle + 4].max() > 0, "the closed outline goes round each leg"
    assert drawn_open[lower_half, middle - 3:middle + 4].max() == 0, "no stroke between the legs"
    open_rows = np.flatnonzero(drawn_open.max(axis=1) > 0)
    assert open_rows[-1] < bottom - 3, "the hem is left undrawn"
    assert drawn_open[top:top + 10].max() == 255, "the waistband is drawn"
