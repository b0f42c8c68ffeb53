"""The mod-log cannot be flooded: its sends go through the channel pacer like every other message,
needs-review verdicts are coalesced (one entry per message; a provider outage, one notice), and a
public mod-log never receives the flagged image itself."""

from __future__ import annotations

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.test_moderation import SCAM, field, moderation_requests, picture, setup_moderation, verdict
from tests.fakes.discord import Channel, DiscordEmulator, Message
from tests.fakes.vlm import Script, VLMServer


def entries(emulator: DiscordEmulator, channel: Channel | None = None) -> list[Message]:
    return [m for m in emulator.bot_messages(channel or emulator.channel("mod-log")) if m.embeds]


async def test_mod_log_entries_share_the_channel_pacer_with_a_streaming_answer(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """#general is the mod-log and also where an answer streams: entries and the answer's edits share
    one hidden per-channel bucket, so unpaced entries would meet a 429 (scope shared)."""
    general, images = emulator.channel("general"), emulator.channel("images")
    await setup_moderation(emulator, mod_log=general, add_channel=images)
    answer = Script(text="word " * 120, chunk_size=5, delay=0.02)
    vlm.respond_with(lambda request: verdict(SCAM) if "moderation classifier" in request.prompt else answer)
    asked = await emulator.post_message(emulator.user("alice"), general, f"<@{emulator.bot_user.id}> talk to me")
    reply = await emulator.wait_for_message(general, after=asked)
    bob = emulator.user("bob")
    for seed in range(6):
        await emulator.post_message(bob, images, "", attachments=[(f"p{seed}.png", picture(100 + seed))])
    await emulator.wait_for(lambda: len(entries(emulator, general)) == 6, timeout=20)
    await emulator.wait_for_content(reply, lambda text: text.strip().endswith("word"), timeout=20)
    assert emulator.rate_limits == []
    assert_discord_refused_nothing(emulator)


async def test_unreadable_images_of_one_message_make_one_entry(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)
    vlm.respond_with(lambda request: "not json at all")  # every image: needs review
    files = [(f"p{i}.png", picture(200 + i)) for i in range(3)]
    await emulator.post_message(emulator.user("bob"), emulator.channel("general"), "", attachments=files)
    await vlm.wait_for(lambda: len(moderation_requests(vlm)) == 3 and all(r.finished.is_set() for r in vlm.completions))
    [entry] = await emulator.wait_for(lambda: entries(emulator) or None)
    assert "review" in entry.embeds[0]["title"].lower() and "3 images" in entry.embeds[0]["title"]
    assert_discord_refused_nothing(emulator)


async def test_a_provider_outage_is_one_notice_not_an_entry_per_image(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)
    vlm.respond_with(lambda request: Script.error(401))  # the key was revoked: every check fails
    bob, general = emulator.user("bob"), emulator.channel("general")
    for seed in range(4):
        await emulator.post_message(bob, general, "", attachments=[(f"p{seed}.png", picture(300 + seed))])
    await vlm.wait_for(lambda: len(moderation_requests(vlm)) == 4 and all(r.finished.is_set() for r in vlm.completions))
    log_channel = emulator.channel("mod-log")
    [notice] = await emulator.wait_for(lambda: emulator.bot_messages(log_channel) or None)
    assert "model service" in notice.content and entries(emulator) == []
    assert_discord_refused_nothing(emulator)


async def test_a_public_mod_log_gets_a_link_not_the_image(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    mod_log = emulator.channel("mod-log")
    lab = emulator.guild("Glimpse Lab")
    emulator.set_overwrite(mod_log, lab.everyone)  # the overwrite hiding it is gone: everyone sees it
    channel = glimpse.get_channel(mod_log.id)
    await emulator.wait_for(lambda: channel.permissions_for(channel.guild.default_role).view_channel)  # type: ignore[union-attr]
    alice, general = emulator.user("alice"), emulator.channel("general")
    options = {"mod_log": mod_log, "add_channel": general}
    setup = await emulator.run_slash_command(alice, general, "moderation setup", options)
    await emulator.wait_for_answer(setup)
    assert "visible to everyone" in str(setup.original.embeds)

    vlm.script(verdict(SCAM))
    await emulator.post_message(emulator.user("bob"), general, "", attachments=[("p.png", picture(400))])
    [entry] = await emulator.wait_for(lambda: entries(emulator) or None)
    assert entry.attachments == []
    assert "Jump to message" in field(entry, "Message")
    assert "visible to @everyone" in entry.embeds[0]["footer"]["text"]
    assert_discord_refused_nothing(emulator)
