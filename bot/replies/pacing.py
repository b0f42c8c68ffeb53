"""Per-channel pacing of the bot's sends and edits, so Discord never has to answer 429.

Discord limits message sends and edits per channel (about 5 per 5 s, shared by every message in
the channel, and not always visible in the rate-limit headers). discord.py reacts to a 429 by
sleeping inside the request, which stalls a live reply; so every send and edit the bot makes in a
channel first takes a slot here.

The limiter is a sliding-window log: an operation may start when fewer than ``rate`` operations
were stamped within the last ``per + margin`` seconds. Each operation (:meth:`slot`) is stamped
when granted and again when it completes: Discord counts a request when it arrives, which is somewhere
between our start and the response, so the completion time is the safe stamp whatever the latency
(``margin`` covers clock granularity and the distance between two of Discord's servers). Waiters
are served first come, first served (the lock is FIFO), and nothing polls: a waiter sleeps until
the exact moment the oldest stamp leaves the window, or, when the stamp that decides its wait is a
request still in flight, until that request completes.

A process that has just started cannot know what an earlier one (killed a moment ago, or a
restart) did in a channel: with ``busy_since`` every channel counts as fully used at that moment
(the process's start), so the first operations wait until that window has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_RATE = 5
DEFAULT_PER = 5.0
DEFAULT_MARGIN = 0.25
# Waits shorter than this are rounding noise (a sum of floats a hair short of the deadline); not
# sleeping them avoids spinning on zero-length timers. A microsecond is far inside any margin.
_EPSILON = 1e-6


@dataclass
class _Stamp:
    at: float
    running: bool = True  # still in flight: its stamp moves to its completion time


@dataclass
class _Channel:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stamps: list[_Stamp] = field(default_factory=list)
    waiting: int = 0
    completed: asyncio.Event = field(default_factory=asyncio.Event)  # set when a request finishes


class ChannelPacer:
    """At most ``rate`` sends/edits per channel in any ``per + margin`` seconds, fair between callers.

    ``clock`` defaults to the running event loop's clock (``time.monotonic`` for the standard
    loop), which keeps the pacer consistent with ``asyncio.sleep`` under a simulated loop too.
    """

    def __init__(
        self,
        rate: int = DEFAULT_RATE,
        per: float = DEFAULT_PER,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] | None = None,
        busy_since: float | None = None,
    ) -> None:
        if rate < 1 or per <= 0 or margin < 0:
            raise ValueError("rate must be >= 1, per > 0 and margin >= 0")
        self.rate = rate
        self.per = per
        self.window = per + margin
        self._clock = clock
        self._busy_since = busy_since  # on this pacer's clock
        self._channels: dict[int, _Channel] = {}
        self._next_sweep = 0.0

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @contextlib.asynccontextmanager
    async def slot(self, channel_id: int) -> AsyncIterator[None]:
        """``async with pacer.slot(channel_id): await message.edit(...)`` — one slot per request."""
        stamp = await self._grant(channel_id)
        try:
            yield
        finally:
            stamp.at = max(stamp.at, self.now())
            stamp.running = False
            channel = self._channels.get(channel_id)
            if channel is not None:
                channel.completed.set()

    def room(self, channel_id: int) -> int:
        """How many operations in ``channel_id`` would be granted now, one after the other (0 while
        anyone is queued). A live reply asks before its placeholder: a busy channel gets no placeholder."""
        channel = self._known(channel_id)
        if channel is None:
            return self.rate
        if channel.waiting:
            return 0
        self._free_at(channel)  # drops the stamps that left the window
        return max(0, self.rate - len(channel.stamps))

    def until_room(self, channel_id: int, slots: int) -> float:
        """Seconds until ``slots`` operations could be granted, if nobody else takes one meanwhile
        (``math.inf`` while a request in flight decides it)."""
        channel = self._known(channel_id)
        missing = slots - self.room(channel_id)
        if channel is None or missing <= 0:
            return 0.0
        ordered = sorted(math.inf if s.running else s.at for s in channel.stamps)
        if missing > len(ordered):
            return math.inf  # others are queued: they come first
        return max(0.0, ordered[missing - 1] + self.window - self.now())

    def _known(self, channel_id: int) -> _Channel | None:
        """The channel's record, made now if a fresh start counts its window as used (see ``busy_since``)."""
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = self._new_channel()
            if not channel.stamps:
                return None
            self._channels[channel_id] = channel
        return channel

    async def _grant(self, channel_id: int) -> _Stamp:
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = self._channels[channel_id] = self._new_channel()
        channel.waiting += 1
        try:
            async with channel.lock:
                while (wait := self._free_at(channel) - self.now()) > _EPSILON:
                    # Sleep until the oldest stamp leaves the window, or, while a request that
                    # decides the wait is still in flight, until a request completes.
                    channel.completed.clear()
                    timeout = None if wait == math.inf else wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(channel.completed.wait(), timeout)
                stamp = _Stamp(self.now())
                channel.stamps.append(stamp)
        finally:
            channel.waiting -= 1
        self._sweep()
        return stamp

    def _new_channel(self) -> _Channel:
        """A channel first used here; within a window of ``busy_since``, its window counts as full."""
        channel = _Channel()
        since = self._busy_since
        if since is not None and self.now() < since + self.window:
            channel.stamps = [_Stamp(since, running=False) for _ in range(self.rate)]
        return channel

    def _free_at(self, channel: _Channel) -> float:
        """When the channel has room for one more operation."""
        horizon = self.now() - self.window
        channel.stamps = [s for s in channel.stamps if s.running or s.at > horizon]
        if len(channel.stamps) < self.rate:
            return -math.inf
        # A request in flight may reach Discord at any moment until it completes.
        latest = sorted(math.inf if s.running else s.at for s in channel.stamps)
        # The window must hold at most rate - 1 stamps after this one is added.
        return latest[-self.rate] + self.window

    def _sweep(self) -> None:
        """Forget idle channels, at most once per window (amortised O(1) per grant)."""
        now = self.now()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window
        horizon = now - self.window
        idle = [
            channel_id
            for channel_id, channel in self._channels.items()
            if channel.waiting == 0
            and not channel.lock.locked()
            and all(not s.running and s.at <= horizon for s in channel.stamps)
        ]
        for channel_id in idle:
            del self._channels[channel_id]
        if idle:
            log.debug("pacer: forgot %d idle channels", len(idle))
