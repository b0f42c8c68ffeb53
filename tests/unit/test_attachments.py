"""The download gate: a byte budget for attachments between download and preparation.

Deterministic: tasks are driven to their waiting points by yielding to the loop (:func:`settle`),
never by sleeping, and nothing here measures time.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Coroutine
from typing import Any

import pytest
from PIL import Image

from bot.images import (
    MAX_INPUT_BYTES,
    DownloadFailed,
    DownloadGate,
    ImageWorker,
    SharedImages,
    downloaded,
    gather_images,
)
from tests.fakes.attachment import FakeAttachment


async def settle(rounds: int = 10) -> None:
    """Let every ready task run until it blocks (a few loop iterations, no timers)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def start(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coro)


def png_bytes(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "PNG")
    return buffer.getvalue()


# -- the gate itself ----------------------------------------------------------------------------------


async def test_holds_within_the_budget_are_admitted_at_once_and_the_next_waits_for_room() -> None:
    gate = DownloadGate(max_bytes=100)
    await gate.acquire(60)
    await gate.acquire(40)
    assert (gate.in_use, gate.holders) == (100, 2)
    third = start(gate.acquire(1))
    await settle()
    assert not third.done() and gate.waiting == 1
    gate.release(40)
    await settle()
    assert third.done() and (gate.in_use, gate.holders, gate.waiting) == (61, 2, 0)
    assert gate.peak == 100


async def test_waiters_are_admitted_in_arrival_order_and_a_small_one_never_overtakes() -> None:
    gate = DownloadGate(max_bytes=100)
    admitted: list[str] = []

    async def take(name: str, size: int) -> None:
        await gate.acquire(size)
        admitted.append(name)

    await gate.acquire(90)
    large, small = start(take("large", 50)), start(take("small", 10))
    await settle()
    # 90 + 10 would fit, but "small" came after "large": it waits behind it.
    assert admitted == [] and gate.waiting == 2
    gate.release(90)
    await settle()
    assert admitted == ["large", "small"] and gate.in_use == 60
    await asyncio.gather(large, small)


async def test_one_hold_larger_than_the_budget_is_admitted_alone() -> None:
    gate = DownloadGate(max_bytes=100)
    await gate.acquire(10)
    oversize = start(gate.acquire(250))
    await settle()
    assert not oversize.done()  # not beside anything else
    gate.release(10)
    await settle()
    assert oversize.done() and gate.in_use == 250 and gate.peak == 250
    after = start(gate.acquire(1))
    await settle()
    assert not after.done()  # nothing joins it
    gate.release(250)
    await settle()
    assert after.done() and gate.in_use == 1


async def test_hold_releases_when_its_block_raises() -> None:
    gate = DownloadGate(max_bytes=100)
    with pytest.raises(ValueError):
        async with gate.hold(80):
            assert gate.in_use == 80
            raise ValueError("prepare failed")
    assert (gate.in_use, gate.holders) == (0, 0)


async def test_hold_releases_when_its_task_is_cancelled_inside_the_block() -> None:
    gate = DownloadGate(max_bytes=100)
    inside = asyncio.Event()

    async def holder() -> None:
        async with gate.hold(80):
            inside.set()
            await asyncio.Event().wait()

    task = start(holder())
    await inside.wait()
    waiter = start(gate.acquire(50))
    await settle()
    assert not waiter.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await waiter
    assert (gate.in_use, gate.holders) == (50, 1)


async def test_a_waiter_cancelled_in_the_queue_leaves_it_and_lets_the_next_in() -> None:
    gate = DownloadGate(max_bytes=100)
    await gate.acquire(90)
    head, behind = start(gate.acquire(50)), start(gate.acquire(10))
    await settle()
    assert gate.waiting == 2
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await settle()
    assert behind.done() and (gate.in_use, gate.holders, gate.waiting) == (100, 2, 0)


async def test_a_waiter_cancelled_just_as_it_was_admitted_gives_the_room_back() -> None:
    gate = DownloadGate(max_bytes=100)
    await gate.acquire(100)
    waiter = start(gate.acquire(60))
    await settle()
    gate.release(100)  # admits the waiter (its future is resolved) ...
    assert gate.in_use == 60
    waiter.cancel()  # ... but it is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (gate.in_use, gate.holders) == (0, 0)


async def test_release_without_acquire_is_an_error_and_the_budget_must_be_positive() -> None:
    with pytest.raises(RuntimeError):
        DownloadGate(max_bytes=10).release(1)
    with pytest.raises(ValueError):
        DownloadGate(max_bytes=0)


# -- downloads through it -----------------------------------------------------------------------------


async def test_downloaded_holds_the_declared_size_until_the_block_ends() -> None:
    gate = DownloadGate(max_bytes=100)
    attachment = FakeAttachment(size=70, data=b"x" * 70, gate=gate)
    async with downloaded(attachment, gate) as data:
        assert data == b"x" * 70 and gate.in_use == 70
    assert attachment.seen_in_use == [70]  # room was taken before the read
    assert gate.in_use == 0


async def test_a_file_over_the_limit_is_refused_without_taking_room_or_reading() -> None:
    gate = DownloadGate(max_bytes=100)
    await gate.acquire(100)  # full: a refusal must not wait for room
    attachment = FakeAttachment(size=MAX_INPUT_BYTES + 1)
    with pytest.raises(DownloadFailed):
        async with downloaded(attachment, gate):
            pass
    assert attachment.reads == 0 and gate.in_use == 100


async def test_a_failed_download_gives_its_room_back() -> None:
    gate = DownloadGate(max_bytes=100)
    attachment = FakeAttachment(size=70, error=ConnectionResetError("gone"))
    with pytest.raises(DownloadFailed):
        async with downloaded(attachment, gate):
            pass
    assert (gate.in_use, gate.holders) == (0, 0)


async def test_gather_images_keeps_its_downloads_within_the_budget_and_prepares_them_all() -> None:
    colors = ["red", "green", "blue", "white"]
    datas = [png_bytes(color) for color in colors]
    budget = max(len(data) for data in datas) * 2  # room for two at a time
    gate = DownloadGate(max_bytes=budget)
    attachments = [
        FakeAttachment(size=len(data), data=data, gate=gate, filename=f"{color}.png")
        for color, data in zip(colors, datas, strict=True)
    ]
    worker = ImageWorker()
    try:
        gathered = await gather_images(attachments, SharedImages(worker, gate), limit=4)
    finally:
        worker.close()
    assert len(gathered.images) == 4 and gathered.notes == []
    assert all(a.reads == 1 and a.seen_in_use[0] >= a.size for a in attachments)  # room taken before reading
    assert max(max(a.seen_in_use) for a in attachments) <= budget
    assert max(len(data) for data in datas) < gate.peak <= budget  # two at once, never three
    assert (gate.in_use, gate.holders) == (0, 0)
