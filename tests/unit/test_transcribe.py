"""The pieces of one OCR request that need no bot: downloads, file names, sections, the empty-answer rule,
and how the OCR stream releases text (the end-to-end behaviour is in ``tests/e2e/test_ocr.py``)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.images import MAX_INPUT_BYTES, DownloadFailed, download
from bot.ocr.core import SEAM_LINES, TiledTranscript
from bot.ocr.transcribe import SectionSink, _empty_means_no_text, text_file_name
from bot.vlm import VisionError
from tests.unit.text_images import sample_lines


@dataclass
class FakeAttachment:
    """Shaped like ``discord.Attachment``; ``read`` returns ``data`` or raises ``error``."""

    size: int
    data: bytes = b""
    error: Exception | None = None
    filename: str = "a.png"
    content_type: str | None = "image/png"
    reads: int = 0

    async def read(self) -> bytes:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.data

    def is_spoiler(self) -> bool:
        return False


async def test_download_reads_the_attachment() -> None:
    attachment = FakeAttachment(size=3, data=b"png")
    assert await download(attachment) == b"png"
    assert attachment.reads == 1


async def test_download_refuses_a_file_over_the_limit_without_fetching_it() -> None:
    attachment = FakeAttachment(size=MAX_INPUT_BYTES + 1)
    with pytest.raises(DownloadFailed) as failed:
        await download(attachment)
    assert failed.value.reason == f"That file is too large; the limit is {MAX_INPUT_BYTES // 2**20} MB."
    assert attachment.reads == 0


async def test_download_failure_is_a_plain_reason() -> None:
    attachment = FakeAttachment(size=3, error=ConnectionResetError("gone"))
    with pytest.raises(DownloadFailed) as failed:
        await download(attachment)
    assert failed.value.reason == "I could not download it (was the message deleted?)."
    assert isinstance(failed.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("receipt.png", "receipt.txt"),
        ("long page.JPG", "long_page.txt"),
        ("SPOILER_ending.png", "SPOILER_ending.txt"),  # the text file stays a spoiler too
        ("../../etc/passwd.png", "passwd.txt"),
        ("`weird*name`.png", "weird_name.txt"),
        (".png", "png.txt"),
        ("日本語.png", "日本語.txt"),
        ("???.png", "text.txt"),
    ],
)
def test_text_file_name(image: str, expected: str) -> None:
    assert text_file_name(image) == expected


class RecordingSink:
    channel_id = 42

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, str]] = []

    async def send(self, content: str, *, file: object = None, buttons: object = None) -> None:
        self.calls.append(("send", None, content))

    async def edit(self, index: int, content: str, *, file: object = None, buttons: object = None) -> None:
        self.calls.append(("edit", index, content))


async def test_a_section_edits_its_own_messages_under_its_header() -> None:
    sink = RecordingSink()
    counter = itertools.count(2)  # two messages of earlier images came first
    section = SectionSink(sink, counter, "-# Image 3 of 3: c.png")
    await section.send("…")
    await section.edit(0, "text")
    assert sink.calls == [("send", None, "-# Image 3 of 3: c.png\n…"), ("edit", 2, "-# Image 3 of 3: c.png\ntext")]
    assert section.room == 2000 - len("-# Image 3 of 3: c.png\n")
    assert section.channel_id == 42
    plain = SectionSink(sink, counter, None)
    assert plain.room == 2000


async def test_a_section_that_continued_in_a_second_message_is_followed_by_the_next_image() -> None:
    sink = RecordingSink()
    counter = itertools.count()
    first = SectionSink(sink, counter, "-# Image 1 of 2: a.png")
    await first.send("one")
    await first.send("one, continued")  # at an interaction's hand-over
    second = SectionSink(sink, counter, "-# Image 2 of 2: b.png")
    await second.send("two")
    await first.edit(1, "one, continued!")
    await second.edit(0, "two!")
    assert [(kind, index) for kind, index, _ in sink.calls[3:]] == [("edit", 1), ("edit", 2)]


async def deltas(*items: str | VisionError) -> AsyncIterator[str]:
    for item in items:
        if isinstance(item, VisionError):
            raise item
        yield item


async def test_an_empty_answer_is_no_text_but_other_failures_stand() -> None:
    assert [d async for d in _empty_means_no_text(deltas(VisionError("empty")))] == []  # type: ignore[arg-type]
    with pytest.raises(VisionError) as raised:
        [d async for d in _empty_means_no_text(deltas("a", VisionError("cut_off")))]  # type: ignore[arg-type]
    assert raised.value.kind == "cut_off"


# --- how bot.ocr.core's TiledTranscript releases text ----------------------------------------------------


def test_a_single_image_releases_each_complete_line_at_once() -> None:
    transcript = TiledTranscript()
    assert transcript.feed("Hello wor", last=True) == ""
    assert transcript.feed("ld\nSecond", last=True) == "Hello world"
    assert transcript.feed(" line\n\n", last=True) == "\nSecond line"
    assert transcript.feed("Third", last=True) == ""
    assert transcript.finish() == "\n\nThird"
    assert transcript.text == "Hello world\nSecond line\n\nThird"


def test_a_fenced_answer_is_released_without_its_fence() -> None:
    transcript = TiledTranscript()
    shown = transcript.feed("```text\nA\nB\n", last=True) + transcript.feed("```", last=True) + transcript.finish()
    assert shown == "A\nB" == transcript.text


def test_the_last_tile_of_several_still_waits_for_its_seam() -> None:
    lines = sample_lines(40, seed=2)
    transcript = TiledTranscript()
    first = transcript.feed("\n".join(lines[:25]) + "\n")
    transcript.end_tile()
    assert first == "\n".join(lines[: 25 - SEAM_LINES]) + "\n"
    # Too few lines of the last tile to settle the seam: nothing new may be shown yet.
    assert transcript.feed("\n".join(lines[22:30]) + "\n", last=True) == ""
    rest = transcript.feed("\n".join(lines[30:40]), last=True) + transcript.finish()
    assert first + rest == "\n".join(lines) == transcript.text


def test_a_final_text_that_diverged_from_what_was_shown_is_shown_from_where_it_differs() -> None:
    transcript = TiledTranscript()
    # Force a divergence the seam logic is built to prevent: lines shown that the final text lacks.
    transcript._released = "alpha\nbeta\n"
    assert transcript._release(["alpha", "gamma", "delta"], final=True) == "gamma\ndelta"
    transcript._released = "alpha\nbeta"
    assert transcript._release(["alpha", "gamma"], final=True) == "\ngamma"
    # Before the end nothing is shown: the final text decides.
    transcript._released = "alpha\nbeta"
    assert transcript._release(["alpha", "gamma"], final=False, hold=0) == ""
