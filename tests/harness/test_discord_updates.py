"""Changes a test makes to the world reach the real discord.py as Discord's events do: role and
channel permission updates refresh the bot's cache; a stored message's components can be replaced."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.discord.state import BOT_DEFAULT
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_role_and_overwrite_changes_refresh_the_bots_cached_permissions() -> None:
    client = discord.Client(intents=intents())
    role_updates: list[tuple[int, int]] = []
    channel_updates: list[int] = []

    @client.event
    async def on_guild_role_update(before: discord.Role, after: discord.Role) -> None:
        role_updates.append((before.permissions.value, after.permissions.value))

    @client.event
    async def on_guild_channel_update(before: discord.abc.GuildChannel, after: discord.abc.GuildChannel) -> None:
        channel_updates.append(after.id)

    async with DiscordEmulator() as emulator, emulator.running(client):
        guild = client.get_guild(emulator.guild().id)
        assert guild is not None and guild.me.guild_permissions.manage_messages

        sending = emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES)
        assert sending is not None
        await sending
        await emulator.wait_for(lambda: not guild.me.guild_permissions.manage_messages, what="role update")
        assert role_updates == [(int(BOT_DEFAULT), int(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES))]
        assert guild.me.guild_permissions.moderate_members  # the rest of the role is kept

        images = emulator.channel("images")
        channel = client.get_channel(images.id)
        assert isinstance(channel, discord.TextChannel)
        assert channel.permissions_for(guild.me).send_messages
        emulator.set_overwrite(images, emulator.bot_user, deny=Perm.SEND_MESSAGES)
        await emulator.wait_for(lambda: not channel.permissions_for(guild.me).send_messages, what="overwrite")
        assert channel_updates == [images.id]
        with pytest.raises(discord.Forbidden):  # the cache and the REST checks agree
            await channel.send("hi")

        emulator.set_overwrite(images, emulator.bot_user)  # no allow, no deny: the overwrite is removed
        await emulator.wait_for(lambda: channel.permissions_for(guild.me).send_messages, what="overwrite gone")
        assert images.overwrites == [] and (await channel.send("hi again")).content == "hi again"


async def test_without_dispatch_the_bot_keeps_acting_on_its_cached_permissions() -> None:
    client = discord.Client(intents=intents())
    seen: list[str] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    async with DiscordEmulator() as emulator, emulator.running(client):
        guild = client.get_guild(emulator.guild().id)
        assert guild is not None
        assert emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES, dispatch=False) is None
        # Gateway events arrive in order: once this message is seen, no role update was sent before it.
        await emulator.post_message(emulator.user("bob"), emulator.channel("general"), "after the change")
        await emulator.wait_for(lambda: seen == ["after the change"])
        assert guild.me.guild_permissions.manage_messages  # stale, as before the event reaches a bot
        assert not emulator.world.permissions_in(emulator.channel("general"), emulator.bot_user.id) & (
            Perm.MANAGE_MESSAGES
        )
        assert not [f for f in emulator.records.gateway_sent if f.get("t") == "GUILD_ROLE_UPDATE"]


async def test_a_bot_message_can_carry_a_custom_id_naming_another_guild() -> None:
    client = discord.Client(intents=intents())
    clicks: list[tuple[int | None, str]] = []

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        custom_id = str((interaction.data or {}).get("custom_id"))
        clicks.append((interaction.guild_id, custom_id))
        refused = custom_id.split(":")[1] != str(interaction.guild_id)
        await interaction.response.send_message("refused" if refused else "done", ephemeral=True)

    async with DiscordEmulator() as emulator, emulator.running(client):
        lab, other = emulator.guild("Glimpse Lab"), emulator.guild("Other Server")
        log = client.get_channel(emulator.channel("mod-log").id)
        assert isinstance(log, discord.TextChannel)
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="Delete", custom_id=f"mod:{lab.id}:delete"))
        sent = await log.send("entry", view=view)
        entry = emulator.world.messages[sent.id]

        row = entry.components[0]
        forged = {**row, "components": [{**row["components"][0], "custom_id": f"mod:{other.id}:delete"}]}
        emulator.set_components(entry, [forged])
        assert entry.edit_count == 0  # not an edit by anybody: what Discord stores

        with pytest.raises(LookupError):  # Discord delivers only custom_ids the message carries
            await emulator.click_button(emulator.user("alice"), entry, f"mod:{lab.id}:delete")
        click = await emulator.click_button(emulator.user("alice"), entry, f"mod:{other.id}:delete")
        await emulator.wait_for_response(click)
        assert clicks == [(lab.id, f"mod:{other.id}:delete")]
        assert click.original is not None and click.original.content == "refused"


async def test_a_roles_new_permissions_go_with_the_next_interaction_before_the_role_update_arrives() -> None:
    client = discord.Client(intents=intents())
    tree = app_commands.CommandTree(client)
    seen: list[tuple[bool, bool]] = []  # (the interaction's permissions, the bot's cached role): Manage Server

    @tree.command(name="whoami", description="Anyone")
    async def whoami(interaction: discord.Interaction) -> None:
        assert isinstance(interaction.user, discord.Member)
        seen.append((interaction.permissions.manage_guild, interaction.user.guild_permissions.manage_guild))
        await interaction.response.send_message("seen", ephemeral=True)

    async def setup_hook() -> None:
        await tree.sync()

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    async with DiscordEmulator() as emulator, emulator.running(client):
        alice, general, guild = emulator.user("alice"), emulator.channel("general"), emulator.guild()
        moderator = next(r for r in guild.roles.values() if r.name == "Moderator")

        async def whoami_as_alice() -> None:
            await emulator.wait_for_response(await emulator.run_slash_command(alice, general, "whoami"))

        await whoami_as_alice()
        without = moderator.permissions & ~Perm.MANAGE_GUILD
        assert emulator.set_role_permissions(moderator, without, dispatch=False) is None
        await whoami_as_alice()
        sending = emulator.set_role_permissions(moderator, moderator.permissions | Perm.MANAGE_GUILD)
        assert sending is not None
        await sending
        cached = client.get_guild(guild.id).get_role(moderator.id)  # type: ignore[union-attr]
        await emulator.wait_for(lambda: cached is not None and cached.permissions.manage_guild is True)
        await whoami_as_alice()
        assert seen == [(True, True), (False, True), (True, True)]  # the middle: Discord knows, the bot not yet
        assert emulator.set_role_permissions(moderator, moderator.permissions) is None  # unchanged: no event
