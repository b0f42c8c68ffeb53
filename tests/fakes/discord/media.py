"""Discord's media proxy on the emulator: link previews, stickers and custom emoji.

Discord unfurls a link a moment after the message is posted: it fetches the outside page itself
and sends a MESSAGE_UPDATE whose embeds carry the outside ``url`` and a ``proxy_url`` on its own
media proxy. Here a test registers what a link shows (:meth:`MediaProxy.link`); the emulator never
fetches the outside URL, it serves the registered bytes at ``/external/...`` on its own origin.
Stickers are served at ``/stickers/{id}.{ext}`` and custom emoji at ``/emojis/{id}.{ext}``, the
paths discord.py builds from ``Asset.BASE`` (which ``point_discord_py`` points here). A GIF sticker is
the exception: Discord serves it only on its media proxy, and discord.py hard-codes that URL
(``https://media.discordapp.net/stickers/{id}.gif``); :func:`gif_stickers_at` moves it here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import mimetypes
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from .state import snowflake

JSON = dict[str, Any]

STICKER_PNG, STICKER_APNG, STICKER_LOTTIE, STICKER_GIF = 1, 2, 3, 4
_STICKER_EXTENSIONS = {STICKER_PNG: "png", STICKER_APNG: "png", STICKER_LOTTIE: "json", STICKER_GIF: "gif"}
DISCORD_MEDIA_PROXY = "https://media.discordapp.net"
"""Where discord.py says GIF stickers are (``StickerItem.url``, ``Sticker.url``), whatever ``Asset.BASE`` is."""


@contextlib.contextmanager
def gif_stickers_at(base_url: str) -> Iterator[None]:
    """While the block runs, the GIF stickers discord.py reads point at ``base_url`` instead of
    Discord's media proxy: the URL it builds is rewritten right after, nothing else changes (restored
    on exit)."""
    import discord.sticker

    def moved(build: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(build)
        def building(sticker: Any, *args: Any, **kwargs: Any) -> None:
            build(sticker, *args, **kwargs)
            if sticker.url.startswith(DISCORD_MEDIA_PROXY + "/stickers/"):
                sticker.url = base_url + sticker.url.removeprefix(DISCORD_MEDIA_PROXY)

        return building

    builders = [(discord.sticker.StickerItem, "__init__"), (discord.sticker.Sticker, "_from_data")]
    originals = [getattr(cls, name) for cls, name in builders]
    for (cls, name), original in zip(builders, originals, strict=True):
        setattr(cls, name, moved(original))
    try:
        yield
    finally:
        for (cls, name), original in zip(builders, originals, strict=True):
            setattr(cls, name, original)


@dataclass(frozen=True)
class Sticker:
    id: int
    name: str
    format_type: int

    def item(self) -> JSON:
        """The ``sticker_items`` entry of a message."""
        return {"id": str(self.id), "name": self.name, "format_type": self.format_type}


@dataclass
class MediaProxy:
    base_url: str = "http://127.0.0.1"  # set once the server is bound
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    """Path -> (bytes, content type) served on the proxy."""
    previews: dict[str, list[JSON]] = field(default_factory=dict)
    """Outside URL -> the embeds Discord adds to a message containing it."""
    downloads: list[str] = field(default_factory=list)
    """Paths fetched, in order."""
    in_flight: int = 0
    """Requests being answered now."""
    most_at_once: int = 0
    """The most requests ever answered at once."""
    _gathering: tuple[int, float, asyncio.Event] | None = None

    def answer_together(self, count: int, *, timeout: float) -> None:
        """Hold every response until ``count`` requests are in flight at once, or for ``timeout``
        seconds (then each is answered anyway): a client that fetches them one or two at a time is
        seen in :attr:`most_at_once` without anyone waiting forever."""
        self._gathering = (count, timeout, asyncio.Event())

    def add_routes(self, app: web.Application) -> None:
        for prefix in ("/external/", "/stickers/", "/emojis/"):
            app.router.add_get(prefix + "{tail:.+}", self.serve)

    def host(self, path: str, data: bytes, content_type: str | None = None) -> str:
        """Serve ``data`` at ``path`` on the proxy; returns its URL."""
        kind = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        self.files[path] = (data, kind)
        return self.base_url + path

    def proxy_url_for(self, url: str, data: bytes, content_type: str | None = None) -> str:
        """Where Discord's proxy serves an outside image: ``/external/<token>/https/host/path``."""
        parts = urllib.parse.urlsplit(url)
        path = f"/external/{secrets.token_urlsafe(8)}/{parts.scheme}/{parts.netloc}{parts.path or '/'}"
        return self.host(path, data, content_type)

    def link(self, url: str, data: bytes, *, kind: str = "image", content_type: str | None = None) -> JSON:
        """Register what Discord shows for ``url``: an image (``kind="image"``), a GIF-picker video
        (``"gifv"``: a thumbnail and an mp4) or a page with a large image (``"article"``). A message
        whose content contains ``url`` is unfurled into this embed. Returns the embed."""
        embed = self.embed(url, data, kind=kind, content_type=content_type)
        self.previews.setdefault(url, []).append(embed)
        return embed

    def embed(self, url: str, data: bytes, *, kind: str = "image", content_type: str | None = None) -> JSON:
        """The embed Discord builds for an outside ``url`` showing the image ``data``."""
        media = {"url": url, "proxy_url": self.proxy_url_for(url, data, content_type), "flags": 0}
        media |= _size_and_type(data)
        if kind == "image":
            return {"type": "image", "url": url, "thumbnail": media}
        if kind == "gifv":
            video = {"url": url + ".mp4", "proxy_url": self.proxy_url_for(url + ".mp4", b"\x00" * 16, "video/mp4")}
            return {"type": "gifv", "url": url, "provider": {"name": "Tenor"}, "thumbnail": media, "video": video}
        if kind == "article":
            return {"type": "article", "url": url, "title": "A page", "image": media}
        raise ValueError(f"unknown preview kind {kind!r}")

    def previews_for(self, content: str) -> list[JSON]:
        return [embed for url, embeds in self.previews.items() if url in content for embed in embeds]

    def sticker(self, name: str, data: bytes, format_type: int = STICKER_PNG) -> Sticker:
        sticker = Sticker(snowflake(), name, format_type)
        content_type = "application/json" if format_type == STICKER_LOTTIE else None
        self.host(f"/stickers/{sticker.id}.{_STICKER_EXTENSIONS[format_type]}", data, content_type)
        return sticker

    def emoji(self, name: str, data: bytes, *, animated: bool = False) -> str:
        """Register a custom emoji's image; returns its message markup ``<:name:id>``."""
        emoji_id = snowflake()
        self.host(f"/emojis/{emoji_id}.{'gif' if animated else 'png'}", data)
        return f"<{'a' if animated else ''}:{name}:{emoji_id}>"

    async def serve(self, request: web.Request) -> web.Response:
        found = self.files.get(request.path)
        if found is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(request.path)
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            if self._gathering is not None:
                count, timeout, together = self._gathering
                if self.in_flight >= count:
                    together.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(together.wait(), timeout)
            data, content_type = found
            return web.Response(body=data, headers={"Content-Type": content_type})
        finally:
            self.in_flight -= 1


def _size_and_type(data: bytes) -> JSON:
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = Image.MIME.get(image.format or "")
            return {"width": image.width, "height": image.height, **({"content_type": mime} if mime else {})}
    except Exception:  # not an image: Discord's preview then has no size either
        return {}
