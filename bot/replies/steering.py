"""Replies people can steer: Stop while an answer streams, Regenerate and Continue once it is done.

:meth:`Steering.reply` builds the live reply for a chat or describe answer: Stop on its last message
while it streams, then Regenerate (and Continue, when the model stopped at its length cap). The ids of
its messages are kept in the store as they are posted (a regeneration after a restart streams into the
same messages; deleting the question deletes them, see :mod:`bot.replies.withdrawal`). After the answer,
:meth:`Steering.answered` takes the buttons off the channel's previous answer, and off this one after
``REGENERATE_MINUTES``: both are paced edits of their own, since no text edit of that message is coming
to carry them (none for a message deleted meanwhile). A click is checked when it comes (see
:mod:`bot.conversation.steering`); the clicks arrive through the dynamic items of ``cogs/steering.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.conversation import (
    BUSY,
    CONTINUE,
    EXPIRED,
    FORGOTTEN,
    NOT_NEWEST,
    NOT_STREAMING,
    ONLY_ASKER,
    REGENERATE,
    STOP,
    AnswerKind,
    AnswerRef,
    ChatService,
    Exchange,
    Steer,
    expired,
    may_steer,
    stop_id,
    user_turn,
)
from bot.guard import MeteredVision, Purpose
from bot.replies.controls import Button
from bot.replies.live import LiveReply
from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry
from bot.replies.sinks import NO_MENTIONS, AnswerMessagesSink, ReplySink, message_deleter
from bot.replies.textsplit import Wrap
from bot.replies.withdrawal import delete_paced
from bot.vlm import CUT_SHORT, Completion, VisionClient, note_lines

if TYPE_CHECKING:
    from bot.gate import Gate  # the gate answers through bot.replies: a runtime import would be a cycle

log = logging.getLogger(__name__)

ANSWER_FILE = "answer.txt"
"""A long answer's whole text, attached (see ``ANSWER_MAX_MESSAGES``)."""


def stop_button(asker_id: int) -> Button:
    return Button(STOP, stop_id(asker_id), "danger")


def answer_buttons(ref: AnswerRef, answer: Completion) -> list[Button]:
    """Regenerate on every answer with text; Continue too when the model stopped at its length cap."""
    if not answer.text.strip():
        return []
    buttons = [Button(REGENERATE, ref.custom_id(Steer.REGENERATE))]
    if answer.cut_short:
        buttons.append(Button(CONTINUE, ref.custom_id(Steer.CONTINUE), "primary"))
    return buttons


CUT_SHORT_LINE = note_lines([CUT_SHORT]) or ""


def without_line(content: str, line: str) -> str:
    """``content`` without the line ``line`` (the note under an answer), or unchanged."""
    return "\n".join(kept for kept in content.split("\n") if kept != line) or content


def is_moderator(interaction: discord.Interaction) -> bool:
    """Manage Messages in the channel of the click, as Discord computed it for this interaction."""
    return interaction.guild_id is not None and interaction.permissions.manage_messages


@dataclass
class _Offer:
    """The channel's newest answer with buttons, and the task that takes them off when they expire."""

    message_id: int
    question_id: int
    expiry: asyncio.Task[None]


