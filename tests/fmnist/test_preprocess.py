"""Tests for fmnist.preprocess: every picture is made here, in memory, from PIL or numpy."""

import io
import pathlib
import random
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fmnist import preprocess
from tests import fuzz_corpus

UPLOAD_CORPUS = fuzz_corpus.build_upload_corpus()
PYTHON_NAMES_PATTERN = re.compile(r"Traceback|Error\b|Exception\b|Warning\b|<.*object at")


def assert_fashion_mnist_shaped(prepared: preprocess.PreparedImage) -> None:
    """The contract every accepted picture must meet."""
    assert prepared.array.shape == (28, 28)
    assert prepared.array.dtype == np.float32
    assert prepared.array.min() >= 0.0
    assert prepared.array.max() == pytest.approx(1.0)
    assert prepared.preview.shape == (28, 28)
    assert prepared.preview.dtype == np.uint8
    np.testing.assert_allclose(prepared.array, prepared.preview / 255, atol=1e-6)


def assert_human_message(error: preprocess.ImageError) -> None:
    message = str(error)
    assert message.strip()
    assert not PYTHON_NAMES_PATTERN.search(message), message


def item_is_light_on_dark(array: np.ndarray) -> bool:
    """Centre brighter than the outer 3-pixel frame, as in Fashion-MNIST."""
    frame = np.ones_like(array, dtype=bool)
    frame[3:-3, 3:-3] = False
    return float(array[8:20, 8:20].mean()) > float(array[frame].mean())


