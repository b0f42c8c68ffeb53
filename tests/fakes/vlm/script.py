"""What the server answers: scripted replies, faults, and the gate tests release chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .server import RecordedRequest

DEFAULT_CHUNK_SIZE = 8
ERROR_MESSAGES = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "invalid_request_error", "permission_denied"),
    404: ("The model does not exist or you have no access.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}  # fmt: skip


@dataclass(frozen=True)
class Script:
    """One scripted answer. Chunk indices count content chunks (``0`` = before the first token).

    - ``text`` is streamed in ``chunks`` (explicit) or pieces of ``chunk_size`` characters,
      ``delay`` seconds before each; with ``gated`` each chunk waits for :meth:`VLMServer.release`.
    - ``status`` other than 200 answers with an OpenAI-style error body (``retry_after`` adds the
      ``retry-after``/``retry-after-ms`` headers).
    - ``stall_after=n`` stops after n chunks until :meth:`VLMServer.resume` or the client gives up;
      ``stall_before_headers`` stalls before even sending the response headers.
    - ``disconnect_after=n`` drops the connection after n chunks; ``malformed_after=n`` sends a
      broken SSE frame after n chunks and ends there.
    - ``error_after=n`` sends an error frame (``data: {"error": {...}}``, ``error_message`` and
      ``error_code``) after n chunks and ends there, on a response that began as 200: what providers
      do when generation fails mid-stream (``error_code`` e.g. ``"invalid_image"``, ``"server_error"``).
    - ``reasoning`` is a reasoning model's thinking, streamed before the text in pieces of
      ``chunk_size`` (each with the same ``delay`` and gate as a content chunk, but not counted as
      one): as ``reasoning_content`` deltas (``reasoning_form="field"``), or inside the content as
      ``<think>...</think>`` followed by a blank line (``"tags"``). It costs completion tokens.
    """

    text: str = ""
    chunks: tuple[str, ...] | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    delay: float = 0.0
    gated: bool = False
    finish_reason: str = "stop"
    status: int = 200
    error_message: str | None = None
    retry_after: float | None = None
    stall_before_headers: bool = False
    stall_after: int | None = None
    disconnect_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    error_code: str = "server_error"
    headers: dict[str, str] = field(default_factory=dict)
    reasoning: str = ""
    reasoning_form: Literal["field", "tags"] = "field"

    @classmethod
    def error_frame(
        cls, after: int = 0, code: str = "server_error", message: str | None = None, **kwargs: object
    ) -> Script:
        """A 200 stream that fails with an error frame after ``after`` content chunks."""
        return cls(error_after=after, error_code=code, error_message=message, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_after: float | None = None) -> Script:
        return cls(status=status, error_message=message, retry_after=retry_after)

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        size = max(1, self.chunk_size)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]

    def reasoning_deltas(self) -> list[dict[str, str]]:
        """The thinking as the deltas that carry it, in order."""
        if not self.reasoning:
            return []
        size = max(1, self.chunk_size)
        pieces = [self.reasoning[i : i + size] for i in range(0, len(self.reasoning), size)]
        if self.reasoning_form == "field":
            return [{"reasoning_content": piece} for piece in pieces]
        return [{"content": piece} for piece in ["<think>", *pieces, "</think>\n\n"]]

    def error_fields(self) -> tuple[str, str, str | None]:
        message, kind, code = ERROR_MESSAGES.get(
            self.status, ("The server could not handle the request.", "server_error", None)
        )
        return self.error_message or message, kind, code

    def with_text(self, text: str) -> Script:
        return replace(self, text=text, chunks=None)


Responder = Callable[["RecordedRequest"], "Script | str | Awaitable[Script | str | None] | None"]


class Gate:
    """Chunk permits granted by the test; a gated stream takes one per chunk.

    Permits do not outlive a stream: when a gated stream ends (completed, failed or the client
    left), unused permits are forfeited so ``release()`` never waits for chunks that will not come.
    """

    def __init__(self) -> None:
        self._granted = 0
        self._consumed = 0
        self._changed = asyncio.Condition()

    async def take(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._granted > self._consumed)

    async def sent(self) -> None:
        """The chunk bought with the last permit reached the socket."""
        async with self._changed:
            self._consumed += 1
            self._changed.notify_all()

    async def forfeit(self) -> None:
        async with self._changed:
            self._consumed = self._granted
            self._changed.notify_all()

    async def release(self, n: int) -> None:
        async with self._changed:
            self._granted += n
            target = self._granted
            self._changed.notify_all()
            await self._changed.wait_for(lambda: self._consumed >= target)