class Steering:
    def __init__(
        self,
        *,
        chat: ChatService,
        pacer: Callable[[], ChannelPacer],
        live: LiveRegistry,
        minutes: int,
        channel: Callable[[int], discord.abc.Messageable],
        gate: Gate,
        vision: Callable[[], VisionClient],
        max_messages: int = 4,
    ) -> None:
        """``pacer``: the bot's pacer, looked up when needed (the bot's ``pacer`` may be replaced);
        ``channel``: a channel to edit messages in, by id (the bot's ``get_partial_messageable``);
        ``gate`` admits a regeneration or continuation like any request (budgets, rate) and ``vision``
        (looked up when needed) is the model it is metered over; ``max_messages``: ANSWER_MAX_MESSAGES."""
        self.chat = chat
        self.gate = gate
        self._vision = vision
        self.max_messages = max_messages
        self._channel = channel
        self._pacer = pacer
        self.live = live
        self.minutes = minutes
        self._offers: dict[int, _Offer] = {}  # channel id -> its newest answer's buttons
        self._busy: set[tuple[int, int]] = set()  # (channel, question) being regenerated or continued
        self._tasks: set[asyncio.Task[None]] = set()

    def reply(
        self, sink: ReplySink, ref: AnswerRef, *, wrap: Wrap | None = None, about: int | None = None
    ) -> LiveReply:
        """The live reply for an answer to ``ref``: Stop while it streams, Regenerate / Continue after;
        its messages are noted in the store as the replies about the question, and about ``about`` (the
        message a context menu was used on), whose deletion then deletes them too."""
        sources = list(dict.fromkeys((ref.question_id, about or ref.question_id)))

        async def posted(message_id: int) -> None:
            for source in sources:
                await self.chat.note_replies(sink.channel_id, source, [message_id])

        return LiveReply(
            sink,
            self._pacer(),
            wrap=wrap,
            overflow="attach",  # a long answer ends as a preview and a file, not message after message
            max_messages=self.max_messages,
            attachment_name=ANSWER_FILE,
            registry=self.live,
            stop=stop_button(ref.asker_id),
            controls=lambda answer: answer_buttons(ref, answer),
            about=about or ref.question_id,
            on_posted=posted,
        )

    async def answered(
        self, channel_id: int, question_id: int, message_ids: list[int], answer: Completion | None
    ) -> None:
        """Bookkeeping once an answer is shown in ``message_ids``: where it is, and whose buttons go
        (see the module docstring). Nothing for an answer that failed or has no text."""
        if answer is None or not answer.text.strip() or not message_ids:
            return
        last = message_ids[-1]
        previous = self._offers.pop(channel_id, None)
        if previous is not None:
            previous.expiry.cancel()
            if previous.message_id != last:
                self._spawn(self._take_buttons_off(channel_id, previous.question_id, previous.message_id))
        expiry = asyncio.create_task(self._expire(channel_id, question_id, last), name="glimpse-buttons-expiry")
        self._offers[channel_id] = _Offer(last, question_id, expiry)

    def close(self) -> None:
        """Cancel the pending expiries (their buttons then go when clicked: the click checks the age).

        Nothing to await: the bot's shutdown must not wait for them (it closes the store after this)."""
        for task in [offer.expiry for offer in self._offers.values()] + list(self._tasks):
            task.cancel()
        self._offers.clear()

    # -- clicks ----------------------------------------------------------------------------------

    async def stop_clicked(self, interaction: discord.Interaction, asker_id: int) -> None:
        if not may_steer(interaction.user.id, asker_id, moderator=is_moderator(interaction)):
            await interaction.response.send_message(ONLY_ASKER, ephemeral=True)
            return
        reply = self.live.get(interaction.message.id) if interaction.message else None
        if reply is None:
            # A reply unregisters only after its final edit, which takes Stop off: a Stop still on the
            # message belongs to an answer this process is not writing (it was cut off by a restart).
            await self._retire(interaction, NOT_STREAMING)
            return
        log.info("User %s stopped an answer in channel %s", interaction.user.id, interaction.channel_id)
        reply.stop()  # the request closes now; the reply's final edit takes the button off
        await interaction.response.defer()

    async def answer_clicked(
        self, interaction: discord.Interaction, action: Steer, ref: AnswerRef, *, system_prompt: str
    ) -> None:
        """Regenerate or Continue, after the checks (see the module docstring); ``system_prompt``: the
        channel's chat persona or alt-text style, as they are now."""
        channel = interaction.channel
        if channel is None or interaction.message is None or not isinstance(channel, discord.abc.Messageable):
            return
        if not may_steer(interaction.user.id, ref.asker_id, moderator=is_moderator(interaction)):
            await interaction.response.send_message(ONLY_ASKER, ephemeral=True)
            return
        key = (channel.id, ref.question_id)
        if key in self._busy:
            await interaction.response.send_message(BUSY, ephemeral=True)
            return
        if expired(ref.question_id, minutes=self.minutes, now=time.time()):
            await self._retire(interaction, EXPIRED)
            return
        exchange = await self.chat.exchange(channel.id, ref.question_id)
        if exchange is None or not exchange.newest:
            await self._retire(interaction, FORGOTTEN if exchange is None else NOT_NEWEST)
            return
        admission = await self.gate.admit(interaction, Purpose.CHAT)  # a new answer costs like one
        if admission is None:
            return
        model = MeteredVision(admission, self._vision())
        self._busy.add(key)
        try:
            ids = await self.chat.answer_messages(channel.id, ref.question_id) or [interaction.message.id]
            log.info("User %s: %s in channel %s", interaction.user.id, action.name.lower(), channel.id)
            if action is Steer.CONTINUE:
                # The old part loses its buttons and its "cut short" line with the click's own response.
                content = without_line(interaction.message.content, CUT_SHORT_LINE)
                await interaction.response.edit_message(content=content, view=None, allowed_mentions=NO_MENTIONS)
                await self._continue(interaction, channel, ref, exchange, ids, system_prompt, model)
            else:
                await interaction.response.defer()
                await self._regenerate(channel, ref, exchange, ids, system_prompt, model)
        finally:
            self._busy.discard(key)

    async def _regenerate(
        self,
        channel: discord.abc.Messageable,
        ref: AnswerRef,
        exchange: Exchange,
        ids: list[int],
        system_prompt: str,
        model: MeteredVision,
    ) -> None:
        sink = AnswerMessagesSink(channel, ids)
        reply = self.reply(sink, ref, wrap=self._wrap(ref, exchange))
        answer = await self.chat.regenerate(
            sink.channel_id, ref.kind, exchange, reply, model, system_prompt=system_prompt
        )
        # The new answer is shorter: its old extra messages go (their deletion takes them off the record).
        await delete_paced(self._pacer(), message_deleter(self._channel), sink.channel_id, sink.unused())
        await self.answered(sink.channel_id, ref.question_id, reply.message_ids, answer)

    async def _continue(
        self,
        interaction: discord.Interaction,
        channel: discord.abc.Messageable,
        ref: AnswerRef,
        exchange: Exchange,
        ids: list[int],
        system_prompt: str,
        model: MeteredVision,
    ) -> None:
        sink = AnswerMessagesSink(channel, [], after=ids[-1])
        reply = self.reply(sink, ref, wrap=self._wrap(ref, exchange))
        user = interaction.user
        asker = user_turn(author_name=getattr(user, "display_name", str(user)), author_id=user.id, text="")
        answer = await self.chat.continue_answer(
            sink.channel_id, ref.kind, exchange, reply, model, asker=asker, system_prompt=system_prompt
        )
        await self.answered(sink.channel_id, ref.question_id, ids + reply.message_ids, answer)

    def _wrap(self, ref: AnswerRef, exchange: Exchange) -> Wrap | None:
        seen = [*exchange.history, exchange.question] if ref.kind is AnswerKind.CHAT else [exchange.question]
        return Wrap.SPOILER if self.chat.spoiler_in_memory(seen) else None

    async def _retire(self, interaction: discord.Interaction, reason: str) -> None:
        """The buttons no longer apply: take them off with the click's own response, and say why."""
        await interaction.response.edit_message(view=None, allowed_mentions=NO_MENTIONS)
        await interaction.followup.send(reason, ephemeral=True)

    # -- buttons leaving -------------------------------------------------------------------------

    async def _expire(self, channel_id: int, question_id: int, message_id: int) -> None:
        await asyncio.sleep(self.minutes * 60)
        offer = self._offers.get(channel_id)
        if offer is not None and offer.message_id == message_id:
            del self._offers[channel_id]
        await self._take_buttons_off(channel_id, question_id, message_id)

    async def _take_buttons_off(self, channel_id: int, question_id: int, message_id: int) -> None:
        """One paced edit: nothing else is coming to that message that the change could ride on."""
        if message_id in self.live:
            return  # being written again: its own edits decide its buttons
        if message_id not in await self.chat.answer_messages(channel_id, question_id):
            return  # deleted meanwhile (with its question, or by hand)
        try:
            async with self._pacer().slot(channel_id):
                message = self._channel(channel_id).get_partial_message(message_id)  # type: ignore[attr-defined]
                await message.edit(view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("Could not take the buttons off message %s (%s)", message_id, exc.status)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
