"""Image description end to end: hostile and unlucky cases the entry-point tests do not reach."""

from __future__ import annotations

import logging

import discord
import pytest

from bot.app import Glimpse
from bot.images.formats import ACCEPTED
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    MISSING_PERMISSIONS,
    PLACEHOLDER,
    emulator_config,
    paced_like_emulator,
    png,
    reply_to,
    warning_line,
)
from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.vlm import Script, VLMServer


@pytest.mark.parametrize(
    "cache", ["current", pytest.param("stale", marks=pytest.mark.discord_refuses(MISSING_PERMISSIONS))]
)
async def test_describe_channel_without_send_permission_logs_one_plain_warning_and_carries_on(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, caplog: pytest.LogCaptureFixture, cache: str
) -> None:
    """No traceback per image, no model request; with a current cache not even a refused request
    (Discord bans clients that pile up 403s)."""
    images, bob = emulator.channel("images"), emulator.user("bob")
    emulator.set_overwrite(images, emulator.bot_user, deny=Perm.SEND_MESSAGES, dispatch=cache == "current")
    if cache == "current":
        await emulator.wait_for(lambda: not bot_permissions(glimpse, images.id).send_messages)
    caplog.set_level(logging.INFO)

    await emulator.post_message(bob, images, "", attachments=[("a.png", png())])
    await emulator.wait_for(lambda: any(r.levelno == logging.WARNING and r.name == "cogs.describe"
                                        for r in caplog.records))

    general = emulator.channel("general")
    interaction = await emulator.run_slash_command(bob, general, "describe", {"image": ("b.png", png())})
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == "I see 1 image.")
    assert len(vlm.completions) == 1  # the slash command's only
    assert len(emulator.refusals) == (0 if cache == "current" else 1)
    assert len(emulator.cdn.downloads) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


def bot_permissions(glimpse: Glimpse, channel_id: int) -> discord.Permissions:
    channel = glimpse.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel.permissions_for(channel.guild.me)


async def test_slash_describe_of_a_file_that_is_not_an_image_names_it_and_why(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "describe",
        {"image": ("notes.txt", b"hello there", "text/plain")},
    )
    original = await emulator.wait_for(lambda: interaction.original)
    content = await emulator.wait_for_content(original, lambda text: text != PLACEHOLDER and bool(text))

    assert content == warning_line(f"Skipped `notes.txt`: That file is not an image I can read (text). {ACCEPTED}")
    assert vlm.completions == []


async def test_slash_describe_reads_an_image_whatever_type_it_was_uploaded_with(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A teal rectangle.")
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "describe",
        {"image": ("scan", png(), "application/octet-stream")},
    )
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == "A teal rectangle.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(800, 600)]


async def test_an_answer_the_provider_filtered_says_it_was_stopped(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """``finish_reason: content_filter`` ends the stream normally; shown bare it would pass for complete."""
    vlm.script(Script(text="A crowd outside a", finish_reason="content_filter"))
    posted = await emulator.post_message(emulator.user("bob"), emulator.channel("images"), "",
                                         attachments=[("crowd.png", png())])
    reply = await reply_to(emulator, posted)
    content = await emulator.wait_for_content(reply, lambda text: text.startswith("A crowd outside a\n"))

    assert content == "A crowd outside a\n-# The model service stopped this answer early (its content filter)."
