"""Image work is admitted by its decoded size, read from the header before anything is decoded, so the
memory held by jobs in flight stays under one budget however small the files are."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest
from PIL import Image

from bot.images import ImageWorker, MemoryGate, return_large_frees_to_the_os
from bot.images.codec import decoded_bytes

pytestmark = pytest.mark.timeout(60)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_the_decoded_size_comes_from_the_header_with_the_converted_copy_and_the_first_resize_pass() -> None:
    big = encoded(Image.new("RGB", (7000, 7000), "white"))
    assert len(big) < 300_000  # a small file that decodes to 196 MB (Pillow keeps RGB in 4 bytes a pixel),
    assert decoded_bytes(big) == 7000 * 7000 * 4 + 1920 * 7000 * 4  # and resizing it passes through 1920x7000
    first_pass = 100 * 50 * 4
    assert decoded_bytes(encoded(Image.new("L", (100, 50)))) == 100 * 50 + first_pass
    assert decoded_bytes(encoded(Image.new("P", (100, 50)), "GIF")) == 100 * 50 * (1 + 4) + first_pass  # P, RGB(A)
    assert decoded_bytes(encoded(Image.new("LA", (10, 10)))) == 10 * 10 * (4 + 4) + 10 * 10 * 4
    assert decoded_bytes(b"not an image") == 0  # refused before decoding: it holds nothing


class CountingGate(MemoryGate):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.most_holders = 0

    def _admit(self, size: int) -> None:
        super()._admit(size)
        self.most_holders = max(self.most_holders, self.holders)


async def test_a_flood_of_small_files_with_huge_pixels_is_prepared_within_the_budget() -> None:
    files = [encoded(Image.new("RGB", (2000, 2000), (i * 40, 80, 120))) for i in range(6)]
    each = decoded_bytes(files[0])
    gate = CountingGate(each * 2 + each // 2)  # room for two at once, never three
    worker = ImageWorker(max_workers=4, memory=gate)
    try:
        prepared = await asyncio.gather(*(worker.prepare(data) for data in files))
    finally:
        worker.close()
    assert [max(p.width, p.height) for p in prepared] == [1536] * 6
    assert gate.peak == 2 * each and gate.most_holders == 2
    assert gate.in_use == 0 and gate.holders == 0


async def test_one_image_larger_than_the_whole_budget_runs_alone() -> None:
    huge = encoded(Image.new("RGB", (3000, 3000), "navy"))
    small = encoded(Image.new("RGB", (64, 64), "red"))
    gate = CountingGate(decoded_bytes(huge) // 2)
    worker = ImageWorker(memory=gate)
    try:
        results = await asyncio.gather(worker.prepare(huge), worker.prepare(small))
    finally:
        worker.close()
    assert [r.width for r in results] == [1536, 64]
    assert gate.most_holders == 1 and gate.peak == decoded_bytes(huge)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_large_freed_buffers_go_back_to_the_system_on_glibc() -> None:
    assert return_large_frees_to_the_os() is True  # mallopt accepted the fixed threshold
