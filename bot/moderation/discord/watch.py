"""Moderating a message posted in a watched channel: check its images, act as configured and
allowed, store the audit trail, and post what moderators should see in the mod-log."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import discord

from bot.guard import Refusal
from bot.images import CONVERSATION_DETAIL, AttachmentLike, Detail
from bot.moderation.action_ids import ActionRef, ButtonAction
from bot.moderation.config import ModerationSettings
from bot.moderation.discord.buttons import entry_view
from bot.moderation.discord.enforce import Outcome, enforce, report_missing
from bot.moderation.discord.entry import mod_log_channel, post_entry, send_paced
from bot.moderation.policy import Decision
from bot.moderation.service import CheckResult, ModerationService
from bot.replies import ChannelPacer

OVER_BUDGET_NOTICE = (
    "This server's daily moderation budget ({limit:,} tokens) has no room for more checks today. It resets at "
    "midnight UTC (<t:{resets_at}:R>). Until then, images posted in watched channels are not checked; each is "
    "recorded as needing review."
)

log = logging.getLogger(__name__)


async def moderate(
    message: discord.Message,
    settings: ModerationSettings,
    service: ModerationService,
    pacer: ChannelPacer,
    images: Sequence[AttachmentLike] | None = None,
    *,
    expect: Detail | None = None,
) -> None:
    """Check the message's images (``images``: those to check, e.g. the ones an edit added; default its
    attachments) and act. Members with an exempt role are not checked at all. ``expect``: describe or
    chat will use the images with that policy after the verdict (one download and decode for both).

    The mod-log cannot be flooded: every send is paced with the channel's other messages, a flagged
    image gets one entry, the images that need review share one entry per message, and a failing
    model service is one notice per outage instead of an entry per image."""
    try:
        await _moderate(message, settings, service, pacer, images, expect)
    finally:  # describe and chat waiting for the verdict go ahead (a no-op once it was given)
        service.gate.settle(message.id, flagged=False)


async def _moderate(
    message: discord.Message,
    settings: ModerationSettings,
    service: ModerationService,
    pacer: ChannelPacer,
    images: Sequence[AttachmentLike] | None,
    expect: Detail | None,
) -> None:
    assert message.guild is not None
    guild = message.guild
    if is_exempt(message, settings):
        return
    images = message.attachments if images is None else images  # type: ignore[assignment]
    checked = await service.check_attachments(guild.id, settings, images, expect=expect)
    results = [r for r in checked if r.over_budget is None]  # not checked: no entry, no action
    flagged = [r for r in results if r.verdict.flagged]
    service.gate.settle(message.id, flagged=bool(flagged))  # before the mod-log: nobody waits for that
    if flagged:  # not described nor answered: nothing is kept for describe or chat
        for image in images:
            service.shared.forget(image)
    ids = {"channel_id": message.channel.id, "message_id": message.id, "user_id": message.author.id}
    for result in checked:
        await service.record_verdict(guild.id, result, **ids)
    over_budget = [r.over_budget for r in checked if r.over_budget is not None]
    if over_budget:
        await notice_over_budget(guild, settings, service, pacer, over_budget[0])
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


def is_exempt(message: discord.Message, settings: ModerationSettings) -> bool:
    author = message.author
    return isinstance(author, discord.Member) and settings.exempts(role.id for role in author.roles)


async def withheld(message: discord.Message, service: ModerationService) -> bool:
    """Whether describe and chat must leave this message's images alone. In a watched channel they
    wait for the verdict first; a flagged message is not described, answered or remembered (its alt
    text would quote a scam's URL as a clickable bot message, and keep it in memory)."""
    if message.guild is None:
        return False
    settings = await service.settings(message.guild.id)
    parent_id = getattr(message.channel, "parent_id", None)
    if settings is None or not settings.watches(message.channel.id, parent_id) or is_exempt(message, settings):
        return False
    return await service.gate.flagged(message.id)


FLAGGED_IMAGE = "Moderation flagged the image in that message, so I leave it alone."
"""The answer to **Describe image** or **Extract text** on a flagged message (nothing of it repeated)."""


async def flagged_earlier(
    earlier: discord.Message, images: Sequence[AttachmentLike], service: ModerationService
) -> bool:
    """Whether the images of ``earlier``, which a question brings in (the message it replies to, "the
    image above") or a context menu is used on, are flagged. In a watched channel they are checked as
    when they were posted: the verdict cache answers for an image already checked, a check still
    waiting for the model is shared, an image never checked is checked now. Nothing is recorded or
    done about them: the one asking did not post them."""
    guild = earlier.guild
    if guild is None:
        return False
    settings = await service.settings(guild.id)
    parent_id = getattr(earlier.channel, "parent_id", None)
    if settings is None or not settings.watches(earlier.channel.id, parent_id) or is_exempt(earlier, settings):
        return False
    results = await service.check_attachments(guild.id, settings, images, expect=CONVERSATION_DETAIL)
    return any(result.verdict.flagged for result in results)


def outage_notice(message: discord.Message, result: CheckResult) -> str:
    return (
        f"⚠️ Images cannot be checked right now: {result.verdict.review_reason} (seen in <#{message.channel.id}>). "
        "Until a check succeeds again, images are not checked and nothing is done about them; "
        "I will not post this for every image."
    )


async def notice_over_budget(
    guild: discord.Guild, settings: ModerationSettings, service: ModerationService, pacer: ChannelPacer,
    refusal: Refusal,
) -> None:
    """One mod-log notice per server and UTC day that images go unchecked (never one per image)."""
    channel = mod_log_channel(guild, settings)
    if channel is None or not await service.guard.once_a_day(f"moderation-budget:{guild.id}"):
        return
    text = OVER_BUDGET_NOTICE.format(limit=refusal.limit, resets_at=math.ceil(refusal.resets_at))
    await send_paced(channel, pacer, content=text)
