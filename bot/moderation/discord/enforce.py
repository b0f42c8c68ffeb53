"""Applying a :class:`~bot.moderation.policy.Decision` in Discord: the bot's automatic delete and
timeout, only where it has the permission, and the once-only notice when it lacks one."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta

import discord

from bot.moderation.action_ids import ButtonAction
from bot.moderation.config import ModerationSettings
from bot.moderation.discord.entry import send_paced
from bot.moderation.policy import (
    PERMISSION_NAMES,
    Decision,
    MissingPermissionNotices,
    Permission,
    RefusedDeletes,
    decide,
)
from bot.moderation.service import ModerationService
from bot.moderation.verdict import Verdict
from bot.replies import ChannelPacer

log = logging.getLogger(__name__)

AUTOMATIC_REASON = "Glimpse image moderation (automatic, as configured by the server)"


@dataclass(frozen=True)
class Outcome:
    """What the bot did about a message; ``decision`` names permissions found missing on the way."""

    decision: Decision
    deleted: bool = False
    timed_out: bool = False
    spared: str | None = None  # why the author was left alone, whatever the policy says

    @property
    def done(self) -> set[ButtonAction]:
        """The mod-log buttons to show as already done."""
        return {a for a, ok in ((ButtonAction.DELETE, self.deleted), (ButtonAction.TIMEOUT, self.timed_out)) if ok}

    def action_line(self) -> str:
        """The entry's "Automatic action" line: what was decided, and what failed."""
        if self.spared is not None:
            return f"Automatic action: none, {self.spared}."
        failed = []
        if self.decision.delete and not self.deleted:
            failed.append("deleting the message failed")
        if self.decision.timeout_seconds is not None and not self.timed_out:
            failed.append("the timeout was not possible (the author owns the server, ranks above the bot, or has left)")
        return self.decision.describe() + (" But " + " and ".join(failed) + "." if failed else "")


async def enforce(
    message: discord.Message,
    verdict: Verdict,
    settings: ModerationSettings,
    service: ModerationService,
    pacer: ChannelPacer,
) -> Outcome:
    """Decide on the (worst) flagged verdict of a message with the bot's permissions, and act.

    A moderator's own image is never acted on automatically; a timeout is only tried on a member the
    bot outranks (Discord refuses the owner and anyone whose highest role is not below the bot's)."""
    assert message.guild is not None
    guild, me = message.guild, message.guild.me
    author = message.author
    if isinstance(author, discord.Member) and is_moderator(message.channel, author):
        return Outcome(Decision(log=True), spared="the author is a moderator (never acted on automatically)")
    can_delete = me is not None and may_delete(message, me, service.refused_deletes)
    can_timeout = me is not None and me.guild_permissions.moderate_members
    decision = decide(verdict, settings, bot_can_delete=can_delete, bot_can_timeout=can_timeout)
    present = ((Permission.MANAGE_MESSAGES, can_delete), (Permission.MODERATE_MEMBERS, can_timeout))
    await service.notices.restored(guild.id, [p for p, ok in present if ok])
    outranked = isinstance(author, discord.Member) and me is not None and not outranks(me, author)
    if decision.timeout_seconds is not None and outranked:
        without_timeout = dataclasses.replace(decision, timeout_seconds=None)
        outcome = await apply(message, without_timeout, service.refused_deletes, pacer)
        return dataclasses.replace(outcome, decision=decision, timed_out=False)
    return await apply(message, decision, service.refused_deletes, pacer)


def is_moderator(channel: object, member: discord.Member) -> bool:
    """Someone who moderates this channel (deletes, times out, manages the server)."""
    permissions = channel.permissions_for(member)  # type: ignore[attr-defined]
    return permissions.manage_messages or permissions.moderate_members or permissions.manage_guild


def outranks(me: discord.Member, member: discord.Member) -> bool:
    """Whether Discord lets the bot time ``member`` out: never the owner; otherwise the bot's highest
    role must be above theirs."""
    return member.id != member.guild.owner_id and me.top_role > member.top_role


def may_delete(message: discord.Message, me: discord.Member, refused: RefusedDeletes) -> bool:
    """Manage Messages as far as the cache knows, unless Discord refused a delete here while the
    cached permissions were exactly these (then it is not tried again until they change)."""
    permissions = message.channel.permissions_for(me)  # type: ignore[union-attr]
    return permissions.manage_messages and refused.may_try(me.guild.id, message.channel.id, permissions.value)


async def apply(
    message: discord.Message, decision: Decision, refused: RefusedDeletes, pacer: ChannelPacer
) -> Outcome:
    """Carry out the decided automatic actions (the delete paced with the channel's other requests).
    A delete refused for lack of permission (a stale permission cache) counts as a missing permission."""
    deleted = timed_out = False
    if decision.delete:
        try:
            async with pacer.slot(message.channel.id):
                await message.delete()
            deleted = True
        except discord.NotFound:
            deleted = True  # someone was faster
        except discord.Forbidden:
            if message.guild is not None and message.guild.me is not None:
                bits = message.channel.permissions_for(message.guild.me).value  # type: ignore[union-attr]
                refused.refused(message.guild.id, message.channel.id, bits)
            missing = decision.missing | {Permission.MANAGE_MESSAGES}
            decision = dataclasses.replace(decision, delete=False, missing=missing)
        except discord.HTTPException:
            log.warning("Could not delete message %s", message.id, exc_info=True)
    if decision.timeout_seconds is not None and isinstance(message.author, discord.Member):
        try:
            await message.author.timeout(timedelta(seconds=decision.timeout_seconds), reason=AUTOMATIC_REASON)
            timed_out = True
        except discord.HTTPException:
            log.warning("Could not time out member %s", message.author.id, exc_info=True)
    return Outcome(decision, deleted, timed_out)


async def report_missing(
    channel: discord.TextChannel,
    message: discord.Message,
    decision: Decision,
    notices: MissingPermissionNotices,
    pacer: ChannelPacer,
) -> None:
    """One notice per missing permission and guild (again only after it came back and was lost)."""
    assert message.guild is not None
    new = await notices.to_report(message.guild.id, decision.missing)
    if not new:
        return
    names = " and ".join(PERMISSION_NAMES[p] for p in sorted(new))
    text = (
        f"⚠️ The moderation settings ask me to act on flagged images, but I lack **{names}** "
        f"(seen in <#{message.channel.id}>). I only log until that permission is granted; "
        "I will not mention this again for every image."
    )
    await send_paced(channel, pacer, content=text)
