"""A drawing test set the project makes itself: Fashion-MNIST test items redrawn as a person would.

People draw on Try it's 280 × 280 canvas with a round white brush (6-40 px, 18 by default) on a
transparent layer, as outlines or coloured-in silhouettes, a little wobbly, with shoes facing
either way. Fashion-MNIST models never see such pictures. This module renders test images (never
training images) in that form, deterministically from a seed, and passes them through the same
path as the canvas (:func:`fmnist.preprocess.prepare_drawing`), so that "accuracy on drawings"
can be measured beside test accuracy.

The renderer works at canvas scale on a signed distance field, not on 28 × 28 pixels: strokes
get a round, anti-aliased edge like the canvas's, widths vary per drawing and along the stroke,
contours are smoothed or simplified by different amounts, wobbled by a smooth random warp, and
some outlines are left open. Numpy, scipy and Pillow only.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pathlib
import threading

import numpy as np
from PIL import Image
from scipy import ndimage

from fmnist.data import NUM_CLASSES, FashionMnist

CANVAS_SIZE = 280
"""Try it's canvas is 280 × 280 pixels."""

STYLES = ("outline", "silhouette")
"""How a person draws an item: its outline only, or coloured in."""

OPEN_OUTLINE = "open outline"
"""A training-only style: the outer contour drawn in a few strokes, open at the bottom and with no
inner gaps: a pair of trousers as a waistband and two outer legs, a dress without its hem."""

BRUSH_WIDTHS = (6.0, 40.0)
"""The canvas's brush slider range in pixels; drawings use widths across it."""

DEFAULT_PER_CLASS = 50
"""Items per class and style in the standard set: 500 drawings per style."""

DEFAULT_SEED = 2026


@dataclasses.dataclass(frozen=True)
class DrawingSet:
    """Drawings of test items, already prepared as the canvas's drawings are (28 × 28 in [0, 1]).

    Attributes
    ----------
    images
        ``style -> (N, 28, 28) float32``, the prepared drawings.
    labels
        (N,) true classes.
    test_indices
        (N,) which test image each drawing was made from.
    """

    images: dict[str, np.ndarray]
    labels: np.ndarray
    test_indices: np.ndarray


