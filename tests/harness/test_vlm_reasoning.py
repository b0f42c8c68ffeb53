"""The VLM server fake streams a reasoning model's thinking in both forms providers use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import openai
import pytest

from tests.fakes.vlm import Script, VLMServer, text_tokens, user_message


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


async def read_stream(vlm: VLMServer) -> tuple[str, str, int | None]:
    """(content, reasoning_content, completion tokens) as the real openai client reads them."""
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=vlm.model,
            messages=[user_message("Why is the sky blue?")],
            stream=True,
            stream_options={"include_usage": True},
        )
        content, reasoning, tokens = "", "", None
        async for chunk in stream:
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                content += choice.delta.content or ""
                reasoning += getattr(choice.delta, "reasoning_content", None) or ""
        return content, reasoning, tokens


async def test_reasoning_content_deltas_come_before_the_answer(vlm: VLMServer) -> None:
    vlm.script(Script(text="Rayleigh scattering.", reasoning="The user asks about light.", chunk_size=5))
    content, reasoning, tokens = await read_stream(vlm)
    assert (content, reasoning) == ("Rayleigh scattering.", "The user asks about light.")
    record = vlm.completions[0]
    assert record.sent_text == "Rayleigh scattering." and record.reasoning_sent == "The user asks about light."
    assert tokens == text_tokens("The user asks about light." + "Rayleigh scattering.")  # thinking is billed


async def test_think_tags_open_the_content(vlm: VLMServer) -> None:
    vlm.script(Script(text="Rayleigh scattering.", reasoning="Light, then.", reasoning_form="tags"))
    content, reasoning, _ = await read_stream(vlm)
    assert content == "<think>Light, then.</think>\n\nRayleigh scattering." and reasoning == ""


async def test_gated_thinking_waits_for_each_release(vlm: VLMServer) -> None:
    vlm.script(Script(text="Done.", reasoning="abcdefgh", chunk_size=4, gated=True))
    reader = asyncio.create_task(read_stream(vlm))
    await vlm.wait_for_requests(1)
    await vlm.release(1)
    assert vlm.completions[0].reasoning_sent == "abcd" and vlm.completions[0].sent_text == ""
    await vlm.release(3)  # the rest of the thinking, then the one content chunk
    content, reasoning, _ = await reader
    assert (content, reasoning) == ("Done.", "abcdefgh")
