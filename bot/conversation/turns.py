"""A channel's remembered conversation: its turns, their images by reference, token estimates, and
which turns are in reach of the next question (pure: no Discord, no storage, no I/O).

A channel's memory is a list of :class:`Turn` (oldest first). Images only belong to user turns (an
OpenAI-compatible API takes image parts in user messages only): an auto-description is stored as a
user turn with the image followed by an assistant turn with the text. The request planner
(:mod:`bot.conversation.planner`) chooses from them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant"]


ROLES: tuple[Role, ...] = ("user", "assistant")


MESSAGE_OVERHEAD_TOKENS = 4
"""Per-message framing tokens (role markers) added to every message's estimate."""


def estimate_text_tokens(text: str) -> int:
    """Rough token count of ``text``: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def message_tokens(text: str, images: Iterable[ImageRef]) -> int:
    """Estimated tokens of one message: its text, its images sent as images, and the message overhead."""
    return estimate_text_tokens(text) + sum(image.tokens for image in images) + MESSAGE_OVERHEAD_TOKENS


class ImageLike(Protocol):
    """Anything describing a prepared image (``bot.images.prepare.PreparedImage`` fits)."""

    @property
    def sha256(self) -> str: ...
    @property
    def mime(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A reference to a prepared image kept in the store by content hash.

    ``spoiler``: the image was posted as a spoiler (a ``SPOILER_`` attachment), so every answer that
    sends it, or an earlier answer about it, goes behind spoiler bars (see :func:`may_reveal_spoiler`).
    ``frames``: an animation's frames on its contact sheet (1: a still image), so a description asked
    for again tells the model the same.
    """

    sha256: str
    mime: str
    width: int
    height: int
    tokens: int
    detail: str = "auto"
    spoiler: bool = False
    frames: int = 1

    @classmethod
    def of(cls, image: ImageLike, *, spoiler: bool = False) -> ImageRef:
        """The reference to a prepared image (anything with the :class:`ImageLike` attributes)."""
        return cls(
            sha256=image.sha256,
            mime=image.mime,
            width=image.width,
            height=image.height,
            tokens=image.tokens,
            detail=getattr(image, "detail", "auto"),
            spoiler=spoiler,
            frames=getattr(image, "frames", 1),
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """One remembered message of a channel's conversation.

    ``message_id`` is the Discord message the turn came from (the user's message, or the bot's reply);
    stores use it to ignore Discord's redelivered events.
    """

    role: Role
    author_name: str
    author_id: int
    text: str
    images: tuple[ImageRef, ...] = ()
    created_at: float = field(default_factory=time.time)
    message_id: int | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")
        if self.role == "assistant" and self.images:
            raise ValueError("assistant turns cannot carry images; attach them to the user turn")
        if not isinstance(self.images, tuple):
            object.__setattr__(self, "images", tuple(self.images))

    @property
    def tokens(self) -> int:
        """Estimated tokens of this turn with all its images sent as images."""
        return message_tokens(self.text, self.images)


class ExchangeForgotten(Exception):
    """The channel was forgotten (``/forget``) after the question was asked: the store kept nothing."""


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    """How much of a channel's memory goes into one request."""

    max_turns: int = 20
    max_tokens: int = 6000
    max_images_per_request: int = 2
    idle_seconds: float = 24 * 3600
    description_chars: int = 300
    """Length of an older image's placeholder description."""

    def __post_init__(self) -> None:
        if self.max_turns < 0 or self.max_tokens < 1 or self.max_images_per_request < 0:
            raise ValueError("memory limits must be positive")

    @classmethod
    def from_settings(cls, settings: Any) -> MemoryLimits:
        """Limits from ``bot.settings.Settings`` (duck-typed to keep this module free of config)."""
        return cls(
            max_turns=settings.memory_max_turns,
            max_tokens=settings.memory_max_tokens,
            max_images_per_request=settings.max_images_per_request,
            idle_seconds=settings.memory_idle_minutes * 60.0,
        )


def current_session(turns: Sequence[Turn], *, idle_seconds: float, now: float) -> Sequence[Turn]:
    """The turns (oldest first) after the last pause longer than ``idle_seconds``, counting from ``now``.

    This is what "idle conversations expire" means: after such a pause the conversation starts afresh,
    even though the store may keep the older turns until the retention limit.
    """
    newer = now
    for index in range(len(turns) - 1, -1, -1):
        if newer - turns[index].created_at > idle_seconds:
            return turns[index + 1 :]
        newer = turns[index].created_at
    return turns


def turns_in_reach(history: Sequence[Turn], *, limits: MemoryLimits, now: float) -> Sequence[Turn]:
    """The turns of ``history`` (oldest first) a request planned at ``now`` may take: the newest
    ``max_turns`` of the current session, from its first question on (as :func:`plan_request` takes
    them before the token budget, which may leave out more of the oldest)."""
    session = current_session(history, idle_seconds=limits.idle_seconds, now=now)
    reach = session[len(session) - min(len(session), limits.max_turns) :]
    skip = next((index for index, turn in enumerate(reach) if turn.role == "user"), len(reach))
    return reach[skip:]


def may_reveal_spoiler(history: Sequence[Turn], *, limits: MemoryLimits, now: float) -> bool:
    """Whether a request planned from ``history`` (oldest first) at ``now`` or later may send a spoiler
    image, or text about one, so that its answer belongs behind spoiler bars.

    Conservative, so that the reply's wrap can be chosen before the request is planned: every turn in
    reach counts (:func:`turns_in_reach`), even one the token budget will leave out, and a later
    ``now`` only shortens the session. A plan never starts with an answer, so what was said about a
    spoiler image is in reach only together with the image's own turn.
    """
    return any(image.spoiler for turn in turns_in_reach(history, limits=limits, now=now) for image in turn.images)


@dataclass(frozen=True, slots=True)
class ContextSummary:
    """What a channel's memory holds, for ``/context``."""

    turns: int
    images: int
    """Distinct images referenced."""
    tokens: int
    """Estimated tokens of all remembered turns with their images."""
    oldest_at: float | None
    newest_at: float | None

    def age_seconds(self, now: float | None = None) -> float:
        """Seconds since the oldest remembered turn (0 when empty)."""
        if self.oldest_at is None:
            return 0.0
        return max((time.time() if now is None else now) - self.oldest_at, 0.0)


def summarize(turns: Sequence[Turn]) -> ContextSummary:
    return ContextSummary(
        turns=len(turns),
        images=len({image.sha256 for turn in turns for image in turn.images}),
        tokens=sum(turn.tokens for turn in turns),
        oldest_at=min((turn.created_at for turn in turns), default=None),
        newest_at=max((turn.created_at for turn in turns), default=None),
    )
