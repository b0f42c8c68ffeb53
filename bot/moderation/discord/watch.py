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
from bot.moderation.discord.entry import mod_log_channel, post_entry, send_paced
from bot.moderation.policy import Decision
from bot.moderation.service import CheckResult, ModerationService
from bot.replies import ChannelPacer

log = logging.getLogger(__name__)


async def moderate(
    message: discord.Message,
    settings: ModerationSettings,
    service: ModerationService,
    pacer: ChannelPacer,
    images: Sequence[AttachmentLike] | None = None,
) -> None:
    """Check the message's images (``images``: those to check, e.g. the ones an edit added; default its
    attachments) and act. Members with an exempt role are not checked at all.

    The mod-log cannot be flooded: every send is paced with the channel's other messages, a flagged
    image gets one entry, the images that need review share one entry per message, and a failing
    model service is one notice per outage instead of an entry per image."""
    assert message.guild is not None
    guild = message.guild
    if isinstance(message.author, discord.Member) and settings.exempts(r.id for r in message.author.roles):
        return
    images = message.attachments if images is None else images  # type: ignore[assignment]
    results = await service.check_attachments(guild.id, settings, images)
    ids = {"channel_id": message.channel.id, "message_id": message.id, "user_id": message.author.id}
    for result in results:
        await service.record_verdict(guild.id, result, **ids)
    flagged = [r for r in results if r.verdict.flagged]
    worst = max(flagged, key=lambda r: r.verdict.severity) if flagged else None
    outcome = Outcome(Decision(log=any(r.verdict.should_log for r in results)))
    if worst is not None:
        outcome = await enforce(message, worst.verdict, settings, service, pacer)
        await service.record_decision(
            guild.id, worst.verdict, outcome.decision, deleted=outcome.deleted, timed_out=outcome.timed_out, **ids
        )
    if not outcome.decision.log:
        return
    channel = mod_log_channel(guild, settings)
    if channel is None:
        log.warning("Guild %s has flagged images but no usable mod-log channel", guild.id)
        return
    failed = [r for r in results if r.service_failed]
    if len(failed) < len(results):
        await service.outages.recovered(guild.id)
    if failed and await service.outages.first(guild.id):
        await send_paced(channel, pacer, content=outage_notice(message, failed[0]))
    review = [r for r in results if r.verdict.requires_review and not r.service_failed]
    groups = [[r] for r in flagged if r.verdict.should_log] + ([review] if review else [])
    ref = ActionRef(ButtonAction.DELETE, guild.id, message.channel.id, message.id, message.author.id)
    for index, group in enumerate(groups, start=1):
        view = entry_view(ref, outcome.done, settings.timeout_seconds)
        await post_entry(
            channel, message, group, outcome.action_line(), view, pacer, index=index, total=len(groups)
        )
    if worst is not None:
        await report_missing(channel, message, outcome.decision, service.notices, pacer)


def outage_notice(message: discord.Message, result: CheckResult) -> str:
    return (
        f"⚠️ Images cannot be checked right now: {result.verdict.review_reason} (seen in <#{message.channel.id}>). "
        "Until a check succeeds again, images are not checked and nothing is done about them; "
        "I will not post this for every image."
    )
