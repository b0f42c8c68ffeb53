"""Commands that read or write the store before their first response defer first (callback type 5),
then edit their answer in: a slow store must not push them past Discord's 3-second deadline.

(The interaction's once-only claim in the store still comes before any command runs; see the
report of issue 15.)"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Glimpse
from tests.fakes.discord import DiscordEmulator


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("context", {}),
        ("forget", {}),
        ("moderation show", {}),
        ("moderation stats", {}),
        ("moderation setup", {"watch": "all channels"}),
    ],
)
async def test_store_backed_commands_acknowledge_before_touching_the_store(
    glimpse: Glimpse, emulator: DiscordEmulator, command: str, options: dict[str, Any]
) -> None:
    used = await emulator.run_slash_command(emulator.user("alice"), emulator.channel("general"), command, options)
    await emulator.wait_for_answer(used)
    assert used.callback_types == [5] and used.ephemeral  # deferred at once
