"""Moderation helpers: `/moderation setup|show|stats`, the "Check image" menu and the watcher of
images in watched channels. Wiring only: the work is in :mod:`bot.moderation` (the pure core, and the
Discord-facing ``watch``, ``enforce``, ``entry``, ``buttons`` and ``panels``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import decide_message, place_of
from bot.addressing import addresses_bot
from bot.guard import Work
from bot.guild import Feature
from bot.images import CONVERSATION_DETAIL
from bot.interactions import acknowledge, say_privately
from bot.moderation import Category, ModerationSettings, ModerationSettingsError
from bot.moderation.config import MAX_RULES_CHARS, Action
from bot.moderation.discord import ModLogButton, check_embeds, moderate, settings_embed, stats_embed
from bot.moderation.stats import WINDOWS_DAYS
from bot.replies import NO_MENTIONS
from bot.store import SettingsConflictError

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

RULES_INPUT_ID = "moderation-rules"
NEEDS_MANAGE_SERVER = "You need the Manage Server permission to set up moderation."
STALE_FORM = (
    "Not saved: the moderation settings changed after you opened this form. "
    "Run `/moderation setup edit_rules:True` again to see them."
)
CONFLICT = "Not saved: the moderation settings kept changing while I saved yours. Please try again."
_CATEGORY_CHOICES = [app_commands.Choice(name=c.label, value=c.value) for c in Category]
_ACTION_CHOICES = [app_commands.Choice(name=a.label, value=a.value) for a in Action]


def _can_moderate(permissions: discord.Permissions) -> bool:
    return permissions.manage_messages or permissions.moderate_members or permissions.manage_guild


class RulesModal(discord.ui.Modal, title="Server rules for image moderation"):
    def __init__(self, cog: Moderation, pending: ModerationSettings, version: int) -> None:
        super().__init__()
        self.cog = cog
        self.pending = pending
        self.version = version  # of the settings the form was filled from: saved only if still so
        self.rules: discord.ui.TextInput[RulesModal] = discord.ui.TextInput(
            label="Rules (in your own words)",
            style=discord.TextStyle.paragraph,
            custom_id=RULES_INPUT_ID,
            default=pending.rules or None,
            required=False,
            max_length=MAX_RULES_CHARS,
            placeholder="1. No NSFW images. 2. No scams or giveaways. 3. No one's personal information.",
        )
        self.add_item(self.rules)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        if not interaction.permissions.manage_guild:  # a new interaction: checked again
            await interaction.response.send_message(NEEDS_MANAGE_SERVER, ephemeral=True)
            return
        pending, rules = self.pending, self.rules.value
        await self.cog.save_and_show(
            interaction, lambda _: pending.replace(rules=rules), "moderation rules", expected_version=self.version
        )


class Moderation(commands.Cog):
    moderation = app_commands.Group(
        name="moderation",
        description="Image moderation for this server",
        guild_only=True,
        default_permissions=discord.Permissions(manage_messages=True),
    )

    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot
        self.service = bot.moderation
        self.menu = app_commands.ContextMenu(name="Check image", callback=self.check_image_menu)
        self.menu.guild_only = True
        self.menu.default_permissions = discord.Permissions(manage_messages=True)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.remove_dynamic_items(ModLogButton)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self._watch(message, new=True)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, update: discord.RawMessageUpdateEvent) -> None:
        """An edit or a link's preview that adds images is moderated too (only the images it adds)."""
        await self._watch(update.message)

    async def _watch(self, message: discord.Message, *, new: bool = False) -> None:
        """``new``: the message was just posted (describe and chat may be waiting for its verdict)."""
        guild = message.guild
        if guild is None or message.author.bot:
            return
        found = await self.bot.media.images(message)
        if not found.sources:
            # Nothing here to hold anyone up, unless a link's preview is still to come (then its edit does).
            if (new or message.embeds) and not found.waiting_for_preview:
                self.service.gate.settle(message.id, flagged=False)
            return
        settings = await self.service.settings(guild.id)
        if settings is None or not settings.watches(message.channel.id, getattr(message.channel, "parent_id", None)):
            return
        # Claimed per image: a redelivered event does nothing, an edit adding images checks those alone.
        claims, pairs = self.bot.claims, zip(found.sources, found.keys, strict=True)
        images = [source for source, key in pairs if await claims.claim(Work.MODERATION, f"{message.id}:{key}")]
        if not images:
            return  # a redelivered event, or an edit that added no image
        expect = CONVERSATION_DETAIL if await self._used_after_verdict(message) else None
        try:
            await moderate(message, settings, self.service, self.bot.pacer, images, expect=expect)
        except Exception:
            log.exception("Moderating message %s in guild %s failed", message.id, guild.id)

    async def _used_after_verdict(self, message: discord.Message) -> bool:
        """Whether describe or chat will take this message's images once its verdict is in: then the
        check prepares their image too, from the same download and decode (a wrong guess costs a
        preparation kept for ``SHARE_SECONDS``, or a second download)."""
        if addresses_bot(message, self.bot.user):
            return True
        if (await self.bot.server_settings.behaviour(place_of(message.channel))).answers_every_message:
            return True
        return (await decide_message(self.bot.server_settings, message, Feature.AUTO_DESCRIBE)).allowed

    @moderation.command(name="setup", description="Configure image moderation (Manage Server).")
    @app_commands.describe(
        mod_log="Where findings are posted",
        watch="Check images in all channels, or only in the listed ones",
        add_channel="Start watching this channel",
        remove_channel="Stop watching this channel",
        exempt_role="Never check images from members with this role",
        unexempt_role="Check this role's images again",
        flag="Start flagging this category",
        ignore="Stop flagging this category",
        low="Action for severity 1 (minor)",
        medium="Action for severity 2 (clear breach)",
        high="Action for severity 3 (severe)",
        timeout_minutes="Length of a timeout (automatic and by button)",
        detail="How closely images are looked at (low is cheapest)",
        edit_rules="Open a form to write the server's rules, used in every check",
    )
    @app_commands.choices(
        flag=_CATEGORY_CHOICES,
        ignore=_CATEGORY_CHOICES,
        low=_ACTION_CHOICES,
        medium=_ACTION_CHOICES,
        high=_ACTION_CHOICES,
    )
    async def setup_command(
        self,
        interaction: discord.Interaction,
        mod_log: discord.TextChannel | None = None,
        watch: Literal["listed channels", "all channels"] | None = None,
        add_channel: discord.TextChannel | None = None,
        remove_channel: discord.TextChannel | None = None,
        exempt_role: discord.Role | None = None,
        unexempt_role: discord.Role | None = None,
        flag: app_commands.Choice[str] | None = None,
        ignore: app_commands.Choice[str] | None = None,
        low: app_commands.Choice[str] | None = None,
        medium: app_commands.Choice[str] | None = None,
        high: app_commands.Choice[str] | None = None,
        timeout_minutes: app_commands.Range[int, 1, 40320] | None = None,
        detail: Literal["low", "high", "auto"] | None = None,
        edit_rules: bool = False,
    ) -> None:
        assert interaction.guild is not None
        # Checked here too: the default permission is only a hint that server admins can override.
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message(NEEDS_MANAGE_SERVER, ephemeral=True)
            return

        def change(current: ModerationSettings) -> ModerationSettings:
            return current.updated(
                mod_log_channel_id=mod_log and mod_log.id,
                watch_all_channels=None if watch is None else watch == "all channels",
                add_channel_id=add_channel and add_channel.id,
                remove_channel_id=remove_channel and remove_channel.id,
                exempt_role_id=exempt_role and exempt_role.id,
                unexempt_role_id=unexempt_role and unexempt_role.id,
                flag=flag and Category(flag.value),
                ignore=ignore and Category(ignore.value),
                actions={s: c and Action(c.value) for s, c in ((1, low), (2, medium), (3, high))},
                timeout_seconds=None if timeout_minutes is None else timeout_minutes * 60,
                detail=detail,
            )

        if edit_rules:  # the form shows what is stored now, and saves only if nobody changed it meanwhile
            current, version = await self.service.versioned_settings(interaction.guild.id)
            try:
                pending = change(current or ModerationSettings())
            except ModerationSettingsError as error:
                await interaction.response.send_message("Not saved: " + "; ".join(error.problems), ephemeral=True)
                return
            await interaction.response.send_modal(RulesModal(self, pending, version))
            return
        await self.save_and_show(interaction, change, "moderation setup")

    async def save_and_show(
        self,
        interaction: discord.Interaction,
        change: Callable[[ModerationSettings], ModerationSettings],
        summary: str,
        *,
        expected_version: int | None = None,
    ) -> None:
        """Save ``change`` by compare-and-set and show the result, or say in one line why not.

        Acknowledged first: the compare-and-set may wait on the store, and Discord waits 3 seconds."""
        assert interaction.guild is not None
        await acknowledge(interaction)
        try:
            settings = await self.service.save_settings(
                interaction.guild.id, change, actor_id=interaction.user.id, summary=summary,
                expected_version=expected_version,
            )
        except ModerationSettingsError as error:
            await say_privately(interaction, "Not saved: " + "; ".join(error.problems))
            return
        except SettingsConflictError:
            await say_privately(interaction, STALE_FORM if expected_version is not None else CONFLICT)
            return
        log.info("User %s changed the moderation settings of guild %s", interaction.user.id, interaction.guild.id)
        embed = settings_embed(interaction.guild, settings, message_content=self.bot.intents.message_content)
        await say_privately(interaction, "Saved.", embed=embed)

    @moderation.command(name="show", description="Show this server's moderation settings.")
    async def show_command(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        if not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can see the moderation settings.", ephemeral=True)
            return
        await acknowledge(interaction)  # the store may be slow
        settings = await self.service.settings(interaction.guild.id)
        note = None if settings is not None else "Moderation is not set up yet: these are the defaults."
        embed = settings_embed(
            interaction.guild, settings or ModerationSettings(), message_content=self.bot.intents.message_content
        )
        await interaction.edit_original_response(content=note, embed=embed, allowed_mentions=NO_MENTIONS)

    @moderation.command(name="stats", description="Moderation counts for the last 7 and 30 days.")
    async def stats_command(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        if not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can see moderation statistics.", ephemeral=True)
            return
        # Deferred first: the store counts a busy server's month of audit before anything can be shown.
        await acknowledge(interaction)
        tallies = await self.service.stats(interaction.guild.id, WINDOWS_DAYS, time.time())
        await interaction.edit_original_response(embed=stats_embed(tallies), allowed_mentions=NO_MENTIONS)

    async def check_image_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A moderator's on-demand check: an ephemeral verdict, no mod-log entry, no action."""
        if interaction.guild is None or not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can check images.", ephemeral=True)
            return
        found = await self.bot.media.images(message)
        if not found.sources:
            text = " ".join(["That message has no images.", *found.notes])
            await interaction.response.send_message(text, ephemeral=True)
            return
        await acknowledge(interaction)
        guild_id = interaction.guild.id
        settings = await self.service.settings(guild_id) or ModerationSettings()
        results = await self.service.check_attachments(guild_id, settings, found.sources)
        for result in results:
            await self.service.record_verdict(
                guild_id,
                result,
                kind="check",
                actor_id=interaction.user.id,
                channel_id=message.channel.id,
                message_id=message.id,
                user_id=message.author.id,
            )
        await interaction.followup.send(embeds=check_embeds(results), ephemeral=True, allowed_mentions=NO_MENTIONS)


async def setup(bot: Glimpse) -> None:
    bot.add_dynamic_items(ModLogButton)
    await bot.add_cog(Moderation(bot))
