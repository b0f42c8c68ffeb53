"""A corpus of images generated in memory, for the image pipeline's tests and its bench.

Nothing binary is committed: every sample is drawn here with Pillow, or crafted byte by byte
where Pillow cannot write the format (PSD, HEIC) or must not be trusted to (a lying PNG header).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo_like(width: int, height: int, *, seed: int = 1) -> Image.Image:
    """Smooth gradients, a few soft shapes and sensor-like noise: compresses like a real photo."""
    rng = random.Random(seed)
    red = Image.linear_gradient("L").rotate(90).resize((width, height))
    green = Image.linear_gradient("L").resize((width, height))
    blue = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(min(width, height) // 20, min(width, height) // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(image, noise, 0.18)


def photo_jpeg(width: int = 4000, height: int = 3000, *, quality: int = 92, orientation: int = 1) -> bytes:
    image = photo_like(width, height)
    params: dict[str, object] = {"quality": quality}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    return encode(image, "JPEG", **params)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def screenshot(width: int = 1920, height: int = 1080, *, seed: int = 2, dark: bool = False) -> Image.Image:
    """A desktop-like screenshot: flat panels, buttons and lines of text."""
    rng = random.Random(seed)
    background, ink, panel = ((30, 31, 34), (220, 221, 222), (43, 45, 49)) if dark else (
        (255, 255, 255), (20, 20, 20), (240, 242, 245))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 48), fill=(88, 101, 242))
    draw.rectangle((0, 48, width // 5, height), fill=panel)
    font = _font(16)
    for row, y in enumerate(range(70, height - 30, 26)):
        draw.text((16, y), f"# channel-{row}", font=font, fill=ink)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 14)))
        draw.text((width // 5 + 24, y), f"{row:03d} {words}", font=font, fill=ink)
    for _ in range(6):
        x = rng.randrange(width // 5, max(width // 5 + 1, width - 160))
        y = rng.randrange(60, max(61, height - 40))
        draw.rounded_rectangle((x, y, x + 140, y + 32), radius=6, fill=(35, 165, 90))
        draw.text((x + 12, y + 8), "Button", font=font, fill=(255, 255, 255))
    return image


def screenshot_png(width: int = 1920, height: int = 1080) -> bytes:
    return encode(screenshot(width, height), "PNG")


def row_marker(y: int) -> tuple[int, int, int]:
    """The colour the tall screenshot's left stripe has at row ``y`` (row index read back from pixels)."""
    return (y % 256, y // 256, 200)


MARKER_WIDTH = 8


def tall_screenshot(width: int = 1080, height: int = 8000) -> Image.Image:
    """A scrolled phone chat: numbered lines of text, with each row's index encoded in a left stripe."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(28)
    for line, y in enumerate(range(20, height - 40, 44)):
        draw.text((MARKER_WIDTH + 24, y), f"line {line:04d} {WORDS[line % len(WORDS)]}", font=font,
                  fill=(15, 15, 15))
    for y in range(height):
        draw.line((0, y, MARKER_WIDTH - 1, y), fill=row_marker(y))
    return image


def read_row_markers(image: Image.Image) -> list[int]:
    """The source row of each row of a tile cut from :func:`tall_screenshot` (lossless tiles only)."""
    rgb = image.convert("RGB")
    rows = []
    for y in range(rgb.height):
        r, g, _ = rgb.getpixel((MARKER_WIDTH // 2, y))  # type: ignore[misc]
        rows.append(r + 256 * g)
    return rows


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims ``width`` x ``height`` but holds one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def animated(fmt: str, colours: Sequence[tuple[int, int, int]], size: tuple[int, int] = (64, 48)) -> bytes:
    frames = [Image.new("RGB", size, colour) for colour in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                  **({"lossless": True} if fmt == "WEBP" else {}))


def psd_header() -> bytes:
    """The 26-byte header of a Photoshop document (Pillow cannot write PSD)."""
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 64, 64, 8, 3) + b"\x00" * 64


def heic_header() -> bytes:
    """An ISO-BMFF ``ftyp`` box branded ``heic``, as an iPhone photo starts."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'
