"""A flagged image stays out of conversations however a question reaches it: a question replying to it
is answered with one line saying why not, and it is not "the image above" of a question without an
image; nothing of it enters the channel's memory. Its verdict comes from the cache (no second model
request); a clean image is still brought in. The one asking gets no mod-log entry and nothing is
done to them."""

from __future__ import annotations

from bot.app import Glimpse
from bot.moderation.discord import FLAGGED_IMAGE
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_moderation import (
    CLEAN,
    SCAM,
    by_purpose,
    moderation_requests,
    next_entry,
    picture,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import RecordedRequest, VLMServer


def chat_requests(vlm: VLMServer) -> list[RecordedRequest]:
    return [r for r in vlm.completions if "moderation classifier" not in r.prompt]


async def test_a_question_replying_to_a_flagged_image_gets_the_reason_and_it_is_never_the_image_above(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # watches #general, logs severity 2 (the scam stays up)
    vlm.respond_with(by_purpose(verdict(SCAM)))
    general, carol = emulator.channel("general"), emulator.user("carol")
    scam = await emulator.post_message(emulator.user("dave"), general, "", attachments=[("nitro.png", picture(51))])
    entry = await next_entry(emulator)

    replied = await emulator.reply(carol, scam, f"{glimpse.user.mention} what is this?")
    why = await emulator.wait_for_message(general, lambda m: m.reference_id == replied.id)
    assert why.content == FLAGGED_IMAGE
    [mentions] = emulator.mentions_for(why)
    assert not mentions.pinged_anyone
    above = await emulator.post_message(carol, general, f"{glimpse.user.mention} and what was that?")
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == above.id)
    await emulator.wait_for_content(reply, lambda text: text.startswith("Some shapes."))
    assert reply.content == "Some shapes."  # no "Looking at the image dave posted above."
    assert [len(r.images) for r in chat_requests(vlm)] == [0]  # the reply got no answer, the other no image
    assert [m for m in emulator.bot_messages(general) if m.reference_id == replied.id] == [why]
    assert len(moderation_requests(vlm)) == 1  # the scam was checked once; the cache answered since
    assert all(not turn.images for turn in await glimpse.store.history(general.id))
    assert [m for m in emulator.bot_messages(emulator.channel("mod-log")) if m.embeds] == [entry]
    assert_discord_refused_nothing(emulator)


async def test_a_clean_image_is_still_brought_in(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    await setup_moderation(emulator)
    vlm.respond_with(by_purpose(verdict(CLEAN)))
    general, carol = emulator.channel("general"), emulator.user("carol")
    cat = await emulator.post_message(emulator.user("dave"), general, "", attachments=[("cat.png", picture(52))])
    await vlm.wait_for(lambda: len(moderation_requests(vlm)) == 1)
    replied = await emulator.reply(carol, cat, f"{glimpse.user.mention} what is this?")
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == replied.id)
    await emulator.wait_for_content(reply, lambda text: text == "Some shapes.")
    assert [len(r.images) for r in chat_requests(vlm)] == [1]
    assert len(moderation_requests(vlm)) == 1
    assert_discord_refused_nothing(emulator)
