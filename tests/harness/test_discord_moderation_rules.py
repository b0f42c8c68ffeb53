"""Rules of Discord the emulator models for moderation and replies: bulk deletes, 160002, the role
hierarchy for timeouts, and a webhook token's own rate limit."""

from __future__ import annotations

import datetime

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, Perm, RateLimitConfig
from tests.fakes.discord.state import BOT_DEFAULT
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_bulk_delete_route_and_message_delete_bulk_event() -> None:
    client = discord.Client(intents=intents())
    bulk_events: list[discord.RawBulkMessageDeleteEvent] = []

    @client.event
    async def on_raw_bulk_message_delete(payload: discord.RawBulkMessageDeleteEvent) -> None:
        bulk_events.append(payload)

    async with DiscordEmulator() as emulator, emulator.running(client):
        general = emulator.channel("general")
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        bob = emulator.user("bob")
        spam = [await emulator.post_message(bob, general, f"spam {i}") for i in range(3)]
        await channel.delete_messages([discord.Object(m.id) for m in spam])
        assert all(m.deleted for m in spam)
        await emulator.wait_for(lambda: len(bulk_events) == 1)
        assert bulk_events[0].message_ids == {m.id for m in spam} and bulk_events[0].channel_id == general.id
        [request] = emulator.records.requests_to("POST", "/channels/{channel_id}/messages/bulk-delete")
        assert request.status == 204

        # A person's purge (another bot, a moderator's tool) reaches the bot as the same event.
        mine = [await channel.send("a"), await channel.send("b")]
        await emulator.bulk_delete([emulator.world.messages[m.id] for m in mine])
        await emulator.wait_for(lambda: len(bulk_events) == 2)
        assert bulk_events[1].message_ids == {m.id for m in mine}

        one = await emulator.post_message(bob, general, "alone")
        with pytest.raises(discord.HTTPException) as too_few:
            await client.http.delete_messages(general.id, [one.id])
        assert (too_few.value.status, too_few.value.code) == (400, 50035)

        old = [await emulator.post_message(bob, general, f"old {i}") for i in range(2)]
        old[0].created_at -= 15 * 86400
        with pytest.raises(discord.HTTPException) as too_old:
            await channel.delete_messages([discord.Object(m.id) for m in old])
        assert too_old.value.code == 50034 and not any(m.deleted for m in old)

        emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES)
        await emulator.wait_for(lambda: not channel.guild.me.guild_permissions.manage_messages)
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.delete_messages([discord.Object(m.id) for m in old])
        assert forbidden.value.code == 50013


async def test_replies_need_read_message_history() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        images = emulator.channel("images")
        question = await emulator.post_message(emulator.user("bob"), images, "hello?")
        channel = client.get_channel(images.id)
        assert isinstance(channel, discord.TextChannel)
        emulator.set_overwrite(images, emulator.bot_user, deny=Perm.READ_MESSAGE_HISTORY)
        await emulator.wait_for(lambda: not channel.permissions_for(channel.guild.me).read_message_history)
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("hi", reference=channel.get_partial_message(question.id))
        assert (refused.value.status, refused.value.code) == (400, 160002)
        assert emulator.bot_messages(images) == []
        plain = await channel.send("hi")  # a plain message needs no history
        assert emulator.world.messages[plain.id].reference_id is None


async def test_timeouts_follow_the_role_hierarchy_and_spare_the_owner() -> None:
    client = discord.Client(intents=intents())
    async with DiscordEmulator() as emulator, emulator.running(client):
        lab = emulator.guild("Glimpse Lab")
        guild = client.get_guild(lab.id)
        assert guild is not None
        soon = discord.utils.utcnow() + datetime.timedelta(minutes=5)
        owner = await guild.fetch_member(lab.owner_id)
        with pytest.raises(discord.Forbidden):
            await owner.timeout(soon)
        # alice's Moderator role sits above the bot's role in the standard world.
        alice = await guild.fetch_member(emulator.user("alice").id)
        with pytest.raises(discord.Forbidden) as above:
            await alice.timeout(soon)
        assert above.value.code == 50013
        assert emulator.records.timeouts == []
        [bot_role] = [r for r in lab.roles.values() if r.managed]
        emulator.world.move_role(bot_role, len(lab.roles) + 1)
        await alice.timeout(soon)
        assert [t.user_id for t in emulator.records.timeouts] == [alice.id]


async def test_a_webhook_token_has_one_bucket_for_all_its_routes() -> None:
    config = EmulatorConfig(rate_limits=RateLimitConfig(webhook_limit=3, webhook_window=30))
    bot = commands.Bot(command_prefix="!", intents=intents())

    @bot.tree.command(name="slow", description="Defers")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer()

    async with DiscordEmulator(config=config) as emulator, emulator.running(bot):
        await bot.tree.sync()
        used = await emulator.run_slash_command(emulator.user("bob"), emulator.channel("general"), "slow")
        await emulator.wait_for_response(used)
        hook = f"{emulator.api_base}/webhooks/{emulator.application_id}/{used.token}"
        calls = [
            ("PATCH", f"{hook}/messages/@original", {"content": "edit"}),
            ("POST", f"{hook}?wait=true", {"content": "followup"}),
            ("GET", f"{hook}/messages/@original", None),
            ("POST", f"{hook}?wait=true", {"content": "one too many"}),
        ]
        answers = []
        async with aiohttp.ClientSession() as http:
            for method, url, body in calls:
                async with http.request(method, url, json=body) as response:
                    answers.append(
                        (
                            response.status,
                            response.headers.get("X-RateLimit-Bucket"),
                            response.headers.get("X-RateLimit-Remaining"),
                        )
                    )
        assert [a[0] for a in answers] == [200, 200, 200, 429]
        assert len({a[1] for a in answers}) == 1  # PATCH, POST and GET share the token's bucket
        assert [a[2] for a in answers[:3]] == ["2", "1", "0"]
        assert len(used.followups) == 1