def pick_test_items(labels: np.ndarray, per_class: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``per_class`` test indices of each class, chosen by a seeded draw, in class order."""
    if per_class < 1:
        raise ValueError(f"Draw at least one item per class, not {per_class!r}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        if len(members) == 0:
            continue
        chosen.append(np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False)))
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _smooth_field(rng: np.random.Generator, size: int, cells: int, amplitude: float) -> np.ndarray:
    """A smooth random field: a coarse grid of normal values, upsampled with cubic splines."""
    coarse = rng.normal(0.0, amplitude, size=(cells, cells))
    upsampling = _spline_upsampling(cells, size)
    return upsampling @ coarse @ upsampling.T


@functools.lru_cache(maxsize=16)
def _spline_upsampling(cells: int, size: int) -> np.ndarray:
    """(size, cells): ``ndimage.zoom(grid, size / cells, order=3)`` as a matrix on each side.

    The cubic spline is separable and linear, so ``M @ grid @ M.T`` is that zoom to within 1e-13,
    in a twentieth of the time: the zoom was 40% of drawing a training drawing.
    """
    basis = np.eye(cells)
    return np.stack([ndimage.zoom(basis[index], size / cells, order=3)[:size] for index in range(cells)], axis=1)


def item_mask(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The item's shape on the canvas (bool 280 × 280): placed, scaled, smoothed, wobbled, maybe mirrored.

    A person draws the item's shape, not its shading: the 28 × 28 image is enlarged to a random
    size and place on the canvas, blurred by a random amount (or first coarsened, which
    simplifies the contour as a hasty drawing does), thresholded, its holes filled, then warped
    by a smooth random displacement.
    """
    if image.shape != (28, 28):
        raise ValueError(f"Expected a 28 × 28 image, got shape {image.shape}.")
    values = image.astype(np.float32) / max(float(image.max()), 1.0)
    if rng.random() < 0.25:  # a hasty drawing: simplify the shape on a coarser grid
        coarse_size = int(rng.integers(13, 19))
        values = np.asarray(Image.fromarray(values).resize((coarse_size, coarse_size), Image.Resampling.BILINEAR))
    side = int(rng.uniform(0.55, 0.92) * CANVAS_SIZE)
    enlarged = np.asarray(Image.fromarray(values.astype(np.float32)).resize((side, side), Image.Resampling.BICUBIC))
    enlarged = ndimage.gaussian_filter(enlarged, sigma=rng.uniform(1.0, 4.5))
    threshold = rng.uniform(0.12, 0.35) * float(enlarged.max())
    # Smoothing must not close real gaps (between trouser legs, under a sandal's straps): a
    # person draws those. Pixels that are dark in the item itself stay background.
    dark = np.asarray(Image.fromarray(values.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR))
    shape = ndimage.binary_fill_holes((enlarged > threshold) & (dark > 0.06 * float(dark.max())))
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), dtype=np.float32)
    top, left = (int(rng.integers(0, CANVAS_SIZE - side + 1)) for _ in range(2))
    canvas[top:top + side, left:left + side] = shape
    amplitude = rng.uniform(1.0, 7.0)
    rows, columns = np.mgrid[0:CANVAS_SIZE, 0:CANVAS_SIZE].astype(np.float32)
    cells = int(rng.integers(4, 9))
    warped = ndimage.map_coordinates(
        canvas, [rows + _smooth_field(rng, CANVAS_SIZE, cells, amplitude),
                 columns + _smooth_field(rng, CANVAS_SIZE, cells, amplitude)], order=1)
    mask = warped > 0.5
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    return mask


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the shape's edge in pixels: positive inside, negative outside.

    Lightly smoothed: the edge of a pixel mask is a staircase, and a smooth field gives strokes
    the fractional, anti-aliased coverage the canvas draws at their edges.
    """
    distance = ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)
    return ndimage.gaussian_filter(distance.astype(np.float32), sigma=0.8)


def render_drawing(image: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """One test image drawn on the canvas: (280, 280, 4) uint8, white strokes on transparent.

    ``outline`` strokes the shape's edge with a round brush whose width is drawn from the
    canvas's range and varies a little along the stroke; a third of the outlines are left open
    (a gap where the pen did not meet its start). ``silhouette`` colours the shape in. Edges are
    anti-aliased over about one pixel, as the canvas draws them.
    """
    if style not in (*STYLES, OPEN_OUTLINE):
        raise ValueError(f"Unknown drawing style {style!r}; choose one of {', '.join(STYLES)}.")
    mask = item_mask(image, rng)
    if not mask.any():
        raise ValueError("The item vanished while drawing it: it is too faint.")
    if style == OPEN_OUTLINE:
        mask = _row_spans(mask)
    distance = _signed_distance(mask)
    if style == "silhouette":
        coverage = np.clip(distance + 0.5, 0.0, 1.0)
    else:
        width = rng.uniform(*BRUSH_WIDTHS) * np.exp(_smooth_field(rng, CANVAS_SIZE, 5, 0.12))
        coverage = np.clip(width / 2 + 0.5 - np.abs(distance), 0.0, 1.0)
        if style == OPEN_OUTLINE:
            coverage *= _above_the_bottom(mask, width)
        elif rng.random() < 0.33:
            coverage *= _gap(mask, rng)
    alpha = np.round(coverage * 255).astype(np.uint8)
    drawing = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), dtype=np.uint8)
    drawing[:, :, :3] = 255
    drawing[:, :, 3] = alpha
    return drawing


def _row_spans(mask: np.ndarray) -> np.ndarray:
    """Each row filled from its leftmost to its rightmost pixel: the shape without inner gaps."""
    from_left = np.logical_or.accumulate(mask, axis=1)
    from_right = np.logical_or.accumulate(mask[:, ::-1], axis=1)[:, ::-1]
    return from_left & from_right


def _above_the_bottom(mask: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Zero within a stroke's width of the shape's lowest row (its hem), one above."""
    bottom = int(np.flatnonzero(mask.any(axis=1))[-1])
    return (np.arange(CANVAS_SIZE)[:, None] < bottom - width).astype(np.float32)


