"""Deleting a message takes back what the bot said about it.

Whoever deletes a message (its author, the bot's moderation, a moderator's mod-log button, a purge),
every reply of the bot about it goes too: all the messages of its answer or description, continuations
and attached files included, and the exchange whose question it was leaves the channel's memory (with
its images, unless something else refers to them). A reply still being written is withdrawn first:
its model request closes and it posts nothing more, so every message it posted is known.

Which messages are about which is kept in the store (``Store.add_replies``, noted as each message is
posted), so this works after a restart and in whichever process Discord tells of the deletion; the
live reply, if this process is writing one, is found in the :class:`~bot.replies.registry.LiveRegistry`.
The bot's deletes are paced with the channel's other requests. Their own MESSAGE_DELETE events find
nothing left to take, so they start nothing further.

Pure: the Discord call that deletes one message is given (:func:`bot.replies.sinks.message_deleter`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry, Withdrawable
from bot.store import Replies, Store

log = logging.getLogger(__name__)

DeleteMessage = Callable[[int, int], Awaitable[None]]
"""Delete message (channel id, message id) in Discord; quiet if it is gone already, never raises."""

ENDING_SECONDS = 10.0
"""How long a withdrawn reply's caller is waited for (it may be storing the exchange) before the
exchange is taken out of memory anyway."""


async def delete_paced(pacer: ChannelPacer, delete: DeleteMessage, channel_id: int, message_ids: Iterable[int]) -> None:
    """Delete the bot's ``message_ids`` in ``channel_id``, each in a slot of the channel's pacer."""
    for message_id in message_ids:
        async with pacer.slot(channel_id):
            await delete(channel_id, message_id)


class Withdrawal:
    """``deleted(ids)`` for every MESSAGE_DELETE and MESSAGE_DELETE_BULK (see the module docstring)."""

    def __init__(
        self, *, store: Store, live: LiveRegistry, pacer: Callable[[], ChannelPacer], delete: DeleteMessage
    ) -> None:
        """``pacer``: the bot's pacer, looked up when needed (a test may replace it)."""
        self._store = store
        self._live = live
        self._pacer = pacer
        self._delete = delete

    async def deleted(self, message_ids: Sequence[int]) -> None:
        """Messages ``message_ids`` were deleted in Discord: withdraw the bot's replies about them."""
        gone = set(message_ids)
        live: dict[int, Withdrawable] = {}
        for message_id in gone:
            self._live.deleted(message_id)  # one of a live reply's own messages: that reply stops
            reply = self._live.source_deleted(message_id)
            if reply is not None:
                live[message_id] = reply
        shown = {source: (reply.channel_id, await reply.withdraw()) for source, reply in live.items()}
        try:
            noted = await self._store.messages_deleted(gone)
        except Exception:
            log.warning("Could not read which replies were about deleted messages %s", sorted(gone), exc_info=True)
            noted = []
        found = [Replies(source, channel_id, tuple(ids)) for source, (channel_id, ids) in shown.items()] + noted
        merged: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
        for record in found:
            ids, others = merged.setdefault((record.source_id, record.channel_id), (set(), set()))
            ids.update(record.message_ids)
            others.update(record.others)
        await asyncio.gather(
            *(self._withdraw(Replies(source, channel_id, tuple(sorted(ids - gone)), tuple(others)), live.get(source))
              for (source, channel_id), (ids, others) in merged.items())
        )  # fmt: skip

    async def _withdraw(self, replies: Replies, reply: Withdrawable | None) -> None:
        """Memory first, so that once the replies are gone the exchange is too; a live reply's caller
        may be storing the exchange just now, so once it is done the exchange is taken out again. The
        exchange is the deleted message's, or that of another message the replies are about (a context
        menu's answer is remembered under its interaction)."""
        source, channel_id = replies.source_id, replies.channel_id
        log.info("Message %s was deleted; deleting the %d replies about it", source, len(replies.message_ids))
        questions = (source, *replies.others)
        await self._forget(channel_id, questions)
        await delete_paced(self._pacer(), self._delete, channel_id, replies.message_ids)
        if reply is not None:
            try:
                await asyncio.wait_for(reply.ended(), ENDING_SECONDS)
            except TimeoutError:
                log.warning("A reply about deleted message %s did not end in time", source)
            await self._forget(channel_id, questions)

    async def _forget(self, channel_id: int, questions: Sequence[int]) -> None:
        for question in questions:
            try:
                removed = await self._store.remove_exchange(channel_id, question)
            except Exception:
                log.warning("Could not take message %s out of channel %s's memory", question, channel_id,
                            exc_info=True)
                continue
            if removed:
                log.info("Message %s left the memory of channel %s (%d turns)", question, channel_id, removed)
