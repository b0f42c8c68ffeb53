"""Images a message only links to (embeds, stickers, emoji), fetched through Discord's media proxy only.

An embed's ``url`` is the outside site; its ``proxy_url`` is Discord's media proxy. Fetching anything
but the proxy would let anyone who posts a link make the bot request any address (SSRF), so
:class:`MediaFetcher` requests a URL only when its origin (scheme, host, port) is exactly one of the
configured ``DISCORD_MEDIA_HOSTS``, never follows a redirect, and never reads more than a byte cap.

:class:`ProxiedImage` is shaped like ``discord.Attachment`` (see ``AttachmentLike``), so everything
that downloads and prepares attachments takes it as it is.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import posixpath
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from bot.images.attachments import AttachmentLike
from bot.images.budget import ByteBudget
from bot.images.codec import MAX_INPUT_BYTES, ImageRejected

log = logging.getLogger(__name__)

DEFAULT_MEDIA_HOSTS = (
    "cdn.discordapp.com",
    "media.discordapp.net",
    "images-ext-1.discordapp.net",
    "images-ext-2.discordapp.net",
)
FETCH_TIMEOUT_SECONDS = 20.0
"""A whole proxied download, headers to last byte."""
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

NOT_FETCHED = "I did not open it: I only fetch images through Discord's media proxy."
LINK_NOT_OPENED = "I don't open links myself; I look only at images Discord shows in a preview."
COULD_NOT_FETCH = "I could not fetch it from Discord's media proxy."
TOO_LARGE = f"That image is too large; the limit is {MAX_INPUT_BYTES // 2**20} MB."


class MediaRefused(ImageRejected):
    """A proxied image was not (or could not be) fetched; ``reason`` is a sentence for the user."""


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of an http(s) URL (port made explicit), or None for anything else.

    A URL with user info (``https://cdn.discordapp.com@evil.example/``) has no origin here: it is
    never what Discord gives, and parsers disagree about it.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"


def parse_media_host(entry: str) -> str:
    """One ``DISCORD_MEDIA_HOSTS`` entry as an origin: a bare host means https on 443; a whole origin
    (``http://127.0.0.1:8080``) means exactly that. Raises ValueError for anything else."""
    entry = entry.strip()
    if "://" not in entry:
        host = entry.lower()
        if not host or any(not (c.isalnum() or c in ".-") for c in host) or host.startswith((".", "-")):
            raise ValueError(f"{entry!r} is not a host name")
        return f"https://{host}:443"
    parts = urllib.parse.urlsplit(entry)
    origin = origin_of(entry)
    if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{entry!r} is not an origin like https://host or http://host:port")
    return origin


class MediaFetcher:
    """Fetches proxied images: exact origins only, no redirects, at most ``max_bytes``.

    One aiohttp session, made on first use (inside the loop) and closed by :meth:`close`. It ignores
    proxy variables from the environment and keeps no cookies. ``timeout`` bounds the request up to
    its headers and, separately, the body: waiting for room in between is not the fetch's time.
    """

    def __init__(self, origins: Iterable[str], *, timeout: float = FETCH_TIMEOUT_SECONDS) -> None:
        self.origins = frozenset(origins)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def allows(self, url: str) -> bool:
        return origin_of(url) in self.origins

    async def fetch(
        self, url: str, *, max_bytes: int = MAX_INPUT_BYTES, reserve: Callable[[int], Awaitable[None]] | None = None
    ) -> bytes:
        """The body at ``url``, or :class:`MediaRefused` (never requested unless :meth:`allows`).

        ``reserve`` is awaited with the most the body may take once the headers are in: its
        ``Content-Length`` when the proxy sends one (refused at once above ``max_bytes``), else
        ``max_bytes``. The body is cut off, and refused, past what was reserved.
        """
        if not self.allows(url):
            raise MediaRefused(NOT_FETCHED)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None), trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session.get(url, allow_redirects=False)
            async with response:
                if response.status != 200:
                    log.info("Media proxy answered %d for a proxied image", response.status)
                    raise MediaRefused(COULD_NOT_FETCH)
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise MediaRefused(TOO_LARGE)
                limit = max_bytes if declared is None else declared
                if reserve is not None:
                    await reserve(limit)
                async with asyncio.timeout(self._timeout):
                    return await _read_within(response, limit)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info("Could not fetch a proxied image: %r", error)
            raise MediaRefused(COULD_NOT_FETCH) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_within(response: aiohttp.ClientResponse, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise MediaRefused(TOO_LARGE)
    return bytes(body)


@dataclass(frozen=True)
class ProxiedImage:
    """An image known by its media-proxy URL, shaped like ``discord.Attachment``.

    ``size`` is what it may take at most: the real size is only known from the response, so
    :meth:`read_held` holds room in the download gate once the headers say how much.
    """

    url: str
    filename: str
    fetcher: MediaFetcher = field(repr=False, compare=False)
    content_type: str | None = None
    spoiler: bool = False
    size: int = MAX_INPUT_BYTES

    @classmethod
    def at(cls, url: str, fetcher: MediaFetcher, *, name: str | None = None, spoiler: bool = False) -> ProxiedImage:
        filename = name or file_name_of(url)
        kind = mimetypes.guess_type(filename)[0]
        return cls(url, filename, fetcher, kind if kind and kind.startswith("image/") else "image/*", spoiler)

    async def read(self) -> bytes:
        return await self.fetcher.fetch(self.url, max_bytes=self.size)

    async def read_held(self, gate: ByteBudget) -> tuple[bytes, int]:
        """The bytes and the room they hold in ``gate`` (the response's ``Content-Length``, else
        :attr:`size`), to be released by the caller; nothing is held when it raises."""
        held = 0

        async def reserve(size: int) -> None:
            nonlocal held
            await gate.acquire(size)
            held = size

        try:
            return await self.fetcher.fetch(self.url, max_bytes=self.size, reserve=reserve), held
        except BaseException:
            if held:
                gate.release(held)
            raise

    def is_spoiler(self) -> bool:
        return self.spoiler


def file_name_of(url: str) -> str:
    """A readable name for a proxied image: the last part of its path (``cat.png``), or ``image``."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = posixpath.basename(path.rstrip("/"))
    return name[-80:] or "image"


@dataclass
class MessageImages:
    """The images a message shows, in order, and a note for each one left out."""

    sources: list[AttachmentLike] = field(default_factory=list)
    """Attachment-shaped (``AttachmentLike``): attachments, then proxied embeds, stickers, emoji."""
    keys: list[str] = field(default_factory=list)
    """Per source: what identifies it within the message (an attachment id, a proxy URL)."""
    notes: list[str] = field(default_factory=list)
    links: bool = False
    """The message has links of its own: a preview (embed) may still arrive."""

    def add(self, source: AttachmentLike, key: str) -> None:
        if key not in self.keys:
            self.sources.append(source)
            self.keys.append(key)

    def extend(self, other: MessageImages) -> None:
        for source, key in zip(other.sources, other.keys, strict=True):
            self.add(source, key)
        self.notes += [note for note in other.notes if note not in self.notes]
        self.links = self.links or other.links

    def without(self, keys: Iterable[str]) -> MessageImages:
        """These images but for the ``keys`` (those already handled)."""
        done = set(keys)
        kept = MessageImages(notes=list(self.notes), links=self.links)
        for source, key in zip(self.sources, self.keys, strict=True):
            if key not in done:
                kept.add(source, key)
        return kept

    @property
    def waiting_for_preview(self) -> bool:
        """Links but nothing to look at yet: Discord adds a link's preview a moment later."""
        return self.links and not self.sources and not self.notes

    def notes_when_empty(self) -> list[str]:
        """The notes, saying links were not opened when that is why nothing is left."""
        if not self.sources and self.links and LINK_NOT_OPENED not in self.notes:
            return [*self.notes, LINK_NOT_OPENED]
        return list(self.notes)
