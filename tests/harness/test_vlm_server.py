"""The real ``openai.AsyncOpenAI`` client against the VLM server fake: streams, faults, validation."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from PIL import Image

from tests.fakes.vlm import (
    RecordedRequest,
    Script,
    VLMServer,
    data_url,
    image_bytes,
    image_part,
    image_tokens,
    smart_resize,
    text_tokens,
    user_message,
)

PROMPT = "Describe this image."


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def client(vlm: VLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.novita_base_url, max_retries=0) as c:
        yield c


def small_image() -> str:
    return data_url(image_bytes(64, 48))


async def stream_text(client: openai.AsyncOpenAI, model: str, messages: list[dict[str, Any]], **kw: Any) -> str:
    stream = await client.chat.completions.create(model=model, messages=messages, stream=True, **kw)
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


# --- streaming and non-streaming --------------------------------------------------------------


@pytest.mark.parametrize("base", ["base_url", "novita_base_url", "novita_v1"])
async def test_stream_assembles_text_and_ends_with_a_usage_chunk(vlm: VLMServer, base: str) -> None:
    base_url = vlm.novita_base_url + "/v1" if base == "novita_v1" else getattr(vlm, base)
    vlm.script(Script(text="A red square on white.", chunk_size=5))
    url = data_url(image_bytes(1024, 768, "JPEG"), "image/jpeg")
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=base_url, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=vlm.model,
            messages=[user_message(PROMPT, url, detail="high")],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert deltas == ["A red", " squa", "re on", " whit", "e."]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == text_tokens(PROMPT) + 1001
    assert usage.completion_tokens == text_tokens("A red square on white.")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert len({c.id for c in chunks}) == 1

    (request,) = vlm.completions
    assert request.outcome == "completed"
    assert request.texts == (PROMPT,)
    (image,) = request.images
    assert (image.width, image.height, image.format, image.mime, image.detail) == (
        1024,
        768,
        "JPEG",
        "image/jpeg",
        "high",
    )
    assert image.base64_length == len(url.partition(",")[2])
    assert request.headers["authorization"] == "<redacted>"
    assert vlm.api_key not in json.dumps(request.headers)


async def test_stream_without_include_usage_has_no_usage_chunk(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=vlm.model, messages=[user_message(PROMPT, small_image())], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_default_answer_mentions_the_number_of_images(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    text = await stream_text(client, vlm.model, [user_message(PROMPT, small_image(), small_image())])
    assert text == "I see 2 images."


async def test_non_streaming_completion(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script("Two cats on a sofa.")
    result = await client.chat.completions.create(
        model=vlm.model,
        messages=[user_message(PROMPT, small_image())],
        response_format={"type": "json_object"},
        temperature=0.2,
        max_tokens=100,
    )
    assert result.choices[0].message.content == "Two cats on a sofa."
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens == text_tokens(PROMPT) + image_tokens(64, 48)
    assert vlm.completions[0].body["max_tokens"] == 100


async def test_models_endpoint_and_responder(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == [vlm.model]

    def answer(request: RecordedRequest) -> str:
        return "Text found: HELLO" if "text" in request.prompt else "A landscape."

    vlm.respond_with(answer)
    assert await stream_text(client, vlm.model, [user_message("Extract the text", small_image())]) == (
        "Text found: HELLO"
    )
    assert await stream_text(client, vlm.model, [user_message("Describe", small_image())]) == "A landscape."


async def test_gate_releases_chunk_by_chunk(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script(chunks=("one ", "two ", "three"), gated=True))
    stream = await client.chat.completions.create(
        model=vlm.model, messages=[user_message(PROMPT, small_image())], stream=True
    )
    chunks = stream.__aiter__()
    assert (await anext(chunks)).choices[0].delta.role == "assistant"
    request = (await vlm.wait_for_requests(1))[0]
    assert request.chunks_sent == 0
    await vlm.release(1)
    assert request.sent_text == "one "
    assert (await anext(chunks)).choices[0].delta.content == "one "
    await vlm.release(2)
    assert request.sent_text == "one two three"
    rest = [c async for c in chunks]
    assert [c.choices[0].delta.content for c in rest] == ["two ", "three", None]
    assert request.outcome == "completed"


async def test_empty_completion_and_length_finish(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script(text=""), Script(text="Cut short", finish_reason="length"))
    stream = await client.chat.completions.create(
        model=vlm.model, messages=[user_message(PROMPT)], stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert not any(c.choices[0].delta.content for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 0

    stream = await client.chat.completions.create(model=vlm.model, messages=[user_message(PROMPT)], stream=True)
    finish = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert finish[-1] == "length"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_scripted_status_surfaces_as_the_matching_exception(
    vlm: VLMServer, client: openai.AsyncOpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    vlm.script(Script.error(status, retry_after=2 if status == 429 else None))
    with pytest.raises(error) as caught:
        await stream_text(client, vlm.model, [user_message(PROMPT)])
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and caught.value.body["message"]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.response.headers["retry-after-ms"] == "2000"


async def test_wrong_key_and_unknown_model(vlm: VLMServer) -> None:
    async with openai.AsyncOpenAI(api_key="sk-wrong", base_url=vlm.base_url, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            await stream_text(client, vlm.model, [user_message(PROMPT)])
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await stream_text(client, "qwen/not-a-model", [user_message(PROMPT)])
    assert caught.value.code == "model_not_found"
    assert [r.status for r in vlm.requests] == [401, 401, 404]


async def test_disconnect_mid_stream_is_a_connection_error(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script(text="abcdefgh", chunk_size=4, disconnect_after=1))
    received: list[str] = []
    stream = await client.chat.completions.create(model=vlm.model, messages=[user_message(PROMPT)], stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "abcd"
    assert vlm.completions[0].outcome == "server_disconnected"


async def test_malformed_frame_fails_json_decoding(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    # The openai client does not wrap a broken SSE payload: json.JSONDecodeError reaches the caller.
    vlm.script(Script(text="abcdefgh", chunk_size=4, malformed_after=1))
    with pytest.raises(json.JSONDecodeError):
        await stream_text(client, vlm.model, [user_message(PROMPT)])
    assert vlm.completions[0].outcome == "malformed"


@pytest.mark.parametrize("where", ["before_headers", "before_first_token", "mid_stream"])
async def test_stall_times_out_the_client_and_is_recorded_as_its_disconnect(vlm: VLMServer, where: str) -> None:
    script = {
        "before_headers": Script(text="late", stall_before_headers=True),
        "before_first_token": Script(text="late", stall_after=0),
        "mid_stream": Script(text="abcdefgh", chunk_size=4, stall_after=1),
    }[where]
    vlm.script(script)
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0, timeout=0.3) as c:
        with pytest.raises(openai.APITimeoutError):
            await stream_text(c, vlm.model, [user_message(PROMPT)])
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected


async def test_resume_ends_a_stall(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script(text="abcdefgh", chunk_size=4, stall_after=1))
    task = asyncio.create_task(stream_text(client, vlm.model, [user_message(PROMPT)]))
    await vlm.wait_for(lambda: bool(vlm.completions) and vlm.completions[0].outcome == "stalled")
    vlm.resume()
    assert await task == "abcdefgh"


async def test_client_closing_the_stream_is_recorded(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    vlm.script(Script(chunks=("first", "second"), gated=True))
    stream = await client.chat.completions.create(model=vlm.model, messages=[user_message(PROMPT)], stream=True)
    await vlm.release(1)
    async for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    await stream.close()
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected
    assert vlm.completions[0].sent_text == "first"


# --- validation -------------------------------------------------------------------------------


def big_noise_png() -> bytes:
    """Incompressible pixels: about 1.5 MB of PNG, 2 MB of base64."""
    image = Image.frombytes("RGB", (700, 700), random.Random(7).randbytes(700 * 700 * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("messages", "extra", "fragment"),
    [
        ([user_message(PROMPT, data_url(b"not an image at all"))], {}, "could not be decoded"),
        ([user_message(PROMPT, "data:text/plain;base64,aGVsbG8=")], {}, "data:image"),
        ([user_message(PROMPT, "https://example.com/cat.png")], {}, "data:image"),
        ([user_message(PROMPT, "data:image/png;base64,@@@@")], {}, "base64"),
        ([user_message(PROMPT, data_url(big_noise_png()))], {}, "too large"),
        ([user_message(PROMPT, small_image(), detail="ultra")], {}, "detail"),
        ([user_message(PROMPT, *[small_image()] * 5)], {}, "At most 4 images"),
        ([user_message(PROMPT, data_url(image_bytes(1000, 2)))], {}, "aspect ratio"),
        ([{"role": "assistant", "content": [image_part(small_image())]}], {}, "role 'user'"),
        ([{"role": "narrator", "content": "hi"}], {}, "role"),
        ([{"role": "user", "content": [{"type": "video", "video": "x"}]}], {}, "type"),
        ([{"role": "user", "content": [{"type": "text"}]}], {}, "'text'"),
        ([], {}, "messages"),
        ([user_message(PROMPT)], {"temperature": 3}, "temperature"),
        ([user_message(PROMPT)], {"stream_options": {"include_usage": True}}, "only allowed when 'stream'"),
        ([user_message(PROMPT)], {"response_format": {"type": "xml"}}, "response_format"),
        ([user_message(PROMPT)], {"extra_body": {"frobnicate": 1}}, "Unrecognized request argument"),
    ],
)
async def test_validation_rejects_like_a_strict_provider(
    vlm: VLMServer,
    client: openai.AsyncOpenAI,
    messages: list[dict[str, Any]],
    extra: dict[str, Any],
    fragment: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=vlm.model, messages=messages, **extra)
    assert fragment in caught.value.message
    assert vlm.completions[0].status == 400
    assert vlm.completions[0].script is None  # a rejected request consumes no script


async def test_validation_accepts_json_schema_and_text_only_history(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {"type": "object"}}}
    messages = [
        {"role": "system", "content": "Be brief."},
        user_message("What is this?", small_image(), detail=None),
        {"role": "assistant", "content": "A square."},
        user_message("And the colour?"),
    ]
    result = await client.chat.completions.create(model=vlm.model, messages=messages, response_format=schema)
    assert result.choices[0].message.content == "I see 1 image."
    assert vlm.completions[0].texts == ("Be brief.", "What is this?", "A square.", "And the colour?")
    assert vlm.completions[0].images[0].detail is None


# --- token counting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((1024, 768), 27 * 37 + 2),  # 768 -> 756, 1024 -> 1036
        ((4000, 3000), 107 * 143 + 2),  # the raw photo of the design notes, ~15k tokens
        ((28, 28), 2 * 2 + 2),  # raised to the 4-block minimum
        ((8000, 6000), 147 * 110 + 2),  # scaled down into the 16384-block budget
    ],
)
def test_image_tokens_follow_qwen_smart_resize(size: tuple[int, int], tokens: int) -> None:
    assert image_tokens(*size) == tokens


def test_smart_resize_keeps_multiples_of_28() -> None:
    assert smart_resize(768, 1024) == (756, 1036)
    height, width = smart_resize(3000, 4000)
    assert height % 28 == 0 and width % 28 == 0


# --- non-streaming faults, pacing, async responders ---------------------------------------------


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (Script(text="x", disconnect_after=0), openai.APIConnectionError),
        (Script(text="x", stall_after=0), openai.APITimeoutError),
        (Script.error(503), openai.InternalServerError),
        (Script(text="x", malformed_after=0), json.JSONDecodeError),  # not wrapped by openai either
    ],
)
async def test_non_streaming_faults(vlm: VLMServer, script: Script, error: type[Exception]) -> None:
    vlm.script(script)
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0, timeout=0.3) as c:
        with pytest.raises(error):
            await c.chat.completions.create(model=vlm.model, messages=[user_message(PROMPT)])


async def test_delay_per_chunk_and_async_responder(vlm: VLMServer, client: openai.AsyncOpenAI) -> None:
    async def answer(request: RecordedRequest) -> Script:
        await asyncio.sleep(0)
        return Script(text=f"{len(request.images)} image, slowly", chunk_size=4, delay=0.01)

    vlm.respond_with(answer)
    text = await stream_text(client, vlm.model, [user_message(PROMPT, small_image())])
    assert text == "1 image, slowly"
    assert vlm.completions[0].chunks_sent == 4
