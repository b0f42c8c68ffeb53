"""A channel's conversation: remembered turns + this question -> a streamed answer -> remembered.

The cogs hand over plain data (who asked, what, which prepared images, where to reply); this module
reads the channel's memory, builds the request within the budget, streams the answer and stores the
finished exchange. An answer that failed is not stored, so memory never holds half an exchange.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.conversation.planner import RequestPlan, plan_request
from bot.conversation.steering import AnswerKind
from bot.conversation.turns import (
    ContextSummary,
    ExchangeForgotten,
    ImageRef,
    MemoryLimits,
    Turn,
    may_reveal_spoiler,
    summarize,
    turns_in_reach,
)
from bot.images import PreparedImage
from bot.metrics import counts_as
from bot.prompts import ALT_TEXT_SYSTEM, CONTINUE_REQUEST, chat_system, describe_request
from bot.vlm import AnswerTarget, Completion, Model, stream_answer

if TYPE_CHECKING:
    from bot.store import Store  # the store imports this package's turns: no import at run time

log = logging.getLogger(__name__)

MEMORY_UNAVAILABLE = "I could not reach my memory just now, so this answer does not use the earlier conversation."
"""Note under an answer given while the store could not be read (see :meth:`ChatService.recall`)."""

FORGOTTEN = "chat-forgotten"
"""Cache namespace: per channel, the snowflake of its last ``/forget`` (see :meth:`ChatService.image_horizon`)."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """A remembered question and its answer, with the turns before them (what a regeneration sees)."""

    history: list[Turn]
    question: Turn
    answer: Turn
    newest: bool
    """No later answer exists in the channel's memory."""


@dataclass(frozen=True, slots=True)
class Recall:
    """What a question may draw on, read once when it arrives (see :meth:`ChatService.recall`)."""

    turns: list[Turn]
    image_horizon: int
    """Snowflake after which "the image above" may look (see :meth:`ChatService.image_horizon`)."""
    available: bool = True
    """False when the store could not be read: answer without memory, say so, bring in no image."""


