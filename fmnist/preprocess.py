"""Turn a person's picture (an upload or a canvas drawing) into what a Fashion-MNIST model sees.

Fashion-MNIST was made from product photos on white: trimmed to the item, the longer side
scaled to 28 pixels, centred, and negated, so every image is a light item on a black
background that touches the frame on its long side. `prepare_image` repeats those steps for
any picture and refuses, with a message a person understands, anything it cannot use.

This module uses only numpy and Pillow, so it can be tested and reused without Streamlit or
TensorFlow.
"""

import io
import math
import os
import pathlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS: int = 40_000_000
"""Pictures with more pixels are refused: they could be decompression bombs."""

MAX_BYTES: int = 5 * 1024 * 1024
"""Upload size limit in bytes. Streamlit's ``server.maxUploadSize`` is larger (25 MB), so that files
between the two get this module's clear message instead of the uploader's small red chip."""

FRAME_SIZE = 28
"""Fashion-MNIST images are 28 x 28 and the item's longer side spans all 28 pixels."""

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
"""Pillow format names we decode; others (EPS, PDF, TIFF, ...) are refused unopened."""

WORKING_PIXELS = 512 * 512
"""Large pictures are shrunk to about this many pixels before the numpy work, for speed."""

MINIMUM_ITEM_CONTRAST = 0.08
"""An item must differ from its background by this much (of the full range) to count."""

ITEM_THRESHOLD = 0.1
"""After stretching, pixels above this fraction of the item's peak belong to its bounding box."""

NOISE_DEVIATIONS = 3.0
"""Background variation within this many standard deviations is treated as noise."""

LIGHTING_MODEL_GAIN = 0.7
"""A plane models the background's lighting only if it leaves at most this fraction of the
border's spread around a constant level: an evenly lit picture keeps the constant level."""

LIGHTING_FIT_ROUNDS = 3
"""Rounds of the robust plane fit; each refits to the border pixels near the previous plane."""

LIGHTING_INLIER_DEVIATIONS = 2.5
"""Border pixels within this many robust deviations of the plane count as background in the next round."""

LIGHTING_FIT_PIXELS = 1024
"""The plane is fitted to at most about this many border pixels, evenly spaced: plenty for 3 numbers."""

UNREADABLE_MESSAGE = "This file is not a picture we can read (PNG, JPEG, WebP, GIF or BMP)."
DAMAGED_MESSAGE = (
    "This picture file is damaged or incomplete, so we cannot read it. Try saving it again or choose another picture."
)
BLANK_MESSAGE = (
    "The picture is blank: nothing in it stands out from the background. "
    "Try a picture of one item on a plain background."
)
TRANSPARENT_MESSAGE = "The picture is empty: every pixel of it is transparent."

_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
_EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATIONS_THAT_NEED_TURNING = (2, 3, 4, 5, 6, 7, 8)
_ORIENTATIONS_THAT_SWAP_SIDES = (5, 6, 7, 8)


class ImageError(ValueError):
    """A picture we cannot use; str(error) is a message a person understands."""


@dataclass(frozen=True)
class PreparedImage:
    """A picture in Fashion-MNIST form, plus what the page needs to explain it.

    Attributes
    ----------
    array
        (28, 28) float32 in [0, 1]: a light item on a dark background, like Fashion-MNIST.
        It equals ``preview / 255``, the same scaling the training data gets.
    preview
        The same image as uint8 (28, 28), for display.
    inverted
        Whether the picture was dark on light and we inverted it.
    original_size
        (width, height) of the picture as a person sees it (after EXIF rotation), before any
        shrinking.
    """

    array: np.ndarray
    preview: np.ndarray
    inverted: bool
    original_size: tuple[int, int]


