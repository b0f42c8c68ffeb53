"""Stickers as discord.py gives them are fetched, with the default ``DISCORD_MEDIA_HOSTS``, from where
Discord serves them: PNG and APNG on the CDN, GIF only on the media proxy (``media.discordapp.net``,
a URL discord.py hard-codes); a Lottie sticker is named and skipped."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.images import MediaFetcher, ProxiedImage
from bot.images.from_discord import LOTTIE, MessageMedia
from bot.images.media import DEFAULT_MEDIA_HOSTS, parse_media_host


def _sticker(name: str, format_type: int) -> discord.StickerItem:
    data: Any = {"id": "1234567890123456789", "name": name, "format_type": format_type}
    return discord.StickerItem(state=None, data=data)  # type: ignore[arg-type]


def _posted(*stickers: discord.StickerItem) -> Any:
    return SimpleNamespace(content="", attachments=[], embeds=[], stickers=list(stickers), message_snapshots=[])


@pytest.mark.parametrize(
    ("format_type", "url", "name", "kind"),
    [
        (1, "https://cdn.discordapp.com/stickers/1234567890123456789.png", "wave.png", "image/png"),
        (2, "https://cdn.discordapp.com/stickers/1234567890123456789.png", "wave.png", "image/png"),
        (4, "https://media.discordapp.net/stickers/1234567890123456789.gif", "wave.gif", "image/gif"),
    ],
)
def test_a_sticker_is_an_image_on_discords_default_hosts(format_type: int, url: str, name: str, kind: str) -> None:
    fetcher = MediaFetcher(parse_media_host(host) for host in DEFAULT_MEDIA_HOSTS)
    media = MessageMedia(discord.Client(intents=discord.Intents.none()), fetcher, embed_wait=0)
    found = media.found(_posted(_sticker("wave", format_type)))
    (image,) = found.sources
    assert isinstance(image, ProxiedImage)
    assert (image.url, image.filename, image.content_type) == (url, name, kind)
    assert fetcher.allows(image.url) and found.notes == []


def test_a_lottie_sticker_is_named_and_skipped() -> None:
    fetcher = MediaFetcher(parse_media_host(host) for host in DEFAULT_MEDIA_HOSTS)
    media = MessageMedia(discord.Client(intents=discord.Intents.none()), fetcher, embed_wait=0)
    found = media.found(_posted(_sticker("dance", 3)))
    assert found.sources == [] and found.notes == [LOTTIE.format(name="dance")]
