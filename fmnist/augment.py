"""Learn from drawings: drawing-like versions of the training images, made from the images themselves.

People draw outlines and flat silhouettes with a brush that is thick at 28 × 28, and draw shoes
facing either way; Fashion-MNIST has shaded photos of left-facing items. :class:`DrawingAugmentation`
is a Keras layer placed at a model's input that, while training only, replaces a share of each
batch by one of

- a flat silhouette (the item's pixels above a random threshold, set to full brightness),
  optionally with a soft one-pixel edge like a downscaled brush stroke;
- a thinned silhouette (eroded by one pixel: trousers drawn with a stroke per leg);
- an outline of width 1 to 3 pixels (the silhouette minus its erosion);
- a stick figure (the silhouette's centre lines, two pixels wide: trousers drawn as a
  waistband and one stroke per leg, a bag's handle as one line);
- the open outer contour (no gap between the legs, no hem), as drawn in a few strokes,

each distorted as a hand draws (narrow items also drawn wider),

and mirrors half of all images. At inference it is the identity, so a saved model predicts as
the same model without it. The numpy functions below do the same on single images, for tests
and for the README's picture of the transforms.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

DRAWING_SHARE = 0.1
"""Share of each training batch replaced by a drawing-like version, for runs without the canvas
drawings of training images (``fmnist.drawings.training_drawings``: the fast engine swaps those in,
see ``fmnist.training.CANVAS_DRAWING_SHARE``, and its runs set this layer's share to
``fmnist.training.IN_GRAPH_DRAWING_SHARE``); plain ``fit`` runs keep this one. More costs test accuracy (the photos are seen
less often); less costs accuracy on drawings. Measured for the Minute CNN (48,000 images, its 8
epochs; test / outline / silhouette accuracy) before the canvas drawings: without 0.926 / 0.27 /
0.77, share 0.5 (an earlier mix with fewer outlines) 0.915 / 0.70 / 0.81, 0.4 0.919 / 0.72 / 0.80,
0.3 0.922 / 0.70 / 0.80. With them (AVX-512 EPYC, mean of seeds 42, 1 and 2): share 0.2 beside a
canvas share of 0.5, 0.9213 / 0.786 / 0.808; share 0.1 beside 0.6, 0.9241 / 0.782 / 0.814, and the
browser test's three-stroke trousers read at 83% instead of 59% in chromium."""

MIRROR_SHARE = 0.5
"""Share of each training batch mirrored left to right (photos and drawings alike)."""

THRESHOLD_RANGE = (0.02, 0.2)
"""Pixels brighter than a random fraction in this range of the item's peak form its silhouette."""

OUTLINE_WIDTHS = (1, 2, 3)
"""Outline widths in pixels at 28 × 28: the canvas brush (6-40 px) on a 150-280 px drawing, after
``fmnist.preprocess.prepare_drawing`` has thinned wider strokes to 2.5 pixels."""

TRANSFORMS = ("silhouette", "thin silhouette", *(f"outline {width} px" for width in OUTLINE_WIDTHS), "stick figure",
              "open outer outline")
"""The drawing-like versions, in the order the layer numbers them. Each may also get a soft edge."""

TRANSFORM_WEIGHTS = (1.5, 0.5, 1.0, 1.5, 1.5, 1.0, 1.0)
"""How often each version is drawn: outlines most of the time. Outlines are further from the
photos than silhouettes are, and harder to learn."""

SKELETON_EROSIONS = 10
"""One-directional erosions the stick figure is made of: parts up to 20 pixels across get a
centre line."""

INK_RANGE = (0.8, 1.0)
"""Brightness of drawn pixels: the canvas's white, after resampling to 28 × 28, peaks near 0.9."""

SOFT_SHARE = 0.5
"""Share of the drawing-like versions that get a soft, anti-aliased edge."""

