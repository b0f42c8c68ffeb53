"""ChannelPacer on simulated time (see tests/virtual_time.py)."""

from __future__ import annotations

import asyncio

import pytest

from bot.replies import ChannelPacer
from tests.virtual_time import max_in_window, run_virtual


async def _take(pacer: ChannelPacer, channel: int) -> None:
    """One instantaneous request in ``channel``."""
    async with pacer.slot(channel):
        pass


async def _timed(pacer: ChannelPacer, channel: int, log: list[tuple[str, float]], who: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        async with pacer.slot(channel):
            log.append((who, loop.time()))
            await asyncio.sleep(0)  # the request itself: a caller always yields between two grants


def test_virtual_loop_jumps_over_sleeps() -> None:
    async def main() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    assert run_virtual(main) == pytest.approx(3600)


def test_never_more_than_rate_in_any_window_and_whole_allowance_used() -> None:
    async def main() -> list[float]:
        pacer = ChannelPacer(5, 5.0, margin=0.25)
        log: list[tuple[str, float]] = []
        await _timed(pacer, 1, log, "a", 30)
        return [t for _, t in log]

    times = run_virtual(main)
    # Never more than 5 in a window of 5.25 s (Discord's 5 s plus the safety margin)...
    assert max_in_window(times, 5.25) == 5
    # ...and no slack either: the first 5 go at once, then one every time the oldest leaves.
    assert times[:5] == [0.0] * 5
    assert times[5] == pytest.approx(5.25)
    assert times[-1] == pytest.approx(5 * 5.25)


def test_fifo_between_two_replies_sharing_a_channel() -> None:
    async def main() -> list[tuple[str, float]]:
        pacer = ChannelPacer(5, 5.0, margin=0.25)
        log: list[tuple[str, float]] = []
        await asyncio.gather(_timed(pacer, 7, log, "a", 10), _timed(pacer, 7, log, "b", 10))
        return log

    log = run_virtual(main)
    assert max_in_window([t for _, t in log], 5.25) == 5
    # Both get their turn in alternation: neither starves while the other streams.
    order = "".join(who for who, _ in log)
    assert order == "ab" * 10


def test_channels_are_independent() -> None:
    async def main() -> dict[int, list[float]]:
        pacer = ChannelPacer(2, 1.0, margin=0.0)
        log: dict[int, list[tuple[str, float]]] = {1: [], 2: []}
        await asyncio.gather(_timed(pacer, 1, log[1], "x", 4), _timed(pacer, 2, log[2], "y", 4))
        return {ch: [t for _, t in entries] for ch, entries in log.items()}

    times = run_virtual(main)
    assert times[1] == times[2] == [0.0, 0.0, 1.0, 1.0]


def test_slot_stamps_completion_so_slow_requests_cannot_compress_the_window() -> None:
    """A request that takes 2 s counts from its end: the next window starts then, not at the grant."""

    async def main() -> list[float]:
        pacer = ChannelPacer(1, 1.0, margin=0.0)
        loop = asyncio.get_running_loop()
        starts: list[float] = []
        for duration in (2.0, 0.0, 0.0):
            async with pacer.slot(3):
                starts.append(loop.time())
                await asyncio.sleep(duration)
        return starts

    assert run_virtual(main) == [0.0, 3.0, 4.0]


def test_waiter_behind_an_in_flight_request_waits_for_its_completion() -> None:
    async def main() -> list[float]:
        pacer = ChannelPacer(1, 1.0, margin=0.0)
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        async def op(duration: float) -> None:
            async with pacer.slot(3):
                starts.append(loop.time())
                await asyncio.sleep(duration)

        await asyncio.gather(op(2.5), op(0.0))
        return starts

    assert run_virtual(main) == [0.0, 3.5]


def test_cancelled_waiter_leaves_the_queue() -> None:
    async def main() -> tuple[bool, float, int]:
        pacer = ChannelPacer(1, 1.0, margin=0.0)
        loop = asyncio.get_running_loop()
        await _take(pacer, 5)
        doomed = asyncio.create_task(_take(pacer, 5))
        await asyncio.sleep(0.1)
        queued = not doomed.done()
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        await _take(pacer, 5)
        granted = loop.time()
        # counted as waiting no more: channel 5 is forgotten once idle, like any other
        await asyncio.sleep(5)
        await _take(pacer, 6)
        return queued, granted, len(pacer._channels)

    queued, granted, channels = run_virtual(main)
    assert queued
    assert granted == pytest.approx(1.0)
    assert channels == 1


def test_idle_channels_are_forgotten() -> None:
    async def main() -> tuple[int, int]:
        pacer = ChannelPacer(5, 1.0, margin=0.0)
        for channel in range(50):
            await _take(pacer, channel)
        before = len(pacer._channels)
        await asyncio.sleep(5)
        await _take(pacer, 999)
        return before, len(pacer._channels)

    before, after = run_virtual(main)
    assert before == 50
    assert after == 1


def test_a_full_channel_grants_when_its_oldest_stamp_leaves_the_window() -> None:
    async def main() -> dict[int, float]:
        pacer = ChannelPacer(2, 4.0, margin=0.0)
        loop = asyncio.get_running_loop()
        await _take(pacer, 1)
        await asyncio.sleep(1)
        await _take(pacer, 1)
        granted: dict[int, float] = {}

        async def next_in(channel: int) -> None:
            async with pacer.slot(channel):
                granted[channel] = loop.time()

        await asyncio.gather(next_in(1), next_in(2))
        return granted

    assert run_virtual(main) == {1: pytest.approx(4.0), 2: pytest.approx(1.0)}


def test_injected_clock_is_used() -> None:
    now = [100.0]
    pacer = ChannelPacer(1, 10.0, margin=0.0, clock=lambda: now[0])

    async def main() -> None:
        await _take(pacer, 1)
        now[0] = 104.0
        assert pacer.now() == 104.0
        with pytest.raises(TimeoutError):  # 6 s of the injected clock to go
            await asyncio.wait_for(_take(pacer, 1), 0.05)
        now[0] = 110.0  # the window has passed by the injected clock, not by the loop's
        await asyncio.wait_for(_take(pacer, 1), 5.0)

    asyncio.run(main())


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        ChannelPacer(0, 5.0)
    with pytest.raises(ValueError):
        ChannelPacer(5, 0.0)


def test_a_freshly_started_pacer_counts_every_channel_as_used_at_its_start() -> None:
    async def main() -> tuple[list[float], list[float]]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(2.0)  # the process started at 0 and is ready at 2
        pacer = ChannelPacer(5, 5.0, margin=0.25, busy_since=0.0)
        log: list[tuple[str, float]] = []
        await _timed(pacer, 1, log, "a", 6)
        await asyncio.sleep(12.0 - loop.time())  # a channel first used after the window is not held back
        later: list[tuple[str, float]] = []
        await _timed(pacer, 2, later, "b", 1)
        return [t for _, t in log], [t for _, t in later]

    times, later = run_virtual(main)
    # an earlier process may have used the whole window up to the start: nothing before 0 + 5.25
    assert times[:5] == [pytest.approx(5.25)] * 5 and times[5] == pytest.approx(10.5)
    assert later == [pytest.approx(12.0)]
