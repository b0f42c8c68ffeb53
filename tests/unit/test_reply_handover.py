"""A live reply whose messages stop being editable (an interaction's token ends): it hands over.

The sink says when (``handover_in``, on the simulated clock here); at that moment the reply seals the
messages it has posted where they stand and continues the text in new messages, or, where the sink
cannot move on, ends there with the sink's reason. Pure layout rules first, then the reply on simulated
time, then the interaction sink itself against a mocked interaction with an injectable clock.
"""

from __future__ import annotations

import asyncio
import datetime
from types import SimpleNamespace
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from bot.replies import LiveReply, ReplyDeleted, ReplyStopped, TokenDeadline
from bot.replies.layout import CONTINUED_BELOW, Layout
from bot.replies.sinks import CANNOT_POST, NO_MENTIONS, PRIVATE_ENDS, InteractionSink
from bot.replies.textsplit import FENCE, ZWSP, Wrap, close_at, split_message
from tests.unit.test_replies import Deltas, RecordingSink, _pacer
from tests.virtual_time import run_virtual

LINES = "".join(f"Line {i:03d}: the quick brown fox jumps over the lazy dog.\n" for i in range(120))


def _unwrap(content: str) -> str:
    assert content.startswith(FENCE + "\n") and content.endswith("\n" + FENCE), content
    return content[4:-4].replace(ZWSP, "")


# --- the layout ----------------------------------------------------------------------------------


def test_the_last_message_is_sealed_at_its_last_line_break_and_an_open_code_block_is_reopened() -> None:
    text = "Intro.\n```py\nx = 1\ny = 2\nz = 3"
    closed = close_at(text, 1)
    assert closed.contents == ["Intro.\n```py\nx = 1\ny = 2\n```"]
    assert closed.reopen == "```py\n" and text[closed.end :] == "z = 3"
    sealed = Layout().seal(text, 1)
    later = text + "\nw = 4\n```\nDone."
    assert sealed.final(later, None, "empty").contents == [
        "Intro.\n```py\nx = 1\ny = 2\n```",
        "```py\nz = 3\nw = 4\n```\nDone.",
    ]


def test_messages_the_text_has_outgrown_are_sealed_as_they_were_split() -> None:
    text = LINES * 2  # several messages' worth
    chunks = split_message(text)
    closed = close_at(text, 2)
    assert closed.contents == chunks[:2]
    assert "".join(closed.contents) + text[closed.end :] == text


def test_a_sealed_placeholder_points_below_and_a_sealed_preview_is_followed_by_the_whole_file() -> None:
    layout = Layout(wrap=Wrap.CODE, overflow="attach", attachment_name="scan.txt")
    assert layout.seal("", 1).sealed == (CONTINUED_BELOW,)
    long = "word " * 1000
    sealed = layout.seal(long, 1)
    assert sealed.preview and sealed.sealed[0].endswith("\n" + CONTINUED_BELOW)
    done = sealed.final(long + "end", "A note.", "empty")
    assert done.contents[1:] == [f"The full text ({len(long) + 3:,} characters) is attached as scan.txt.\nA note."]
    assert done.file_text == long + "end"


# --- the reply -----------------------------------------------------------------------------------


def _stream_past_the_handover(
    sink: RecordingSink, text: str, **options: object
) -> tuple[RecordingSink, float]:
    async def main() -> tuple[RecordingSink, float]:
        reply = LiveReply(sink, _pacer(), **options)  # type: ignore[arg-type]
        await reply.stream(Deltas([line + "\n" for line in text.splitlines()], interval=0.1)())
        await reply.finish("A note.")
        return sink, sink.handed_over[0][0]

    return run_virtual(main)


def _after_the_seal(sink: RecordingSink, moved_at: float) -> list[int]:
    """The messages touched after the hand-over's own edit (the seal)."""
    later = [op for op in sink.ops if op.at >= moved_at]
    return [op.index for op in later[1:]]


