"""The mod-log entry for a flagged image: its embed, the image attached as a spoiler, where it is
posted, and the "Moderator actions" lines that record who did what."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.moderation.config import ModerationSettings
from bot.moderation.service import CheckResult
from bot.moderation.verdict import Verdict, format_verdict
from bot.replies import NO_MENTIONS

log = logging.getLogger(__name__)

MODERATOR_ACTIONS_FIELD = "Moderator actions"
SEVERITY_COLOURS = {1: discord.Colour.gold(), 2: discord.Colour.orange(), 3: discord.Colour.red()}
REVIEW_COLOUR = discord.Colour.blurple()
DONE_COLOUR = discord.Colour.dark_grey()
CLEAN_COLOUR = discord.Colour.green()


def verdict_colour(verdict: Verdict) -> discord.Colour:
    if verdict.requires_review:
        return REVIEW_COLOUR
    return SEVERITY_COLOURS[verdict.severity] if verdict.flagged else CLEAN_COLOUR


def entry_embed(
    message: discord.Message, result: CheckResult, action_line: str, *, index: int, total: int
) -> discord.Embed:
    verdict = result.verdict
    title = "Image needs human review" if verdict.requires_review else f"Image flagged · severity {verdict.severity}/3"
    if total > 1:
        title += f" · image {index} of {total}"
    author = message.author
    embed = discord.Embed(title=title, colour=verdict_colour(verdict), timestamp=message.created_at)
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


def entry_file(result: CheckResult, stem: str) -> discord.File | None:
    """The prepared image as a spoiler attachment (the original message may be gone by now)."""
    if result.image is None:
        return None
    extension = "png" if result.image.mime == "image/png" else "jpg"
    return discord.File(io.BytesIO(result.image.data), filename=f"{stem}.{extension}", spoiler=True)


def mod_log_channel(guild: discord.Guild, settings: ModerationSettings) -> discord.TextChannel | None:
    """The configured mod-log channel, if it exists and the bot may post there."""
    if settings.mod_log_channel_id is None:
        return None
    channel = guild.get_channel(settings.mod_log_channel_id)
    if not isinstance(channel, discord.TextChannel) or guild.me is None:
        return None
    return channel if channel.permissions_for(guild.me).send_messages else None


async def post_entry(
    channel: discord.TextChannel,
    message: discord.Message,
    result: CheckResult,
    action_line: str,
    view: discord.ui.View,
    *,
    index: int,
    total: int,
) -> None:
    """Post one entry (image attached only where the bot may attach files); failures are logged."""
    assert message.guild is not None and message.guild.me is not None
    kwargs: dict[str, Any] = {
        "embed": entry_embed(message, result, action_line, index=index, total=total),
        "view": view,
        "allowed_mentions": NO_MENTIONS,
    }
    file = entry_file(result, f"{message.id}_{index}")
    if file is not None and channel.permissions_for(message.guild.me).attach_files:
        kwargs["file"] = file
    try:
        await channel.send(**kwargs)
    except discord.HTTPException:
        log.warning("Could not post a mod-log entry in channel %s", channel.id, exc_info=True)


def with_moderator_line(embed: discord.Embed, line: str, *, finished: bool) -> discord.Embed:
    """The entry's embed with one more line under "Moderator actions" (greyed out once finished)."""
    embed = embed.copy()
    for i, field in enumerate(embed.fields):
        if field.name == MODERATOR_ACTIONS_FIELD:
            embed.set_field_at(i, name=MODERATOR_ACTIONS_FIELD, value=f"{field.value}\n{line}"[-1024:], inline=False)
            break
    else:
        embed.add_field(name=MODERATOR_ACTIONS_FIELD, value=line, inline=False)
    if finished:
        embed.colour = DONE_COLOUR
    return embed
