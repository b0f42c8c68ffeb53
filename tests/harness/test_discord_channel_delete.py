"""Deleting a channel or a thread reaches the real discord.py as Discord sends it: one THREAD_DELETE
or CHANNEL_DELETE (a channel's threads go with it), the messages gone without a MESSAGE_DELETE each,
and the REST routes of what is gone answer Unknown Channel."""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord import DiscordEmulator, standard_world
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def test_threads_and_channels_are_deleted_as_discord_announces_it() -> None:
    world = standard_world()
    images = world.channel_named("images")
    thread = world.add_thread(images, "images-thread", owner=world.user_named("bob"))
    client = discord.Client(intents=intents())
    thread_deletes: list[tuple[int, int]] = []
    channel_deletes: list[int] = []
    message_deletes: list[int] = []

    @client.event
    async def on_raw_thread_delete(payload: discord.RawThreadDeleteEvent) -> None:
        thread_deletes.append((payload.thread_id, payload.parent_id))

    @client.event
    async def on_guild_channel_delete(channel: discord.abc.GuildChannel) -> None:
        channel_deletes.append(channel.id)

    @client.event
    async def on_raw_message_delete(payload: discord.RawMessageDeleteEvent) -> None:
        message_deletes.append(payload.message_id)

    async with DiscordEmulator(world=world) as emulator, emulator.running(client):
        posted = await emulator.post_message(emulator.user("bob"), thread, "in the thread")
        await emulator.delete_channel(thread)
        await emulator.wait_for(lambda: thread_deletes, what="THREAD_DELETE")
        assert thread_deletes == [(thread.id, images.id)] and posted.deleted and message_deletes == []
        assert client.get_channel(thread.id) is None
        with pytest.raises(discord.NotFound):
            await client.http.send_message(thread.id, params=discord.http.handle_message_parameters("hi"))

        general = emulator.channel("general")
        await emulator.delete_channel(general)
        await emulator.wait_for(lambda: channel_deletes, what="CHANNEL_DELETE")
        assert channel_deletes == [general.id] and client.get_channel(general.id) is None
