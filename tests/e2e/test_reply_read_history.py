"""Replies need Read Message History (Discord answers 160002 without it): where the bot lacks it,
nothing is downloaded, no model request is paid for, no request is refused, and the log says so once."""

from __future__ import annotations

import logging

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.vlm import VLMServer


async def test_no_read_message_history_means_no_cost_no_refusal_and_one_log_line(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    images, bob = emulator.channel("images"), emulator.user("bob")
    emulator.set_overwrite(images, emulator.bot_user, deny=Perm.READ_MESSAGE_HISTORY)
    channel = glimpse.get_channel(images.id)
    await emulator.wait_for(lambda: not channel.permissions_for(channel.guild.me).read_message_history)  # type: ignore[union-attr]
    caplog.set_level(logging.INFO)

    for name in ("a.png", "b.png"):  # describe channel: two images
        await emulator.post_message(bob, images, "", attachments=[(name, png())])
    for text in ("what is this?", "hello?"):  # and two questions for the chat
        await emulator.post_message(bob, images, f"<@{emulator.bot_user.id}> {text}", attachments=[("c.png", png())])

    # Each cog has said it once; then a message that works elsewhere proves the bot is not stuck.
    await emulator.wait_for(lambda: len(warnings(caplog)) == 2)
    general = emulator.channel("general")
    asked = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> and here?")
    answer = await emulator.wait_for_message(general, after=asked)
    await emulator.wait_for_content(answer, lambda text: text == "I see 0 images.")

    assert emulator.bot_messages(images) == []
    assert len(vlm.completions) == 1 and emulator.cdn.downloads == []
    assert all("Read Message History" in r.getMessage() for r in warnings(caplog))
    assert {r.name for r in warnings(caplog)} == {"cogs.describe", "cogs.chat"}
    assert_discord_refused_nothing(emulator)


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("cogs.")]
