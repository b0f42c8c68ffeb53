"""A mention where the bot may not post: no refused request, no model cost, one plain log line."""

from __future__ import annotations

import logging

import pytest

from bot.app import Glimpse
from tests.e2e.test_describe_permissions import bot_permissions
from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.vlm import VLMServer


async def test_a_mention_in_a_channel_the_bot_cannot_post_in_is_not_answered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    general, bob = emulator.channel("general"), emulator.user("bob")
    emulator.set_overwrite(general, emulator.bot_user, deny=Perm.SEND_MESSAGES)
    await emulator.wait_for(lambda: not bot_permissions(glimpse, general.id).send_messages)
    caplog.set_level(logging.INFO)

    await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> what is this?")
    await emulator.wait_for(lambda: any(r.name == "cogs.chat" and r.levelno == logging.WARNING for r in caplog.records))

    dm = emulator.dm(bob)  # the bot still answers where it may post
    vlm.script("Still here.")
    asked = await emulator.post_message(bob, dm, "hello?")
    reply = await emulator.wait_for_message(dm, after=asked)
    await emulator.wait_for_content(reply, lambda text: text == "Still here.")

    assert len(vlm.completions) == 1  # the DM's only
    assert [r for r in emulator.requests if r.status == 403] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
