"""The image pipeline on a corpus generated here: every mode, format and kind of broken input."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import itertools
import random
import threading
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw, ImageFile

from bot.images import codec
from bot.images import policy as image_policy
from bot.images.formats import ACCEPTED, HEIF_AVAILABLE
from bot.images.prepare import (
    MAX_DATA_URL_CHARS,
    MAX_INPUT_BYTES,
    MAX_PIXELS,
    ImageRejected,
    ImageWorker,
    PreparedImage,
    prepare_image,
    prepare_text_images,
    qwen_image_tokens,
)
from tests.unit import image_corpus as corpus


def decoded(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    assert image.size == (prepared.width, prepared.height)
    assert Image.MIME[image.format] == prepared.mime
    return image


def assert_sendable(prepared: PreparedImage) -> None:
    assert len(prepared.data_url) <= MAX_DATA_URL_CHARS
    assert prepared.tokens == qwen_image_tokens(prepared.width, prepared.height)
    assert decoded(prepared).mode in ("RGB", "L", "P")


def rejected(data: bytes, **kwargs: object) -> str:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    return corpus.photo_jpeg(4000, 3000)


# --- modes and formats ----------------------------------------------------------------------------

def _half_transparent_rgba() -> Image.Image:
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 31, 47), fill=(200, 30, 30, 255))
    return image


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, 30, 30, 200] + [0] * 762)
    ImageDraw.Draw(image).rectangle((0, 0, 31, 47), fill=1)
    image.info["transparency"] = 0
    return image


MODE_SAMPLES = {
    "RGBA": lambda: corpus.encode(_half_transparent_rgba(), "PNG"),
    "LA": lambda: corpus.encode(_half_transparent_rgba().convert("LA"), "PNG"),
    "P+transparency": lambda: corpus.encode(_palette_with_transparency(), "PNG"),
    "CMYK JPEG": lambda: corpus.encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"),
    "I;16 PNG": lambda: corpus.encode(Image.new("I;16", (64, 48), 40000), "PNG"),
    "L": lambda: corpus.encode(Image.new("L", (64, 48), 90), "PNG"),
    "1": lambda: corpus.encode(Image.new("1", (64, 48), 1), "BMP"),
}


@pytest.mark.parametrize("name", MODE_SAMPLES)
def test_every_mode_becomes_rgb(name: str) -> None:
    prepared = prepare_image(MODE_SAMPLES[name]())
    assert_sendable(prepared)
    image = decoded(prepared).convert("RGB")
    assert image.size == (64, 48)
    if name in ("RGBA", "LA", "P+transparency"):
        assert image.getpixel((60, 24)) == pytest.approx((255, 255, 255), abs=8)  # transparent -> white
        assert image.getpixel((8, 24)) != pytest.approx((255, 255, 255), abs=40)


def test_colour_and_depth_are_converted_not_clipped() -> None:
    cmyk = decoded(prepare_image(MODE_SAMPLES["CMYK JPEG"]())).convert("RGB").getpixel((32, 24))
    assert cmyk == pytest.approx((255, 0, 0), abs=12)
    sixteen = decoded(prepare_image(MODE_SAMPLES["I;16 PNG"]())).convert("L").getpixel((32, 24))
    assert sixteen == pytest.approx(40000 / 256, abs=4)  # clipping would give 255


def test_light_content_on_transparency_is_flattened_onto_dark() -> None:
    sticker = Image.new("RGBA", (120, 60), (0, 0, 0, 0))
    ImageDraw.Draw(sticker).text((10, 20), "WHITE TEXT", fill=(255, 255, 255, 255))
    ImageDraw.Draw(sticker).rectangle((90, 10, 110, 50), fill=(250, 250, 250, 255))
    for prepared in (prepare_image(corpus.encode(sticker, "PNG")),
                     *prepare_text_images(corpus.encode(sticker, "PNG"))):
        image = decoded(prepared).convert("L")
        assert image.getpixel((5, 5)) < 60 and image.getpixel((100, 30)) > 200


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_every_allowed_format(fmt: str) -> None:
    source = corpus.photo_like(300, 200)
    prepared = prepare_image(corpus.encode(source, fmt))
    assert (prepared.width, prepared.height) == (300, 200)
    assert_sendable(prepared)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (400, 300), (0, 0, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 199, 299), fill=(255, 0, 0))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = corpus.encode(image, "JPEG", exif=exif.tobytes())
    for prepared in (prepare_image(data), *prepare_text_images(data)):
        upright = decoded(prepared).convert("RGB")
        assert upright.size == (300, 400)
        assert upright.getpixel((150, 50)) == pytest.approx((255, 0, 0), abs=30)  # left went to the top
        assert upright.getpixel((150, 350)) == pytest.approx((0, 0, 255), abs=30)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_with_one_frame_asked_and_for_ocr_gives_its_first_frame(fmt: str) -> None:
    data = corpus.animated(fmt, [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    prepared = prepare_image(data, frames=1)
    assert decoded(prepared).convert("RGB").getpixel((10, 10)) == pytest.approx((255, 0, 0), abs=10)
    (tile,) = prepare_text_images(data)
    assert decoded(tile).convert("RGB").getpixel((10, 10)) == pytest.approx((255, 0, 0), abs=10)


# --- refusals -------------------------------------------------------------------------------------

def test_truncated_files_are_refused() -> None:
    jpeg = corpus.photo_jpeg(640, 480)
    png = corpus.encode(corpus.screenshot(400, 300), "PNG")
    for data in (jpeg[: len(jpeg) // 2], png[: len(png) // 2], png[:30]):
        assert "incomplete or damaged" in rejected(data)
        with pytest.raises(ImageRejected):
            prepare_text_images(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"Hello! This is a note, not a picture.\n", "(text)"),
        (random.Random(7).randbytes(4096), "not an image I can read"),
        (corpus.psd_header(), "(PSD)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj" + bytes(range(128, 256)), "(PDF)"),
        (corpus.SVG, "(SVG)"),
        (corpus.encode(Image.new("RGB", (16, 16)), "ICO"), "(ICO)"),
        # A HEIC header alone: damaged when the [heif] extra reads HEIC, else a format not read.
        (corpus.heic_header(), "incomplete or damaged" if HEIF_AVAILABLE else "(HEIC)"),
    ],
    ids=["zero-bytes", "text", "random", "psd", "pdf", "svg", "ico", "heic"],
)
def test_unreadable_inputs_are_refused_with_a_reason(data: bytes, expected: str) -> None:
    reason = rejected(data)
    assert expected in reason
    if expected.startswith("("):
        assert reason.endswith(ACCEPTED) and "PNG, JPEG, GIF, WebP, BMP, TIFF" in reason


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if any pixel is decoded: limits must be enforced from the header alone.
    (The pipeline turns the patched error into a refusal, so attempts are also recorded.)"""
    attempts: list[Image.Image] = []

    def refuse(self: Image.Image) -> None:
        attempts.append(self)
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)
    yield
    assert not attempts, "pixels were decoded"


