"""One answer: a model stream poured into a live reply, every failure shown as a short plain line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from bot.vlm.client import Completion, Usage, VisionError

log = logging.getLogger(__name__)

CUT_SHORT = "(stopped at the length cap)"
FILTERED = "The model service stopped this answer early (its content filter)."
INTERNAL_ERROR = "Something went wrong on my side. Please try again in a moment."
STOPPED = "(stopped)"


class ReplyDeleted(Exception):
    """The reply an answer streams into is gone (someone deleted it): stop quietly, show nothing."""


class ReplyStopped(Exception):
    """Someone stopped the answer (its Stop button): the request is closed; ``text`` is what was written."""

    def __init__(self, text: str) -> None:
        super().__init__("the answer was stopped")
        self.text = text


class AnswerTarget(Protocol):
    """Where an answer streams to: a live reply in Discord, or anything else that shows text.

    ``stream`` raises :class:`ReplyDeleted` when the reply is gone and :class:`ReplyStopped` when it
    was stopped; ``fail`` and ``finish`` never raise. ``thinking`` is called when a reasoning model
    starts to think (nothing of it is shown).
    """

    async def stream(self, deltas: AsyncIterable[str]) -> str: ...

    def thinking(self) -> None: ...

    async def fail(self, reason: str) -> None: ...

    async def finish(self, note: str | None = None, *, answer: Completion | None = None) -> None: ...


class ModelStream(Protocol):
    """A model's answer as it streams (:class:`~bot.vlm.VisionStream`, or the guard's metered one)."""

    text: str

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def __anext__(self) -> str: ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finish_reason(self) -> str | None: ...

    async def aclose(self) -> None: ...


class Model(Protocol):
    """What answers are asked of: :class:`~bot.vlm.VisionClient`, or the guard's metered client for one
    admitted request (``bot.guard.MeteredVision``), which every feature uses."""

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_thinking: Callable[[], None] | None = None,
    ) -> ModelStream: ...


def note_lines(notes: Sequence[str]) -> str | None:
    """Small grey lines under an answer (Discord's `-#` subtext)."""
    return "\n".join(f"-# {note}" for note in notes) or None


async def stream_answer(
    reply: AnswerTarget,
    vision: Model,
    messages: list[dict],
    *,
    notes: Sequence[str] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
    remember: Callable[[Completion], Awaitable[None]] | None = None,
) -> Completion | None:
    """Stream the model's answer into ``reply``; return it, or None when it failed (already shown).

    ``remember`` stores a complete answer *before* the final edit shows it complete, so an answer that
    a user saw finished is never missing from memory, even if the bot is killed right after. A stopped
    answer is finished (and remembered) with what was written and a "(stopped)" line.
    """
    stream = vision.stream(messages, temperature=temperature, max_tokens=max_tokens, on_thinking=reply.thinking)
    stopped = False
    try:
        text = await reply.stream(stream)
    except ReplyStopped as stop:
        log.info("Answer stopped by a click; upstream request closed")
        text, stopped = stop.text, True
    except VisionError as error:
        log.info("Model request failed (%s): %s", error.kind, error.reason)
        await reply.fail(error.reason)
        return None
    except ReplyDeleted:
        log.info("Reply deleted while streaming; upstream request cancelled")
        return None
    except Exception:
        log.exception("Answer failed")
        await stream.aclose()
        await reply.fail(INTERNAL_ERROR)  # never raises: replies log their own Discord errors
        return None
    all_notes = list(notes)
    if stopped:
        all_notes.append(STOPPED)
    elif stream.finish_reason == "length":
        all_notes.append(CUT_SHORT)
    elif stream.finish_reason == "content_filter":  # ends like a normal answer; say it is not one
        all_notes.append(FILTERED)
    answer = Completion(
        text=text, usage=stream.usage, finish_reason=None if stopped else stream.finish_reason, stopped=stopped
    )
    if remember is not None and text.strip():
        await remember(answer)
    await reply.finish(note_lines(all_notes), answer=answer)
    return answer
