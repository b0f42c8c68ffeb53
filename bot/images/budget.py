"""Byte budgets shared by the whole bot: FIFO admission by a size declared before the work starts.

:class:`DownloadGate` counts attachment bytes between download and preparation (``size`` is known
before fetching); :class:`MemoryGate` counts the decoded size of image work in flight (read from
the header before decoding, see :func:`~bot.images.codec.decoded_bytes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

DOWNLOAD_BUDGET = 64 * 2**20
"""Default bytes of attachments held between download and preparation, across the whole bot."""
IMAGE_MEMORY_BUDGET = 256 * 2**20
"""Default decoded bytes of image work in flight (``IMAGE_MEMORY_MB``)."""


class ByteBudget:
    """A budget of bytes in flight: a hold is admitted when its declared ``size`` (known before the
    work starts) fits in what is left, and its bytes count until the holder releases them.

    Waiters are admitted strictly in arrival order (a small request never overtakes a large one, so
    large ones are not starved); one larger than the whole budget is admitted alone. Not thread-safe:
    one event loop. Futures are made per wait, so the gate itself may be built outside a loop.
    """

    what = "hold"
    """What the bytes are, for the log."""

    def __init__(self, max_bytes: int, *, on_wait: Callable[[float], None] | None = None) -> None:
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
        self._on_wait = on_wait  # told how long each hold waited for room (0 when admitted at once)

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
            if self._on_wait is not None:
                self._on_wait(0.0)
            return  # admitted at once
        log.debug("A %s of %d bytes waits (%d of %d bytes in use)", self.what, size, self.in_use, self.max_bytes)
        queued = time.monotonic()
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
        if self._on_wait is not None:
            self._on_wait(time.monotonic() - queued)

    def release(self, size: int) -> None:
        size = max(size, 0)
        if self.holders <= 0 or size > self.in_use:
            raise RuntimeError("ByteBudget.release without a matching acquire")
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


class DownloadGate(ByteBudget):
    """Attachment bytes fetched (or being fetched) and not yet prepared."""

    what = "download"

    def __init__(self, max_bytes: int = DOWNLOAD_BUDGET, *, on_wait: Callable[[float], None] | None = None) -> None:
        super().__init__(max_bytes, on_wait=on_wait)


class MemoryGate(ByteBudget):
    """Decoded bytes of image work in flight: a job starts when its decode fits in what is left."""

    what = "decode"

    def __init__(self, max_bytes: int = IMAGE_MEMORY_BUDGET) -> None:
        super().__init__(max_bytes)


_M_MMAP_THRESHOLD = -3
LARGE_ALLOCATION = 1 << 20
"""Allocations from this size up are mapped on their own and given back to the system when freed."""


def return_large_frees_to_the_os() -> bool:
    """Make glibc give large freed blocks (decoded images) back to the system at once.

    By default glibc raises its mmap threshold after the first large free, so later image buffers
    come from per-thread heaps that keep their peak: two worker threads each kept ~240 MB after a
    7000x7000 PNG, and the process stayed at twice the decode budget (bench/README.md, Images).
    A fixed threshold keeps every buffer from 1 MiB up separately mapped. Returns whether it applied
    (False off glibc, where nothing is changed)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION))
    except (OSError, AttributeError):
        log.debug("mallopt unavailable: freed image memory is returned as the allocator decides")
        return False
