"""The engine-neutral OCR core: prompt, no-text detection, cleaning, tile joining, tiled streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.ocr.core import (
    SEAM_LINES,
    TiledTranscript,
    build_ocr_messages,
    clean_transcription,
    is_no_text,
    join_tiles,
    stream_transcription,
)
from bot.prompts import NO_TEXT
from tests.unit.text_images import sample_lines


class FakeImage:
    def __init__(self, name: str = "a") -> None:
        self.name = name

    def content_part(self) -> dict[str, Any]:
        url = f"data:image/png;base64,{self.name}"
        return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}


def request_text(messages: list[dict[str, Any]]) -> str:
    return next(part["text"] for part in messages[1]["content"] if part["type"] == "text")


# --- prompt -----------------------------------------------------------------------------------------


def test_messages_are_a_system_prompt_and_the_images_with_a_request() -> None:
    messages = build_ocr_messages([FakeImage("x"), FakeImage("y")])
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    for phrase in ("exactly as written", "line break", "Do not summarise, translate, correct", "code block"):
        assert phrase in system
    assert f"answer exactly {NO_TEXT} and nothing else" in system
    assert "no Markdown" in system and "tables" not in system
    content = messages[1]["content"]
    assert [part["type"] for part in content] == ["image_url", "image_url", "text"]
    assert [part["image_url"]["url"][-1] for part in content[:2]] == ["x", "y"]
    assert request_text(messages) == "Transcribe the text in this image."


def test_markdown_layout_keeps_tables_and_headings() -> None:
    system = build_ocr_messages([FakeImage()], layout="markdown")[0]["content"]
    assert "Markdown tables" in system and "headings" in system
    assert "no Markdown" not in system


def test_language_is_a_reading_hint_not_a_translation_request() -> None:
    text = request_text(build_ocr_messages([FakeImage()], language="  Brazilian\nPortuguese "))
    assert "probably in Brazilian Portuguese." in text
    assert "do not translate" in text
    assert "probably" not in request_text(build_ocr_messages([FakeImage()], language="  "))


def test_a_tile_says_which_part_it_is() -> None:
    text = request_text(build_ocr_messages([FakeImage()], part=(2, 5), language="German"))
    assert "part 2 of 5 of one tall image" in text
    assert "only the text visible in this part" in text
    assert "German" in text
    assert "part" not in request_text(build_ocr_messages([FakeImage()]))


@pytest.mark.parametrize(
    "kwargs",
    [{"images": []}, {"part": (0, 2)}, {"part": (3, 2)}, {"layout": "html"}],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    images = kwargs.pop("images", [FakeImage()])
    with pytest.raises(ValueError):
        build_ocr_messages(images, **kwargs)


# --- answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["NO_TEXT", " NO_TEXT\n", "`NO_TEXT`", "```\nNO_TEXT\n```", "no_text.", "No text", "[NO TEXT]",
     '"NO_TEXT"', "No readable text.", "", " \n "],
)
def test_no_text_answers_are_recognised(answer: str) -> None:
    assert is_no_text(answer)


@pytest.mark.parametrize(
    "answer",
    ["Notes", "NO_TEXT here is some text", "No texting after 9pm", "text", "NO", "The sign says: no text"],
)
def test_real_text_is_not_mistaken_for_no_text(answer: str) -> None:
    assert not is_no_text(answer)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("```\nhello\n```", "hello"),
        ("```text\nA  \nB\n```\n", "A\nB"),
        ("\n\nfirst\n\n  second\n\n", "first\n\n  second"),
        ("line\r\nother\rlast", "line\nother\nlast"),
        ("print(1)\n```", "print(1)\n```"),  # a fence it did not open is the image's text
        ("```\nNO_TEXT\n```", ""),
        ("NO_TEXT", ""),
    ],
)
def test_clean_transcription(answer: str, expected: str) -> None:
    assert clean_transcription(answer) == expected


# --- joining tiles ----------------------------------------------------------------------------------

LINES = [f"{index:02d} {line}" if index % 3 else line for index, line in enumerate(sample_lines(30, seed=7))]


def text(lines: list[str]) -> str:
    return "\n".join(lines)


def test_exact_duplicate_lines_at_the_seam_are_removed() -> None:
    assert join_tiles([text(LINES[:12]), text(LINES[9:20])]) == text(LINES[:20])


def test_three_tiles_in_a_chain() -> None:
    tiles = [text(LINES[:10]), text(LINES[8:20]), text(LINES[17:30])]
    assert join_tiles(tiles) == text(LINES)


def test_a_line_cut_by_the_top_edge_of_the_next_tile_is_dropped() -> None:
    cut = LINES[8][: len(LINES[8]) // 2].replace("e", "c").replace("a", "o")
    for first in (cut, "~ . _ -- ,"):
        assert join_tiles([text(LINES[:12]), text([first, *LINES[9:20]])]) == text(LINES[:20])


def test_a_line_cut_by_the_bottom_edge_gives_way_to_its_full_reading() -> None:
    garbled = LINES[12].replace("e", "c").replace("o", "a").replace("l", "i")[:-4]
    for last in (garbled, "_ ' ~ ."):
        assert join_tiles([text([*LINES[:12], last]), text(LINES[10:20])]) == text(LINES[:20])


def test_an_unmatched_last_line_is_kept_rather_than_lost() -> None:
    # The next tile did not read anything like it: keep it (a duplicate costs less than a loss).
    tile = [*LINES[:12], "Completely different words here"]
    joined = join_tiles([text(tile), text(LINES[10:20])])
    assert joined == text([*LINES[:12], "Completely different words here", *LINES[12:20]])


def test_ocr_noise_and_spacing_inside_the_overlap_still_match() -> None:
    noisy = [LINES[9].upper(), LINES[10].replace(" ", "  "), LINES[11][:-1] + "!"]
    joined = join_tiles([text(LINES[:12]), text([*noisy, *LINES[12:20]])])
    # The upper half of the overlap is read from the upper tile, the lower half from the lower one.
    assert joined == text([*LINES[:11], noisy[2], *LINES[12:20]])


def test_a_line_at_the_bottom_edge_is_taken_from_the_lower_tile() -> None:
    upper = [*LINES[:9], "Price today before server science notes", "lihrary"]
    lower = ["Price today before server science notes", "library,", *LINES[9:12]]
    assert join_tiles([text(upper), text(lower)]) == text([*upper[:-1], "library,", *LINES[9:12]])


def test_an_overlap_wider_than_the_compared_window_is_found() -> None:
    long = sample_lines(50, seed=9)
    cut = "~ _ . ' -"
    tiles = [text(long[:40]), text([cut, *long[40 - SEAM_LINES : 50]])]
    assert join_tiles(tiles) == text(long)


def test_a_disagreeing_line_inside_the_overlap_means_no_overlap() -> None:
    # Same lines around, but one reads completely differently: not the same place, keep everything.
    first = LINES[:8]
    second = [*LINES[4:6], "Something else entirely said", *LINES[7:12]]
    assert join_tiles([text(first), text(second)]) == text(first + second)


def test_tiles_without_overlap_are_concatenated() -> None:
    assert join_tiles([text(LINES[:10]), text(LINES[10:20])]) == text(LINES[:20])


def test_lines_that_repeat_legitimately_far_from_the_seam_stay() -> None:
    first = [LINES[0], "----", *LINES[1:5], "----", LINES[5], LINES[6]]
    second = [LINES[5], LINES[6], LINES[7], "----", LINES[8], "----", LINES[9]]
    joined = join_tiles([text(first), text(second)]).split("\n")
    assert joined == [*first, LINES[7], "----", LINES[8], "----", LINES[9]]
    assert joined.count("----") == 4


def test_a_short_line_alone_is_not_evidence_of_an_overlap() -> None:
    # Two people said "lol" either side of a seam whose overlap was blank: both stay.
    joined = join_tiles([text([*LINES[:3], "lol"]), text(["lol", "----", *LINES[3:6]])])
    assert joined == text([*LINES[:3], "lol", "lol", "----", *LINES[3:6]])


def test_a_tile_entirely_inside_the_overlap_adds_nothing() -> None:
    assert join_tiles([text(LINES[:10]), text(LINES[7:10]), text(LINES[8:15])]) == text(LINES[:15])


def test_blank_lines_are_kept_and_ignored_for_matching() -> None:
    first = [LINES[0], "", LINES[1], LINES[2], "", LINES[3]]
    second = [LINES[2], "", LINES[3], "", "", LINES[4]]
    assert join_tiles([text(first), text(second)]) == text([*first, "", "", LINES[4]])
    # Blank lines read differently in the overlap: the lower half follows the lower tile.
    second = [LINES[2], LINES[3], "", LINES[4]]
    assert join_tiles([text(first), text(second)]) == text([*first[:4], LINES[3], "", LINES[4]])


def test_empty_tiles_are_skipped() -> None:
    assert join_tiles(["", text(LINES[:3]), "  \n", text(LINES[2:5])]) == text(LINES[:5])
    assert join_tiles([]) == ""


def test_the_overlap_is_found_among_many_lines() -> None:
    long = sample_lines(60, seed=11)
    assert join_tiles([text(long[:40]), text(long[34:60])]) == text(long)


# --- streaming tiles --------------------------------------------------------------------------------


class ScriptedModel:
    """Answers each request with the next scripted answer, in small chunks."""

    def __init__(self, answers: list[str], chunk: int = 7) -> None:
        self.answers = list(answers)
        self.chunk = chunk
        self.requests: list[list[dict[str, Any]]] = []

    async def __call__(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        self.requests.append(messages)
        answer = self.answers.pop(0)
        for start in range(0, len(answer), self.chunk):
            yield answer[start : start + self.chunk]


async def collect(model: ScriptedModel, tiles: int, **kwargs: Any) -> tuple[list[str], TiledTranscript]:
    transcript = TiledTranscript()
    images = [FakeImage(str(i)) for i in range(tiles)]
    stream = stream_transcription(model, images, transcript=transcript, **kwargs)
    return [delta async for delta in stream], transcript


async def test_tiles_stream_as_one_joined_text_in_order() -> None:
    long = sample_lines(70, seed=3)
    answers = [text(long[:30]), "```\n" + text(long[26:55]) + "\n```", text(long[52:70]) + "\n"]
    model = ScriptedModel(answers)
    deltas, transcript = await collect(model, 3, language="English", layout="markdown")
    assert "".join(deltas) == text(long) == transcript.text
    assert len(deltas) > 3  # it streamed, not one block at the end
    parts = [request_text(request) for request in model.requests]
    assert [f"part {k} of 3" in part for k, part in enumerate(parts, start=1)] == [True] * 3
    assert all("English" in part for part in parts)
    assert [request[1]["content"][0]["image_url"]["url"][-1] for request in model.requests] == ["0", "1", "2"]


async def test_text_is_held_back_until_the_next_seam_is_settled() -> None:
    long = sample_lines(50, seed=5)
    model = ScriptedModel([text(long[:30]), text(long[27:50])], chunk=1000)
    transcript = TiledTranscript()
    shown = transcript.feed(model.answers[0] + "\n")
    transcript.end_tile()
    # Only what no seam can touch is out: the last SEAM_LINES lines wait for the next tile.
    assert shown == text(long[: 30 - SEAM_LINES]) + "\n"
    assert transcript.feed(text(long[27:30]) + "\n") == ""
    rest = transcript.feed(model.answers[1][len(text(long[27:30])) + 1 :]) + transcript.finish()
    assert shown + rest == text(long)


async def test_a_single_image_is_not_called_a_part() -> None:
    model = ScriptedModel(["Hello\nworld"])
    deltas, transcript = await collect(model, 1)
    assert "".join(deltas) == "Hello\nworld" == transcript.text
    assert "part" not in request_text(model.requests[0])


async def test_no_text_anywhere_streams_nothing() -> None:
    deltas, transcript = await collect(ScriptedModel(["NO_TEXT", "`NO_TEXT`"], chunk=2), 2)
    assert deltas == [] and transcript.text == ""


async def test_a_blank_tile_between_others_is_skipped() -> None:
    answers = [text(LINES[:20]), NO_TEXT, text(LINES[20:30])]
    deltas, transcript = await collect(ScriptedModel(answers), 3)
    assert "".join(deltas) == text(LINES) == transcript.text
