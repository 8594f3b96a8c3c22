"""Files a person might upload, good and bad, built in memory for unit and browser tests.

`build_upload_corpus` maps a case name to ``(file name, file bytes)``. Cases named in
`EXPECTED_REJECTED` must be refused with a plain message, cases in `EXPECTED_PREPARED` must
give a 28 x 28 image, and the rest (random bytes that a decoder may or may not tolerate)
may do either, but must never crash. Everything is generated: no network, no stored files.
"""

import functools
import io
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from fmnist import preprocess

EXPECTED_REJECTED = frozenset(
    {
        "truncated_png",
        "truncated_jpeg",
        "garbled_png",
        "zero_bytes",
        "text_named_png",
        "svg_document",
        "pdf_document",
        "decompression_bomb_20000x20000",
        "over_pixel_limit_7000x6000",
        "one_pixel",
        "fully_transparent_png",
        "all_white_png",
        "over_byte_limit",
    }
)
EXPECTED_PREPARED = frozenset(
    {
        "tshirt_png",
        "animated_gif",
        "sixteen_bit_png",
        "cmyk_jpeg",
        "exif_rotated_jpeg",
        "very_wide_5000x10",
    }
)

_MINIMAL_SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">
  <rect x="20" y="20" width="60" height="60" fill="black"/>
</svg>
"""

_MINIMAL_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def tshirt_picture(width: int = 280, height: int = 280) -> Image.Image:
    """A dark T-shirt silhouette on white, drawn like a product photo, in mode 'RGB'."""
    picture = Image.new("RGB", (width, height), "white")
    outline = [
        (0.30, 0.12), (0.42, 0.12), (0.50, 0.20), (0.58, 0.12), (0.70, 0.12),
        (0.92, 0.32), (0.82, 0.44), (0.74, 0.37), (0.74, 0.88), (0.26, 0.88),
        (0.26, 0.37), (0.18, 0.44), (0.08, 0.32),
    ]  # fmt: skip
    ImageDraw.Draw(picture).polygon([(x * width, y * height) for x, y in outline], fill=(40, 40, 60))
    return picture


def encode(picture: Image.Image, image_format: str, **options: object) -> bytes:
    """The bytes of `picture` saved in `image_format`, as an upload would carry them."""
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def blank_one_bit_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size, built directly so that huge ones cost milliseconds.

    A 20000 x 20000 picture compresses to about 50 kB: the classic decompression bomb.
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    rows_per_chunk = 1000
    compressed = [
        compressor.compress(row * min(rows_per_chunk, height - start)) for start in range(0, height, rows_per_chunk)
    ]
    compressed.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(compressed))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(chunk_type + data)
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", checksum)


def _rectangle_picture(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    picture = Image.new("RGB", size, "white")
    ImageDraw.Draw(picture).rectangle(box, fill="black")
    return picture


def _animated_gif() -> bytes:
    """First frame a tall bar, second a wide bar: a correct result is tall."""
    tall = _rectangle_picture((100, 100), (40, 10, 60, 90)).convert("P")
    wide = _rectangle_picture((100, 100), (10, 40, 90, 60)).convert("P")
    return encode(tall, "GIF", save_all=True, append_images=[wide], duration=100, loop=0)


def _sixteen_bit_png() -> bytes:
    grey = np.asarray(tshirt_picture(120, 120).convert("L"), dtype=np.uint16)
    picture = Image.fromarray(grey * 257)  # 16-bit values, mode "I;16"
    return encode(picture, "PNG")


def _cmyk_jpeg() -> bytes:
    picture = Image.new("CMYK", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(picture).ellipse((30, 40, 130, 120), fill=(0, 0, 0, 255))
    return encode(picture, "JPEG", quality=90)


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """Pixels stored as a tall bar, with an EXIF tag telling viewers to turn it sideways."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    tall = _rectangle_picture((120, 240), (30, 20, 90, 220))
    return encode(tall, "JPEG", quality=90, exif=exif)


def _fully_transparent_png() -> bytes:
    return encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG")


def _very_wide_png() -> bytes:
    return encode(_rectangle_picture((5000, 10), (100, 3, 4899, 6)), "PNG")


def _over_byte_limit() -> bytes:
    """A readable PNG padded past the upload limit: only the size should reject it."""
    picture = encode(tshirt_picture(), "PNG")
    return picture + b"\x00" * (preprocess.MAX_BYTES + 1 - len(picture))


def _random_bytes(count: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(count)


@functools.cache
def _build() -> tuple[tuple[str, tuple[str, bytes]], ...]:
    tshirt_png = encode(tshirt_picture(), "PNG")
    tshirt_jpeg = encode(tshirt_picture(), "JPEG", quality=90)
    noisy_png = encode(Image.frombytes("L", (200, 200), _random_bytes(200 * 200, 1)), "PNG")
    cases = {
        "tshirt_png": ("tshirt.png", tshirt_png),
        "truncated_png": ("truncated.png", noisy_png[: len(noisy_png) // 2]),
        "truncated_jpeg": ("truncated.jpg", tshirt_jpeg[: len(tshirt_jpeg) // 2]),
        "garbled_png": ("garbled.png", tshirt_png[:33] + _random_bytes(4000, 2)),
        "garbled_jpeg": ("garbled.jpg", tshirt_jpeg[:700] + _random_bytes(4000, 3)),
        "zero_bytes": ("empty.png", b""),
        "text_named_png": ("notes.png", b"Shopping list: socks, a coat, two T-shirts.\n"),
        "svg_document": ("square.svg", _MINIMAL_SVG),
        "pdf_document": ("document.pdf", _MINIMAL_PDF),
        "decompression_bomb_20000x20000": ("bomb.png", blank_one_bit_png(20000, 20000)),
        "over_pixel_limit_7000x6000": ("huge.png", blank_one_bit_png(7000, 6000)),
        "one_pixel": ("pixel.png", encode(Image.new("RGB", (1, 1), "red"), "PNG")),
        "animated_gif": ("animated.gif", _animated_gif()),
        "sixteen_bit_png": ("sixteen_bit.png", _sixteen_bit_png()),
        "cmyk_jpeg": ("cmyk.jpg", _cmyk_jpeg()),
        "exif_rotated_jpeg": ("rotated.jpg", exif_rotated_jpeg(6)),
        "fully_transparent_png": ("transparent.png", _fully_transparent_png()),
        "all_white_png": ("white.png", encode(Image.new("RGB", (100, 100), "white"), "PNG")),
        "very_wide_5000x10": ("wide.png", _very_wide_png()),
        "over_byte_limit": ("big.png", _over_byte_limit()),
    }
    return tuple(cases.items())


def build_upload_corpus() -> dict[str, tuple[str, bytes]]:
    """Case name -> (file name, bytes) for every upload case; built once per process."""
    return dict(_build())
