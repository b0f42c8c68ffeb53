"""How big an image should be when it reaches the model: pure decisions on sizes and pixels.

`bot/images/prepare.py` does the decoding and encoding; this module only answers questions such as
"what long side for this detail and this content?" and "where do the OCR tiles of a tall image
start and end?", so the policy can be read (and tested) apart from the Pillow plumbing.
"""

from __future__ import annotations

import math
from typing import Literal

from PIL import Image

Detail = Literal["auto", "low", "high"]

# Qwen2.5-VL's own resize (qwen_vl_utils.smart_resize): sides become multiples of 28 and the area is
# kept within [4, 16384] blocks of 28x28 px; each block is one image token.
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 4 * 28 * 28
QWEN_MAX_PIXELS = 16384 * 28 * 28
QWEN_MAX_RATIO = 200  # the processor refuses anything longer and thinner than this

LOW_LONG_SIDE = 512
PHOTO_LONG_SIDE = 1024  # a 4000x3000 photo costs ~1,000 tokens instead of ~15,000
HIGH_LONG_SIDE = 1536  # also the `auto` size for screenshots, documents and other flat graphics

# JPEG draft decoding only offers 1/2, 1/4 and 1/8 of the original size. Taking a draft whose long
# side is slightly under the target (up to this factor) skips a resampling pass entirely.
DRAFT_TOLERANCE = 0.9

# OCR: keep text legible. 1920 keeps every 1080p screen untouched; a 4K screenshot (usually drawn at
# 200% scaling) is halved without losing legibility.
TEXT_MAX_WIDTH = 1920
TEXT_TALL_ASPECT = 2.5  # height / width above which an image is cut into tiles
TEXT_TILE_HEIGHT = 1500
TEXT_TILE_OVERLAP = 150  # ~10%: any line shorter than this is whole in at least one tile
TEXT_MAX_TILES = 20


def _round_by(value: float, factor: int) -> int:
    return round(value / factor) * factor


def qwen_resized_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) Qwen2.5-VL's processor resizes an image to (its ``smart_resize``)."""
    width, height = max(1, width), max(1, height)
    h_bar = max(QWEN_FACTOR, _round_by(height, QWEN_FACTOR))
    w_bar = max(QWEN_FACTOR, _round_by(width, QWEN_FACTOR))
    if h_bar * w_bar > QWEN_MAX_PIXELS:
        beta = math.sqrt(height * width / QWEN_MAX_PIXELS)
        h_bar = max(QWEN_FACTOR, math.floor(height / beta / QWEN_FACTOR) * QWEN_FACTOR)
        w_bar = max(QWEN_FACTOR, math.floor(width / beta / QWEN_FACTOR) * QWEN_FACTOR)
    elif h_bar * w_bar < QWEN_MIN_PIXELS:
        beta = math.sqrt(QWEN_MIN_PIXELS / (height * width))
        h_bar = math.ceil(height * beta / QWEN_FACTOR) * QWEN_FACTOR
        w_bar = math.ceil(width * beta / QWEN_FACTOR) * QWEN_FACTOR
    return w_bar, h_bar


def qwen_image_tokens(width: int, height: int) -> int:
    """Image tokens Qwen2.5-VL bills for an image of this size: one per 28x28 block after its resize."""
    w_bar, h_bar = qwen_resized_size(width, height)
    return (w_bar // QWEN_FACTOR) * (h_bar // QWEN_FACTOR)


def long_side_cap(detail: Detail, *, graphic: bool) -> int:
    """The longest side an image may keep for this detail (``auto`` keeps more for flat graphics)."""
    if detail == "low":
        return LOW_LONG_SIDE
    if detail == "high" or graphic:
        return HIGH_LONG_SIDE
    return PHOTO_LONG_SIDE


def fit_within(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size with the same aspect whose long side is at most ``long_side`` (never enlarged)."""
    scale = long_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def draft_reduction(width: int, height: int, long_side: int, *, tolerance: float = DRAFT_TOLERANCE) -> int:
    """The largest JPEG draft divisor (8, 4, 2 or 1) that keeps the long side near ``long_side``."""
    longest = max(width, height)
    for divisor in (8, 4, 2):
        if longest // divisor >= long_side * tolerance:
            return divisor
    return 1


def looks_like_graphic(image: Image.Image) -> bool:
    """True for screenshots, documents, diagrams and memes on flat backgrounds; False for photos.

    Flat graphics are dominated by a few exact colours; photos (sensor noise, gradients) never are.
    Measured on a coarse sample with colours quantised to 16 levels, so JPEG noise does not hide it.
    """
    sample = image.resize((96, 96), Image.Resampling.NEAREST).convert("RGB")  # never a full-size copy
    sample = sample.point(lambda value: value & 0xF0)
    colours = sample.getcolors(maxcolors=96 * 96) or []
    top = sorted((count for count, _ in colours), reverse=True)[:8]
    return sum(top) >= 0.45 * 96 * 96


def needs_tiles(width: int, height: int) -> bool:
    return height / width > TEXT_TALL_ASPECT and height > TEXT_TILE_HEIGHT


def tile_spans(
    height: int, *, tile: int = TEXT_TILE_HEIGHT, overlap: int = TEXT_TILE_OVERLAP
) -> list[tuple[int, int]]:
    """Top-to-bottom (top, bottom) row spans of equal height covering ``height``, each overlapping
    the next by at least ``overlap`` rows."""
    if height <= tile:
        return [(0, height)]
    count = math.ceil((height - overlap) / (tile - overlap))
    step = (height - tile) / (count - 1)
    return [(round(i * step), round(i * step) + tile) for i in range(count)]