def _gap(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A multiplier that erases a narrow wedge (10-25 degrees) seen from the shape's centre."""
    centre_row, centre_column = ndimage.center_of_mass(mask)
    rows, columns = np.mgrid[0:CANVAS_SIZE, 0:CANVAS_SIZE]
    angles = np.arctan2(rows - centre_row, columns - centre_column)
    start = rng.uniform(-np.pi, np.pi)
    half_width = np.deg2rad(rng.uniform(5, 12.5))
    difference = np.angle(np.exp(1j * (angles - start)))
    return (np.abs(difference) > half_width).astype(np.float32)


def render_test_drawings(images: np.ndarray, style: str, seed: int = DEFAULT_SEED) -> list[np.ndarray]:
    """Canvas drawings of ``images`` in one style; image ``i`` always gets the same drawing."""
    return [render_drawing(image, style, np.random.default_rng([seed, index, STYLES.index(style)]))
            for index, image in enumerate(images)]


def build_drawing_set(dataset: FashionMnist, per_class: int = DEFAULT_PER_CLASS,
                      seed: int = DEFAULT_SEED) -> DrawingSet:
    """Draw ``per_class`` test items of each class in both styles and prepare them like the canvas's."""
    from fmnist.preprocess import prepare_drawing

    indices = pick_test_items(dataset.y_test, per_class, seed)
    prepared: dict[str, np.ndarray] = {}
    for style in STYLES:
        canvases = (render_drawing(dataset.x_test[index], style,
                                   np.random.default_rng([seed, int(index), STYLES.index(style)]))
                    for index in indices)
        prepared[style] = np.stack([prepare_drawing(canvas).array for canvas in canvases])
    return DrawingSet(images=prepared, labels=dataset.y_test[indices].astype(np.int64), test_indices=indices)


RENDERER_VERSION = 2
"""Bump when the renderer or the canvas preparation changes: cached drawing sets are then redrawn."""

_STANDARD_SETS: dict[tuple[int, int], tuple[FashionMnist, DrawingSet]] = {}
_STANDARD_SETS_LOCK = threading.Lock()
"""Guards the two dicts only, never a build: a page asking whether the set is ready must not wait."""
_BUILD_LOCKS: dict[tuple[int, int], threading.Lock] = {}
"""One per set, held while it is read or drawn, so that two callers never draw the same set twice."""


def _fingerprint(dataset: FashionMnist, indices: np.ndarray, per_class: int) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(dataset.x_test[indices]).tobytes())
    digest.update(np.ascontiguousarray(dataset.y_test[indices]).tobytes())
    digest.update(f"{per_class}/{DEFAULT_SEED}/{RENDERER_VERSION}".encode())
    return digest.hexdigest()[:16]


def _cached_set(key: tuple[int, int], dataset: FashionMnist) -> DrawingSet | None:
    with _STANDARD_SETS_LOCK:
        cached = _STANDARD_SETS.get(key)
    return cached[1] if cached is not None and cached[0] is dataset else None


def standard_drawing_set(dataset: FashionMnist, per_class: int = DEFAULT_PER_CLASS,
                         cache_dir: str | os.PathLike | None = None) -> DrawingSet:
    """The standard drawing set of a dataset: drawn once (one to one and a half minutes), then reused.

    Kept in memory per process and on disk next to the dataset cache (a few MB), under a name
    made from the drawn test images, so a different dataset or renderer never reuses it.
    """
    from fmnist.data import default_cache_dir

    key = (id(dataset), per_class)
    if (cached := _cached_set(key, dataset)) is not None:
        return cached
    with _STANDARD_SETS_LOCK:
        build_lock = _BUILD_LOCKS.setdefault(key, threading.Lock())
    with build_lock:
        if (cached := _cached_set(key, dataset)) is not None:  # drawn by another caller meanwhile
            return cached
        indices = pick_test_items(dataset.y_test, per_class, DEFAULT_SEED)
        directory = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = directory / f"drawings-{_fingerprint(dataset, indices, per_class)}.npz"
        drawing_set = _read_set(path, indices)
        if drawing_set is None:
            drawing_set = build_drawing_set(dataset, per_class, DEFAULT_SEED)
            _write_set(path, drawing_set)
        with _STANDARD_SETS_LOCK:
            _STANDARD_SETS[key] = (dataset, drawing_set)
        return drawing_set


_BUILDERS: dict[tuple[int, int], threading.Thread] = {}


def standard_drawing_set_if_ready(dataset: FashionMnist, per_class: int = DEFAULT_PER_CLASS) -> DrawingSet | None:
    """The standard set if it is at hand; otherwise start drawing it in a background thread and
    return None at once, so that a page can show something else meanwhile and ask again."""
    key = (id(dataset), per_class)
    if (cached := _cached_set(key, dataset)) is not None:
        return cached
    with _STANDARD_SETS_LOCK:
        builder = _BUILDERS.get(key)
        if builder is None or not builder.is_alive():
            builder = threading.Thread(target=standard_drawing_set, args=(dataset, per_class),
                                       name="fmnist-drawing-set", daemon=True)
            _BUILDERS[key] = builder
            builder.start()
    return None


