"""Pictures a visitor might upload, drawn with Pillow: clothing shapes on varied backgrounds.

Deterministic for a seed. Sizes range from about 60 to 1,500 pixels a side; backgrounds are
white, tinted, dark, gradients or paper-like noise; items are filled, outlined or textured;
files are PNG (RGB, greyscale or RGBA with a transparent background) or JPEG of varied quality.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ITEM_KINDS = ("tshirt", "trousers", "dress", "bag", "sneaker", "boot", "pullover", "sandal")


def _item_polygon(kind: str, left: float, top: float, width: float, height: float) -> list[list[tuple[float, float]]]:
    """Polygons (in picture coordinates) outlining one item inside the given box."""

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * width, top + y * height

    shapes = {
        "tshirt": [[at(0.3, 0), at(0.7, 0), at(1, 0.2), at(0.85, 0.38), at(0.78, 0.3), at(0.78, 1),
                    at(0.22, 1), at(0.22, 0.3), at(0.15, 0.38), at(0, 0.2)]],
        "pullover": [[at(0.3, 0), at(0.7, 0), at(0.95, 0.15), at(1, 0.95), at(0.85, 0.95), at(0.8, 0.35),
                      at(0.8, 1), at(0.2, 1), at(0.2, 0.35), at(0.15, 0.95), at(0, 0.95), at(0.05, 0.15)]],
        "trousers": [[at(0.15, 0), at(0.85, 0), at(0.95, 1), at(0.6, 1), at(0.5, 0.3), at(0.4, 1), at(0.05, 1)]],
        "dress": [[at(0.35, 0), at(0.65, 0), at(0.62, 0.3), at(0.95, 1), at(0.05, 1), at(0.38, 0.3)]],
        "bag": [[at(0, 0.3), at(1, 0.3), at(0.95, 1), at(0.05, 1)],
                [at(0.3, 0.3), at(0.35, 0), at(0.65, 0), at(0.7, 0.3), at(0.6, 0.3), at(0.57, 0.1),
                 at(0.43, 0.1), at(0.4, 0.3)]],
        "sneaker": [[at(0, 0.45), at(0.35, 0.3), at(0.5, 0.5), at(0.85, 0.6), at(1, 0.8), at(1, 1), at(0, 1)]],
        "boot": [[at(0.1, 0), at(0.5, 0), at(0.55, 0.55), at(0.95, 0.75), at(1, 1), at(0.05, 1)]],
        "sandal": [[at(0, 0.8), at(1, 0.75), at(1, 0.9), at(0, 0.95)],
                   [at(0.2, 0.8), at(0.35, 0.4), at(0.45, 0.4), at(0.35, 0.8)],
                   [at(0.55, 0.78), at(0.7, 0.45), at(0.8, 0.45), at(0.7, 0.78)]],
    }
    return shapes[kind]


def _background(rng: random.Random, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """A background picture and whether it is dark."""
    width, height = size
    style = rng.choice(("white", "tint", "dark", "gradient", "paper"))
    if style == "white":
        return Image.new("RGB", size, (255, 255, 255)), False
    if style == "tint":
        return Image.new("RGB", size, tuple(rng.randint(200, 250) for _ in range(3))), False
    if style == "dark":
        return Image.new("RGB", size, tuple(rng.randint(0, 40) for _ in range(3))), True
    if style == "gradient":
        ramp = np.linspace(rng.randint(200, 235), 255, height, dtype=np.float32)[:, None]
        plane = np.repeat(ramp, width, axis=1)
        return Image.fromarray(np.stack([plane] * 3, axis=2).astype(np.uint8)), False
    generator = np.random.default_rng(rng.randrange(2**32))
    paper = np.clip(generator.normal(235, 6, size=(height, width)), 0, 255).astype(np.uint8)
    return Image.fromarray(paper).convert("RGB"), False


def draw_picture(rng: random.Random) -> tuple[str, bytes]:
    """One picture as (file name, encoded bytes)."""
    longest = rng.randint(60, 1500)
    aspect = rng.uniform(0.6, 1.6)
    size = (max(32, int(longest * min(1.0, aspect))), max(32, int(longest * min(1.0, 1 / aspect))))
    picture, dark_background = _background(rng, size)
    kind = rng.choice(ITEM_KINDS)
    width, height = size
    box_width = width * rng.uniform(0.35, 0.9)
    box_height = height * rng.uniform(0.35, 0.9)
    left = rng.uniform(0, width - box_width)
    top = rng.uniform(0, height - box_height)
    if dark_background:
        fill = tuple(rng.randint(150, 255) for _ in range(3))
    else:
        fill = tuple(rng.randint(0, 140) for _ in range(3))
    draw = ImageDraw.Draw(picture)
    outline_only = rng.random() < 0.2
    line_width = max(2, int(min(size) / 60))
    for polygon in _item_polygon(kind, left, top, box_width, box_height):
        if outline_only:
            draw.polygon(polygon, outline=fill, width=line_width)
        else:
            draw.polygon(polygon, fill=fill)
    if rng.random() < 0.3:  # stripes or a print on the item
        stripe = tuple(min(255, channel + 60) for channel in fill)
        for index in range(1, 6):
            y = top + box_height * index / 6
            draw.line([(left + box_width * 0.3, y), (left + box_width * 0.7, y)], fill=stripe, width=line_width)
    if rng.random() < 0.3:
        picture = picture.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.5, 2.5)))

    buffer = io.BytesIO()
    kind_of_file = rng.choice(("jpeg", "jpeg", "png", "png_grey", "png_alpha"))
    if kind_of_file == "jpeg":
        picture.save(buffer, format="JPEG", quality=rng.randint(60, 95))
        extension = "jpg"
    elif kind_of_file == "png_grey":
        picture.convert("L").save(buffer, format="PNG")
        extension = "png"
    elif kind_of_file == "png_alpha":
        mask = Image.new("L", size, 0)
        mask_draw = ImageDraw.Draw(mask)
        for polygon in _item_polygon(kind, left, top, box_width, box_height):
            mask_draw.polygon(polygon, fill=255)
        rgba = picture.convert("RGBA")
        rgba.putalpha(mask)
        rgba.save(buffer, format="PNG")
        extension = "png"
    else:
        picture.save(buffer, format="PNG")
        extension = "png"
    return f"{kind}_{size[0]}x{size[1]}.{extension}", buffer.getvalue()


def make_pictures(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """``count`` varied pictures, the same ones for the same seed."""
    rng = random.Random(seed)
    return [draw_picture(rng) for _ in range(count)]
