"""The request planner: a channel's turns + this question -> chat messages within a budget (pure: no
Discord, no storage, no I/O).

A channel's memory is a list of :class:`~bot.conversation.turns.Turn` (oldest first). Building a
``/chat/completions`` request is two steps so that image bytes can come from the store in between::

    plan = plan_request(system_prompt=..., history=turns, current=turn, limits=limits)
    images = await store.get_images(plan.image_hashes)     # or prepared images already in hand
    messages = plan.render(images)

Budget rules (see :func:`plan_request`):

* Token estimates: text costs ``ceil(len(text) / 4)`` tokens (a common rule of thumb for English; the
  model's real count differs, so keep ``max_tokens`` well below the context window), every message
  costs :data:`MESSAGE_OVERHEAD_TOKENS` more, and an image costs its own ``tokens`` (computed when it
  was prepared).
* The system message and the current user turn are always sent. If the current turn alone does not
  fit, its *text* is cut from the end (never its images, never the system prompt) down to what fits,
  but never below :data:`MIN_CURRENT_CHARS` characters; the plan then reports ``over_budget``.
* History is taken newest first until ``max_turns`` or the token budget stops it, or until a gap of
  more than ``idle_seconds`` between turns (an idle conversation starts afresh). History stays
  contiguous: the first turn that does not fit ends it. It starts with a user turn: an answer whose
  question was left out is left out too (strict chat templates want user/assistant alternation).
* Images: the current turn's images are sent first (up to ``max_images_per_request``), then the newest
  images of the history. Every other image becomes a text placeholder carrying what the bot already
  said about it: ``[image: <the assistant's next reply, truncated>]``. An image sent once is not sent
  again for an older turn (e.g. "the image above" re-attached to the current turn).
* User turns are prefixed with the author's display name (``"Alice: ..."``), unless ``named=False``.
* Spoilers: an image posted as a spoiler keeps ``ImageRef.spoiler``;
  :func:`~bot.conversation.turns.may_reveal_spoiler` tells, before planning, whether the answer must go
  behind spoiler bars (the image, or what was said about it, may be in the request).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from bot.conversation.turns import (
    MESSAGE_OVERHEAD_TOKENS,
    ImageRef,
    MemoryLimits,
    Turn,
    current_session,
    estimate_text_tokens,
    message_tokens,
)

log = logging.getLogger(__name__)

MIN_CURRENT_CHARS = 200
"""The current turn's text is never cut below this many characters, even when over budget."""


MAX_NAME_CHARS = 64


TRUNCATION_MARK = "…"


@runtime_checkable
class HasContentPart(Protocol):
    """A prepared image that renders its own OpenAI ``image_url`` part."""

    def content_part(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One message of a planned request: its final text and the images to send with it."""

    role: Literal["system", "user", "assistant"]
    text: str
    images: tuple[ImageRef, ...] = ()


ImageSource = str | bytes | HasContentPart
"""What :meth:`RequestPlan.render` accepts per hash: a ``data:`` URL, raw prepared bytes, or an image
with ``content_part()``."""


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Which turns and images go into a request; :meth:`render` turns it into ``messages``."""

    messages: tuple[PlannedMessage, ...]
    tokens: int
    history_turns: int
    """History turns included (not counting the current turn)."""
    history_dropped: int
    """History turns left out (budget, turn limit or idle gap)."""
    images_as_text: int
    """Images not sent as images (a placeholder with the earlier description, or a note)."""
    over_budget: bool

    @property
    def image_hashes(self) -> tuple[str, ...]:
        """The images to fetch before :meth:`render`, without repeats."""
        seen: dict[str, None] = {}
        for message in self.messages:
            for image in message.images:
                seen.setdefault(image.sha256, None)
        return tuple(seen)

    @property
    def images_sent(self) -> int:
        return sum(len(message.images) for message in self.messages)

    def render(self, images: Mapping[str, ImageSource]) -> list[dict[str, Any]]:
        """The ``messages`` list for ``/chat/completions``.

        An image missing from ``images`` (expired or purged meanwhile) is replaced by a placeholder
        instead of failing the request.
        """
        return [_render_message(message, images) for message in self.messages]


def _render_message(message: PlannedMessage, images: Mapping[str, ImageSource]) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.text}
    text = message.text
    parts: list[dict[str, Any]] = []
    for ref in message.images:
        source = images.get(ref.sha256)
        if source is None:
            log.warning("image %s missing from the store; sending a placeholder", ref.sha256[:12])
            text = f"{text}\n[image no longer available]".lstrip("\n")
            continue
        parts.append(_image_part(ref, source))
    head = [{"type": "text", "text": text}] if text else []
    if not parts:
        return {"role": message.role, "content": text}
    return {"role": message.role, "content": head + parts}


def _image_part(ref: ImageRef, source: ImageSource) -> dict[str, Any]:
    if isinstance(source, HasContentPart):
        return source.content_part()
    if isinstance(source, bytes):
        source = f"data:{ref.mime};base64,{base64.b64encode(source).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": source, "detail": ref.detail}}


def _clean_name(name: str) -> str:
    name = " ".join(name.split()) or "someone"
    return _truncate(name, MAX_NAME_CHARS)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATION_MARK), 0)].rstrip() + TRUNCATION_MARK


def _user_text(turn: Turn) -> str:
    return f"{_clean_name(turn.author_name)}: {turn.text}"


