"""The VLM server's provider quirks, through the real openai client: an error frame inside a 200 stream,
and a provider that refuses ``stream_options``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.fakes.vlm import Script, VLMServer, user_message


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def client(vlm: VLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.novita_base_url, max_retries=0) as c:
        yield c


async def test_error_frame_mid_stream_raises_api_error_after_the_text_sent(
    vlm: VLMServer, client: openai.AsyncOpenAI
) -> None:
    vlm.script(
        Script.error_frame(
            after=2, code="invalid_image", message="Image could not be decoded", text="abcdefghijklmnop", chunk_size=4
        )
    )
    stream = await client.chat.completions.create(model=vlm.model, messages=[user_message("Describe.")], stream=True)
    text = ""
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    assert text == "abcdefgh"
    assert caught.value.message == "Image could not be decoded"
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "invalid_image"
    [record] = vlm.completions
    assert record.status == 200 and record.outcome == "error_frame"


async def test_error_frame_before_any_text(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script.error_frame(after=0, text="never sent"))
    stream = await client.chat.completions.create(model=vlm.model, messages=[user_message("Describe.")], stream=True)
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "server_error"
    assert vlm.completions[0].sent_text == ""


async def test_provider_refusing_stream_options_answers_400_and_streams_without_them() -> None:
    async with (
        VLMServer(rejects_stream_options=True) as strict,
        openai.AsyncOpenAI(api_key=strict.api_key, base_url=strict.base_url, max_retries=0) as c,
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(
                model=strict.model,
                messages=[user_message("Hi")],
                stream=True,
                stream_options={"include_usage": True},
            )
        assert "stream_options" in caught.value.message
        strict.script("Hello there")
        stream = await c.chat.completions.create(model=strict.model, messages=[user_message("Hi")], stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        assert text == "Hello there"
        assert [r.status for r in strict.completions] == [400, 200]
