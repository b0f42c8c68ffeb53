"""Which image formats the bot opens, with the optional ones found at start.

PNG, JPEG, GIF, WebP, BMP and TIFF (its first page) are always opened; AVIF when this Pillow was
built with it (Pillow 11.2+ wheels are), HEIC/HEIF when the ``[heif]`` extra (``pillow-heif``) is
installed. The "I accept ..." sentence names exactly these, so it never promises what is missing.
"""

from __future__ import annotations

import logging

from PIL import features

log = logging.getLogger(__name__)

_ALWAYS = (("PNG", "PNG"), ("JPEG", "JPEG"), ("GIF", "GIF"), ("WEBP", "WebP"), ("BMP", "BMP"), ("TIFF", "TIFF"))
STILL_ONLY = ("TIFF",)
"""Formats whose extra frames are pages, not an animation: only the first is used."""


def _avif() -> bool:
    try:
        return bool(features.check("avif"))
    except Exception:  # an older Pillow without the feature name
        return False


def _heif() -> bool:
    try:
        import pillow_heif  # the optional [heif] extra
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _available() -> tuple[tuple[str, str], ...]:
    optional = ((("AVIF", "AVIF"),) if _avif() else ()) + ((("HEIF", "HEIC"),) if _heif() else ())
    return _ALWAYS + optional


_FORMATS = _available()
ALLOWED_FORMATS = tuple(name for name, _ in _FORMATS)
"""Pillow format names that are ever parsed."""
HEIF_AVAILABLE = "HEIF" in ALLOWED_FORMATS
_SHOWN = [shown for _, shown in _FORMATS]
ACCEPTED = f"I accept {', '.join(_SHOWN[:-1])} and {_SHOWN[-1]}."
