"""Moderation on a bot without the Message Content intent: Discord empties the messages of a watched
channel that do not mention the bot, forwards included (their snapshots), so the bot checks nothing
it cannot see, records nothing about it, keeps running, and says so plainly: in its startup warning and
in `/moderation setup`. A moderator's **Check image** still sees a forward in full."""

from __future__ import annotations

import logging

import pytest

from bot.app import WITHOUT_MESSAGE_CONTENT, Glimpse
from bot.moderation.discord.panels import NO_MESSAGE_CONTENT
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_describe_intents import emulator_config, glimpse
from tests.e2e.test_moderation import SCAM, by_purpose, moderation_requests, picture, verdict, wait_for_followup
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer

__all__ = ["emulator_config", "glimpse"]  # the fixtures: a bot identifying without the intent, not granted it

pytestmark = pytest.mark.timeout(60)


async def test_setup_and_the_startup_log_say_what_the_missing_intent_hides(
    glimpse: Glimpse, emulator: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    warnings = [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.WARNING]
    assert WITHOUT_MESSAGE_CONTENT in warnings
    for hidden in ("describe channels", "watched channels", "forwarded messages", "link previews"):
        assert hidden in WITHOUT_MESSAGE_CONTENT

    general = emulator.channel("general")
    values = {"mod_log": emulator.channel("mod-log"), "add_channel": general}
    setup = await emulator.run_slash_command(emulator.user("alice"), general, "moderation setup", values)
    await emulator.wait_for_answer(setup)
    assert setup.ephemeral and setup.original.content == "Saved."
    fields = {f["name"]: f["value"] for f in setup.original.embeds[0]["fields"]}
    assert f"⚠️ {NO_MESSAGE_CONTENT}" in fields["Check"].split("\n")
    assert "cannot see images in messages that don't mention me" in NO_MESSAGE_CONTENT


async def test_a_forward_it_cannot_see_is_neither_checked_nor_recorded_and_check_image_still_works(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    values = {"mod_log": emulator.channel("mod-log"), "add_channel": general}
    await emulator.wait_for_answer(await emulator.run_slash_command(alice, general, "moderation setup", values))
    vlm.respond_with(by_purpose(verdict(SCAM)))
    scam = await emulator.post_message(
        emulator.user("dave"), emulator.channel("lobby"), "free nitro", attachments=[("nitro.png", picture(31))]
    )
    forward = await emulator.forward(bob, scam, general)
    asked = await emulator.post_message(bob, general, f"{glimpse.user.mention} are you there?")
    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == asked.id)
    await emulator.wait_for_content(reply, lambda text: text.startswith("Some shapes."))  # still running

    assert moderation_requests(vlm) == []
    assert reply.content == "Some shapes."  # nor is the forward "the image above"
    assert emulator.bot_messages(emulator.channel("mod-log")) == []
    audit = await glimpse.moderation.audit_since(general.guild_id, 0)
    assert [r for r in audit if r.message_id == forward.id] == []  # no "clean" record of an unseen image

    checked = await emulator.use_message_command(alice, forward, "Check image")
    followup = await wait_for_followup(emulator, checked)
    assert checked.ephemeral and "flagged, severity 2/3" in followup.embeds[0]["title"]
    assert len(moderation_requests(vlm)) == 1
    assert_discord_refused_nothing(emulator)
