"""An OpenAI-compatible chat-completions server on 127.0.0.1 that the real ``openai`` client talks to.

``async with VLMServer() as vlm:`` serves ``/v1/...`` and Novita's ``/openai/...`` (with and without
``/v1``), validates each request strictly (see :mod:`.validation`), answers from the scripts the test
queued (see :mod:`.script`) and records everything for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .script import Gate, Responder, Script
from .sse import DONE_FRAME, MALFORMED_FRAME, Completion, Usage, error_body, frame, models_body
from .tokens import text_tokens
from .validation import Limits, ParsedRequest, ReceivedImage, RequestRejected, validate

log = logging.getLogger(__name__)

DEFAULT_MODEL = "qwen/qwen2.5-vl-72b-instruct"
PREFIXES = ("/v1", "/openai", "/openai/v1")


@dataclass
class RecordedRequest:
    """One request as the server saw it. ``headers`` never hold the Authorization value."""

    method: str
    path: str
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    body: Any = field(default=None, repr=False)
    authorized: bool = False
    status: int | None = None
    parsed: ParsedRequest | None = None
    script: Script | None = None
    sent_text: str = ""
    reasoning_sent: str = ""  # the thinking streamed before the text (either form)
    chunks_sent: int = 0
    usage: Usage | None = None
    # pending | completed | rejected | client_disconnected | server_disconnected | malformed | error_frame | stalled
    outcome: str = "pending"
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def images(self) -> tuple[ReceivedImage, ...]:
        return self.parsed.images if self.parsed else ()

    @property
    def texts(self) -> tuple[str, ...]:
        return self.parsed.texts if self.parsed else ()

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def disconnected(self) -> bool:
        """The client went away before the server finished answering."""
        return self.outcome == "client_disconnected"

    @property
    def prompt(self) -> str:
        """All texts of the request joined by newlines (handy for responders)."""
        return "\n".join(self.texts)


class _ServerAbort(Exception):
    """The script ends the response abnormally (dropped connection, broken frame)."""


class VLMServer:
    def __init__(
        self,
        *,
        api_key: str = "test-vlm-key-0123456789abcdef",
        models: Iterable[str] = (DEFAULT_MODEL,),
        max_images: int = 4,
        max_image_base64: int = 1_000_000,
        wait_timeout: float = 10.0,
        rejects_stream_options: bool = False,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.model = self.models[0]
        # Some OpenAI-compatible providers answer 400 to ``stream_options`` (no usage in streams).
        self.rejects_stream_options = rejects_stream_options
        self.limits = Limits(frozenset(self.models), max_images, max_image_base64)
        self.requests: list[RecordedRequest] = []
        self.responder: Responder | None = None
        self._queue: deque[Script] = deque()
        self._gate = Gate()
        self._resume = asyncio.Event()
        self.wait_timeout = wait_timeout
        self._changed = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in PREFIXES:
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_get(f"{prefix}/models", self._models)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing = True
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> VLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def novita_base_url(self) -> str:
        """Like ``https://api.novita.ai/openai``: the client appends ``/chat/completions``."""
        return f"{self.url}/openai"

    # test-facing API ---------------------------------------------------------------------------
    def script(self, *scripts: Script | str) -> None:
        """Queue answers for the next requests, in order (a plain string is a text reply)."""
        self._queue.extend(Script(text=s) if isinstance(s, str) else s for s in scripts)

    def respond_with(self, responder: Responder | None) -> None:
        """Answer requests with ``responder(request) -> Script | str | None`` once the queue is empty."""
        self.responder = responder

    async def release(self, n: int = 1) -> None:
        """Let ``n`` more chunks of a gated stream out; returns once they were written (or it ended)."""
        async with asyncio.timeout(self.wait_timeout):
            await self._gate.release(n)

    def resume(self) -> None:
        """End a stall (``stall_before_headers`` / ``stall_after``)."""
        self._resume.set()

    @property
    def completions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; raise TimeoutError after ``wait_timeout`` seconds.

        It re-checks on every change the server records, and every 20 ms for predicates that
        also look at client-side state.
        """
        async with asyncio.timeout(self.wait_timeout):
            while not predicate():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    async def wait_for_requests(self, n: int) -> list[RecordedRequest]:
        """Wait until ``n`` chat-completion requests arrived; return them all."""
        await self.wait_for(lambda: len(self.completions) >= n)
        return self.completions

    def _poke(self) -> None:
        """Wake every ``wait_for`` so it re-checks its predicate."""
        self._changed.set()
        self._changed = asyncio.Event()

    # handlers ----------------------------------------------------------------------------------
    def _record(self, request: web.Request) -> RecordedRequest:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.pop("authorization", None)
        record = RecordedRequest(request.method, request.path, headers, time.monotonic())
        record.authorized = auth == f"Bearer {self.api_key}"
        if auth is not None:
            headers["authorization"] = "<redacted>"
        self.requests.append(record)
        self._poke()
        return record

    @staticmethod
    def _error(record: RecordedRequest, status: int, body: dict[str, Any], **headers: str) -> web.Response:
        record.status = status
        record.outcome = "rejected"
        return web.json_response(body, status=status, headers={"x-request-id": secrets.token_hex(8), **headers})

    def _unauthorized(self, record: RecordedRequest) -> web.Response:
        return self._error(record, 401, error_body("Incorrect API key provided.", code="invalid_api_key"))

    async def _models(self, request: web.Request) -> web.Response:
        record = self._record(request)
        record.finished.set()
        if not record.authorized:
            return self._unauthorized(record)
        record.status, record.outcome = 200, "completed"
        self._poke()
        return web.json_response(models_body(self.models, int(time.time())))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await self._answer(request, record)
        except asyncio.CancelledError:
            if not self._closing and record.outcome in ("pending", "stalled"):
                record.outcome = "client_disconnected"
            raise
        except ConnectionResetError:
            record.outcome = "client_disconnected"
            raise
        finally:
            self._handlers.discard(task)
            if record.script is not None and record.script.gated:
                await self._gate.forfeit()
            record.finished.set()
            self._poke()

    async def _answer(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        if not record.authorized:
            return self._unauthorized(record)
        try:
            record.body = json.loads(await request.read())
        except ValueError:
            return self._error(record, 400, error_body("We could not parse the JSON body of your request."))
        try:
            record.parsed = validate(record.body, self.limits)
        except RequestRejected as exc:
            body = error_body(exc.message, type=exc.type, param=exc.param, code=exc.code)
            return self._error(record, exc.status, body)
        if self.rejects_stream_options and "stream_options" in record.body:
            message = "Unrecognized request argument supplied: stream_options"
            return self._error(record, 400, error_body(message, param="stream_options"))
        script = record.script = await self._next_script(record)
        if script.stall_before_headers:
            await self._stall(record)
        if script.status != 200:
            message, kind, code = script.error_fields()
            body = error_body(message, type=kind, code=code)
            return self._error(record, script.status, body, **_retry_headers(script))
        try:
            if record.parsed.stream:
                return await self._stream(request, record, script)
            return await self._whole(request, record, script)
        except _ServerAbort:
            # Drop the TCP connection mid-body; aiohttp must not try to finish the response.
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError from None

    async def _next_script(self, record: RecordedRequest) -> Script:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            result = self.responder(record)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, str):
                return Script(text=result)
            if result is not None:
                return result
        count = len(record.images)
        return Script(text=f"I see {count} image{'' if count == 1 else 's'}.")

    async def _stall(self, record: RecordedRequest) -> None:
        previous, record.outcome = record.outcome, "stalled"
        self._poke()
        await self._resume.wait()
        self._resume.clear()
        record.outcome = previous

    async def _fault_at(self, index: int, record: RecordedRequest, script: Script) -> bytes | None:
        """Apply the script's fault scheduled before content chunk ``index``; return a final frame if any."""
        if script.stall_after == index:
            await self._stall(record)
        if script.disconnect_after == index:
            record.outcome = "server_disconnected"
            raise _ServerAbort
        if script.malformed_after == index:
            record.outcome = "malformed"
            return MALFORMED_FRAME
        if script.error_after == index:
            record.outcome = "error_frame"
            kind = "invalid_request_error" if script.error_code.startswith("invalid") else "server_error"
            message = script.error_message or "The server had an error while processing your request."
            return frame(error_body(message, type=kind, code=script.error_code))
        return None

    def _usage(self, record: RecordedRequest) -> Usage:
        assert record.parsed is not None
        record.usage = Usage(record.parsed.prompt_tokens, text_tokens(record.reasoning_sent + record.sent_text))
        return record.usage

    async def _stream(self, request: web.Request, record: RecordedRequest, script: Script) -> web.StreamResponse:
        assert record.parsed is not None
        include_usage = record.parsed.include_usage
        completion = Completion(model=record.parsed.model)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": secrets.token_hex(8),
                **script.headers,
            }
        )
        record.status = 200
        await response.prepare(request)
        await response.write(completion.delta_frame({"role": "assistant", "content": ""}, with_usage=include_usage))
        for delta in script.reasoning_deltas():
            if script.delay:
                await asyncio.sleep(script.delay)
            if script.gated:
                await self._gate.take()
            await response.write(completion.delta_frame(delta, with_usage=include_usage))
            record.reasoning_sent += "".join(delta.values())
            self._poke()
            if script.gated:
                await self._gate.sent()
        pieces = script.pieces()
        for index in range(len(pieces) + 1):
            broken = await self._fault_at(index, record, script)
            if broken is not None:
                await response.write(broken)
                await response.write_eof()
                return response
            if index == len(pieces):
                break
            if script.delay:
                await asyncio.sleep(script.delay)
            if script.gated:
                await self._gate.take()
            await response.write(completion.delta_frame({"content": pieces[index]}, with_usage=include_usage))
            record.sent_text += pieces[index]
            record.chunks_sent += 1
            self._poke()
            if script.gated:
                await self._gate.sent()
        await response.write(completion.delta_frame({}, script.finish_reason, with_usage=include_usage))
        usage = self._usage(record)
        if include_usage:
            await response.write(completion.usage_frame(usage))
        await response.write(DONE_FRAME)
        await response.write_eof()
        record.outcome = "completed"
        return response

    async def _whole(self, request: web.Request, record: RecordedRequest, script: Script) -> web.Response:
        assert record.parsed is not None
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.stall_after is not None:
            await self._stall(record)
        if script.disconnect_after is not None:
            record.outcome = "server_disconnected"
            raise _ServerAbort
        record.status = 200
        headers = {"x-request-id": secrets.token_hex(8), **script.headers}
        if script.malformed_after is not None:
            record.outcome = "malformed"
            return web.Response(body=b'{"id": "chatcmpl-broken", "choi', content_type="application/json")
        record.sent_text = script.text if script.chunks is None else "".join(script.chunks)
        body = Completion(model=record.parsed.model).body(record.sent_text, script.finish_reason, self._usage(record))
        record.outcome = "completed"
        return web.json_response(body, headers=headers)


def _retry_headers(script: Script) -> dict[str, str]:
    if script.retry_after is None:
        return {}
    return {
        "retry-after": str(max(0, math.ceil(script.retry_after))),
        "retry-after-ms": str(round(script.retry_after * 1000)),
    }