def bounding_box(array: np.ndarray, threshold: float = 0.2) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the pixels above `threshold`."""
    rows = np.flatnonzero((array > threshold).any(axis=1))
    columns = np.flatnonzero((array > threshold).any(axis=0))
    return rows[0], columns[0], rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def centre_of_mass(array: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(array.shape)
    total = array.sum()
    return float((rows * array).sum() / total), float((columns * array).sum() / total)


def rectangle_on(
    background: str,
    colour: str,
    size: tuple[int, int] = (200, 200),
    box: tuple[int, int, int, int] = (40, 60, 160, 140),
) -> Image.Image:
    picture = Image.new("RGB", size, background)
    ImageDraw.Draw(picture).rectangle(box, fill=colour)
    return picture


def tshirt_in_mode(mode: str) -> Image.Image:
    """The dark-on-white T-shirt converted to `mode`; alpha modes get a transparent surround."""
    tshirt = fuzz_corpus.tshirt_picture(120, 120)
    if mode in ("RGBA", "LA"):
        opacity = tshirt.convert("L").point(lambda value: 255 if value < 128 else 0)
        cut_out = tshirt.convert("RGBA")
        cut_out.putalpha(opacity)
        return cut_out.convert(mode)
    if mode == "P with transparency":
        palette_picture = tshirt.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        white_index = palette_picture.getpixel((0, 0))
        palette_picture.info["transparency"] = white_index
        return palette_picture
    if mode == "I;16":
        return Image.fromarray(np.asarray(tshirt.convert("L"), dtype=np.uint16) * 257)
    return tshirt.convert(mode)


FORMAT_AND_MODE_CASES = [
    ("PNG", "1"),
    ("PNG", "L"),
    ("PNG", "P"),
    ("PNG", "P with transparency"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "LA"),
    ("PNG", "I;16"),
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("GIF", "P"),
    ("GIF", "P with transparency"),
    ("BMP", "1"),
    ("BMP", "L"),
    ("BMP", "P"),
    ("BMP", "RGB"),
]


@pytest.mark.parametrize(("image_format", "mode"), FORMAT_AND_MODE_CASES)
def test_every_format_and_mode_prepares_to_a_light_item(image_format: str, mode: str) -> None:
    picture = tshirt_in_mode(mode)
    options = {"transparency": picture.info["transparency"]} if "transparency" in picture.info else {}
    data = fuzz_corpus.encode(picture, image_format, **options)
    with Image.open(io.BytesIO(data)) as decoded:  # the file really has the mode under test
        assert decoded.mode == mode.removesuffix(" with transparency")
        assert ("transparency" in decoded.info) == mode.endswith(" with transparency")

    prepared = preprocess.prepare_image(data)

    assert_fashion_mnist_shaped(prepared)
    assert item_is_light_on_dark(prepared.array)
    assert prepared.original_size == (120, 120)


def test_sixteen_bit_png_is_decoded_as_sixteen_bit() -> None:
    with Image.open(io.BytesIO(UPLOAD_CORPUS["sixteen_bit_png"][1])) as picture:
        assert picture.mode == "I;16"
    assert_fashion_mnist_shaped(preprocess.prepare_image(UPLOAD_CORPUS["sixteen_bit_png"][1]))


def test_dark_item_on_light_background_is_inverted() -> None:
    prepared = preprocess.prepare_image(rectangle_on("white", "black"))

    assert prepared.inverted
    assert item_is_light_on_dark(prepared.array)


def test_light_item_on_dark_background_is_kept() -> None:
    prepared = preprocess.prepare_image(rectangle_on("black", "white"))

    assert not prepared.inverted
    assert item_is_light_on_dark(prepared.array)


def test_dark_item_on_mid_grey_background_is_inverted() -> None:
    prepared = preprocess.prepare_image(rectangle_on("#707070", "black"))

    assert prepared.inverted
    assert item_is_light_on_dark(prepared.array)


def test_small_item_in_a_corner_is_centred_and_fills_the_frame() -> None:
    picture = rectangle_on("white", "black", size=(600, 400), box=(540, 10, 580, 50))

    prepared = preprocess.prepare_image(picture)

    row, column = centre_of_mass(prepared.array)
    assert abs(row - 13.5) < 1.5 and abs(column - 13.5) < 1.5
    _, _, height, width = bounding_box(prepared.array)
    assert max(height, width) >= 24


@pytest.mark.parametrize(("box", "expected_ratio"), [((20, 50, 219, 149), 2.0), ((50, 20, 149, 219), 0.5)])
def test_aspect_ratio_is_preserved_and_the_short_side_centred(
    box: tuple[int, int, int, int], expected_ratio: float
) -> None:
    prepared = preprocess.prepare_image(rectangle_on("white", "black", size=(240, 240), box=box))

    _, _, height, width = bounding_box(prepared.array)
    assert width / height == pytest.approx(expected_ratio, rel=0.1)
    assert max(height, width) == 28
    row, column = centre_of_mass(prepared.array)
    assert abs(row - 13.5) < 1.0
    assert abs(column - 13.5) < 1.0


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied(orientation: int) -> None:
    data = fuzz_corpus.exif_rotated_jpeg(orientation)
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.size == (120, 240)

    prepared = preprocess.prepare_image(data)

    _, _, height, width = bounding_box(prepared.array)
    assert width > 1.5 * height
    assert prepared.original_size == (240, 120)


def test_animated_gif_uses_the_first_frame() -> None:
    prepared = preprocess.prepare_image(UPLOAD_CORPUS["animated_gif"][1])

    _, _, height, width = bounding_box(prepared.array)
    assert height > 2 * width


def canvas_with_stroke(stroke_colour: tuple[int, int, int]) -> np.ndarray:
    """What the drawing canvas returns: RGBA uint8, transparent except an antialiased stroke."""
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.line([(140, 40), (140, 240)], fill=(*stroke_colour, 255), width=24)
    draw.line([(40, 140), (240, 140)], fill=(*stroke_colour, 255), width=24)
    return np.asarray(canvas)


@pytest.mark.parametrize("stroke_colour", [(0, 0, 0), (255, 255, 255), (200, 30, 30), (20, 60, 220)])
def test_canvas_stroke_on_transparent_background_becomes_the_light_item(
    stroke_colour: tuple[int, int, int],
) -> None:
    canvas = canvas_with_stroke(stroke_colour)

    prepared = preprocess.prepare_image(canvas)

    assert_fashion_mnist_shaped(prepared)
    assert prepared.array[13:15, 13:15].min() > 0.9  # the cross's centre
    assert prepared.array[:5, :5].max() < 0.05  # the transparent corner


def test_float_arrays_in_either_range_match_uint8() -> None:
    canvas = canvas_with_stroke((0, 0, 0))
    expected = preprocess.prepare_image(canvas).array

    for array in (canvas / 255.0, canvas.astype(np.float32)):
        np.testing.assert_allclose(preprocess.prepare_image(array).array, expected, atol=1 / 255)


@pytest.mark.parametrize("shape", [(60, 80), (60, 80, 1), (60, 80, 3)])
def test_greyscale_and_rgb_arrays_are_accepted(shape: tuple[int, ...]) -> None:
    array = np.full(shape, 255, dtype=np.uint8)
    array[20:40, 30:50] = 0

    assert_fashion_mnist_shaped(preprocess.prepare_image(array))


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((5,), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 10), np.uint8),
        np.full((4, 4), np.nan),
        np.full((4, 4), -1.0),
        np.zeros((10, 10, 4), np.uint8),
    ],
    ids=["one-dimensional", "five-channels", "no-pixels", "not-a-number", "negative", "transparent"],
)
def test_unusable_arrays_are_rejected_with_a_message(array: np.ndarray) -> None:
    with pytest.raises(preprocess.ImageError) as caught:
        preprocess.prepare_image(array)
    assert_human_message(caught.value)


def test_path_and_pil_image_sources_match_bytes(tmp_path) -> None:
    data = UPLOAD_CORPUS["tshirt_png"][1]
    path = tmp_path / "tshirt.png"
    path.write_bytes(data)
    expected = preprocess.prepare_image(data).array

    np.testing.assert_array_equal(preprocess.prepare_image(path).array, expected)
    np.testing.assert_array_equal(preprocess.prepare_image(str(path)).array, expected)
    with Image.open(path) as picture:
        np.testing.assert_array_equal(preprocess.prepare_image(picture).array, expected)


def test_missing_path_is_rejected_with_a_message(tmp_path) -> None:
    with pytest.raises(preprocess.ImageError, match="no file") as caught:
        preprocess.prepare_image(tmp_path / "missing.png")
    assert_human_message(caught.value)


def test_folder_path_is_rejected_with_a_message(tmp_path) -> None:
    with pytest.raises(preprocess.ImageError, match="folder") as caught:
        preprocess.prepare_image(tmp_path)
    assert_human_message(caught.value)


def test_unsupported_source_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        preprocess.prepare_image(12345)


@pytest.mark.parametrize("case_name", sorted(UPLOAD_CORPUS))
def test_upload_corpus_prepares_or_is_refused_quickly(case_name: str) -> None:
    _, data = UPLOAD_CORPUS[case_name]

    started = time.perf_counter()
    try:
        prepared = preprocess.prepare_image(data)
    except preprocess.ImageError as error:
        prepared = None
        assert_human_message(error)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    if case_name in fuzz_corpus.EXPECTED_REJECTED:
        assert prepared is None
    if case_name in fuzz_corpus.EXPECTED_PREPARED:
        assert prepared is not None
        assert_fashion_mnist_shaped(prepared)


def test_randomly_damaged_files_are_prepared_or_refused_never_crash() -> None:
    """Flip, cut and overwrite bytes of valid files: only ImageError may come out."""
    seeds = [UPLOAD_CORPUS[name][1] for name in ("tshirt_png", "animated_gif", "cmyk_jpeg", "exif_rotated_jpeg")]
    seeds.append(fuzz_corpus.encode(fuzz_corpus.tshirt_picture(90, 70), "WEBP"))
    seeds.append(fuzz_corpus.encode(fuzz_corpus.tshirt_picture(90, 70).convert("P"), "BMP"))
    generator = random.Random(20240501)
    for _ in range(300):
        damaged = bytearray(generator.choice(seeds))
        for _ in range(generator.randint(1, 8)):
            damaged[generator.randrange(len(damaged))] = generator.randrange(256)
        if generator.random() < 0.5:
            damaged = damaged[: generator.randint(1, len(damaged))]
        try:
            assert_fashion_mnist_shaped(preprocess.prepare_image(bytes(damaged)))
        except preprocess.ImageError as error:
            assert_human_message(error)


def test_every_corpus_case_has_a_file_name_and_known_expectations() -> None:
    expected = fuzz_corpus.EXPECTED_REJECTED | fuzz_corpus.EXPECTED_PREPARED
    assert expected <= set(UPLOAD_CORPUS)
    assert not fuzz_corpus.EXPECTED_REJECTED & fuzz_corpus.EXPECTED_PREPARED
    assert all(file_name for file_name, _ in UPLOAD_CORPUS.values())


@pytest.mark.parametrize(
    ("case_name", "expected_words"),
    [
        ("decompression_bomb_20000x20000", "too large"),
        ("over_pixel_limit_7000x6000", "7000×6000"),
        ("over_byte_limit", "too big"),
        ("zero_bytes", "empty"),
        ("fully_transparent_png", "transparent"),
        ("all_white_png", "blank"),
        ("one_pixel", "blank"),
        ("text_named_png", "not a picture"),
        ("truncated_png", "damaged"),
        ("truncated_jpeg", "damaged"),
    ],
)
def test_refusals_say_why(case_name: str, expected_words: str) -> None:
    with pytest.raises(preprocess.ImageError, match=expected_words):
        preprocess.prepare_image(UPLOAD_CORPUS[case_name][1])


def test_decompression_bomb_is_refused_from_the_header_alone() -> None:
    started = time.perf_counter()
    with pytest.raises(preprocess.ImageError):
        preprocess.prepare_image(UPLOAD_CORPUS["decompression_bomb_20000x20000"][1])
    assert time.perf_counter() - started < 0.2


def test_very_wide_picture_becomes_a_thin_full_width_item() -> None:
    prepared = preprocess.prepare_image(UPLOAD_CORPUS["very_wide_5000x10"][1])

    _, _, height, width = bounding_box(prepared.array)
    assert width == 28 and height <= 2
    assert prepared.original_size == (5000, 10)


def test_large_jpeg_photo_prepares_fast() -> None:
    data = fuzz_corpus.encode(fuzz_corpus.tshirt_picture(4000, 3000), "JPEG", quality=85)
    preprocess.prepare_image(data)  # warm up Pillow's lazy plugin loading

    started = time.perf_counter()
    prepared = preprocess.prepare_image(data)
    elapsed = time.perf_counter() - started

    assert elapsed < 0.5
    assert prepared.original_size == (4000, 3000)
    assert item_is_light_on_dark(prepared.array)


def test_module_needs_neither_streamlit_nor_tensorflow() -> None:
    heavy_modules = ("streamlit", "tensorflow", "keras")
    code = f"import sys; import fmnist.preprocess; print([name for name in {heavy_modules!r} if name in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=pathlib.Path(preprocess.__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
