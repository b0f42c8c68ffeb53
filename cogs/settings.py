"""`/settings`: each server configures Glimpse from Discord (Manage Server). Wiring only: the record,
its rules and the compare-and-set live in :mod:`bot.guild`.

To add a subcommand: decorate a method with ``@settings.command(...)`` and make its change with
:meth:`Settings.change`. The Manage Server check (:meth:`Settings.interaction_check`, on the server
side for every subcommand, whatever the command's default permissions say) covers it, and the change
is validated, compare-and-set, logged for `/settings show` and seen at once by this process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import decide_interaction
from bot.guild import (
    CHOICES,
    PERSONA_MAX_CHARS,
    AltLength,
    ChatMode,
    Feature,
    GuildSettings,
    GuildSettingsError,
    RoleRule,
    language_label,
    limits_text,
    summary_sections,
)
from bot.guild.service import Change
from bot.interactions import acknowledge, say_privately
from bot.store import SettingsConflictError

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

PERSONA_INPUT_ID = "settings-persona"
CONFLICT = "Not saved: the settings kept changing while I saved yours. Please try again."
STALE_PERSONA = "Not saved: someone changed this persona after you opened the form. Open it again to see theirs."
_LANGUAGE_CHOICES = [app_commands.Choice(name=language_label(code)[:100], value=code) for code in CHOICES]
_WARNING = "⚠️"


class Settings(commands.Cog):
    settings = app_commands.Group(
        name="settings",
        description="How Glimpse works in this server (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        """Every subcommand: Manage Server, from what Discord resolved for this very interaction."""
        await require_manage_server(self.bot, interaction)
        return True

    async def change(self, interaction: discord.Interaction, change: Change, summary: str, done: str) -> None:
        """Apply ``change`` to this server's settings and answer in one ephemeral line: ``done``, or why not.

        Acknowledged first: the compare-and-set may wait on the store, and Discord waits 3 seconds."""
        assert interaction.guild is not None
        await acknowledge(interaction)
        try:
            await self.bot.server_settings.update(
                interaction.guild.id, change, actor_id=interaction.user.id, summary=summary
            )
        except GuildSettingsError as error:
            await say_privately(interaction, "Not saved: " + "; ".join(error.problems))
            return
        except SettingsConflictError:
            await say_privately(interaction, CONFLICT)
            return
        await say_privately(interaction, done)

    @settings.command(name="show", description="Everything Glimpse does in this server, and where it comes from.")
    async def show_command(self, interaction: discord.Interaction) -> None:
        guild = interaction.guild
        assert guild is not None
        await acknowledge(interaction)
        stored = await self.bot.server_settings.get(guild.id)
        sections = summary_sections(
            stored.settings,
            self.bot.server_settings.defaults,
            channel_ids={channel.id for channel in guild.channels},
            deployment_limits=self.bot.guard.limits,
            changes=await self.bot.server_settings.changes(guild.id),
        )
        embed = discord.Embed(title=f"Glimpse in {guild.name}"[:256], colour=discord.Colour.blurple())
        for title, text in sections:
            embed.add_field(name=title, value=text, inline=False)
        embed.set_footer(text=f"Settings version {stored.version}")
        await interaction.edit_original_response(embed=embed)

    @settings.command(name="describe", description="Automatic alt text for images posted in a channel (and threads).")
    @app_commands.describe(channel="The channel", on="Describe every image posted there")
    async def describe_command(self, interaction: discord.Interaction, channel: discord.TextChannel, on: bool) -> None:
        state = "on" if on else "off"
        done = f"Automatic alt text is now {state} in {channel.mention}."
        if on:
            done += self._warnings(channel, message_content=True)
        await self.change(
            interaction, lambda s: s.with_describe(channel.id, on), f"alt text in {channel.mention}: {state}", done
        )

    @settings.command(name="chat", description="How Glimpse converses in a channel.")
    @app_commands.describe(
        channel="The channel",
        mode="mention (default), every-message (free response), thread (each mention opens one), or off",
    )
    async def chat_command(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        mode: Literal["mention", "every-message", "thread", "off"],
    ) -> None:
        chosen = ChatMode(mode)
        done = f"Conversation in {channel.mention}: {mode}."
        if chosen != ChatMode.OFF:
            done += self._warnings(channel, message_content=chosen == ChatMode.EVERY_MESSAGE,
                                   threads=chosen == ChatMode.THREAD)
        summary = f"chat in {channel.mention}: {mode}"
        await self.change(interaction, lambda s: s.with_chat(channel.id, chosen), summary, done)

    @settings.command(name="access", description="Who may use Glimpse here: allow or block a role, block a member.")
    @app_commands.describe(
        role="A role to allow (then only allowed roles may), block, or clear",
        user="A member to block or clear",
        rule="allow (roles only), block, or clear the rule",
    )
    async def access_command(
        self,
        interaction: discord.Interaction,
        rule: Literal["allow", "block", "clear"],
        role: discord.Role | None = None,
        user: discord.Member | None = None,
    ) -> None:
        if (role is None) == (user is None):
            await say_privately(interaction, "Not saved: name either a role or a user.")
            return
        if user is not None:
            if rule == "allow":
                await say_privately(
                    interaction, "Not saved: members can only be blocked or cleared; allow a role instead."
                )
                return
            blocked = rule == "block"
            done = f"{user.mention} is {'now blocked' if blocked else 'no longer blocked'}."
            if blocked and user.guild_permissions.manage_guild:
                done += " (They keep `/settings`: they have Manage Server.)"
            summary = f"access for {user.mention}: {rule}"
            await self.change(interaction, lambda s: s.with_user_blocked(user.id, blocked), summary, done)
            return
        assert role is not None
        done = {
            "allow": f"{role.mention} is allowed: only members with an allowed role may use Glimpse now.",
            "block": f"{role.mention} is blocked.",
            "clear": f"{role.mention} has no rule now.",
        }[rule]
        await self.change(
            interaction, lambda s: s.with_role_rule(role.id, RoleRule(rule)), f"access for {role.mention}: {rule}", done
        )

    @settings.command(name="persona", description="Glimpse's system prompt for this server or one channel, in a form.")
    @app_commands.describe(channel="Only for this channel (and its threads)")
    async def persona_command(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        assert interaction.guild is not None
        # a form cannot follow a defer: this read is bounded (the service's read timeout) instead
        stored = await self.bot.server_settings.get(interaction.guild.id)
        await interaction.response.send_modal(PersonaModal(self, channel, stored.settings))

    @settings.command(name="alt-text", description="How alt text is written: language, length, images that have one.")
    @app_commands.describe(
        language="auto: the poster's Discord language; or always this one",
        length="short, standard or detailed",
        skip_described="Leave images alone that already carry a description",
    )
    @app_commands.rename(skip_described="skip-described")
    @app_commands.choices(language=_LANGUAGE_CHOICES)
    async def alt_text_command(
        self,
        interaction: discord.Interaction,
        language: app_commands.Choice[str] | None = None,
        length: Literal["short", "standard", "detailed"] | None = None,
        skip_described: bool | None = None,
    ) -> None:
        assert interaction.guild is not None
        code = language.value if language else None
        parts = [f"language {code}" if code else "", f"length {length}" if length else "",
                 f"skip-described {skip_described}" if skip_described is not None else ""]
        summary = "alt text: " + ", ".join(p for p in parts if p)
        if not any(parts):
            await acknowledge(interaction)
            alt = (await self.bot.server_settings.get(interaction.guild.id)).settings.alt_text
            await say_privately(interaction, f"Alt text: {language_label(alt.language)}, {alt.length.value}, "
                                    f"skip-described {str(alt.skip_described).lower()}.")
            return

        def apply(settings: GuildSettings) -> GuildSettings:
            return settings.with_alt_text(
                language=code, length=AltLength(length) if length else None, skip_described=skip_described
            )

        await self.change(interaction, apply, summary, "Saved: " + summary + ".")

    @settings.command(name="limits", description="This server's daily token budgets and the roles exempt from them.")
    @app_commands.describe(
        member_daily="Tokens each member may use per day here (within the deployment's; 0: the deployment's)",
        server_daily="Tokens the whole server may use per day (within the deployment's; 0: the deployment's)",
        exempt_role="A role whose members have no member limits (rate, own budget); the server's still holds",
        exempt="false: the role is no longer exempt",
    )
    @app_commands.rename(member_daily="member-daily", server_daily="server-daily", exempt_role="exempt-role")
    async def limits_command(
        self,
        interaction: discord.Interaction,
        member_daily: app_commands.Range[int, 0, 10**12] | None = None,
        server_daily: app_commands.Range[int, 0, 10**12] | None = None,
        exempt_role: discord.Role | None = None,
        exempt: bool = True,
    ) -> None:
        assert interaction.guild is not None
        deployment = self.bot.guard.limits
        if member_daily is None and server_daily is None and exempt_role is None:
            limits = (await self.bot.server_settings.get(interaction.guild.id)).settings.limits
            await say_privately(interaction, limits_text(limits, deployment))
            return
        over = [
            f"the deployment allows at most {allowed:,} tokens {per} a day"
            for asked, allowed, per in ((member_daily, deployment.user_daily, "per member"),
                                        (server_daily, deployment.guild_daily, "for the server"))
            if asked and allowed and asked > allowed
        ]
        if over:
            await say_privately(interaction, "Not saved: " + "; ".join(over) + ".")
            return
        parts = [f"member-daily {member_daily:,}" if member_daily is not None else "",
                 f"server-daily {server_daily:,}" if server_daily is not None else "",
                 f"{exempt_role.mention} {'exempt' if exempt else 'not exempt'}" if exempt_role else ""]
        summary = "limits: " + ", ".join(p for p in parts if p)

        def apply(settings: GuildSettings) -> GuildSettings:
            return settings.with_limits(
                member_daily=member_daily,
                server_daily=server_daily,
                exempt_role=exempt_role and exempt_role.id,
                exempt=exempt,
            )

        await self.change(interaction, apply, summary, "Saved: " + summary + ".")

    def _warnings(self, channel: discord.TextChannel, *, message_content: bool = False, threads: bool = False) -> str:
        """Why a setting that was saved may not work yet (one short clause each)."""
        mine = channel.permissions_for(channel.guild.me)
        notes = []
        if not (mine.view_channel and mine.send_messages and mine.read_message_history):
            notes.append("I can't read and post there yet (View Channel, Send Messages, Read Message History).")
        if threads and not (mine.create_public_threads and mine.send_messages_in_threads):
            notes.append("I can't open threads there yet (Create Public Threads, Send Messages in Threads).")
        if message_content and not self.bot.intents.message_content:
            notes.append("I run without the Message Content intent, so I can't see messages that don't mention me.")
        return "".join(f"\n{_WARNING} {note}" for note in notes)


class PersonaModal(discord.ui.Modal, title="Glimpse's persona"):
    def __init__(self, cog: Settings, channel: discord.TextChannel | None, settings: GuildSettings) -> None:
        super().__init__()
        self.cog = cog
        self.channel = channel
        self.shown = settings.persona_for(channel and channel.id)
        where = f"#{channel.name}" if channel else "this server"
        self.text: discord.ui.TextInput[PersonaModal] = discord.ui.TextInput(
            label=f"System prompt for {where}"[:45],
            style=discord.TextStyle.paragraph,
            custom_id=PERSONA_INPUT_ID,
            default=self.shown or None,
            required=False,
            max_length=PERSONA_MAX_CHARS,
            placeholder="You are Glimpse, the friendly helper of the Photo Club. Keep answers short. (Empty: reset)",
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        # A modal is a new interaction: the Manage Server check runs again, on what Discord says now.
        try:
            await require_manage_server(self.cog.bot, interaction)
        except app_commands.CheckFailure as refused:
            await say_privately(interaction, str(refused))
            return
        channel_id = self.channel and self.channel.id
        text = self.text.value.strip()

        def apply(settings: GuildSettings) -> GuildSettings:
            if settings.persona_for(channel_id) != self.shown:
                raise GuildSettingsError([STALE_PERSONA.removeprefix("Not saved: ")])
            return settings.with_persona(text, channel_id)

        where = self.channel.mention if self.channel else "this server"
        summary = f"persona for {where}: {'reset' if not text else f'{len(text)} characters'}"
        done = f"The persona for {where} is {'reset to the built-in one' if not text else 'saved'}."
        await self.cog.change(interaction, apply, summary, done)


async def require_manage_server(bot: Glimpse, interaction: discord.Interaction) -> None:
    """Raise :class:`app_commands.CheckFailure` (its text: the one-line reason) unless the invoker
    has Manage Server here; the bot's error handler shows that line, ephemeral."""
    decision = await decide_interaction(bot.server_settings, interaction, Feature.SETTINGS)
    if not decision.allowed:
        log.info("Refused /settings to user %s in guild %s", interaction.user.id, interaction.guild_id)
        raise app_commands.CheckFailure(decision.reason)


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Settings(bot))