def _read_set(path: pathlib.Path, indices: np.ndarray) -> DrawingSet | None:
    try:
        with np.load(path) as stored:
            if not np.array_equal(stored["test_indices"], indices):
                return None
            return DrawingSet(images={style: stored[style] for style in STYLES}, labels=stored["labels"],
                              test_indices=stored["test_indices"])
    except (OSError, KeyError, ValueError):
        return None


def _write_set(path: pathlib.Path, drawing_set: DrawingSet) -> None:
    _save_atomically(path, labels=drawing_set.labels, test_indices=drawing_set.test_indices, **drawing_set.images)


def _save_atomically(path: pathlib.Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` atomically; a cache that cannot be written only costs the drawing time next run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except OSError:
        pass


# --------------------------------------------------------------------------- training drawings

TRAINING_DRAWING_SHARE = 0.2
"""Share of each class's training images that get a canvas drawing, for runs that learn from
drawings: 12,000 drawings of Fashion-MNIST's 60,000, drawn once per machine (about a minute and a
half on two cores). Twice as many raised the project's outlines to 0.819, but the three-stroke
trousers of the browser test then read as T-shirt/top (see ``fmnist.training.CANVAS_DRAWING_SHARE``)."""

TRAINING_DRAWING_SEED = 7
"""Seeds which training images are drawn, in which style, and how; never the test set's seed."""

TRAINING_STYLES = {"outline": 0.5, OPEN_OUTLINE: 0.25, "silhouette": 0.25}
"""How often each style is drawn among the training drawings: outlines most (they are furthest
from the photos, and the model reads them worst), some open at the bottom."""


@dataclasses.dataclass(frozen=True)
class TrainingDrawings:
    """Canvas drawings of training images, prepared as Try it prepares a drawing.

    Attributes
    ----------
    images
        (M, 28, 28) uint8, the prepared drawings.
    sources
        (M,) the index in ``dataset.x_train`` of the image each was drawn from, each at most once.
    """

    images: np.ndarray
    sources: np.ndarray


PARALLEL_FROM = 100
"""Fewer drawings than this are drawn in the calling thread alone."""


def _draw_prepared(job: tuple[np.ndarray, str, tuple[int, ...]]) -> np.ndarray | None:
    """One drawing, rendered and prepared (uint8), or None when the item is too faint to draw."""
    from fmnist.preprocess import prepare_drawing

    image, style, seed = job
    try:
        prepared = prepare_drawing(render_drawing(image, style, np.random.default_rng(seed)))
    except ValueError:  # the item is too faint to draw (ImageError is a ValueError too)
        return None
    return np.round(prepared.array * 255).astype(np.uint8)


def draw_training_items(dataset: FashionMnist, share: float = TRAINING_DRAWING_SHARE,
                        seed: int = TRAINING_DRAWING_SEED, workers: int = 1) -> TrainingDrawings:
    """Draw ``share`` of each class's training images as a person draws on the canvas, each once, as
    an outline, an open outline or coloured in (:data:`TRAINING_STYLES`); ``workers`` threads share the work."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"The share of training images to draw must lie between 0 and 1, not {share!r}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(dataset.y_train == label)
        count = round(share * len(members))
        if count:
            chosen.append(np.sort(rng.choice(members, size=count, replace=False)))
    sources = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    names = list(TRAINING_STYLES)
    styles = rng.choice(len(names), size=len(sources), p=list(TRAINING_STYLES.values()))
    jobs = [(dataset.x_train[index], names[style], (seed, int(index), int(style)))
            for index, style in zip(sources, styles, strict=True)]
    from threadpoolctl import threadpool_limits

    # One BLAS thread per drawing thread: OpenBLAS would otherwise start threads of its own for the
    # small matrix products of each drawing, which then wait, spinning, for CPUs the other drawing
    # threads hold (2,400 drawings on 2 cores: 29 s with them, 17-19 s without).
    with threadpool_limits(limits=1, user_api="blas"):
        if workers > 1 and len(jobs) > PARALLEL_FROM:
            import concurrent.futures

            # Threads, not processes: the drawing's work is in numpy, scipy and Pillow, which let go of
            # the GIL (two threads draw 1.95x as fast as one here), and a process pool would re-run
            # the caller's main script in each worker (spawn) or copy a process full of threads (fork).
            with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="fmnist-drawing") as pool:
                drawn = list(pool.map(_draw_prepared, jobs))
        else:
            drawn = [_draw_prepared(job) for job in jobs]
    kept = [index for index, drawing in enumerate(drawn) if drawing is not None]
    images = np.stack([drawn[index] for index in kept]) if kept else np.zeros((0, 28, 28), dtype=np.uint8)
    return TrainingDrawings(images=images, sources=sources[kept].astype(np.int64))


TRAINING_RENDERER_VERSION = 1
"""Bump when the training drawings change: cached ones are then redrawn."""

_TRAINING_DRAWINGS: list[tuple[FashionMnist, float, TrainingDrawings]] = []
"""The latest two datasets' drawings, in memory (a run needs them at each start)."""
_TRAINING_LOCK = threading.Lock()
"""Held while the training drawings are read or drawn: two runs never draw them twice."""


def _training_fingerprint(dataset: FashionMnist, share: float) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(dataset.x_train).tobytes())
    digest.update(np.ascontiguousarray(dataset.y_train).tobytes())
    digest.update(f"{share}/{TRAINING_DRAWING_SEED}/{TRAINING_STYLES}/{TRAINING_RENDERER_VERSION}/"
                  f"{RENDERER_VERSION}".encode())
    return digest.hexdigest()[:16]


def training_drawings(dataset: FashionMnist, share: float = TRAINING_DRAWING_SHARE,
                      cache_dir: str | os.PathLike | None = None, workers: int | None = None) -> TrainingDrawings:
    """The canvas drawings of a dataset's training images: drawn once, then kept in memory and on disk
    next to the dataset cache (a few MB), under a name made from the training images.

    Drawing them takes about a minute and a half on two cores; ``python -m fmnist data`` does it
    during set-up and the app's server when it starts. ``workers`` defaults to the usable CPUs.
    """
    from fmnist.data import default_cache_dir

    with _TRAINING_LOCK:
        for known, known_share, drawn in _TRAINING_DRAWINGS:
            if known is dataset and known_share == share:
                return drawn
        directory = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = directory / f"training-drawings-{_training_fingerprint(dataset, share)}.npz"
        drawn = _read_training_drawings(path, len(dataset.x_train))
        if drawn is None:
            if workers is None:
                from fmnist.jobs import usable_cpu_count

                workers = usable_cpu_count()
            drawn = draw_training_items(dataset, share, TRAINING_DRAWING_SEED, workers)
            _save_atomically(path, images=drawn.images, sources=drawn.sources)
        _TRAINING_DRAWINGS[:] = [*_TRAINING_DRAWINGS[-1:], (dataset, share, drawn)]
        return drawn


def _read_training_drawings(path: pathlib.Path, training_images: int) -> TrainingDrawings | None:
    """The cached drawings, or None when missing or unusable (then they are drawn again)."""
    try:
        with np.load(path) as stored:
            drawn = TrainingDrawings(images=stored["images"], sources=stored["sources"])
    except (OSError, KeyError, ValueError):
        return None
    sound = (drawn.images.dtype == np.uint8 and drawn.images.shape[1:] == (28, 28)
             and drawn.sources.shape == (len(drawn.images),)
             and (len(drawn.sources) == 0 or (drawn.sources.min() >= 0 and drawn.sources.max() < training_images))
             and len(np.unique(drawn.sources)) == len(drawn.sources))
    return drawn if sound else None


def predict_drawings(model, images: np.ndarray) -> np.ndarray:
    """Probabilities as Try it computes them (mirror-averaged for models that learned mirror images).

    A model trained without mirror images has only seen left-facing shoes; averaging with the
    mirror image would hurt it (on the test set of a small CNN: 0.855 to 0.77), so it predicts
    the image as it is (see :func:`fmnist.evaluation.learned_mirror_images`).
    """
    from fmnist import evaluation

    return evaluation.predict_probabilities(model, images)


def evaluate_drawings(model, drawing_set: DrawingSet) -> dict[str, object]:
    """``style -> EvaluationReport`` of a model on a drawing set (accuracy overall and per class)."""
    from fmnist import evaluation

    return {style: evaluation.evaluate_probabilities(predict_drawings(model, images), drawing_set.labels)
            for style, images in drawing_set.images.items()}
