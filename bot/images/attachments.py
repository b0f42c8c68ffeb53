"""From Discord attachments to prepared images, with a plain note for everything left out.

Works on anything shaped like ``discord.Attachment`` (see :class:`AttachmentLike`), so it is tested
without a bot. Size is checked before downloading: attachment URLs are signed and expire, so they are
read at once, and a file too large to use is never fetched at all.

Every download goes through the bot's one :class:`DownloadGate`, which keeps the bytes fetched (or
being fetched) and not yet prepared under a budget: a flood of large images waits its turn instead of
piling up in memory in front of the image worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.images.budget import DownloadGate
from bot.images.prepare import MAX_INPUT_BYTES, Detail, ImageRejected, PreparedImage

if TYPE_CHECKING:
    from bot.images.shared import SharedImages

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".jfif", ".tif", ".tiff", ".avif", ".heic", ".heif")
TOO_LARGE = f"That file is too large; the limit is {MAX_INPUT_BYTES // 2**20} MB."
NOT_DOWNLOADED = "I could not download it (was the message deleted?)."


class DownloadFailed(ImageRejected):
    """The attachment could not be fetched (too large, or gone); ``reason`` is a sentence for the user."""


class AttachmentLike(Protocol):
    """A ``discord.Attachment`` or anything shaped like one. A source whose ``size`` is only a cap (a
    proxied image) also has ``read_held(gate)``: see :func:`download_held`."""

    filename: str
    size: int
    content_type: str | None

    async def read(self) -> bytes: ...

    def is_spoiler(self) -> bool: ...


@dataclass
class GatheredImages:
    images: list[PreparedImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spoilers: list[bool] = field(default_factory=list)
    """Per image (same order as ``images``): whether it came from a spoiler attachment."""

    @property
    def spoiler(self) -> bool:
        """Whether any prepared image came from a spoiler attachment."""
        return any(self.spoilers)


def is_image(attachment: AttachmentLike) -> bool:
    """Whether an attachment claims to be an image (by MIME type, else by file name)."""
    if attachment.content_type:
        return attachment.content_type.split(";")[0].strip().startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def image_attachments(attachments: Sequence[AttachmentLike]) -> list[AttachmentLike]:
    return [a for a in attachments if is_image(a)]


async def gather_images(
    attachments: Sequence[AttachmentLike],
    images: SharedImages,
    *,
    limit: int,
    detail: Detail = "auto",
    chosen: bool = False,
) -> GatheredImages:
    """Download and prepare up to ``limit`` images concurrently (through ``images``, so an image another
    feature is preparing or has prepared is not fetched again); refusals become notes, not errors.

    ``chosen``: the user picked these files as images (``/describe``), so each one is tried whatever
    its declared type, and a file that is no image gets a note naming it; otherwise (a message's
    attachments) files that do not claim to be images are left out silently.
    """
    candidates = list(attachments) if chosen else image_attachments(attachments)
    result = GatheredImages()
    if len(candidates) > limit:
        result.notes.append(f"I looked at the first {limit} of {len(candidates)} images (the limit per request).")
        candidates = candidates[:limit]
    outcomes = await asyncio.gather(*(_prepare(a, images, detail) for a in candidates))
    for attachment, outcome in zip(candidates, outcomes, strict=True):
        if isinstance(outcome, PreparedImage):
            result.images.append(outcome)
            result.spoilers.append(attachment.is_spoiler())
        else:
            result.notes.append(f"Skipped `{_safe_name(attachment.filename)}`: {outcome}")
    return result


def check_size(attachment: AttachmentLike) -> None:
    """Raise :class:`DownloadFailed` for a file too large to fetch at all (before it waits for room)."""
    if attachment.size > MAX_INPUT_BYTES:
        raise DownloadFailed(TOO_LARGE)


async def download(attachment: AttachmentLike) -> bytes:
    """The attachment's bytes, fetched at once (its URL expires); a file over the byte limit is not
    fetched at all. Raises :class:`DownloadFailed` with a reason to show."""
    check_size(attachment)
    try:
        return await attachment.read()
    except ImageRejected:  # a proxied image says why itself
        raise
    except Exception as error:  # discord.HTTPException / NotFound: deleted or expired; no discord import here
        log.warning("Could not download attachment %r", attachment.filename, exc_info=True)
        raise DownloadFailed(NOT_DOWNLOADED) from error


async def download_held(attachment: AttachmentLike, gate: DownloadGate) -> tuple[bytes, int]:
    """The attachment's bytes (see :func:`download`) and the room they hold in ``gate``, which the
    caller releases once they are used (prepared). An attachment holds its declared ``size``, taken
    before fetching; a proxied image, whose size is only a cap, holds what its response declares
    (see :meth:`~bot.images.media.ProxiedImage.read_held`), so small previews download side by side.
    A file over the byte limit is refused before taking room; nothing is held when this raises."""
    check_size(attachment)
    read_held = getattr(attachment, "read_held", None)
    if read_held is not None:
        return await read_held(gate)
    await gate.acquire(attachment.size)
    try:
        return await download(attachment), attachment.size
    except BaseException:
        gate.release(attachment.size)
        raise


@contextlib.asynccontextmanager
async def downloaded(attachment: AttachmentLike, gate: DownloadGate) -> AsyncIterator[bytes]:
    """The attachment's bytes (see :func:`download_held`), counted against ``gate`` until the block
    ends: use them (prepare them) inside it."""
    data, held = await download_held(attachment, gate)
    try:
        yield data
    finally:
        gate.release(held)


async def _prepare(attachment: AttachmentLike, images: SharedImages, detail: Detail) -> PreparedImage | str:
    try:
        return await images.prepare(attachment, detail)
    except ImageRejected as refused:  # DownloadFailed too
        return refused.reason


def _safe_name(filename: str) -> str:
    return filename.replace("`", "'")[:80]
