"""Discord's rules as the emulator enforces them on the real discord.py: limits, permissions, deadlines,
rate limits, intents, reconnects."""

from __future__ import annotations

import asyncio
import datetime
import time

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, InteractionConfig, Perm, RateLimitConfig
from tests.fakes.discord.state import BOT_DEFAULT
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_limits_permissions_and_deleted_messages_raise_like_discord() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        general = emulator.channel("general")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)

        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert (too_long.value.status, too_long.value.code) == (400, 50035)
        assert "content" in emulator.requests[-1].response["errors"]

        with pytest.raises(discord.HTTPException) as huge_embed:
            await channel.send(embed=discord.Embed(description="y" * 4097))
        assert huge_embed.value.code == 50035

        emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES)
        bob_message = await emulator.post_message(emulator.user("bob"), general, "spam")
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.get_partial_message(bob_message.id).delete()
        assert forbidden.value.code == 50013
        assert not bob_message.deleted

        mine = await channel.send("soon gone")
        await mine.delete()
        with pytest.raises(discord.NotFound) as gone:
            await mine.edit(content="too late")
        assert gone.value.code == 10008
        assert emulator.deleted_messages[-1].id == mine.id

        images = emulator.channel("images")
        emulator.world.overwrite(images, emulator.bot_user, deny=Perm.SEND_MESSAGES)
        with pytest.raises(discord.Forbidden) as muted:
            await client.get_channel(images.id).send("hi")  # type: ignore[union-attr]
        assert muted.value.code == 50013


async def test_timeouts_need_moderate_members() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        guild = client.get_guild(emulator.guild().id)
        assert guild is not None
        bob = await guild.fetch_member(emulator.user("bob").id)
        await bob.timeout(discord.utils.utcnow() + datetime.timedelta(minutes=5), reason="flood")
        assert [(t.user_id, t.reason) for t in emulator.records.timeouts] == [(bob.id, "flood")]

        emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MODERATE_MEMBERS)
        with pytest.raises(discord.Forbidden):
            await bob.timeout(None)


async def test_shared_channel_bucket_429_is_retried_by_discord_py() -> None:
    config = EmulatorConfig(rate_limits=RateLimitConfig(channel_limit=2, channel_window=0.3))
    client = discord.Client(intents=intents())
    async with DiscordEmulator(config=config) as emulator, emulator.running(client):
        general = emulator.channel("general")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("one")
        await channel.send("two")
        await first.edit(content="one, edited")  # the third request in the window: 429, retried

        assert [m.history for m in emulator.bot_messages(general)] == [["one", "one, edited"], ["two"]]
        [limited] = emulator.rate_limits
        assert limited.scope == "shared" and not limited.is_global
        assert 0 < limited.retry_after <= 0.3
        statuses = [r.status for r in emulator.requests if r.route.startswith("/channels/")]
        assert statuses == [200, 200, 429, 200]


