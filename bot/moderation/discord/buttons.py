"""The mod-log buttons (Delete message, Timeout, Dismiss) and what a click does.

Buttons are :class:`discord.ui.DynamicItem` parsed from their custom ID (see
:mod:`bot.moderation.action_ids`), so they work after a restart once registered with
``bot.add_dynamic_items(ModLogButton)``. Every click is checked server-side against the clicker's own
permissions in the flagged message's channel; the entry then records who did what and the buttons
done are disabled (which is also how the state survives restarts).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import discord

from bot.moderation.action_ids import ACTION_ID_PATTERN, ActionRef, ButtonAction, decode_action_id, encode_action_id
from bot.moderation.config import ModerationSettings
from bot.moderation.discord.enforce import outranks
from bot.moderation.discord.entry import with_moderator_line
from bot.moderation.ledger import entry_finished
from bot.moderation.policy import format_duration
from bot.moderation.service import ModerationService
from bot.replies import NO_MENTIONS

log = logging.getLogger(__name__)


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
        # The bot subclass holds the service (``Glimpse.moderation``); not imported here to avoid a cycle.
        service = getattr(interaction.client, "moderation", None)
        if not isinstance(service, ModerationService):
            await interaction.response.send_message("Moderation is not available right now.", ephemeral=True)
            return
        await on_click(interaction, self.ref, service)


def entry_view(ref: ActionRef, done: set[ButtonAction], timeout_seconds: int) -> discord.ui.View:
    """The three buttons; an action done disables its button, any action (or a dismissal) Dismiss."""
    view = discord.ui.View(timeout=None)
    finished = entry_finished(done)
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


def required_permission(
    action: ButtonAction, in_channel: discord.Permissions | None, server_wide: discord.Permissions
) -> tuple[str, bool]:
    """(the permission a button needs, by name; whether the clicker has it). ``in_channel``: their
    permissions in the flagged message's channel (``None``: unknown, so nothing channel-bound is
    allowed); ``server_wide``: their server permissions. Timeout Members is a server-wide permission
    (Discord ignores it in channel overwrites), so only ``server_wide`` counts for it."""
    manage_messages = in_channel is not None and in_channel.manage_messages
    return {
        ButtonAction.DELETE: ("Manage Messages", manage_messages),
        ButtonAction.TIMEOUT: ("Timeout Members", server_wide.moderate_members),
        ButtonAction.DISMISS: (
            "Manage Messages or Timeout Members",
            manage_messages or server_wide.moderate_members,
        ),
    }[action]


async def channel_permissions(
    guild: discord.Guild, channel_id: int, member: discord.Member
) -> discord.Permissions | None:
    """``member``'s permissions in a channel or thread of ``guild``, looked up when it is not cached
    (discord.py forgets archived threads); ``None`` when it cannot be found."""
    channel = guild.get_channel_or_thread(channel_id)
    if channel is None:
        try:
            channel = await guild.fetch_channel(channel_id)
        except discord.HTTPException:
            return None
    try:
        return channel.permissions_for(member)
    except discord.ClientException:  # a thread whose parent channel is not cached
        return None


async def on_click(interaction: discord.Interaction, ref: ActionRef, service: ModerationService) -> None:
    """A moderator clicked a mod-log button: check everything server-side, act, update the entry."""
    guild = interaction.guild
    if guild is None or guild.id != ref.guild_id or not isinstance(interaction.user, discord.Member):
        await interaction.response.send_message("This button belongs to another server.", ephemeral=True)
        return
    # Judged in the flagged message's channel, never in the mod-log channel where the button is.
    permissions = await channel_permissions(guild, ref.channel_id, interaction.user)
    name, allowed = required_permission(ref.action, permissions, interaction.user.guild_permissions)
    if permissions is None and ref.action is ButtonAction.DELETE:
        await interaction.response.send_message(
            "I cannot find that message's channel any more, so I cannot check your permissions there.",
            ephemeral=True,
        )
        return
    if not allowed:
        await interaction.response.send_message(f"You need the {name} permission for that.", ephemeral=True)
        return
    assert interaction.message is not None
    async with service.entries.lock(interaction.message.id):
        await _handle_click(interaction, ref, interaction.user, service)


async def _handle_click(
    interaction: discord.Interaction, ref: ActionRef, moderator: discord.Member, service: ModerationService
) -> None:
    assert interaction.message is not None and interaction.guild is not None
    entry_id = interaction.message.id
    done = done_actions(interaction.message) | service.entries.taken(entry_id)
    if ref.action in done or ButtonAction.DISMISS in done:
        await interaction.response.send_message("That was already taken care of.", ephemeral=True)
        return
    await interaction.response.defer()
    settings = await service.settings(ref.guild_id) or ModerationSettings()
    problem, line = await carry_out(interaction.client, interaction.guild, ref, moderator, settings)
    await service.record_action(
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
    service.entries.record(entry_id, done)
    embeds = interaction.message.embeds
    stamp = f"<t:{int(time.time())}:R>"
    kwargs: dict[str, Any] = {"view": entry_view(ref, done, settings.timeout_seconds)}
    if embeds:
        line = f"{moderator.mention} {line} {stamp}"
        kwargs["embed"] = with_moderator_line(embeds[0], line, finished=entry_finished(done))
    await interaction.edit_original_response(allowed_mentions=NO_MENTIONS, **kwargs)


async def carry_out(
    client: discord.Client,
    guild: discord.Guild,
    ref: ActionRef,
    moderator: discord.Member,
    settings: ModerationSettings,
) -> tuple[str | None, str]:
    """Do what the moderator asked: (why it could not be done, or None; what was done, for the entry)."""
    if ref.action is ButtonAction.DISMISS:
        return None, "dismissed this entry"
    reason = f"Glimpse mod-log: {moderator} ({moderator.id})"
    if ref.action is ButtonAction.DELETE:
        channel = client.get_partial_messageable(ref.channel_id, guild_id=guild.id)
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
    if member.id == guild.owner_id:
        return "Nobody can time out the server's owner.", ""
    if guild.owner_id != moderator.id and member.top_role >= moderator.top_role:
        return "You cannot time out a member whose top role is not below yours.", ""
    if guild.me is not None and not outranks(guild.me, member):  # Discord would refuse: do not ask
        return "I cannot time them out: their highest role is not below mine (move my role above it).", ""
    try:
        await member.timeout(timedelta(seconds=settings.timeout_seconds), reason=reason)
    except discord.Forbidden:
        return "I could not time them out: I lack Timeout Members or they rank above me.", ""
    except discord.HTTPException:
        log.warning("Timing out member %s failed", ref.author_id, exc_info=True)
        return "Discord refused the timeout; try again in a moment.", ""
    return None, f"timed out <@{ref.author_id}> for {format_duration(settings.timeout_seconds)}"
