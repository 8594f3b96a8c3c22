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