DISTORTION = {"scale": (0.8, 1.1), "aspect": 0.15, "rotation_degrees": 10.0, "shear": 0.15, "shift_pixels": 2.0}
"""A person's drawing is not the item's exact shape: it is a little bigger or smaller, wider or
narrower, tilted, slanted and off-centre. Each drawing-like version gets a random affine
distortion within these bounds (the photos are left as they are)."""

NARROW_WIDTH = 18.0
"""People draw narrow items wider than the photos show them: a pair of trousers 11 pixels wide in
Fashion-MNIST (at 28 × 28) is drawn 14-18 wide. Drawing-like versions narrower than this many
pixels are widened by a random factor, up to this width (and at most :data:`MAX_WIDENING`)."""

MAX_WIDENING = 1.6

_SIDE = 28
_ALL_COLUMNS = (1 << _SIDE) - 1


# The shapes are binary, so each image row is kept as the bits of one int32 (bit c = column c):
# erosion and hole filling then cost a few dozen integer operations per batch, far less than
# TensorFlow's pooling kernels on single-channel 28 × 28 images (about 0.6 ms per 3 × 3 pool).

def to_row_bits(masks: tf.Tensor) -> tf.Tensor:
    """(B, 28, 28) booleans to (B, 28) int32 row bit masks."""
    weights = tf.bitwise.left_shift(tf.ones([_SIDE], tf.int32), tf.range(_SIDE, dtype=tf.int32))
    return tf.reduce_sum(tf.cast(masks, tf.int32) * weights, axis=2)


def from_row_bits(bits: tf.Tensor) -> tf.Tensor:
    """(B, 28) int32 row bit masks to (B, 28, 28) float32 zeros and ones."""
    shifted = tf.bitwise.right_shift(bits[:, :, None], tf.range(_SIDE, dtype=tf.int32))
    return tf.cast(tf.bitwise.bitwise_and(shifted, 1), tf.float32)


def _shift_rows(bits: tf.Tensor, rows: int) -> tf.Tensor:
    """Move rows down (positive) or up (negative), bringing in empty rows."""
    empty = tf.zeros_like(bits[:, :abs(rows)])
    return tf.concat([empty, bits[:, :-rows]], axis=1) if rows > 0 else tf.concat([bits[:, -rows:], empty], axis=1)


def erode_bits(bits: tf.Tensor) -> tf.Tensor:
    """Erosion by one pixel (3 × 3 square); outside the frame is background."""
    return _erode_down(_erode_across(bits))


def fill_bits(bits: tf.Tensor) -> tf.Tensor:
    """Fill what the shape encloses: background with shape to its left, right, above and below.

    This is hole filling for the shapes of clothes, cheaply: the gap between trouser legs (open
    below) and the inside of a U stay empty, a bag's handle hole and dark texture are filled.
    """
    down, up = bits, bits
    for step in (1, 2, 4, 8, 16):
        down = down | _shift_rows(down, step)
        up = up | _shift_rows(up, -step)
    return bits | (row_spans(bits) & down & up)


def dilate_bits(bits: tf.Tensor) -> tf.Tensor:
    """Dilation by one pixel to the right and one down (2 × 2 square): a one-pixel line becomes
    two pixels wide, the width a canvas stroke has after ``prepare_drawing`` thinned it."""
    across = bits | (tf.bitwise.left_shift(bits, 1) & _ALL_COLUMNS)
    return across | _shift_rows(across, 1)


def _erode_across(bits: tf.Tensor) -> tf.Tensor:
    return bits & tf.bitwise.left_shift(bits, 1) & tf.bitwise.right_shift(bits, 1) & _ALL_COLUMNS


def _dilate_across(bits: tf.Tensor) -> tf.Tensor:
    return (bits | tf.bitwise.left_shift(bits, 1) | tf.bitwise.right_shift(bits, 1)) & _ALL_COLUMNS


def _erode_down(bits: tf.Tensor) -> tf.Tensor:
    return bits & _shift_rows(bits, 1) & _shift_rows(bits, -1)


