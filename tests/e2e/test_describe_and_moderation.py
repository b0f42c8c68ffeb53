"""A channel both described and watched: an image waits for its verdict before it is described;
a flagged one gets no description and nothing of it is remembered, a clean one is described as usual."""

from __future__ import annotations

from bot.app import Glimpse
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_moderation import CLEAN, SCAM, moderation_requests, next_entry, picture, setup_moderation, verdict
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import RecordedRequest, Script, VLMServer

ALT_TEXT = "A QR code and the words: claim your free Nitro at https://nitro-gift.example/claim"


def answers(moderation: str) -> object:
    return lambda request: moderation if "moderation classifier" in request.prompt else ALT_TEXT


def descriptions(vlm: VLMServer) -> list[RecordedRequest]:
    return [r for r in vlm.completions if "moderation classifier" not in r.prompt]


async def test_a_flagged_image_is_not_described_nor_remembered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")  # the describe channel, now watched too
    await setup_moderation(emulator, add_channel=images)
    vlm.respond_with(answers(verdict(SCAM)))  # type: ignore[arg-type]
    await emulator.post_message(emulator.user("bob"), images, "", attachments=[("scam.png", picture(700))])
    await next_entry(emulator)
    await vlm.wait_for(lambda: all(r.finished.is_set() for r in vlm.completions))

    assert emulator.bot_messages(images) == []  # no clickable copy of the scam's URL
    assert descriptions(vlm) == [] and len(moderation_requests(vlm)) == 1
    assert await glimpse.store.history(images.id) == []
    assert_discord_refused_nothing(emulator)


async def test_a_clean_image_is_described_once_its_verdict_is_in(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")
    await setup_moderation(emulator, add_channel=images)
    held = Script(chunks=(verdict(CLEAN),), gated=True)  # the verdict comes when the test says so
    vlm.respond_with(lambda request: held if "moderation classifier" in request.prompt else ALT_TEXT)
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("cat.png", picture(701))])
    await vlm.wait_for(lambda: len(moderation_requests(vlm)) == 1)
    # While the verdict is held, a whole question and answer elsewhere: the description had every chance
    # to start, and must not have.
    general = emulator.channel("general")
    asked = await emulator.post_message(emulator.user("carol"), general, f"<@{emulator.bot_user.id}> hi")
    elsewhere = await emulator.wait_for_message(general, after=asked)
    await emulator.wait_for_content(elsewhere, lambda text: text == ALT_TEXT)
    assert emulator.bot_messages(images) == [] and len(descriptions(vlm)) == 1  # only the chat answer
    await vlm.release(1)
    reply = await emulator.wait_for_message(images, after=posted)
    await emulator.wait_for_content(reply, lambda text: text == ALT_TEXT)
    assert len(descriptions(vlm)) == 2
    assert_discord_refused_nothing(emulator)
