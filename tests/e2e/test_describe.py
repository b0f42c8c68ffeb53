"""Describing images end to end: the real bot, the Discord emulator, the VLM server."""

from __future__ import annotations

import io

from PIL import Image

from bot.client import Glimpse
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer


def png(width: int = 800, height: int = 600, color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


async def test_image_in_describe_channel_gets_streamed_alt_text(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "A teal rectangle on its own, with nothing else in view."
    vlm.script(Script(text=answer, chunk_size=8, gated=True))
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "look", attachments=[("teal.png", png())])
    reply = await emulator.wait_for_message(images, after=posted)
    await vlm.wait_for_requests(1)
    await vlm.release(len(answer))
    await emulator.wait_for_content(reply, lambda text: answer in text)

    assert reply.reference_id == posted.id
    assert reply.history[-1] == answer
    assert len(reply.history) >= 2  # placeholder, then the text
    request = vlm.completions[0]
    [image] = request.images
    assert (image.width, image.height) == (800, 600)
    assert all(not m.pinged_anyone for m in emulator.mentions_for(reply))
    assert emulator.rate_limits == [] and emulator.unknown_routes == []
