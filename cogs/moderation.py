"""Moderation helpers: images in watched channels checked against the server's rules, findings in a
mod-log with buttons for humans, `/moderation setup|show|stats` and the "Check image" menu.

The logic lives in :mod:`bot.moderation`; this cog turns Discord events into calls and results into
messages. Buttons are :class:`discord.ui.DynamicItem` parsed from their custom ID, so they work after
a restart; every click is checked against the clicker's own permissions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import image_attachments
from bot.chat import SeenMessages
from bot.moderation import (
    ACTION_ID_PATTERN,
    ActionRef,
    ButtonAction,
    Category,
    Decision,
    ModerationSettings,
    ModerationSettingsError,
    Permission,
    decide,
    decode_action_id,
    encode_action_id,
    format_verdict,
)
from bot.moderation.config import MAX_RULES_CHARS, Action
from bot.moderation.policy import format_duration
from bot.moderation.service import MAX_IMAGES_PER_MESSAGE, CheckResult
from bot.moderation.stats import WINDOWS_DAYS, format_summary, summarize

if TYPE_CHECKING:
    from bot.client import Glimpse

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
MODERATOR_ACTIONS_FIELD = "Moderator actions"
RULES_INPUT_ID = "moderation-rules"
_SEVERITY_COLOURS = {1: discord.Colour.gold(), 2: discord.Colour.orange(), 3: discord.Colour.red()}
_REVIEW_COLOUR = discord.Colour.blurple()
_DONE_COLOUR = discord.Colour.dark_grey()
_CATEGORY_CHOICES = [app_commands.Choice(name=c.label, value=c.value) for c in Category]
_ACTION_CHOICES = [app_commands.Choice(name=a.label, value=a.value) for a in Action]
_PERMISSION_LABELS = {Permission.MANAGE_MESSAGES: "Manage Messages", Permission.MODERATE_MEMBERS: "Timeout Members"}


# --- the mod-log entry ---------------------------------------------------------------------------


class ModLogButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ACTION_ID_PATTERN):
    """One of Delete / Timeout / Dismiss under a mod-log entry; everything it needs is in its ID."""

    def __init__(self, ref: ActionRef, *, disabled: bool = False, timeout_label: str = "1 h") -> None:
        label, style = {
            ButtonAction.DELETE: ("Delete message", discord.ButtonStyle.danger),
            ButtonAction.TIMEOUT: (f"Timeout {timeout_label}", discord.ButtonStyle.secondary),
            ButtonAction.DISMISS: ("Dismiss", discord.ButtonStyle.success),
        }[ref.action]
        custom_id = encode_action_id(ref.action, ref.guild_id, ref.channel_id, ref.message_id, ref.author_id)
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=custom_id, disabled=disabled))
        self.ref = ref

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> ModLogButton:
        ref = decode_action_id(getattr(item, "custom_id", "") or "")
        if ref is None:
            raise ValueError("not a mod-log button ID")
        return cls(ref)

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = (
            interaction.client.get_cog(Moderation.__cog_name__)
            if isinstance(interaction.client, commands.Bot)
            else None
        )
        if not isinstance(cog, Moderation):
            await interaction.response.send_message("Moderation is not available right now.", ephemeral=True)
            return
        await cog.on_button(interaction, self.ref)


def entry_view(ref: ActionRef, done: set[ButtonAction], timeout_seconds: int) -> discord.ui.View:
    """The three buttons; an action done disables its button, any action (or a dismissal) Dismiss."""
    view = discord.ui.View(timeout=None)
    finished = ButtonAction.DISMISS in done or {ButtonAction.DELETE, ButtonAction.TIMEOUT} <= done
    for action in ButtonAction:
        disabled = finished or action in done or (action is ButtonAction.DISMISS and bool(done))
        item_ref = ActionRef(action, ref.guild_id, ref.channel_id, ref.message_id, ref.author_id)
        view.add_item(ModLogButton(item_ref, disabled=disabled, timeout_label=format_duration(timeout_seconds)))
    return view


def done_actions(message: discord.Message | None) -> set[ButtonAction]:
    """Actions already taken on an entry, read from its disabled buttons (the state survives restarts)."""
    done: set[ButtonAction] = set()
    for row in message.components if message else []:
        for component in getattr(row, "children", []):
            ref = decode_action_id(getattr(component, "custom_id", None) or "")
            if ref is not None and getattr(component, "disabled", False):
                done.add(ref.action)
    if ButtonAction.DISMISS in done and done != {ButtonAction.DISMISS}:
        done.discard(ButtonAction.DISMISS)  # disabled only because another action was taken
    return done


def entry_embed(
    message: discord.Message, result: CheckResult, action_line: str, *, index: int, total: int
) -> discord.Embed:
    verdict = result.verdict
    if verdict.requires_review:
        title, colour = "Image needs human review", _REVIEW_COLOUR
    else:
        title, colour = f"Image flagged · severity {verdict.severity}/3", _SEVERITY_COLOURS[verdict.severity]
    if total > 1:
        title += f" · image {index} of {total}"
    author = message.author
    embed = discord.Embed(title=title, colour=colour, timestamp=message.created_at)
    embed.add_field(
        name="Author",
        value=f"{author.mention} · {discord.utils.escape_markdown(author.name)} (`{author.id}`)",
        inline=True,
    )
    embed.add_field(name="Channel", value=f"<#{message.channel.id}>", inline=True)
    embed.add_field(name="Message", value=f"[Jump to message]({message.jump_url})", inline=True)
    embed.add_field(name="Verdict", value=format_verdict(verdict), inline=False)
    embed.add_field(name="Automatic action", value=action_line, inline=False)
    source = "answered from the cache" if result.cached else "checked by the model"
    embed.set_footer(text=f"Image {source} · the image is attached as a spoiler")
    return embed


def with_moderator_line(embed: discord.Embed, line: str, *, finished: bool) -> discord.Embed:
    """The entry's embed with one more line under "Moderator actions"."""
    embed = embed.copy()
    for i, field in enumerate(embed.fields):
        if field.name == MODERATOR_ACTIONS_FIELD:
            embed.set_field_at(i, name=MODERATOR_ACTIONS_FIELD, value=f"{field.value}\n{line}"[-1024:], inline=False)
            break
    else:
        embed.add_field(name=MODERATOR_ACTIONS_FIELD, value=line, inline=False)
    if finished:
        embed.colour = _DONE_COLOUR
    return embed


