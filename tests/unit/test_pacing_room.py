"""ChannelPacer.room / until_room: what a live reply asks before it spends a slot on its first message."""

from __future__ import annotations

import asyncio

import pytest

from bot.replies import ChannelPacer
from tests.virtual_time import run_virtual


async def take(pacer: ChannelPacer, channel: int, n: int = 1) -> None:
    for _ in range(n):
        async with pacer.slot(channel):
            pass


def test_room_counts_the_free_slots_and_until_room_when_more_free() -> None:
    async def main() -> list[object]:
        pacer = ChannelPacer(3, 1.0, margin=0.0)
        seen: list[object] = [pacer.room(1), pacer.until_room(1, 2)]
        await take(pacer, 1)
        await asyncio.sleep(0.25)
        await take(pacer, 1, 2)
        seen += [pacer.room(1), pacer.room(2), pacer.until_room(1, 1), pacer.until_room(1, 2)]
        await asyncio.sleep(1.0)
        seen.append(pacer.room(1))
        return seen

    assert run_virtual(main) == [3, 0.0, 0, 3, pytest.approx(0.75), pytest.approx(1.0), 3]


def test_nobody_has_room_while_someone_is_queued() -> None:
    async def main() -> tuple[int, int]:
        pacer = ChannelPacer(1, 1.0, margin=0.0)
        await take(pacer, 1)
        queued = asyncio.ensure_future(take(pacer, 1))
        await asyncio.sleep(0.5)
        during = pacer.room(1)
        await queued
        await asyncio.sleep(1.0)
        return during, pacer.room(1)

    assert run_virtual(main) == (0, 1)


def test_a_freshly_started_pacer_has_no_room_until_a_window_has_passed() -> None:
    async def main() -> list[int]:
        pacer = ChannelPacer(5, 5.0, margin=0.25, busy_since=0.0)
        before = pacer.room(1)
        await asyncio.sleep(5.5)
        return [before, pacer.room(1), pacer.room(2)]

    assert run_virtual(main) == [0, 5, 5]
