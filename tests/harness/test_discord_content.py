"""The Message Content intent on REST reads, through the real discord.py (``channel.history()``,
``fetch_message``), beside the gateway's rule.

Discord decides the two differently: a gateway session gets content only if it *identified* with the
intent (which needs the grant); REST has no session, so it follows the application's grant alone.
Exempt either way: DMs, the bot's own messages and messages that mention the bot.
"""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig
from tests.harness.test_discord_emulator import PNG_1x1, intents

pytestmark = pytest.mark.timeout(60)


def _shown(message: discord.Message) -> tuple[str, int, int]:
    return message.content, len(message.attachments), len(message.embeds)


async def test_rest_reads_are_emptied_without_the_grant() -> None:
    config = EmulatorConfig(gateway=GatewayConfig(message_content_granted=False))
    client = discord.Client(intents=intents(message_content=False))
    async with DiscordEmulator(config=config) as emulator, emulator.running(client):
        bob, general = emulator.user("bob"), emulator.channel("general")
        secret = await emulator.post_message(
            bob, general, "secret", attachments=[("a.png", PNG_1x1)], embeds=[{"description": "card"}]
        )
        await emulator.post_message(bob, general, f"{emulator.bot_user.mention} look")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        own = await channel.send("mine", embed=discord.Embed(description="my card"))

        history = [m async for m in channel.history(limit=10)]
        assert [_shown(m) for m in history] == [
            ("mine", 0, 1),
            (f"<@{emulator.bot_user.id}> look", 0, 0),
            ("", 0, 0),
        ]
        assert _shown(await channel.fetch_message(secret.id)) == ("", 0, 0)
        assert _shown(await channel.fetch_message(own.id)) == ("mine", 0, 1)

        await emulator.post_message(bob, emulator.dm(bob), "in a DM", attachments=[("b.png", PNG_1x1)])
        dm = await client.create_dm(discord.Object(bob.id))
        assert [_shown(m) async for m in dm.history(limit=5)] == [("in a DM", 1, 0)]


async def test_a_granted_bot_that_did_not_identify_with_the_intent() -> None:
    client = discord.Client(intents=intents(message_content=False))
    heard: list[tuple[str, int]] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        heard.append((message.content, len(message.attachments)))

    async with DiscordEmulator() as emulator, emulator.running(client):
        bob, general = emulator.user("bob"), emulator.channel("general")
        posted = await emulator.post_message(bob, general, "hello", attachments=[("a.png", PNG_1x1)])
        await emulator.wait_for(lambda: heard)
        assert heard == [("", 0)]  # the gateway session did not ask for content

        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(posted.id)
        assert _shown(fetched) == ("hello", 1, 0)  # REST follows the application's grant
