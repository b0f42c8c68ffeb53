"""A reasoning model's thinking never leaves the client: ``ThinkFilter`` and ``VisionStream`` against the fake."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.vlm.client import VisionClient, VisionError
from bot.vlm.reasoning import ThinkFilter
from tests.fakes.vlm import Script, VLMServer, user_message

THOUGHT = "SECRET-THOUGHT the user wants colours, so I will list them"


def filtered(pieces: list[str]) -> str:
    think = ThinkFilter()
    return "".join(think.feed(piece) for piece in pieces) + think.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_a_leading_think_block_is_removed_however_it_is_cut(size: int) -> None:
    text = f"  <think>{THOUGHT}</think>\n\nRed and blue."
    assert filtered([text[i : i + size] for i in range(0, len(text), size)]) == "Red and blue."


@pytest.mark.parametrize(
    "text",
    ["Red and blue.", "<thin is not a tag", "<", "A <think> later is text", "\n\nRed"],
)
def test_text_without_a_leading_tag_passes_unchanged(text: str) -> None:
    assert filtered([text[i : i + 2] for i in range(0, len(text), 2)]) == text


def test_an_unclosed_think_block_shows_nothing() -> None:
    think = ThinkFilter()
    assert think.feed("<think>still ") == "" and think.thinking
    assert think.feed("going") == "" and think.flush() == ""


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def vision(vlm: VLMServer) -> AsyncIterator[VisionClient]:
    client = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, model=vlm.model, first_token_timeout=5)
    yield client
    await client.aclose()


@pytest.mark.parametrize("form", ["field", "tags"])
async def test_the_stream_yields_keeps_and_logs_only_the_answer(
    vlm: VLMServer, vision: VisionClient, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vlm.script(Script(text="Red and blue.", reasoning=THOUGHT, reasoning_form=form, chunk_size=5))  # type: ignore[arg-type]
    told: list[str] = []
    stream = vision.stream([user_message("Colours?")], on_thinking=lambda: told.append("thinking"))
    deltas = [delta async for delta in stream]
    assert "".join(deltas) == stream.text == "Red and blue."
    assert told == ["thinking"] and stream.thinking_started is not None
    assert vlm.completions[0].reasoning_sent.count("SECRET") == 1  # the model did think
    assert "SECRET" not in caplog.text


async def test_thinking_alone_is_an_empty_answer(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(text="", reasoning=THOUGHT, reasoning_form="tags"))
    with pytest.raises(VisionError) as caught:
        async for _ in vision.stream([user_message("Colours?")]):
            pass
    assert caught.value.kind == "empty"
