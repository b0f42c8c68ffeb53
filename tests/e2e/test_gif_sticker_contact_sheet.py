"""An animated GIF sticker is described like an animated GIF: the model gets one numbered contact
sheet of its frames, fetched from Discord's media proxy (the emulator's, allowed by
``DISCORD_MEDIA_HOSTS``), and the user gets the description."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.fakes.discord import DiscordEmulator
from tests.fakes.discord.media import STICKER_GIF
from tests.fakes.vlm import VLMServer
from tests.unit.test_animation_contact_sheet import moving_dot

pytestmark = pytest.mark.timeout(60)


async def test_a_gif_sticker_in_a_describe_channel_arrives_as_one_contact_sheet(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A red dot runs across.")
    images = emulator.channel("images")
    dot = emulator.media.sticker("dot", moving_dot(30, size=(320, 320)), STICKER_GIF)
    posted = await emulator.post_message(emulator.user("bob"), images, stickers=[dot])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == "A red dot runs across.")

    assert emulator.media.downloads == [f"/stickers/{dot.id}.gif"]
    (request,) = vlm.completions
    (sheet,) = request.images  # one image, not four
    assert (sheet.width, sheet.height) == (2 * 320 + 6, 2 * 320 + 6)  # 2 x 2 frames, 6 px apart
    assert "Image 1 is an animation: 4 of its frames" in request.prompt
    assert_discord_refused_nothing(emulator)


async def test_a_question_about_a_gif_sticker_sees_its_frames(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("It waves.")
    general = emulator.channel("general")
    dot = emulator.media.sticker("dot", moving_dot(30, size=(320, 320)), STICKER_GIF)
    question = await emulator.post_message(
        emulator.user("bob"), general, f"{glimpse.user.mention} what does it do?", stickers=[dot]
    )
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == question.id)
    await emulator.wait_for_content(reply, lambda content: content == "It waves.")

    (request,) = vlm.completions
    assert len(request.images) == 1
    assert "Image 1 is an animation: 4 of its frames" in request.prompt
    assert_discord_refused_nothing(emulator)
