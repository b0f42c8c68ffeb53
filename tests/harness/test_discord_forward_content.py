"""A forwarded message without the Message Content intent, through the real discord.py: its snapshot's
content, attachments and embeds are emptied like the message's own (a snapshot's message is a subset of
the message object), on the gateway and on REST; stickers stay. In a DM, or with the intent, it is whole."""

from __future__ import annotations

import discord
import pytest

from tests.e2e.helpers import png
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig
from tests.fakes.discord.media import STICKER_PNG
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


def _snapshots(message: discord.Message) -> list[tuple[str, int, int, int]]:
    return [(s.content, len(s.attachments), len(s.embeds), len(s.stickers)) for s in message.message_snapshots]


async def _forwards_seen(*, message_content: bool, granted: bool) -> list[list[tuple[str, int, int, int]]]:
    """What a bot sees of two forwards of a message with text, a file, an embed and a sticker: one in
    a guild channel (on the gateway, then read back on REST), one in a DM."""
    config = EmulatorConfig(gateway=GatewayConfig(message_content_granted=granted))
    client = discord.Client(intents=intents(message_content=message_content))
    heard: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.message_snapshots:
            heard.append(message)

    async with DiscordEmulator(config=config) as emulator, emulator.running(client):
        bob, carol = emulator.user("bob"), emulator.user("carol")
        wave = emulator.media.sticker("wave", png(32, 32), STICKER_PNG)
        original = await emulator.post_message(
            bob, emulator.channel("lobby"), "free nitro", attachments=[("nitro.png", png())],
            embeds=[{"description": "card"}], stickers=[wave],
        )
        forward = await emulator.forward(carol, original, emulator.channel("general"))
        await emulator.forward(carol, original, emulator.dm(carol))
        await emulator.wait_for(lambda: len(heard) == 2)
        channel = client.get_channel(forward.channel_id)
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(forward.id)
        return [_snapshots(heard[0]), _snapshots(fetched), _snapshots(heard[1])]


async def test_a_forward_is_emptied_like_its_message_without_the_intent() -> None:
    in_guild, on_rest, in_dm = await _forwards_seen(message_content=False, granted=False)
    assert in_guild == on_rest == [("", 0, 0, 1)]
    assert in_dm == [("free nitro", 1, 1, 1)]


async def test_a_forward_is_whole_with_the_intent() -> None:
    assert await _forwards_seen(message_content=True, granted=True) == [[("free nitro", 1, 1, 1)]] * 3
