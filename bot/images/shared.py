"""One download and one decode per image, whichever features look at it.

In a channel both watched and described, moderation checks an image and, once its verdict is in,
describe (or chat) uses the same image. :class:`SharedImages` makes the second one reuse the first's
work: preparations are single-flight per image and policy (an image's identity, see :func:`share_key`,
and its ``detail``), so a feature asking while another prepares the same image awaits that result.

A producer that knows another feature will want the image (moderation in a described channel) says so
with ``expect``: the job then makes both policies from one download and one decode (the larger first
from the original bytes, the smaller derived from it), and keeps the expected one until it is taken or
:data:`SHARE_SECONDS` pass. Nothing else outlives its job: the downloaded bytes are held (and counted
against the :class:`~bot.images.budget.DownloadGate`) only while the job runs, a failure is never
kept (a later ask tries again), and what is kept is prepared images only, within :data:`SHARE_MAX_BYTES`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.images.attachments import AttachmentLike, downloaded
from bot.images.budget import DownloadGate
from bot.images.policy import Detail, long_side_cap
from bot.images.prepare import ImageWorker, PreparedImage

log = logging.getLogger(__name__)

SHARE_SECONDS = 60.0
"""How long an image prepared for a feature that is expected to come (describe after moderation's
verdict) is kept for it; after that it is prepared afresh (still correct, only not shared)."""
SHARE_MAX_BYTES = 32 * 2**20
"""Prepared images kept for an expected feature, across the whole bot; the oldest go first beyond it."""
CONVERSATION_DETAIL: Detail = "auto"
"""The policy describe and chat prepare a message's images with."""
_LARGER = {"low": 0, "auto": 1, "high": 2}  # long side: 512 < 1024 or 1536 <= 1536
_Futures = dict[Detail, "asyncio.Future[PreparedImage]"]


def share_key(source: AttachmentLike) -> str | None:
    """What identifies an image's bytes: a Discord attachment's id, a proxied image's URL; ``None``
    for a source known by neither (then nothing is shared)."""
    ident = getattr(source, "id", None)
    if isinstance(ident, int):
        return f"attachment:{ident}"
    url = getattr(source, "url", None)
    return f"url:{url}" if isinstance(url, str) and url else None


@dataclass(eq=False)
class _Entry:
    """One image's preparations: per policy, its result (or the job making it)."""

    variants: _Futures = field(default_factory=dict)
    wanted: set[Detail] = field(default_factory=set)
    """Policies another feature is expected to take: kept (until taken or expired) once made."""
    kept: dict[Detail, int] = field(default_factory=dict)
    """Bytes of the finished variants being kept."""
    jobs: set[asyncio.Task[None]] = field(default_factory=set)
    expiry: asyncio.TimerHandle | None = None


