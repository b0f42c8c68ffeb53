"""The emulator records what it answered each request: HTTP status and Discord's error code, and which were refusals."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, Perm, RateLimitConfig
from tests.fakes.discord.state import BOT_DEFAULT
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_each_response_status_and_error_code_is_recorded_and_refusals_listed_in_order() -> None:
    config = EmulatorConfig(rate_limits=RateLimitConfig(channel_limit=3, channel_window=2.0))
    client = discord.Client(intents=intents())
    async with DiscordEmulator(config=config) as emulator, emulator.running(client):
        general = emulator.channel("general")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        assert emulator.refusals == []  # logging in and reading the guilds refused nothing

        sent = await channel.send("fine")
        with pytest.raises(discord.HTTPException):
            await channel.send("x" * 2001)
        await sent.delete()
        with pytest.raises(discord.NotFound):
            await sent.edit(content="gone")
        await channel.send("after the deleted one")  # the fourth send or edit in the window: a 429, retried
        emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES, dispatch=False)
        bobs = await emulator.post_message(emulator.user("bob"), general, "spam")
        with pytest.raises(discord.Forbidden):
            await channel.get_partial_message(bobs.id).delete()
        async with aiohttp.ClientSession() as http, http.get(f"{emulator.api_base}/no/such/route") as unknown:
            assert unknown.status == 404

        refused = [(r.method, r.route, r.status, r.error_code) for r in emulator.refusals]
        message = "/channels/{channel_id}/messages/{message_id}"
        assert refused == [
            ("POST", "/channels/{channel_id}/messages", 400, 50035),
            ("PATCH", message, 404, 10008),
            ("POST", "/channels/{channel_id}/messages", 429, None),  # a 429's body has no code
            ("DELETE", message, 403, 50013),
            ("GET", "", 404, 0),
        ]
        accepted = [r for r in emulator.requests if not r.refused]
        assert accepted and all(r.status is not None and r.status < 400 for r in accepted)
        assert all(r.error_code is None for r in accepted)
        assert [r.status for r in emulator.records.requests_to("DELETE", message)] == [204, 403]
