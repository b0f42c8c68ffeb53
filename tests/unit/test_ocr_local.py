"""The offline OCR engine on generated text images (skipped, with the reason, where it is not installed)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageStat

from bot.ocr import OcrError
from bot.ocr.local import (
    INSTALL_HINT,
    MAX_UPSCALE,
    LocalOcrEngine,
    find_tessdata,
    prepare_page,
    tidy,
    upscale_factor,
)
from tests.unit.text_images import (
    character_error_rate,
    chat_screenshot,
    document,
    load_font,
    sample_lines,
)

ENGINE = LocalOcrEngine()
needs_engine = pytest.mark.skipif(not ENGINE.available(), reason=ENGINE.why_unavailable)
MAX_CER = 0.05


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@needs_engine
def test_a_document_is_read_almost_exactly_from_png_bytes() -> None:
    page = document(sample_lines(8, seed=21), name="doc", font=load_font(22), width=900)
    text = ENGINE.transcribe(png(page.image))
    assert character_error_rate(page.text, text) < MAX_CER, text
    assert len(text.splitlines()) >= len(page.text.splitlines())  # lines are kept


@needs_engine
def test_a_dark_theme_chat_screenshot_is_read() -> None:
    shot = chat_screenshot(name="chat", width=900, height=420, seed=4, font_size=16, sidebar=120)
    text = ENGINE.transcribe(shot.image)
    assert character_error_rate(shot.text, text) < MAX_CER, text


@needs_engine
def test_small_text_is_upscaled_and_read() -> None:
    # 9 px text read as it is: 4% of characters wrong with DejaVu, 12% with Pillow's default font.
    page = document(sample_lines(6, seed=8), name="tiny", font=load_font(9), width=520, margin=12)
    text = ENGINE.transcribe(page.image)
    assert character_error_rate(page.text, text) < 0.02, text


@needs_engine
def test_an_image_without_text_gives_nothing() -> None:
    image = Image.new("RGB", (400, 300), "#4060a0")
    ImageDraw.Draw(image).ellipse((100, 60, 300, 240), fill="#f0c040")
    assert ENGINE.transcribe(image) == ""


@needs_engine
def test_threads_transcribe_at_once_with_separate_engines() -> None:
    pages = [document(sample_lines(3, seed=seed), name=str(seed), font=load_font(20), width=700)
             for seed in (31, 32, 33, 34)]
    engine = LocalOcrEngine()
    with ThreadPoolExecutor(max_workers=2) as pool:
        texts = list(pool.map(engine.transcribe, [page.image for page in pages]))
    for page, text in zip(pages, texts, strict=True):
        assert character_error_rate(page.text, text) < MAX_CER
    engine.close()
    assert character_error_rate(pages[0].text, engine.transcribe(pages[0].image)) < MAX_CER


@needs_engine
def test_a_file_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(OcrError, match="could not be read"):
        ENGINE.transcribe(b"definitely not a picture")


def test_missing_language_data_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    engine = LocalOcrEngine(lang="qqq", tessdata_dir=tmp_path)
    assert not engine.available()
    assert INSTALL_HINT in engine.why_unavailable
    with pytest.raises(OcrError, match=r"pip install '\.\[ocr\]'"):
        engine.transcribe(Image.new("L", (10, 10)))


def test_tessdata_is_found_in_the_explicit_then_the_environment_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    for folder in (explicit, env):
        folder.mkdir()
        (folder / "qqq.traineddata").write_bytes(b"")
    monkeypatch.setenv("TESSDATA_PREFIX", str(env))
    assert find_tessdata("qqq", explicit) == explicit
    assert find_tessdata("qqq") == env
    assert find_tessdata("qqq", tmp_path / "nowhere") == env
    monkeypatch.delenv("TESSDATA_PREFIX")
    assert find_tessdata("qqq") is None


def _ink_darker_than_ground(page: Image.Image, ink_box: tuple[int, int, int, int]) -> bool:
    ink = ImageStat.Stat(page.crop(ink_box)).mean[0]
    return ink < ImageStat.Stat(page).mean[0] and ImageStat.Stat(page).mean[0] > 128


def test_dark_themes_become_dark_text_on_light() -> None:
    image = Image.new("RGB", (200, 100), "#202225")
    ImageDraw.Draw(image).rectangle((20, 40, 180, 60), fill="#e0e0e0")
    page = prepare_page(image)
    assert page.mode == "L" and _ink_darker_than_ground(page, (20, 40, 180, 60))


@pytest.mark.parametrize("ink", ["#ffffff", "#000000"])
def test_text_on_a_transparent_ground_stays_visible(ink: str) -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0) if ink == "#ffffff" else (255, 255, 255, 0))
    ImageDraw.Draw(image).rectangle((20, 40, 180, 60), fill=ink)
    assert _ink_darker_than_ground(prepare_page(image), (20, 40, 180, 60))


def test_the_camera_orientation_is_applied() -> None:
    image = Image.new("RGB", (300, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert prepare_page(Image.open(buffer)).size == (100, 300)


def test_upscale_factor() -> None:
    assert upscale_factor([]) == 1.0
    assert upscale_factor([30, 14, 40]) == 1.0
    assert upscale_factor([10, 10, 13]) == pytest.approx(2.6)
    assert upscale_factor([4, 5]) == MAX_UPSCALE
    assert upscale_factor([10], pixels=12_000_000) == pytest.approx(2**0.5)
    assert upscale_factor([10], pixels=100_000_000) == 1.0


def test_tidy() -> None:
    assert tidy("  a  \n\n\n\nb \n\f") == "  a\n\nb"
    assert tidy("\n \n") == ""