# --- the rules modal -----------------------------------------------------------------------------


class RulesModal(discord.ui.Modal, title="Server rules for image moderation"):
    def __init__(self, cog: Moderation, pending: ModerationSettings) -> None:
        super().__init__()
        self.cog = cog
        self.pending = pending
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
        try:
            settings = self.pending.replace(rules=self.rules.value)
        except ModerationSettingsError as error:
            await interaction.response.send_message("\n".join(error.problems), ephemeral=True)
            return
        await self.cog.save_and_show(interaction, settings)


# --- the cog -------------------------------------------------------------------------------------


def _can_moderate(permissions: discord.Permissions) -> bool:
    return permissions.manage_messages or permissions.moderate_members or permissions.manage_guild


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
        self.seen = SeenMessages()
        self._locks: OrderedDict[int, asyncio.Lock] = OrderedDict()
        # Actions taken in this process per entry: a second click may carry a stale message snapshot.
        self._clicked: OrderedDict[int, set[ButtonAction]] = OrderedDict()
        # (guild, channel) -> the bot's cached permission bits when Discord refused an automatic delete.
        self._refused: dict[tuple[int, int], int] = {}
        self.menu = app_commands.ContextMenu(name="Check image", callback=self.check_image_menu)
        self.menu.guild_only = True
        self.menu.default_permissions = discord.Permissions(manage_messages=True)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.remove_dynamic_items(ModLogButton)

    # -- watching ------------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None or message.author.bot or not image_attachments(message.attachments):
            return
        settings = await self.service.settings(guild.id)
        if settings is None or not settings.watches(message.channel.id, getattr(message.channel, "parent_id", None)):
            return
        if not self.seen.claim(message.id):
            return  # a redelivered event
        try:
            await self.moderate(message, settings)
        except Exception:
            log.exception("Moderating message %s in guild %s failed", message.id, guild.id)

    async def moderate(self, message: discord.Message, settings: ModerationSettings) -> None:
        """Check the message's images, act as configured and allowed, log what moderators should see."""
        assert message.guild is not None
        guild = message.guild
        attachments = image_attachments(message.attachments)[:MAX_IMAGES_PER_MESSAGE]
        results = await asyncio.gather(
            *(self.service.check_attachment(guild.id, settings, a) for a in attachments)  # type: ignore[arg-type]
        )
        ids = {"channel_id": message.channel.id, "message_id": message.id, "user_id": message.author.id}
        for result in results:
            await self.service.record_verdict(guild.id, result, **ids)
        flagged = [r for r in results if r.verdict.flagged]
        worst = max(flagged, key=lambda r: r.verdict.severity) if flagged else None
        decision = Decision(log=any(r.verdict.should_log for r in results))
        deleted = timed_out = False
        if worst is not None:
            me = guild.me
            can_delete = me is not None and self._may_delete(message, me)
            can_timeout = me is not None and me.guild_permissions.moderate_members
            decision = decide(worst.verdict, settings, bot_can_delete=can_delete, bot_can_timeout=can_timeout)
            self.service.notices.restored(
                guild.id,
                [
                    p
                    for p, ok in ((Permission.MANAGE_MESSAGES, can_delete), (Permission.MODERATE_MEMBERS, can_timeout))
                    if ok
                ],
            )
            decision, deleted, timed_out = await self._act(message, decision)
            await self.service.record_decision(
                guild.id, worst.verdict, decision, deleted=deleted, timed_out=timed_out, **ids
            )
        if not decision.log:
            return
        log_channel = self._mod_log(guild, settings)
        if log_channel is None:
            log.warning("Guild %s has flagged images but no usable mod-log channel", guild.id)
            return
        action_line = self._action_line(decision, deleted=deleted, timed_out=timed_out)
        done = {a for a, ok in ((ButtonAction.DELETE, deleted), (ButtonAction.TIMEOUT, timed_out)) if ok}
        logged = [r for r in results if r.verdict.should_log]
        for index, result in enumerate(logged, start=1):
            await self._post_entry(
                log_channel, message, result, action_line, done, settings, index=index, total=len(logged)
            )
        if worst is not None:
            await self._report_missing(log_channel, message, decision)

    async def _act(self, message: discord.Message, decision: Decision) -> tuple[Decision, bool, bool]:
        """Carry out the decided automatic actions; returns (decision, deleted, timed out). A delete
        refused for lack of permission (a stale permission cache) counts as a missing permission."""
        deleted = timed_out = False
        reason = "Glimpse image moderation (automatic, as configured by the server)"
        if decision.delete:
            try:
                await message.delete()
                deleted = True
            except discord.NotFound:
                deleted = True  # someone was faster
            except discord.Forbidden:
                if message.guild is not None and message.guild.me is not None:
                    key = (message.guild.id, message.channel.id)
                    self._refused[key] = message.channel.permissions_for(message.guild.me).value  # type: ignore[union-attr]
                missing = decision.missing | {Permission.MANAGE_MESSAGES}
                decision = dataclasses.replace(decision, delete=False, missing=missing)
            except discord.HTTPException:
                log.warning("Could not delete message %s", message.id, exc_info=True)
        if decision.timeout_seconds is not None and isinstance(message.author, discord.Member):
            try:
                await message.author.timeout(timedelta(seconds=decision.timeout_seconds), reason=reason)
                timed_out = True
            except discord.HTTPException:
                log.warning("Could not time out member %s", message.author.id, exc_info=True)
        return decision, deleted, timed_out

    def _may_delete(self, message: discord.Message, me: discord.Member) -> bool:
        """Manage Messages as far as the cache knows, unless Discord refused a delete here while the
        cached permissions were exactly these (then it is not tried again until they change)."""
        permissions = message.channel.permissions_for(me)  # type: ignore[union-attr]
        refused = self._refused.get((me.guild.id, message.channel.id))
        return permissions.manage_messages and refused != permissions.value

    @staticmethod
    def _action_line(decision: Decision, *, deleted: bool, timed_out: bool) -> str:
        line = decision.describe()
        failed = []
        if decision.delete and not deleted:
            failed.append("deleting the message failed")
        if decision.timeout_seconds is not None and not timed_out:
            failed.append("the timeout failed (the author may rank above the bot, or has left)")
        return line + (" But " + " and ".join(failed) + "." if failed else "")

    def _mod_log(self, guild: discord.Guild, settings: ModerationSettings) -> discord.TextChannel | None:
        if settings.mod_log_channel_id is None:
            return None
        channel = guild.get_channel(settings.mod_log_channel_id)
        if not isinstance(channel, discord.TextChannel) or guild.me is None:
            return None
        return channel if channel.permissions_for(guild.me).send_messages else None

    async def _post_entry(
        self,
        channel: discord.TextChannel,
        message: discord.Message,
        result: CheckResult,
        action_line: str,
        done: set[ButtonAction],
        settings: ModerationSettings,
        *,
        index: int,
        total: int,
    ) -> None:
        assert message.guild is not None
        ref = ActionRef(ButtonAction.DELETE, message.guild.id, message.channel.id, message.id, message.author.id)
        kwargs: dict[str, Any] = {
            "embed": entry_embed(message, result, action_line, index=index, total=total),
            "view": entry_view(ref, done, settings.timeout_seconds),
            "allowed_mentions": NO_MENTIONS,
        }
        assert message.guild.me is not None
        if result.image is not None and channel.permissions_for(message.guild.me).attach_files:
            extension = "png" if result.image.mime == "image/png" else "jpg"
            kwargs["file"] = discord.File(
                io.BytesIO(result.image.data), filename=f"{message.id}_{index}.{extension}", spoiler=True
            )
        try:
            await channel.send(**kwargs)
        except discord.HTTPException:
            log.warning("Could not post a mod-log entry in channel %s", channel.id, exc_info=True)

    async def _report_missing(self, channel: discord.TextChannel, message: discord.Message, decision: Decision) -> None:
        """One notice per missing permission and guild (again only after it came back and was lost)."""
        assert message.guild is not None
        new = self.service.notices.to_report(message.guild.id, decision.missing)
        if not new:
            return
        names = " and ".join(_PERMISSION_LABELS[p] for p in sorted(new))
        text = (
            f"⚠️ The moderation settings ask me to act on flagged images, but I lack **{names}** "
            f"(seen in <#{message.channel.id}>). I only log until that permission is granted; "
            "I will not mention this again for every image."
        )
        try:
            await channel.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            log.warning("Could not post the missing-permission notice in channel %s", channel.id, exc_info=True)

    # -- buttons -------------------------------------------------------------------------------------

    async def on_button(self, interaction: discord.Interaction, ref: ActionRef) -> None:
        """A moderator clicked a mod-log button: check everything server-side, act, update the entry."""
        guild = interaction.guild
        if guild is None or guild.id != ref.guild_id or not isinstance(interaction.user, discord.Member):
            await interaction.response.send_message("This button belongs to another server.", ephemeral=True)
            return
        permissions = self._permissions_in(guild, interaction.user, ref.channel_id, interaction)
        needed = {
            ButtonAction.DELETE: ("Manage Messages", permissions.manage_messages),
            ButtonAction.TIMEOUT: ("Timeout Members", permissions.moderate_members),
            ButtonAction.DISMISS: (
                "Manage Messages or Timeout Members",
                permissions.manage_messages or permissions.moderate_members,
            ),
        }[ref.action]
        if not needed[1]:
            await interaction.response.send_message(f"You need the {needed[0]} permission for that.", ephemeral=True)
            return
        assert interaction.message is not None
        lock = self._lock(interaction.message.id)
        async with lock:
            await self._handle_click(interaction, ref, interaction.user)

    async def _handle_click(self, interaction: discord.Interaction, ref: ActionRef, moderator: discord.Member) -> None:
        assert interaction.message is not None and interaction.guild is not None
        done = done_actions(interaction.message) | self._clicked.get(interaction.message.id, set())
        if ref.action in done or ButtonAction.DISMISS in done:
            await interaction.response.send_message("That was already taken care of.", ephemeral=True)
            return
        await interaction.response.defer()
        settings = await self.service.settings(ref.guild_id) or ModerationSettings()
        problem, line = await self._carry_out(interaction.guild, ref, moderator, settings)
        await self.service.record_action(
            ref.guild_id,
            ref.action.value,
            ok=problem is None,
            channel_id=ref.channel_id,
            message_id=ref.message_id,
            user_id=ref.author_id,
            actor_id=moderator.id,
        )
        if problem is not None:
            await interaction.followup.send(problem, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        done = done | {ref.action}
        self._clicked[interaction.message.id] = done
        while len(self._clicked) > 1024:
            self._clicked.popitem(last=False)
        embeds = interaction.message.embeds
        finished = ButtonAction.DISMISS in done or {ButtonAction.DELETE, ButtonAction.TIMEOUT} <= done
        stamp = f"<t:{int(time.time())}:R>"
        kwargs: dict[str, Any] = {"view": entry_view(ref, done, settings.timeout_seconds)}
        if embeds:
            kwargs["embed"] = with_moderator_line(embeds[0], f"{moderator.mention} {line} {stamp}", finished=finished)
        await interaction.edit_original_response(allowed_mentions=NO_MENTIONS, **kwargs)

    async def _carry_out(
        self, guild: discord.Guild, ref: ActionRef, moderator: discord.Member, settings: ModerationSettings
    ) -> tuple[str | None, str]:
        """(why it could not be done, or None; what was done, for the entry)."""
        if ref.action is ButtonAction.DISMISS:
            return None, "dismissed this entry"
        reason = f"Glimpse mod-log: {moderator} ({moderator.id})"
        if ref.action is ButtonAction.DELETE:
            channel = self.bot.get_partial_messageable(ref.channel_id, guild_id=guild.id)
            try:
                await channel.get_partial_message(ref.message_id).delete()
            except discord.NotFound:
                return None, "found the message already deleted"
            except discord.Forbidden:
                return "I could not delete it: I lack Manage Messages in that channel.", ""
            except discord.HTTPException:
                log.warning("Deleting message %s failed", ref.message_id, exc_info=True)
                return "Discord refused to delete that message; try again in a moment.", ""
            return None, "deleted the message"
        try:
            member = guild.get_member(ref.author_id) or await guild.fetch_member(ref.author_id)
        except discord.NotFound:
            return "The author is no longer on this server.", ""
        except discord.HTTPException:
            return "I could not look up the author; try again in a moment.", ""
        if guild.owner_id != moderator.id and member.top_role >= moderator.top_role:
            return "You cannot time out a member whose top role is not below yours.", ""
        duration = timedelta(seconds=settings.timeout_seconds)
        try:
            await member.timeout(duration, reason=reason)
        except discord.Forbidden:
            return "I could not time them out: I lack Timeout Members or they rank above me.", ""
        except discord.HTTPException:
            log.warning("Timing out member %s failed", ref.author_id, exc_info=True)
            return "Discord refused the timeout; try again in a moment.", ""
        return None, f"timed out <@{ref.author_id}> for {format_duration(settings.timeout_seconds)}"

    def _lock(self, key: int) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > 256:
                self._locks.popitem(last=False)
        return lock

    @staticmethod
    def _permissions_in(
        guild: discord.Guild, member: discord.Member, channel_id: int, interaction: discord.Interaction
    ) -> discord.Permissions:
        """The member's permissions in the flagged message's channel (else where they clicked)."""
        channel = guild.get_channel_or_thread(channel_id)
        return channel.permissions_for(member) if channel is not None else interaction.permissions

    # -- commands ------------------------------------------------------------------------------------

    @moderation.command(name="setup", description="Configure image moderation (Manage Server).")
    @app_commands.describe(
        mod_log="Where findings are posted",
        watch="Check images in all channels, or only in the listed ones",
        add_channel="Start watching this channel",
        remove_channel="Stop watching this channel",
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
            await interaction.response.send_message(
                "You need the Manage Server permission to set up moderation.", ephemeral=True
            )
            return
        current = await self.service.settings(interaction.guild.id) or ModerationSettings()
        changes: dict[str, Any] = {}
        if mod_log is not None:
            changes["mod_log_channel_id"] = mod_log.id
        if watch is not None:
            changes["watch_all_channels"] = watch == "all channels"
        channels = set(current.watched_channel_ids)
        if add_channel is not None:
            channels.add(add_channel.id)
        if remove_channel is not None:
            channels.discard(remove_channel.id)
        changes["watched_channel_ids"] = frozenset(channels)
        categories = set(current.categories)
        if flag is not None:
            categories.add(Category(flag.value))
        if ignore is not None:
            categories.discard(Category(ignore.value))
        changes["categories"] = frozenset(categories)
        actions = dict(current.actions)
        for severity, choice in ((1, low), (2, medium), (3, high)):
            if choice is not None:
                actions[severity] = Action(choice.value)
        changes["actions"] = actions
        if timeout_minutes is not None:
            changes["timeout_seconds"] = timeout_minutes * 60
        if detail is not None:
            changes["detail"] = detail
        try:
            settings = current.replace(**changes)
        except ModerationSettingsError as error:
            await interaction.response.send_message("Not saved: " + "; ".join(error.problems), ephemeral=True)
            return
        if edit_rules:
            await interaction.response.send_modal(RulesModal(self, settings))
            return
        await self.save_and_show(interaction, settings)

    async def save_and_show(self, interaction: discord.Interaction, settings: ModerationSettings) -> None:
        assert interaction.guild is not None
        await self.service.save_settings(interaction.guild.id, settings)
        log.info("User %s changed the moderation settings of guild %s", interaction.user.id, interaction.guild.id)
        await interaction.response.send_message(
            "Saved.",
            embed=self.settings_embed(interaction.guild, settings),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @moderation.command(name="show", description="Show this server's moderation settings.")
    async def show_command(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        if not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can see the moderation settings.", ephemeral=True)
            return
        settings = await self.service.settings(interaction.guild.id)
        note = None if settings is not None else "Moderation is not set up yet: these are the defaults."
        embed = self.settings_embed(interaction.guild, settings or ModerationSettings())
        await interaction.response.send_message(note, embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @moderation.command(name="stats", description="Moderation counts for the last 7 and 30 days.")
    async def stats_command(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        if not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can see moderation statistics.", ephemeral=True)
            return
        now = time.time()
        records = await self.service.audit_since(interaction.guild.id, now - max(WINDOWS_DAYS) * 86400)
        embed = discord.Embed(title="Image moderation statistics", colour=discord.Colour.blurple())
        for days in WINDOWS_DAYS:
            embed.add_field(
                name=f"Last {days} days",
                value=format_summary(days, summarize(records, now - days * 86400)),
                inline=False,
            )
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    def settings_embed(self, guild: discord.Guild, settings: ModerationSettings) -> discord.Embed:
        embed = discord.Embed(title="Image moderation settings", colour=discord.Colour.blurple())
        if settings.watch_all_channels:
            watched = "All channels"
        elif settings.watched_channel_ids:
            watched = ", ".join(f"<#{cid}>" for cid in sorted(settings.watched_channel_ids))[:1000]
        else:
            watched = "None yet (add one with `/moderation setup add_channel:`)"
        embed.add_field(name="Watched", value=watched, inline=False)
        log_channel = f"<#{settings.mod_log_channel_id}>" if settings.mod_log_channel_id else "Not set"
        embed.add_field(name="Mod-log", value=log_channel, inline=True)
        embed.add_field(
            name="Detail · timeout",
            value=f"{settings.detail} · {format_duration(settings.timeout_seconds)}",
            inline=True,
        )
        embed.add_field(
            name="Flagged categories",
            value=", ".join(c.label for c in Category if c in settings.categories),
            inline=False,
        )
        embed.add_field(
            name="Actions",
            value="\n".join(f"Severity {s}: {settings.actions[s].label}" for s in (1, 2, 3)),
            inline=False,
        )
        rules = settings.rules or "(none: the categories alone decide)"
        embed.add_field(name="Rules", value=rules if len(rules) <= 1024 else rules[:1023] + "…", inline=False)
        warnings = self._warnings(guild, settings)
        if warnings:
            embed.add_field(name="Check", value="\n".join(f"⚠️ {w}" for w in warnings)[:1024], inline=False)
        return embed

    def _warnings(self, guild: discord.Guild, settings: ModerationSettings) -> list[str]:
        warnings = []
        if settings.mod_log_channel_id is None:
            warnings.append("No mod-log channel: findings are only counted in the stats.")
        elif self._mod_log(guild, settings) is None:
            warnings.append("I cannot post in the mod-log channel.")
        acts = {a for a in settings.actions.values() if a is not Action.LOG}
        me = guild.me
        if acts and me is not None and not me.guild_permissions.manage_messages:
            warnings.append("Automatic deletes need the Manage Messages permission.")
        if Action.DELETE_TIMEOUT in acts and me is not None and not me.guild_permissions.moderate_members:
            warnings.append("Automatic timeouts need the Timeout Members permission.")
        if not self.bot.intents.message_content:
            warnings.append("Without the Message Content intent I cannot see posted images.")
        return warnings

    # -- Check image ---------------------------------------------------------------------------------

    async def check_image_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A moderator's on-demand check: an ephemeral verdict, no mod-log entry, no action."""
        if interaction.guild is None or not _can_moderate(interaction.permissions):
            await interaction.response.send_message("Only moderators can check images.", ephemeral=True)
            return
        attachments = image_attachments(message.attachments)[:MAX_IMAGES_PER_MESSAGE]
        if not attachments:
            await interaction.response.send_message("That message has no image attachments.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = interaction.guild.id
        settings = await self.service.settings(guild_id) or ModerationSettings()
        results = await asyncio.gather(
            *(self.service.check_attachment(guild_id, settings, a) for a in attachments)  # type: ignore[arg-type]
        )
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


def check_embeds(results: Sequence[CheckResult]) -> list[discord.Embed]:
    embeds = []
    for index, result in enumerate(results, start=1):
        verdict = result.verdict
        if verdict.requires_review:
            colour = _REVIEW_COLOUR
        elif verdict.flagged:
            colour = _SEVERITY_COLOURS[verdict.severity]
        else:
            colour = discord.Colour.green()
        if verdict.requires_review:
            title = f"Image {index}: needs human review"
        elif verdict.flagged:
            title = f"Image {index}: flagged, severity {verdict.severity}/3"
        else:
            title = f"Image {index}: no problem found"
        embed = discord.Embed(title=title, description=format_verdict(verdict), colour=colour)
        embed.set_footer(text="From the cache" if result.cached else "Checked by the model")
        embeds.append(embed)
    return embeds


async def setup(bot: Glimpse) -> None:
    bot.add_dynamic_items(ModLogButton)
    await bot.add_cog(Moderation(bot))
