"""The mod-log entry for a flagged image: its embed, the image attached as a spoiler, where it is
posted, and the "Moderator actions" lines that record who did what."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.moderation.config import ModerationSettings
from bot.moderation.service import CheckResult
from bot.moderation.verdict import Verdict, format_verdict
from bot.replies import NO_MENTIONS, ChannelPacer

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
    message: discord.Message,
    results: Sequence[CheckResult],
    action_line: str,
    *,
    index: int,
    total: int,
    public: bool = False,
) -> discord.Embed:
    """One entry: a flagged image, or every image of the message that needs review (coalesced)."""
    verdict = results[0].verdict
    if verdict.requires_review:
        title = "Image needs human review" if len(results) == 1 else f"{len(results)} images need human review"
    else:
        title = f"Image flagged · severity {verdict.severity}/3"
    if total > 1:
        title += f" · entry {index} of {total}"
    author = message.author
    embed = discord.Embed(title=title, colour=verdict_colour(verdict), timestamp=message.created_at)
    embed.add_field(
        name="Author",
        value=f"{author.mention} · {discord.utils.escape_markdown(author.name)} (`{author.id}`)",
        inline=True,
    )
    embed.add_field(name="Channel", value=f"<#{message.channel.id}>", inline=True)
    embed.add_field(name="Message", value=f"[Jump to message]({message.jump_url})", inline=True)
    if len(results) == 1:
        verdicts = format_verdict(verdict)
    else:
        verdicts = "\n".join(f"Image {i}: {format_verdict(r.verdict)}" for i, r in enumerate(results, start=1))
    embed.add_field(name="Verdict", value=verdicts[:1024], inline=False)
    embed.add_field(name="Automatic action", value=action_line, inline=False)
    source = "answered from the cache" if all(r.cached for r in results) else "checked by the model"
    shown = (
        "not attached: this mod-log channel is visible to @everyone (use Jump to message)"
        if public
        else "attached as a spoiler"
    )
    embed.set_footer(text=f"Image {source} · the image is {shown}")
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


def is_public(channel: discord.abc.GuildChannel) -> bool:
    """Visible to @everyone: no place for a re-upload of the flagged image itself."""
    return channel.permissions_for(channel.guild.default_role).view_channel


async def send_paced(channel: discord.TextChannel, pacer: ChannelPacer, **kwargs: Any) -> bool:
    """Send to the mod-log through the channel pacer like every other message; failures are logged."""
    try:
        async with pacer.slot(channel.id):
            await channel.send(allowed_mentions=NO_MENTIONS, **kwargs)
        return True
    except discord.HTTPException:
        log.warning("Could not post in the mod-log channel %s", channel.id, exc_info=True)
        return False


async def post_entry(
    channel: discord.TextChannel,
    message: discord.Message,
    results: Sequence[CheckResult],
    action_line: str,
    view: discord.ui.View,
    pacer: ChannelPacer,
    *,
    index: int,
    total: int,
) -> None:
    """Post one entry. The images go along as spoilers only where the bot may attach files and the
    mod-log is not public; otherwise the entry links to the message and says why."""
    assert message.guild is not None and message.guild.me is not None
    public = is_public(channel)
    kwargs: dict[str, Any] = {
        "embed": entry_embed(message, results, action_line, index=index, total=total, public=public),
        "view": view,
    }
    files = [f for i, r in enumerate(results, start=1) if (f := entry_file(r, f"{message.id}_{index}_{i}"))]
    if files and not public and channel.permissions_for(message.guild.me).attach_files:
        kwargs["files"] = files
    await send_paced(channel, pacer, **kwargs)


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
