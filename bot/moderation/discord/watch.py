"""Moderating a message posted in a watched channel: check its images, act as configured and
allowed, store the audit trail, and post what moderators should see in the mod-log."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from bot.images import AttachmentLike
from bot.moderation.action_ids import ActionRef, ButtonAction
from bot.moderation.config import ModerationSettings
from bot.moderation.discord.buttons import entry_view
from bot.moderation.discord.enforce import Outcome, enforce, report_missing
from bot.moderation.discord.entry import mod_log_channel, post_entry
from bot.moderation.policy import Decision
from bot.moderation.service import ModerationService

log = logging.getLogger(__name__)


async def moderate(
    message: discord.Message,
    settings: ModerationSettings,
    service: ModerationService,
    images: Sequence[AttachmentLike] | None = None,
) -> None:
    """``images``: what to check (the message's images, or those an edit added); default its attachments."""
    assert message.guild is not None
    guild = message.guild
    images = message.attachments if images is None else images  # type: ignore[assignment]
    results = await service.check_attachments(guild.id, settings, images)
    ids = {"channel_id": message.channel.id, "message_id": message.id, "user_id": message.author.id}
    for result in results:
        await service.record_verdict(guild.id, result, **ids)
    flagged = [r for r in results if r.verdict.flagged]
    worst = max(flagged, key=lambda r: r.verdict.severity) if flagged else None
    outcome = Outcome(Decision(log=any(r.verdict.should_log for r in results)))
    if worst is not None:
        outcome = await enforce(message, worst.verdict, settings, service)
        await service.record_decision(
            guild.id, worst.verdict, outcome.decision, deleted=outcome.deleted, timed_out=outcome.timed_out, **ids
        )
    if not outcome.decision.log:
        return
    channel = mod_log_channel(guild, settings)
    if channel is None:
        log.warning("Guild %s has flagged images but no usable mod-log channel", guild.id)
        return
    ref = ActionRef(ButtonAction.DELETE, guild.id, message.channel.id, message.id, message.author.id)
    logged = [r for r in results if r.verdict.should_log]
    for index, result in enumerate(logged, start=1):
        view = entry_view(ref, outcome.done, settings.timeout_seconds)
        await post_entry(channel, message, result, outcome.action_line(), view, index=index, total=len(logged))
    if worst is not None:
        await report_missing(channel, message, outcome.decision, service.notices)
