"""One answer: a model stream poured into a live reply, every failure shown as a short plain line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.replies import LiveReply, ReplyDeleted
from bot.vision import Usage, VisionClient, VisionError

log = logging.getLogger(__name__)

CUT_SHORT = "The answer was cut short: it reached the length limit."
INTERNAL_ERROR = "Something went wrong on my side. Please try again in a moment."


@dataclass(frozen=True)
class Answer:
    text: str
    usage: Usage | None
    finish_reason: str | None


def note_lines(notes: Sequence[str]) -> str | None:
    """Small grey lines under an answer (Discord's `-#` subtext)."""
    return "\n".join(f"-# {note}" for note in notes) or None


async def stream_answer(
    reply: LiveReply,
    vision: VisionClient,
    messages: list[dict],
    *,
    notes: Sequence[str] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Answer | None:
    """Stream the model's answer into ``reply``; return it, or None when it failed (already shown)."""
    stream = vision.stream(messages, temperature=temperature, max_tokens=max_tokens)
    try:
        text = await reply.stream(stream)
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
        await _fail_quietly(reply, INTERNAL_ERROR)
        return None
    all_notes = list(notes)
    if stream.finish_reason == "length":
        all_notes.append(CUT_SHORT)
    await reply.finish(note_lines(all_notes))
    return Answer(text=text, usage=stream.usage, finish_reason=stream.finish_reason)


async def _fail_quietly(reply: LiveReply, reason: str) -> None:
    try:
        await reply.fail(reason)
    except Exception:
        log.warning("Could not show the failure in Discord", exc_info=True)