def test_at_the_handover_the_text_continues_in_new_messages_and_the_old_ones_are_never_touched_again() -> None:
    text = "".join(LINES.splitlines(keepends=True)[:30])  # one code block's worth, in three seconds
    sink, moved_at = _stream_past_the_handover(
        RecordingSink(handover_at=1.0), text, wrap=Wrap.CODE, overflow="attach", max_messages=1
    )
    assert len(sink.handed_over) == 1 and 1.0 <= moved_at < 1.5
    assert sink.handed_over[0][1] == 1 and len(sink.messages) == 2
    assert set(_after_the_seal(sink, moved_at)) == {1}
    first, rest = _unwrap(sink.messages[0]), sink.messages[1]
    assert rest.endswith("\nA note.")
    assert first + "\n" + _unwrap(rest.removesuffix("\nA note.")) == text
    assert sink.buttons == [(), ()]


def test_a_text_that_outgrows_its_continuation_attaches_the_whole_text() -> None:
    sink, moved_at = _stream_past_the_handover(
        RecordingSink(handover_at=1.0), LINES, wrap=Wrap.CODE, overflow="attach", attachment_name="scan.txt"
    )
    assert set(_after_the_seal(sink, moved_at)) == {1}
    assert sink.messages[1].endswith(f"The full text ({len(LINES):,} characters) is attached as scan.txt.\nA note.")
    assert sink.files == {1: ("scan.txt", LINES.encode())}
    assert LINES.startswith(_unwrap(sink.messages[0]) + "\n")


def test_a_preview_on_screen_at_the_handover_stays_and_the_file_follows() -> None:
    sink, moved_at = _stream_past_the_handover(
        RecordingSink(handover_at=5.0), LINES, wrap=Wrap.CODE, overflow="attach", attachment_name="scan.txt"
    )
    assert set(_after_the_seal(sink, moved_at)) == {1}
    assert sink.messages[0].endswith("\n" + CONTINUED_BELOW)
    assert sink.messages[1] == f"The full text ({len(LINES):,} characters) is attached as scan.txt.\nA note."
    assert sink.files == {1: ("scan.txt", LINES.encode())}


def test_a_plain_answer_continues_exactly_where_it_was() -> None:
    text = LINES[:1500] + "\n"
    sink, _ = _stream_past_the_handover(RecordingSink(handover_at=1.5), text)
    assert len(sink.messages) == 2
    assert sink.messages[0] + "\n" + sink.messages[1] == text + "\nA note."


def test_a_reply_that_cannot_move_on_ends_at_the_handover_with_the_reason_and_closes_the_stream() -> None:
    async def main() -> tuple[RecordingSink, Deltas, str]:
        sink = RecordingSink(handover_at=3.0, refuse_move="No room here.")
        reply = LiveReply(sink, _pacer(), wrap=Wrap.CODE)
        deltas = Deltas([line + "\n" for line in LINES.splitlines()], interval=0.1)
        with pytest.raises(ReplyStopped) as stopped:
            await reply.stream(deltas())
        await reply.finish("(stopped)")  # what a caller does with ReplyStopped: changes nothing now
        return sink, deltas, stopped.value.text

    sink, deltas, text = run_virtual(main)
    assert deltas.closed and deltas.delivered < len(LINES.splitlines())
    assert sink.messages[-1].endswith("\n⚠️ No room here.")
    sink.messages[-1] = sink.messages[-1].removesuffix("\n⚠️ No room here.")
    assert "".join(map(_unwrap, sink.messages)) == text
    assert sink.handed_over[0][0] < 3.1 and max(op.at for op in sink.ops) < 3.5


def test_a_reply_that_ends_before_the_handover_never_hands_over() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink(handover_at=60.0)
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(["Short", " answer."], interval=0.1)())
        await reply.finish()
        await asyncio.sleep(120)
        return sink

    sink = run_virtual(main)
    assert sink.handed_over == [] and sink.messages == ["Short answer."]


