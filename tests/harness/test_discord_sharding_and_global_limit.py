"""The Discord emulator against the harness issue: an AutoShardedClient logging in, and the global limit."""

from __future__ import annotations

import asyncio

import discord
import pytest

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, RateLimitConfig
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_auto_sharded_client_finds_the_gateway_through_gateway_bot() -> None:
    client = discord.AutoShardedClient(intents=intents())
    seen: list[str] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            seen.append(message.content)
            await message.channel.send(f"got {message.content}")

    async with DiscordEmulator() as emulator, emulator.running(client):
        general = emulator.channel("general")
        await emulator.post_message(emulator.user("alice"), general, "hello")
        reply = await emulator.wait_for_message(general)

        assert reply.content == "got hello" and seen == ["hello"]
        assert emulator.records.requests_to("GET", "/gateway/bot")
        assert client.shard_count == 1


async def test_a_burst_over_the_global_limit_gets_a_global_429_that_discord_py_waits_out() -> None:
    limits = RateLimitConfig(global_limit=4, global_window=0.3)
    client = discord.Client(intents=intents())
    async with DiscordEmulator(config=EmulatorConfig(rate_limits=limits)) as emulator, emulator.running(client):
        channels = [client.get_channel(emulator.channel(name).id) for name in ("general", "images", "mod-log")]
        assert all(isinstance(channel, discord.TextChannel) for channel in channels)
        sends = [channel.send(f"{i}") for i in range(2) for channel in channels]  # type: ignore[union-attr]
        sent = await asyncio.gather(*sends)

        assert sorted(m.content for m in sent) == sorted(["0", "1"] * 3)
        global_limits = [r for r in emulator.rate_limits if r.is_global]
        assert global_limits and all(r.scope == "global" for r in global_limits)
        # discord.py waited (a 429 without ``Via`` would have been raised as a Cloudflare ban instead).
        refused = [r for r in emulator.requests if r.status == 429]
        assert refused and all(r.response["global"] is True and r.response["retry_after"] > 0 for r in refused)
        assert len(refused) == len(global_limits)
