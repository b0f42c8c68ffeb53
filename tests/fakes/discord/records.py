"""What the emulator saw and did, for assertions, plus async waits on it (tests never sleep)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FilePart:
    """One multipart file field of a request."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RequestRecord:
    method: str
    path: str
    route: str  # the matched template, e.g. "/channels/{channel_id}/messages"; "" when unknown
    query: dict[str, str]
    headers: dict[str, str]  # the Authorization value is replaced by "<redacted>"
    json: Any = None  # the JSON body, or the multipart ``payload_json``
    files: list[FilePart] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)
    status: int | None = None  # the HTTP status answered (None while the handler still runs)
    response: Any = None  # the JSON body answered

    @property
    def unknown_route(self) -> bool:
        return self.route == ""

    @property
    def refused(self) -> bool:
        """Discord said no: a 4xx, 429 included."""
        return self.status is not None and 400 <= self.status < 500

    @property
    def error_code(self) -> int | None:
        """Discord's JSON error ``code`` (10008, 50013, ...): None for a success and for a 429, which has none."""
        if not self.refused or not isinstance(self.response, dict):
            return None
        code = self.response.get("code")
        return code if isinstance(code, int) else None


@dataclass(frozen=True)
class RateLimitRecord:
    """One 429 the emulator served."""

    method: str
    path: str
    bucket: str
    scope: str  # "user" | "shared" | "global"
    retry_after: float
    is_global: bool
    at: float


@dataclass(frozen=True)
class MentionRecord:
    """Who one send or edit would have pinged, given its content and ``allowed_mentions``."""

    message_id: int
    kind: str  # "create" | "edit"
    allowed_mentions: dict[str, Any] | None
    users: frozenset[int]
    roles: frozenset[int]
    everyone: bool

    @property
    def pinged_anyone(self) -> bool:
        return bool(self.users or self.roles or self.everyone)


@dataclass(frozen=True)
class TimeoutRecord:
    guild_id: int
    user_id: int
    until: str | None
    reason: str | None
    at: float


@dataclass(frozen=True)
class ReactionRecord:
    message_id: int
    user_id: int
    emoji: str
    added: bool
    at: float


@dataclass(frozen=True)
class TypingRecord:
    channel_id: int
    user_id: int
    at: float


@dataclass(frozen=True)
class CallbackRecord:
    """One interaction callback (``type`` 4 message, 5 defer, 6 deferred update, 7 update, 9 modal)."""

    type: int
    data: dict[str, Any]
    at: float

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & 64)


class Notifier:
    """Wakes every waiter whenever something is recorded; waiters re-check their condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, condition: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:  # noqa: ASYNC109
        """Return ``condition()`` as soon as it is truthy; raise ``TimeoutError`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s: {what or condition}")
            event = self._event
            # Re-check at least every 0.25 s: time-based conditions (deadlines) change without a record.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))


class Recorder:
    """Every list the tests assert on, in arrival order."""

    def __init__(self) -> None:
        self.notifier = Notifier()
        self.requests: list[RequestRecord] = []
        self.rate_limits: list[RateLimitRecord] = []
        self.mentions: list[MentionRecord] = []
        self.timeouts: list[TimeoutRecord] = []
        self.reactions: list[ReactionRecord] = []
        self.typing: list[TypingRecord] = []
        self.gateway_sent: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []

    def add(self, records: list[Any], item: Any) -> None:
        records.append(item)
        self.notifier.notify()

    @property
    def unknown_routes(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.unknown_route]

    @property
    def refusals(self) -> list[RequestRecord]:
        """Requests Discord answered with a 4xx (429 included), in arrival order."""
        return [r for r in self.requests if r.refused]

    def requests_to(self, method: str, route: str) -> list[RequestRecord]:
        """Requests whose matched template is ``route`` (without the ``/api/v10`` prefix)."""
        return [r for r in self.requests if r.method == method and r.route == route]