def prepare_image(
    source: bytes | str | os.PathLike | Image.Image | np.ndarray,
) -> PreparedImage:
    """Turn a picture into a 28 x 28 light-on-dark image centred like Fashion-MNIST.

    Steps: decode (first frame, EXIF orientation applied) and shrink large pictures early;
    flatten transparency; find the background from the picture's border and invert if the
    item is darker than it; remove the background level and noise; crop to the item; scale
    its longer side to 28 pixels keeping the aspect ratio; centre it; stretch the contrast so
    the brightest pixel is 1.0.

    Transparency rule: where a picture has transparent pixels, they are background. We
    composite onto white if the opaque pixels are mostly dark (a black canvas stroke, a dark
    cut-out product) and onto black if they are mostly light (a white stroke), so the item
    always contrasts with what replaces the transparency.

    Parameters
    ----------
    source
        Encoded file bytes (an upload), a file path, a Pillow image, or a numpy array of
        shape (H, W), (H, W, 3) or (H, W, 4) - the drawing canvas gives RGBA uint8 - with
        integer values in [0, 255] or float values in [0, 1] or [0, 255].

    Returns
    -------
    PreparedImage

    Raises
    ------
    ImageError
        If the picture cannot be read, is too large, or shows nothing; the message says why
        in plain words.
    """
    if isinstance(source, np.ndarray):
        picture = _picture_from_array(source)
        return _prepare_working_picture(_shrink(_to_working_mode(picture)), picture.size)
    if isinstance(source, Image.Image):
        working_picture, original_size = _decode(source, may_draft=False)
        return _prepare_working_picture(working_picture, original_size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        file = _stream_from_bytes(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        file = _open_path(pathlib.Path(source))
    else:
        raise TypeError(f"prepare_image cannot use a {type(source).__name__}.")
    with file:
        working_picture, original_size = _decode_file(file)
    return _prepare_working_picture(working_picture, original_size)


def _stream_from_bytes(data: bytes) -> BinaryIO:
    """Check an upload's size before decoding: Streamlit enforces it too, but callers may not."""
    if not data:
        raise ImageError("The file is empty: it contains no bytes.")
    if len(data) > MAX_BYTES:
        size_in_megabytes = math.ceil(len(data) / 2**20 * 10) / 10  # never shows "5.0 > 5"
        raise ImageError(f"The file is too big ({size_in_megabytes:.1f} MB); the limit is {MAX_BYTES / 2**20:.0f} MB.")
    return io.BytesIO(data)


def _open_path(path: pathlib.Path) -> BinaryIO:
    """Open a file, turning the usual file-system problems into plain messages."""
    try:
        return path.open("rb")
    except FileNotFoundError as error:
        raise ImageError(f"There is no file at {path}.") from error
    except IsADirectoryError as error:
        raise ImageError(f"{path} is a folder, not a picture file.") from error
    except PermissionError as error:
        raise ImageError(f"We are not allowed to read {path}.") from error
    except OSError as error:
        raise ImageError(f"We could not read {path}.") from error


def _decode_file(file: BinaryIO) -> tuple[Image.Image, tuple[int, int]]:
    """Identify the format from the header alone (Pillow opens lazily), then decode."""
    try:
        picture = Image.open(file, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageError(_too_large_message(None)) from error
    except Image.DecompressionBombWarning as error:
        # Only raised when the caller's warning filters turn the warning into an error.
        raise ImageError(_too_large_message(None)) from error
    except Exception as error:
        # Pillow raises many types (OSError, SyntaxError, struct.error, ...) for non-images.
        raise ImageError(UNREADABLE_MESSAGE) from error
    with picture:
        return _decode(picture, may_draft=True)


def _decode(picture: Image.Image, may_draft: bool) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the first frame, apply EXIF orientation, and shrink to the working size.

    The pixel limit is checked from the header before any pixel is decoded. For JPEG we ask
    the decoder for greyscale at a reduced scale (``draft``), which makes a 12-megapixel photo
    decode in a few milliseconds.
    """
    width, height = picture.size
    if width * height > MAX_PIXELS:
        raise ImageError(_too_large_message(picture.size))
    if width == 0 or height == 0:
        raise ImageError("The picture is empty: it has no pixels.")
    try:
        if may_draft and picture.format in ("JPEG", "MPO"):
            reduction = _reduction_factor(picture.size)
            picture.draft("L", (max(1, width // reduction), max(1, height // reduction)))
        picture.load()
        upright_picture, swapped_sides = _apply_exif_orientation(picture)
        working_picture = _to_working_mode(upright_picture)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_too_large_message(picture.size)) from error
    except Exception as error:
        # Truncated or garbled data fails here, inside load(), with assorted Pillow errors.
        raise ImageError(DAMAGED_MESSAGE) from error
    original_size = (height, width) if swapped_sides else (width, height)
    return _shrink(working_picture), original_size


def _apply_exif_orientation(picture: Image.Image) -> tuple[Image.Image, bool]:
    """Rotate a camera photo upright; broken EXIF data leaves the picture as stored.

    Pictures without an orientation tag are returned as they are, sparing the full-size copy
    that ``exif_transpose`` would make.
    """
    try:
        orientation = picture.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        if orientation not in _ORIENTATIONS_THAT_NEED_TURNING:
            return picture, False
        upright_picture = ImageOps.exif_transpose(picture)
    except Exception:  # noqa: BLE001 - a damaged EXIF block should not reject a good picture
        return picture, False
    return upright_picture, orientation in _ORIENTATIONS_THAT_SWAP_SIDES


def _to_working_mode(picture: Image.Image) -> Image.Image:
    """Reduce any mode to greyscale 'L', greyscale with alpha 'LA', or 'F' scaled to [0, 1].

    16-bit and 32-bit pictures become 'F' because Pillow's conversion to 'L' clips values
    above 255 instead of scaling them.
    """
    if picture.mode in _HIGH_DEPTH_MODES:
        full_scale = _full_scale(picture)
        return picture.convert("F").point(lambda value: value * (1.0 / full_scale))
    if picture.mode in _ALPHA_MODES:
        return picture.convert("LA")
    if "transparency" in picture.info:
        # Palette or colour-key transparency: RGBA applies it, then we keep luminance + alpha.
        return picture.convert("RGBA").convert("LA")
    if picture.mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr", "HSV"):
        return picture.convert("L")
    return picture.convert("RGBA").convert("LA")


def _full_scale(picture: Image.Image) -> float:
    """The value that means white: 65535 for 16-bit files, else guessed from the values."""
    if picture.mode.startswith("I;16"):
        return 65535.0
    _, brightest = picture.getextrema()
    if brightest <= 1:
        return 1.0
    if brightest <= 255:
        return 255.0
    return 65535.0


def _reduction_factor(size: tuple[int, int]) -> int:
    """The integer factor that brings a picture to about WORKING_PIXELS, keeping sides >= 1."""
    width, height = size
    factor = math.ceil(math.sqrt(width * height / WORKING_PIXELS))
    return max(1, min(factor, width, height))


def _shrink(picture: Image.Image) -> Image.Image:
    """Box-average large pictures down: later numpy work then costs the same for any upload."""
    factor = _reduction_factor(picture.size)
    return picture.reduce(factor) if factor > 1 else picture


def _picture_from_array(array: np.ndarray) -> Image.Image:
    """Accept canvas output and other arrays, checking them as strictly as files."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (2, 3, 4))):
        raise ImageError(
            "This array is not a picture: we expect height × width, optionally with 3 (RGB) "
            f"or 4 (RGBA) colour channels, but it has shape {array.shape}."
        )
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageError("The picture is empty: it has no pixels.")
    if height * width > MAX_PIXELS:
        raise ImageError(_too_large_message((width, height)))
    return Image.fromarray(_array_to_uint8(array))


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale bool, integer or float pixel values to uint8 0..255."""
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        lowest, highest = int(array.min()), int(array.max())
        if lowest < 0 or highest > 65535:
            raise ImageError("The picture's pixel values must lie between 0 and 255.")
        full_scale = 255 if highest <= 255 else 65535
        return np.round(array.astype(np.float64) * (255 / full_scale)).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageError("The picture has pixel values that are not numbers.")
        lowest, highest = float(array.min()), float(array.max())
        if lowest < 0 or highest > 255:
            raise ImageError("The picture's pixel values must lie between 0 and 1, or 0 and 255.")
        full_scale = 1.0 if highest <= 1 else 255.0
        return np.round(array.astype(np.float64) * (255 / full_scale)).astype(np.uint8)
    raise ImageError(f"The picture's pixel values have an unusable type ({array.dtype}).")


def _prepare_working_picture(working_picture: Image.Image, original_size: tuple[int, int]) -> PreparedImage:
    """Run the Fashion-MNIST steps on a picture already in working mode and size."""
    luminance = _luminance_without_transparency(working_picture)
    item, inverted = _isolate_item(luminance)
    framed = _fit_to_frame(_crop_to_item(item))
    preview = np.round(framed * 255).astype(np.uint8)
    array = preview.astype(np.float32) / 255
    return PreparedImage(array=array, preview=preview, inverted=inverted, original_size=original_size)


def _luminance_without_transparency(working_picture: Image.Image) -> np.ndarray:
    """Luminance in [0, 1], transparency replaced by a background that contrasts with the item.

    Transparent pixels are background: the canvas returns a stroke on a fully transparent
    layer, and cut-out product photos are transparent around the product. We composite
    onto white when the opaque pixels are mostly dark and onto black when they are mostly
    light, so the stroke or product stands out whatever its colour.
    """
    if working_picture.mode == "F":
        return np.clip(np.asarray(working_picture, dtype=np.float32), 0.0, 1.0)
    channels = np.asarray(working_picture, dtype=np.float32) / 255
    if working_picture.mode == "L":
        return channels
    luminance, opacity = channels[:, :, 0], channels[:, :, 1]
    total_opacity = float(opacity.sum())
    if total_opacity == 0:
        raise ImageError(TRANSPARENT_MESSAGE)
    if float(opacity.min()) == 1.0:
        return luminance
    mean_opaque_luminance = float((luminance * opacity).sum()) / total_opacity
    background_level = 1.0 if mean_opaque_luminance < 0.5 else 0.0
    return luminance * opacity + background_level * (1.0 - opacity)


def _border_pixels(values: np.ndarray) -> np.ndarray:
    """The outer frame (about 2% of the shorter side, at least 1 pixel), where the background is."""
    height, width = values.shape
    thickness = max(1, round(min(height, width) * 0.02))
    if 2 * thickness >= min(height, width):
        return values.ravel()
    return np.concatenate(
        [
            values[:thickness].ravel(),
            values[-thickness:].ravel(),
            values[thickness:-thickness, :thickness].ravel(),
            values[thickness:-thickness, -thickness:].ravel(),
        ]
    )


def _border_coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and columns of the same outer frame as :func:`_border_pixels`; None if it is the whole picture."""
    height, width = shape
    thickness = max(1, round(min(height, width) * 0.02))
    if 2 * thickness >= min(height, width):
        return None
    strips = [(np.arange(thickness), np.arange(width)),
              (np.arange(height - thickness, height), np.arange(width)),
              (np.arange(thickness, height - thickness), np.arange(thickness)),
              (np.arange(thickness, height - thickness), np.arange(width - thickness, width))]
    rows = np.concatenate([np.repeat(strip_rows, len(strip_columns)) for strip_rows, strip_columns in strips])
    columns = np.concatenate([np.tile(strip_columns, len(strip_rows)) for strip_rows, strip_columns in strips])
    return rows, columns


def _robust_deviation(values: np.ndarray) -> float:
    """The standard deviation of Gaussian noise with this median absolute deviation from 0."""
    return 1.4826 * float(np.median(np.abs(values)))


def _background_lighting(luminance: np.ndarray) -> np.ndarray | None:
    """A plane fitted to the border, where the light falls off across the picture; else None.

    Light from one side makes the background a slope, not a level: a constant background
    level then leaves a band of background on one side, and widening the noise band to hide
    it wipes out the item's mid-greys. The plane is fitted robustly (each round refits to the
    border pixels close to the last fit, so an item that touches the frame does not tilt it)
    and is kept only if it explains the border much better than a constant.
    """
    height, width = luminance.shape
    coordinates = _border_coordinates(luminance.shape)
    if coordinates is None:  # a picture of at most 2 pixels across: the frame is all of it
        return None
    rows, columns = coordinates
    stride = max(1, len(rows) // LIGHTING_FIT_PIXELS)
    rows, columns = rows[::stride], columns[::stride]
    values = luminance[rows, columns].astype(np.float64)
    x = columns / (width - 1) * 2 - 1
    y = rows / (height - 1) * 2 - 1
    design = np.column_stack([np.ones_like(x), x, y])
    residuals = values - np.median(values)
    constant_deviation = _robust_deviation(residuals)
    if constant_deviation == 0:
        return None
    deviation = constant_deviation
    coefficients = None
    for _ in range(LIGHTING_FIT_ROUNDS):
        inliers = np.abs(residuals) <= max(LIGHTING_INLIER_DEVIATIONS * deviation, 1e-6)
        if inliers.sum() < 3:
            break
        kept = design[inliers]
        try:
            coefficients = np.linalg.solve(kept.T @ kept, kept.T @ values[inliers])
        except np.linalg.LinAlgError:  # the inliers all lie on one line
            return None
        residuals = values - design @ coefficients
        deviation = _robust_deviation(residuals)
    if coefficients is None or deviation > LIGHTING_MODEL_GAIN * constant_deviation:
        return None
    grid_x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    grid_y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    plane = coefficients[0] + coefficients[1] * grid_x + coefficients[2] * grid_y
    return np.clip(plane, 0.0, 1.0).astype(np.float32)


def _isolate_item(luminance: np.ndarray) -> tuple[np.ndarray, bool]:
    """Make the item light on a zero background, as in Fashion-MNIST.

    The background is the median of the border, or, where the light falls off across the
    picture, a plane fitted to the border (see :func:`_background_lighting`). On a light
    background the lighting is divided out (a lamp dims item and background alike); on a dark
    one it is subtracted. The item is what differs from the background; if more of that
    difference is darker than the background (a product photo or a pen drawing), we invert.
    Background variation up to a few robust standard deviations (paper texture, JPEG noise)
    is removed, and the rest is stretched to [0, 1].
    """
    border = _border_pixels(luminance)
    background_level = float(np.median(border))
    lighting = _background_lighting(luminance)
    if lighting is None:
        difference = luminance - background_level
        border_difference = border - background_level
    else:
        difference = luminance - lighting
        if background_level > 0.5:
            difference *= background_level / np.maximum(lighting, 0.05 * background_level)
        border_difference = _border_pixels(difference)
    darker_mass = float(np.clip(-difference, 0, None).sum())
    lighter_mass = float(np.clip(difference, 0, None).sum())
    inverted = darker_mass > lighter_mass
    if inverted:
        difference = -difference
    item = np.clip(difference, 0.0, None)
    noise_level = NOISE_DEVIATIONS * _robust_deviation(border_difference)
    peak = float(item.max())
    noise_level = min(noise_level, 0.5 * peak)
    contrast = peak - noise_level
    if contrast < MINIMUM_ITEM_CONTRAST:
        raise ImageError(BLANK_MESSAGE)
    return np.clip((item - noise_level) / contrast, 0.0, 1.0), inverted


def _crop_to_item(item: np.ndarray) -> np.ndarray:
    """Trim to the bounding box of pixels meaningfully above the background."""
    inside = item > ITEM_THRESHOLD
    rows = np.flatnonzero(inside.any(axis=1))
    columns = np.flatnonzero(inside.any(axis=0))
    return item[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def _fit_to_frame(item: np.ndarray) -> np.ndarray:
    """Scale the longer side to 28 pixels (aspect ratio kept), centre, and stretch to 1.0.

    Fashion-MNIST items touch the frame on their long side (98% of the test set does), so
    there is no margin. Lanczos resampling averages over the whole source footprint when
    shrinking, which antialiases, and interpolates smoothly when enlarging.
    """
    height, width = item.shape
    scale = FRAME_SIZE / max(height, width)
    new_width = min(FRAME_SIZE, max(1, round(width * scale)))
    new_height = min(FRAME_SIZE, max(1, round(height * scale)))
    resized = Image.fromarray(item.astype(np.float32)).resize((new_width, new_height), Image.Resampling.LANCZOS)
    framed = np.zeros((FRAME_SIZE, FRAME_SIZE), dtype=np.float32)
    top = (FRAME_SIZE - new_height) // 2
    left = (FRAME_SIZE - new_width) // 2
    framed[top : top + new_height, left : left + new_width] = np.clip(np.asarray(resized, dtype=np.float32), 0.0, None)
    brightest = float(framed.max())
    if brightest <= 0:
        raise ImageError(BLANK_MESSAGE)
    return np.clip(framed / brightest, 0.0, 1.0)


def _too_large_message(size: tuple[int, int] | None) -> str:
    """Say how large the picture is, when we know, and what the limit is."""
    limit = f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
    if size is None:
        return f"The picture is too large; {limit}"
    width, height = size
    return f"The picture is too large ({width}×{height} pixels); {limit}"


# --------------------------------------------------------------------------- canvas drawings

DRAWING_STROKE_WIDTH = 2.5
"""Widest stroke, in pixels of the 28 × 28 frame, a canvas drawing keeps: thicker strokes are
thinned to it. A person's outline drawn with a thick brush on a small drawing would otherwise
come out as blobs several pixels wide, unlike any outline."""

HOLE_SHARE = 0.1
"""A drawing that encloses less than this share of its filled-in shape as empty holes ..."""

COLOURED_IN_WIDTH = 5.0
"""... and whose strokes are wider than this at 28 × 28 is coloured in, and is left as drawn."""

SOLID_RADIUS = 4.0
"""A drawing with a solid part more than twice this many pixels across at 28 × 28 (a coloured-in
bag body under its handle's hole, say) is coloured in, however much its strokes enclose: no
brush stroke of an outline is that wide, and thinning would leave the part's skeleton only."""

FAINT_EDGE_OPACITY = 0.5
"""Canvas pixels less opaque than this are the anti-aliased fringe of a stroke, not ink."""


def stroke_width(ink: np.ndarray) -> float:
    """The typical width, in pixels, of the strokes in a boolean ink mask.

    For a stroke of width w and length l, the area is about w·l and the boundary about 2·l, so
    w ≈ 2·area / boundary. A filled shape gives a large value, as it should.
    """
    ink = np.asarray(ink, dtype=bool)
    area = int(ink.sum())
    if area == 0:
        return 0.0
    from scipy import ndimage

    boundary = int((ink & ~ndimage.binary_erosion(ink, border_value=0)).sum())
    return 2.0 * area / max(boundary, 1)


def normalise_strokes(opacity: np.ndarray) -> np.ndarray:
    """Thin the strokes of a line drawing so that at 28 × 28 they are at most a few pixels wide.

    ``opacity`` is the canvas's alpha (or ink) in [0, 1] at canvas scale. Its faint
    anti-aliased fringe is not counted as ink. Coloured-in drawings (few holes and wide strokes,
    or a part too wide for any stroke: :data:`SOLID_RADIUS`) are returned unchanged; so are line
    drawings whose strokes are already thin enough for their size.
    """
    from scipy import ndimage

    opacity = np.clip(np.asarray(opacity, dtype=np.float32), 0.0, 1.0)
    ink = opacity >= FAINT_EDGE_OPACITY
    if not ink.any():
        return opacity
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    longer_side = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    filled = ndimage.binary_fill_holes(ink)
    hole_share = 1.0 - ink.sum() / filled.sum()
    width = stroke_width(ink)
    width_at_frame = width * FRAME_SIZE / longer_side
    if hole_share < HOLE_SHARE and width_at_frame > COLOURED_IN_WIDTH:
        return opacity
    if width_at_frame <= DRAWING_STROKE_WIDTH:
        return opacity
    inside = ndimage.distance_transform_edt(ink)
    if float(inside.max()) * FRAME_SIZE / longer_side > SOLID_RADIUS:
        return opacity
    target = DRAWING_STROKE_WIDTH * longer_side / FRAME_SIZE
    # Keep the stroke's centre line: everything within target/2 of it, anti-aliased again.
    centre = inside >= np.maximum(ndimage.maximum_filter(inside, size=3) - 0.5, 1.0)
    distance_to_centre = ndimage.distance_transform_edt(~centre)
    thinned = np.clip(target / 2 + 0.5 - distance_to_centre, 0.0, 1.0) * (ink | (opacity > 0))
    return thinned.astype(np.float32)


def prepare_drawing(canvas: np.ndarray, normalise: bool = True) -> PreparedImage:
    """Prepare a canvas drawing (RGBA, strokes on a transparent layer) like :func:`prepare_image`.

    With ``normalise`` the strokes of a line drawing are first thinned to a width an outline has
    at 28 × 28 (:func:`normalise_strokes`). Anything that is not an RGBA drawing with some
    transparency goes to :func:`prepare_image` unchanged.
    """
    canvas = np.asarray(canvas)
    if not (canvas.ndim == 3 and canvas.shape[2] == 4 and canvas.dtype == np.uint8) or not normalise:
        return prepare_image(canvas)
    opacity = canvas[:, :, 3].astype(np.float32) / 255
    if float(opacity.min()) == 1.0 or float(opacity.max()) == 0.0:
        return prepare_image(canvas)
    luminance = canvas[:, :, :3].astype(np.float32).mean(axis=2) / 255
    mean_ink_luminance = float((luminance * opacity).sum() / opacity.sum())
    if mean_ink_luminance < 0.5:  # dark strokes on transparent: the general rules handle them
        return prepare_image(canvas)
    thinned = normalise_strokes(opacity)
    return prepare_image(np.round(thinned * 255).astype(np.uint8))
