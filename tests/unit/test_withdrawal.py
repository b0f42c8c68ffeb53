"""Withdrawal without Discord: a live reply (on a recording sink), the real SQLite store in memory, and
a recording delete. What is deleted, in which channel, and what is left in the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from bot.conversation import Turn
from bot.replies import ChannelPacer, LiveRegistry, LiveReply, ReplyDeleted, Withdrawal
from bot.store import Store, open_store
from tests.unit.test_replies import Deltas, RecordingSink

T = TypeVar("T")
QUESTION = 77
CHANNEL = 1


class World:
    """A store, a registry and the deletes made, as the bot has them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.live = LiveRegistry()
        self.pacer = ChannelPacer(50, 1.0)
        self.deleted: list[tuple[int, int]] = []
        self.withdrawal = Withdrawal(store=store, live=self.live, pacer=lambda: self.pacer, delete=self.delete)

    async def delete(self, channel_id: int, message_id: int) -> None:
        self.deleted.append((channel_id, message_id))

    def reply(self, sink: RecordingSink, about: int = QUESTION) -> LiveReply:
        async def posted(message_id: int) -> None:
            await self.store.add_replies(about, sink.channel_id, [message_id])

        return LiveReply(sink, self.pacer, registry=self.live, about=about, on_posted=posted)


def run(main: Callable[[World], Awaitable[T]]) -> T:
    async def go() -> T:
        async with await open_store("sqlite:///:memory:") as store:
            return await main(World(store))

    return asyncio.run(go())


async def remember(store: Store, question_id: int) -> None:
    question = Turn("user", "bob", 2, "what is this?", message_id=question_id)
    await store.append_exchange(CHANNEL, question, Turn("assistant", "Glimpse", 0, "A cat."))


def test_deleting_the_question_of_a_streaming_answer_stops_it_and_deletes_every_message_it_posted() -> None:
    long = ("A sentence of a long answer. " * 40 + "\n\n") * 3  # ~3,500 characters: two messages at least

    async def main(world: World) -> tuple[RecordingSink, Deltas, list[tuple[int, int]], int]:
        sink, deltas = RecordingSink(latency=0.01), Deltas([long[i : i + 400] for i in range(0, len(long), 400)])
        reply = world.reply(sink)
        streaming = asyncio.ensure_future(reply.stream(deltas()))
        async with asyncio.timeout(5):
            while len(sink.messages) < 2:  # noqa: ASYNC110 (the recording sink has no event to wait on)
                await asyncio.sleep(0.01)
        await world.withdrawal.deleted([QUESTION])
        requests = len(sink.ops)
        with pytest.raises(ReplyDeleted):
            await streaming
        await asyncio.sleep(0.1)  # nothing more is posted or edited
        assert len(sink.ops) == requests
        return sink, deltas, world.deleted, len(await world.store.messages_deleted([QUESTION]))

    sink, deltas, deleted, left = run(main)
    assert deltas.closed and deltas.delivered < len(deltas.pieces)  # the model request was closed early
    assert deleted == [(CHANNEL, sink.first_id + i) for i in range(len(sink.messages))]
    assert left == 0  # taken off the record


def test_after_a_restart_the_noted_replies_and_the_exchange_go() -> None:
    async def main(world: World) -> tuple[list[tuple[int, int]], list[Turn]]:
        await world.store.add_replies(QUESTION, CHANNEL, [501, 502])
        await remember(world.store, QUESTION)
        await remember(world.store, QUESTION + 1)
        await world.withdrawal.deleted([QUESTION])
        await world.withdrawal.deleted([501])  # the bot's own deletes come back as events: nothing more
        await world.withdrawal.deleted([502, 999])
        return world.deleted, await world.store.history(CHANNEL)

    deleted, history = run(main)
    assert deleted == [(CHANNEL, 501), (CHANNEL, 502)]
    assert [turn.message_id for turn in history if turn.role == "user"] == [QUESTION + 1]


def test_a_purge_of_a_question_and_its_reply_deletes_only_what_is_left() -> None:
    async def main(world: World) -> list[tuple[int, int]]:
        await world.store.add_replies(QUESTION, CHANNEL, [501, 502])
        await world.withdrawal.deleted([501, QUESTION])
        return world.deleted

    assert run(main) == [(CHANNEL, 502)]  # 501 went with the purge: deleting it again would be a 404


def test_a_reply_about_a_message_deleted_a_moment_before_shows_nothing() -> None:
    async def main(world: World) -> tuple[RecordingSink, Deltas]:
        await world.withdrawal.deleted([QUESTION])
        sink, deltas = RecordingSink(), Deltas(["Too late."])
        reply = world.reply(sink)
        await reply.start()
        with pytest.raises(ReplyDeleted):
            await reply.stream(deltas())
        await reply.fail("ignored")
        return sink, deltas

    sink, deltas = run(main)
    assert sink.ops == [] and sink.typed == 0 and deltas.delivered == 0


