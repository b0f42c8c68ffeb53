"""Token counting the way Qwen2.5-VL bills a request, so cost tests mean something.

Images: the processor resizes each image so both sides are multiples of 28 within a pixel budget
(``smart_resize`` from ``qwen_vl_utils``), then emits one token per 28x28 block, framed by a
``<|vision_start|>`` and a ``<|vision_end|>`` token. Text: a deterministic ~4 characters per token.
"""

from __future__ import annotations

import math

FACTOR = 28
MIN_PIXELS = 4 * FACTOR * FACTOR
MAX_PIXELS = 16384 * FACTOR * FACTOR
MAX_RATIO = 200
VISION_FRAME_TOKENS = 2  # <|vision_start|> and <|vision_end|>
CHARS_PER_TOKEN = 4


class ImageShapeError(ValueError):
    """The aspect ratio is beyond what the model's processor accepts."""


def smart_resize(
    height: int, width: int, *, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """Return ``(height, width)`` as Qwen2.5-VL resizes them: multiples of 28 within the pixel budget."""
    if min(height, width) <= 0:
        raise ImageShapeError("image has no pixels")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ImageShapeError(f"absolute aspect ratio must be smaller than {MAX_RATIO}")
    h_bar = max(FACTOR, round(height / FACTOR) * FACTOR)
    w_bar = max(FACTOR, round(width / FACTOR) * FACTOR)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(FACTOR, math.floor(height / beta / FACTOR) * FACTOR)
        w_bar = max(FACTOR, math.floor(width / beta / FACTOR) * FACTOR)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / FACTOR) * FACTOR
        w_bar = math.ceil(width * beta / FACTOR) * FACTOR
    return h_bar, w_bar


def image_tokens(width: int, height: int) -> int:
    """Prompt tokens of one image: a token per 28x28 block after ``smart_resize``, plus two frame tokens."""
    h_bar, w_bar = smart_resize(height, width)
    return (h_bar // FACTOR) * (w_bar // FACTOR) + VISION_FRAME_TOKENS


def text_tokens(text: str) -> int:
    """A deterministic estimate: one token per started group of four characters."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