def _dilate_down(bits: tf.Tensor) -> tf.Tensor:
    return bits | _shift_rows(bits, 1) | _shift_rows(bits, -1)


def centre_lines(bits: tf.Tensor, levels: int = SKELETON_EROSIONS) -> tf.Tensor:
    """The shape as a person draws it with single strokes: the centre line of each of its parts.

    Where a part is taller than it is wide (a trouser leg, a strap) its centre line runs down the
    middle of its rows; where it is wider than tall (a waistband, a sole) along the middle of its
    columns. The middle of a run of pixels is what survives the most one-directional erosions
    (the one-dimensional skeleton, exact in 1-D); it is kept where the part reaches at least as
    far in the other direction. Trousers come out as a waistband and one line per leg.
    """
    across, down = bits, bits
    across_levels, down_levels = [bits], [bits]
    for _ in range(levels):
        across, down = _erode_across(across), _erode_down(down)
        across_levels.append(across)
        down_levels.append(down)
    lines = tf.zeros_like(bits)
    for level in range(levels):
        middle_of_rows = across_levels[level] & ~_dilate_across(across_levels[level + 1])
        middle_of_columns = down_levels[level] & ~_dilate_down(down_levels[level + 1])
        lines = lines | (middle_of_rows & down_levels[level]) | (middle_of_columns & across_levels[level + 1])
    return lines


def row_spans(bits: tf.Tensor) -> tf.Tensor:
    """Each row filled from its leftmost to its rightmost pixel: the shape without its inner gaps."""
    up_to_highest, from_lowest = bits, bits
    for step in (1, 2, 4, 8, 16):
        up_to_highest = up_to_highest | tf.bitwise.right_shift(up_to_highest, step)
        from_lowest = from_lowest | (tf.bitwise.left_shift(from_lowest, step) & _ALL_COLUMNS)
    return up_to_highest & from_lowest


def open_outer_outline(bits: tf.Tensor, width: int = 2) -> tf.Tensor:
    """The outer contour a person draws in a few strokes: no inner gaps (between trouser legs,
    under straps), and open at the bottom (the hem, the ends of the legs left undrawn)."""
    spans = row_spans(bits)
    eroded = spans
    for _ in range(width):
        eroded = erode_bits(eroded)
    outline = spans & ~eroded
    return outline & _shift_rows(spans, -width)  # keeps what has the shape `width` rows below it


def drawing_versions(images: tf.Tensor, thresholds: tf.Tensor) -> tf.Tensor:
    """All drawing-like versions of a batch as row bits: (T, B, 28) for (B, 28, 28, 1) images in [0, 1].

    ``thresholds`` (B,) are fractions of each image's peak brightness. The shape is the pixels
    above the threshold with what they enclose filled in.
    """
    peaks = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    masks = (images > thresholds[:, None, None, None] * peaks)[:, :, :, 0]
    eroded = [fill_bits(to_row_bits(masks))]
    for _ in range(max(OUTLINE_WIDTHS)):
        eroded.append(erode_bits(eroded[-1]))
    outlines = [eroded[0] & ~eroded[width] for width in OUTLINE_WIDTHS]
    stick_figure = dilate_bits(centre_lines(eroded[0]))
    return tf.stack([eroded[0], eroded[1], *outlines, stick_figure, open_outer_outline(eroded[0])])


