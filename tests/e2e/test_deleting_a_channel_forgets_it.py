"""Deleting a thread or a channel takes the bot's memory of it along (turns and their images): Discord
sends no MESSAGE_DELETE for the messages of a deleted channel, so nothing else would clear it before
the retention purge."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from tests.e2e.test_conversation import RED, Talk
from tests.e2e.test_deleting_a_message_deletes_the_replies import forgotten
from tests.e2e.test_memory_over_time import talk  # noqa: F401  (fixture)
from tests.fakes.discord import DiscordEmulator, World, standard_world


@pytest.fixture
def emulator_world() -> World:
    world = standard_world()
    world.add_thread(world.channel_named("images"), "images-thread", owner=world.user_named("bob"))
    return world


@pytest.mark.parametrize("where", ["images-thread", "general"])
async def test_deleting_a_channel_or_thread_forgets_its_conversation(
    talk: Talk,  # noqa: F811
    glimpse: Glimpse,
    emulator: DiscordEmulator,
    where: str,
) -> None:
    bob, channel, other = emulator.user("bob"), emulator.channel(where), emulator.channel("images")
    await talk.ask(bob, channel, "what is this?", attachments=[RED], answer="A red square.")
    await talk.ask(bob, other, "and this?", attachments=[RED], answer="Also red.")  # elsewhere: kept
    [question, _] = await glimpse.store.history(channel.id)
    [image] = question.images

    await emulator.delete_channel(channel)
    await emulator.wait_for(lambda: glimpse.get_channel(channel.id) is None, what="the deletion reached the bot")
    await forgotten(glimpse, channel.id)
    assert [t.text for t in await glimpse.store.history(other.id)] == ["and this?", "Also red."]
    assert image.sha256 in await glimpse.store.get_images([image.sha256])  # still the other channel's
