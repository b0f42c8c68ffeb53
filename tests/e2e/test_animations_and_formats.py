"""An animation reaches the model as one numbered contact sheet; AVIF, TIFF and (with the extra) HEIC are
described like any image."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.images.formats import HEIF_AVAILABLE
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.unit import image_corpus as corpus
from tests.unit.test_animation_contact_sheet import moving_dot

pytestmark = pytest.mark.timeout(60)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


async def test_a_100_frame_gif_arrives_as_one_contact_sheet_of_4_frames(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A red square slides from left to right.")
    images = emulator.channel("images")
    posted = await emulator.post_message(emulator.user("bob"), images, attachments=[("slide.gif", moving_dot(100))])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content.startswith("A red square"))

    (request,) = vlm.completions
    (sheet,) = request.images  # one image, not four
    assert (sheet.width, sheet.height) == (2 * 400 + 6, 2 * 200 + 6)  # 2 x 2 frames, 6 px apart
    assert "Image 1 is an animation: 4 of its frames" in request.prompt
    assert_discord_refused_nothing(emulator)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("photo.avif", "AVIF"),
        ("scan.tiff", "TIFF"),
        pytest.param("iphone.heic", "HEIF", marks=pytest.mark.skipif(not HEIF_AVAILABLE, reason="no [heif] extra")),
    ],
)
async def test_avif_tiff_and_heic_are_described(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, name: str, fmt: str
) -> None:
    vlm.script(f"A {fmt} picture.")
    images = emulator.channel("images")
    data = encoded(corpus.photo_like(1600, 1200), fmt)
    posted = await emulator.post_message(emulator.user("bob"), images, attachments=[(name, data)])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == f"A {fmt} picture.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(1024, 768)]
    assert_discord_refused_nothing(emulator)
