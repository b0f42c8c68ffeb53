"""The images of a Discord message: every feature asks :class:`MessageMedia` the same question.

A message shows images as attachments, as link previews (embeds: ``image``, ``thumbnail``, a
video's thumbnail), as stickers, inside forwarded messages (their snapshots), and, for a question,
in the message it replies to; a custom emoji counts when a question is about one. Embeds, stickers
and emoji become :class:`~bot.images.media.ProxiedImage`, fetched only through Discord's media proxy
on the exact configured origins; anything else is named in a note and never requested.

Discord adds a link's preview a moment after the message (a MESSAGE_UPDATE): :meth:`MessageMedia.images`
can wait for it, up to ``EMBED_WAIT_SECONDS``. This is the Discord-reading part of ``bot.images``;
everything it returns is plain data.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import discord

from bot.images.attachments import is_image
from bot.images.media import NOT_FETCHED, MediaFetcher, MessageImages, ProxiedImage

log = logging.getLogger(__name__)

_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_SPOILER = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)
_CUSTOM_EMOJI = re.compile(r"<(a?):(\w{1,32}):(\d{15,21})>")
LOTTIE = "Skipped the sticker `{name}`: it is an animated Lottie sticker, which I can't read."

Snapshot = discord.Message | discord.MessageSnapshot


def _safe(text: str) -> str:
    return text.replace("`", "'")[:80]


class MessageMedia:
    """The bot's one reader of message images (``bot.media``), so every feature sees the same ones."""

    def __init__(self, client: discord.Client, fetcher: MediaFetcher, *, embed_wait: float) -> None:
        self.client = client
        self.fetcher = fetcher
        self.embed_wait = embed_wait

    def found(self, message: Snapshot, *, emoji: bool = False) -> MessageImages:
        """What ``message`` shows now (its forwarded snapshots included), without waiting or fetching."""
        found = MessageImages(links=bool(_LINK.search(message.content or "")))
        spoilered = " ".join(_SPOILER.findall(message.content or ""))
        for attachment in message.attachments:
            if is_image(attachment):
                found.add(attachment, f"attachment:{attachment.id}")
        for embed in message.embeds:
            self._add_embed(found, embed, spoiler=bool(embed.url) and embed.url in spoilered)
        for sticker in message.stickers:
            self._add_sticker(found, sticker)
        for snapshot in getattr(message, "message_snapshots", None) or []:
            forwarded = self.found(snapshot)
            forwarded.links = False  # a forward's previews came with it: none is on its way
            found.extend(forwarded)
        if emoji and not found.sources:
            for animated, name, emoji_id in _CUSTOM_EMOJI.findall(message.content or ""):
                url = discord.PartialEmoji(name=name, id=int(emoji_id), animated=bool(animated)).url
                found.add(ProxiedImage.at(url, self.fetcher, name=f"{name}.{'gif' if animated else 'png'}"), url)
        return found

    async def images(self, message: discord.Message, *, emoji: bool = False, wait: bool = False) -> MessageImages:
        """The images ``message`` shows; ``wait``: a message with links but nothing to look at yet
        waits up to ``embed_wait`` seconds for Discord's preview."""
        found = self.found(message, emoji=emoji)
        if wait and found.waiting_for_preview:
            message = await self.after_preview(message)
            found = self.found(message, emoji=emoji)
        return found

    async def after_preview(self, message: discord.Message) -> discord.Message:
        """``message`` once Discord has added embeds to it, or as it is after ``embed_wait`` seconds."""
        if message.embeds or self.embed_wait <= 0:
            return message

        def previewed(update: discord.RawMessageUpdateEvent) -> bool:
            return update.message_id == message.id and bool(update.data.get("embeds"))

        try:
            update = await self.client.wait_for("raw_message_edit", check=previewed, timeout=self.embed_wait)
        except TimeoutError:
            log.debug("No preview for message %s within %.1f s", message.id, self.embed_wait)
            return message
        return update.message

    async def replied_to(self, message: discord.Message) -> discord.Message | None:
        """The message ``message`` replies to, whose images a question is about ("what does this
        say?" on someone's image); ``None`` for a forward, a deleted message or the bot's own answer."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        if reference.type is discord.MessageReferenceType.forward:
            return None  # a forward carries its images in its snapshots
        earlier = reference.resolved or reference.cached_message
        if earlier is None and reference.channel_id == message.channel.id:
            try:
                earlier = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                log.info("Cannot read the message %s replied to", reference.message_id)
                return None
        if not isinstance(earlier, discord.Message) or earlier.author == self.client.user:
            return None  # deleted, or the bot's own answer (its images are in memory already)
        return earlier

    def _add_embed(self, found: MessageImages, embed: discord.Embed, *, spoiler: bool) -> None:
        for media in (embed.image, embed.thumbnail):
            proxy_url = media.proxy_url
            if not proxy_url and not media.url:
                continue
            if proxy_url and self.fetcher.allows(proxy_url):
                found.add(ProxiedImage.at(proxy_url, self.fetcher, spoiler=spoiler), proxy_url)
            else:
                log.info("Not fetching an embed image outside the media proxy (%s)", proxy_url or media.url)
                note = f"Skipped an image linked from `{_safe(_host(embed.url or media.url or ''))}`: {NOT_FETCHED}"
                if note not in found.notes:
                    found.notes.append(note)
            return  # one image per embed: the large one when there is one, else the thumbnail

    def _add_sticker(self, found: MessageImages, sticker: discord.StickerItem) -> None:
        if sticker.format is discord.StickerFormatType.lottie:
            found.notes.append(LOTTIE.format(name=_safe(sticker.name)))
            return
        name = f"{sticker.name}.{sticker.format.file_extension}"
        found.add(ProxiedImage.at(sticker.url, self.fetcher, name=name), f"sticker:{sticker.id}")

    async def close(self) -> None:
        await self.fetcher.close()


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "a link"
    except ValueError:
        return "a link"
