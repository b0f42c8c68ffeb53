"""The Pillow plumbing of the image pipeline: read within limits, normalise, encode.

Only the formats of :mod:`bot.images.formats` are ever parsed; others are named from their magic bytes
(for the refusal message) but never opened. Limits are enforced before any pixel is decoded: the
byte size first, then the pixel count from the header. Truncated or damaged files are refused
rather than decoded in half (Pillow's ``LOAD_TRUNCATED_IMAGES`` stays off). Pillow's global
``MAX_IMAGE_PIXELS`` is left alone for the rest of the process: our :data:`MAX_PIXELS` is stricter
and is checked as soon as the header is read (Pillow's own bomb error is still caught).
"""

from __future__ import annotations

import io
import logging
from typing import Any

from PIL import Image, ImageOps, ImageStat, UnidentifiedImageError

from bot.images import policy
from bot.images.formats import ACCEPTED, ALLOWED_FORMATS, STILL_ONLY

log = logging.getLogger(__name__)

MAX_INPUT_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 50_000_000
# The provider wants base64 payloads under 1 MB; we count the whole `data:` URL to stay clear of it.
MAX_DATA_URL_CHARS = 1_000_000

JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a JPEG with extra frames, as many cameras write
DAMAGED = "That image is incomplete or damaged, so I can't read it."
TOO_MANY_PIXELS = f"That image has far too many pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels."


class ImageRejected(Exception):
    """The image cannot be used; ``reason`` is a short sentence meant for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- reading --------------------------------------------------------------------------------------

_FOREIGN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"%PDF", "PDF"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"PK\x03\x04", "ZIP"),
)
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF",
                b"avif": "AVIF", b"avis": "AVIF"}
_ALLOWED_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_OPENED_BRANDS = {"AVIF": (b"avif", b"avis"), "HEIF": (b"heic", b"heix", b"hevc", b"mif1", b"msf1")}


def foreign_format(data: bytes) -> str | None:
    """A name for a format we do not open, from its magic bytes (for the refusal message only)."""
    for magic, name in _FOREIGN_SIGNATURES:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12], "video")
    head = data[:1024].lstrip()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    start = data[:512]
    text = start.decode("utf-8", "ignore")
    if len(text.encode("utf-8")) < len(start) - 3:  # more than a character cut at the end was dropped
        return None
    return "text" if all(c.isprintable() or c.isspace() for c in text) else None


def _opened_signature(data: bytes) -> bool:
    if data.startswith(_ALLOWED_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return True
    brand = data[8:12] if data[4:8] == b"ftyp" else None
    return any(brand in _OPENED_BRANDS.get(name, ()) for name in ALLOWED_FORMATS)


def unreadable_reason(data: bytes) -> str:
    if _opened_signature(data):
        return DAMAGED
    name = foreign_format(data)
    if name is not None:
        return f"That file is not an image I can read ({name}). {ACCEPTED}"
    return f"That file is not an image I can read. {ACCEPTED}"


def open_image(data: bytes) -> Image.Image:
    """Identify the image from its header, enforcing the byte, format and pixel limits."""
    if not data:
        raise ImageRejected("That file is empty.")
    if len(data) > MAX_INPUT_BYTES:
        raise ImageRejected(f"That file is too large ({len(data) / 2**20:.1f} MB); "
                            f"the limit is {MAX_INPUT_BYTES // 2**20} MB.")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise ImageRejected(TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise ImageRejected(unreadable_reason(data)) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageRejected(f"That image is too large ({width} x {height} pixels); "
                            f"the limit is {MAX_PIXELS // 1_000_000} megapixels.")
    if width < 1 or height < 1:
        raise ImageRejected("That image is empty (zero pixels).")
    return image


_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}  # any other mode: 4


def decoded_bytes(data: bytes) -> int:
    """The memory decoding ``data`` holds at its largest, from the header alone (nothing decoded):
    its pixels as Pillow keeps them (1, 2 or 4 bytes each), for a mode that must become L, RGB or
    RGBA first the converted copy, and the first pass of resizing it (measured: a 7000x7000 PNG
    peaks at 238 MB, this says 250); for an animation, the frame being sampled. 0 for what will
    be refused before decoding (no readable header, too many pixels): that job ends at once."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height, mode = image.width, image.height, image.mode
            animated = bool(getattr(image, "is_animated", False)) and image.format not in STILL_ONLY
    except Exception:  # unreadable, a bomb, a format we do not open: refused before decoding
        return 0
    if width * height > MAX_PIXELS:
        return 0
    if animated:  # a frame, the composite it is drawn on, and its RGBA copy (see bot.images.animation)
        return width * height * 12
    per_pixel = _PIXEL_BYTES.get(mode, 4) + (0 if mode in ("L", "RGB", "RGBA") else 4)
    first_pass = min(width, policy.TEXT_MAX_WIDTH) * height * 4  # a downscale's first pass: new width x old height
    return width * height * per_pixel + first_pass