async def test_late_and_repeated_interaction_acknowledgements() -> None:
    config = EmulatorConfig(interactions=InteractionConfig(ack_deadline=0.2))
    bot = commands.Bot(command_prefix="!", intents=intents())
    release = asyncio.Event()
    failures: list[discord.HTTPException] = []

    @bot.tree.command(name="slow", description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await release.wait()
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            failures.append(exc)

    @bot.tree.command(name="quick", description="Answers at once")
    async def quick(interaction: discord.Interaction) -> None:
        await interaction.response.defer()

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook

    async with DiscordEmulator(config=config) as emulator, emulator.running(bot):
        alice, general = emulator.user("alice"), emulator.channel("general")
        late = await emulator.run_slash_command(alice, general, "slow")
        await emulator.wait_for(lambda: time.monotonic() - late.created > 0.2, what="deadline passed")
        release.set()
        await emulator.wait_for(lambda: failures)
        assert (failures[0].status, failures[0].code) == (404, 10062)
        assert not late.acknowledged

        fast = await emulator.run_slash_command(alice, general, "quick")
        await emulator.wait_for_response(fast)
        url = f"{emulator.api_base}/interactions/{fast.id}/{fast.token}/callback"
        async with aiohttp.ClientSession() as http, http.post(url, json={"type": 5}) as again:
            assert again.status == 400
            assert (await again.json())["code"] == 40060
        assert fast.callback_types == [5]


async def test_op7_reconnect_resumes_and_replays_missed_events() -> None:
    client = discord.Client(intents=intents())
    heard: list[str] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        heard.append(message.content)

    async with DiscordEmulator() as emulator, emulator.running(client):
        bob, general = emulator.user("bob"), emulator.channel("general")
        [session] = emulator.gateway.connected_sessions
        await emulator.force_reconnect()
        await emulator.wait_for(lambda: session.resumes == 1 and session.connected, what="resumed")

        await emulator.close_gateway(4000)  # connection drops; the next message is sent while away
        await emulator.post_message(bob, general, "while you were away")
        await emulator.wait_for(lambda: heard == ["while you were away"], what="replayed message")
        assert session.resumes == 2
        assert len(emulator.gateway.identify_payloads) == 1


async def test_message_content_intent_rules() -> None:
    refused = EmulatorConfig()
    refused.gateway.message_content_granted = False
    async with DiscordEmulator(config=refused) as emulator:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with emulator.running(discord.Client(intents=intents(message_content=True))):
                pass

        client = discord.Client(intents=intents(message_content=False))
        contents: list[str] = []

        @client.event
        async def on_message(message: discord.Message) -> None:
            contents.append(message.content)

        async with emulator.running(client):
            bob, general = emulator.user("bob"), emulator.channel("general")
            await emulator.post_message(bob, general, "not for the bot", attachments=[("a.png", b"x")])
            await emulator.post_message(bob, general, f"{emulator.bot_user.mention} for the bot")
            await emulator.post_message(bob, emulator.dm(bob), "a DM")
            await emulator.wait_for(lambda: len(contents) == 3)
            assert contents == ["", f"<@{emulator.bot_user.id}> for the bot", "a DM"]


async def test_allowed_mentions_decide_who_is_pinged() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        alice, general = emulator.user("alice"), emulator.channel("general")
        moderators = next(r for r in emulator.guild().roles.values() if r.name == "Moderator")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        text = f"{alice.mention} {moderators.mention} @everyone"

        quiet = await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        loud = await channel.send(text)
        only_alice = await channel.send(
            text,
            allowed_mentions=discord.AllowedMentions(
                users=[discord.Object(alice.id)], roles=False, everyone=False
            ),
        )

        records = {r.message_id: r for r in emulator.records.mentions}
        assert not records[quiet.id].pinged_anyone
        assert records[quiet.id].allowed_mentions == {"parse": []}
        assert (records[loud.id].users, records[loud.id].roles) == ({alice.id}, {moderators.id})
        assert records[loud.id].everyone is False  # the bot lacks Mention Everyone
        assert records[only_alice.id].users == {alice.id} and not records[only_alice.id].roles
        assert quiet.mentions == [] and [u.id for u in loud.mentions] == [alice.id]


async def test_raw_http_unknown_routes_auth_and_gateway_bad_token() -> None:
    async with DiscordEmulator() as emulator, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {emulator.bot_token}"}
        async with http.get(f"{emulator.api_base}/no/such/route", headers=auth) as missing:
            assert missing.status == 404
            assert missing.headers["Content-Type"] == "application/json"
        assert [r.path for r in emulator.unknown_routes] == ["/no/such/route"]

        async with http.get(
            f"{emulator.api_base}/users/@me", headers={"Authorization": "Bot nope"}
        ) as denied:
            assert denied.status == 401
        async with http.get(f"{emulator.api_base}/gateway/bot", headers=auth) as gateway:
            assert (await gateway.json())["url"] == emulator.ws_url

        async with http.ws_connect(f"{emulator.ws_url}?v=10&encoding=json") as ws:
            hello = await ws.receive_json()
            assert hello["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0, "properties": {}}})
            closed = await ws.receive()
            assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4004
