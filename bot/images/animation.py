"""Animations (GIF, APNG, animated WebP and AVIF) as one contact sheet: a few frames spread over the
whole animation, laid out in reading order and numbered, so the model sees the motion for the token
cost of one image.

Every format here decodes frames in sequence, so sampling frame *i* decodes every frame before it:
the pixels decoded are bounded by :data:`MAX_ANIMATION_PIXELS` (all frames up to the last one
sampled); an animation too large to sample is shown by its first frame alone. Each sampled frame is
reduced to its cell at once, so only one full-size frame is held at a time.
"""

from __future__ import annotations

import logging
import math

from PIL import Image, ImageDraw, ImageFont

from bot.images import codec, policy
from bot.images.formats import STILL_ONLY

log = logging.getLogger(__name__)

MAX_ANIMATION_PIXELS = 150_000_000
"""Pixels decoded to sample one animation (frame count x width x height, up to the last frame sampled)."""
SHEET_GAP = 6
"""Pixels between the cells of a contact sheet."""
_BACKGROUND = (128, 128, 128)  # grey lines between the cells, visible on light and dark frames
_LABEL_BACKGROUND = (20, 20, 20)
_LABEL_TEXT = (255, 255, 255)


def frame_count(image: Image.Image) -> int:
    """Frames in ``image`` (1 for a still image); counting reads headers only, nothing is decoded."""
    if not getattr(image, "is_animated", False) or image.format in STILL_ONLY:  # a TIFF's pages are no animation
        return 1
    return int(getattr(image, "n_frames", 1))


def spread(count: int, wanted: int) -> list[int]:
    """``wanted`` frame indices spread evenly from the first frame to the last (all when fewer)."""
    if wanted >= count:
        return list(range(count))
    if wanted <= 1:
        return [0]
    return [round(i * (count - 1) / (wanted - 1)) for i in range(wanted)]


def grid(cells: int) -> tuple[int, int]:
    """(columns, rows) of a near-square grid for ``cells`` frames: 2 -> 2x1, 4 -> 2x2, 6 -> 3x2."""
    columns = math.ceil(math.sqrt(cells))
    return columns, math.ceil(cells / columns)


def sheet_layout(width: int, height: int, cells: int, long_side: int) -> tuple[int, int, int, int]:
    """(columns, rows, cell width, cell height): frames scaled alike so the sheet's long side is at
    most ``long_side`` (never enlarged)."""
    columns, rows = grid(cells)
    room_w, room_h = long_side - (columns - 1) * SHEET_GAP, long_side - (rows - 1) * SHEET_GAP
    scale = min(1.0, room_w / (columns * width), room_h / (rows * height))
    return columns, rows, max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def contact_sheet(image: Image.Image, frames: int, long_side: int) -> tuple[Image.Image, int] | None:
    """The sheet of up to ``frames`` frames of an animated ``image`` (opened, not yet decoded) and the
    number of frames on it; None for a still image, for ``frames`` < 2, or for an animation too
    large to sample (the caller then uses the first frame)."""
    count = frame_count(image)
    if count < 2 or frames < 2:
        return None
    indices = spread(count, frames)
    if (indices[-1] + 1) * image.width * image.height > MAX_ANIMATION_PIXELS:
        log.debug("Animation of %d frames at %dx%d too large to sample: first frame only", count, *image.size)
        return None
    columns, rows, cell_w, cell_h = sheet_layout(image.width, image.height, len(indices), long_side)
    sheet = Image.new(
        "RGB", (columns * cell_w + (columns - 1) * SHEET_GAP, rows * cell_h + (rows - 1) * SHEET_GAP), _BACKGROUND
    )
    font = _font(max(10, min(cell_w, cell_h) // 8))
    for slot, index in enumerate(indices):
        image.seek(index)
        frame = codec.finish(codec.resize(codec.working_mode(image.convert("RGBA")), (cell_w, cell_h)))
        left, top = (slot % columns) * (cell_w + SHEET_GAP), (slot // columns) * (cell_h + SHEET_GAP)
        sheet.paste(frame, (left, top))
        _label(sheet, (left, top), str(slot + 1), font)
    return sheet, len(indices)


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size)
    except Exception:  # Pillow built without FreeType: the small bitmap font still numbers the frames
        return ImageFont.load_default()


def _label(sheet: Image.Image, at: tuple[int, int], text: str, font: Font) -> None:
    draw = ImageDraw.Draw(sheet)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 4)
    box = (at[0], at[1], at[0] + right - left + 2 * pad, at[1] + bottom - top + 2 * pad)
    draw.rectangle(box, fill=_LABEL_BACKGROUND)
    draw.text((at[0] + pad - left, at[1] + pad - top), text, fill=_LABEL_TEXT, font=font)


def sheet_long_side(detail: policy.Detail) -> int:
    """A sheet gets the pixels of one photo at that detail (its frames are pictures, not documents)."""
    return policy.long_side_cap(detail, graphic=False)