def orientation_of(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # unreadable EXIF is common and harmless: ignore the orientation
        log.debug("ignoring unreadable EXIF", exc_info=True)
        return 1


def decode(image: Image.Image, long_side: int | None, *, tolerance: float) -> Image.Image:
    """Decode the first frame (JPEG at a reduced scale when ``long_side`` allows) upright."""
    if long_side is not None and image.format in JPEG_FORMATS:
        divisor = policy.draft_reduction(image.width, image.height, long_side, tolerance=tolerance)
        if divisor > 1:
            image.draft(None, (image.width // divisor, image.height // divisor))
    image.load()
    orientation = orientation_of(image)
    if orientation != 1:
        try:
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:
            log.debug("could not apply EXIF orientation %s", orientation, exc_info=True)
    return image


# --- normalising ----------------------------------------------------------------------------------

def deep_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale -> 8-bit, scaled rather than clipped."""
    sixteen_bit = image.mode.startswith("I;16")
    work = image.convert("I") if sixteen_bit else image
    low, high = work.getextrema()  # type: ignore[misc]
    if sixteen_bit or (low >= 0 and 255 < high <= 65535):
        scale, offset = 1 / 256, 0.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    else:
        scale = 255 / (high - low) if high > low else 1.0
        offset = -low * scale
    return work.point(lambda value: value * scale + offset).convert("L")


def working_mode(image: Image.Image) -> Image.Image:
    """Bring any mode to L, RGB or RGBA, the modes Pillow resizes well."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA"):
        return image
    if mode.startswith(("I", "F")):
        return deep_to_l(image)
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode in ("LA", "La", "PA", "RGBa"):
        return image.convert("RGBA") if mode != "La" else image.convert("LA").convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def flatten(image: Image.Image) -> Image.Image:
    """RGBA -> RGB on white, or on near-black when the visible content is itself light
    (white text on a transparent background must stay readable)."""
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:  # type: ignore[index]
        return image.convert("RGB")
    visible = alpha.point(lambda value: 255 if value >= 128 else 0)
    luminance = ImageStat.Stat(image.convert("L"), mask=visible).mean[0] if visible.getbbox() else 0
    background = (24, 24, 24) if luminance > 170 else (255, 255, 255)
    canvas = Image.new("RGB", image.size, background)
    canvas.paste(image, mask=alpha)
    return canvas


RESIZE_REDUCING_GAP = 1.5
"""Lanczos after reducing by whole factors (box averaging) while at least this much scaling is left.

Measured against a full Lanczos pass: a 7000x7000 PNG to 1536 px in 134 ms instead of 645 ms at
48 dB PSNR, a 6000x4000 photo in 108 ms instead of 275 ms at 53 dB (both indistinguishable); a
downscale by less than 3x (a 4K screenshot to 1536 or 1920 px) is a plain resampling pass."""

LIGHT_DOWNSCALE = 1.5
"""A downscale by less than this (a 1080p screenshot to 1536 px, a 1280 px photo to 1024) is bicubic:
7 taps per pixel instead of Lanczos's 9 at 1.25x, and that pass is most of the time a 1080p
screenshot takes. Measured on six 1920x1080 chat screenshots to 1536 px: 28 ms instead of 38, and
Tesseract's CER 1.30% against 1.26% (bilinear: 19 ms but 1.61%). At 2x (a 4K screenshot to 1920 px)
bicubic lost 0.35 CER points, so larger downscales, and OCR's (``sharp``), stay Lanczos."""


def resize(image: Image.Image, size: tuple[int, int], *, sharp: bool = False) -> Image.Image:
    """``image`` at ``size``; ``sharp`` keeps Lanczos for small downscales too (text for OCR)."""
    if image.size == size:
        return image
    light = not sharp and max(image.width / size[0], image.height / size[1]) < LIGHT_DOWNSCALE
    resample = Image.Resampling.BICUBIC if light else Image.Resampling.LANCZOS
    return image.resize(size, resample, reducing_gap=RESIZE_REDUCING_GAP)


def finish(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":
        return flatten(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def check_ratio(width: int, height: int) -> None:
    if max(width, height) / min(width, height) > policy.QWEN_MAX_RATIO:
        raise ImageRejected(f"That image is too long and thin to look at (more than "
                            f"{policy.QWEN_MAX_RATIO}:1).")


# --- encoding -------------------------------------------------------------------------------------

def data_url_chars(size: int, mime: str) -> int:
    return len(f"data:{mime};base64,") + 4 * ((size + 2) // 3)


def fits(size: int, mime: str) -> bool:
    return data_url_chars(size, mime) <= MAX_DATA_URL_CHARS


def save(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()
