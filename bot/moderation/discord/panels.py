"""What moderators see in reply to `/moderation show|setup|stats` and the "Check image" menu."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import discord

from bot.moderation.categories import Category
from bot.moderation.config import Action, ModerationSettings
from bot.moderation.discord.entry import is_public, mod_log_channel, verdict_colour
from bot.moderation.policy import format_duration
from bot.moderation.service import CheckResult
from bot.moderation.stats import format_summary, summarize
from bot.moderation.verdict import format_verdict
from bot.store import AuditGroup

NO_MESSAGE_CONTENT = (
    "I run without the Message Content intent, so I cannot see images in messages that don't mention me: "
    "attachments, link previews and forwarded messages in watched channels are not checked (stickers are). "
    "**Check image** (Apps menu on a message) still checks one on request."
)


def settings_embed(guild: discord.Guild, settings: ModerationSettings, *, message_content: bool) -> discord.Embed:
    """The settings, with a "Check" field naming what keeps them from working (``message_content``:
    whether the bot has the Message Content intent)."""
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
    if settings.exempt_role_ids:
        exempt = ", ".join(f"<@&{rid}>" for rid in sorted(settings.exempt_role_ids))[:1000]
        embed.add_field(name="Exempt roles (never checked)", value=exempt, inline=False)
    rules = settings.rules or "(none: the categories alone decide)"
    embed.add_field(name="Rules", value=rules if len(rules) <= 1024 else rules[:1023] + "…", inline=False)
    warnings = settings_warnings(guild, settings, message_content=message_content)
    if warnings:
        embed.add_field(name="Check", value="\n".join(f"⚠️ {w}" for w in warnings)[:1024], inline=False)
    return embed


def settings_warnings(guild: discord.Guild, settings: ModerationSettings, *, message_content: bool) -> list[str]:
    warnings = []
    if settings.mod_log_channel_id is None:
        warnings.append("No mod-log channel: findings are only counted in the stats.")
    elif (channel := mod_log_channel(guild, settings)) is None:
        warnings.append("I cannot post in the mod-log channel.")
    elif is_public(channel):
        warnings.append(
            "The mod-log channel is visible to everyone: flagged images are not attached there, only linked."
            " Hide it from @everyone to see them in the log."
        )
    acts = {a for a in settings.actions.values() if a is not Action.LOG}
    me = guild.me
    if acts and me is not None and not me.guild_permissions.manage_messages:
        warnings.append("Automatic deletes need the Manage Messages permission.")
    if Action.DELETE_TIMEOUT in acts and me is not None and not me.guild_permissions.moderate_members:
        warnings.append("Automatic timeouts need the Timeout Members permission.")
    if not message_content:
        warnings.append(NO_MESSAGE_CONTENT)
    return warnings


def stats_embed(tallies: Mapping[int, Mapping[AuditGroup, int]]) -> discord.Embed:
    """Counts per category and action for each window (days -> the store's tally of that window)."""
    embed = discord.Embed(title="Image moderation statistics", colour=discord.Colour.blurple())
    for days, tally in tallies.items():
        embed.add_field(name=f"Last {days} days", value=format_summary(days, summarize(tally)), inline=False)
    return embed


def check_embeds(results: Sequence[CheckResult]) -> list[discord.Embed]:
    """One embed per image for a moderator's on-demand check."""
    embeds = []
    for index, result in enumerate(results, start=1):
        verdict = result.verdict
        if verdict.requires_review:
            title = f"Image {index}: needs human review"
        elif verdict.flagged:
            title = f"Image {index}: flagged, severity {verdict.severity}/3"
        else:
            title = f"Image {index}: no problem found"
        embed = discord.Embed(title=title, description=format_verdict(verdict), colour=verdict_colour(verdict))
        embed.set_footer(text="From the cache" if result.cached else "Checked by the model")
        embeds.append(embed)
    return embeds