def _descriptions(history: Sequence[Turn], limit: int) -> list[str]:
    """For each user turn, what the bot said about its images: the first assistant turn after it."""
    result = [""] * len(history)
    following = ""
    for index in range(len(history) - 1, -1, -1):
        turn = history[index]
        if turn.role == "assistant":
            following = _truncate(" ".join(turn.text.split()), limit)
        else:
            result[index] = following
    return result


def _placeholder(description: str) -> str:
    return f"[image: {description}]" if description else "[image: an earlier image, not described]"


@dataclass(slots=True)
class _Budget:
    tokens_left: int
    images_left: int
    sent: set[str]
    """Hashes already sent as images in this request: a repeat becomes a short placeholder."""


REPEATED_IMAGE = "[image: the same picture as shown later]"


def _plan_turn(turn: Turn, description: str, budget: _Budget) -> PlannedMessage | None:
    """The turn as a message if it fits in ``budget`` (which it then consumes), else ``None``."""
    if turn.role == "assistant":
        cost = estimate_text_tokens(turn.text) + MESSAGE_OVERHEAD_TOKENS
        if cost > budget.tokens_left:
            return None
        budget.tokens_left -= cost
        return PlannedMessage("assistant", turn.text)
    text = _user_text(turn)
    placeholders: list[str] = []
    sent: list[ImageRef] = []
    images_left = budget.images_left
    # Price every image as a placeholder first; then upgrade an image to "sent" only if it still fits.
    placeholder = _placeholder(description)
    placeholder_cost = estimate_text_tokens("\n" + placeholder)
    repeats = [image.sha256 in budget.sent for image in turn.images]
    base = (
        estimate_text_tokens(text)
        + MESSAGE_OVERHEAD_TOKENS
        + sum(estimate_text_tokens("\n" + REPEATED_IMAGE) if r else placeholder_cost for r in repeats)
    )
    if base > budget.tokens_left:
        return None
    spare = budget.tokens_left - base
    for image, repeat in zip(turn.images, repeats, strict=True):
        upgrade = image.tokens - placeholder_cost
        if repeat:
            placeholders.append(REPEATED_IMAGE)
        elif images_left > 0 and upgrade <= spare:
            sent.append(image)
            images_left -= 1
            spare -= upgrade
        else:
            placeholders.append(placeholder)
    budget.tokens_left = spare
    budget.images_left = images_left
    budget.sent.update(image.sha256 for image in sent)
    full_text = "\n".join([text, *placeholders])
    return PlannedMessage("user", full_text, tuple(sent))


def _plan_current(current: Turn, limits: MemoryLimits, tokens_left: int, named: bool) -> PlannedMessage:
    """The current turn, always sent; its text is cut (not below MIN_CURRENT_CHARS) if it cannot fit."""
    sent = current.images[: limits.max_images_per_request]
    text = _user_text(current) if named else current.text
    if skipped := len(current.images) - len(sent):
        text += f"\n[{skipped} more image(s) not sent: limit of {limits.max_images_per_request} per request]"
    room = tokens_left - sum(image.tokens for image in sent) - MESSAGE_OVERHEAD_TOKENS
    if estimate_text_tokens(text) > room:
        text = _truncate(text, max(room * 4, MIN_CURRENT_CHARS))
    return PlannedMessage("user", text, sent)


def plan_request(
    *,
    system_prompt: str,
    history: Sequence[Turn],
    current: Turn,
    limits: MemoryLimits,
    now: float | None = None,
    named: bool = True,
) -> RequestPlan:
    """Choose what of ``history`` (oldest first) goes into a request answering ``current``.

    ``named``: the current message starts with its author's display name, as every message of a chat
    does (several people talk in a channel); a describe request is one person's and goes without."""
    if current.role != "user":
        raise ValueError("the current turn must be a user turn")
    now = time.time() if now is None else now
    system = PlannedMessage("system", system_prompt)
    fixed = _message_cost(system)
    current_message = _plan_current(current, limits, limits.max_tokens - fixed, named)
    fixed += _message_cost(current_message)
    budget = _Budget(
        tokens_left=max(limits.max_tokens - fixed, 0),
        images_left=limits.max_images_per_request - len(current_message.images),
        sent={image.sha256 for image in current_message.images},
    )
    session = current_session(history, idle_seconds=limits.idle_seconds, now=min(now, current.created_at))
    descriptions = _descriptions(session, limits.description_chars)
    chosen: list[PlannedMessage] = []
    as_text = len(current.images) - len(current_message.images)
    for index in range(len(session) - 1, -1, -1):
        turn = session[index]
        if len(chosen) >= limits.max_turns:
            break
        message = _plan_turn(turn, descriptions[index], budget)
        if message is None:
            break
        as_text += len(turn.images) - len(message.images)
        chosen.append(message)
    while chosen and chosen[-1].role == "assistant":
        chosen.pop()  # an answer whose question was left out: history starts with a question
    chosen.reverse()
    tokens = fixed + sum(_message_cost(message) for message in chosen)
    return RequestPlan(
        messages=(system, *chosen, current_message),
        tokens=tokens,
        history_turns=len(chosen),
        history_dropped=len(history) - len(chosen),
        images_as_text=as_text,
        over_budget=tokens > limits.max_tokens,
    )


def _message_cost(message: PlannedMessage) -> int:
    return message_tokens(message.text, message.images)