# --- the interaction sink --------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _interaction(*, can_post: bool = True) -> tuple[MagicMock, MagicMock]:
    interaction = MagicMock(spec=discord.Interaction)
    interaction.id = 5
    interaction.channel_id = 7
    interaction.created_at = datetime.datetime.fromtimestamp(1000.0, datetime.UTC)
    interaction.edit_original_response = AsyncMock(return_value=SimpleNamespace(id=11, to_reference=MagicMock()))
    followup = MagicMock(spec=discord.WebhookMessage)
    followup.id = 12
    followup.edit = AsyncMock(return_value=followup)
    interaction.followup.send = AsyncMock(return_value=followup)
    channel = MagicMock(spec=discord.TextChannel)
    permissions = discord.Permissions(view_channel=True, send_messages=can_post, read_message_history=True)
    channel.permissions_for.return_value = permissions
    posted = MagicMock(spec=discord.Message)
    posted.id = 13
    posted.edit = AsyncMock(return_value=posted)
    channel.send = AsyncMock(return_value=posted)
    interaction.channel = channel
    return interaction, channel


def test_the_deadline_is_the_tokens_fifteen_minutes_less_the_margin() -> None:
    clock = Clock(1000.0)
    deadline = TokenDeadline(1000.0, margin=60.0, clock=clock)
    assert deadline.handover_in() == 840.0 and not deadline.expired()
    clock.now = 1900.0
    assert deadline.handover_in() == -60.0 and deadline.expired()


def test_the_interaction_sink_moves_on_to_channel_messages_that_ping_nobody() -> None:
    interaction, channel = _interaction()
    clock = Clock(1000.0)
    sink = InteractionSink(interaction, margin=60.0, clock=clock)

    async def main() -> None:
        assert await sink.send("first") == 11
        assert await sink.send("second") == 12
        clock.now = 1850.0
        assert sink.handover_in() < 0
        assert sink.hand_over() is None
        assert await sink.send("third") == 13
        await sink.edit(1, "second, sealed")  # still within the token's life
        clock.now = 1950.0  # the token has expired
        await sink.edit(2, "third!")  # a channel message: fine
        with pytest.raises(ReplyDeleted):
            await sink.edit(1, "never sent")

    asyncio.run(main())
    send = channel.send.await_args
    assert send.args == ("third",)
    assert send.kwargs["allowed_mentions"] is NO_MENTIONS and send.kwargs["mention_author"] is False
    assert interaction.followup.send.await_count == 1
    assert interaction.followup.send.return_value.edit.await_count == 1  # "never sent" was not
    assert channel.send.return_value.edit.await_args.kwargs["content"] == "third!"


@pytest.mark.parametrize(
    ("private", "can_post", "reason"),
    [(True, True, PRIVATE_ENDS), (False, False, CANNOT_POST.format(missing="Send Messages"))],
)
def test_a_private_reply_or_one_the_bot_may_not_post_cannot_move(private: bool, can_post: bool, reason: str) -> None:
    interaction, channel = _interaction(can_post=can_post)
    channel.guild = MagicMock()
    sink = InteractionSink(interaction, private=private, clock=Clock(1900.0))
    assert sink.hand_over() == reason
    assert sink.hand_over() == reason  # decided once


def test_a_handover_while_finishing_seals_the_whole_text_and_puts_the_note_below() -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink(handover_at=2.0)
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(["All of it.\n", "Really."], interval=0.1)())
        await asyncio.sleep(2.0)  # the caller is slow to finish: the moment passes meanwhile
        await reply.finish("A note.")
        return sink

    sink = run_virtual(main)
    assert sink.messages == ["All of it.\nReally.", "A note."]


def test_a_response_deferred_as_ephemeral_is_private_whatever_the_caller_said() -> None:
    interaction, channel = _interaction()
    interaction.edit_original_response.return_value.flags = discord.MessageFlags(ephemeral=True)
    sink = InteractionSink(interaction, clock=Clock(1000.0))

    async def main() -> None:
        await sink.send("only you see this")

    asyncio.run(main())
    assert sink.hand_over() == PRIVATE_ENDS
    channel.send.assert_not_awaited()
