"""Difference hashes (dHash) for recognising reposted images, with Pillow only.

Why hand-written instead of the ``imagehash`` library: ``imagehash.dhash`` is the same dozen lines
(grayscale, resize to (n+1)xn, compare horizontal neighbours) but drags numpy, scipy and PyWavelets
into the bot for hashes we do not use (pHash needs scipy's DCT, wHash needs PyWavelets). dHash is
the cheapest of them, needs no transform, and the measurement below shows it does the job. The bit
order is imagehash's (row-major, first bit most significant, bit set where the right neighbour is
brighter), so values can be compared with it for opaque images.

Two sizes, because measurement (``bench/moderation.py``, figures in ``bench/README.md``) showed the
64-bit hash alone is not safe for moderation: at 9x8 pixels distinct QR codes in wide frames (white
margins, three finder squares on a grey average) are 0-4 bits apart (106 of 9,730 distinct pairs
within 8 bits), while cropped copies of photos reach 7-9 bits. A cached "harmless" verdict for one
QR code must never answer for a phishing QR code. So:

* the 64-bit hash is the lookup key: exact match, or near match through four 16-bit bands;
* the 256-bit hash (17x16) confirms a candidate: re-encoded (JPEG q 60-95) and resized (50-200 %)
  copies stay within 16 bits (so within ``CONFIRM_DISTANCE``), distinct images (QR codes
  included) were >= 36 bits apart. Cropped copies often fall outside it (text and QR codes most):
  they are checked again, which costs one request instead of risking another image's verdict.
  ``cache.CLEAN_CONFIRM_DISTANCE`` is stricter still for reusing "clean" verdicts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

LOOKUP_BITS = 64
CONFIRM_BITS = 256
# Both thresholds come from the measurement described above (bench/moderation.py).
LOOKUP_DISTANCE = 8
CONFIRM_DISTANCE = 24
# JPEG decoding at a reduced scale (DCT scaling) is several times faster; the draft is never
# smaller than this, far above the 17x16 thumbnail.
_DRAFT_SIZE = (128, 128)


@dataclass(frozen=True)
class ImageFingerprint:
    """The two hashes of one image: ``lookup`` (64 bits) and ``confirm`` (256 bits)."""

    lookup: int
    confirm: int

    def distance(self, other: ImageFingerprint) -> tuple[int, int]:
        return hamming(self.lookup, other.lookup), hamming(self.confirm, other.confirm)

    def is_near(self, other: ImageFingerprint) -> bool:
        """Same image for moderation purposes: both hashes within their thresholds."""
        near_lookup, near_confirm = self.distance(other)
        return near_lookup <= LOOKUP_DISTANCE and near_confirm <= CONFIRM_DISTANCE


def fingerprint(image: Image.Image | bytes) -> ImageFingerprint:
    """Both hashes of an image (or of encoded image bytes); the first frame of an animation."""
    if isinstance(image, bytes | bytearray | memoryview):
        with Image.open(io.BytesIO(image)) as opened:
            opened.draft("RGB", _DRAFT_SIZE)
            return _fingerprint_of(opened)
    return _fingerprint_of(image)


def dhash(image: Image.Image | bytes) -> int:
    """The 64-bit difference hash alone."""
    return fingerprint(image).lookup


def _fingerprint_of(image: Image.Image) -> ImageFingerprint:
    gray = _flatten(ImageOps.exif_transpose(image)).convert("L")
    return ImageFingerprint(lookup=_difference_bits(gray, 8), confirm=_difference_bits(gray, 16))


def _difference_bits(gray: Image.Image, rows: int) -> int:
    width = rows + 1
    pixels = gray.resize((width, rows), Image.Resampling.LANCZOS).tobytes()
    value = 0
    for row in range(rows):
        offset = row * width
        for column in range(rows):
            value = (value << 1) | (pixels[offset + column + 1] > pixels[offset + column])
    return value


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels have arbitrary colours underneath: composite them onto white first."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def hash_to_hex(value: int, bits: int = LOOKUP_BITS) -> str:
    """Fixed-width lowercase hex, the form used in cache keys and stored records."""
    if not 0 <= value < 1 << bits:
        raise ValueError(f"not a {bits}-bit hash")
    return f"{value:0{bits // 4}x}"


def hash_from_hex(text: str, bits: int = LOOKUP_BITS) -> int:
    """Inverse of :func:`hash_to_hex`; strict about the form."""
    if len(text) != bits // 4 or any(ch not in "0123456789abcdef" for ch in text):
        raise ValueError(f"not a {bits}-bit hex hash: {text!r}")
    return int(text, 16)
