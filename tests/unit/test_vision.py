"""``bot.vlm.client.VisionClient`` against the VLM server fake, over real HTTP and SSE."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.vlm.client import REASONS, Completion, Usage, VisionClient, VisionError
from tests.fakes.vlm import Script, VLMServer, data_url, image_bytes, text_tokens, user_message

PROMPT = "Describe the image."


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def vision(vlm: VLMServer) -> AsyncIterator[VisionClient]:
    client = make_client(vlm)
    yield client
    await client.aclose()


def make_client(vlm: VLMServer, **overrides: Any) -> VisionClient:
    options: dict[str, Any] = {
        "api_key": vlm.api_key,
        "base_url": vlm.novita_base_url,
        "model": vlm.model,
        "first_token_timeout": 5,
        "idle_timeout": 5,
        "backoff_base": 0.01,
    }
    options.update(overrides)
    return VisionClient(**options)


def messages(images: int = 1) -> list[dict[str, Any]]:
    return [user_message(PROMPT, *[data_url(image_bytes(1024, 768))] * images)]


async def collect(vision: VisionClient, **kw: Any) -> tuple[list[str], Any]:
    deltas: list[str] = []
    async with vision.stream(messages(), **kw) as stream:
        async for delta in stream:
            deltas.append(delta)
    return deltas, stream


async def failure(vision: VisionClient) -> tuple[VisionError, Any]:
    stream = vision.stream(messages())
    with pytest.raises(VisionError) as caught:
        async for _ in stream:
            pass
    return caught.value, stream


# --- success ----------------------------------------------------------------------------------


async def test_deltas_in_order_with_usage_and_one_log_line(
    vlm: VLMServer, vision: VisionClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.vlm.client")
    vlm.script(Script(chunks=("A blue ", "bicycle ", "by a wall."), finish_reason="stop"))

    deltas, stream = await collect(vision, temperature=0.3, max_tokens=200)

    assert deltas == ["A blue ", "bicycle ", "by a wall."]
    assert stream.text == "A blue bicycle by a wall."
    assert stream.finish_reason == "stop"
    expected_prompt = text_tokens(PROMPT) + 1001
    completion_tokens = text_tokens(stream.text)
    assert stream.usage == Usage(expected_prompt, completion_tokens, expected_prompt + completion_tokens)
    (request,) = vlm.completions
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 200
    assert "response_format" not in request.body
    assert request.headers["x-stainless-retry-count"] == "0"
    (record,) = [r for r in caplog.records if r.name == "bot.vlm.client"]
    line = record.getMessage()
    assert record.levelno == logging.INFO
    assert f"model={vlm.model}" in line and "images=1" in line and "attempts=1" in line
    assert f"prompt_tokens={expected_prompt}" in line and "finish=stop" in line
    assert "bicycle" not in line and PROMPT not in line


async def test_complete_returns_the_whole_answer(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(text='{"ok": true}', chunk_size=3))
    result = await vision.complete(messages(2), response_format={"type": "json_object"})
    assert result.text == '{"ok": true}'
    assert result.finish_reason == "stop" and result.usage is not None
    assert isinstance(result, Completion)
    assert vlm.completions[0].body["response_format"] == {"type": "json_object"}
    assert len(vlm.completions[0].images) == 2


async def test_finish_reason_length_is_not_an_error(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(text="A long story that", finish_reason="length"))
    deltas, stream = await collect(vision)
    assert "".join(deltas) == "A long story that"
    assert stream.finish_reason == "length"


# --- retries before the first token -----------------------------------------------------------


@pytest.mark.parametrize("fault", [Script.error(429, retry_after=0.01), Script.error(503), Script.error(500)])
async def test_retries_before_the_first_token_then_succeeds(
    vlm: VLMServer, vision: VisionClient, fault: Script
) -> None:
    vlm.script(fault, "Recovered.")
    deltas, _ = await collect(vision)
    assert "".join(deltas) == "Recovered."
    assert [r.status for r in vlm.completions] == [fault.status, 200]


@pytest.mark.parametrize("fault", [Script(text="never", disconnect_after=0), Script(text="x", malformed_after=0)])
async def test_a_broken_stream_before_any_text_is_retried(vlm: VLMServer, vision: VisionClient, fault: Script) -> None:
    vlm.script(fault, "Second try.")
    deltas, _ = await collect(vision)
    assert deltas == ["Second t", "ry."]
    assert len(vlm.completions) == 2


async def test_gives_up_after_max_retries(vlm: VLMServer) -> None:
    vlm.script(*[Script.error(503)] * 5)
    vision = make_client(vlm, max_retries=2)
    error, _ = await failure(vision)
    assert error.kind == "down" and error.reason == REASONS["down"] and error.status == 503
    assert len(vlm.completions) == 3
    await vision.aclose()


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(vlm: VLMServer) -> None:
    vlm.script(Script.error(429, retry_after=120))
    vision = make_client(vlm, max_retry_after=5)
    error, _ = await failure(vision)
    assert error.kind == "busy"
    assert len(vlm.completions) == 1
    await vision.aclose()


async def test_connection_refused_is_down(vlm: VLMServer) -> None:
    base_url = vlm.base_url
    await vlm.close()
    vision = VisionClient(api_key="k" * 20, base_url=base_url, model="m", max_retries=1, backoff_base=0.01)
    error, _ = await failure(vision)
    assert error.kind == "down"
    await vision.aclose()


# --- failures that are not retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Script.error(401), "auth"),
        (Script.error(403), "auth"),
        (Script.error(404), "model"),
        (Script.error(400, "Image could not be processed."), "bad_request"),
        (Script(text=""), "empty"),
    ],
)
async def test_failures_map_to_a_plain_reason_without_retry(
    vlm: VLMServer, vision: VisionClient, fault: Script, kind: str
) -> None:
    vlm.script(fault)
    error, stream = await failure(vision)
    assert (error.kind, error.reason, str(error)) == (kind, REASONS[kind], REASONS[kind])
    assert len(vlm.completions) == 1
    assert stream.text == ""


async def test_auth_reason_is_the_agreed_sentence(vlm: VLMServer) -> None:
    vision = make_client(vlm, api_key="sk-wrong-key")
    error, _ = await failure(vision)
    assert error.reason == "The model service rejected the API key."
    await vision.aclose()


async def test_unknown_model_and_refused_image(vlm: VLMServer) -> None:
    vision = make_client(vlm, model="qwen/qwen9-vl")
    error, _ = await failure(vision)
    assert error.kind == "model" and error.status == 404
    await vision.aclose()
    vision = make_client(vlm)
    stream = vision.stream([user_message(PROMPT, data_url(b"GIF89a but not really"))])
    with pytest.raises(VisionError) as caught:
        await anext(stream)
    assert caught.value.kind == "bad_request" and caught.value.status == 400
    await vision.aclose()


# --- after the first token: never retried -----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Script(chunks=("The first part", " and more"), disconnect_after=1),
        Script(chunks=("The first part", " and more"), malformed_after=1),
    ],
)
async def test_cut_off_mid_stream_keeps_the_partial_text(vlm: VLMServer, vision: VisionClient, fault: Script) -> None:
    vlm.script(fault, "never used")
    received: list[str] = []
    stream = vision.stream(messages())
    with pytest.raises(VisionError) as caught:
        async for delta in stream:
            received.append(delta)
    assert caught.value.kind == "cut_off"
    assert received == ["The first part"] and stream.text == "The first part"
    assert len(vlm.completions) == 1


# --- timeouts ---------------------------------------------------------------------------------


async def test_first_token_timeout(vlm: VLMServer) -> None:
    vlm.script(Script(text="too late", stall_after=0))
    vision = make_client(vlm, first_token_timeout=0.3)
    error, stream = await failure(vision)
    assert error.kind == "timeout" and stream.text == ""
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected
    assert len(vlm.completions) == 1  # a stalled model is not asked again
    await vision.aclose()


async def test_idle_timeout_mid_stream_keeps_the_text(vlm: VLMServer) -> None:
    vlm.script(Script(chunks=("Half an ", "answer"), stall_after=1))
    vision = make_client(vlm, idle_timeout=0.3)
    received: list[str] = []
    stream = vision.stream(messages())
    with pytest.raises(VisionError) as caught:
        async for delta in stream:
            received.append(delta)
    assert caught.value.kind == "timeout"
    assert received == ["Half an "] and stream.text == "Half an "
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected
    await vision.aclose()


# --- cancellation -----------------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_upstream_request(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(chunks=("one", "two", "three"), gated=True))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in vision.stream(messages()):
            first.set()

    task = asyncio.create_task(consume())
    await vlm.release(1)
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected
    assert vlm.completions[0].sent_text == "one"


async def test_aclose_closes_the_upstream_request(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(chunks=("one", "two"), gated=True))
    stream = vision.stream(messages())
    first = asyncio.create_task(anext(stream))  # release() waits until the chunk is written
    await vlm.release(1)
    assert await first == "one"
    await stream.aclose()
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_max_concurrency_queues_the_second_request(vlm: VLMServer) -> None:
    vision = make_client(vlm, max_concurrency=1)
    vlm.script(Script(chunks=("a", "b"), gated=True), "second")
    first = vision.stream(messages())
    reading = asyncio.create_task(anext(first))
    await vlm.release(1)
    assert await reading == "a"
    second = asyncio.create_task(vision.complete(messages()))
    for _ in range(20):  # give the second request every chance to start, if it could
        await asyncio.sleep(0)
    assert len(vlm.completions) == 1 and not second.done()
    await vlm.release(1)
    assert [d async for d in first] == ["b"]
    assert (await second).text == "second"
    assert len(vlm.completions) == 2
    await vision.aclose()


# --- the key never leaks ----------------------------------------------------------------------


async def test_the_key_is_in_no_reason_repr_or_log_record(vlm: VLMServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = vlm.api_key
    vlm.script(
        Script.error(401, f"Incorrect API key provided: {key}"),
        Script.error(503, f"upstream refused key {key}"),
        Script.error(503),
        Script(chunks=("partial",), disconnect_after=1),
    )
    vision = make_client(vlm, max_retries=1)
    errors = [(await failure(vision))[0] for _ in range(3)]
    assert [e.kind for e in errors] == ["auth", "down", "cut_off"]
    texts = [repr(vision), *(f"{e!r} {e} {e.reason} {e.detail}" for e in errors)]
    texts += [record.getMessage() for record in caplog.records]
    assert any("upstream refused key ***" in t for t in texts)  # the provider's detail, redacted
    assert not [t for t in texts if key in t]
    await vision.aclose()


async def test_aclose_from_another_task_stops_the_reader(vlm: VLMServer, vision: VisionClient) -> None:
    vlm.script(Script(chunks=("one", "two"), gated=True))
    stream = vision.stream(messages())

    async def read_all() -> list[str]:
        return [delta async for delta in stream]

    reader = asyncio.create_task(read_all())
    await vlm.release(1)
    await vlm.wait_for(lambda: stream.text == "one")
    await stream.aclose()
    assert await reader == ["one"]
    await vlm.wait_for(lambda: vlm.completions[0].finished.is_set())
    assert vlm.completions[0].disconnected


async def test_aclose_during_backoff_sends_no_further_request(vlm: VLMServer) -> None:
    vlm.script(Script.error(503), "never sent")
    vision = make_client(vlm, backoff_base=30, backoff_cap=30)
    stream = vision.stream(messages())
    reader = asyncio.create_task(anext(stream, None))
    await vlm.wait_for(lambda: bool(vlm.completions) and vlm.completions[0].finished.is_set())
    await stream.aclose()
    async with asyncio.timeout(5):  # the 30 s backoff is cut short, not slept through
        assert await reader is None
    assert len(vlm.completions) == 1
    await vision.aclose()
