"""AVIF and TIFF (its first page) are read like any other image; HEIC/HEIF with the [heif] extra, and
the "I accept ..." sentence names HEIC only when that extra is installed."""

from __future__ import annotations

import importlib
import io
import sys

import pytest
from PIL import Image

from bot.images import formats, prepare_image, prepare_text_images
from bot.images.formats import ACCEPTED, ALLOWED_FORMATS, HEIF_AVAILABLE
from tests.unit import image_corpus as corpus


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def colour_of(prepared_data: bytes) -> tuple[int, ...]:
    return Image.open(io.BytesIO(prepared_data)).convert("RGB").getpixel((5, 5))  # type: ignore[return-value]


def test_avif_is_read_as_a_photo_and_as_a_graphic() -> None:
    assert "AVIF" in ALLOWED_FORMATS and "AVIF" in ACCEPTED
    photo = prepare_image(encoded(corpus.photo_like(2400, 1200), "AVIF"))
    assert (photo.width, photo.height) == (1024, 512)
    flat = prepare_image(encoded(Image.new("RGB", (300, 200), (200, 30, 30)), "AVIF"))
    assert colour_of(flat.data) == pytest.approx((200, 30, 30), abs=12)


def test_tiff_gives_its_first_page_and_deep_or_cmyk_tiffs_are_normalised() -> None:
    pages = [Image.new("RGB", (300, 200), colour) for colour in ((0, 0, 255), (255, 0, 0), (0, 255, 0))]
    multipage = encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    prepared = prepare_image(multipage)
    assert prepared.frames == 1 and (prepared.width, prepared.height) == (300, 200)  # pages are no animation
    assert colour_of(prepared.data) == pytest.approx((0, 0, 255), abs=10)
    (tile,) = prepare_text_images(multipage)
    assert colour_of(tile.data) == pytest.approx((0, 0, 255), abs=10)
    deep = Image.new("I;16", (64, 64), 40000)
    assert colour_of(prepare_image(encoded(deep, "TIFF")).data)[0] == pytest.approx(40000 // 256, abs=3)
    cmyk = prepare_image(encoded(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "TIFF"))
    assert colour_of(cmyk.data) == pytest.approx((255, 0, 0), abs=12)


@pytest.mark.skipif(not HEIF_AVAILABLE, reason="the [heif] extra (pillow-heif) is not installed")
def test_heic_is_read_with_the_extra() -> None:
    assert ACCEPTED.endswith("and HEIC.")
    photo = encoded(corpus.photo_like(1200, 900), "HEIF")
    assert photo[4:12] == b"ftypheic"
    prepared = prepare_image(photo)
    assert (prepared.width, prepared.height) == (1024, 768)
    flat = prepare_image(encoded(Image.new("RGB", (300, 200), (20, 160, 40)), "HEIF"))
    assert colour_of(flat.data) == pytest.approx((20, 160, 40), abs=12)


def test_without_the_extra_heic_is_not_promised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if the extra were not installed
    try:
        without = importlib.reload(formats)
        assert "HEIF" not in without.ALLOWED_FORMATS and not without.HEIF_AVAILABLE
        assert without.ACCEPTED == "I accept PNG, JPEG, GIF, WebP, BMP, TIFF and AVIF."
    finally:
        monkeypatch.undo()
        importlib.reload(formats)
