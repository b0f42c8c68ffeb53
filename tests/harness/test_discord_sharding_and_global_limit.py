"""The Discord emulator shards like Discord (an AutoShardedClient logging in, events routed by
``(guild_id >> 22) % shard_count`` and DMs to shard 0, two sessions on one shard) and enforces the global limit."""

from __future__ import annotations

import asyncio

import discord
import pytest

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig, RateLimitConfig, World, sharded_world
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


def echo_client(client: discord.Client, heard: list[tuple[int | None, str]]) -> discord.Client:
    """Records (shard id of the message's guild, content) for every message from a person."""

    @client.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            heard.append((message.guild.shard_id if message.guild else None, message.content))

    return client


async def test_an_auto_sharded_client_runs_the_recommended_shards_and_gets_each_guilds_events_on_its_shard() -> None:
    config = EmulatorConfig(gateway=GatewayConfig(recommended_shards=2))
    heard: list[tuple[int | None, str]] = []
    client = echo_client(discord.AutoShardedClient(intents=intents()), heard)
    async with DiscordEmulator(world=sharded_world(2), config=config) as emulator, emulator.running(client):
        await emulator.wait_until_connected(sessions=2, timeout=20)  # discord.py spaces IDENTIFYs 5 s apart
        await emulator.wait_for(lambda: all(client.get_guild(g) for g in emulator.world.guilds))
        alice = emulator.user("alice")
        for shard_id in (0, 1):
            await emulator.post_message(alice, emulator.channel(f"chat-{shard_id}"), f"to {shard_id}")
        await emulator.post_message(alice, emulator.dm(alice), "a DM")
        await emulator.wait_for(lambda: len(heard) == 3)

        assert client.shard_count == 2 and sorted(client.shards) == [0, 1]
        assert sorted(heard, key=str) == sorted([(0, "to 0"), (1, "to 1"), (None, "a DM")], key=str)
        # each session got only its own shard's guild and messages; the DM went to shard 0
        for shard_id in (0, 1):
            [session] = emulator.gateway.sessions_on(shard_id, 2)
            created = [f["d"]["content"] for f in session.buffer if f["t"] == "MESSAGE_CREATE"]
            guilds = [f["d"]["name"] for f in session.buffer if f["t"] == "GUILD_CREATE"]
            assert guilds == [f"shard-{shard_id}"]
            assert created == ([f"to {shard_id}", "a DM"] if shard_id == 0 else [f"to {shard_id}"])


async def test_two_clients_on_different_shards_each_see_only_their_own_guilds() -> None:
    heard: dict[int, list[tuple[int | None, str]]] = {0: [], 1: []}
    clients = {
        shard_id: echo_client(
            discord.AutoShardedClient(intents=intents(), shard_ids=[shard_id], shard_count=2), heard[shard_id]
        )
        for shard_id in (0, 1)
    }
    async with (
        DiscordEmulator(world=sharded_world(2)) as emulator,
        emulator.running(clients[0]),
        emulator.running(clients[1]),
    ):
        alice = emulator.user("alice")
        for shard_id in (0, 1):
            await emulator.post_message(alice, emulator.channel(f"chat-{shard_id}"), f"to {shard_id}")
        await emulator.wait_for(lambda: heard[0] and heard[1])

        assert heard == {0: [(0, "to 0")], 1: [(1, "to 1")]}
        assert [g.name for g in clients[0].guilds] == ["shard-0"]
        assert [g.name for g in clients[1].guilds] == ["shard-1"]
        assert [p["shard"] for p in emulator.gateway.identify_payloads] == [[0, 2], [1, 2]]


async def test_two_sessions_on_one_shard_both_receive_its_events() -> None:
    heard: list[list[tuple[int | None, str]]] = [[], []]
    clients = [
        echo_client(discord.AutoShardedClient(intents=intents(), shard_ids=[1], shard_count=2), heard[n])
        for n in (0, 1)
    ]
    async with (
        DiscordEmulator(world=sharded_world(2)) as emulator,
        emulator.running(clients[0]),
        emulator.running(clients[1]),
    ):
        await emulator.wait_until_connected(sessions=2)
        await emulator.post_message(emulator.user("bob"), emulator.channel("chat-1"), "hello")
        await emulator.wait_for(lambda: heard[0] and heard[1])

        assert heard == [[(1, "hello")], [(1, "hello")]]
        assert len(emulator.gateway.sessions_on(1, 2)) == 2


async def test_identifying_as_a_shard_beyond_the_count_is_refused_with_4010() -> None:
    client = discord.Client(intents=intents(), shard_id=2, shard_count=2)
    async with DiscordEmulator() as emulator:
        with emulator.point_discord_py(), pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.start(emulator.bot_token), 10)
        await client.close()
    assert closed.value.code == 4010


def test_a_guild_can_be_placed_on_a_shard() -> None:
    for count in (1, 2, 3, 16):
        for shard_id in range(count):
            guild = World().add_guild("g", shard=(shard_id, count))
            assert (guild.id >> 22) % count == shard_id