@pytest.mark.usefixtures("no_decoding")
def test_pixel_bombs_are_refused_from_the_header() -> None:
    assert "too many pixels" in rejected(corpus.png_claiming_size(100_000, 100_000))
    with pytest.raises(ImageRejected, match="too many pixels"):
        prepare_text_images(corpus.png_claiming_size(100_000, 100_000))
    reason = rejected(corpus.png_claiming_size(8000, 7000))  # 56 MP: under Pillow's limit, over ours
    assert "8000 x 7000" in reason and f"{MAX_PIXELS // 1_000_000} megapixels" in reason


def test_a_header_lying_about_its_size_is_refused() -> None:
    assert "incomplete or damaged" in rejected(corpus.png_claiming_size(3000, 3000))


@pytest.mark.usefixtures("no_decoding")
def test_oversized_files_are_refused_before_decoding() -> None:
    data = corpus.png_claiming_size(10, 10) + b"\x00" * MAX_INPUT_BYTES
    assert "too large" in rejected(data) and "25 MB" in rejected(data)


def test_extreme_aspect_ratios_are_refused() -> None:
    assert "long and thin" in rejected(corpus.encode(Image.new("RGB", (2010, 10), "white"), "PNG"))


def test_damaged_inputs_never_raise_anything_else() -> None:
    rng = random.Random(3)
    samples = [corpus.photo_jpeg(160, 120), corpus.encode(corpus.screenshot(160, 120), "PNG"),
               corpus.animated("GIF", [(1, 2, 3), (4, 5, 6)]),
               corpus.encode(corpus.photo_like(90, 60), "WEBP")]
    for sample in samples:
        for _ in range(12):
            mutated = bytearray(sample)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            cut = bytes(mutated[: rng.randrange(len(mutated) // 2, len(mutated) + 1)])
            for prepare in (prepare_image, prepare_text_images):
                with contextlib.suppress(ImageRejected):
                    prepare(cut)


def test_an_unknown_detail_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="detail"):
        prepare_image(b"", detail="ultra")  # type: ignore[arg-type]


# --- size policy, payload and tokens --------------------------------------------------------------

def test_size_policy_per_detail() -> None:
    photo = corpus.photo_jpeg(3000, 2000)
    low, auto, high = (prepare_image(photo, detail=detail) for detail in ("low", "auto", "high"))
    assert 0.9 * 512 <= max(low.width, low.height) <= 512
    assert 0.9 * 1024 <= max(auto.width, auto.height) <= 1024
    assert 0.9 * 1536 <= max(high.width, high.height) <= 1536  # JPEG drafts may stop just short
    assert (low.detail, auto.detail, high.detail) == ("low", "auto", "high")
    for prepared in (low, auto, high):
        assert prepared.mime == "image/jpeg"
        assert prepared.width / prepared.height == pytest.approx(1.5, rel=0.01)


def test_auto_keeps_more_of_screenshots_than_of_photos() -> None:
    shot = prepare_image(corpus.screenshot_png(1920, 1080))
    assert (shot.width, shot.height) == (1536, 864)
    jpeg_shot = prepare_image(corpus.encode(corpus.screenshot(3000, 1688), "JPEG", quality=90))
    assert 0.9 * 1536 <= max(jpeg_shot.width, jpeg_shot.height) <= 1536  # decoded again, bigger
    assert image_policy.looks_like_graphic(corpus.screenshot(800, 600))
    assert not image_policy.looks_like_graphic(corpus.photo_like(800, 600))


def test_small_images_are_never_enlarged() -> None:
    for detail in ("low", "auto", "high"):
        prepared = prepare_image(corpus.encode(corpus.photo_like(120, 90), "PNG"), detail=detail)
        assert (prepared.width, prepared.height) == (120, 90)


def test_small_flat_graphic_may_stay_png() -> None:
    logo = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(logo).ellipse((50, 50, 350, 250), fill=(88, 101, 242))
    prepared = prepare_image(corpus.encode(logo, "PNG"))
    assert prepared.mime == "image/png"
    assert decoded(prepared).convert("RGB").getpixel((200, 150)) == (88, 101, 242)


@pytest.mark.parametrize("detail", ["low", "auto", "high"])
def test_a_big_noisy_photo_fits_the_payload_limit(big_photo: bytes, detail: str) -> None:
    assert len(base64.b64encode(big_photo)) > MAX_DATA_URL_CHARS  # the naive path would not fit
    assert_sendable(prepare_image(big_photo, detail=detail))  # type: ignore[arg-type]


def test_pure_noise_is_stepped_down_until_it_fits() -> None:
    noise = Image.merge("RGB", [Image.effect_noise((1600, 1600), 128) for _ in range(3)])
    prepared = prepare_image(corpus.encode(noise, "PNG"), detail="high")
    assert_sendable(prepared)


@pytest.mark.parametrize(
    ("size", "tokens"),
    [((1024, 768), 37 * 27), ((4000, 3000), 143 * 107), ((1, 1), 4), ((28, 28), 4), ((56, 56), 4),
     ((1080, 1920), 39 * 69), ((1536, 864), 55 * 31)],
)
def test_tokens_follow_qwen_smart_resize(size: tuple[int, int], tokens: int) -> None:
    assert qwen_image_tokens(*size) == tokens


def test_tokens_are_capped_like_qwen() -> None:
    assert qwen_image_tokens(20_000, 20_000) <= 16384
    assert qwen_image_tokens(20_000, 20_000) > 16000


def test_prepared_image_parts() -> None:
    prepared = prepare_image(corpus.encode(corpus.photo_like(64, 64), "PNG"), detail="low")
    assert prepared.data_url.startswith(f"data:{prepared.mime};base64,")
    assert base64.b64decode(prepared.data_url.split(",", 1)[1]) == prepared.data
    assert prepared.sha256 == hashlib.sha256(prepared.data).hexdigest()
    assert prepared.content_part() == {"type": "image_url",
                                       "image_url": {"url": prepared.data_url, "detail": "low"}}
    assert "bytes=" in repr(prepared) and "base64" not in repr(prepared)


# --- the OCR policy -------------------------------------------------------------------------------

def test_a_phone_screenshot_passes_through_unchanged() -> None:
    data = corpus.screenshot_png(1080, 1920)
    [prepared] = prepare_text_images(data)
    assert prepared.data == data
    assert (prepared.mime, prepared.width, prepared.height) == ("image/png", 1080, 1920)
    assert prepared.detail == "high"


def test_a_tall_screenshot_becomes_ordered_overlapping_tiles() -> None:
    tiles = prepare_text_images(corpus.encode(corpus.tall_screenshot(1080, 8000), "PNG"))
    assert len(tiles) >= 6
    spans = []
    for tile in tiles:
        assert_sendable(tile)
        assert tile.mime == "image/png" and tile.width == 1080  # cropped, never scaled
        rows = corpus.read_row_markers(decoded(tile))
        assert rows == list(range(rows[0], rows[0] + len(rows)))  # contiguous source rows
        spans.append((rows[0], rows[-1]))
    assert spans[0][0] == 0 and spans[-1][1] == 7999
    for (top, bottom), (next_top, _) in itertools.pairwise(spans):
        assert top < next_top  # top to bottom
        overlap = bottom - next_top + 1
        assert overlap >= 0.1 * (bottom - top + 1)


def test_wide_screenshots_are_scaled_moderately() -> None:
    [prepared] = prepare_text_images(corpus.screenshot_png(2560, 1440))
    assert (prepared.width, prepared.height) == (image_policy.TEXT_MAX_WIDTH, 1080)
    assert prepared.mime == "image/jpeg"  # a resampled screenshot re-encoded as PNG would double
    assert_sendable(prepared)


def test_a_photo_of_a_page_is_re_encoded_without_its_exif() -> None:
    data = corpus.photo_jpeg(1200, 900, orientation=1)  # Pillow writes no EXIF for orientation 1
    [plain] = prepare_text_images(data)
    assert plain.data == data
    exif = Image.Exif()
    exif[0x8825] = {1: "N"}  # a GPS block
    tagged = corpus.encode(corpus.photo_like(1200, 900), "JPEG", exif=exif.tobytes())
    [prepared] = prepare_text_images(tagged)
    assert prepared.data != tagged and "exif" not in decoded(prepared).info
    assert (prepared.width, prepared.height) == (1200, 900)


def test_far_too_tall_images_are_refused() -> None:
    strip = corpus.encode(Image.new("L", (200, 29_000), 255), "PNG")
    with pytest.raises(ImageRejected, match="too tall"):
        prepare_text_images(strip)


@pytest.mark.parametrize("height", [1501, 3000, 8000, 12345])
def test_tile_spans_cover_everything_with_overlap(height: int) -> None:
    spans = image_policy.tile_spans(height)
    assert spans[0][0] == 0 and spans[-1][1] == height
    for (top, bottom), (next_top, _) in itertools.pairwise(spans):
        assert bottom - top == image_policy.TEXT_TILE_HEIGHT
        assert bottom - next_top >= image_policy.TEXT_TILE_OVERLAP


# --- the worker -----------------------------------------------------------------------------------

async def test_worker_runs_jobs_off_the_event_loop() -> None:
    worker = ImageWorker(max_workers=1)
    handshake = threading.Event()

    async def answer() -> None:  # can only run if the loop is free while the job blocks
        handshake.set()

    try:
        task = asyncio.create_task(answer())
        assert await worker.run(handshake.wait, 30) is True
        await task
    finally:
        worker.close()


async def test_the_loop_stays_responsive_during_a_big_decode(big_photo: bytes) -> None:
    worker = ImageWorker()
    ticks = 0
    finished = False

    async def ticker() -> None:
        nonlocal ticks
        while not finished:
            ticks += 1
            await asyncio.sleep(0)

    try:
        task = asyncio.create_task(ticker())
        prepared = await worker.prepare(big_photo, detail="high")
        ticks_during, finished = ticks, True
        await task
        assert ticks_during > 0
        assert prepared == prepare_image(big_photo, detail="high")
    finally:
        worker.close()


async def test_worker_reports_refusals_and_text_images() -> None:
    worker = ImageWorker()
    try:
        with pytest.raises(ImageRejected, match="empty"):
            await worker.prepare(b"")
        [tile] = await worker.prepare_text_images(corpus.screenshot_png(400, 300))
        assert tile.mime == "image/png"
    finally:
        worker.close()


async def test_worker_bounds_queued_jobs() -> None:
    worker = ImageWorker(max_workers=2, max_queue=1)
    release, second_started = threading.Event(), threading.Event()
    try:
        first = asyncio.create_task(worker.run(release.wait, 30))
        second = asyncio.create_task(worker.run(second_started.set))
        # With a free thread, an unbounded pool would start the second job at once.
        assert await asyncio.to_thread(second_started.wait, 0.5) is False
        release.set()
        await asyncio.gather(first, second)
        assert second_started.is_set()
    finally:
        release.set()
        worker.close()


async def test_a_slow_job_is_refused_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr("bot.images.prepare.prepare_image", lambda data, **options: release.wait(30))
    worker = ImageWorker(job_timeout=0.05)
    try:
        with pytest.raises(ImageRejected, match="too long"):
            await worker.prepare(b"x")
    finally:
        release.set()
        worker.close()


def test_small_downscales_are_bicubic_and_larger_ones_and_text_lanczos() -> None:
    shot = corpus.screenshot(960, 540)
    resample = Image.Resampling
    assert codec.resize(shot, (768, 432)).tobytes() == shot.resize((768, 432), resample.BICUBIC).tobytes()
    assert codec.resize(shot, (768, 432), sharp=True).tobytes() == shot.resize((768, 432), resample.LANCZOS).tobytes()
    assert codec.resize(shot, (480, 270)).tobytes() == shot.resize((480, 270), resample.LANCZOS).tobytes()
    assert codec.resize(shot, shot.size) is shot
