"""LiveReply through an in-memory sink of our own ReplySink protocol, on simulated time.

End-to-end behaviour against the Discord emulator is covered by the e2e tests; here the reply's
logic is pinned down deterministically: what is sent, in which order, when, and how often.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from bot.replies import EMPTY_ANSWER, ChannelPacer, LiveRegistry, LiveReply, ReplyDeleted, Withdrawal
from bot.replies.sinks import NO_MENTIONS, InteractionSink, MessageSink
from bot.replies.textsplit import FENCE, Wrap, render_live, split_message
from bot.store import open_store
from cogs.lifecycle import ReplyLifecycle
from tests.virtual_time import max_in_window, run_virtual


def _http_error(cls: type[discord.HTTPException], status: int) -> discord.HTTPException:
    return cls(SimpleNamespace(status=status, reason="test"), {"code": 10008, "message": "Unknown Message"})


@dataclass
class Op:
    at: float
    kind: str  # "send" or "edit"
    index: int
    content: str


@dataclass
class RecordingSink:
    """A ReplySink that keeps every request; each request takes ``latency`` simulated seconds.

    Message ``index`` gets the id ``first_id + index``."""

    channel_id: int = 1
    latency: float = 0.1
    messages: list[str] = field(default_factory=list)
    files: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    errors: dict[int, discord.HTTPException] = field(default_factory=dict)  # op number -> error
    first_id: int = 1000
    buttons: list[tuple[Any, ...]] = field(default_factory=list)
    typed: int = 0
    handover_at: float = math.inf  # (simulated time) when its messages stop being editable
    refuse_move: str | None = None  # why it cannot hand over (None: it can)
    handed_over: list[tuple[float, int]] = field(default_factory=list)  # (when, messages sent by then)

    async def _record(self, kind: str, index: int, content: str, file: discord.File | None) -> None:
        assert len(content) <= 2000, "Discord would refuse this"
        number = len(self.ops)
        self.ops.append(Op(asyncio.get_running_loop().time(), kind, index, content))
        await asyncio.sleep(self.latency)
        if number in self.errors:
            raise self.errors[number]
        if file is not None:
            self.files[index] = (file.filename, file.fp.read())

    async def send(self, content: str, *, file: discord.File | None = None, buttons: Any = None) -> int:
        await self._record("send", len(self.messages), content, file)
        self.messages.append(content)
        self.buttons.append(tuple(buttons or ()))
        return self.first_id + len(self.messages) - 1

    async def edit(self, index: int, content: str, *, file: discord.File | None = None, buttons: Any = None) -> None:
        await self._record("edit", index, content, file)
        self.messages[index] = content
        if buttons is not None:
            self.buttons[index] = tuple(buttons)

    async def typing(self) -> None:
        self.typed += 1

    def handover_in(self) -> float:
        return self.handover_at - asyncio.get_running_loop().time()

    def hand_over(self) -> str | None:
        self.handed_over.append((asyncio.get_running_loop().time(), len(self.messages)))
        return self.refuse_move


@dataclass
class Deltas:
    """A model stream: ``pieces`` arriving every ``interval`` s; remembers whether it was closed."""

    pieces: Sequence[str]
    interval: float = 1 / 30
    stall_after: int | None = None  # stop delivering (as a hung upstream would) after this many
    error: Exception | None = None
    closed: bool = False
    delivered: int = 0
    arrivals: list[float] = field(default_factory=list)

    async def __call__(self) -> AsyncIterator[str]:
        try:
            for piece in self.pieces:
                if self.stall_after is not None and self.delivered >= self.stall_after:
                    await asyncio.sleep(3600)
                await asyncio.sleep(self.interval)
                self.delivered += 1
                self.arrivals.append(asyncio.get_running_loop().time())
                yield piece
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


def _tokens(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _answer(length: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(map(len, parts)) < length:
        if rng.random() < 0.3:
            body = "\n".join(f"result_{i} = compute({i})" for i in range(rng.randint(5, 40)))
            parts.append(f"```python\n{body}\n```")
        else:
            words = ["The", "cat", "sat", "quietly", "on", "a", "mat."]
            parts.append(" ".join(rng.choice(words) for _ in range(80)))
    return "\n\n".join(parts)[:length]


def _pacer() -> ChannelPacer:
    return ChannelPacer(5, 5.0, margin=0.25)


def test_placeholder_first_then_the_first_words_at_once() -> None:
    async def main() -> tuple[RecordingSink, Deltas]:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        await reply.start()
        assert [(op.kind, op.content) for op in sink.ops] == [("send", "…")]
        deltas = Deltas(["Hello", " world"], interval=2.0)
        await reply.stream(deltas())
        await reply.finish()
        return sink, deltas

    sink, deltas = run_virtual(main)
    assert sink.ops[0].at == 0.0
    # The first words are edited in the moment they arrive, not after a pacing interval.
    assert (sink.ops[1].at, sink.ops[1].content) == (deltas.arrivals[0], "Hello")
    assert sink.messages == ["Hello world"]


def test_a_burst_of_deltas_is_coalesced_into_one_edit() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(["tok "] * 200, interval=0)())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    # The placeholder, the first word at once, then everything that arrived meanwhile in one edit.
    assert [(op.kind, op.content) for op in sink.ops] == [("send", "…"), ("edit", "tok "), ("edit", "tok " * 200)]


def test_steady_stream_gets_few_even_edits_and_the_exact_text() -> None:
    text = _answer(1800)
    tokens = _tokens(text)  # 450 deltas at 30/s: 15 s of streaming

    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        final = await reply.stream(Deltas(tokens)())
        assert final == text
        await reply.finish()
        return sink

    sink = run_virtual(main)
    times = [op.at for op in sink.ops]
    assert max_in_window(times, 5.25) <= 5
    assert 12 <= len(sink.ops) <= 18  # ~1 per 1.05 s over 15 s, not one per delta
    streaming = times[2:-1]  # between the first words and the final edit
    gaps = [b - a for a, b in itertools.pairwise(streaming)]
    assert min(gaps) >= 1.05 - 1e-9  # evenly spread, no bursts
    assert sink.messages == [text]
    for op in sink.ops[1:]:
        assert op.content.count(FENCE) % 2 == 0  # code blocks balanced in every edit


def test_long_answer_continues_in_further_messages_with_balanced_fences() -> None:
    text = _answer(5000, seed=3)

    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(_tokens(text, 12), interval=0.05)())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    assert sink.messages == split_message(text)
    assert len(sink.messages) == 3
    assert [op.index for op in sink.ops if op.kind == "send"] == [0, 1, 2]
    assert all(op.content.count(FENCE) % 2 == 0 for op in sink.ops)
    # A message is completed before the next one is created, and never touched again after that.
    last_op = {op.index: n for n, op in enumerate(sink.ops)}
    first_op: dict[int, int] = {}
    for n, op in enumerate(sink.ops):
        first_op.setdefault(op.index, n)
    assert last_op[0] < first_op[1] and last_op[1] < first_op[2]


def test_three_replies_in_one_channel_share_the_allowance_and_all_finish_exactly() -> None:
    texts = [_answer(2500, seed=s) for s in (10, 11, 12)]

    async def main() -> list[RecordingSink]:
        pacer = _pacer()
        shared_ops: list[Op] = []
        sinks = [RecordingSink(ops=shared_ops) for _ in texts]

        async def one(sink: RecordingSink, text: str) -> None:
            reply = LiveReply(sink, pacer)
            await reply.stream(Deltas(_tokens(text), interval=1 / 30)())
            await reply.finish()

        await asyncio.gather(*(one(s, t) for s, t in zip(sinks, texts, strict=True)))
        return sinks

    sinks = run_virtual(main)
    all_times = [op.at for op in sinks[0].ops]  # the list is shared by the three sinks
    assert max_in_window(all_times, 5.25) <= 5
    for sink, text in zip(sinks, texts, strict=True):
        assert sink.messages == split_message(text)


def test_deleted_reply_stops_the_stream_and_closes_the_iterator() -> None:
    async def main() -> tuple[RecordingSink, Deltas, float]:
        sink = RecordingSink(errors={2: _http_error(discord.NotFound, 404)})
        reply = LiveReply(sink, _pacer())
        deltas = Deltas(["word "] * 1000, interval=0.1, stall_after=30)
        with pytest.raises(ReplyDeleted):
            await reply.stream(deltas())
        stopped_at = asyncio.get_running_loop().time()
        await reply.finish()  # a no-op once deleted
        assert reply.deleted
        return sink, deltas, stopped_at

    sink, deltas, stopped_at = run_virtual(main)
    assert deltas.closed
    assert deltas.delivered < 1000
    assert stopped_at < 5  # not after the stalled upstream's hour
    assert len(sink.ops) == 3  # placeholder, one edit, the refused edit: nothing after


def test_deletion_while_the_upstream_hangs_is_noticed_at_the_next_edit() -> None:
    async def main() -> tuple[Deltas, float]:
        sink = RecordingSink(errors={1: _http_error(discord.NotFound, 404)})
        reply = LiveReply(sink, _pacer())
        deltas = Deltas(["a"] * 10, interval=0.1, stall_after=1)
        with pytest.raises(ReplyDeleted):
            await reply.stream(deltas())
        return deltas, asyncio.get_running_loop().time()

    deltas, stopped_at = run_virtual(main)
    assert deltas.closed and stopped_at < 1


@dataclass
class Watched:
    """A stand-in for a live reply in the registry."""

    marked: int = 0

    def mark_deleted(self) -> None:
        self.marked += 1


def test_registry_tells_only_the_reply_whose_message_was_deleted_and_forgets_it() -> None:
    registry = LiveRegistry()
    first, second = Watched(), Watched()
    registry.register(1, first)
    registry.register(2, first)
    registry.register(3, second)

    assert registry.deleted(99) is False  # e.g. the question the reply answers
    assert registry.deleted(2) is True
    assert (first.marked, second.marked) == (1, 0)
    assert registry.deleted(2) is False  # told once
    registry.unregister(3)
    registry.unregister(3)  # unregistering twice is harmless
    assert registry.deleted(3) is False and second.marked == 0
    assert 1 in registry and len(registry) == 1

    registry.register(4, Watched())  # a reply nobody holds any more (its caller dropped it)
    gc.collect()
    assert 4 not in registry


def test_deletion_event_stops_a_reply_whose_model_has_not_said_a_word() -> None:
    async def main() -> tuple[RecordingSink, Deltas, float, LiveRegistry]:
        registry = LiveRegistry()
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), registry=registry)
        deltas = Deltas(["never"], stall_after=0)  # the upstream hangs for an hour before its first word
        streaming = asyncio.create_task(reply.stream(deltas()))
        await asyncio.sleep(10)
        assert registry.deleted(sink.first_id)
        with pytest.raises(ReplyDeleted):
            await streaming
        stopped_at = asyncio.get_running_loop().time()
        await reply.finish()  # a no-op once deleted
        return sink, deltas, stopped_at, registry

    sink, deltas, stopped_at, registry = run_virtual(main)
    assert deltas.closed and stopped_at == 10.0  # at once, not at the next edit
    assert [(op.kind, op.content) for op in sink.ops] == [("send", "…")]  # nothing after the placeholder
    assert len(registry) == 0


def test_deletion_before_the_stream_begins_sends_no_model_request() -> None:
    requested: list[str] = []

    async def upstream() -> AsyncIterator[str]:
        requested.append("request")  # a model stream sends its request on the first iteration
        yield "never"

    async def main() -> RecordingSink:
        registry = LiveRegistry()
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), registry=registry)
        await reply.start()
        registry.deleted(sink.first_id)  # while the caller was still downloading the images
        with pytest.raises(ReplyDeleted):
            await reply.stream(upstream())
        await reply.fail("not shown")
        return sink

    sink = run_virtual(main)
    assert requested == [] and len(sink.ops) == 1


def test_every_message_of_a_reply_is_live_until_it_is_done() -> None:
    text = _answer(5000, seed=3)

    async def main() -> tuple[list[int], list[int], int]:
        registry = LiveRegistry()
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), registry=registry)
        await reply.stream(Deltas(_tokens(text, 40), interval=0.05)())
        posted = list(range(sink.first_id, sink.first_id + len(sink.messages)))
        live = [message_id for message_id in posted if message_id in registry]
        await reply.finish()
        failing = LiveReply(RecordingSink(first_id=2000), _pacer(), registry=registry)
        with pytest.raises(RuntimeError):
            await failing.stream(Deltas(["Partial"], error=RuntimeError("cut"))())
        left_after_error = len(registry)
        await failing.fail("The model stopped.")
        return live, posted, left_after_error + len(registry)

    live, posted, left = run_virtual(main)
    assert len(posted) >= 2 and live == posted  # deleting a continuation stops the reply too
    assert left == 0  # nothing stays registered after finish, a failed stream, or fail


def test_the_deletion_listener_reports_single_and_bulk_deletions() -> None:
    registry = LiveRegistry()
    replies = {message_id: Watched() for message_id in (1, 2, 3)}
    for message_id, reply in replies.items():
        registry.register(message_id, reply)

    async def main() -> None:
        async with await open_store("sqlite:///:memory:") as store:
            withdrawal = Withdrawal(store=store, live=registry, pacer=_pacer, delete=AsyncMock())
            cog = ReplyLifecycle(SimpleNamespace(withdrawal=withdrawal))  # type: ignore[arg-type]
            await cog.on_raw_message_delete(discord.RawMessageDeleteEvent({"id": "1", "channel_id": "9"}))
            bulk = discord.RawBulkMessageDeleteEvent({"ids": ["2", "77"], "channel_id": "9"})
            await cog.on_raw_bulk_message_delete(bulk)

    asyncio.run(main())
    assert {message_id: reply.marked for message_id, reply in replies.items()} == {1: 1, 2: 1, 3: 0}
    assert 3 in registry and len(registry) == 1


def test_attach_overflow_shows_a_preview_and_attaches_the_exact_text() -> None:
    text = "Receipt line with ``` fences and ||pipes|| ✓\n" * 140  # ~6,300 characters
    assert len(text) > 6000

    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), wrap=Wrap.CODE, overflow="attach", attachment_name="ocr.txt")
        await reply.stream(Deltas(_tokens(text, 20), interval=0.02)())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    assert len(sink.messages) == 1
    (final,) = sink.messages
    assert final.startswith("```\n") and "is attached as ocr.txt" in final
    assert len(final) <= 2000
    assert sink.files == {0: ("ocr.txt", text.encode("utf-8"))}
    for op in sink.ops[1:]:
        assert op.content.count(FENCE) == 2  # one balanced code block in every edit


def test_short_ocr_text_fits_in_its_code_block_without_attachment() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), wrap=Wrap.CODE, overflow="attach")
        await reply.stream(Deltas(["EXIT", "\nonly"])())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    assert sink.messages == ["```\nEXIT\nonly\n```"]
    assert sink.files == {}


def test_failure_keeps_the_partial_text_and_adds_the_reason() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        deltas = Deltas(["Partial ", "answer\n```py\nx = 1"], error=RuntimeError("upstream cut"))
        with pytest.raises(RuntimeError, match="upstream cut"):
            await reply.stream(deltas())
        await reply.fail("The model service stopped in the middle of the answer.")
        return sink

    sink = run_virtual(main)
    assert sink.messages == [
        "Partial answer\n```py\nx = 1\n```\n⚠️ The model service stopped in the middle of the answer."
    ]


def test_failure_before_any_text_replaces_the_placeholder() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        with pytest.raises(TimeoutError):
            await reply.stream(Deltas([], error=TimeoutError())())
        await reply.fail("The model took too long to answer.")
        return sink

    assert run_virtual(main).messages == ["⚠️ The model took too long to answer."]


def test_empty_answer_says_so_and_note_goes_on_the_last_line() -> None:
    async def main() -> tuple[RecordingSink, RecordingSink]:
        empty, noted = RecordingSink(), RecordingSink(channel_id=2)
        pacer = _pacer()
        first = LiveReply(empty, pacer)
        await first.stream(Deltas(["", "  \n"])())
        await first.finish()
        second = LiveReply(noted, pacer, wrap=Wrap.SPOILER)
        await second.stream(Deltas(["A cat", " on a mat."])())
        await second.finish("Used the first 2 of 3 images.")
        return empty, noted

    empty, noted = run_virtual(main)
    assert empty.messages == [EMPTY_ANSWER]
    assert noted.messages == ["||A cat on a mat.||\nUsed the first 2 of 3 images."]


def test_an_empty_answer_can_be_said_in_the_callers_words() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), wrap=Wrap.CODE, overflow="attach")
        await reply.stream(Deltas([" ", "\n"])())
        await reply.finish("-# Read offline.", empty_text="No readable text found.")
        return sink

    # Plain words, not an empty code block; the note still goes under them.
    assert run_virtual(main).messages == ["No readable text found.\n-# Read offline."]


def test_a_transient_discord_error_does_not_lose_the_final_text() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink(errors={2: _http_error(discord.DiscordServerError, 503)})
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(_tokens("One two three four five six seven. " * 20))())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    assert sink.messages == ["One two three four five six seven. " * 20]


def test_a_closed_discord_session_ends_the_editor_and_the_final_edit_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = RuntimeError("Session is closed")  # what aiohttp raises once the bot has closed

    async def main() -> tuple[LiveReply, RecordingSink, asyncio.Task[None] | None]:
        sink = RecordingSink(errors={2: closed, 3: closed, 4: closed})
        reply = LiveReply(sink, _pacer())
        text = await reply.stream(Deltas(_tokens("Words keep coming. " * 10))())
        assert text == "Words keep coming. " * 10
        await reply.finish()  # does not raise either
        return reply, sink, reply._editor

    with caplog.at_level("INFO", logger="bot.replies.live"):
        reply, sink, editor = run_virtual(main)
    assert editor is not None and editor.done() and editor.exception() is None
    assert len(sink.ops) == 4  # the editor stopped at its failed edit; the final edit was tried once
    assert [r.levelname for r in caplog.records if "no connection to Discord" in r.getMessage()] == ["INFO", "INFO"]
    assert not reply.deleted


def test_cancelling_the_stream_closes_the_iterator_and_stops_the_editor() -> None:
    async def main() -> tuple[Deltas, RecordingSink, int]:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer())
        deltas = Deltas(["x "] * 1000, interval=0.1)
        task = asyncio.create_task(reply.stream(deltas()))
        await asyncio.sleep(3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ops = len(sink.ops)
        await asyncio.sleep(30)
        return deltas, sink, ops

    deltas, sink, ops = run_virtual(main)
    assert deltas.closed
    assert len(sink.ops) == ops  # nothing edits after the cancellation


def test_message_sink_replies_without_mentions_and_attaches_files_on_edit() -> None:
    async def main() -> tuple[MagicMock, MagicMock]:
        origin = MagicMock(spec=discord.Message)
        origin.channel.id = 42
        first, second = MagicMock(spec=discord.Message), MagicMock(spec=discord.Message)
        origin.channel.send = AsyncMock(side_effect=[first, second])
        first.edit = AsyncMock(return_value=first)
        sink = MessageSink(origin)
        assert sink.channel_id == 42
        assert await sink.send("one") == first.id
        assert await sink.send("two") == second.id
        file = discord.File(__file__)
        await sink.edit(0, "one!", file=file)
        return origin, first

    origin, first = asyncio.run(main())
    calls = origin.channel.send.await_args_list
    assert [c.args for c in calls] == [("one",), ("two",)]
    assert all(c.kwargs["allowed_mentions"] is NO_MENTIONS for c in calls)
    assert all(c.kwargs["mention_author"] is False for c in calls)
    assert "file" not in calls[0].kwargs
    origin.to_reference.assert_called_once_with(fail_if_not_exists=False)
    edit = first.edit.await_args
    assert edit.kwargs["content"] == "one!" and edit.kwargs["allowed_mentions"] is NO_MENTIONS
    assert [f.filename for f in edit.kwargs["attachments"]] == ["test_replies.py"]


def test_interaction_sink_edits_the_original_response_and_uses_followups() -> None:
    async def main() -> MagicMock:
        interaction = MagicMock(spec=discord.Interaction)
        interaction.channel_id = 7
        interaction.created_at = discord.utils.utcnow()
        interaction.edit_original_response = AsyncMock(return_value=SimpleNamespace(id=11))
        followup = MagicMock(spec=discord.WebhookMessage)
        followup.id = 12
        followup.edit = AsyncMock(return_value=followup)
        interaction.followup.send = AsyncMock(return_value=followup)
        sink = InteractionSink(interaction)
        assert await sink.send("…") == 11  # the deferred "thinking" message, now the placeholder
        await sink.edit(0, "first")
        assert await sink.send("second") == 12
        await sink.edit(1, "second!")
        return interaction

    interaction = asyncio.run(main())
    assert [c.kwargs["content"] for c in interaction.edit_original_response.await_args_list] == ["…", "first"]
    send = interaction.followup.send.await_args
    assert send.args == ("second",)
    assert send.kwargs["wait"] is True
    assert send.kwargs["allowed_mentions"] is NO_MENTIONS
    followup = interaction.followup.send.return_value
    assert followup.edit.await_args.kwargs == {"content": "second!", "allowed_mentions": NO_MENTIONS}


def test_spoiler_reply_stays_hidden_in_every_edit() -> None:
    text = _answer(3000, seed=5) + " a || b"

    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, _pacer(), wrap=Wrap.SPOILER)
        await reply.stream(Deltas(_tokens(text, 8), interval=0.02)())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    assert sink.messages == render_live(text, wrap=Wrap.SPOILER, final=True)
    for op in sink.ops[1:]:
        assert op.content.startswith("||") and op.content.endswith("||")
        assert "||" not in op.content[2:-2]
