"""Every `/settings` change and view is acknowledged (deferred, privately) before it touches the store:
a slow store must not push it past Discord's 3-second deadline. (The persona form cannot follow a
defer; its one read is bounded by the settings service's read timeout instead.)"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Glimpse
from tests.e2e.server_settings import answer_of, run_settings
from tests.fakes.discord import DiscordEmulator


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("show", {}),
        ("describe", {"channel": "general", "on": True}),
        ("chat", {"channel": "general", "mode": "thread"}),
        ("access", {"user": "bob", "rule": "block"}),
        ("alt-text", {"length": "short"}),
        ("alt-text", {}),
    ],
)
async def test_settings_commands_defer_before_touching_the_store(
    glimpse: Glimpse, emulator: DiscordEmulator, command: str, options: dict[str, Any]
) -> None:
    resolved = {
        name: emulator.channel(value) if name == "channel" else emulator.user(value) if name == "user" else value
        for name, value in options.items()
    }
    used = await run_settings(emulator, emulator.user("alice"), command, resolved)
    assert used.callback_types == [5] and used.ephemeral
    assert answer_of(used) or used.original.embeds