class ChatService:
    def __init__(self, store: Store, limits: MemoryLimits) -> None:
        """Every answer is asked of the ``model`` its caller passes: the guard's metered client for the
        one who asked (``bot.guard.MeteredVision``), so none goes out unbudgeted."""
        self.store = store
        self.limits = limits

    async def history(self, channel_id: int) -> list[Turn]:
        """The turns a question may draw on: the newest ``max_turns``.

        Read it once per question and pass it to :meth:`answer`: the reply's wrap, chosen before the
        request is planned, then matches what the request holds.
        """
        return await self.store.history(channel_id, limit=self.limits.max_turns)

    def spoiler_in_memory(self, history: Sequence[Turn]) -> bool:
        """Whether an answer planned from ``history`` may show a spoiler image or what was said about one."""
        return may_reveal_spoiler(history, limits=self.limits, now=time.time())

    async def context(self, channel_id: int) -> ContextSummary:
        """The remembered turns the next question here would be answered with (at most ``max_turns``
        of the current session; the token budget may leave out more)."""
        turns = await self.store.history(channel_id, limit=self.limits.max_turns)
        return summarize(turns_in_reach(turns, limits=self.limits, now=time.time()))

    async def recall(self, channel_id: int) -> Recall:
        """The channel's memory for a question: its turns (:meth:`history`) and image horizon.

        A store that cannot be read (a Redis outage, a locked or broken file) must not silence the
        bot: the question is then answered without memory. No image is brought in from above either,
        since whether it was forgotten with ``/forget`` cannot be checked.
        """
        try:
            turns = await self.history(channel_id)
            return Recall(turns, await self.image_horizon(channel_id, turns))
        except Exception:
            log.warning("Could not read the memory of channel %s; answering without it", channel_id, exc_info=True)
            return Recall([], 0, available=False)

    async def image_horizon(self, channel_id: int, history: Sequence[Turn] | None = None) -> int:
        """The snowflake after which "the image above" may look for images in the channel (0: anywhere).

        Images posted up to the newest remembered turn with images are already in memory (the
        question that came with them, a description, or a question that brought them in), and
        images from before a ``/forget`` must stay forgotten. Message ids and interaction ids are
        both snowflakes, so they order by Discord's clock whatever the bot's clock says.
        """
        turns = await self.history(channel_id) if history is None else history
        remembered = max((turn.message_id or 0 for turn in turns if turn.images), default=0)
        marker = await self.store.cache_get(FORGOTTEN, str(channel_id))
        return max(remembered, int(marker["snowflake"]) if marker else 0)

    async def forget(self, channel_id: int, *, snowflake: int, horizon_seconds: float) -> int:
        """Clear the channel's memory (turns and images); returns how many turns went.

        ``snowflake`` (the ``/forget`` interaction's id) is kept for ``horizon_seconds`` so that "the
        image above" does not bring back an image posted before the ``/forget``.
        """
        removed = await self.store.forget(channel_id)
        await self.store.cache_set(FORGOTTEN, str(channel_id), {"snowflake": snowflake}, ttl=horizon_seconds)
        return removed

    async def channel_deleted(self, channel_id: int) -> None:
        """A deleted channel or thread takes its memory (turns and images) with it. If the store is
        unreachable now, the retention purge removes it later."""
        try:
            removed = await self.store.forget(channel_id)
        except Exception:
            log.warning("Could not clear the memory of deleted channel %s", channel_id, exc_info=True)
            return
        log.info("Channel %s was deleted: its memory (%d turns) went with it", channel_id, removed)

    @counts_as("chat")
    async def answer(
        self,
        channel_id: int,
        question: Turn,
        images: Sequence[PreparedImage],
        reply: AnswerTarget,
        model: Model,
        *,
        history: Sequence[Turn] | None = None,
        notes: Sequence[str] = (),
        persona: str = "",
    ) -> Completion | None:
        """Answer ``question`` (whose ``images`` are the prepared ``images``) in the light of memory:
        ``history`` as read by :meth:`recall` when the question arrived (read now if not given), in the
        voice of ``persona`` (the server's system prompt; "" for Glimpse's own)."""
        if history is None:
            history = await self.history(channel_id)
        plan = plan_request(
            system_prompt=chat_system(persona), history=history, current=question, limits=self.limits
        )
        return await self._stream(channel_id, plan, question, images, reply, model, notes)

    @counts_as("describe")
    async def describe(
        self,
        channel_id: int,
        question: Turn,
        images: Sequence[PreparedImage],
        reply: AnswerTarget,
        model: Model,
        *,
        request: str,
        notes: Sequence[str] = (),
        system_prompt: str = ALT_TEXT_SYSTEM,
    ) -> Completion | None:
        """Describe ``images`` (alt text, or ``request`` about them): a request of its own, without the
        channel's history, remembered as an exchange of its conversation so follow-ups can refer to it.

        ``question`` is the turn to remember (what the person said); ``request`` is what the model is
        asked (the alt-text task, or the person's own prompt); ``system_prompt`` says how (the server's
        language and length, :func:`bot.prompts.alt_text_system`)."""
        current = replace(question, text=request)
        plan = plan_request(
            system_prompt=system_prompt, history=(), current=current, limits=self.limits, named=False
        )
        return await self._stream(channel_id, plan, question, images, reply, model, notes)

    async def _stream(
        self,
        channel_id: int,
        plan: RequestPlan,
        question: Turn,
        images: Sequence[PreparedImage],
        reply: AnswerTarget,
        model: Model,
        notes: Sequence[str],
    ) -> Completion | None:
        """Send ``plan`` (its stored images read back), stream the answer into ``reply``, and remember
        the exchange once it is complete."""
        sources: dict[str, PreparedImage | bytes] = {image.sha256: image for image in images}
        sources.update(await self._stored_images(h for h in plan.image_hashes if h not in sources))
        log.debug(
            "Request for channel %s: %d history turns, %d images, ~%d tokens",
            channel_id,
            plan.history_turns,
            plan.images_sent,
            plan.tokens,
        )
        return await stream_answer(
            reply,
            model,
            plan.render(sources),
            notes=notes,
            remember=lambda answer: self.remember(channel_id, question, images, answer.text),
        )

    async def _stored_images(self, hashes: Iterable[str]) -> dict[str, bytes]:
        try:
            return await self.store.get_images(hashes)
        except Exception:  # the plan's render sends a placeholder for each missing image
            log.warning("Could not read stored images", exc_info=True)
            return {}

    # -- steering: regenerate and continue (see bot.conversation.steering) --------------------------

    async def exchange(self, channel_id: int, question_id: int) -> Exchange | None:
        """The remembered exchange whose question has the message id ``question_id``, if any."""
        turns = await self.store.history(channel_id)
        for index, turn in enumerate(turns[:-1]):
            if turn.role == "user" and turn.message_id == question_id and turns[index + 1].role == "assistant":
                newest = not any(later.role == "assistant" for later in turns[index + 2 :])
                return Exchange(turns[:index], turn, turns[index + 1], newest)
        return None

    async def regenerate(
        self,
        channel_id: int,
        kind: AnswerKind,
        exchange: Exchange,
        reply: AnswerTarget,
        model: Model,
        *,
        system_prompt: str,
    ) -> Completion | None:
        """Ask the exchange's question again, as it was first asked (from the memory before it), under
        ``system_prompt`` (the channel's chat persona, or its alt-text style, as they are now); the new
        answer replaces the old one in memory."""
        plan = self._replan(kind, exchange, system_prompt)
        return await self._restream(channel_id, exchange, plan, reply, model, lambda text: text)

    async def continue_answer(
        self,
        channel_id: int,
        kind: AnswerKind,
        exchange: Exchange,
        reply: AnswerTarget,
        model: Model,
        *,
        asker: Turn,
        system_prompt: str,
    ) -> Completion | None:
        """Ask for the rest of an answer cut short at the length cap (``asker``: who asks, as a turn);
        the rest joins the answer in memory."""
        plan = self._replan(kind, exchange, system_prompt, then=replace(asker, text=CONTINUE_REQUEST))
        return await self._restream(
            channel_id, exchange, plan, reply, model, lambda text: exchange.answer.text + text
        )

    def _replan(self, kind: AnswerKind, exchange: Exchange, system: str, *, then: Turn | None = None) -> RequestPlan:
        """The request that first produced the exchange's answer; with ``then``, that request followed
        by the answer and ``then`` (a request to continue)."""
        question = exchange.question
        if kind is AnswerKind.CHAT:
            history, current, named = exchange.history, question, True
        else:  # a description: a request of its own, the person's prompt or the alt-text task
            prompt = question.text if kind is AnswerKind.DESCRIBE else None
            frames = [image.frames for image in question.images]
            current = replace(question, text=describe_request(len(question.images), prompt, frames))
            history, named = [], False
        if then is not None:
            history, current = [*history, current, exchange.answer], then
        return plan_request(system_prompt=system, history=history, current=current, limits=self.limits, named=named)

    async def _restream(
        self,
        channel_id: int,
        exchange: Exchange,
        plan: RequestPlan,
        reply: AnswerTarget,
        model: Model,
        joined: Callable[[str], str],
    ) -> Completion | None:
        """Stream ``plan`` as the exchange's new answer; ``joined(new text)`` replaces it in memory."""
        messages = plan.render(await self._stored_images(plan.image_hashes))
        return await stream_answer(
            reply,
            model,
            messages,
            remember=lambda answer: self.replace_answer(channel_id, exchange.question, joined(answer.text)),
        )

    async def replace_answer(self, channel_id: int, question: Turn, text: str) -> None:
        """Store a regenerated or continued answer in place of the old one (never raises: the answer is
        on screen already)."""
        assert question.message_id is not None
        try:
            if not await self.store.replace_answer(channel_id, question.message_id, text):
                log.info("The answer to message %s was forgotten meanwhile; not stored", question.message_id)
        except Exception:
            log.exception("Could not store the new answer for channel %s", channel_id)

    async def answer_messages(self, channel_id: int, question_id: int) -> list[int]:
        """The ids of the messages showing the answer to ``question_id`` (see :meth:`note_replies`)."""
        try:
            return list(await self.store.replies_about(question_id, channel_id))
        except Exception:
            log.warning("Could not read the message ids of an answer in channel %s", channel_id, exc_info=True)
            return []

    async def note_replies(self, channel_id: int, question_id: int, message_ids: Sequence[int]) -> None:
        """Keep which messages show the answer to ``question_id``, as they are posted: a regeneration
        (even after a restart) streams into them, and deleting the question deletes them."""
        try:
            await self.store.add_replies(question_id, channel_id, message_ids)
        except Exception:
            log.warning("Could not keep the message ids of an answer in channel %s", channel_id, exc_info=True)

    async def remember(
        self, channel_id: int, question: Turn, images: Sequence[PreparedImage], answer_text: str
    ) -> None:
        """Store a finished exchange: the question (with its images) and the bot's answer, in one write
        (a crash cannot leave the question unanswered, and nothing can come between the two).

        An exchange whose question came before a ``/forget`` in the channel is not stored: it was
        answered from the memory that the ``/forget`` cleared."""
        answer = Turn(role="assistant", author_name="Glimpse", author_id=0, text=answer_text, created_at=time.time())
        try:
            # The /forget marker is checked by the store inside the write itself: a /forget that lands
            # while the answer is being stored cannot be undone by it.
            stored = await self.store.append_exchange(
                channel_id, question, answer, images, forget_marker=(FORGOTTEN, str(channel_id))
            )
            if not stored:
                log.info("Message %s was redelivered; its exchange is already remembered", question.message_id)
        except ExchangeForgotten:
            log.info("Channel %s was forgotten while message %s was answered; not stored", channel_id,
                     question.message_id)
        except Exception:
            # The answer is already on screen; losing its memory must not turn into an error message.
            log.exception("Could not store the exchange for channel %s", channel_id)


def user_turn(
    *,
    author_name: str,
    author_id: int,
    text: str,
    images: Sequence[PreparedImage] = (),
    spoilers: Sequence[bool] = (),
    message_id: int | None = None,
) -> Turn:
    """A user's question; ``spoilers`` flags each of ``images`` that came from a spoiler attachment
    (none when empty)."""
    flags = list(spoilers) or [False] * len(images)
    return Turn(
        role="user",
        author_name=author_name,
        author_id=author_id,
        text=text,
        images=tuple(ImageRef.of(image, spoiler=flag) for image, flag in zip(images, flags, strict=True)),
        message_id=message_id,
    )