class SharedImages:
    """The bot's one way from an image source to a :class:`PreparedImage` (``bot.shared_images``)."""

    def __init__(
        self,
        worker: ImageWorker,
        gate: DownloadGate,
        *,
        ttl: float = SHARE_SECONDS,
        max_bytes: int = SHARE_MAX_BYTES,
    ) -> None:
        self.worker = worker
        self.gate = gate
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._entries: dict[str, _Entry] = {}
        self.kept_bytes = 0
        """Bytes of prepared images kept for a feature expected to come."""

    def __len__(self) -> int:
        """Images with a preparation in flight or kept."""
        return len(self._entries)

    async def prepare(
        self, source: AttachmentLike, detail: Detail = CONVERSATION_DETAIL, *, expect: Detail | None = None
    ) -> PreparedImage:
        """``source`` prepared by ``detail``: the result of a job already making it, if there is one,
        else from a new download. ``expect``: another feature will soon ask for this image with that
        policy; it is made by the same job and kept for it. Raises :class:`ImageRejected` (a download
        failure is a :class:`DownloadFailed`) like :func:`downloaded` and :meth:`ImageWorker.prepare`."""
        key = share_key(source)
        entry = self._entry(key)
        if expect is not None:
            entry.wanted.add(expect)
        future = entry.variants.get(detail)
        producer = expect is not None
        if future is None:
            missing = [d for d in dict.fromkeys((detail, expect)) if d is not None and d not in entry.variants]
            self._start(key, entry, source, missing)
            future = entry.variants[detail]
        try:
            return await asyncio.shield(future)
        finally:
            if not producer:
                self._taken(key, entry, detail)

    def forget(self, source: AttachmentLike) -> None:
        """Keep nothing more of ``source`` for anyone (the feature expected will not come: a flagged
        image is not described); a job in flight still finishes for those awaiting it."""
        key = share_key(source)
        if key is not None and (entry := self._entries.get(key)) is not None:
            self._drop(key, entry)

    # -- entries -----------------------------------------------------------------------------------

    def _entry(self, key: str | None) -> _Entry:
        if key is None:
            return _Entry()  # unshared: lives as long as its job
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            entry.expiry = asyncio.get_running_loop().call_later(self.ttl, self._drop, key, entry)
        return entry

    def _start(self, key: str | None, entry: _Entry, source: AttachmentLike, details: Sequence[Detail]) -> None:
        loop = asyncio.get_running_loop()
        futures = {detail: loop.create_future() for detail in details}
        for future in futures.values():
            future.add_done_callback(_retrieved)
        entry.variants.update(futures)
        job = loop.create_task(self._job(source, futures), name="glimpse-shared-image")
        entry.jobs.add(job)
        job.add_done_callback(lambda done: self._finished(key, entry, done, futures))

    def _finished(self, key: str | None, entry: _Entry, job: asyncio.Task[None], futures: _Futures) -> None:
        entry.jobs.discard(job)
        for detail, future in futures.items():
            if future.cancelled() or future.exception() is not None or detail not in entry.wanted:
                self._forget(entry, detail, future)
            elif entry.variants.get(detail) is future:
                entry.kept[detail] = len(future.result().data)
                self.kept_bytes += entry.kept[detail]
        self._tidy(key, entry)
        self._within_budget()

    def _taken(self, key: str | None, entry: _Entry, detail: Detail) -> None:
        """An expected feature has its image: it is not kept for anyone any more."""
        if detail in entry.wanted:
            entry.wanted.discard(detail)
            future = entry.variants.get(detail)
            if future is not None and future.done():
                self._forget(entry, detail, future)
            self._tidy(key, entry)

    def _forget(self, entry: _Entry, detail: Detail, future: asyncio.Future[PreparedImage]) -> None:
        if entry.variants.get(detail) is future:
            del entry.variants[detail]
            self.kept_bytes -= entry.kept.pop(detail, 0)

    def _tidy(self, key: str | None, entry: _Entry) -> None:
        if key is not None and not entry.variants and not entry.jobs:
            self._drop(key, entry)

    def _drop(self, key: str, entry: _Entry) -> None:
        """Forget the image (its time is up, or nobody needs it now); jobs in flight still finish for
        those awaiting them."""
        if self._entries.get(key) is not entry:
            return
        del self._entries[key]
        if entry.expiry is not None:
            entry.expiry.cancel()
        self.kept_bytes -= sum(entry.kept.values())
        entry.kept.clear()
        entry.wanted.clear()  # a job finishing later keeps nothing
        entry.variants.clear()

    def _within_budget(self) -> None:
        for key, entry in list(self._entries.items()):
            if self.kept_bytes <= self.max_bytes:
                return
            if entry.kept:
                log.debug("Shared images over %d bytes: dropping the oldest kept one", self.max_bytes)
                self._drop(key, entry)

    # -- the work ----------------------------------------------------------------------------------

    async def _job(self, source: AttachmentLike, futures: _Futures) -> None:
        """Download once, decode the original once for the largest policy, derive the others."""
        largest, *others = sorted(futures, key=_LARGER.__getitem__, reverse=True)
        try:
            async with downloaded(source, self.gate) as data:
                first = await self.worker.prepare(data, detail=largest)
                futures[largest].set_result(first)
                for detail in others:
                    futures[detail].set_result(await self._derive(first, data, detail))
        except BaseException as error:
            for future in futures.values():
                if not future.done():
                    if isinstance(error, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(error)
            if not isinstance(error, Exception):
                raise

    async def _derive(self, larger: PreparedImage, original: bytes, detail: Detail) -> PreparedImage:
        """``detail``'s image made from ``larger`` (already decoded and downscaled): as it is when it
        fits that policy's size, else resized from it. An animation's contact sheet is laid out per
        policy, so it is made from the original."""
        if larger.frames > 1:
            return await self.worker.prepare(original, detail=detail)
        if max(larger.width, larger.height) <= long_side_cap(detail, graphic=False):
            return dataclasses.replace(larger, detail=detail)
        return await self.worker.prepare(larger.data, detail=detail)


def _retrieved(future: asyncio.Future[PreparedImage]) -> None:
    """A failure nobody awaited (its askers were cancelled) is not an "exception never retrieved"."""
    if not future.cancelled():
        future.exception()
