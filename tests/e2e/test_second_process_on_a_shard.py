"""Two bot processes on the same shard and one store: every event is handled once.

Discord lets two sessions run one shard, and both receive all of its events (as two processes on one
token without sharding do). Each process claims a message or an interaction in the store before any
work, so whoever comes second does nothing: one answer, one model request, one acknowledgement.
Both bots run in this test's loop (two real discord.py clients with their own services) on one
store, in both backends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import assert_discord_refused_nothing, png
from tests.e2e.test_moderation import SCAM, next_entry, picture, setup_moderation
from tests.e2e.test_restart import wait_for_turns
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def twins(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    store_url: str,  # noqa: F811  (the fixture imported above)
) -> AsyncIterator[tuple[Glimpse, Glimpse]]:
    """Two Glimpse bots on the same (only) shard and the same store."""
    settings = Settings.from_env(bot_environment(emulator, vlm, store_url))
    first, second = Glimpse(settings, sync_commands=True), Glimpse(settings)
    async with emulator.running(first), emulator.running(second):
        await emulator.wait_until_connected(sessions=2)
        yield first, second


async def test_an_image_in_a_describe_channel_is_described_once(
    twins: tuple[Glimpse, Glimpse], emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A teal rectangle.")
    posted = await emulator.post_message(emulator.user("bob"), emulator.channel("images"), "", attachments=[
        ("teal.png", png())
    ])
    reply = await emulator.wait_for_message(emulator.channel("images"), after=posted)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.")
    await emulator.wait_for(lambda: sum(bot.claims.refused for bot in twins) == 1, what="the twin stood down")

    assert len(vlm.completions) == 1
    assert emulator.bot_messages(emulator.channel("images")) == [reply]
    assert_discord_refused_nothing(emulator)  # a second acknowledgement would be a 400


async def test_a_question_is_answered_once_and_remembered_once(
    twins: tuple[Glimpse, Glimpse],
    emulator: DiscordEmulator,
    vlm: VLMServer,
    store_url: str,  # noqa: F811
) -> None:
    general, alice = emulator.channel("general"), emulator.user("alice")
    vlm.script("Forty-two.")
    asked = await emulator.post_message(alice, general, f"<@{emulator.bot_user.id}> what is the answer?")
    reply = await emulator.wait_for_message(general, after=asked)
    await emulator.wait_for_content(reply, lambda text: text == "Forty-two.")
    await emulator.wait_for(lambda: sum(bot.claims.refused for bot in twins) == 1, what="the twin stood down")
    assert len(vlm.completions) == 1 and emulator.bot_messages(general) == [reply]

    await wait_for_turns(store_url, general.id, 2)
    context = await emulator.run_slash_command(alice, general, "context")
    await emulator.wait_for_response(context)
    assert context.original is not None  # deferred first (it reads the store), then edited
    await emulator.wait_for_content(context.original, lambda text: "2 remembered messages" in text)
    assert len(context.callbacks) == 1
    assert_discord_refused_nothing(emulator)  # a second acknowledgement would be a 400


async def test_a_slash_command_is_acknowledged_and_answered_once(
    twins: tuple[Glimpse, Glimpse], emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("Two squares.")
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "describe", {"image": ("navy.png", png(color="navy"))}
    )
    await emulator.wait_for_response(interaction)
    await emulator.wait_for(lambda: interaction.original and interaction.original.content == "Two squares.")
    await emulator.wait_for(lambda: sum(bot.claims.refused for bot in twins) == 1, what="the twin stood down")

    assert len(interaction.callbacks) == 1 and interaction.followups == []
    assert len(vlm.completions) == 1
    assert_discord_refused_nothing(emulator)  # a second acknowledgement would be a 400


async def test_a_watched_image_is_moderated_once(
    twins: tuple[Glimpse, Glimpse], emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # a slash command: claimed once too
    vlm.respond_with(lambda request: json.dumps(SCAM))
    await emulator.post_message(emulator.user("bob"), emulator.channel("general"), "", attachments=[
        ("p.png", picture(1))
    ])
    entry = await next_entry(emulator)
    await emulator.wait_for(lambda: sum(bot.claims.refused for bot in twins) == 2, what="the twin stood down twice")

    assert len(vlm.completions) == 1
    assert [m for m in emulator.bot_messages(emulator.channel("mod-log")) if m.embeds] == [entry]
    assert_discord_refused_nothing(emulator)  # a second acknowledgement would be a 400
