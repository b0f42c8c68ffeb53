"""Threads of a describe channel are described too, and a thread the bot may not post in costs nothing."""

from __future__ import annotations

import discord
import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    png,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator, Perm, World
from tests.fakes.discord.standard import standard_world
from tests.fakes.vlm import VLMServer


@pytest.fixture
def emulator_world() -> World:
    """The standard world plus a thread under #images (the describe channel)."""
    world = standard_world()
    world.add_thread(world.channel_named("images"), "images-thread", owner=world.user_named("bob"))
    return world


async def test_an_image_in_a_thread_of_a_describe_channel_is_described(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A teal rectangle.")
    posted = await emulator.post_message(emulator.user("bob"), emulator.channel("images-thread"), "",
                                         attachments=[("t.png", png())])
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.")


async def test_a_thread_the_bot_may_not_post_in_is_skipped_without_a_refused_request(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images, thread = emulator.channel("images"), emulator.channel("images-thread")
    emulator.set_overwrite(images, emulator.bot_user, deny=Perm.SEND_MESSAGES_IN_THREADS)
    cached = glimpse.get_channel(images.id)
    assert isinstance(cached, discord.TextChannel)
    await emulator.wait_for(lambda: not cached.permissions_for(cached.guild.me).send_messages_in_threads)

    await emulator.post_message(emulator.user("bob"), thread, "", attachments=[("t.png", png())])
    vlm.script("A teal rectangle.")
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("i.png", png())])
    reply = await reply_to(emulator, posted)  # the parent channel itself still works
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.")

    assert len(vlm.completions) == 1
    assert emulator.bot_messages(thread) == []
    assert_discord_refused_nothing(emulator)  # not even one 403 (the fixture checks again at teardown)
