"""SharedImages: one download and one decode per image and policy, whichever features ask, and
nothing kept longer than the feature expected to come needs it.

The real image worker and download gate; ``FakeAttachment`` counts its reads. Deterministic: tasks are
driven by yielding to the loop, and the time-to-live is 0 where it is tested (a timer due at once).
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from bot.images import DownloadFailed, DownloadGate, ImageWorker, PreparedImage, SharedImages
from bot.images.policy import LOW_LONG_SIDE
from bot.images.shared import share_key
from tests.fakes.attachment import FakeAttachment


class CountingWorker(ImageWorker):
    """The real worker, noting what each prepare job was given: (bytes in, detail)."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[tuple[int, str]] = []

    async def prepare(self, data: bytes, *, detail: str = "auto") -> PreparedImage:  # type: ignore[override]
        self.jobs.append((len(data), detail))
        return await super().prepare(data, detail=detail)  # type: ignore[arg-type]


def photo(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = random.Random(seed)
    image = Image.effect_noise(size, 40).convert("RGB")
    image.paste(tuple(rng.randrange(256) for _ in range(3)), (0, 0, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def worker() -> AsyncIterator[CountingWorker]:
    worker = CountingWorker()
    yield worker
    worker.close()


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def test_an_image_is_known_by_its_attachment_id_or_its_proxy_url() -> None:
    assert share_key(FakeAttachment.of(b"x", id=7)) == "attachment:7"
    assert share_key(FakeAttachment.of(b"x")) is None  # nothing identifies it: never shared

    class Proxied(FakeAttachment):
        url = "https://media.discordapp.net/external/abc/https/example.com/cat.png"

    assert share_key(Proxied(size=1)) == f"url:{Proxied.url}"


async def test_asks_for_an_image_being_prepared_await_that_one_job(worker: CountingWorker) -> None:
    gate = DownloadGate()
    shared = SharedImages(worker, gate)
    attachment = FakeAttachment.of(photo(1), id=1)
    first, second = await asyncio.gather(shared.prepare(attachment), shared.prepare(attachment))
    assert first is second and attachment.reads == 1 and len(worker.jobs) == 1
    assert len(shared) == 0 and shared.kept_bytes == 0 and gate.in_use == 0  # nobody else expected: not kept
    await shared.prepare(attachment)
    assert attachment.reads == 2  # a later ask downloads afresh


async def test_an_expected_feature_takes_the_image_from_the_same_download_and_decode(worker: CountingWorker) -> None:
    gate = DownloadGate()
    shared = SharedImages(worker, gate)
    original = photo(2, size=(1600, 1200))
    attachment = FakeAttachment(len(original), original, gate=gate, id=2)

    checked = await shared.prepare(attachment, "low", expect="auto")  # moderation, describe to come
    assert max(checked.width, checked.height) == LOW_LONG_SIDE and checked.detail == "low"
    assert attachment.seen_in_use == [len(original)]  # counted against the gate while downloaded
    assert gate.in_use == 0 and shared.kept_bytes > 0  # released once prepared; a prepared copy is kept
    described = await shared.prepare(FakeAttachment.of(original, id=2))  # the same image, as describe sees it

    assert attachment.reads == 1
    assert described.detail == "auto" and max(described.width, described.height) > LOW_LONG_SIDE
    # The original was decoded once, for the larger policy; the smaller was made from that result.
    assert worker.jobs == [(len(original), "auto"), (len(described.data), "low")]
    assert len(shared) == 0 and shared.kept_bytes == 0  # taken: not kept for anyone any more


async def test_one_policy_for_both_is_one_preparation_whose_bytes_both_get(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate())
    attachment = FakeAttachment.of(photo(3), id=3)
    checked = await shared.prepare(attachment, "auto", expect="auto")
    assert len(shared) == 1  # the producer's own result does not count as taken
    described = await shared.prepare(attachment)
    assert described is checked and attachment.reads == 1 and len(worker.jobs) == 1
    assert len(shared) == 0


async def test_a_small_image_serves_every_policy_as_it_is(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate())
    attachment = FakeAttachment.of(photo(4), id=4)  # 64x48: within every size
    checked = await shared.prepare(attachment, "low", expect="auto")
    described = await shared.prepare(attachment)
    assert checked.data == described.data and (checked.detail, described.detail) == ("low", "auto")
    assert len(worker.jobs) == 1


async def test_an_image_kept_for_a_feature_that_never_comes_expires(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate(), ttl=0)
    attachment = FakeAttachment.of(photo(5), id=5)
    await shared.prepare(attachment, "low", expect="auto")
    await settle()
    assert len(shared) == 0 and shared.kept_bytes == 0
    await shared.prepare(attachment)
    assert attachment.reads == 2


async def test_an_image_nobody_will_take_is_forgotten_at_once(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate())
    attachment = FakeAttachment.of(photo(8), id=8)
    await shared.prepare(attachment, "low", expect="auto")
    assert len(shared) == 1 and shared.kept_bytes > 0
    shared.forget(attachment)  # flagged: describe will not come
    assert len(shared) == 0 and shared.kept_bytes == 0


async def test_what_is_kept_stays_within_its_byte_budget_oldest_first(worker: CountingWorker) -> None:
    images = [FakeAttachment.of(photo(10 + i), id=10 + i) for i in range(3)]
    probe = await SharedImages(worker, DownloadGate()).prepare(FakeAttachment.of(images[0].data))
    shared = SharedImages(worker, DownloadGate(), max_bytes=2 * len(probe.data) + 10)
    for attachment in images:
        await shared.prepare(attachment, "auto", expect="auto")
    assert shared.kept_bytes <= shared.max_bytes and len(shared) == 2
    for attachment in images:
        await shared.prepare(attachment)
    assert [a.reads for a in images] == [2, 1, 1]  # the oldest was dropped and fetched again
    assert len(shared) == 0 and shared.kept_bytes == 0


async def test_a_failed_download_is_never_kept(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate())
    attachment = FakeAttachment(size=10, error=ConnectionResetError("gone"), id=6)
    with pytest.raises(DownloadFailed):
        await shared.prepare(attachment, "low", expect="auto")
    assert len(shared) == 0
    attachment.error, attachment.data, attachment.size = None, photo(6), len(photo(6))
    assert (await shared.prepare(attachment)).width == 64 and attachment.reads == 2


async def test_an_asker_cancelled_mid_job_leaves_the_others_their_result(worker: CountingWorker) -> None:
    shared = SharedImages(worker, DownloadGate())
    attachment = FakeAttachment.of(photo(7), id=7)
    first = asyncio.ensure_future(shared.prepare(attachment))
    second = asyncio.ensure_future(shared.prepare(attachment))
    await settle(2)
    first.cancel()
    prepared = await second
    assert first.cancelled() and prepared.width == 64 and attachment.reads == 1
    await settle()
    assert len(shared) == 0
