"""Each revision of a message records its buttons, so a test can tell an edit that changed only them."""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord import DiscordEmulator
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


def view(label: str, custom_id: str) -> discord.ui.View:
    buttons = discord.ui.View(timeout=None)
    buttons.add_item(discord.ui.Button(label=label, custom_id=custom_id))
    return buttons


def labels(components: list[dict[str, object]]) -> list[object]:
    return [button["label"] for row in components for button in row["components"]]  # type: ignore[union-attr]


async def test_revisions_keep_the_buttons_each_state_showed() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        channel = await client.fetch_channel(emulator.channel("general").id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Working", view=view("Stop", "x:stop"))
        await sent.edit(content="Done", view=view("Again", "x:again"))
        await sent.edit(view=None)  # only the buttons change
        message = emulator.world.messages[sent.id]
        await emulator.wait_for(lambda: message.edit_count == 2)
        assert [(r.content, labels(r.components)) for r in message.revisions] == [
            ("Working", ["Stop"]), ("Done", ["Again"]), ("Done", []),
        ]  # fmt: skip
