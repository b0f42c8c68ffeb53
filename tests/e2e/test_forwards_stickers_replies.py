"""Images that are not the message's own attachments are seen by every feature: a forwarded scam and
a pasted scam link are flagged in a watched channel, a sticker is described, a question written as a
reply to someone's image is answered about that image, a question about a custom emoji sees it."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from bot.images.from_discord import LOTTIE
from tests.e2e.helpers import WARNING, assert_discord_refused_nothing, png
from tests.e2e.test_moderation import (
    SCAM,
    by_purpose,
    moderation_requests,
    next_entry,
    picture,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.discord.media import STICKER_APNG, STICKER_LOTTIE
from tests.fakes.vlm import VLMServer

pytestmark = pytest.mark.timeout(60)


async def test_a_forwarded_scam_image_in_a_watched_channel_is_flagged(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # watches #general
    vlm.respond_with(by_purpose(verdict(SCAM)))
    scam = await emulator.post_message(
        emulator.user("dave"), emulator.channel("lobby"), "free nitro", attachments=[("nitro.png", picture(7))]
    )
    forward = await emulator.forward(emulator.user("bob"), scam, emulator.channel("general"))

    entry = await next_entry(emulator)
    assert f"/{forward.channel_id}/{forward.id})" in str(entry.embeds[0])  # the forward is the message logged
    assert [len(r.images) for r in moderation_requests(vlm)] == [1]
    assert_discord_refused_nothing(emulator)


async def test_a_scam_link_whose_preview_arrives_later_is_flagged(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)
    vlm.respond_with(by_purpose(verdict(SCAM)))
    emulator.media.link("https://nitro-gift.example/claim.png", picture(8))
    posted = await emulator.post_message(emulator.user("bob"), emulator.channel("general"), "https://nitro-gift.example/claim.png")

    entry = await next_entry(emulator)
    assert f"/{posted.channel_id}/{posted.id})" in str(entry.embeds[0])
    assert len(moderation_requests(vlm)) == 1
    # A later edit of the text alone checks nothing again; the image posted after it is checked.
    await emulator.edit_message(posted, "https://nitro-gift.example/claim.png (edited)")
    await emulator.post_message(emulator.user("bob"), emulator.channel("general"), attachments=[("p.png", picture(9))])
    await next_entry(emulator, after=entry)
    assert len(moderation_requests(vlm)) == 2
    assert_discord_refused_nothing(emulator)


async def test_a_sticker_is_described_and_a_lottie_sticker_is_named_as_skipped(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A waving hand.")
    bob, images = emulator.user("bob"), emulator.channel("images")
    wave = emulator.media.sticker("wave", png(160, 160, "yellow"), STICKER_APNG)
    posted = await emulator.post_message(bob, images, stickers=[wave])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == "A waving hand.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(160, 160)]

    dance = emulator.media.sticker("dance", b'{"v": "5.5.2"}', STICKER_LOTTIE)
    lottie = await emulator.post_message(bob, images, stickers=[dance])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == lottie.id)
    await emulator.wait_for_content(reply, lambda content: content.startswith(WARNING))
    assert LOTTIE.format(name="dance") in reply.content
    assert len(vlm.completions) == 1
    assert_discord_refused_nothing(emulator)


async def test_a_question_replying_to_someones_image_is_answered_about_that_image(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    general = emulator.channel("general")
    photo = await emulator.post_message(emulator.user("bob"), general, attachments=[("sign.png", png(240, 180))])
    await emulator.post_message(emulator.user("carol"), general, attachments=[("newer.png", png(100, 300))])
    vlm.script("It is a sign.")

    question = await emulator.reply(emulator.user("alice"), photo, f"{glimpse.user.mention} what is this?")
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == question.id)
    await emulator.wait_for_content(reply, lambda content: content == "It is a sign.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(240, 180)]  # not the newer one above
    assert_discord_refused_nothing(emulator)


async def test_a_question_about_a_custom_emoji_sees_the_emoji(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A blob emoji.")
    general = emulator.channel("general")
    blob = emulator.media.emoji("blob", png(128, 128, "pink"))
    question = await emulator.post_message(emulator.user("bob"), general, f"{glimpse.user.mention} what is {blob}?")
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == question.id)
    await emulator.wait_for_content(reply, lambda content: content == "A blob emoji.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(128, 128)]
    assert_discord_refused_nothing(emulator)
