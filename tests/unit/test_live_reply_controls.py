"""LiveReply's buttons, Stop, the "Thinking..." placeholder and the busy channel, on simulated time."""

from __future__ import annotations

import asyncio

import pytest

from bot.replies import Button, ChannelPacer, LiveReply, ReplyStopped
from bot.vlm import Completion
from tests.unit.test_replies import Deltas, RecordingSink
from tests.virtual_time import run_virtual

STOP = Button("Stop", "glimpse:stop:1", "danger")
AGAIN = Button("Regenerate", "glimpse:regen:c:2:1")


def pacer() -> ChannelPacer:
    return ChannelPacer(5, 5.0, margin=0.25)


def done(text: str) -> Completion:
    return Completion(text, None, "stop")


def test_stop_rides_on_every_live_edit_and_the_final_edit_swaps_it_for_the_answers_buttons() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, pacer(), stop=STOP, controls=lambda answer: [AGAIN])
        text = await reply.stream(Deltas(["Hello", " there", " friend"], interval=2.0)())
        await reply.finish(answer=done(text))
        return sink

    sink = run_virtual(main)
    assert sink.messages == ["Hello there friend"] and sink.buttons == [(AGAIN,)]
    assert [op.content for op in sink.ops] == ["…", "Hello", "Hello there", "Hello there friend"]  # no extra edit


def test_stop_closes_the_stream_and_keeps_the_text() -> None:
    deltas = Deltas(["one", " two", " three"], interval=1.0, stall_after=2)

    async def main() -> tuple[RecordingSink, str]:
        sink = RecordingSink()
        reply = LiveReply(sink, pacer(), stop=STOP)
        stream = deltas()

        async def click_later() -> None:
            await asyncio.sleep(2.5)  # two words are in, the model then hangs
            reply.stop()

        clicker = asyncio.ensure_future(click_later())
        with pytest.raises(ReplyStopped) as stopped:
            await reply.stream(stream)
        await clicker
        await reply.finish("-# (stopped)", answer=Completion(stopped.value.text, None, None, stopped=True))
        return sink, stopped.value.text

    sink, text = run_virtual(main)
    assert text == "one two" and deltas.closed  # the model's stream was closed
    assert sink.messages == ["one two\n-# (stopped)"] and sink.buttons == [()]


def test_thinking_shows_the_seconds_until_the_first_words() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink()
        reply = LiveReply(sink, pacer())
        await reply.start()
        reply.thinking()
        await reply.stream(Deltas(["The answer."], interval=7.0)())
        await reply.finish()
        return sink

    sink = run_virtual(main)
    shown = [op.content for op in sink.ops]
    assert shown[0] == "…" and shown[-1] == "The answer."
    # After the pacing interval since the placeholder, then every THINKING_TICK (3 s) until the words.
    assert shown[1:-1] == ["Thinking... 1s", "Thinking... 4s"]


def test_a_busy_channel_gets_no_placeholder_but_the_text_once_a_slot_frees() -> None:
    async def main() -> tuple[RecordingSink, float]:
        shared = pacer()
        for _ in range(5):  # another answer spent the channel's window just now
            async with shared.slot(1):
                pass
        sink = RecordingSink()
        reply = LiveReply(sink, shared)
        await reply.start()
        assert sink.ops == [] and sink.typed == 1  # the typing indicator instead
        await reply.stream(Deltas(["Quick", " answer."], interval=0.2)())
        await reply.finish()
        return sink, shared.window

    sink, window = run_virtual(main)
    assert [(op.kind, op.content) for op in sink.ops] == [("send", "Quick answer.")]  # one request, all of it
    assert sink.ops[0].at == pytest.approx(window)


def test_with_one_slot_left_the_first_message_waits_for_the_whole_answer_and_takes_it() -> None:
    async def main() -> tuple[RecordingSink, float]:
        shared = pacer()
        for _ in range(4):  # one slot left: a placeholder would take it, the text would wait 5 s
            async with shared.slot(1):
                pass
        sink = RecordingSink()
        reply = LiveReply(sink, shared, stop=STOP, controls=lambda answer: [AGAIN])
        await reply.start()
        deltas = Deltas(["Quick", " answer."], interval=0.2)
        text = await reply.stream(deltas())
        await reply.finish(answer=done(text))
        return sink, deltas.arrivals[-1]

    sink, last_word = run_virtual(main)
    assert [(op.kind, op.content) for op in sink.ops] == [("send", "Quick answer.")]  # with its final buttons
    assert sink.ops[0].at == pytest.approx(last_word) and sink.buttons == [(AGAIN,)]


def test_before_the_change_a_busy_channel_spent_its_first_slot_on_the_placeholder() -> None:
    async def main() -> RecordingSink:
        shared = pacer()
        for _ in range(5):
            async with shared.slot(1):
                pass
        sink = RecordingSink()
        LiveReply.placeholder_when_busy = True
        try:
            reply = LiveReply(sink, shared)
            await reply.start()
            await reply.stream(Deltas(["Quick", " answer."], interval=0.2)())
            await reply.finish()
        finally:
            LiveReply.placeholder_when_busy = False
        return sink

    sink = run_virtual(main)
    assert [op.content for op in sink.ops] == ["…", "Quick", "Quick answer."]  # three requests, not one
