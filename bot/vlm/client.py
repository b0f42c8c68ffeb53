"""Streaming chat completions from an OpenAI-compatible VLM, with retries, timeouts and plain errors.

``VisionClient.stream(messages)`` returns a :class:`VisionStream`, an async iterator of text deltas.
The request starts on the first iteration. Until the first piece of text arrives, failures that a
second attempt can fix (429, 5xx, connection errors) are retried with backoff; once text has been
yielded nothing is retried, so a reader never sees text twice. Every failure becomes a
:class:`VisionError` whose ``reason`` is one short sentence fit for a Discord reply.

The openai client's own retries are disabled (ours are the only ones) and our timeouts are asyncio
deadlines around each read, so they hold whatever the transport does. Cancelling the consuming
task or calling :meth:`VisionStream.aclose` closes the HTTP response, so the provider stops
generating (and billing). The API key lives only inside the openai client and never appears in a
log line, a repr or a reason.

A reasoning model's thinking (``reasoning_content`` deltas, or a leading ``<think>...</think>``; see
:mod:`bot.vlm.reasoning`) is dropped as it arrives: the stream yields, keeps and logs only the visible
answer. ``on_thinking`` is called when the thinking starts, so a reply can say the model is thinking;
from then on the model is alive, and the wait for its first visible word is bounded by the idle timeout
between chunks instead of the first-token timeout.

Longer than 400 lines on purpose: one request's whole life (attempts, deadlines, the stream's state,
closing) is one state machine, and splitting it would scatter the invariants above over files.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import openai
from openai.types.chat import ChatCompletionChunk

from bot.metrics import Metrics
from bot.vlm.reasoning import ThinkFilter

log = logging.getLogger(__name__)

REASONS = {
    "auth": "The model service rejected the API key.",
    "model": "The model service does not offer the configured model.",
    "busy": "The model service is busy right now; try again in a moment.",
    "down": "The model service is unavailable right now.",
    "timeout": "The model service took too long to answer.",
    "cut_off": "The answer was cut off before it was complete.",
    "bad_request": "The model service refused the request (perhaps an image it cannot read).",
    "bad_response": "The model service sent an answer that could not be read.",
    "empty": "The model returned an empty answer.",
    "limit": "A usage limit was reached.",  # bot.guard's LimitReached says which one
}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage | None
    finish_reason: str | None
    stopped: bool = False
    """Someone stopped the answer (its Stop button); ``text`` is what was written until then."""

    @property
    def cut_short(self) -> bool:
        """The model stopped at its length cap: the answer can be continued."""
        return self.finish_reason == "length"


class VisionError(Exception):
    """A request failed. ``reason`` is user-facing; ``kind`` is one of :data:`REASONS`' keys.

    ``detail`` (status and provider message, key redacted) is for logs, not for users.
    """

    def __init__(self, kind: str, *, status: int | None = None, detail: str = "") -> None:
        self.kind = kind
        self.reason = REASONS[kind]
        self.status = status
        self.detail = detail
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"VisionError(kind={self.kind!r}, status={self.status!r})"


class _Truncated(Exception):
    """The stream ended without a finish reason."""


class _Closed(Exception):
    """The owner closed the stream while a read was pending."""


def _classify(exc: BaseException) -> tuple[str, bool]:
    """Map a failure to ``(kind, retryable before the first token)``."""
    if not isinstance(exc, openai.APIStatusError) and isinstance(exc, openai.APIError) and exc.body:
        return _classify_error_frame(exc.body)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (401, 403):
            return "auth", False
        if status == 404:
            return "model", False
        if status in (409, 429):
            return "busy", True
        if status == 408:
            return "timeout", True
        if status >= 500:
            return "down", True
        return "bad_request", False
    if isinstance(exc, openai.APITimeoutError):  # connect/write timeouts: before any byte came back
        return "timeout", True
    if isinstance(exc, openai.APIConnectionError | _Truncated | openai.APIError):
        return "down", True
    if isinstance(exc, ValueError):  # a frame that is not JSON
        return "bad_response", True
    return "down", False


def _classify_error_frame(body: object) -> tuple[str, bool]:
    """An error frame inside a 200 stream (``data: {"error": {...}}``): judged by its type and code.

    A refusal of the request itself (an unreadable image, a bad parameter) is not retried: it would
    fail again and cost again. Rate limits and server errors are retried like their HTTP statuses.
    """
    fields = body if isinstance(body, dict) else {}
    words = f"{fields.get('type') or ''} {fields.get('code') or ''}".lower()
    if "rate_limit" in words or "429" in words:
        return "busy", True
    if "invalid" in words or "content_filter" in words or "400" in words:
        return "bad_request", False
    return "down", True


def _refuses_stream_options(exc: BaseException, request: dict[str, Any]) -> bool:
    """Some OpenAI-compatible providers answer 400 to ``stream_options`` (and so give no usage)."""
    return (
        "stream_options" in request
        and isinstance(exc, openai.BadRequestError)
        and "stream_options" in str(exc.message)
    )


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms``, ``retry-after`` seconds or date)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    with contextlib.suppress(TypeError, ValueError):
        if (value := headers.get("retry-after-ms")) is not None:
            return float(value) / 1000
        if (value := headers.get("retry-after")) is not None:
            try:
                return float(value)
            except ValueError:
                date = email.utils.parsedate_to_datetime(value)
                return max(0.0, date.timestamp() - time.time())
    return None


def _count_images(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


class VisionClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        connect_timeout: float = 10,
        first_token_timeout: float = 60,
        idle_timeout: float = 30,
        max_retries: int = 3,
        max_concurrency: int | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_after: float = 20.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.base_url = base_url
        self.metrics = metrics if metrics is not None else Metrics()
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._key = api_key
        self.stream_options_supported = True  # until the provider refuses them once
        self._semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        # The transport timeouts are a safety net only; the asyncio deadlines in VisionStream rule.
        slack = max(first_token_timeout, idle_timeout) + connect_timeout
        self._openai = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(slack, connect=connect_timeout),
        )

    def __repr__(self) -> str:
        return f"VisionClient(base_url={self.base_url!r}, model={self.model!r})"

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
        on_thinking: Callable[[], None] | None = None,
    ) -> VisionStream:
        """Prepare a streamed completion; the request is sent on the first iteration."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
        }
        if self.stream_options_supported:
            request["stream_options"] = {"include_usage": True}
        options = {"temperature": temperature, "max_tokens": max_tokens, "response_format": response_format}
        request.update({k: v for k, v in options.items() if v is not None})
        return VisionStream(self, request, _count_images(messages), on_thinking=on_thinking)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """The whole answer at once (same retries, timeouts and errors as :meth:`stream`)."""
        stream = self.stream(messages, temperature=temperature, max_tokens=max_tokens, response_format=response_format)
        async with stream:
            async for _ in stream:
                pass
        return Completion(stream.text, stream.usage, stream.finish_reason)

    async def aclose(self) -> None:
        await self._openai.close()

    async def _open(self, request: dict[str, Any]) -> openai.AsyncStream[ChatCompletionChunk]:
        return await self._openai.chat.completions.create(**request)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _backoff(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None when the provider asks for too long."""
        asked = _retry_after(exc)
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        return min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class ClosingStream:
    """An async iterator of text deltas that is its own context manager: leaving ``async with`` calls
    :meth:`aclose`, which subclasses implement (with ``__anext__``)."""

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError


class VisionStream(ClosingStream):
    """Async iterator of text deltas; use ``async with`` (or :meth:`aclose`) to always release it."""

    def __init__(
        self,
        client: VisionClient,
        request: dict[str, Any],
        images: int,
        *,
        on_thinking: Callable[[], None] | None = None,
    ) -> None:
        self.text = ""
        self.thinking_started: float | None = None  # monotonic time of the first thinking delta
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._client = client
        self._request = request
        self._images = images
        self._response: openai.AsyncStream[ChatCompletionChunk] | None = None
        self._holds_slot = False
        self._ended = False
        self._close_requested = asyncio.Event()
        self._attempts = 0
        self._started_at: float | None = None
        self._first_token_after: float | None = None
        self._on_thinking = on_thinking
        self._think = ThinkFilter()

    def __repr__(self) -> str:
        return f"VisionStream(model={self._client.model!r}, chars={len(self.text)}, ended={self._ended})"

    async def aclose(self) -> None:
        """Stop the request (closing the HTTP response) unless it already ended.

        Safe to call from another task while one iterates: that iteration then simply stops.
        """
        self._close_requested.set()
        await self._end("closed")

    async def __anext__(self) -> str:
        if self._ended:
            raise StopAsyncIteration
        try:
            delta = await (self._following() if self.text else self._first())
            if delta is None and not self.text:
                raise VisionError("empty")
        except BaseException as exc:
            if self._close_requested.is_set() and not isinstance(exc, asyncio.CancelledError):
                raise StopAsyncIteration from None
            if isinstance(exc, VisionError):
                await self._end(exc.kind, exc.detail)
            else:
                await self._end("cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__)
            raise
        if delta is None:
            await self._end("ok")
            raise StopAsyncIteration
        if self._first_token_after is None and self._started_at is not None:
            self._first_token_after = time.monotonic() - self._started_at
        self.text += delta
        return delta

    async def _first(self) -> str | None:
        """Open the request and read up to the first text, retrying what a retry can fix."""
        client = self._client
        if self._started_at is None:
            if client._semaphore is not None:
                queued = time.monotonic()
                await client._semaphore.acquire()
                client.metrics.waits.labels("model_slot").observe(time.monotonic() - queued)
                if self._close_requested.is_set():  # closed while queued for a slot
                    client._semaphore.release()
                    raise _Closed
                self._holds_slot = True
            self._started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        while not self._close_requested.is_set():
            self._attempts += 1
            self._think = ThinkFilter()  # a new attempt starts its answer afresh
            deadline = loop.time() + client.first_token_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    self._response = await client._open(self._request)
                if self._close_requested.is_set():
                    await self._close_response()
                    raise _Closed
                delta = await self._read(functools.partial(asyncio.timeout_at, deadline))
                if delta is None and self.finish_reason is None:
                    raise _Truncated
                return delta
            except TimeoutError:
                raise VisionError("timeout", detail="no first token in time") from None
            except Exception as exc:
                if self._close_requested.is_set():
                    raise
                await self._close_response()
                if _refuses_stream_options(exc, self._request):
                    log.warning("The model service refuses stream_options; streaming without token usage")
                    client.stream_options_supported = False
                    del self._request["stream_options"]
                    continue
                kind, retryable = _classify(exc)
                status = getattr(exc, "status_code", None)
                detail = client._redact(f"{type(exc).__name__}: {exc}")
                delay = client._backoff(self._attempts, exc) if retryable else None
                if delay is None or self._attempts > client.max_retries:
                    raise VisionError(kind, status=status, detail=detail) from None
                log.debug("vision attempt %d failed (%s); retrying in %.2fs", self._attempts, detail, delay)
                with contextlib.suppress(TimeoutError):  # the backoff, cut short by aclose()
                    await asyncio.wait_for(self._close_requested.wait(), delay)
        raise _Closed

    async def _following(self) -> str | None:
        """Read the next text after the first; any failure now ends the answer where it is."""
        try:
            delta = await self._read(functools.partial(asyncio.timeout, self._client.idle_timeout))
        except TimeoutError:
            raise VisionError("timeout", detail="stream went idle") from None
        except Exception as exc:
            detail = self._client._redact(f"{type(exc).__name__}: {exc}")
            raise VisionError("cut_off", detail=detail) from None
        if delta is None and self.finish_reason is None:
            raise VisionError("cut_off", detail="stream ended without a finish reason")
        return delta

    async def _read(self, deadline: Callable[[], asyncio.Timeout]) -> str | None:
        """The next non-empty visible delta, or None at the end; records usage and finish reason.

        Thinking is dropped here (see the module docstring)."""
        while True:
            if self._response is None:
                raise _Closed
            # Once the model thinks it is alive: the first-token deadline gives way to the idle one.
            timer = deadline() if self.thinking_started is None else asyncio.timeout(self._client.idle_timeout)
            async with timer:
                try:
                    chunk = await anext(self._response)
                except StopAsyncIteration:
                    return self._think.flush() or None
            if chunk.usage is not None:
                self.usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens)
            for choice in chunk.choices[:1]:
                if choice.finish_reason is not None:
                    self.finish_reason = choice.finish_reason
                delta = choice.delta
                if delta is None:
                    continue
                if getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None):
                    self._thought()
                visible = self._think.feed(delta.content) if delta.content else ""
                if self._think.thinking:
                    self._thought()
                if visible:
                    return visible

    def _thought(self) -> None:
        """The model is thinking: note when it began and tell the reply, once."""
        if self.thinking_started is not None:
            return
        self.thinking_started = time.monotonic()
        if self._on_thinking is not None:
            self._on_thinking()

    async def _close_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.close()

    async def _end(self, outcome: str, detail: str = "") -> None:
        """Close the response, free the concurrency slot and log the request's one line (once)."""
        if self._ended:
            return
        self._ended = True
        try:
            await self._close_response()
        finally:
            if self._holds_slot and self._client._semaphore is not None:
                self._client._semaphore.release()
                self._holds_slot = False
        if self._started_at is None:
            return  # never sent
        self._log(outcome, detail)
        usage = self.usage
        self._client.metrics.model_request(
            outcome,
            first_token=self._first_token_after,
            total=time.monotonic() - self._started_at,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    def _log(self, outcome: str, detail: str) -> None:
        assert self._started_at is not None
        usage = self.usage
        level = logging.INFO if outcome in ("ok", "closed", "cancelled") else logging.WARNING
        log.log(
            level,
            "vision %s model=%s images=%d attempts=%d first_token=%s total=%.2fs "
            "prompt_tokens=%s completion_tokens=%s finish=%s%s",
            outcome,
            self._client.model,
            self._images,
            self._attempts,
            "-" if self._first_token_after is None else f"{self._first_token_after:.2f}s",
            time.monotonic() - self._started_at,
            usage.prompt_tokens if usage else "-",
            usage.completion_tokens if usage else "-",
            self.finish_reason or "-",
            f" ({detail})" if detail else "",
        )
