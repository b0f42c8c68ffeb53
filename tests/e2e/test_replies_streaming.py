"""Live replies end to end: long answers, several replies in one channel, mentions, deletions.

The bot streams real model output (the VLM server) into real Discord messages (the emulator);
the assertions are on every revision the emulator recorded.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    assert_discord_refused_nothing,
    assert_grows_into,
    emulator_config,
    fences_balanced,
    paced_like_emulator,
    png,
    rejoin,
    release_until_done,
    reply_chain,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, Script, VLMServer

CHANNEL_WRITES = ("/channels/{channel_id}/messages", "/channels/{channel_id}/messages/{message_id}")


def long_answer() -> str:
    """About 5,000 characters of prose and code, with one code block longer than a Discord message."""
    prose = " ".join(f"Step {i} reads the settings, checks them and logs what changed." for i in range(1, 13))
    body = "\n".join(f"    total += weigh(items[{i}], factor={i % 7})  # step {i} of the loop" for i in range(58))
    long_code = f"```python\ndef total(items):\n    total = 0\n{body}\n    return total\n```"
    short_code = "```bash\nmake test\nmake run\n```"
    outro = " ".join(f"Then check part {i} of the output before you go on." for i in range(1, 12))
    return f"{prose}\n\n{long_code}\n\nRun it with:\n\n{short_code}\n\n{outro}"


async def start_reply(emulator: DiscordEmulator, entry: str, *, name: str = "code.png") -> Callable[[], list[Message]]:
    """bob asks for a description through ``entry``; returns what shows the reply's messages, in order."""
    bob = emulator.user("bob")
    if entry == "channel":
        posted = await emulator.post_message(bob, emulator.channel("images"), "", attachments=[(name, png())])
        first = await reply_to(emulator, posted)
        return lambda: reply_chain(emulator, first)
    interaction = await emulator.run_slash_command(
        bob, emulator.channel("general"), "describe", {"image": (name, png())}
    )
    original = await emulator.wait_for(lambda: interaction.original)
    return lambda: [original, *interaction.followups]


ENTRIES = pytest.mark.parametrize("entry", ["channel", "slash"])


@ENTRIES
async def test_long_answer_continues_in_messages_with_balanced_code_fences(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, entry: str
) -> None:
    answer = long_answer()
    assert 4900 <= len(answer) <= 5100
    step = 1000
    vlm.script(Script(text=answer, chunk_size=step, gated=True))

    messages = await start_reply(emulator, entry)
    [request] = await vlm.wait_for_requests(1)
    for end in range(step, len(answer), step):
        # One chunk at a time, each shown before the next: the reply passes through many states.
        await vlm.release(1)
        tail = answer[end - 40 : end - 20]
        await emulator.wait_for(lambda tail=tail: any(tail in m.content for m in messages()))
    await release_until_done(vlm, [request])

    def complete() -> bool:
        try:
            return rejoin([m.content for m in messages()], answer) == answer
        except AssertionError:  # not there yet
            return False

    await emulator.wait_for(complete)

    chain = messages()
    assert len(chain) == 3  # 5,000 characters: two continuation messages
    channel = emulator.world.channels[chain[0].channel_id]
    assert emulator.bot_messages(channel) == chain  # nothing else was posted
    revisions = [content for message in chain for content in message.history if content]
    assert len(revisions) > 2 * len(chain)  # intermediate states were shown, not only the final one
    for content in revisions:
        assert fences_balanced(content), content


async def test_three_concurrent_replies_in_one_channel_draw_no_429(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    def answer_for(width: int) -> str:
        return f"A plain square, {width} pixels wide, in one flat colour."

    vlm.respond_with(lambda request: Script(text=answer_for(request.images[0].width), chunk_size=6, gated=True))
    images = emulator.channel("images")
    posts = [
        await emulator.post_message(emulator.user(name), images, "", attachments=[("sq.png", png(width, width))])
        for name, width in (("alice", 100), ("bob", 200), ("carol", 300))
    ]
    replies = [await reply_to(emulator, post) for post in posts]
    requests = await vlm.wait_for_requests(3)  # all three streams are open at once
    await release_until_done(vlm, requests)
    for reply, width in zip(replies, (100, 200, 300), strict=True):
        await emulator.wait_for_content(reply, lambda text, width=width: text == answer_for(width))

    for reply, width in zip(replies, (100, 200, 300), strict=True):
        assert_grows_into(reply.history, answer_for(width))
    writes = [r for r in emulator.requests if r.route in CHANNEL_WRITES and r.method in ("POST", "PATCH")]
    assert len(writes) > emulator.config.rate_limits.channel_limit  # more than one bucket's worth
    assert_discord_refused_nothing(emulator)  # not one 429 (the fixture checks again at teardown)


async def test_model_output_never_pings_anyone(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    alice, bob, images = emulator.user("alice"), emulator.user("bob"), emulator.channel("images")
    moderators = next(role for role in emulator.guild("Glimpse Lab").roles.values() if role.name == "Moderator")
    answer = f"@everyone @here look: <@{bob.id}> and <@&{moderators.id}> are in this picture."
    vlm.script(Script(text=answer, chunk_size=10))
    posted = await emulator.post_message(alice, images, "", attachments=[("crowd.png", png())])
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == answer)

    interaction = await emulator.run_slash_command(alice, images, "describe", {"image": ("crowd.png", png())})
    vlm.script(answer)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == answer)

    for message in (reply, original):
        records = emulator.mentions_for(message)
        assert records, "the emulator recorded no sends or edits"
        assert [r for r in records if r.pinged_anyone] == []


async def wait_until_closed(vlm: VLMServer, request: RecordedRequest) -> None:
    await vlm.wait_for(lambda: request.outcome != "pending")


@ENTRIES
async def test_deleting_the_reply_while_it_streams_cancels_the_model_request(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, entry: str
) -> None:
    pieces = ("The first words ", "and some more ", "that nobody will see.")
    vlm.script(Script(chunks=pieces, gated=True))
    messages = await start_reply(emulator, entry)
    [reply] = messages()
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(1)
    await emulator.wait_for_content(reply, lambda text: text == pieces[0])

    await emulator.delete_message(reply)  # a moderator removes the answer mid-stream
    await vlm.release(1)  # the next words: the bot's edit finds the reply gone
    await wait_until_closed(vlm, request)

    assert request.outcome == "client_disconnected" and request.chunks_sent == 2
    assert reply.history[-2:] == [PLACEHOLDER, pieces[0]]
    channel = emulator.world.channels[reply.channel_id]
    assert emulator.bot_messages(channel) == []  # no error message posted instead

    later = await start_reply(emulator, entry, name="later.png")
    await emulator.wait_for(lambda: [m.content for m in later()] == ["I see 1 image."])  # the bot carries on


async def test_user_deleting_their_message_before_the_reply_breaks_nothing(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """Deleted before it was answered, the message gets no reply (issue 15; until then the reply was
    shown anyway): none is posted, or the one posted meanwhile is deleted. The bot carries on."""
    bob, images = emulator.user("bob"), emulator.channel("images")
    posted = await emulator.post_message(bob, images, "", attachments=[("a.png", png())])
    await emulator.delete_message(posted)

    later = await emulator.post_message(bob, images, "", attachments=[("b.png", png())])
    again = await reply_to(emulator, later)
    await emulator.wait_for_content(again, lambda text: text == "I see 1 image.")
    await emulator.wait_for(lambda: emulator.bot_messages(images) == [again], what="no reply to the deleted one")
    assert [t.message_id for t in await glimpse.store.history(images.id) if t.role == "user"] == [later.id]
