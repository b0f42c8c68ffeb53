"""A reply started by a command outlives the interaction's token: it carries on in channel messages.

Discord refuses an interaction's token 15 minutes after the interaction (401, 50027). Here the emulator's
token lives ``TTL`` seconds and the bot hands over ``HANDOVER`` seconds after the interaction
(``INTERACTION_MARGIN_SECONDS`` = 15 minutes less that); the model's streams are gated, so the test
decides which text exists before the hand-over, which after the token's end. Discord refusing nothing
(the fixture's teardown) is the proof that no request went out with the expired token.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.replies import TOKEN_LIFETIME, ChannelPacer
from bot.replies.sinks import CANNOT_POST
from bot.replies.textsplit import ZWSP
from tests.e2e.helpers import assert_bot_pinged_nobody
from tests.e2e.steering import buttons
from tests.e2e.test_ocr import WINDOW, text_page
from tests.fakes.discord import (
    DiscordEmulator,
    EmulatorConfig,
    Interaction,
    InteractionConfig,
    Message,
    Perm,
    RateLimitConfig,
)
from tests.fakes.vlm import Script, VLMServer

HANDOVER = 3.0  # seconds after the interaction at which the bot moves on
TTL = 5.0  # the token's life in the emulator
HEADER = re.compile(r"-# Image (\d) of (\d): (\S+)\n")


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    limits = RateLimitConfig(channel_window=WINDOW, message_route_window=WINDOW, webhook_window=WINDOW)
    return EmulatorConfig(rate_limits=limits, interactions=InteractionConfig(token_ttl=TTL))


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return settings_env | {"INTERACTION_MARGIN_SECONDS": str(TOKEN_LIFETIME - HANDOVER)}


@pytest.fixture
async def bot(glimpse: Glimpse) -> AsyncIterator[Glimpse]:
    glimpse.pacer = ChannelPacer(rate=5, per=WINDOW, margin=0.05)
    yield glimpse


def lines(name: str, count: int) -> list[str]:
    return [f"{name} line {i}: the quick brown fox" for i in range(1, count + 1)]


def gated(text_lines: list[str]) -> Script:
    return Script(chunks=tuple(line + "\n" for line in text_lines), gated=True)


async def until(seconds_after: float, interaction: Interaction) -> None:
    """Sleep until ``seconds_after`` the interaction was created (the emulator's clock)."""
    await asyncio.sleep(max(0.0, interaction.created + seconds_after - time.monotonic()))


def texts_by_image(messages: list[Message]) -> dict[str, list[str]]:
    """Each image's text lines, from its messages in order (header, then a code block)."""
    found: dict[str, list[str]] = {}
    for message in messages:
        header = HEADER.match(message.content)
        assert header, message.content
        block = re.search(r"```\n(.*?)\n```", message.content, re.S)
        assert block, message.content
        found.setdefault(header.group(3), []).extend(block.group(1).replace(ZWSP, "").split("\n"))
    return found


async def test_a_long_extract_text_carries_on_in_channel_messages_with_nothing_lost(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    truth = {"a.png": lines("A", 4), "b.png": lines("B", 6), "c.png": lines("C", 5)}
    vlm.script(*(gated(truth[name]) for name in truth))
    pages = [(name, text_page([name])[0]) for name in truth]
    posted = await emulator.post_message(bob, channel, "three scans", attachments=pages)

    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    await emulator.wait_for_response(interaction)
    await vlm.wait_for_requests(1)
    await vlm.release(4)  # image 1, whole, in the original response
    await vlm.wait_for_requests(2)
    await vlm.release(3)  # half of image 2, in a followup
    followup = await emulator.wait_for(lambda: interaction.followups and interaction.followups[0])
    await emulator.wait_for_content(followup, lambda c: "B line 3" in c)
    assert time.monotonic() - interaction.created < HANDOVER, "too slow for this test's timeline"

    await until(HANDOVER, interaction)  # the bot seals the followup: its Stop button goes
    await emulator.wait_for(lambda: not followup.components, what="the followup sealed")
    await until(TTL + 0.2, interaction)  # the token is dead now
    await vlm.release(3)  # the rest of image 2
    await vlm.wait_for_requests(3)
    await vlm.release(5)  # image 3
    replies = await emulator.wait_for(
        lambda: (r := [m for m in emulator.bot_messages(channel) if m.interaction_id is None])
        and len(r) == 2
        and "C line 5" in r[-1].content
        and not r[-1].components
        and r,
        timeout=10,
    )

    assert interaction.original is not None
    everything = [interaction.original, followup, *replies]
    assert texts_by_image(everything) == truth  # each image's whole text, in order, nothing twice
    assert [HEADER.match(m.content).group(3) for m in everything] == ["a.png", "b.png", "b.png", "c.png"]  # type: ignore[union-attr]
    # The token's messages were last touched while it lived; the rest are ordinary messages that
    # continue the reply, each replying to the one before it.
    assert max(r.at for m in (interaction.original, followup) for r in m.revisions) < interaction.created + TTL
    assert [m.reference_id for m in replies] == [followup.id, replies[0].id]
    assert all(m.webhook_id is None for m in replies)
    assert_bot_pinged_nobody(emulator)


async def test_a_short_ask_is_answered_through_the_interaction_as_before(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, channel = emulator.user("alice"), emulator.channel("general")
    vlm.script(Script(text="A short answer, well within the token's life.", chunk_size=8, delay=0.02))
    interaction = await emulator.run_slash_command(alice, channel, "ask", {"prompt": "Anything?"})
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda c: c == "A short answer, well within the token's life.")
    await emulator.wait_for(lambda: original.revisions[-1].components, what="the finished answer's buttons")
    await until(TTL + 0.5, interaction)  # nothing more happens when the token ends

    assert emulator.bot_messages(channel) == [original]
    assert emulator.records.requests_to("POST", "/channels/{channel_id}/messages") == []
    assert interaction.followups == []


async def test_an_ask_answer_that_outlives_the_token_continues_below_with_its_buttons(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, channel = emulator.user("alice"), emulator.channel("general")
    answer = lines("Answer", 6)
    vlm.script(gated(answer))
    interaction = await emulator.run_slash_command(alice, channel, "ask", {"prompt": "Tell me slowly."})
    await vlm.wait_for_requests(1)
    await vlm.release(2)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda c: "Answer line 2" in c)
    assert "Stop" in buttons(original.components)
    await until(HANDOVER, interaction)
    await emulator.wait_for(lambda: not original.components, what="the original sealed, its Stop button gone")
    await until(TTL + 0.2, interaction)
    await vlm.release(4)
    below = await emulator.wait_for(
        lambda: (r := [m for m in emulator.bot_messages(channel) if m is not original])
        and "Regenerate" in buttons(r[-1].components)
        and r[-1]
    )

    assert original.content + "\n" + below.content == "".join(line + "\n" for line in answer)
    assert below.reference_id == original.id and below.webhook_id is None
    assert max(r.at for r in original.revisions) < interaction.created + TTL
    assert_bot_pinged_nobody(emulator)


async def test_without_send_messages_the_long_reply_ends_with_the_reason_while_the_token_lives(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    truth = lines("A", 8)
    vlm.script(gated(truth), gated(lines("B", 2)))
    pages = [(name, text_page([name])[0]) for name in ("a.png", "b.png")]
    posted = await emulator.post_message(bob, channel, "two scans", attachments=pages)
    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    await emulator.wait_for_response(interaction)
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(3)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda c: "A line 3" in c)
    await emulator.set_overwrite(channel, emulator.bot_user, deny=Perm.SEND_MESSAGES)  # an admin changes it

    reason = CANNOT_POST.format(missing="Send Messages")
    content = await emulator.wait_for_content(original, lambda c: reason in c, timeout=HANDOVER + 2)
    await vlm.wait_for(lambda: request.disconnected)  # the model request was closed at once
    await until(TTL + 0.5, interaction)

    assert texts_by_image([original]) == {"a.png": truth[:3]}
    assert content.endswith("\n⚠️ " + reason)
    assert len(vlm.completions) == 1  # the second image was not read
    assert emulator.bot_messages(channel) == [original] and interaction.followups == []
