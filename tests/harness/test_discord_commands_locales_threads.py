"""The emulator enforces who may invoke a command as Discord does, sends locales, and opens threads
from messages, all for the real discord.py."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import CommandUnavailable, DiscordEmulator, Perm

pytestmark = pytest.mark.timeout(60)


def admin_bot(seen: list[tuple[str, str, str | None]]) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    needs = discord.Permissions(manage_guild=True)
    group = app_commands.Group(name="settings", description="Settings", guild_only=True, default_permissions=needs)

    @group.command(name="show", description="Show")
    async def show(interaction: discord.Interaction) -> None:
        guild_locale = interaction.guild_locale and str(interaction.guild_locale)
        seen.append((interaction.user.name, str(interaction.locale), guild_locale))
        await interaction.response.send_message("shown", ephemeral=True)

    @bot.tree.command(name="hello", description="Anyone")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("hi")

    bot.tree.add_command(group)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook
    return bot


async def test_default_member_permissions_are_enforced_at_invocation_and_admins_can_override_them() -> None:
    seen: list[tuple[str, str, str | None]] = []
    async with DiscordEmulator() as emulator, emulator.running(admin_bot(seen)):
        alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
        guild = emulator.guild()
        with pytest.raises(CommandUnavailable):  # bob has no Manage Server: his client does not offer it
            await emulator.run_slash_command(bob, general, "settings show")
        ran = await emulator.run_slash_command(alice, general, "settings show")  # Moderator: Manage Server
        await emulator.wait_for_response(ran)
        owner = await emulator.run_slash_command(emulator.user("lab-owner"), general, "settings show")
        await emulator.wait_for_response(owner)
        hello = await emulator.run_slash_command(bob, general, "hello")  # no default permissions: everyone
        await emulator.wait_for_response(hello)

        emulator.set_command_permission("settings", bob, True)  # an admin lets bob see it
        await emulator.wait_for_response(await emulator.run_slash_command(bob, general, "settings show"))
        emulator.set_command_permission("settings", bob, None)
        emulator.set_command_permission("settings", guild, True)  # ...or everyone
        await emulator.wait_for_response(await emulator.run_slash_command(bob, general, "settings show"))
        moderator = next(r for r in guild.roles.values() if r.name == "Moderator")
        emulator.set_command_permission("settings", moderator, False)
        with pytest.raises(CommandUnavailable):
            await emulator.run_slash_command(alice, general, "settings show")
        with pytest.raises(CommandUnavailable):  # guild-only: not offered in DMs
            await emulator.run_slash_command(bob, emulator.dm(bob), "settings show")
        assert [name for name, _, _ in seen] == ["alice", "lab-owner", "bob", "bob"]
        assert emulator.unknown_routes == []


async def test_interactions_carry_the_users_and_the_guilds_locale() -> None:
    seen: list[tuple[str, str, str | None]] = []
    async with DiscordEmulator() as emulator, emulator.running(bot := admin_bot(seen)):
        alice, general = emulator.user("alice"), emulator.channel("general")
        alice.locale = "de"
        emulator.guild().preferred_locale = "fr"
        await emulator.wait_for_response(await emulator.run_slash_command(alice, general, "settings show"))
        assert seen == [("alice", "de", "fr")]
    other = emulator.world.guild_named("Other Server")
    assert other.preferred_locale == "en-US"
    assert bot.is_closed()


async def test_guild_create_carries_the_preferred_locale() -> None:
    client = discord.Client(intents=discord.Intents.default())
    emulator = DiscordEmulator()
    emulator.guild().preferred_locale = "ja"
    async with emulator, emulator.running(client):
        guild = await emulator.wait_for(lambda: client.get_guild(emulator.guild().id))
        assert guild.preferred_locale == discord.Locale.japanese


async def test_a_thread_opened_from_a_message_holds_the_conversation() -> None:
    client = discord.Client(intents=discord.Intents.default() | discord.Intents(message_content=True))
    refusals: list[int] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        if isinstance(message.channel, discord.Thread):
            await message.channel.send(f"in thread: {message.content}")
            return
        thread = await message.create_thread(name=message.content[:100], auto_archive_duration=1440)
        await thread.send("first answer")
        for attempt in (
            message.create_thread(name="twice"),
            thread.send("no", reference=message),  # a reply cannot point into another channel
        ):
            try:
                await attempt
            except discord.HTTPException as error:
                refusals.append(error.code)

    async with DiscordEmulator() as emulator, emulator.running(client):
        bob, general = emulator.user("bob"), emulator.channel("general")
        posted = await emulator.post_message(bob, general, "tell me about cats")
        thread = await emulator.wait_for(lambda: emulator.world.channels.get(posted.id))
        assert thread.is_thread and thread.parent_id == general.id and thread.owner_id == emulator.bot_user.id
        assert thread.name == "tell me about cats"
        first = await emulator.wait_for_message(thread)
        assert first.content == "first answer"
        later = await emulator.post_message(bob, thread, "and dogs?")
        answer = await emulator.wait_for_message(thread, after=later)
        assert answer.content == "in thread: and dogs?"
        creates = emulator.records.requests_to("POST", "/channels/{channel_id}/messages/{message_id}/threads")
        assert [r.status for r in creates] == [201, 400]
        assert refusals == [160004, 50035]


async def test_opening_a_thread_needs_create_public_threads() -> None:
    client = discord.Client(intents=discord.Intents.default() | discord.Intents(message_content=True))
    refused: list[int] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            try:
                await message.create_thread(name="nope")
            except discord.Forbidden as error:
                refused.append(error.code)

    async with DiscordEmulator() as emulator, emulator.running(client):
        general = emulator.channel("general")
        emulator.set_overwrite(general, emulator.bot_user, deny=Perm.CREATE_PUBLIC_THREADS, dispatch=False)
        await emulator.post_message(emulator.user("bob"), general, "hi")
        await emulator.wait_for(lambda: refused)
        assert refused == [50013]


def test_command_overrides_go_user_then_roles_then_everyone_then_default_permissions() -> None:
    from tests.fakes.discord import standard_world

    world = standard_world()
    guild = world.guild_named("Glimpse Lab")
    general = world.channel_named("general")
    alice, bob = world.user_named("alice"), world.user_named("bob")
    moderator = next(r for r in guild.roles.values() if r.name == "Moderator")
    command = {"id": "1", "default_member_permissions": str(int(Perm.MANAGE_GUILD))}
    assert world.may_invoke(command, alice.id, general) and not world.may_invoke(command, bob.id, general)
    guild.command_permissions["1"] = {guild.id: False}  # @everyone denied: alice too, by the override
    assert not world.may_invoke(command, alice.id, general)
    guild.command_permissions["1"][moderator.id] = True  # a role's allow beats @everyone's deny
    assert world.may_invoke(command, alice.id, general)
    guild.command_permissions["1"][alice.id] = False  # the user's own beats their roles'
    assert not world.may_invoke(command, alice.id, general)
    assert world.may_invoke(command, guild.owner_id, general)  # the owner always
    assert not world.may_invoke({"id": "2", "default_member_permissions": "0"}, alice.id, general)  # admins only
    assert world.may_invoke({"id": "3", "default_member_permissions": None}, bob.id, general)