def distortion_transforms(uniform: tf.Tensor, widening: tf.Tensor | None = None) -> tf.Tensor:
    """(B, 8) projective transforms (output to input coordinates) from (B, 6) uniform draws in [0, 1).

    Each maps an output pixel to where it comes from: scaled (with an aspect change), rotated,
    slanted and shifted about the frame's centre, within :data:`DISTORTION`.
    """
    low, high = DISTORTION["scale"]
    scale = low + (high - low) * uniform[:, 0]
    aspect = 1.0 + DISTORTION["aspect"] * (2.0 * uniform[:, 1] - 1.0)
    angle = np.deg2rad(DISTORTION["rotation_degrees"]) * (2.0 * uniform[:, 2] - 1.0)
    shear = DISTORTION["shear"] * (2.0 * uniform[:, 3] - 1.0)
    shift_x = DISTORTION["shift_pixels"] * (2.0 * uniform[:, 4] - 1.0)
    shift_y = DISTORTION["shift_pixels"] * (2.0 * uniform[:, 5] - 1.0)
    # Forward map: x' = R · S · (x - c) + c + t, with S = [[scale·aspect, shear], [0, scale/aspect]].
    # The transform wants its inverse: x = S⁻¹ · R⁻¹ · (x' - c - t) + c.
    sx, sy = scale * aspect, scale / aspect
    if widening is not None:
        sx = sx * widening
    cos, sin = tf.cos(angle), tf.sin(angle)
    r00, r01, r10, r11 = cos, sin, -sin, cos  # R⁻¹
    i00, i01, i11 = 1.0 / sx, -shear / (sx * sy), 1.0 / sy  # S⁻¹ (upper triangular)
    a0, a1 = i00 * r00 + i01 * r10, i00 * r01 + i01 * r11
    b0, b1 = i11 * r10, i11 * r11
    centre = (_SIDE - 1) / 2.0
    ox, oy = -centre - shift_x, -centre - shift_y
    a2 = a0 * ox + a1 * oy + centre
    b2 = b0 * ox + b1 * oy + centre
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def widening_factors(images: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
    """(B,) horizontal stretch factors: 1 for wide shapes, up to :data:`NARROW_WIDTH` for narrow ones."""
    columns = tf.reduce_sum(tf.cast(tf.reduce_any(images > 0.0, axis=[1, 3]), tf.float32), axis=1)
    most = tf.clip_by_value(NARROW_WIDTH / tf.maximum(columns, 1.0), 1.0, MAX_WIDENING)
    return 1.0 + uniform * (most - 1.0)


def distort(images: tf.Tensor, uniform: tf.Tensor, widening: tf.Tensor | None = None) -> tf.Tensor:
    """(B, 28, 28, 1) images under :func:`distortion_transforms`, bilinear, with black outside.

    Sampled with gathers rather than ``ImageProjectiveTransformV3``, which XLA cannot compile
    (the seed preset's engine is XLA-compiled).
    """
    transforms = distortion_transforms(uniform, widening)
    rows, columns = np.mgrid[0:_SIDE, 0:_SIDE].astype(np.float32)
    rows, columns = tf.constant(rows)[None], tf.constant(columns)[None]
    coefficient = [tf.reshape(transforms[:, index], [-1, 1, 1]) for index in range(6)]
    source_x = coefficient[0] * columns + coefficient[1] * rows + coefficient[2]
    source_y = coefficient[3] * columns + coefficient[4] * rows + coefficient[5]
    left, top = tf.floor(source_x), tf.floor(source_y)
    weight_x, weight_y = source_x - left, source_y - top
    flat = tf.reshape(images, [-1, _SIDE * _SIDE])

    def pixel(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        inside = (x >= 0) & (x <= _SIDE - 1) & (y >= 0) & (y <= _SIDE - 1)
        index = tf.cast(tf.clip_by_value(y, 0, _SIDE - 1) * _SIDE + tf.clip_by_value(x, 0, _SIDE - 1), tf.int32)
        values = tf.gather(flat, tf.reshape(index, [-1, _SIDE * _SIDE]), batch_dims=1)
        return tf.reshape(values, [-1, _SIDE, _SIDE]) * tf.cast(inside, images.dtype)

    sampled = ((1 - weight_x) * (1 - weight_y) * pixel(left, top) + weight_x * (1 - weight_y) * pixel(left + 1, top)
               + (1 - weight_x) * weight_y * pixel(left, top + 1) + weight_x * weight_y * pixel(left + 1, top + 1))
    return sampled[:, :, :, None]


def soften(images: tf.Tensor) -> tf.Tensor:
    """A one-pixel anti-aliased edge, as a brush stroke has after shrinking to 28 × 28.

    Half the image plus half its 3 × 3 box blur (made of shifted slices: cheaper than pooling),
    brought back to its peak brightness.
    """
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    across = padded[:, :, :-2] + padded[:, :, 1:-1] + padded[:, :, 2:]
    box = (across[:, :-2] + across[:, 1:-1] + across[:, 2:]) / 9.0
    softened = 0.5 * images + 0.5 * box
    peaks = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return softened * peaks / tf.maximum(tf.reduce_max(softened, axis=[1, 2, 3], keepdims=True), 1e-6)


def drawing_like(images: tf.Tensor, thresholds: tf.Tensor, transform_draws: tf.Tensor, soft_draws: tf.Tensor,
                 widening_draws: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A drawing-like version of each image of a (B, 28, 28, 1) batch, before its distortion, and its
    widening factor: ``thresholds`` (B,) in :data:`THRESHOLD_RANGE`; ``transform_draws`` (B, 1),
    ``soft_draws`` and ``widening_draws`` (B,) uniform in [0, 1), picking the version by
    :data:`TRANSFORM_WEIGHTS`, a soft edge by :data:`SOFT_SHARE`, and how much wider it is drawn."""
    cumulative = np.cumsum(TRANSFORM_WEIGHTS) / np.sum(TRANSFORM_WEIGHTS)
    choice = tf.reduce_sum(tf.cast(transform_draws >= tf.constant(cumulative[:-1], tf.float32), tf.int32), axis=1)
    versions = drawing_versions(images, thresholds)  # (T, B, 28) row bits
    chosen = from_row_bits(tf.gather(tf.transpose(versions, [1, 0, 2]), choice, batch_dims=1))[:, :, :, None]
    chosen = tf.where((soft_draws < SOFT_SHARE)[:, None, None, None], soften(chosen), chosen)
    return chosen, widening_factors(chosen, widening_draws)


# The layer's few hundred small ops cost 4.5 ms a batch of 128 as separate kernels and 2.0 ms as
# these two XLA clusters (measured here, AMX Xeon). One cluster for all of it took 5.5 ms: XLA
# fused the versions and the distortion's reductions into its gathers and computed them again
# for every pixel sampled.
_drawing_like = tf.function(drawing_like, jit_compile=True)
_distort = tf.function(distort, jit_compile=True)


@keras.saving.register_keras_serializable(package="fmnist")
class DrawingAugmentation(keras.layers.Layer):
    """While training, turn a share of each batch into drawing-like images and mirror half of it.

    Works on any input shape holding 784 pixels per image ((784,), (28, 28) or (28, 28, 1)) and
    returns the same shape. Seeded: the same seed gives the same transforms in the same run.
    """

    def __init__(self, drawing_share: float = DRAWING_SHARE, mirror_share: float = MIRROR_SHARE,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not (0.0 <= drawing_share <= 1.0 and 0.0 <= mirror_share <= 1.0):
            raise ValueError("The drawing and mirror shares must lie between 0 and 1.")
        self.drawing_share = float(drawing_share)
        self.mirror_share = float(mirror_share)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        original_shape = tf.shape(inputs)
        images = tf.reshape(tf.cast(inputs, tf.float32), [-1, 28, 28, 1])
        batch = tf.shape(images)[0]
        if self.drawing_share > 0:
            images = self._with_drawings(images, batch)
        mirror = keras.random.uniform((batch,), seed=self.seed_generator) < self.mirror_share
        images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
        return tf.reshape(tf.cast(images, inputs.dtype), original_shape)

    def _with_drawings(self, images, batch):
        """``images`` with a ``drawing_share`` of them replaced by their drawing-like versions."""
        thresholds = keras.random.uniform((batch,), *THRESHOLD_RANGE, seed=self.seed_generator)
        transform_draws = keras.random.uniform((batch, 1), seed=self.seed_generator)
        soft_draws = keras.random.uniform((batch,), seed=self.seed_generator)
        chosen, widening = _drawing_like(images, thresholds, transform_draws, soft_draws,
                                         keras.random.uniform((batch,), seed=self.seed_generator))
        chosen = _distort(chosen, keras.random.uniform((batch, 6), seed=self.seed_generator), widening)
        chosen = chosen * keras.random.uniform((batch, 1, 1, 1), *INK_RANGE, seed=self.seed_generator)
        draw = keras.random.uniform((batch,), seed=self.seed_generator) < self.drawing_share
        return tf.where(draw[:, None, None, None], chosen, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"drawing_share": self.drawing_share, "mirror_share": self.mirror_share, "seed": self.seed})
        return config


def with_drawing_augmentation(model: keras.Model, seed: int, drawing_share: float = DRAWING_SHARE,
                              mirror_share: float = MIRROR_SHARE) -> keras.Model:
    """A flat Sequential model: the augmentation layer, then ``model``'s layers (shared, not copied)."""
    if not isinstance(model, keras.Sequential):
        raise ValueError("Drawing augmentation needs a Sequential model.")
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    if int(np.prod(input_shape)) != 28 * 28:
        raise ValueError(f"Drawing augmentation needs 784 pixels per image, not input shape {input_shape}.")
    return keras.Sequential(
        [keras.Input(shape=input_shape), DrawingAugmentation(drawing_share, mirror_share, seed=seed,
                                                             name="drawing_augmentation"), *model.layers],
        name=model.name)


def has_drawing_augmentation(model: keras.Model) -> bool:
    """Whether a model was trained with :class:`DrawingAugmentation` at its input."""
    return any(isinstance(layer, DrawingAugmentation) for layer in model.layers)


# --------------------------------------------------------------------------- numpy versions

def enclosed_fill(mask: np.ndarray) -> np.ndarray:
    """What :func:`fill_bits` computes, in numpy: the shape plus the background it encloses."""
    mask = np.asarray(mask, dtype=bool)
    left = np.logical_or.accumulate(mask, axis=1)
    right = np.logical_or.accumulate(mask[:, ::-1], axis=1)[:, ::-1]
    above = np.logical_or.accumulate(mask, axis=0)
    below = np.logical_or.accumulate(mask[::-1], axis=0)[::-1]
    return mask | (left & right & above & below)


def silhouette(image: np.ndarray, threshold: float = 0.15) -> np.ndarray:
    """The item's flat silhouette: where it is brighter than ``threshold`` of its peak, filled in."""
    image = np.asarray(image, dtype=np.float32)
    return enclosed_fill(image > threshold * float(image.max())).astype(np.float32)


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary erosion by a square of radius ``pixels``, outside the frame counting as background."""
    from scipy import ndimage

    size = 2 * pixels + 1
    return ndimage.minimum_filter(np.asarray(mask, dtype=np.float32), size=size, mode="constant", cval=0.0)


def outline(image: np.ndarray, width: int, threshold: float = 0.15) -> np.ndarray:
    """The silhouette's inner outline, ``width`` pixels wide."""
    mask = silhouette(image, threshold)
    return mask - erode(mask, width)


def example_transforms(image: np.ndarray, threshold: float = 0.15) -> dict[str, np.ndarray]:
    """Every transform of one 28 × 28 image (float in [0, 1]), by name, plus its mirror image."""
    image = np.asarray(image, dtype=np.float32)
    if image.max() > 1:
        image = image / 255
    versions = drawing_versions(tf.constant(image[None, :, :, None]), tf.constant([threshold]))
    named = {"photo": image, "mirrored": image[:, ::-1]}
    named.update({name: from_row_bits(versions[index]).numpy()[0] for index, name in enumerate(TRANSFORMS)})
    return named
