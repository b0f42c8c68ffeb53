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
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.images.prepare import MAX_INPUT_BYTES, Detail, ImageRejected, ImageWorker, PreparedImage

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".jfif")
TOO_LARGE = f"That file is too large; the limit is {MAX_INPUT_BYTES // 2**20} MB."
NOT_DOWNLOADED = "I could not download it (was the message deleted?)."
DOWNLOAD_BUDGET = 64 * 2**20
"""Default bytes of attachments held between download and preparation, across the whole bot."""


class DownloadFailed(ImageRejected):
    """The attachment could not be fetched (too large, or gone); ``reason`` is a sentence for the user."""


class AttachmentLike(Protocol):
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


class DownloadGate:
    """A budget of bytes for downloads in flight: a download is admitted when its declared ``size``
    (known before fetching) fits in what is left, and its bytes count until the holder releases them.

    Waiters are admitted strictly in arrival order (a small request never overtakes a large one, so
    large ones are not starved); one larger than the whole budget is admitted alone. Not thread-safe:
    one event loop. Futures are made per wait, so the gate itself may be built outside a loop.
    """

    def __init__(self, max_bytes: int = DOWNLOAD_BUDGET) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self.in_use = 0
        """Bytes admitted and not yet released."""
        self.holders = 0
        """Holds admitted and not yet released."""
        self.peak = 0
        """The most bytes ever admitted at once (over the budget only for a single oversized hold)."""
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Holds waiting for room."""
        return sum(1 for _, future in self._waiters if not future.done())

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Wait for room for ``size`` bytes and keep it until the block ends, however it ends."""
        await self.acquire(size)
        try:
            yield
        finally:
            self.release(size)

    async def acquire(self, size: int) -> None:
        """Wait (FIFO) until ``size`` bytes fit; pair with exactly one :meth:`release` of the same size."""
        size = max(size, 0)
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        self._wake()
        if entry[1].done():
            return  # admitted at once
        log.debug("A download of %d bytes waits for room (%d of %d bytes in use)", size, self.in_use, self.max_bytes)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self.release(size)  # admitted in the same moment as cancelled: give the room back
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove(entry)
                self._wake()  # the head may have left: the next ones may fit now
            raise

    def release(self, size: int) -> None:
        size = max(size, 0)
        if self.holders <= 0 or size > self.in_use:
            raise RuntimeError("DownloadGate.release without a matching acquire")
        self.in_use -= size
        self.holders -= 1
        self._wake()

    def _fits(self, size: int) -> bool:
        return self.holders == 0 or self.in_use + size <= self.max_bytes

    def _admit(self, size: int) -> None:
        self.in_use += size
        self.holders += 1
        self.peak = max(self.peak, self.in_use)

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if future.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._fits(size):
                return  # FIFO: nobody overtakes the head
            self._waiters.popleft()
            self._admit(size)
            future.set_result(None)


def is_image(attachment: AttachmentLike) -> bool:
    """Whether an attachment claims to be an image (by MIME type, else by file name)."""
    if attachment.content_type:
        return attachment.content_type.split(";")[0].strip().startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def image_attachments(attachments: Sequence[AttachmentLike]) -> list[AttachmentLike]:
    return [a for a in attachments if is_image(a)]


async def gather_images(
    attachments: Sequence[AttachmentLike],
    worker: ImageWorker,
    gate: DownloadGate,
    *,
    limit: int,
    detail: Detail = "auto",
    chosen: bool = False,
) -> GatheredImages:
    """Download and prepare up to ``limit`` images concurrently; refusals become notes, not errors.

    ``chosen``: the user picked these files as images (``/describe``), so each one is tried whatever
    its declared type, and a file that is no image gets a note naming it; otherwise (a message's
    attachments) files that do not claim to be images are left out silently.
    """
    candidates = list(attachments) if chosen else image_attachments(attachments)
    result = GatheredImages()
    if len(candidates) > limit:
        result.notes.append(f"I looked at the first {limit} of {len(candidates)} images (the limit per request).")
        candidates = candidates[:limit]
    outcomes = await asyncio.gather(*(_prepare(a, worker, gate, detail) for a in candidates))
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
    except Exception as error:  # discord.HTTPException / NotFound: deleted or expired; no discord import here
        log.warning("Could not download attachment %r", attachment.filename, exc_info=True)
        raise DownloadFailed(NOT_DOWNLOADED) from error


@contextlib.asynccontextmanager
async def downloaded(attachment: AttachmentLike, gate: DownloadGate) -> AsyncIterator[bytes]:
    """The attachment's bytes (see :func:`download`), counted against ``gate`` until the block ends:
    use them (prepare them) inside it. A file over the byte limit is refused before taking room."""
    check_size(attachment)
    async with gate.hold(attachment.size):
        yield await download(attachment)


async def _prepare(
    attachment: AttachmentLike, worker: ImageWorker, gate: DownloadGate, detail: Detail
) -> PreparedImage | str:
    try:
        async with downloaded(attachment, gate) as data:
            return await worker.prepare(data, detail=detail)
    except ImageRejected as refused:  # DownloadFailed too
        return refused.reason


def _safe_name(filename: str) -> str:
    return filename.replace("`", "'")[:80]
